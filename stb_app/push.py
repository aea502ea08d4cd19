"""Alerts pushed into the portal page, held by nginx (nchan), not by Python.

A TV page opens one WebSocket to ``/tv/v/<code>/push/<a>/<b>`` (its region and the two regions
above it); nginx checks the village key cookie (secure_link, as for the pages) and subscribes the
socket to the channels ``r<code>`` of the chain (nchan multiplexing). An idle page costs nginx a
socket and Python nothing. A feature that changes what pages must show at once adds
``outbox.call("stb_app.push:publish", region_codes, message)``; after the commit it is posted to
nchan's publisher on a Unix socket that only the server's own processes can reach. Messages are
JSON objects with a ``type``; the portal (tv.js ``onPushed``) knows ``{"type": "alert", "op":
"show", "alert": {...a row of alert.json}}`` and ``{"type": "alert", "op": "clear", "id"}``
(portal_server/alerts/tv.py sends them). The page shows or clears the alert at once and
checks ``alert.json`` a few seconds later (jittered), so a missed message heals; without a push
connection (no WebSocket in the browser, refused, dropped) the page keeps its 5 s poll.

Notices (``{"type": "notice", "kind": "content"|"meeting", "op", "id", "title"?, "url"?,
"section"?}``) come from this module's own receivers of the content and meeting signals, through
the outbox (a rollback sends nothing): an item published to a region (city, town or village: the
channels of its targets) puts "新发布：<title>" on its
pages' notice line and refreshes the parts that list items (``data-refresh``); a withdrawn or
expired one refreshes them; a meeting going live puts "<title> 正在直播" there, and takes it off
when it ends. A page without push sees the same on its next load.
"""
from __future__ import annotations

import http.client
import json
import logging
import socket

from flask import current_app

from portal_server.core import outbox, signals

log = logging.getLogger(__name__)

#: Channel id of a region's push channel (the nginx side names it the same way: ``r$code``).
CHANNEL = "r{code}"
#: Padding code for a chain shorter than three levels (a town or city terminal): never published.
NO_REGION = "000000000000"


def subscribe_path(region_code: str, chain: list[str]) -> str:
    """The page's push URL: its own region in the path (checked against the cookie) and the two
    regions above it (city, town), padded for a shorter chain."""
    above = [c for c in chain if c != region_code][-2:]
    above = [NO_REGION] * (2 - len(above)) + above
    return f"/tv/v/{region_code}/push/{above[0]}/{above[1]}"


class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float):
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self._path)


def publish(region_codes, message: dict) -> int:
    """Post ``message`` to the push channel of every region in ``region_codes``; returns how many
    nginx took. Best effort: without nginx (development, tests without it) nothing happens, and a
    page that misses a message still polls."""
    sock = current_app.config["SETTINGS"].push_socket
    if not sock.exists():
        return 0
    body = json.dumps(message, ensure_ascii=False, default=str).encode()
    done = 0
    try:
        conn = _UnixHTTPConnection(str(sock), timeout=2.0)
        for code in region_codes:
            conn.request("POST", "/_push/" + CHANNEL.format(code=code), body=body,
                         headers={"Content-Type": "application/json", "Accept": "text/json"})
            resp = conn.getresponse()
            resp.read()
            done += resp.status in (200, 201, 202)
        conn.close()
    except OSError:
        log.warning("push: nginx publisher at %s unavailable; pages fall back to polling", sock)
    return done


# Notices: content and meetings (their signals carry the notice of INTERFACES §5) ------------------

def content_published(sender, region_codes=(), section=None, notice=None, targets=None, **_kw) -> None:
    """Receiver of ``content-published`` (sender: the content id). Sent on the channels of the
    regions the item is aimed at: every page listens to its region and the two above, so a town-wide
    item reaches the town's villages and its town hall in one message, and nobody twice."""
    msg = {"type": "notice", "kind": "content", "op": "published", "id": sender, "section": section}
    if notice:
        msg.update(title=notice.get("title"), url=notice.get("url"))
    outbox.call("stb_app.push:publish", list(targets or region_codes), msg)


def content_unpublished(sender, region_codes=(), reason=None, targets=None, **_kw) -> None:
    """Receiver of ``content-unpublished``: the pages that list the item refresh."""
    outbox.call("stb_app.push:publish", list(targets or region_codes),
                {"type": "notice", "kind": "content", "op": "withdrawn", "id": sender, "reason": reason})


def meeting_changed(sender, region_code=None, state=None, notice=None, **_kw) -> None:
    """Receiver of ``meeting-state-changed``: live → on the notice line; ended or cancelled → off it."""
    if not region_code or state not in ("live", "ended", "cancelled"):
        return
    msg = {"type": "notice", "kind": "meeting", "op": "live" if state == "live" else "ended", "id": sender}
    if state == "live" and notice:
        msg.update(title=notice.get("title"), url=notice.get("url"))
    outbox.call("stb_app.push:publish", [region_code], msg)


_connected = False


def connect_signals() -> None:
    global _connected
    if _connected:
        return
    _connected = True
    signals.content_published.connect(content_published, weak=False)
    signals.content_unpublished.connect(content_unpublished, weak=False)
    signals.meeting_state_changed.connect(meeting_changed, weak=False)
