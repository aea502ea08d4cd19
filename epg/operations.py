"""Writes of the guide: the standard channels, programmes, the demo week."""
from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from flask import current_app
from sqlalchemy import func, select

from portal_server.core import audit, scope
from portal_server.core.api import ApiError, bad_request, conflict
from portal_server.core.db import session, utcnow
from portal_server.core.regions import region_by_code

from .models import KINDS, Channel, Programme

CITY_ID = "qingshan.city"
CITY_NUMBER = 1
VILLAGE_BASE = 100
RELAYS = ((11, "relay1.qingshan", "青山县新闻综合频道"), (12, "relay2.qingshan", "青山县农业科教频道"))


def village_channel_id(village_code: str) -> str:
    """XMLTV id (= M3U tvg-id) of a village hall's channel."""
    return f"v{village_code}.qingshan"


def _public(path: str) -> str:
    return current_app.config["SETTINGS"].public_url.rstrip("/") + path


def ensure_village_channel(village_code: str) -> Channel | None:
    """The village hall's channel, created when missing (numbered after the existing ones)."""
    xid = village_channel_id(village_code)
    ch = session.scalar(select(Channel).where(Channel.xmltv_id == xid))
    if ch is not None:
        return ch
    region = region_by_code(village_code)
    if region is None or region.level != "village":
        return None
    top = session.scalar(select(func.max(Channel.number)).where(Channel.kind == "village")) or VILLAGE_BASE
    ch = Channel(xmltv_id=xid, number=top + 1, name=f"{region.name}村务厅", kind="village",
                 region_code=village_code, stream_url="")
    session.add(ch)
    session.flush()
    return ch


def ensure_standard_channels(village_codes: list[str]) -> int:
    """The city channel, the relayed county channels and one channel per village hall; returns
    how many were created."""
    n = 0
    have = set(session.scalars(select(Channel.xmltv_id)))
    if CITY_ID not in have:
        session.add(Channel(xmltv_id=CITY_ID, number=CITY_NUMBER, name="青山市综合频道", kind="city",
                            region_code=None, stream_url=_public("/hls/channels/city/index.m3u8")))
        n += 1
    for number, xid, name in RELAYS:
        if xid not in have:
            session.add(Channel(xmltv_id=xid, number=number, name=name, kind="relay", region_code=None,
                                stream_url=_public(f"/hls/channels/{xid.split('.')[0]}/index.m3u8")))
            n += 1
    session.flush()
    for i, code in enumerate(village_codes):
        xid = village_channel_id(code)
        if xid in have:
            continue
        region = region_by_code(code)
        session.add(Channel(xmltv_id=xid, number=VILLAGE_BASE + 1 + i, name=f"{region.name}村务厅", kind="village",
                            region_code=code, stream_url=""))
        n += 1
    session.flush()
    return n


def require_channel_owner(user, ch: Channel | None = None) -> None:
    """403 unless ``user`` may write ``ch``'s guide: a village hall channel's region in scope, a
    city-wide (city or relayed) channel — or a new channel — only from city-level staff."""
    if ch is not None and ch.region_code:
        scope.require(user, ch.region_code, "频道")
    elif user.region.level != "city":
        raise ApiError(403, "forbidden", f"全市频道的节目单由市级统一编排，{user.region.name}的账号不能修改")


def add_channel(user, xmltv_id: str, number: int, name: str, kind: str, stream_url: str) -> Channel:
    """A channel (e.g. a relayed county channel by URL)."""
    require_channel_owner(user)
    if kind not in KINDS:
        raise bad_request(f"kind must be one of {', '.join(KINDS)}", field="kind")
    if not xmltv_id or len(xmltv_id) > 64 or any(c.isspace() or c in '"<>&' for c in xmltv_id):
        raise bad_request("xmltv_id must be 1–64 characters without spaces or quotes", field="xmltv_id")
    if kind == "relay" and not stream_url.startswith(("http://", "https://", "rtmp://", "udp://", "rtp://")):
        raise bad_request("a relayed channel needs its stream URL", field="stream_url")
    if session.scalar(select(Channel).where(Channel.xmltv_id == xmltv_id)) is not None:
        raise conflict(f"channel {xmltv_id} exists")
    ch = Channel(xmltv_id=xmltv_id, number=int(number), name=name.strip()[:64], kind=kind, stream_url=stream_url)
    session.add(ch)
    session.flush()
    audit.record("epg.channel_add", "channel", ch.id, None, actor=user.username, xmltv_id=xmltv_id)
    return ch


def add_programme(channel: Channel, title: str, starts_at: dt.datetime, ends_at: dt.datetime,
                  description: str = "", category: str = "") -> Programme:
    if not title or not title.strip():
        raise bad_request("title is required", field="title")
    if ends_at <= starts_at:
        raise bad_request("ends_at must be after starts_at", field="ends_at")
    p = Programme(channel_id=channel.id, title=title.strip()[:200], description=description, category=category,
                  starts_at=starts_at.astimezone(dt.UTC), ends_at=ends_at.astimezone(dt.UTC))
    session.add(p)
    return p


#: A day on the city channel (local time, title, category).
CITY_DAY = (("06:00", "早间新闻", "新闻"), ("07:00", "三农天地", "农业"), ("08:30", "健康养生", "生活"),
            ("10:00", "政策解读", "政务"), ("11:30", "午间新闻", "新闻"), ("12:30", "戏曲大观", "文艺"),
            ("14:30", "法治在线", "法治"), ("16:00", "党建之窗", "党建"), ("17:30", "农技课堂", "农业"),
            ("18:30", "青山新闻", "新闻"), ("19:30", "电视剧", "影视"), ("21:30", "晚间新闻", "新闻"),
            ("22:00", "纪录片", "纪实"))
RELAY_DAY = (("06:00", "县域新闻", "新闻"), ("09:00", "田间课堂", "农业"), ("12:00", "县域新闻", "新闻"),
             ("13:00", "科普时间", "科教"), ("18:00", "县域新闻", "新闻"), ("19:00", "文艺晚会", "文艺"),
             ("21:00", "县域新闻", "新闻"))


def fill_day(channel: Channel, day: dt.date, plan, tz: ZoneInfo, day_end: str = "24:00") -> int:
    """Programmes of ``plan`` on ``day`` (each ends when the next starts; the last at midnight)."""
    starts = [dt.datetime.combine(day, dt.time.fromisoformat(t), tz) for t, _n, _c in plan]
    ends = starts[1:] + [dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0, 0), tz)]
    for (_, title, cat), s, e in zip(plan, starts, ends):
        add_programme(channel, title, s, e, category=cat)
    return len(plan)


def fill_demo_week(days: int = 7) -> int:
    """A week of programmes on the city and relayed channels, from today (city time)."""
    tz = ZoneInfo(current_app.config["SETTINGS"].timezone)
    today = utcnow().astimezone(tz).date()
    n = 0
    for ch in session.scalars(select(Channel).where(Channel.kind.in_(("city", "relay")))).all():
        plan = CITY_DAY if ch.kind == "city" else RELAY_DAY
        for d in range(days):
            n += fill_day(ch, today + dt.timedelta(days=d), plan, tz)
    session.flush()
    return n
