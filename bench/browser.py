"""What a real browser sends per page view: headless Chromium through a stack, requests counted.

bench/run.py calls `page_views()` against a running stack. Chromium (/usr/bin/chromium, through
/usr/bin/chromedriver, spoken to over WebDriver's JSON protocol with the standard library: nothing
is downloaded) browses product pages as three visitors, each in a fresh profile:

    new visitor        no cookie at all
    visitor with cart  adds one product with the page's own form, then browses without changing it
    stale hint         the same browser once its hint's refresh time has passed

The counts come from the servers, not from the browser: the requests Varnish took from the client
(varnishstat MAIN.client_req) and the requests that reached Django (Nginx's access log, by path).
"""

import json
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
FLAGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
    "--disable-background-networking", "--disable-component-update", "--no-first-run",
]
# After a page has loaded: long enough for the script's fetch, if it makes one, to reach Nginx.
SETTLE_SECONDS = 0.5

_HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def available():
    """Tell whether Chromium and its driver are installed."""
    return Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()


def chromium_version():
    """Return what `chromium --version` says, or None."""
    try:
        answer = subprocess.run([CHROMIUM, "--version"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return None
    return answer.stdout.strip() or None


class WebDriver:
    """A chromedriver process and one Chromium session in a fresh profile, both ended on close."""

    def __init__(self, log_path):
        self.profile = tempfile.mkdtemp(prefix="bench-chromium-")
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        with open(log_path, "ab") as log:
            self.driver = subprocess.Popen([CHROMEDRIVER, f"--port={self.port}"], stdout=log,
                                           stderr=subprocess.STDOUT, start_new_session=True)
        self.session = None
        try:
            self._wait_ready()
            options = {"binary": CHROMIUM, "args": [*FLAGS, f"--user-data-dir={self.profile}"]}
            answer = self._call("POST", "/session",
                                {"capabilities": {"alwaysMatch": {"goog:chromeOptions": options}}})
            self.session = answer["sessionId"]
        except BaseException:
            self.close()
            raise

    def _wait_ready(self, timeout=20):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if self._call("GET", "/status").get("ready"):
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError("chromedriver did not start")

    def _call(self, method, path, body=None, timeout=60):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        with _HTTP.open(request, timeout=timeout) as response:
            return json.loads(response.read())["value"]

    def get(self, url):
        """Load `url` and wait until it has loaded, then a little for the script's requests."""
        self._call("POST", f"/session/{self.session}/url", {"url": url})
        time.sleep(SETTLE_SECONDS)

    def run(self, script, *args):
        """Run JavaScript in the page; return its value."""
        return self._call("POST", f"/session/{self.session}/execute/sync", {"script": script, "args": list(args)})

    def click(self, selector):
        element = self._call("POST", f"/session/{self.session}/element", {"using": "css selector", "value": selector})
        self._call("POST", f"/session/{self.session}/element/{next(iter(element.values()))}/click", {})

    def wait_for(self, script, timeout=10):
        """Wait until `script` returns something true; return it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = self.run(script)
            if value:
                return value
            time.sleep(0.1)
        raise RuntimeError(f"timed out waiting for: {script}")

    def close(self):
        try:
            if self.session:
                self._call("DELETE", f"/session/{self.session}", timeout=20)
        except OSError:
            pass
        finally:
            self.driver.terminate()
            try:
                self.driver.wait(10)
            except subprocess.TimeoutExpired:
                self.driver.kill()
            shutil.rmtree(self.profile, ignore_errors=True)


class Counters:
    """The servers' own counts of a stretch of browsing: Varnish's client requests, Nginx's log."""

    def __init__(self, stack):
        self.stack = stack
        self.access_log = stack.log_dir / "nginx-access.log"

    def mark(self):
        return self.stack.varnish_counter("MAIN.client_req"), _size(self.access_log)

    def since(self, mark):
        time.sleep(0.2)  # Nginx writes a line when its answer is sent
        client_req, offset = mark
        django = django_requests(self.access_log, offset)
        return {"sent": self.stack.varnish_counter("MAIN.client_req") - client_req, **django}


def _size(path):
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def django_requests(access_log, offset, end=None):
    """Count the requests that reached Django in an Nginx access log from `offset`: API, pages."""
    with open(access_log, "rb") as log:
        log.seek(offset)
        text = log.read(None if end is None else max(0, end - offset)).decode("utf-8", "replace")
    counts = {"api": 0, "pages": 0, "files": 0}
    for line in text.splitlines():
        try:
            path = line.split('"', 2)[1].split()[1]
        except IndexError:
            continue
        if path.startswith(("/static/", "/media/")):
            counts["files"] += 1  # Nginx answers those from disk: not Django's
            continue
        counts["api" if path.startswith("/api/") else "pages"] += 1
    counts["django"] = counts["api"] + counts["pages"]
    return counts


def _browse(browser, counters, base, paths):
    mark = counters.mark()
    for path in paths:
        browser.get(base + path)
    figures = counters.since(mark)
    figures["views"] = len(paths)
    return figures


_FIND_BADGE = "var b = document.querySelector('[data-cart-count]'); "
_BADGE = _FIND_BADGE + "return b ? b.textContent : null;"
_BADGE_FILLED = _FIND_BADGE + "return b && +b.textContent > 0 ? b.textContent : null;"


def page_views(stack, paths, log_path):
    """Browse `paths` as a new visitor, a visitor with a cart and one whose hint is stale; return counts."""
    base = stack.varnish_url
    counters = Counters(stack)
    result = {"views_per_visitor": len(paths), "flags": FLAGS, "chromium": chromium_version()}
    browser = WebDriver(log_path)
    try:
        # The first view of a new browser fetches the stylesheet, the script and the images too.
        result["first_view"] = _browse(browser, counters, base, paths[:1])
        result["new_visitor"] = _browse(browser, counters, base, paths[1:])
    finally:
        browser.close()
    browser = WebDriver(log_path)
    try:
        browser.get(base + paths[0])
        mark = counters.mark()
        browser.click("form[data-add-to-cart] button[type=submit]")
        badge = browser.wait_for(_BADGE_FILLED)
        result["add_to_cart"] = {**counters.since(mark), "badge": badge}
        result["visitor_with_cart"] = _browse(browser, counters, base, paths[1:])
        result["visitor_with_cart"]["badge"] = browser.run(_BADGE)
        # Past the refresh time: the next view asks the cart API once, whose answer renews the hint.
        browser.run("document.cookie = 'cart_hint=' + arguments[0] + '.1000000000; path=/';", badge)
        result["stale_hint"] = _browse(browser, counters, base, paths[1:])
    finally:
        browser.close()
    return result
