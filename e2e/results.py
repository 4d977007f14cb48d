"""One line of the report: a check's name, its outcome and what broke it."""

from dataclasses import dataclass

PASS, FAIL, SKIP = "PASS", "FAIL", "SKIP"


@dataclass
class Row:
    """The outcome of one check (or of one sample of a check, e.g. shared-pages[home])."""

    name: str
    status: str
    detail: str = ""
    seconds: float = 0.0

    @property
    def group(self):
        """Return the check's name without the sample: what --only and --skip take."""
        return self.name.split("[", 1)[0]


def row(name, problems, ok_detail=""):
    """Return a PASS row, or a FAIL row listing `problems` (one per line) when there are any."""
    problems = [p for p in problems if p]
    return Row(name, FAIL, "\n".join(problems)) if problems else Row(name, PASS, ok_detail)


def not_run(name, why):
    return Row(name, SKIP, f"not run: {why}")
