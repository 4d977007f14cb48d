"""Django's own cache tests, run against our backends (pagecache/backends.py).

pagecache.backends subclasses Django's DatabaseCache, RedisCache and PyMemcacheCache to do less
work per request. Apart from that they must stay Django's backends in behaviour, and Django's own
test suite knows that behaviour best. So this runs its `cache` tests (tests/cache of the sdist of
the Django in the venv, about 600 tests) with the backend strings pointed at ours:

1. the sdist is downloaded once into .cache/django-cache-suite/ (git-ignored), its tests/ extracted;
2. a scratch copy of tests/ gets our backend strings in cache/tests.py and a settings module: the
   database of DATABASE_URL (SQLite in memory by default, as Django's suite runs it; for mysql://...
   the server's test_django_cache_suite and test_django_cache_suite_other), the machine's Redis
   (db 14) and a memcached of our own on a free port, so that Django runs its Redis and memcached
   tests (it skips them when settings.CACHES has no such backend);
3. Django's runtests.py runs `cache` in one process and writes every outcome to a JSON file.

It fails unless every test passed but the EXPECTED_DIFFERENCES, which must each fail (so the list
cannot go stale), and unless the tests of our three backends all ran. `make test` runs it on its
DATABASE_URL, .ci/run once more on SQLite. By hand (about 95 s, mostly Django's own sleeps):

    .venv/bin/python -m tests.django_cache_suite.run
    DATABASE_URL=mysql://root@127.0.0.1:3306/shop .venv/bin/python -m tests.django_cache_suite.run

The output of runtests.py is kept in .cache/django-cache-suite/<database>.log.
"""

import getpass
import json
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
from collections import Counter
from contextlib import contextmanager
from pathlib import Path

import django
import environ
import redis
from django.test.runner import DiscoverRunner
from django.test.utils import iter_test_cases

ROOT = Path(__file__).resolve().parents[2]
CACHE_DIR = ROOT / ".cache" / "django-cache-suite"
# The machine's Redis, in a database nobody else uses (pytest's run uses 15, bench 13): Django's
# tests flush it. The database goes in OPTIONS: redis-py lets one in the URL win over OPTIONS, and
# Django's test_redis_pool_options checks that OPTIONS={"db": 5} reaches the pool.
REDIS = {"LOCATION": "redis://127.0.0.1:6379", "OPTIONS": {"db": 14}}
TIMEOUT_SECONDS = 180  # it takes about 95 s, mostly Django's sleeps waiting for expiry

# Replaced in cache/tests.py as whole quoted strings: its mock of "...redis.RedisCacheClient.get_client"
# stays Django's.
BACKENDS = {
    "django.core.cache.backends.db.DatabaseCache": "pagecache.backends.DatabaseCache",
    "django.core.cache.backends.redis.RedisCache": "pagecache.backends.RedisCache",
    "django.core.cache.backends.memcached.PyMemcacheCache": "pagecache.backends.PyMemcacheCache",
}

# Tests of Django's that our backends fail on purpose; each must fail, or the run fails.
EXPECTED_DIFFERENCES = {
    "cache.tests.PyMemcacheCacheTests.test_close": "our close() keeps the connection (Django ticket #11331)",
    "cache.tests.RedisCacheTests.test_cache_client_class": "wants Django's own RedisCacheClient; ours subclasses it",
    "cache.tests.RedisCacheTests.test_incr_write_connection": "mocks Django's get_client, which our client overrides",
}

# The test classes of our backends: each must run, skipping only where Django skips for any server.
OUR_TEST_CLASSES = {
    "cache.tests.DBCacheTests",
    "cache.tests.DBCacheWithTimeZoneTests",
    "cache.tests.CreateCacheTableForDBCacheTests",
    "cache.tests.RedisCacheTests",
    "cache.tests.PyMemcacheCacheTests",
}
ALLOWED_SKIPS = {"Culling isn't implemented."}  # Redis and memcached have no MAX_ENTRIES

SETTINGS = """\
# Written by tests/django_cache_suite/run.py for Django's runtests.py (as its test_sqlite.py).
DATABASES = {databases!r}
CACHES = {caches!r}
SECRET_KEY = "django_tests_secret_key"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
USE_TZ = False
TEST_RUNNER = "tests.django_cache_suite.run.RecordingRunner"
"""

FAILED = {"failure", "error", "unexpected success"}  # expected failures (Django's own) count as passed


