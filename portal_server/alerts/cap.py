"""CAP 1.2 (OASIS Common Alerting Protocol) documents of our alerts, built with lxml.

Pure functions: they take plain values and return bytes, so the API, the tests and anything else
share one definition. ``schema()`` loads the OASIS CAP 1.2 XSD shipped in this package.
"""
from __future__ import annotations

import datetime as dt
import functools
from pathlib import Path

from lxml import etree

from portal_server.core import clock

NS = "urn:oasis:names:tc:emergency:cap:1.2"
XSD_PATH = Path(__file__).with_name("CAP-v1.2.xsd")
#: geocode valueName for Chinese administrative division codes.
GEOCODE_NAME = "GB/T 2260"


def cap_time(ts: dt.datetime, tz) -> str:
    """CAP dateTime: seconds and an explicit offset, never "Z" (CAP 1.2 §3.3.2)."""
    return clock.aware(ts).astimezone(tz).replace(microsecond=0).isoformat()


def identifier(sender_domain: str, alert_id: int, kind: str = "") -> str:
    """Unique, no spaces, commas, '<' or '&' (CAP 1.2 §3.2.1)."""
    return f"communitv.{sender_domain}.alert.{alert_id}{('.' + kind) if kind else ''}"


def reference(sender: str, ident: str, sent: str) -> str:
    """One entry of <references>: sender,identifier,sent."""
    return f"{sender},{ident},{sent}"


def _sub(parent, name: str, text=None):
    el = etree.SubElement(parent, f"{{{NS}}}{name}")
    if text is not None:
        el.text = str(text)
    return el


def build(*, ident: str, sender: str, sent: str, msg_type: str, status: str = "Actual",
          references: list[str] | None = None, note: str | None = None, info: dict | None = None) -> bytes:
    """A CAP alert document. ``info`` (optional) holds language, category, event, urgency, severity,
    certainty, effective, expires, sender_name, headline, description, instruction, web, area_desc,
    geocodes (list of codes), resources (list of {desc, mime, uri})."""
    root = etree.Element(f"{{{NS}}}alert", nsmap={None: NS})
    _sub(root, "identifier", ident)
    _sub(root, "sender", sender)
    _sub(root, "sent", sent)
    _sub(root, "status", status)
    _sub(root, "msgType", msg_type)
    _sub(root, "scope", "Public")
    if note:
        _sub(root, "note", note)
    if references:
        _sub(root, "references", " ".join(references))
    if info:
        i = _sub(root, "info")
        _sub(i, "language", info.get("language", "zh-CN"))
        _sub(i, "category", info["category"])
        _sub(i, "event", info["event"])
        for rt in info.get("response_types", ()):
            _sub(i, "responseType", rt)
        _sub(i, "urgency", info["urgency"])
        _sub(i, "severity", info["severity"])
        _sub(i, "certainty", info["certainty"])
        for key, name in (("effective", "effective"), ("expires", "expires"), ("sender_name", "senderName"),
                          ("headline", "headline"), ("description", "description"),
                          ("instruction", "instruction"), ("web", "web")):
            if info.get(key):
                _sub(i, name, info[key])
        for res in info.get("resources", ()):
            r = _sub(i, "resource")
            _sub(r, "resourceDesc", res["desc"])
            _sub(r, "mimeType", res["mime"])
            _sub(r, "uri", res["uri"])
        area = _sub(i, "area")
        _sub(area, "areaDesc", info.get("area_desc") or "—")
        for code in info.get("geocodes", ()):
            g = _sub(area, "geocode")
            _sub(g, "valueName", GEOCODE_NAME)
            _sub(g, "value", code)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


@functools.lru_cache(maxsize=1)
def schema() -> etree.XMLSchema:
    """The OASIS CAP 1.2 schema."""
    return etree.XMLSchema(etree.parse(str(XSD_PATH)))


def validate(doc: bytes) -> list[str]:
    """Schema errors of ``doc`` (empty when valid)."""
    s = schema()
    ok = s.validate(etree.fromstring(doc))
    return [] if ok else [str(e) for e in s.error_log]
