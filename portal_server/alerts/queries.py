"""Reads of emergency alerts, always scoped to the caller; and what a box must show."""
from __future__ import annotations

import datetime as dt

from flask import current_app
from sqlalchemy import func, literal, or_, select

from portal_server.core import clock, fieldwork, speech
from portal_server.core.api import iso
from portal_server.core.db import session, utcnow
from portal_server.core.households import Household
from portal_server.core.regions import Region, Scope, region_by_code
from portal_server.core.speech import SpeechClip
from portal_server.core.terminals import Terminal

from . import operations as ops
from .models import (CATEGORY_NAMES, SEVERITY_COLOURS, SEVERITY_NAMES, STATUS_NAMES, Alert, AlertAck,
                     AlertRegion)


def alert_get(alert_id: int) -> Alert | None:
    return session.get(Alert, alert_id)


def visible_to(alert: Alert, scope: Scope) -> bool:
    """A user sees an alert that targets a region in their scope, or one above their scope."""
    return any(ar.path.startswith(scope.path) or scope.path.startswith(ar.path) for ar in alert.regions)


def visible_query(scope: Scope, status: str | None = None):
    sub = select(AlertRegion.alert_id).where(or_(AlertRegion.path.startswith(scope.path, autoescape=True),
                                                 literal(scope.path).startswith(AlertRegion.path)))
    q = select(Alert).where(Alert.id.in_(sub))
    if status:
        q = q.where(Alert.status == status)
    return q.order_by(Alert.sent_at.desc(), Alert.id.desc())


def _terminal_filter(alert: Alert, scope: Scope | None):
    cond = or_(*[Terminal.region_path.startswith(ar.path, autoescape=True) for ar in alert.regions])
    conds = [Terminal.region_id.is_not(None), cond]
    if scope is not None:
        conds.append(scope.region_filter(Terminal.region_path))
    return conds


def targeted_terminals(alert: Alert, scope: Scope | None = None) -> list[tuple[str, str, str, int | None]]:
    """(serial, kind, region_path, household_id) of every paired terminal under a targeted region
    (households and institutional), limited to ``scope``."""
    return [tuple(r) for r in session.execute(
        select(Terminal.serial, Terminal.kind, Terminal.region_path, Terminal.household_id)
        .where(*_terminal_filter(alert, scope)).order_by(Terminal.serial))]


def targeted_count(alert: Alert) -> int:
    from sqlalchemy import func
    return session.scalar(select(func.count()).select_from(Terminal).where(*_terminal_filter(alert, None))) or 0


def acked_serials(alert: Alert) -> dict[str, dt.datetime]:
    """Serial → ack time, from the database (persisted) and Redis (live)."""
    out = {s: at for s, at in session.execute(select(AlertAck.serial, AlertAck.at)
                                              .where(AlertAck.alert_id == alert.id))}
    try:
        for s, ts in ops.redis_acks(alert.id).items():
            out.setdefault(s, dt.datetime.fromtimestamp(ts, dt.timezone.utc))
    except Exception:  # Redis down: what was persisted still counts
        pass
    return out


def delivery(alert: Alert, scope: Scope | None = None) -> dict:
    """targeted / acked / unacked (serials) and the same per region of the boxes (villages, and the
    towns/city for institutional terminals), limited to ``scope``."""
    terms = targeted_terminals(alert, scope)
    acked = acked_serials(alert)
    per: dict[str, dict] = {}
    unacked = []
    for serial, _kind, path, _hh in terms:
        code = path.rstrip("/").rsplit("/", 1)[-1]
        row = per.setdefault(code, {"code": code, "targeted": 0, "acked": 0, "unacked": 0})
        row["targeted"] += 1
        if serial in acked:
            row["acked"] += 1
        else:
            row["unacked"] += 1
            unacked.append(serial)
    names = {r.code: r.name for r in session.scalars(select(Region).where(Region.code.in_(list(per))))} if per else {}
    villages = [dict(v, name=names.get(c, c)) for c, v in sorted(per.items())]
    return {"targeted": len(terms), "acked": len(terms) - len(unacked), "unacked": unacked,
            "villages": villages}


def audio_url(alert: Alert) -> str | None:
    if not alert.speech_clip_id:
        return None
    clip = session.get(SpeechClip, alert.speech_clip_id)
    path = speech.path_url(clip) if clip is not None else None
    return current_app.config["SETTINGS"].public_url.rstrip("/") + path if path else None


