"""Stack tests: the store through the real Varnish, Nginx and uWSGI (tests/stack/fixtures.py)."""

from tests.stack.fixtures import TIMINGS


def pytest_terminal_summary(terminalreporter):
    """Say how long each stack took to prepare and to start: it is most of this folder's time."""
    for name, (prepared, started) in TIMINGS.items():
        database = "shared database" if prepared is None else f"database ready in {prepared:.1f} s"
        terminalreporter.write_line(f"{name}: {database}, servers up in {started:.1f} s")
