"""Reads of the guide: channels, programmes in a time range (meetings included as programmes of
their village hall's channel), now/next, and the XMLTV/M3U documents."""
from __future__ import annotations

import datetime as dt
from flask import current_app
from sqlalchemy import select

from portal_server.core import clock
from portal_server.core.api import iso
from portal_server.core.db import session
from portal_server.meetings import queries as meeting_queries

from . import xmltv
from .models import Channel, Programme
from .operations import CITY_ID, village_channel_id


def _public(path: str) -> str:
    return current_app.config["SETTINGS"].public_url.rstrip("/") + path


def hls_url(xmltv_id: str, name: str = "live.m3u8") -> str:
    """The one place a channel's /hls/ URL is made (playlists and catch-up segments alike), so
    that signing it (issue 20) is a change here only."""
    return _public(f"/hls/channels/{xmltv_id}/{name}")


def channel_url(ch) -> str:
    """Where a player gets the channel: its relay's HLS, its stream, or for a village hall the
    live meeting."""
    if ch.kind == "village":
        return _public(f"/epg/live/{ch.xmltv_id}.m3u8")
    if getattr(ch, "source_url", ""):
        return hls_url(ch.xmltv_id, "index.m3u8" if getattr(ch, "low_rendition", False) else "live.m3u8")
    # Streams stored as paths follow COMMUNITV_PUBLIC_URL, so a box on the LAN gets an address it can reach.
    return _public(ch.stream_url) if ch.stream_url.startswith("/") else ch.stream_url


