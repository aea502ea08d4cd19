"""XMLTV and M3U as data (DESIGN §3.4): pure ``encode_*`` functions over plain dicts, a
``decode_xmltv`` for tests and tools, and validation against the shipped XMLTV DTD.

Channel dicts: {"id", "name", "number", "url", "icon"?}; programme dicts: {"channel", "start",
"stop" (aware datetimes), "title", "desc"?, "category"?}.
"""
from __future__ import annotations

import datetime as dt
from pathlib import Path
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
            return base.replace(tzinfo=dt.timezone.utc)
        return dt.datetime.strptime(stamp[:14] + off, "%Y%m%d%H%M%S%z")
    except ValueError as e:
        raise ProtocolError(f"bad XMLTV time {value!r}") from e


def encode_xmltv(channels: list[dict], programmes: list[dict], tz: ZoneInfo,
                 generator: str = "CommuniTV", source_url: str = "") -> bytes:
    """The XMLTV document (UTF-8, with its DOCTYPE)."""
    root = etree.Element("tv", {"generator-info-name": generator, "source-info-name": "青山市社区公共服务平台",
                                **({"source-info-url": source_url} if source_url else {})})
    for c in channels:
        ch = etree.SubElement(root, "channel", id=c["id"])
        etree.SubElement(ch, "display-name", lang="zh").text = c["name"]
        etree.SubElement(ch, "display-name").text = str(c["number"])
        if c.get("icon"):
            etree.SubElement(ch, "icon", src=c["icon"])
        if c.get("url"):
            etree.SubElement(ch, "url").text = c["url"]
    for p in programmes:
        el = etree.SubElement(root, "programme", start=xmltv_time(p["start"], tz), stop=xmltv_time(p["stop"], tz),
                              channel=p["channel"])
        etree.SubElement(el, "title", lang="zh").text = p["title"]
        if p.get("desc"):
            etree.SubElement(el, "desc", lang="zh").text = p["desc"]
        if p.get("category"):
            etree.SubElement(el, "category", lang="zh").text = p["category"]
        if p.get("url"):
            etree.SubElement(el, "url").text = p["url"]
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True,
                          doctype='<!DOCTYPE tv SYSTEM "xmltv.dtd">')


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
        lines.append(f'#EXTINF:-1 tvg-id="{_attr(c["id"])}" tvg-name="{_attr(c["name"])}" tvg-chno="{c["number"]}" '
                     f'group-title="{_attr(c.get("group", ""))}",{c["name"]}')
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
