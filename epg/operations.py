"""Writes of the guide: the standard channels, programmes, the demo week."""
from __future__ import annotations

import datetime as dt
import ipaddress
import socket
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from flask import current_app
from sqlalchemy import func, select

from device_fleet import operations as fleet_ops
from portal_server.core import audit, clock, outbox, scope
from portal_server.core.api import ApiError, bad_request, conflict
from portal_server.core.db import session
from portal_server.core.regions import region_by_code

from .models import KINDS, Channel, Programme

CITY_ID = "qingshan.city"
CITY_NUMBER = 1
VILLAGE_BASE = 100
RELAYS = ((11, "relay1.qingshan", "青山县新闻综合频道"), (12, "relay2.qingshan", "青山县农业科教频道"))


def village_channel_id(village_code: str) -> str:
    """XMLTV id (= M3U tvg-id) of a village hall's channel."""
    return f"v{village_code}.qingshan"


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
                            region_code=None, stream_url=""))
        n += 1
    for number, xid, name in RELAYS:
        if xid not in have:
            session.add(Channel(xmltv_id=xid, number=number, name=name, kind="relay", region_code=None,
                                stream_url=""))
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


#: A day on the city channel (local time, title, category); the night is filled, so the guide
#: has a programme on air at any hour.
CITY_DAY = (("00:00", "午夜剧场", "影视"), ("06:00", "早间新闻", "新闻"), ("07:00", "三农天地", "农业"), ("08:30", "健康养生", "生活"),
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
    tz = clock.city_tz()
    today = clock.today()
    n = 0
    for ch in session.scalars(select(Channel).where(Channel.kind.in_(("city", "relay")))).all():
        plan = CITY_DAY if ch.kind == "city" else RELAY_DAY
        for d in range(days):
            n += fill_day(ch, today + dt.timedelta(days=d), plan, tz)
    session.flush()
    return n


# Relayed live channels (INTERFACES §4.5) -------------------------------------------------------

SOURCE_SCHEMES = ("udp", "rtp", "rtsp", "srt", "http", "https")
#: Ports of the demo head-end (streaming.headend) on loopback: (xmltv id, UDP port).
DEMO_HEADEND = ((CITY_ID, 23001), ("relay1.qingshan", 23011), ("relay2.qingshan", 23012))
STATUSES = ("starting", "live", "source_lost")
ALARM_KIND = "channel_source_lost"
#: The alarm's region: the city (channels are city-wide).
CITY_CODE = "990100000000"


def _allowed_networks() -> list:
    nets = []
    for part in current_app.config["SETTINGS"].channel_sources.split(","):
        if part.strip():
            nets.append(ipaddress.ip_network(part.strip(), strict=False))
    return nets


def validate_source(url: str) -> str:
    """The source URL when ffmpeg may be pointed at it: a listed scheme and a host (every address
    it resolves to) inside COMMUNITV_CHANNEL_SOURCES. Else 400 in Chinese."""
    url = (url or "").strip()
    try:
        u = urlsplit(url)
        host, port = u.hostname, u.port
    except ValueError:
        raise bad_request("信号源地址格式不正确", field="source_url") from None
    if u.scheme.lower() not in SOURCE_SCHEMES:
        raise bad_request("信号源地址只支持 udp://、rtp://、rtsp://、srt://、http(s):// 协议", field="source_url")
    if not host:
        raise bad_request("信号源地址缺少主机", field="source_url")
    if u.scheme in ("udp", "rtp", "srt") and not port:
        raise bad_request("信号源地址缺少端口", field="source_url")
    try:
        addrs = {ipaddress.ip_address(host)}
    except ValueError:
        try:
            addrs = {ipaddress.ip_address(ai[4][0].split("%")[0]) for ai in socket.getaddrinfo(host, port or 80)}
        except (OSError, UnicodeError):
            raise bad_request(f"无法解析信号源主机 {host}", field="source_url") from None
    nets = _allowed_networks()
    if not addrs or not all(any(a in n for n in nets if n.version == a.version) for a in addrs):
        raise bad_request(f"信号源主机 {host} 不在允许的信号源网段内（COMMUNITV_CHANNEL_SOURCES）", field="source_url")
    return url


def relay_channel_id(number: int) -> str:
    """XMLTV id (= M3U tvg-id) of a channel added by the NOC."""
    return f"ch{int(number)}.qingshan"


def create_relay_channel(user, name: str, number: int, source_url: str, catchup_hours: int = 72,
                         low_rendition: bool = False) -> Channel:
    """A channel relayed from the head-end: validated, stored as ``starting``; its relay starts
    after commit (streaming.tasks:start_channel)."""
    name = (name or "").strip()
    if not name:
        raise bad_request("请填写频道名称", field="name")
    if not 1 <= int(number) <= 9999:
        raise bad_request("频道号须在 1–9999 之间", field="number")
    if not 1 <= int(catchup_hours) <= 24 * 14:
        raise bad_request("回看时长须在 1–336 小时之间", field="catchup_hours")
    source_url = validate_source(source_url)
    if session.scalar(select(Channel.id).where(Channel.number == int(number))) is not None:
        raise conflict(f"频道号 {number} 已被使用")
    xid = relay_channel_id(number)
    if session.scalar(select(Channel.id).where(Channel.xmltv_id == xid)) is not None:
        raise conflict(f"频道 {xid} 已存在")
    ch = Channel(xmltv_id=xid, number=int(number), name=name[:64], kind="relay", region_code=None, stream_url="",
                 source_url=source_url, status="starting", status_at=clock.now(), catchup_hours=int(catchup_hours),
                 low_rendition=bool(low_rendition))
    session.add(ch)
    session.flush()
    audit.record("channel.create", "channel", ch.id, None, actor=user.username, xmltv_id=xid, number=ch.number,
                 source_url=source_url)
    outbox.job("streaming.tasks:start_channel", ch.id, queue="media")
    return ch


def delete_channel(user, ch: Channel) -> None:
    """Remove a relayed channel: its programmes, its alarm; the relay stops and its files go."""
    if ch.kind == "village":
        raise bad_request("村务厅频道随村里的会议自动设立，不能删除", field="id")
    for p in session.scalars(select(Programme).where(Programme.channel_id == ch.id)).all():
        session.delete(p)
    clear_source_alarm(ch)
    audit.record("channel.delete", "channel", ch.id, None, actor=user.username, xmltv_id=ch.xmltv_id)
    session.delete(ch)
    session.flush()
    outbox.job("streaming.tasks:remove_channel_files", ch.xmltv_id, queue="media")


def clear_source_alarm(ch: Channel) -> None:
    fleet_ops.clear_alarm(ALARM_KIND, ch.xmltv_id)


def set_channel_status(channel_id: int, status: str) -> Channel | None:
    """The relay's status; ``source_lost`` raises the NOC alarm, ``live`` clears it (in the
    caller's transaction)."""
    if status not in STATUSES:
        raise ValueError(status)
    ch = session.get(Channel, channel_id)
    if ch is None or ch.status == status:
        return ch
    before, ch.status, ch.status_at = ch.status, status, clock.now()
    if status == "source_lost":
        fleet_ops.raise_alarm(ALARM_KIND, ch.xmltv_id, CITY_CODE,
                              f"频道 {ch.number} {ch.name} 信号中断（{ch.source_url}），正在自动恢复")
    elif status == "live":
        clear_source_alarm(ch)
    session.flush()
    audit.record("channel.status", "channel", ch.id, None, actor="system", before=before, after=status)
    return ch


def set_relay_facts(channel_id: int, **facts) -> None:
    """relay_pid, relay_mode, disk_bytes of a channel (as the supervisor and the cleanup job see them)."""
    ch = session.get(Channel, channel_id)
    if ch is None:
        return
    for k, v in facts.items():
        if k not in ("relay_pid", "relay_mode", "disk_bytes"):
            raise ValueError(k)
        setattr(ch, k, v)
    session.flush()


def ensure_demo_sources() -> int:
    """The demo city's channels take their sources from the demo head-end (``make run``)."""
    n = 0
    for xid, port in DEMO_HEADEND:
        ch = session.scalar(select(Channel).where(Channel.xmltv_id == xid))
        if ch is not None and not ch.source_url:
            ch.source_url, ch.stream_url, ch.status, ch.status_at = f"udp://127.0.0.1:{port}", "", "starting", clock.now()
            n += 1
    session.flush()
    return n
