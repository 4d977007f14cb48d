"""HTTP the way an attacker writes it: raw bytes on a socket, or from an address outside the ACL.

requests normalises what it sends (it quotes bytes, refuses CR/LF in headers, drops dot
segments in some versions), so the tests that must send exactly these bytes use `raw`.
"""

import socket

from requests.adapters import HTTPAdapter

from tests.stack.fixtures import http_session

# A loopback address that is not in shop.vcl's purgers ACL (127.0.0.1 and ::1 are).
OUTSIDER_ADDRESS = "127.0.0.2"


class RawResponse:
    """The status, headers and body of a raw HTTP/1.1 answer; status None if the server hung up."""

    def __init__(self, data):
        self.data = data
        head, _, self.body = data.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        parts = lines[0].split(b" ", 2)
        self.status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None
        self.headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            self.headers.setdefault(name.strip().lower().decode("latin-1"), value.strip().decode("latin-1"))

    def __repr__(self):
        return f"<RawResponse {self.status} {self.data[:120]!r}>"


def raw(port, request, source=None, timeout=10):
    """Send `request` (bytes) as is to 127.0.0.1:`port`; return the answer, read until close."""
    with socket.create_connection(
        ("127.0.0.1", port), timeout=timeout, source_address=(source, 0) if source else None
    ) as sock:
        try:
            sock.sendall(request)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server refused before reading it all; its answer may still be there
        chunks = []
        try:
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except ConnectionResetError:
            pass
    return RawResponse(b"".join(chunks))


def get(path, host="localhost", headers=b""):
    """Return the bytes of a GET of `path` (bytes or str), closing the connection after it."""
    if isinstance(path, str):
        path = path.encode()
    return b"GET " + path + b" HTTP/1.1\r\nHost: " + host.encode() + b"\r\n" + headers + b"Connection: close\r\n\r\n"


class _SourceAddressAdapter(HTTPAdapter):
    def __init__(self, address, **kwargs):
        self._address = address
        super().__init__(**kwargs)

    def init_poolmanager(self, *args, **kwargs):
        kwargs["source_address"] = (self._address, 0)
        super().init_poolmanager(*args, **kwargs)


def outsider_session():
    """Return a requests session whose connections come from OUTSIDER_ADDRESS."""
    session = http_session()
    adapter = _SourceAddressAdapter(OUTSIDER_ADDRESS)
    session.mount("http://", adapter)
    return session
