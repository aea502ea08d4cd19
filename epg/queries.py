"""Reads of the guide: channels, programmes in a time range (meetings included as programmes of
their village hall's channel), now/next, and the XMLTV/M3U documents."""
from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from flask import current_app
from sqlalchemy import select

from portal_server.core.db import session, utcnow
from portal_server.meetings import queries as meeting_queries
from portal_server.meetings.models import aware

from . import xmltv
from .models import Channel, Programme
from .operations import CITY_ID, village_channel_id


def tz() -> ZoneInfo:
    return ZoneInfo(current_app.config["SETTINGS"].timezone)


def _public(path: str) -> str:
    return current_app.config["SETTINGS"].public_url.rstrip("/") + path


def channel_url(ch) -> str:
    """Where a player gets the channel: its stream, or for a village hall the live meeting."""
    if ch.kind == "village":
        return _public(f"/epg/live/{ch.xmltv_id}.m3u8")
    return ch.stream_url


def channels(region_code: str | None = None) -> list[dict]:
    """Every channel as {"id","number","name","kind","url","group"}; with ``region_code`` (a box's
    village) only the city, relayed and that village's channels."""
    q = select(Channel.xmltv_id, Channel.number, Channel.name, Channel.kind, Channel.stream_url, Channel.region_code)
    rows = session.execute(q.order_by(Channel.number)).all()
    groups = {"city": "市级频道", "relay": "县级转播", "village": "村务厅"}
    out = []
    for xid, number, name, kind, url, rc in rows:
        if region_code and kind == "village" and rc != region_code:
            continue
        ch = type("Ch", (), {"kind": kind, "xmltv_id": xid, "stream_url": url})
        out.append({"id": xid, "number": number, "name": name, "kind": kind, "url": channel_url(ch),
                    "group": groups.get(kind, "")})
    return out


def programmes(start: dt.datetime, end: dt.datetime, channel_ids: list[str] | None = None) -> list[dict]:
    """Programmes overlapping [start, end), meetings included, sorted by channel number then time."""
    q = (select(Channel.xmltv_id, Channel.number, Programme.title, Programme.description, Programme.category,
                Programme.starts_at, Programme.ends_at)
         .join(Channel, Channel.id == Programme.channel_id)
         .where(Programme.starts_at < end, Programme.ends_at > start))
    if channel_ids is not None:
        q = q.where(Channel.xmltv_id.in_(channel_ids))
    out = [{"channel": xid, "number": num, "title": title, "desc": desc, "category": cat,
            "start": aware(s), "stop": aware(e)} for xid, num, title, desc, cat, s, e in session.execute(q)]
    # Meetings: programmes of their village hall's channel (a town's meetings go on the city channel).
    numbers = dict(session.execute(select(Channel.xmltv_id, Channel.number)).all())
    for mid, title, agenda, s, e, status, replay, code, level, rname in meeting_queries.guide_rows(start, end):
        xid = village_channel_id(code) if level == "village" else CITY_ID
        if xid not in numbers or (channel_ids is not None and xid not in channel_ids):
            continue
        out.append({"channel": xid, "number": numbers[xid], "title": f"{rname} {title}",
                    "desc": (agenda or "").replace("\n", "；"), "category": "社区会议", "start": aware(s),
                    "stop": aware(e), "meeting_id": mid, "status": status,
                    "url": _public(f"/tv/meetings/{mid}/{'replay' if replay else 'live'}")})
    out.sort(key=lambda p: (p["number"], p["start"]))
    return out


def guide(start: dt.datetime, days: int = 7) -> tuple[list[dict], list[dict]]:
    return channels(), programmes(start, start + dt.timedelta(days=days))


def xmltv_document(days: int = 7, start: dt.datetime | None = None) -> bytes:
    """The XMLTV document: every channel, programmes from today (city time) for ``days`` days."""
    z = tz()
    start = start or dt.datetime.combine(utcnow().astimezone(z).date(), dt.time(0, 0), z)
    chans, progs = guide(start, days)
    return xmltv.encode_xmltv(chans, progs, z, source_url=_public("/epg/xmltv.xml"))


def m3u_document(region_code: str | None = None) -> str:
    return xmltv.encode_m3u(channels(region_code), _public("/epg/xmltv.xml"))


def now_next(now: dt.datetime | None = None, channel_ids: list[str] | None = None) -> list[dict]:
    """For each channel: the programme on now and the next one (None when nothing is scheduled)."""
    now = now or utcnow()
    chans = channels()
    if channel_ids is not None:
        chans = [c for c in chans if c["id"] in channel_ids]
    progs = programmes(now, now + dt.timedelta(days=1), [c["id"] for c in chans])
    by = {}
    for p in progs:
        by.setdefault(p["channel"], []).append(p)
    out = []
    for c in chans:
        lst = by.get(c["id"], [])
        cur = next((p for p in lst if p["start"] <= now < p["stop"]), None)
        nxt = next((p for p in lst if p["start"] >= now), None)
        out.append({**c, "now": cur, "next": nxt})
    return out


def live_meeting_url(xmltv_id: str) -> str | None:
    """The HLS URL of the live meeting on a village hall channel."""
    ch = session.scalar(select(Channel).where(Channel.xmltv_id == xmltv_id))
    if ch is None or ch.kind != "village":
        return None
    m = meeting_queries.live_in_region(ch.region_code)
    return meeting_queries.signed_path(m.id, "live.m3u8") if m else None
