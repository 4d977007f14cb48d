"""HTTP as a polite visitor: one request at a time, a pause between them, never off the base URL."""

import socket
import ssl
import time
from urllib.parse import urljoin, urlsplit

import requests
import urllib3

USER_AGENT = "corner-shop-e2e/1 (+docs/e2e.md)"
TIMEOUT = 20  # seconds for one answer: a healthy edge answers in well under one
MAX_REDIRECTS = 5


class OffBase(RuntimeError):
    """A request for a URL outside the base: the run never makes one."""


class Pacer:
    """Space every request of a run, from any client or browser, `delay` seconds apart."""

    def __init__(self, delay):
        self.delay = delay
        self.count = 0
        self._last = 0.0

    def wait(self):
        """Sleep until `delay` has passed since the last request ended; count the next one."""
        pause = self._last + self.delay - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        self.count += 1

    def done(self):
        """Note that a request ended: the next pause counts from here."""
        self._last = time.monotonic()


class Client:
    """One visitor: a cookie jar of its own; every request paced and kept under the base URL."""

    def __init__(self, settings, pacer, name="visitor"):
        self.base = settings.base
        self.pacer = pacer
        self.session = requests.Session()
        # The answers must describe the deployment, not a proxy or a .netrc from the environment.
        self.session.trust_env = False
        self.session.verify = not settings.insecure
        if settings.insecure:
            urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
        self.session.headers["User-Agent"] = f"{USER_AGENT} {name}"

    @property
    def cookies(self):
        return self.session.cookies

    def get(self, url, **kwargs):
        return self.request("GET", url, **kwargs)

    def post(self, url, **kwargs):
        return self.request("POST", url, **kwargs)

    def request(self, method, url, follow=True, **kwargs):
        """Send one request (and its redirects under the base when `follow`); return the last answer."""
        for _ in range(MAX_REDIRECTS + 1):
            if not self.base.within(url):
                raise OffBase(f"refusing {url}: not under {self.base}")
            self.pacer.wait()
            try:
                response = self.session.request(method, url, allow_redirects=False, timeout=TIMEOUT, **kwargs)
            finally:
                self.pacer.done()
            target = urljoin(response.url, response.headers.get("Location", ""))
            if not (follow and response.is_redirect and self.base.within(target)):
                return response
            # After a POST's 302/303 a browser asks for the next page with a plain GET.
            method, url = "GET", target
            kwargs = {"headers": kwargs["headers"]} if "headers" in kwargs else {}
        return response


def raw_head(settings, pacer, url):
    """Send HEAD on a socket of its own; return (status, header block, bytes that came after it).

    requests never reads a body after HEAD, so it cannot tell whether one was sent: this can.
    """
    parts = urlsplit(url)
    if not settings.base.within(url):
        raise OffBase(f"refusing {url}: not under {settings.base}")
    https = parts.scheme == "https"
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    request = (
        f"HEAD {target} HTTP/1.1\r\nHost: {parts.netloc}\r\nUser-Agent: {USER_AGENT} head\r\n"
        "Accept: text/html\r\nConnection: close\r\n\r\n"
    )
    pacer.wait()
    try:
        with socket.create_connection((parts.hostname, parts.port or (443 if https else 80)), TIMEOUT) as raw:
            sock = _tls(settings, raw, parts.hostname) if https else raw
            sock.sendall(request.encode("ascii"))
            data = _read_until_closed(sock)
    finally:
        pacer.done()
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, _, header_block = head.decode("latin-1").partition("\r\n")
    status = int(status_line.split()[1]) if len(status_line.split()) > 1 else 0
    return status, header_block, body


def _tls(settings, sock, hostname):
    context = ssl.create_default_context()
    if settings.insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context.wrap_socket(sock, server_hostname=hostname)


def _read_until_closed(sock, linger=1.5):
    """Read until the server closes; once the headers are in, wait at most `linger` s for more."""
    chunks = []
    while True:
        if b"\r\n\r\n" in b"".join(chunks):
            # A server that keeps the connection open despite Connection: close has said all by now.
            sock.settimeout(linger)
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)