def main():
    started = time.monotonic()
    version = django.get_version()
    database = environ.Env.db_url_config(os.environ.get("DATABASE_URL") or "sqlite://:memory:")
    vendor = database["ENGINE"].rsplit(".", 1)[-1]
    databases = database_settings(database)
    check_redis()
    with tempfile.TemporaryDirectory(prefix="django-cache-suite-") as scratch, memcached() as memcached_location:
        tests = Path(shutil.copytree(django_tests(version), Path(scratch) / "tests"))
        point_at_our_backends(tests / "cache" / "tests.py")
        caches = {
            "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
            "redis": {"BACKEND": BACKENDS["django.core.cache.backends.redis.RedisCache"], **REDIS},
            "memcached": {
                "BACKEND": BACKENDS["django.core.cache.backends.memcached.PyMemcacheCache"],
                "LOCATION": memcached_location,
            },
        }
        (tests / "pagecache_suite_settings.py").write_text(SETTINGS.format(databases=databases, caches=caches))
        report = run_django_tests(tests, vendor)
    sys.exit(judge(report, version, vendor, time.monotonic() - started))


def database_settings(database):
    """DATABASES for Django's suite: in-memory SQLite, or two test databases of ours on MySQL/MariaDB."""
    if database["ENGINE"] == "django.db.backends.sqlite3":
        return {alias: {"ENGINE": "django.db.backends.sqlite3"} for alias in ("default", "other")}
    if database["ENGINE"] != "django.db.backends.mysql":
        sys.exit(f"django_cache_suite: no settings for {database['ENGINE']} (SQLite or MySQL/MariaDB)")
    databases = {}
    for alias, name in (("default", "django_cache_suite"), ("other", "django_cache_suite_other")):
        databases[alias] = {
            **database,
            "NAME": name,  # never created: runtests.py works in test_<name>, not in pytest's test_shop
            # The options of config/settings.py.
            "OPTIONS": {
                **database.get("OPTIONS", {}),
                "charset": "utf8mb4",
                "init_command": "SET sql_mode='STRICT_TRANS_TABLES'",
            },
            "TEST": {"NAME": f"test_{name}", "CHARSET": "utf8mb4", "COLLATION": "utf8mb4_unicode_ci"},
        }
    return databases


def check_redis():
    try:
        redis.Redis.from_url(REDIS["LOCATION"], socket_timeout=5).ping()
    except redis.RedisError as error:
        sys.exit(f"django_cache_suite: Redis at {REDIS['LOCATION']} does not answer ({error}); see .ci/run")


@contextmanager
def memcached():
    """A memcached of our own on a free port for the duration; yields its LOCATION, stops it by PID."""
    binary = shutil.which("memcached", path="/usr/bin:/usr/local/bin")
    if binary is None:
        sys.exit("django_cache_suite: memcached is not installed (make test-debs installs it)")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # -u: memcached refuses to run as root unless told which user to be.
    command = [binary, "-l", "127.0.0.1", "-p", str(port), "-U", "0", "-m", "64", "-u", getpass.getuser()]
    process = subprocess.Popen(command, stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if process.poll() is not None:
                    sys.exit(f"django_cache_suite: memcached exited with {process.returncode}")
                time.sleep(0.1)
        else:
            sys.exit(f"django_cache_suite: memcached does not answer on port {port}")
        yield f"127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def django_tests(version):
    """The tests/ folder of Django's sdist of `version`, downloaded and extracted once."""
    folder = CACHE_DIR / f"django-{version}"
    if not (folder / "tests" / "runtests.py").exists():
        CACHE_DIR.mkdir(parents=True, exist_ok=True)
        # In folders of our own first, renamed into place, so that two runs never see half a copy.
        with tempfile.TemporaryDirectory(dir=CACHE_DIR) as download:
            subprocess.run(
                [sys.executable, "-m", "pip", "download", f"Django=={version}", "--no-deps", "--no-binary", ":all:"]
                + ["--disable-pip-version-check", "-q", "-d", download],
                check=True,
            )
            (sdist,) = Path(download).glob("*.tar.gz")
            with tarfile.open(sdist) as archive:
                (top,) = {member.name.split("/", 1)[0] for member in archive.getmembers()}
                members = [member for member in archive.getmembers() if member.name.startswith(f"{top}/tests/")]
                archive.extractall(download, members=members, filter="data")
            try:
                os.rename(Path(download) / top, folder)
            except OSError:  # another run got there first
                pass
    return folder / "tests"


def point_at_our_backends(path):
    """Replace Django's backend strings with ours in the test module at `path`."""
    source = path.read_text()
    for django_backend, ours in BACKENDS.items():
        if f'"{django_backend}"' not in source:
            sys.exit(f"django_cache_suite: {path.name} no longer names {django_backend}; update BACKENDS")
        source = source.replace(f'"{django_backend}"', f'"{ours}"')
    path.write_text(source)


def run_django_tests(tests, vendor):
    """Run Django's `cache` tests in `tests`; return the JSON report of RecordingRunner."""
    result = tests / "result.json"
    log = CACHE_DIR / f"{vendor}.log"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        "DJANGO_CACHE_SUITE_RESULT": str(result),
    }
    env.pop("DJANGO_SETTINGS_MODULE", None)
    command = [sys.executable, "runtests.py", "cache", "--settings=pagecache_suite_settings"]
    command += ["--parallel=2", "--noinput", "--verbosity=2"]  # one process a core (tblib)
    with open(log, "w") as output:
        try:
            subprocess.run(
                command, cwd=tests, env=env, stdout=output, stderr=subprocess.STDOUT, timeout=TIMEOUT_SECONDS
            )
        except subprocess.TimeoutExpired:
            sys.exit(f"django_cache_suite: Django's cache tests took over {TIMEOUT_SECONDS} s; see {log}")
    if not result.exists():
        sys.exit(f"django_cache_suite: Django's cache tests did not finish; see {log}:\n{log.read_text()[-3000:]}")
    report = json.loads(result.read_text())
    report["log"] = str(log)
    return report


