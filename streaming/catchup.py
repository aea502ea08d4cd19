"""``/epg/catchup/<channel>.m3u8`` (INTERFACES §4.5): catch-up VOD playlists cut from a relayed
channel's recorded segments. Streaming owns the segments, so the route lives here (the guide in
``epg`` only names its URL)."""
from __future__ import annotations

import datetime as dt

from flask import Blueprint, Response, request

from epg import queries as epg_queries
from portal_server.core.db import utcnow

from . import queries as stream_queries

bp = Blueprint("catchup", __name__, url_prefix="/epg")


@bp.get("/catchup/<xmltv_id>.m3u8")
def catchup(xmltv_id: str):
    """A finished (VOD) playlist of what the channel showed between ``start`` and ``end`` (epoch
    seconds) inside its catch-up window; 404 outside it."""
    ch = epg_queries.channel_by_xmltv_id(xmltv_id)
    if ch is None or not ch.source_url:
        return Response("no such channel\n", 404, mimetype="text/plain")
    try:
        start = dt.datetime.fromtimestamp(int(float(request.args["start"])), dt.UTC)
        end = dt.datetime.fromtimestamp(int(float(request.args["end"])), dt.UTC)
    except (KeyError, ValueError, OverflowError, OSError):
        return Response("give ?start=&end= in epoch seconds\n", 400, mimetype="text/plain")
    now = utcnow()
    if end <= start or start < now - dt.timedelta(hours=ch.catchup_hours) or start >= now \
            or end > now + dt.timedelta(seconds=60):
        return Response("outside the catch-up window\n", 404, mimetype="text/plain")
    text = stream_queries.catchup_playlist(xmltv_id, start, min(end, now),
                                           lambda name: epg_queries.hls_url(xmltv_id, name))
    if text is None:
        return Response("nothing recorded in this window\n", 404, mimetype="text/plain")
    resp = Response(text, mimetype="application/vnd.apple.mpegurl")
    resp.headers["Cache-Control"] = "max-age=60"
    return resp
