"""Open311 GeoReport v2 (http://wiki.open311.org/GeoReport_v2/) for the 12345 centre's clients.

- ``GET /open311/v2/services.json`` — the ten categories (public).
- ``GET /open311/v2/requests.json`` — requests (needs ``api_key``: residents' reports are not public).
- ``POST /open311/v2/requests.json`` — create (``api_key``, ``service_code``, ``description``,
  ``address_id`` = the village code; optional ``lat``/``long``, ``address_string``, ``phone``).
- ``GET /open311/v2/requests/<id>.json`` — one request (id = the order code).

``api_key`` is a bearer token of a handler account (the ``hotline`` account: get it from
``POST /api/v1/auth/token``). Errors come as GeoReport errors: ``[{"code": 400, "description": ...}]``.
"""
from __future__ import annotations

from flask import Blueprint, Response, current_app, g, jsonify, request
from sqlalchemy import select

from portal_server.core import i18n
from portal_server.core.accounts import user_for_token
from portal_server.core.api import ApiError, iso
from portal_server.core.db import session
from portal_server.core.regions import region_by_code

from . import operations as ops
from . import queries
from .models import CATEGORIES, CATEGORY_NAMES, WorkOrder

bp = Blueprint("open311", __name__, url_prefix="/open311/v2")

GROUPS = {"water": "公共设施", "roads": "公共设施", "electricity": "公共设施", "sanitation": "环境",
          "security": "平安", "disputes": "平安", "assistance": "民生", "elderly": "民生",
          "party": "党建", "other": "其他"}


class Open311Error(Exception):
    def __init__(self, status: int, description: str):
        super().__init__(description)
        self.status, self.description = status, description


def _georeport_error(status: int, message: str, field: str | None = None):
    """GeoReport's error list, the description in the client's language (Chinese unless it asks for
    English), as every other API error (``core.i18n``)."""
    text = i18n.translate(message, status)[0] + (f" ({field})" if field else "")
    return jsonify([{"code": status, "description": text}]), status


@bp.errorhandler(Open311Error)
def _err(e: Open311Error):
    return _georeport_error(e.status, e.description)


@bp.errorhandler(ApiError)
def _api_err(e: ApiError):
    return _georeport_error(e.status, e.message, e.extra.get("field"))


def _params() -> dict:
    data = dict(request.args.items())
    if request.method == "POST":
        if request.is_json:
            data.update({k: v for k, v in (request.get_json(silent=True) or {}).items()})
        else:
            data.update(request.form.items())
    return data


def _api_user(params: dict):
    key = params.get("api_key") or ""
    user = user_for_token(key) if key else None
    if user is None:
        raise Open311Error(401, "api_key missing or invalid")
    if not user.has_role("handler"):
        raise Open311Error(403, "this api_key may not use the Open311 endpoint")
    return user


def _status(o: WorkOrder) -> str:
    return "closed" if o.status == "closed" else "open"


def request_to_dict(o: WorkOrder) -> dict:
    return {"service_request_id": o.code, "status": _status(o),
            "status_notes": o.reply or "", "service_name": CATEGORY_NAMES[o.category],
            "service_code": o.category, "description": o.content,
            "agency_responsible": queries.desk_name(o.handler_level, o.handler_code),
            "service_notice": "", "requested_datetime": iso(o.created_at),
            "updated_datetime": iso(o.updated_at), "expected_datetime": iso(o.deadline_at),
            "address": o.address or o.region.name, "address_id": o.region.code,
            "zipcode": None, "lat": o.lat, "long": o.lon, "media_url": None}


def _services() -> list[dict]:
    return [{"service_code": c, "service_name": CATEGORY_NAMES[c],
             "description": f"{CATEGORY_NAMES[c]}方面的诉求", "metadata": False,
             "type": "realtime", "keywords": c, "group": GROUPS[c]} for c in CATEGORIES]


@bp.get("/services.json")
def services():
    """Open311: the service list (our ten feedback categories)."""
    return jsonify(_services())


@bp.get("/services.xml")
def services_xml():
    """Open311: the service list as GeoReport v2 XML."""
    from lxml import etree

    root = etree.Element("services")
    for svc in _services():
        el = etree.SubElement(root, "service")
        for k, v in svc.items():
            etree.SubElement(el, k).text = str(v).lower() if isinstance(v, bool) else str(v)
    return Response(etree.tostring(root, xml_declaration=True, encoding="utf-8"),
                    mimetype="text/xml")


@bp.get("/discovery.json")
def discovery():
    """Open311 service discovery: where this GeoReport v2 endpoint lives."""
    base = current_app.config["SETTINGS"].public_url.rstrip("/") + "/open311/v2/"
    return jsonify({"changeset": "2026-11-22T00:00:00+08:00", "contact": "12345",
                    "key_service": "api_key = a bearer token of the hotline account (POST /api/v1/auth/token)",
                    "endpoints": [{"specification": "http://wiki.open311.org/GeoReport_v2", "url": base,
                                   "changeset": "2026-11-22T00:00:00+08:00", "type": "production",
                                   "formats": ["application/json"]}]})


@bp.route("/requests.json", methods=["GET", "POST"])
def requests_():
    """Open311: list requests (GET) or create one (POST)."""
    params = _params()
    user = _api_user(params)
    g.user = user
    if request.method == "GET":
        q = queries.visible_query(user)
        if params.get("service_code"):
            q = q.where(WorkOrder.category.in_(params["service_code"].split(",")))
        if params.get("status") in ("open", "closed"):
            q = q.where(WorkOrder.status == "closed") if params["status"] == "closed" \
                else q.where(WorkOrder.status != "closed")
        if params.get("service_request_id"):
            q = q.where(WorkOrder.code.in_(params["service_request_id"].split(",")))
        rows = session.scalars(q.order_by(WorkOrder.id.desc()).limit(1000)).all()
        return jsonify([request_to_dict(o) for o in rows])
    code = params.get("service_code")
    if not code:
        raise Open311Error(400, "service_code is required")
    if code not in CATEGORIES:
        raise Open311Error(400, f"service_code {code!r} not found")
    region = region_by_code(params.get("address_id") or "")
    if region is None or region.level != "village":
        raise Open311Error(400, "address_id must be a village code of this jurisdiction")
    if not user.scope.covers(region):
        raise Open311Error(403, "address_id is outside this api_key's jurisdiction")
    try:
        lat = float(params["lat"]) if params.get("lat") not in (None, "") else None
        lon = float(params["long"]) if params.get("long") not in (None, "") else None
    except ValueError:
        raise Open311Error(400, "lat and long must be numbers") from None
    order, _created = ops.submit(code, params.get("description") or "", False, channel="open311",
                                 actor=ops.Actor(user=user), region=region,
                                 idem_owner=f"user:{user.id}",
                                 idempotency_key=params.get("attribute[idempotency_key]")
                                 or params.get("idempotency_key"),
                                 contact=params.get("phone"), lat=lat, lon=lon,
                                 address=params.get("address_string"))
    session.commit()
    return jsonify([{"service_request_id": order.code, "service_notice": "已受理，将转至" +
                     queries.desk_name(order.handler_level, order.handler_code),
                     "account_id": None}]), 201


@bp.get("/requests/<code>.json")
def one_request(code: str):
    """Open311: one request by its id (the order code)."""
    user = _api_user(_params())
    order = session.scalar(select(WorkOrder).where(WorkOrder.code == code))
    if order is None or not ops.can_view(user, order):
        raise Open311Error(404, f"service_request_id {code} not found")
    return jsonify([request_to_dict(order)])
