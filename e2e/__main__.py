"""Run the checks: `python -m e2e [--only NAMES] [--skip NAMES] [--insecure] URL`."""

from e2e.cli import main

raise SystemExit(main())
