"""The results as people read them (a table) and as CI reads them (JUnit XML)."""

import xml.etree.ElementTree as ET

from e2e.results import FAIL, PASS, SKIP


def table(rows):
    """Return every row as a table: name, PASS/FAIL/SKIP, and on failure what broke it."""
    width = max([len("CHECK"), *(len(r.name) for r in rows)])
    lines = [f"{'CHECK':<{width}}  RESULT  {'TIME':>5}  DETAIL"]
    for r in rows:
        detail = r.detail.splitlines() or [""]
        lines.append(f"{r.name:<{width}}  {r.status:<6}  {r.seconds:>4.1f}s  {detail[0]}")
        lines += [f"{'':<{width + 17}}{line}" for line in detail[1:]]
    return "\n".join(lines)


def summary(rows, run, seconds):
    """Return the closing lines: the counts, how hits were told, the samples, the load put on the site."""
    counts = {status: sum(r.status == status for r in rows) for status in (PASS, FAIL, SKIP)}
    signals = ", ".join(sorted(run.signals)) or "not checked"
    lines = [
        f"{counts[PASS]} passed, {counts[FAIL]} failed, {counts[SKIP]} not run"
        f" against {run.base} in {seconds:.1f} s ({run.pacer.count} requests, {run.settings.delay:g} s apart)",
        f"edge hits told by: {signals}",
    ]
    if run.site is not None:
        lines.append("samples: " + ", ".join(f"{label} {url}" for label, url in run.site.shared.items()))
        lines.append("products: " + ", ".join(product.url for product in run.site.products))
    return "\n".join(lines)


def write_junit(rows, path, base, seconds):
    """Write the rows as a JUnit XML test suite (one testcase per row) to `path`."""
    suite = ET.Element(
        "testsuite",
        name=f"e2e {base}",
        tests=str(len(rows)),
        failures=str(sum(r.status == FAIL for r in rows)),
        skipped=str(sum(r.status == SKIP for r in rows)),
        time=f"{seconds:.3f}",
    )
    for r in rows:
        case = ET.SubElement(suite, "testcase", classname=f"e2e.{r.group}", name=r.name, time=f"{r.seconds:.3f}")
        if r.status == FAIL:
            ET.SubElement(case, "failure", message=r.detail.splitlines()[0] if r.detail else "failed").text = r.detail
        elif r.status == SKIP:
            ET.SubElement(case, "skipped", message=r.detail)
    document = ET.Element("testsuites")
    document.append(suite)
    ET.indent(document)
    ET.ElementTree(document).write(path, encoding="utf-8", xml_declaration=True)
