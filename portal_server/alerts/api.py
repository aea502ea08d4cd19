"""JSON API of emergency alerts (INTERFACES §4): send, read with delivery figures, CAP 1.2, approve,
reject, update, cancel; the TV portal's ack."""
from __future__ import annotations

from flask import Response, g, request
from pydantic import BaseModel, Field

from portal_server.core.api import ApiError, bad_request, conflict, forbidden, json_body, make_blueprint, \
    not_found, paginate, responds
from portal_server.core.auth import api_user_required, bearer_user, terminal_required
from portal_server.core.db import session

from . import operations as ops, queries
from .models import STATUS_NAMES, STATUSES

bp = make_blueprint("alerts_api", __name__)


class AlertIn(BaseModel):
    """An alert (CAP values). ``template`` (flood, typhoon, fire, power_cut, water_cut, security, epidemic)
    fills the fields not given."""
    regions: list[str] = Field(description="region codes (city, town or village) inside the sender's scope")
    category: str = Field(description="Geo, Met, Safety, Security, Rescue, Fire, Health, Env, Transport, Infra, CBRNE, Other")
    event: str | None = None
    severity: str = Field(description="Extreme, Severe, Moderate, Minor, Unknown")
    urgency: str = Field(description="Immediate, Expected, Future, Past, Unknown")
    certainty: str = Field(description="Observed, Likely, Possible, Unlikely, Unknown")
    headline: str
    description: str | None = None
    instruction: str | None = None
    expires: str | None = Field(None, description="ISO 8601; default 6 hours from now; at most 7 days")
    display: str | None = Field(None, description="fullscreen or banner (default from severity/urgency)")
    template: str | None = None
    idempotency_key: str | None = None


class UpdateIn(BaseModel):
    """The fields that change (the rest are kept)."""
    headline: str | None = None
    description: str | None = None
    instruction: str | None = None
    severity: str | None = None
    urgency: str | None = None
    certainty: str | None = None
    category: str | None = None
    event: str | None = None
    expires: str | None = None


class ReasonIn(BaseModel):
    reason: str | None = None


def _alert(alert_id: int, for_write: bool = False):
    a = queries.alert_get(alert_id)
    if a is None or not queries.visible_to(a, g.user.scope):
        raise not_found(f"alert {alert_id}")
    return a


@bp.post("/alerts")
@api_user_required(*ops.SENDER_ROLES)
def create():
    """Send an alert to ``regions`` (201; 200 with the same alert for a repeated ``idempotency_key``).

    Severe/Extreme: ``pending_approval`` until a second person approves, unless ``urgency`` is
    Immediate (then ``active`` at once, confirmed afterwards). 403 naming a region outside your scope;
    400 naming the field for a missing headline, an expiry in the past or an unknown CAP value."""
    data = json_body()
    alert, created = ops.create(data, g.user, idempotency_key=data.get("idempotency_key"))
    session.commit()
    return queries.alert_to_dict(alert), 201 if created else 200


create.__openapi_body__ = AlertIn


@bp.get("/alerts")
@api_user_required(*ops.READER_ROLES)
def listing():
    """Alerts visible in your scope, newest first (``?status=``)."""
    status = request.args.get("status") or None
    if status and status not in STATUSES:
        raise bad_request(f"status must be one of {', '.join(STATUSES)}", field="status")
    return paginate(queries.visible_query(g.user.scope, status), queries.alert_to_dict, session)


@bp.get("/alerts/<int:alert_id>")
@api_user_required(*ops.READER_ROLES)
def get(alert_id: int):
    """The alert with its delivery figures in your scope: ``targeted``, ``acked``, ``unacked`` (serials)
    and ``villages`` (the same per region)."""
    return queries.alert_to_dict(_alert(alert_id), with_delivery=True, scope=g.user.scope)


def _cap_response(doc: bytes) -> Response:
    return Response(doc, mimetype="application/cap+xml", headers={"Cache-Control": "no-cache"})


