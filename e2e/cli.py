"""The command line: parse it, run the checks, print the table, exit 0 only when every check holds."""

import argparse
import sys
import time

from e2e import report
from e2e.checks import CHECKS, Run, run_checks
from e2e.settings import from_environment
from e2e.urls import UsageError

EXIT_PASS, EXIT_FAIL, EXIT_USAGE = 0, 1, 2


def parser():
    """Return the argument parser; the E2E_* variables are described in its epilog."""
    cli = argparse.ArgumentParser(
        prog="python -m e2e",
        description="Check the cache contract and the carts of a Corner Shop deployment (docs/e2e.md).",
        epilog="Environment: E2E_DELAY, E2E_INSECURE, E2E_JUNIT, E2E_PURGE_SECONDS, E2E_ADMIN_USER, "
        "E2E_ADMIN_PASSWORD. Checks: " + ", ".join(CHECKS),
    )
    cli.add_argument("url", nargs="?", help="the deployment's base URL, with its scheme: https://shop.example/")
    cli.add_argument("--only", action="append", default=[], metavar="NAMES", help="run only these checks (a,b)")
    cli.add_argument("--skip", action="append", default=[], metavar="NAMES", help="leave these checks out (a,b)")
    cli.add_argument("--insecure", action="store_true", help="accept any TLS certificate (self-signed staging)")
    cli.add_argument("--delay", type=float, help="seconds between two requests (default: E2E_DELAY or 0.2)")
    cli.add_argument("--junit", metavar="PATH", help="also write JUnit XML here (default: E2E_JUNIT)")
    cli.add_argument("--list", action="store_true", help="list the checks and exit")
    return cli


def selected_checks(only, skip):
    """Return the names of the checks to run, from the --only and --skip lists."""
    names = lambda values: [n.strip() for value in values for n in value.split(",") if n.strip()]  # noqa: E731
    unknown = [n for n in names(only) + names(skip) if n not in CHECKS]
    if unknown:
        raise UsageError(f"unknown check {', '.join(unknown)}; the checks are: {', '.join(CHECKS)}")
    chosen = names(only) or list(CHECKS)
    return tuple(n for n in CHECKS if n in chosen and n not in names(skip))


def main(argv=None):
    """Run the checks against the URL on the command line; return the exit status."""
    args = parser().parse_args(argv)
    if args.list:
        print("\n".join(CHECKS))
        return EXIT_PASS
    try:
        if not args.url:
            raise UsageError("give the deployment's base URL, e.g. python -m e2e https://shop.example/")
        if args.delay is not None and args.delay < 0:
            raise UsageError("--delay must not be negative")
        selected = selected_checks(args.only, args.skip)
        settings = from_environment(
            args.url, insecure=args.insecure, delay=args.delay, junit=args.junit, selected=selected
        )
    except UsageError as error:
        print(f"e2e: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    return _run(settings)


def _run(settings):
    tls = "certificates not checked" if settings.insecure else "certificates checked"
    print(f"e2e: {settings.base} ({settings.delay:g} s between requests, {tls})", flush=True)
    run = Run(settings)
    began = time.monotonic()
    rows = run_checks(run, settings.selected, progress=_progress if sys.stderr.isatty() else None)
    seconds = time.monotonic() - began
    print(report.table(rows))
    print(report.summary(rows, run, seconds), flush=True)
    if settings.junit:
        report.write_junit(rows, settings.junit, settings.base, seconds)
    return EXIT_FAIL if any(r.status == "FAIL" for r in rows) else EXIT_PASS


def _progress(row):
    print(f"  {row.status} {row.name}", file=sys.stderr, flush=True)