def newest_live_by_code(codes: list[str], now: dt.datetime | None = None) -> dict[str, Alert]:
    """For each region code, the newest live alert that targets exactly that region."""
    now = now or utcnow()
    rows = session.execute(select(AlertRegion.code, Alert).join(Alert, Alert.id == AlertRegion.alert_id)
                           .where(AlertRegion.code.in_(codes), Alert.status == "active", Alert.expires_at > now)
                           .order_by(Alert.sent_at, Alert.id)).all()
    out: dict[str, Alert] = {}
    for code, alert in rows:
        out[code] = alert  # ordered oldest first: the newest wins
    return out


def alert_to_dict(alert: Alert, with_delivery: bool = False, scope: Scope | None = None) -> dict:
    """The API shape of an alert (INTERFACES §4)."""
    base = current_app.config["SETTINGS"].public_url.rstrip("/")
    out = {"id": alert.id, "status": alert.status, "msg_type": alert.msg_type, "references": alert.references_id,
           "regions": alert.region_codes, "category": alert.category, "event": alert.event,
           "severity": alert.severity, "urgency": alert.urgency, "certainty": alert.certainty,
           "headline": alert.headline, "description": alert.description, "instruction": alert.instruction,
           "display": alert.display, "sent_at": iso(alert.sent_at), "expires": iso(alert.expires_at),
           "created_by": alert.created_by, "approved_by": alert.approved_by, "approved_at": iso(alert.approved_at),
           "needs_confirmation": alert.needs_confirmation, "cancelled_at": iso(alert.cancelled_at),
           "cap_url": f"{base}/api/v1/alerts/{alert.id}.cap", "audio_url": audio_url(alert)}
    if alert.cancelled_at:
        out["cancel_cap_url"] = f"{base}/api/v1/alerts/{alert.id}/cancel.cap"
    if alert.status == "superseded":
        out["superseded_by"] = session.scalar(select(Alert.id).where(Alert.references_id == alert.id))
    if with_delivery:
        out.update(delivery(alert, scope))
    return out


def unacked_households(alert: Alert, scope: Scope | None = None, for_user=None) -> list[tuple[str, Household | None, str]]:
    """(serial, household or None for an institutional box, region code) of every box that did not ack.

    ``for_user``: a grid worker gets only the households they work (core.fieldwork: their grid's)."""
    acked = acked_serials(alert)
    terms = [t for t in targeted_terminals(alert, scope) if t[0] not in acked]
    hh_ids = [t[3] for t in terms if t[3]]
    if for_user is not None and for_user.has_role("grid_worker") and hh_ids:
        keep = set(session.scalars(select(Household.id).where(
            Household.id.in_(hh_ids), fieldwork.household_filter(for_user, Household.id))))
        terms = [t for t in terms if not t[3] or t[3] in keep]
        hh_ids = [t[3] for t in terms if t[3]]
    households = {h.id: h for h in session.scalars(select(Household).where(Household.id.in_(hh_ids)))} if hh_ids else {}
    return [(s, households.get(h) if h else None, p.rstrip("/").rsplit("/", 1)[-1]) for s, _k, p, h in terms]


# For the TV portal ------------------------------------------------------------------------

def active_for_region_chain(region_codes: list[str]) -> list[dict]:
    """The live alerts a box with this region chain (city, town, village codes) must show, newest first:
    the MQTT payload fields plus category, event, sent_at (ISO) and audio_url when the speech is ready."""
    if not region_codes:
        return []
    now = utcnow()
    rows = session.scalars(select(Alert).join(AlertRegion, AlertRegion.alert_id == Alert.id)
                           .where(AlertRegion.code.in_(list(region_codes)), Alert.status == "active",
                                  Alert.expires_at > now)
                           .order_by(Alert.sent_at.desc(), Alert.id.desc())).unique().all()
    return [_tv_row(a) for a in dict.fromkeys(rows)]


def _tv_row(a: Alert) -> dict:
    d = ops.mqtt_payload(a, audio_url(a))
    d.update({"category": a.category, "event": a.event, "sent_at": iso(a.sent_at),
              "severity_name": SEVERITY_NAMES.get(a.severity, a.severity),
              "colour": SEVERITY_COLOURS.get(a.severity)})
    d.setdefault("audio_url", None)
    return d


def tv_alert(alert_id: int) -> dict | None:
    """One alert as the TV portal shows it (a row of ``active_for_region_chain``), whatever its status:
    what the portal's push channel carries when an alert goes live."""
    a = session.get(Alert, alert_id)
    return _tv_row(a) if a is not None else None


