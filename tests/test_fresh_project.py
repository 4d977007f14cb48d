"""The guide, followed in a brand-new project: docs/use-in-your-project.md, proven.

A project made by `django-admin startproject` gets the guide's script as written (copy
pagecache/, the settings lines, createcachetable), a small catalog app written as the guide tells
(tests/fresh_project/catalog), and then shows what the pattern promises, over Django's test client
in its own process: identical cached HTML for two visitors, a cart each with CSRF, a price change
on the next request, an audit that passes and then fails with a reason once a CSRF token enters
the shared template, and the guard's error with DEBUG on.
"""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import django
import pytest

ROOT = Path(__file__).resolve().parents[1]
GUIDE = ROOT / "docs" / "use-in-your-project.md"
APP = ROOT / "tests" / "fresh_project"
BIN = Path(sys.executable).parent


def _guide_script():
    """The shell block that follows the guide's marker comment, exactly as a reader sees it."""
    text = GUIDE.read_text()
    marker = text.index("<!-- the steps as one script")
    return re.search(r"```sh\n(.*?)```", text[marker:], re.S).group(1)


def _run(args, project, env=None, check=True):
    result = subprocess.run(
        args, cwd=project, capture_output=True, text=True, timeout=120,
        env={"PATH": f"{BIN}:/usr/bin:/bin", "DJANGO_SETTINGS_MODULE": "mysite.settings", **(env or {})},
    )
    if check:
        assert result.returncode == 0, f"{args} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A fresh startproject with the guide's steps and the catalog app, migrated."""
    project = tmp_path_factory.mktemp("fresh") / "project"
    project.mkdir()
    _run([BIN / "django-admin", "startproject", "mysite", "."], project)
    guide = _run(["bash", "-euc", _guide_script()], project, env={"STORE": str(ROOT), "SETTINGS": "mysite/settings.py"})
    assert "System check identified no issues" in guide.stdout, guide.stdout + guide.stderr
    shutil.copytree(APP / "catalog", project / "catalog")
    shutil.copy(APP / "check.py", project / "check.py")
    with open(project / "mysite" / "settings.py", "a") as settings:
        settings.write('\nINSTALLED_APPS += ["catalog"]\n')
    urls = project / "mysite" / "urls.py"
    urls.write_text(urls.read_text().replace("from django.urls import path", "from django.urls import include, path")
                    + '\nurlpatterns += [path("", include("catalog.urls"))]\n')
    _run(["python", "manage.py", "makemigrations", "catalog"], project)
    _run(["python", "manage.py", "migrate"], project)
    return project


def test_the_guide_adds_at_most_ten_lines_of_settings():
    settings_block = re.search(r"<<'EOF'\n(.*?)\nEOF", _guide_script(), re.S).group(1)
    lines = [line for line in settings_block.splitlines() if line.strip() and not line.startswith("#")]
    assert len(lines) <= 10, lines


@pytest.mark.parametrize("step", ["shared_html", "own_carts", "price_change", "audit"])
def test_the_pattern_works_in_a_fresh_project(project, step):
    _run(["python", "check.py", step], project)


def test_a_csrf_token_in_the_shared_template_fails_the_audit_and_raises_in_debug(project):
    template = project / "catalog" / "templates" / "catalog" / "product.html"
    template.write_text(template.read_text().replace("<h1>", "{% csrf_token %}<h1>"))
    audit = _run(["python", "manage.py", "cache_audit", "/products/mug/"], project, check=False)
    assert audit.returncode != 0, audit.stdout
    assert "/products/mug/" in audit.stdout
    assert "CSRF" in audit.stdout
    _run(["python", "check.py", "guard_in_debug"], project)


def test_every_module_imports_with_only_django_installed(project):
    """No module of the app needs more than Django (and what Django itself needs)."""
    site = project / "only-django"
    site.mkdir()
    packages = Path(django.__file__).parents[1]
    for name in ("django", "asgiref", "sqlparse"):
        (site / name).symlink_to(packages / name)
    modules = sorted(
        ".".join(path.relative_to(project).with_suffix("").parts)
        for path in (project / "pagecache").rglob("*.py")
    )
    script = (
        "import django; django.setup()\n"
        "import importlib\n"
        f"for name in {modules!r}: importlib.import_module(name)\n"
        "import redis\n"  # proves the isolation: this one must fail
    )
    # -S: no site-packages; PYTHONPATH: only Django (and what it needs) and the project.
    only_django = {"PYTHONPATH": f"{site}:{project}"}
    result = _run([sys.executable, "-S", "-c", script], project, env=only_django, check=False)
    assert "No module named 'redis'" in result.stderr, result.stderr  # every pagecache module imported first
