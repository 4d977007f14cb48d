"""What a browser sent: every request of its pages, from Chromium's performance log.

Chromium reports each request as it sends it (`Network.requestWillBeSent`) to the DevTools log that
ChromeDriver keeps for the browser (`goog:loggingPrefs` {"performance": "ALL"}, conftest.py).
Unlike a page's Resource Timing entries, the log spans navigations: it still holds the requests of
pages the browser has left, so a count over several pages misses none. Reading it empties it.
"""

import json
from dataclasses import dataclass
from urllib.parse import urlsplit

# Let the page finish loading and its scripts start what they start before the log is read.
SETTLE = """
const done = arguments[arguments.length - 1];
const finish = () => setTimeout(() => done(true), 300);
if (document.readyState === "complete") { finish(); } else { addEventListener("load", finish); }
"""


# What a script sends: fetch(), XMLHttpRequest, sendBeacon(), EventSource, WebSocket.
SCRIPT_TYPES = {"Fetch", "XHR", "Ping", "EventSource", "WebSocket"}


@dataclass(frozen=True)
class Sent:
    method: str
    path: str
    type: str
    initiator: str
    navigation: bool


def sent_requests(browser, origin):
    """Return the requests the browser sent to `origin` since the last read, in order."""
    browser.execute_async_script(SETTLE)
    sent = []
    for entry in browser.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] != "Network.requestWillBeSent":
            continue
        params = message["params"]
        url = urlsplit(params["request"]["url"])
        if f"{url.scheme}://{url.netloc}" != origin:
            continue
        path = url.path + (f"?{url.query}" if url.query else "")
        # A page load is the request its document loader is named after.
        navigation = params.get("type") == "Document" or params["requestId"] == params.get("loaderId")
        initiator = params.get("initiator", {}).get("type", "")
        sent.append(Sent(params["request"]["method"], path, params.get("type", ""), initiator, navigation))
    return sent


def script_requests(browser, origin):
    """Return (method, path) of what the pages' scripts asked `origin` for since the last read.

    A request counts if a script made it or if it is of a kind only scripts send; so does any
    request for a private URL that is not a page load. Pages, their images, the script and the
    stylesheet do not.
    """
    return [
        (sent.method, sent.path)
        for sent in sent_requests(browser, origin)
        if sent.initiator == "script"
        or sent.type in SCRIPT_TYPES
        or (not sent.navigation and sent.path.startswith(("/api/", "/cart/")))
    ]
