"""`manage.py cache_audit [PATH ...]`: which URLs a shared cache may keep, and why not (pagecache/audit.py)."""

import json

from django.core.management.base import BaseCommand, CommandError

from pagecache.audit import AuditError, label, run_audit

COLUMNS = ("PATTERN", "CLASS", "URL REQUESTED", "VERDICT")


class Command(BaseCommand):
    help = (
        "List every URL pattern with its cache class and request each shared URL as an anonymous visitor, "
        "a visitor with a session and a staff user; fail if any answer could not be shared by a cache. "
        "Writes nothing: everything runs in a transaction that is rolled back, on a throwaway cache."
    )

    def add_arguments(self, parser):
        parser.add_argument("paths", nargs="*", help="sample paths for shared patterns with parameters")
        parser.add_argument("--staff", metavar="USERNAME", help="request as this staff user (default: a throwaway one)")
        parser.add_argument("--json", dest="as_json", action="store_true", help="print the report as JSON")

    def handle(self, *args, paths, staff, as_json, **options):
        try:
            report = run_audit(paths, staff=staff)
        except AuditError as exc:
            raise CommandError(str(exc)) from exc
        if as_json:
            self.stdout.write(json.dumps(as_data(report), indent=2))
        else:
            self.stdout.write(format_report(report))
        if report.failures:
            # A non-zero exit, so CI stops on a page that would not be shared.
            names = "; ".join(f"{f.url} ({_reasons(f)})" for f in report.failures)
            raise CommandError(f"{len(report.failures)} shared URL(s) cannot be shared by a cache: {names}")


def as_data(report):
    """Return the report as plain data (for --json)."""
    return {
        "patterns": [vars(pattern) for pattern in report.patterns],
        "urls": [{**vars(finding), "verdict": finding.verdict} for finding in report.findings],
        "warnings": report.warnings,
    }


def format_report(report):
    """Return the report as a table, reasons under each failing URL, then the warnings."""
    findings = {}
    for finding in report.findings:
        findings.setdefault(finding.route, []).append(finding)
    rows, notes = [], {}
    for pattern in report.patterns:
        name = label(pattern.route)
        if pattern.route in findings:
            for finding in findings[pattern.route]:
                rows.append((name, pattern.cache_class, finding.url, finding.verdict))
                notes[len(rows) - 1] = [f"{who}: {', '.join(why)}" for who, why in finding.reasons.items() if why]
        elif pattern.cache_class == "shared":
            rows.append((name, pattern.cache_class, "-", "not sampled"))
        else:
            rows.append((name, pattern.cache_class, "-", "-"))
    widths = [max(len(row[i]) for row in [COLUMNS, *rows]) for i in range(len(COLUMNS))]
    lines = [_line(COLUMNS, widths)]
    for index, row in enumerate(rows):
        lines.append(_line(row, widths))
        lines += [f"    {note}" for note in notes.get(index, [])]
    if report.warnings:
        lines += ["", "Warnings:"] + [f"  {warning}" for warning in report.warnings]
    failed = len(report.failures)
    lines += ["", f"{len(report.findings)} shared URL(s) requested: {len(report.findings) - failed} ok, {failed} FAIL."]
    return "\n".join(lines)


def _line(cells, widths):
    return "  ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True)).rstrip()


def _reasons(finding):
    """Return one failing URL's reasons, each once, whichever visitors had it."""
    return ", ".join(dict.fromkeys(reason for why in finding.reasons.values() for reason in why))
