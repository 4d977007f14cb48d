"""What a run is told: the base URL, the command line and the E2E_* environment variables."""

import os
from dataclasses import dataclass, field

from e2e.urls import BaseUrl, UsageError

DEFAULT_DELAY = 0.2  # seconds between two requests: polite to a production site
DEFAULT_PURGE_SECONDS = 2.0  # how soon an admin change must show through the edge
TRUE_WORDS = ("1", "true", "yes", "on")


@dataclass
class Settings:
    """Everything a run reads from outside; built once by the CLI."""

    base: BaseUrl
    delay: float = DEFAULT_DELAY
    insecure: bool = False
    purge_seconds: float = DEFAULT_PURGE_SECONDS
    junit: str = ""
    admin_user: str = ""
    admin_password: str = field(default="", repr=False)  # never printed
    selected: tuple = ()

    @property
    def has_admin(self):
        return bool(self.admin_user and self.admin_password)


def env_number(environ, name, default):
    """Return the number in environment variable `name`, or `default` when it is unset or empty."""
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise UsageError(f"{name}={raw!r} is not a number") from None
    if value < 0:
        raise UsageError(f"{name}={raw!r} must not be negative")
    return value


def from_environment(url, *, insecure=False, delay=None, junit=None, selected=(), environ=None):
    """Return the settings of a run of `url`: command-line values first, then E2E_* variables."""
    environ = os.environ if environ is None else environ
    return Settings(
        base=BaseUrl(url),
        delay=delay if delay is not None else env_number(environ, "E2E_DELAY", DEFAULT_DELAY),
        insecure=insecure or environ.get("E2E_INSECURE", "").strip().lower() in TRUE_WORDS,
        purge_seconds=env_number(environ, "E2E_PURGE_SECONDS", DEFAULT_PURGE_SECONDS),
        junit=junit if junit is not None else environ.get("E2E_JUNIT", ""),
        admin_user=environ.get("E2E_ADMIN_USER", ""),
        admin_password=environ.get("E2E_ADMIN_PASSWORD", ""),
        selected=tuple(selected),
    )
