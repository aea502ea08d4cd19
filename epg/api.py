"""The guide over HTTP: ``/epg/xmltv.xml`` (XMLTV, +0800 times), ``/epg/channels.m3u`` (tvg-id =
XMLTV channel id, Kodi catch-up attributes), ``/epg/live/<channel>.m3u8`` (a village hall channel →
its live meeting), ``GET /api/v1/epg/now-next``
and the relayed channels ``/api/v1/channels`` (INTERFACES §4.5)."""
from __future__ import annotations

import datetime as dt

from flask import Blueprint, Response, g, redirect, request
from pydantic import BaseModel, Field

from portal_server.core import audit, clock
from portal_server.core.api import bad_request, body, iso, make_blueprint, not_found, page_args
from portal_server.core.auth import (
    api_user_required,
    bearer_user,
    request_terminal,
    user_or_terminal,
)
from portal_server.core.db import session

from . import operations as ops
from . import queries

bp = Blueprint("epg", __name__, url_prefix="/epg")
api_bp = make_blueprint("epg_api", __name__, "/epg")
channels_bp = make_blueprint("channels_api", __name__, "/channels")


@bp.get("/xmltv.xml")
def xmltv_xml():
    """The programme guide in XMLTV for ``?days=`` (1–14, default 7) from today."""
    try:
        days = int(request.args.get("days", 7))
    except ValueError:
        return Response("days must be an integer\n", 400, mimetype="text/plain")
    if not 1 <= days <= 14:
        return Response("days must be 1–14\n", 400, mimetype="text/plain")
    resp = Response(queries.xmltv_document(days), mimetype="application/xml")
    resp.headers["Cache-Control"] = "max-age=300"
    return resp


@bp.get("/channels.m3u")
def channels_m3u():
    """Extended M3U of every channel (a box's token limits village halls to its own)."""
    term = request_terminal()
    region = term.region_codes()[-1] if term is not None and term.region_codes() else None
    resp = Response(queries.m3u_document(region), mimetype="audio/x-mpegurl")
    resp.headers["Content-Disposition"] = 'inline; filename="channels.m3u"'
    return resp


@bp.get("/live/<xmltv_id>.m3u8")
def live_channel(xmltv_id: str):
    """A village hall channel plays its live meeting (404 when nothing is live): a box or staff
    get a signed, expiring URL; anybody else 401 (the guide lists meetings to everyone)."""
    if request_terminal() is None and bearer_user() is None:
        return Response("a box token or a staff token is required\n", 401, mimetype="text/plain")
    url = queries.live_meeting_url(xmltv_id)
    if url is None:
        return Response("nothing live on this channel\n", 404, mimetype="text/plain")
    return redirect(url, 302)


def _programme_json(p: dict | None) -> dict | None:
    if p is None:
        return None
    from portal_server.core.api import iso
    return {"title": p["title"], "start": iso(p["start"]), "stop": iso(p["stop"]), "category": p.get("category"),
            "meeting_id": p.get("meeting_id"), "url": p.get("url")}


@api_bp.get("/now-next")
@user_or_terminal
def now_next():
    """Now and next on every channel (``?channel=`` xmltv id to restrict, repeatable)."""
    ids = request.args.getlist("channel") or None
    items = [{"id": c["id"], "number": c["number"], "name": c["name"], "kind": c["kind"], "url": c["url"],
              "now": _programme_json(c["now"]), "next": _programme_json(c["next"])}
             for c in queries.now_next(channel_ids=ids)]
    if ids and not items:
        raise not_found("channel")
    return {"items": items, "total": len(items), "page": 1, "per_page": len(items)}


@api_bp.get("/programmes")
@user_or_terminal
def programmes():
    """Programmes of one ``channel`` (xmltv id) for ``days`` (1–7) from today."""
    cid = request.args.get("channel")
    if not cid:
        raise bad_request("give ?channel=", field="channel")
    try:
        days = int(request.args.get("days", 7))
    except ValueError:
        raise bad_request("days must be an integer", field="days") from None
    start = clock.day_bounds(clock.today())[0]
    items = [_programme_json(p) for p in queries.programmes(start, start + dt.timedelta(days=max(1, min(days, 7))), [cid])]
    return {"items": items, "total": len(items), "page": 1, "per_page": len(items)}