def judge(report, version, vendor, seconds):
    """Print a summary; return the exit status (0 when all is as expected)."""
    outcomes = report["outcomes"]
    failed = {test for test, (kind, _) in outcomes.items() if kind in FAILED}
    unexpected = sorted(failed - set(EXPECTED_DIFFERENCES))
    stale = sorted(set(EXPECTED_DIFFERENCES) - failed)
    skipped = {test: reason for test, (kind, reason) in outcomes.items() if kind == "skipped"}
    passed = [test for test in report["tests"] if test not in outcomes]
    passed_by_class = Counter(test.rsplit(".", 1)[0] for test in passed)

    problems = [f"unexpected failure: {test}\n{outcomes[test][1]}" for test in unexpected]
    problems += [f"expected to fail but did not: {test} ({EXPECTED_DIFFERENCES[test]})" for test in stale]
    problems += [
        f"no test of {test_class} passed" for test_class in sorted(OUR_TEST_CLASSES) if not passed_by_class[test_class]
    ]
    problems += [
        f"skipped: {test} ({reason})"
        for test, reason in sorted(skipped.items())
        if test.rsplit(".", 1)[0] in OUR_TEST_CLASSES and reason not in ALLOWED_SKIPS
    ]

    for problem in problems:
        print(f"django_cache_suite: {problem}")
    print(
        f"Django {version} cache tests on {vendor} against pagecache.backends, in {seconds:.0f} s: "
        f"{len(passed)} passed, {len(failed) - len(unexpected)} expected differences, "
        f"{len(unexpected)} unexpected failures, {len(skipped)} skipped (log: {report['log']})"
    )
    ours = ", ".join(f"{name.rsplit('.', 1)[1]} {passed_by_class[name]}" for name in sorted(OUR_TEST_CLASSES))
    print(f"  passed, of our backends: {ours}")
    for reason, count in sorted(Counter(skipped.values()).items()):
        print(f"  skipped {count}: {reason}")
    return 1 if problems else 0


class RecordingRunner(DiscoverRunner):
    """Django's test runner, writing the outcome of each test to $DJANGO_CACHE_SUITE_RESULT."""

    def run_suite(self, suite, **kwargs):
        tests = [test.id() for test in iter_test_cases(suite)]  # before the run, which empties the suite
        result = super().run_suite(suite, **kwargs)
        outcomes = {}
        for kind, entries in (
            ("failure", result.failures),
            ("error", result.errors),
            ("skipped", result.skipped),
            ("unexpected success", [(test, "") for test in result.unexpectedSuccesses]),
        ):
            for test, text in entries:
                # A failed subTest counts for its test; a failed setUpClass has an id of its own.
                outcomes.setdefault(getattr(test, "test_case", test).id(), (kind, text))
        report = {"tests": tests, "outcomes": outcomes}
        Path(os.environ["DJANGO_CACHE_SUITE_RESULT"]).write_text(json.dumps(report))
        return result


if __name__ == "__main__":
    main()