@bp.get("/alerts/<int:alert_id>.cap")
@responds("application/cap+xml")
def cap_document(alert_id: int):
    """The alert as a CAP 1.2 document (msgType Alert or Update). Public once sent (boxes and
    outside CAP readers fetch it); a pending alert only for staff in scope."""
    a = queries.alert_get(alert_id)
    if a is None:
        raise not_found(f"alert {alert_id}")
    if a.status in ("pending_approval", "rejected"):
        user = bearer_user()
        if user is None or not queries.visible_to(a, user.scope):
            raise not_found(f"alert {alert_id}")
    return _cap_response(queries.cap_document(a))


@bp.get("/alerts/<int:alert_id>/cancel.cap")
@responds("application/cap+xml")
def cap_cancel(alert_id: int):
    """The CAP 1.2 Cancel message of a cancelled alert (references the original)."""
    a = queries.alert_get(alert_id)
    if a is None or a.cancelled_at is None or a.status == "rejected":
        raise not_found(f"cancel message of alert {alert_id}")
    return _cap_response(queries.cap_document(a, cancel=True))


@bp.post("/alerts/<int:alert_id>/approve")
@api_user_required(*ops.SENDER_ROLES)
def approve(alert_id: int):
    """The second person: a pending Severe/Extreme alert goes out; an Immediate one is confirmed."""
    a = ops.approve(_alert(alert_id), g.user)
    session.commit()
    return queries.alert_to_dict(a)


@bp.post("/alerts/<int:alert_id>/reject")
@api_user_required(*ops.SENDER_ROLES)
def reject(alert_id: int):
    """The second person refuses a pending alert (``reason``)."""
    data = request.get_json(silent=True) or {}
    a = ops.reject(_alert(alert_id), g.user, str(data.get("reason") or ""))
    session.commit()
    return queries.alert_to_dict(a)


reject.__openapi_body__ = ReasonIn


@bp.post("/alerts/<int:alert_id>/cancel")
@api_user_required(*ops.SENDER_ROLES)
def cancel(alert_id: int):
    """Cancel (CAP Cancel referencing the original): boxes clear it."""
    data = request.get_json(silent=True) or {}
    a = ops.cancel(_alert(alert_id), g.user, str(data.get("reason") or ""))
    session.commit()
    return queries.alert_to_dict(a)


cancel.__openapi_body__ = ReasonIn


@bp.post("/alerts/<int:alert_id>/update")
@api_user_required(*ops.SENDER_ROLES)
def update(alert_id: int):
    """CAP Update: a new alert referencing this one replaces it on the same regions (201)."""
    new = ops.update(_alert(alert_id), json_body(), g.user)
    session.commit()
    return queries.alert_to_dict(new), 201


update.__openapi_body__ = UpdateIn


@bp.get("/terminal/alerts")
@terminal_required
def terminal_alerts():
    """With ``X-Terminal-Token``: the live alerts this box must show (newest first)."""
    items = queries.active_for_region_chain(g.terminal.region_codes())
    return {"items": items, "total": len(items), "page": 1, "per_page": len(items)}


@bp.post("/alerts/<int:alert_id>/ack")
@terminal_required
def ack(alert_id: int):
    """A box (the TV portal's OK) acknowledges an alert it shows."""
    a = queries.alert_get(alert_id)
    if a is None:
        raise not_found(f"alert {alert_id}")
    path = g.terminal.region_path or ""
    if not any(path.startswith(ar.path) for ar in a.regions):
        raise forbidden("该预警不是发给本机顶盒的")
    if a.status != "active":
        raise conflict(f"该预警已{STATUS_NAMES.get(a.status, a.status)}")
    first = ops.record_ack(a.id, g.terminal.serial)
    if first is None:
        raise conflict("该预警已不在播发中")
    session.commit()  # an ack kept in the database while Redis is away
    return {"id": a.id, "serial": g.terminal.serial, "acked": True, "first": first}


__all__ = ["bp", "ApiError"]
