"""The base URL every request is joined to, and the rule that keeps a run under it."""

from urllib.parse import urldefrag, urljoin, urlsplit


class UsageError(ValueError):
    """A command line or environment the run cannot start with (exit status 2)."""


class BaseUrl:
    """The deployment's root, e.g. https://example.com/shop/: every URL is joined to it."""

    def __init__(self, url):
        parts = urlsplit(url.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise UsageError(f"{url!r} is not a full URL: give its scheme and host, e.g. https://shop.example/")
        # A base path names a folder: /shop and /shop/ are the same root.
        path = parts.path if parts.path.endswith("/") else parts.path + "/"
        self.scheme = parts.scheme
        self.netloc = parts.netloc.lower()
        self.path = path
        self.url = f"{self.scheme}://{self.netloc}{self.path}"

    @property
    def origin(self):
        """Return scheme://host[:port], what a browser sends as Origin."""
        return f"{self.scheme}://{self.netloc}"

    def join(self, relative):
        """Return the URL of `relative` (a path without its leading slash) under the base."""
        return urljoin(self.url, relative.lstrip("/"))

    def within(self, url):
        """Return whether `url` is on the base's scheme and host, under its path."""
        parts = urlsplit(url)
        return parts.scheme == self.scheme and parts.netloc.lower() == self.netloc and parts.path.startswith(self.path)

    def resolve(self, reference, page_url):
        """Return a link of the page at `page_url` as an absolute URL, or None when it leaves the base."""
        if not reference:
            return None
        absolute = urldefrag(urljoin(page_url, reference.strip())).url
        return absolute if self.within(absolute) else None

    def relative(self, url):
        """Return the part of `url` after the base path ("products/mug/?page=2")."""
        parts = urlsplit(url)
        rest = parts.path[len(self.path) :]
        return rest + (f"?{parts.query}" if parts.query else "")

    def __str__(self):
        return self.url
