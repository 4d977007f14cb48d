"""Edges in front of the stack for the e2e tests: a faithful proxy, one that mounts the store under a
base path, and three that break the cache contract the way real misconfigurations do.

    with PassThroughEdge(stack.varnish_port) as edge:
        run(edge.url)                 # http://127.0.0.1:<free port>/, every answer copied as is

Each is a threaded HTTP/1.1 proxy on 127.0.0.1 that forwards the request, headers and body to
Varnish and copies back the status, headers and body; a subclass changes one thing.
"""

import gzip
import http.client
import re
import ssl
import subprocess
import threading
from dataclasses import dataclass, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# Headers about one connection, never forwarded (RFC 9110, 7.6.1); Content-Length is set anew.
HOP_BY_HOP = {
    "connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade",
    "proxy-authorization", "proxy-authenticate",
}  # fmt: skip
# The store's private and file URLs (deploy/varnish/shop.vcl, deploy/nginx/shop.conf): the rest is shared.
NOT_SHARED = re.compile(r"^/(admin|cart|api|static|media)/|^/healthz")


@dataclass(frozen=True)
class Answer:
    status: int
    reason: str
    headers: tuple  # (name, value) pairs, repeated names kept (Set-Cookie)
    body: bytes

    def header(self, name, default=None):
        return next((value for key, value in self.headers if key.lower() == name.lower()), default)

    def with_header(self, name, value):
        """Return the answer with header `name` set to `value` (replacing every copy of it)."""
        kept = tuple((key, old) for key, old in self.headers if key.lower() != name.lower())
        return replace(self, headers=(*kept, (name, value)))