class ChannelIn(BaseModel):
    xmltv_id: str = Field(max_length=64)
    number: int = Field(ge=1, le=9999)
    name: str = Field(min_length=1, max_length=64)
    #: relay (a county channel relayed by URL) or city.
    kind: str = Field(default="relay", max_length=8)
    stream_url: str = Field(default="", max_length=512)


class ProgrammeIn(BaseModel):
    channel: str = Field(max_length=64)
    title: str = Field(min_length=1, max_length=200)
    starts_at: str
    ends_at: str
    description: str = Field(default="", max_length=2000)
    category: str = Field(default="", max_length=32)


@api_bp.post("/channels")
@api_user_required("noc")
@body(ChannelIn)
def add_channel(data: ChannelIn):
    """Add a channel (e.g. a county channel relayed by its stream URL); admins and the NOC."""
    from portal_server.core.db import session
    ch = ops.add_channel(g.user, data.xmltv_id, data.number, data.name, data.kind, data.stream_url)
    session.commit()
    return {"id": ch.xmltv_id, "number": ch.number, "name": ch.name, "kind": ch.kind,
            "url": queries.channel_url(ch)}, 201


@api_bp.post("/programmes")
@api_user_required("noc", "editor")
@body(ProgrammeIn)
def add_programme(data: ProgrammeIn):
    """Add a programme to a city or relayed channel (meetings become programmes by themselves)."""
    from sqlalchemy import select

    from portal_server.core.api import parse_ts
    from portal_server.core.db import session

    from .models import Channel
    ch = session.scalar(select(Channel).where(Channel.xmltv_id == data.channel))
    if ch is None:
        raise not_found(f"channel {data.channel}")
    ops.require_channel_owner(g.user, ch)
    if ch.kind == "village":
        raise bad_request("a village hall channel shows its meetings; schedule a meeting instead", field="channel")
    start, end = parse_ts(data.starts_at, "starts_at"), parse_ts(data.ends_at, "ends_at")
    p = ops.add_programme(ch, data.title, start, end, data.description, data.category)
    session.flush()
    audit.record("epg.programme_add", "programme", p.id, None, actor=g.user.username, channel=ch.xmltv_id)
    session.commit()
    return {"id": p.id, "channel": ch.xmltv_id, "title": p.title, "start": iso(p.starts_at), "stop": iso(p.ends_at)}, 201


# Catch-up and the relayed channels (INTERFACES §4.5) -------------------------------------------

class RelayIn(BaseModel):
    name: str = Field(min_length=1, max_length=64)
    number: int
    source_url: str = Field(min_length=1, max_length=512)
    catchup_hours: int = 72
    #: Also a 480p rendition for weak lines (a master playlist; costs a transcode).
    low_rendition: bool = False


def _channel_or_404(channel_id: int):
    ch = queries.channel_by_id(channel_id)
    if ch is None or not ch.source_url:
        raise not_found("频道")
    return ch


@channels_bp.post("")
@api_user_required("noc")
@body(RelayIn)
def create_channel(data: RelayIn):
    """A channel relayed from the head-end (noc, admin) → ``{"id","xmltv_id","hls_url","status"}``."""
    ch = ops.create_relay_channel(g.user, data.name, data.number, data.source_url, data.catchup_hours,
                                  data.low_rendition)
    session.commit()
    return queries.channel_to_dict(ch), 201


@channels_bp.get("")
@user_or_terminal
def list_channels():
    """The relayed channels with their status (``starting``, ``live``, ``source_lost``)."""
    page, per_page = page_args()
    rows = queries.relayed_channels()
    items = [queries.channel_to_dict(c) for c in rows[(page - 1) * per_page:page * per_page]]
    if request_terminal() is not None:  # a box sees no source addresses
        for d in items:
            d.pop("source_url", None)
    return {"items": items, "total": len(rows), "page": page, "per_page": per_page}


@channels_bp.get("/<int:channel_id>")
@user_or_terminal
def get_channel(channel_id: int):
    d = queries.channel_to_dict(_channel_or_404(channel_id))
    if request_terminal() is not None:
        d.pop("source_url", None)
    return d


@channels_bp.delete("/<int:channel_id>")
@api_user_required("noc")
def delete_channel(channel_id: int):
    """Remove a relayed channel (its relay stops, its catch-up goes)."""
    ops.delete_channel(g.user, _channel_or_404(channel_id))
    session.commit()
    return "", 204
