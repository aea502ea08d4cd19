"""XMLTV and M3U as data (DESIGN §3.4): pure ``encode_*`` functions over plain dicts, a
``decode_xmltv`` for tests and tools, and validation against the shipped XMLTV DTD.

Channel dicts: {"id", "name", "number", "url", "icon"?}; programme dicts: {"channel", "start",
"stop" (aware datetimes), "title", "desc"?, "category"?}.
"""
from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from xml.sax.saxutils import escape
from zoneinfo import ZoneInfo

from lxml import etree

DTD_PATH = Path(__file__).with_name("xmltv.dtd")


class ProtocolError(ValueError):
    """A guide document that is not what it says it is."""


def xmltv_time(ts: dt.datetime, tz: ZoneInfo) -> str:
    """'20261123190000 +0800': local time with the explicit offset."""
    local = ts.astimezone(tz)
    off = local.strftime("%z")
    return local.strftime("%Y%m%d%H%M%S") + " " + off


def parse_xmltv_time(value: str) -> dt.datetime:
    try:
        stamp, _, off = value.strip().partition(" ")
        base = dt.datetime.strptime(stamp[:14], "%Y%m%d%H%M%S")
        if not off:
            return base.replace(tzinfo=dt.UTC)
        return dt.datetime.strptime(stamp[:14] + off, "%Y%m%d%H%M%S%z")
    except ValueError as e:
        raise ProtocolError(f"bad XMLTV time {value!r}") from e


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


def _esc(text) -> str:
    """Escaped for XML text and attributes; control characters XML cannot carry are dropped."""
    return escape(_CONTROL.sub("", str(text)), _QUOTE)


_QUOTE = {'"': "&quot;"}


def _time_formatter(tz: ZoneInfo):
    """A fast ``xmltv_time`` for many timestamps (offsets cached per UTC hour)."""
    offsets: dict = {}

    def fmt(ts: dt.datetime) -> str:
        hour = ts.replace(minute=0, second=0, microsecond=0)
        off = offsets.get(hour)
        if off is None:
            local = ts.astimezone(tz)
            off = offsets[hour] = (local.utcoffset(), local.strftime("%z"))
        t = ts.astimezone(dt.UTC).replace(tzinfo=None) + off[0]
        return f"{t.year:04d}{t.month:02d}{t.day:02d}{t.hour:02d}{t.minute:02d}{t.second:02d} {off[1]}"

    return fmt


def encode_xmltv(channels: list[dict], programmes: list[dict], tz: ZoneInfo,
                 generator: str = "CommuniTV", source_url: str = "") -> bytes:
    """The XMLTV document (UTF-8, with its DOCTYPE). Written as text (5× faster than building an
    lxml tree for a week of 100 channels); every value is escaped; tests validate it with lxml."""
    fmt = _time_formatter(tz)
    out = ['<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE tv SYSTEM "xmltv.dtd">\n',
           f'<tv generator-info-name="{_esc(generator)}" source-info-name="青山市社区公共服务平台"'
           + (f' source-info-url="{_esc(source_url)}"' if source_url else "") + ">\n"]
    for c in channels:
        out.append(f'  <channel id="{_esc(c["id"])}">\n    <display-name lang="zh">{_esc(c["name"])}</display-name>\n'
                   f'    <display-name>{int(c["number"])}</display-name>\n')
        if c.get("icon"):
            out.append(f'    <icon src="{_esc(c["icon"])}"/>\n')
        if c.get("url"):
            out.append(f'    <url>{_esc(c["url"])}</url>\n')
        out.append("  </channel>\n")
    for p in programmes:
        out.append(f'  <programme start="{fmt(p["start"])}" stop="{fmt(p["stop"])}" channel="{_esc(p["channel"])}">\n'
                   f'    <title lang="zh">{_esc(p["title"])}</title>\n')
        if p.get("desc"):
            out.append(f'    <desc lang="zh">{_esc(p["desc"])}</desc>\n')
        if p.get("category"):
            out.append(f'    <category lang="zh">{_esc(p["category"])}</category>\n')
        if p.get("url"):
            out.append(f'    <url>{_esc(p["url"])}</url>\n')
        out.append("  </programme>\n")
    out.append("</tv>\n")
    return "".join(out).encode("utf-8")


def dtd() -> etree.DTD:
    with open(DTD_PATH, "rb") as fh:
        return etree.DTD(fh)


def validate(document: bytes) -> list[str]:
    """Errors against the XMLTV DTD (empty when valid)."""
    root = etree.fromstring(document)
    d = dtd()
    if d.validate(root):
        return []
    return [str(e) for e in d.error_log.filter_from_errors()]


def decode_xmltv(document: bytes) -> dict:
    """{"channels": [{"id","names"}], "programmes": [{"channel","start","stop","title"}]}."""
    try:
        root = etree.fromstring(document)
    except etree.XMLSyntaxError as e:
        raise ProtocolError(f"not XML: {e}") from e
    if root.tag != "tv":
        raise ProtocolError("root element is not <tv>")
    chans = [{"id": c.get("id"), "names": [n.text for n in c.findall("display-name")]} for c in root.findall("channel")]
    progs = [{"channel": p.get("channel"), "start": parse_xmltv_time(p.get("start")),
              "stop": parse_xmltv_time(p.get("stop")) if p.get("stop") else None,
              "title": p.findtext("title")} for p in root.findall("programme")]
    return {"channels": chans, "programmes": progs}


def _attr(value: str) -> str:
    return str(value).replace('"', "'").replace("\n", " ")


def encode_m3u(channels: list[dict], xmltv_url: str) -> str:
    """Extended M3U for IPTV clients (Kodi IPTV Simple, Jellyfin): tvg-id = XMLTV channel id."""
    lines = [f'#EXTM3U url-tvg="{_attr(xmltv_url)}" x-tvg-url="{_attr(xmltv_url)}"']
    for c in channels:
        catchup = ""
        if c.get("catchup_source"):  # Kodi IPTV Simple: catchup, catchup-days, catchup-source
            catchup = (f'catchup="default" catchup-days="{int(c.get("catchup_days") or 1)}" '
                       f'catchup-source="{_attr(c["catchup_source"])}" ')
        lines.append(f'#EXTINF:-1 tvg-id="{_attr(c["id"])}" tvg-name="{_attr(c["name"])}" tvg-chno="{c["number"]}" '
                     f'{catchup}group-title="{_attr(c.get("group", ""))}",{c["name"]}')
        lines.append(c["url"])
    return "\n".join(lines) + "\n"


def decode_m3u(text: str) -> list[dict]:
    """[{"tvg-id","name","url"}] of an extended M3U."""
    import re
    if not text.startswith("#EXTM3U"):
        raise ProtocolError("not an extended M3U (no #EXTM3U header)")
    out, pending = [], None
    for line in text.splitlines()[1:]:
        line = line.strip()
        if line.startswith("#EXTINF"):
            attrs = dict(re.findall(r'([\w-]+)="([^"]*)"', line))
            pending = {**attrs, "name": line.rsplit(",", 1)[-1]}
        elif line and not line.startswith("#") and pending is not None:
            pending["url"] = line
            out.append(pending)
            pending = None
    return out