def channels(region_code: str | None = None) -> list[dict]:
    """Every channel as {"id","number","name","kind","url","group"}; with ``region_code`` (a box's
    village) only the city, relayed and that village's channels."""
    q = select(Channel.xmltv_id, Channel.number, Channel.name, Channel.kind, Channel.stream_url, Channel.region_code,
               Channel.source_url, Channel.status, Channel.catchup_hours, Channel.low_rendition)
    rows = session.execute(q.order_by(Channel.number)).all()
    groups = {"city": "市级频道", "relay": "县级转播", "village": "村务厅"}
    out = []
    for xid, number, name, kind, url, rc, source, status, hours, low in rows:
        if region_code and kind == "village" and rc != region_code:
            continue
        ch = type("Ch", (), {"kind": kind, "xmltv_id": xid, "stream_url": url, "source_url": source,
                             "low_rendition": low})
        d = {"id": xid, "number": number, "name": name, "kind": kind, "url": channel_url(ch),
             "group": groups.get(kind, ""), "status": status or None}
        if source:  # relayed: catch-up (Kodi IPTV Simple's "default" mode fills {utc} and {utcend})
            d["catchup_days"] = max(1, (hours + 23) // 24)
            d["catchup_source"] = _public(f"/epg/catchup/{xid}.m3u8") + "?start={utc}&end={utcend}"
        out.append(d)
    return out


def channel_by_id(channel_id: int) -> Channel | None:
    return session.get(Channel, channel_id)


def channel_by_xmltv_id(xmltv_id: str) -> Channel | None:
    return session.scalar(select(Channel).where(Channel.xmltv_id == xmltv_id))


def relayed_channels(user=None) -> list[Channel]:
    """Channels relayed from the head-end, by number. They are city-wide: every staff member with
    a scope sees them (the API limits who may change them)."""
    return list(session.scalars(select(Channel).where(Channel.source_url != "").order_by(Channel.number)))


def channel_to_dict(ch: Channel) -> dict:
    """The API shape of a relayed channel (INTERFACES §4.5)."""
    return {"id": ch.id, "xmltv_id": ch.xmltv_id, "name": ch.name, "number": ch.number, "kind": ch.kind,
            "source_url": ch.source_url, "hls_url": channel_url(ch), "low_rendition": ch.low_rendition, "status": ch.status or "starting",
            "status_at": iso(ch.status_at), "catchup_hours": ch.catchup_hours, "relay_mode": ch.relay_mode,
            "disk_bytes": ch.disk_bytes}


def programmes(start: dt.datetime, end: dt.datetime, channel_ids: list[str] | None = None) -> list[dict]:
    """Programmes overlapping [start, end), meetings included, sorted by channel number then time."""
    start, end = clock.utc(start), clock.utc(end)  # SQLite compares wall times: bounds in UTC
    q = (select(Channel.xmltv_id, Channel.number, Programme.title, Programme.description, Programme.category,
                Programme.starts_at, Programme.ends_at)
         .join(Channel, Channel.id == Programme.channel_id)
         .where(Programme.starts_at < end, Programme.ends_at > start))
    if channel_ids is not None:
        q = q.where(Channel.xmltv_id.in_(channel_ids))
    out = [{"channel": xid, "number": num, "title": title, "desc": desc, "category": cat,
            "start": clock.aware(s), "stop": clock.aware(e)} for xid, num, title, desc, cat, s, e in session.execute(q)]
    # Meetings: programmes of their village hall's channel (a town's meetings go on the city channel).
    numbers = dict(session.execute(select(Channel.xmltv_id, Channel.number)).all())
    for mid, title, agenda, s, e, status, replay, code, level, rname in meeting_queries.guide_rows(start, end):
        xid = village_channel_id(code) if level == "village" else CITY_ID
        if xid not in numbers or (channel_ids is not None and xid not in channel_ids):
            continue
        out.append({"channel": xid, "number": numbers[xid], "title": f"{rname} {title}",
                    "desc": (agenda or "").replace("\n", "；"), "category": "社区会议", "start": clock.aware(s),
                    "stop": clock.aware(e), "meeting_id": mid, "status": status,
                    "url": _public(f"/tv/meetings/{mid}/{'replay' if replay else 'live'}")})
    out.sort(key=lambda p: (p["number"], p["start"]))
    return out


def guide(start: dt.datetime, days: int = 7) -> tuple[list[dict], list[dict]]:
    return channels(), programmes(start, start + dt.timedelta(days=days))


def xmltv_document(days: int = 7, start: dt.datetime | None = None) -> bytes:
    """The XMLTV document: every channel, programmes from today (city time) for ``days`` days."""
    start = start or clock.day_bounds(clock.today())[0]
    chans, progs = guide(start, days)
    return xmltv.encode_xmltv(chans, progs, clock.city_tz(), source_url=_public("/epg/xmltv.xml"))


def m3u_document(region_code: str | None = None) -> str:
    return xmltv.encode_m3u(channels(region_code), _public("/epg/xmltv.xml"))


def now_next(now: dt.datetime | None = None, channel_ids: list[str] | None = None) -> list[dict]:
    """For each channel: the programme on now and the next one (None when nothing is scheduled)."""
    now = clock.utc(now) or clock.now()
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
    return meeting_queries.live_signed_path(m.id) if m else None


def _epoch(ts) -> int | None:
    return int(ts.timestamp()) if ts is not None else None


def box_channels(village_code: str | None, now: dt.datetime | None = None) -> list[dict]:
    """The channels a box zaps through, by number, with now/next (epoch seconds) and status: the
    city and relayed channels, and its village hall's channel while a meeting is live there."""
    rows = now_next(now=now, channel_ids=[c["id"] for c in channels(village_code)])
    out = []
    for c in rows:
        if c["kind"] == "village" and live_meeting_url(c["id"]) is None:
            continue
        out.append({"id": c["id"], "number": c["number"], "name": c["name"], "kind": c["kind"], "url": c["url"],
                    "status": c.get("status") or "live", "catchup": bool(c.get("catchup_source")),
                    "catchup_days": c.get("catchup_days") or 0,
                    "now": _prog(c["now"]), "next": _prog(c["next"])})
    return out


def _prog(p: dict | None) -> dict | None:
    if p is None:
        return None
    return {"title": p["title"], "start": _epoch(p["start"]), "stop": _epoch(p["stop"])}


def catchup_url(xmltv_id: str, start: int, end: int) -> str:
    return catchup_base() + f"{xmltv_id}.m3u8?start={int(start)}&end={int(end)}"


def catchup_base() -> str:
    """Where catch-up playlists are (the player adds ``<xmltv id>.m3u8?start=&end=``)."""
    return _public("/epg/catchup/")