def history_for_region(code: str, limit: int = 20) -> list[dict]:
    """Alerts that targeted this region or a region above it (sent ones, newest first)."""
    region = region_by_code(code)
    if region is None:
        return []
    codes = region.chain_codes()
    rows = session.scalars(select(Alert).join(AlertRegion, AlertRegion.alert_id == Alert.id)
                           .where(AlertRegion.code.in_(codes),
                                  Alert.status.not_in(("pending_approval", "rejected")))
                           .order_by(Alert.sent_at.desc(), Alert.id.desc()).limit(limit * 2)).unique().all()
    out = []
    for a in list(dict.fromkeys(rows))[:limit]:
        out.append({"id": a.id, "headline": a.headline, "severity": a.severity, "event": a.event,
                    "status": a.status, "status_name": STATUS_NAMES.get(a.status, a.status),
                    "category": CATEGORY_NAMES.get(a.category, a.category), "sent_at": iso(a.sent_at)})
    return out


# CAP --------------------------------------------------------------------------------------

def _cap_ids(alert: Alert) -> tuple[str, str, str]:
    """(sender, identifier, sent) of an alert's CAP message."""
    from urllib.parse import urlparse

    from . import cap
    settings = current_app.config["SETTINGS"]
    host = urlparse(settings.public_url).hostname or "localhost"
    tz = clock.city_tz()
    return f"alerts@{host}", cap.identifier(host, alert.id), cap.cap_time(alert.sent_at, tz)


def cap_document(alert: Alert, cancel: bool = False) -> bytes:
    """The alert as CAP 1.2 XML: msgType Alert, Update (referencing the alert it replaces) or, with
    ``cancel``, the Cancel message referencing it."""
    from . import cap
    tz = clock.city_tz()
    sender, ident, sent = _cap_ids(alert)
    regions = session.scalars(select(Region).where(Region.code.in_(alert.region_codes)).order_by(Region.code)).all()
    info = {"language": "zh-CN", "category": alert.category, "event": alert.event, "urgency": alert.urgency,
            "severity": alert.severity, "certainty": alert.certainty,
            "effective": cap.cap_time(alert.sent_at, tz), "expires": cap.cap_time(alert.expires_at, tz),
            "sender_name": "CommuniTV 应急广播", "headline": alert.headline, "description": alert.description,
            "instruction": alert.instruction, "area_desc": "、".join(r.name for r in regions),
            "geocodes": [r.code for r in regions]}
    audio = audio_url(alert)
    if audio:
        info["resources"] = [{"desc": "语音播报", "mime": "audio/mp4", "uri": audio}]
    if cancel:
        if alert.cancelled_at is None:
            raise ValueError("alert was not cancelled")
        return cap.build(ident=ident + ".cancel", sender=sender,
                         sent=cap.cap_time(alert.cancelled_at, tz), msg_type="Cancel",
                         references=[cap.reference(sender, ident, sent)], note="该预警已撤销", info=info)
    refs = None
    if alert.references_id:
        orig = session.get(Alert, alert.references_id)
        if orig is not None:
            refs = [cap.reference(*_cap_ids(orig))]
    return cap.build(ident=ident, sender=sender, sent=sent, msg_type=alert.msg_type, references=refs, info=info)


def daily_figures(day, start, end) -> dict[str, dict[str, float]]:
    """Alerts sent in [start, end) (UTC): counted once for each targeted region, and their reach
    by the box's region: boxes targeted (under a targeted region) and boxes that acknowledged."""
    out: dict[str, dict[str, float]] = {}

    def add(path, metric, n):
        f = out.setdefault(path, {})
        f[metric] = f.get(metric, 0) + n

    alerts = list(session.scalars(select(Alert).where(Alert.sent_at >= start, Alert.sent_at < end,
                                                      Alert.msg_type == "Alert")))
    for a in alerts:
        paths = [r.path for r in a.regions]
        for p in paths:
            add(p, "alerts.sent", 1)
        cond = or_(*[Terminal.region_path.startswith(p, autoescape=True) for p in paths]) if paths else literal(False)
        for path, n in session.execute(select(Terminal.region_path, func.count()).where(cond)
                                       .group_by(Terminal.region_path)):
            add(path, "alerts.targeted", n)
        for path, n in session.execute(select(Terminal.region_path, func.count(AlertAck.id))
                                       .join(Terminal, Terminal.serial == AlertAck.serial)
                                       .where(AlertAck.alert_id == a.id).group_by(Terminal.region_path)):
            add(path, "alerts.acked", n)
    return out