class _Relay(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as browsers expect of an edge

    def _relay(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        answer = self.server.answer(self.command, self.path, self.headers, body)
        # send_response_only: no Server or Date of this proxy's own next to the upstream's.
        self.send_response_only(answer.status, answer.reason)
        for name, value in answer.headers:
            if name.lower() not in HOP_BY_HOP and (name.lower() != "content-length" or self.command == "HEAD"):
                self.send_header(name, value)
        if self.command != "HEAD":
            self.send_header("Content-Length", str(len(answer.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(answer.body)

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = _relay

    def log_message(self, *args):
        pass


class PassThroughEdge(ThreadingHTTPServer):
    """Forward everything to Varnish on `upstream_port` and copy the answer back unchanged."""

    daemon_threads = True

    def __init__(self, upstream_port):
        super().__init__(("127.0.0.1", 0), _Relay)
        self.upstream_port = upstream_port
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)

    @property
    def url(self):
        return f"http://127.0.0.1:{self.server_port}/"

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc_info):
        self.shutdown()
        self.server_close()

    def answer(self, method, path, headers, body):
        """Return the answer for one request: what Varnish says, through rewrite()."""
        return self.rewrite(path, self.forward(method, path, headers, body))

    def forward(self, method, path, headers, body):
        connection = http.client.HTTPConnection("127.0.0.1", self.upstream_port, timeout=30)
        try:
            # The client's own Host and Accept-Encoding, as a transparent edge sends them.
            connection.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
            for name, value in headers.items():
                if name.lower() not in HOP_BY_HOP:
                    connection.putheader(name, value)
            connection.endheaders(body)
            response = connection.getresponse()
            return Answer(response.status, response.reason, tuple(response.getheaders()), response.read())
        finally:
            connection.close()

    def rewrite(self, path, answer):
        return answer


class TlsEdge(PassThroughEdge):
    """Terminates TLS with a self-signed certificate, as a staging server does, then passes through."""

    def __init__(self, upstream_port, folder):
        super().__init__(upstream_port)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(*self_signed_certificate(folder))
        # The handshake happens in each request's thread, on its first read, not in accept().
        self.socket = context.wrap_socket(self.socket, server_side=True, do_handshake_on_connect=False)

    @property
    def url(self):
        return f"https://127.0.0.1:{self.server_port}/"

    def handle_error(self, request, client_address):
        """Stay quiet: a client that refuses the certificate hangs up mid-handshake, on purpose."""


def self_signed_certificate(folder):
    """Write a self-signed certificate for 127.0.0.1 and its key into `folder`; return their paths."""
    cert, key = folder / "edge.crt", folder / "edge.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=30,
    )  # fmt: skip
    return str(cert), str(key)


class HidingEdge(PassThroughEdge):
    """Drops some headers from every answer, as a CDN that does not pass Varnish's X-Cache on."""

    def __init__(self, upstream_port, hidden):
        super().__init__(upstream_port)
        self.hidden = {name.lower() for name in hidden}

    def rewrite(self, path, answer):
        return replace(answer, headers=tuple((k, v) for k, v in answer.headers if k.lower() not in self.hidden))


class CookieLeakingEdge(PassThroughEdge):
    """(a) Adds a Set-Cookie and Vary: Cookie to shared pages, as a session-reading middleware would."""

    def rewrite(self, path, answer):
        if NOT_SHARED.match(path) or "text/html" not in answer.header("Content-Type", ""):
            return answer
        vary = answer.header("Vary")
        answer = answer.with_header("Vary", f"{vary}, Cookie" if vary else "Cookie")
        return replace(answer, headers=(*answer.headers, ("Set-Cookie", "edge_visitor=1; Path=/")))


class SharedCartEdge(PassThroughEdge):
    """(b) Keeps the first answer of GET /api/cart/ and replays it to everyone, headers and all."""

    def __init__(self, upstream_port):
        super().__init__(upstream_port)
        self._lock = threading.Lock()
        self._cart = None

    def answer(self, method, path, headers, body):
        if method != "GET" or path.split("?")[0] != "/api/cart/":
            return super().answer(method, path, headers, body)
        with self._lock:
            if self._cart is None:
                self._cart = self.forward(method, path, headers, body)
            return self._cart


class MutableStaticEdge(PassThroughEdge):
    """(c) Strips `immutable` from the static files' Cache-Control, as a CDN's own header rule might."""

    def rewrite(self, path, answer):
        value = answer.header("Cache-Control")
        if not path.startswith("/static/") or value is None:
            return answer
        kept = [part.strip() for part in value.split(",") if part.strip().lower() != "immutable"]
        return answer.with_header("Cache-Control", ", ".join(kept))


class BasePathEdge(PassThroughEdge):
    """Serves the store under /shop/, as a reverse proxy that mounts it there with its links rewritten.

    What Django does itself behind such a proxy (SCRIPT_NAME): every path it writes starts with /shop/.
    Anything outside /shop/ is a 404 of this proxy's own, so a check that leaves the base path fails.
    """

    PREFIX = "/shop"
    # The attributes the store's HTML writes its own paths in.
    _PATHS_IN_HTML = re.compile(rb'(\s(?:href|src|action|data-cart-url|data-cart-items-url)=")/(?!/)')

    @property
    def url(self):
        return f"http://127.0.0.1:{self.server_port}{self.PREFIX}/"

    def answer(self, method, path, headers, body):
        if not path.startswith(self.PREFIX + "/"):
            return Answer(404, "Not Found", (("Content-Type", "text/plain"),), b"not under /shop/\n")
        upstream_path = path[len(self.PREFIX) :]
        return self.rewrite(upstream_path, self.forward(method, upstream_path, headers, body))

    def rewrite(self, path, answer):
        location = answer.header("Location")
        if location and location.startswith("/") and not location.startswith("//"):
            answer = answer.with_header("Location", self.PREFIX + location)
        if "text/html" not in answer.header("Content-Type", "") or not answer.body:
            return answer
        zipped = (answer.header("Content-Encoding") or "").lower() == "gzip"
        html = gzip.decompress(answer.body) if zipped else answer.body
        html = self._PATHS_IN_HTML.sub(rb"\1" + self.PREFIX.encode() + b"/", html)
        return replace(answer, body=gzip.compress(html, mtime=0) if zipped else html)
