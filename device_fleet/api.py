"""Fleet API: terminal listing and detail (INTERFACES §4)."""
from __future__ import annotations

import datetime as dt

from flask import g, jsonify, request
from sqlalchemy import select

from portal_server.core.api import ApiError, bad_request, iso, make_blueprint, not_found, page_args
from portal_server.core.auth import api_user_required
from portal_server.core.db import session
from portal_server.core.regions import Region, region_by_code
from portal_server.core.terminals import KINDS, Terminal, portal_url, terminal_by_serial

from . import presence

bp = make_blueprint("fleet_api", __name__)


def _ts(epoch: float | None) -> str | None:
    return iso(dt.datetime.fromtimestamp(epoch, dt.timezone.utc)) if epoch else None


def terminal_to_dict(t: Terminal, pres: tuple | None = None) -> dict:
    online, seen, hb = pres or (False, None, None)
    out = {"serial": t.serial, "kind": t.kind, "region_code": t.region.code if t.region else None,
           "household_id": t.household_id, "department": t.department_code, "model": t.model,
           "firmware": (hb or {}).get("fw") or t.firmware, "online": online, "last_seen": _ts(seen),
           "last_heartbeat": hb, "paired": t.paired}
    if t.paired:
        out["portal_url"] = portal_url(t)
    return out


def _scoped_query(user):
    """Terminals in the caller's scope; unbound inventory is visible to city-level staff only."""
    scope = user.scope
    q = select(Terminal).order_by(Terminal.serial)
    if user.region.level == "city":
        return q.where((Terminal.region_path.is_(None)) | scope.region_filter(Terminal.region_path))
    return q.where(scope.region_filter(Terminal.region_path))


@bp.get("/terminals")
@api_user_required()
def list_terminals():
    """Fleet listing, filtered by ?status=online|offline, ?region=<code>, ?kind=a,b."""
    q = _scoped_query(g.user)
    kinds = [k for k in request.args.get("kind", "").split(",") if k]
    bad = [k for k in kinds if k not in KINDS]
    if bad:
        raise bad_request(f"unknown kind: {', '.join(bad)} (kinds: {', '.join(KINDS)})", field="kind")
    if kinds:
        q = q.where(Terminal.kind.in_(kinds))
    code = request.args.get("region")
    if code:
        r = region_by_code(code)
        if r is None:
            raise not_found(f"region {code}")
        if not g.user.scope.covers(r):
            raise ApiError(403, "forbidden", f"region {code} is outside your scope")
        q = q.where(Terminal.region_path.startswith(r.path))
    status = request.args.get("status")
    if status not in (None, "", "online", "offline"):
        raise bad_request("status must be online or offline", field="status")
    page, per_page = page_args(max_per_page=1000)
    if status:
        online = presence.online_serials()
        rows = session.scalars(q).all()
        rows = [t for t in rows if (t.serial in online) == (status == "online")]
        total = len(rows)
        rows = rows[(page - 1) * per_page: page * per_page]
    else:
        from sqlalchemy import func
        total = session.scalar(select(func.count()).select_from(q.order_by(None).subquery()))
        rows = session.scalars(q.limit(per_page).offset((page - 1) * per_page)).all()
    pres = presence.presence([t.serial for t in rows])
    return jsonify({"items": [terminal_to_dict(t, pres[t.serial]) for t in rows], "total": total,
                    "page": page, "per_page": per_page})


@bp.get("/terminals/<serial>")
@api_user_required()
def get_terminal(serial: str):
    """One terminal with its presence and latest heartbeat."""
    t = terminal_by_serial(serial)
    if t is None or not (t.region_path is None and g.user.region.level == "city"
                         or t.region_path and t.region_path.startswith(g.user.scope.path)):
        raise not_found(f"terminal {serial}")
    return jsonify(terminal_to_dict(t, presence.presence([serial])[serial]))
