"""Fleet API: terminal listing and detail (INTERFACES §4)."""
from __future__ import annotations

import datetime as dt

from flask import g, jsonify, request
from sqlalchemy import select

from portal_server.core import scope
from portal_server.core.api import ApiError, bad_request, iso, make_blueprint, not_found, page_args
from portal_server.core.auth import api_user_required
from portal_server.core.db import session
from portal_server.core.regions import region_by_code
from portal_server.core.terminals import KINDS, Terminal, portal_url, terminal_by_serial

from . import presence

bp = make_blueprint("fleet_api", __name__)


def _ts(epoch: float | None) -> str | None:
    return iso(dt.datetime.fromtimestamp(epoch, dt.timezone.utc)) if epoch else None


#: Roles that may read a box's portal URL (it carries the box's token: whoever holds it can act
#: as the box, e.g. fake an old person's daily check-in).
TOKEN_READERS = ("admin", "noc")


def terminal_to_dict(t: Terminal, pres: tuple | None = None, with_token: bool = False) -> dict:
    online, seen, hb = pres or (False, None, None)
    out = {"serial": t.serial, "kind": t.kind, "region_code": t.region.code if t.region else None,
           "household_id": t.household_id, "department": t.department_code, "model": t.model,
           "firmware": (hb or {}).get("fw") or t.firmware, "online": online, "last_seen": _ts(seen),
           "last_heartbeat": hb, "paired": t.paired}
    if t.paired and with_token:
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
        scope.require(g.user, r)
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
    tokens = g.user.has_role(*TOKEN_READERS)
    return jsonify({"items": [terminal_to_dict(t, pres[t.serial], tokens) for t in rows], "total": total,
                    "page": page, "per_page": per_page})


@bp.get("/terminals/<serial>")
@api_user_required()
def get_terminal(serial: str):
    """One terminal with its presence and latest heartbeat."""
    t = terminal_by_serial(serial)
    if t is None or not (t.region_path is None and g.user.region.level == "city"
                         or t.region_path and t.region_path.startswith(g.user.scope.path)):
        raise not_found(f"terminal {serial}")
    return jsonify(terminal_to_dict(t, presence.presence([serial])[serial],
                                    g.user.has_role(*TOKEN_READERS)))


# Pairing, commands, rollouts ------------------------------------------------------------------

from typing import Any, Literal  # noqa: E402

from pydantic import BaseModel, Field  # noqa: E402

from portal_server.core.api import body, conflict  # noqa: E402

from . import operations, queries  # noqa: E402
from .models import Command, Rollout  # noqa: E402
from .operations import FleetError  # noqa: E402


def _fleet_error(exc: FleetError) -> ApiError:
    return bad_request(str(exc), field=exc.field)


def _terminal_in_scope(serial: str) -> Terminal:
    t = terminal_by_serial(serial)
    if t is None or not (t.region_path is None and g.user.region.level == "city"
                         or t.region_path and t.region_path.startswith(g.user.scope.path)):
        raise not_found(f"terminal {serial}")
    return t


class BindBody(BaseModel):
    household_id: int | None = None
    region_code: str | None = Field(None, pattern=r"^\d{12}$")


@bp.post("/terminals/<serial>/bind")
@api_user_required("noc", "grid_worker")
@body(BindBody)
def bind(serial: str, data: BindBody):
    """Bind a box to a household (or an institutional terminal to a region); its config flips to paired."""
    t = _terminal_in_scope(serial)
    try:
        operations.bind_terminal(t, g.user, household_id=data.household_id, region_code=data.region_code)
    except FleetError as exc:
        raise _fleet_error(exc) from None
    session.commit()
    return jsonify(terminal_to_dict(t, presence.presence([serial])[serial],
                                    g.user.has_role(*TOKEN_READERS)))


class RotateBody(BaseModel):
    reason: str = Field("", max_length=200)


@bp.post("/terminals/<serial>/token/rotate")
@api_user_required("admin", "noc")
@body(RotateBody)
def rotate_token(serial: str, data: RotateBody):
    """A new portal URL for one box (the old URL and token stop working); its retained config carries
    the new one. → the terminal, with ``portal_url`` and ``token_version``."""
    t = _terminal_in_scope(serial)
    try:
        operations.rotate_portal_token(t, g.user, data.reason)
    except FleetError as exc:
        raise _fleet_error(exc) from None
    session.commit()
    out = terminal_to_dict(t, presence.presence([serial])[serial], g.user.has_role(*TOKEN_READERS))
    out["token_version"] = t.token_version
    return jsonify(out)


def command_to_dict(c: Command) -> dict:
    return {"id": c.id, "serial": c.serial, "type": c.type, "args": c.args, "status": c.status,
            "detail": c.detail, "created_at": iso(c.created_at), "expires_at": iso(c.expires_at),
            "acked_at": iso(c.acked_at), "created_by": c.created_by, "batch_id": c.batch_id}


class CommandBody(BaseModel):
    type: Literal["reboot", "reload", "tune", "message", "upgrade"]
    args: dict[str, Any] = Field(default_factory=dict)
    expires_s: int = Field(3600, ge=10, le=7 * 86400)


@bp.post("/terminals/<serial>/commands")
@api_user_required("noc")
@body(CommandBody)
def send_command(serial: str, data: CommandBody):
    """Send a command to one box: → {"id","status":"sent"}; its ack shows in GET /commands/<id>."""
    t = _terminal_in_scope(serial)
    try:
        cmd = operations.send_commands([t], data.type, data.args, g.user, expires_s=data.expires_s)[0]
    except FleetError as exc:
        raise _fleet_error(exc) from None
    session.commit()
    return jsonify(command_to_dict(cmd)), 201


class BulkCommandBody(CommandBody):
    region: str | None = None
    model: str | None = None
    firmware: str | None = None
    kind: str | None = None


@bp.post("/commands")
@api_user_required("noc")
@body(BulkCommandBody)
def send_bulk(data: BulkCommandBody):
    """Send a command to every box in scope matching region/model/firmware/kind."""
    selector = {k: v for k, v in data.model_dump().items() if k in ("region", "model", "firmware", "kind") and v}
    terms = queries.select_terminals(g.user.scope, **selector)
    try:
        cmds = operations.send_commands(terms, data.type, data.args, g.user, expires_s=data.expires_s,
                                        selector=selector)
    except FleetError as exc:
        raise _fleet_error(exc) from None
    session.commit()
    return jsonify({"batch_id": cmds[0].batch_id, "total": len(cmds), "status": "sent",
                    "ids": [c.id for c in cmds]}), 201


@bp.get("/commands/<cmd_id>")
@api_user_required()
def get_command(cmd_id: str):
    """One command with its per-box result."""
    c = queries.command(cmd_id, g.user.scope)
    if c is None:
        raise not_found(f"command {cmd_id}")
    return jsonify(command_to_dict(c))


@bp.get("/terminals/<serial>/commands")
@api_user_required()
def terminal_commands(serial: str):
    """The latest commands sent to a box."""
    _terminal_in_scope(serial)
    items = [command_to_dict(c) for c in queries.commands_for(serial)]
    return jsonify({"items": items, "total": len(items), "page": 1, "per_page": len(items)})


def rollout_to_dict(ro: Rollout) -> dict:
    from .models import Firmware
    fw = session.get(Firmware, ro.firmware_id)
    return {"id": ro.id, "version": fw.version, "status": ro.status, "wave": ro.wave, "waves": ro.waves,
            "success_threshold": ro.success_threshold, "error_threshold": ro.error_threshold,
            "pause_reason": ro.pause_reason, "previous_version": ro.previous_version,
            "counts": operations.rollout_counts(ro), "created_at": iso(ro.created_at)}


class RolloutBody(BaseModel):
    version: str
    waves: list[int] = Field(default_factory=lambda: [5, 15, 80, 100])
    success_threshold: float = Field(0.9, gt=0, le=1)
    error_threshold: float = Field(0.1, gt=0, le=1)
    region: str | None = None
    model: str | None = None
    firmware: str | None = None


@bp.post("/rollouts")
@api_user_required("noc")
@body(RolloutBody)
def create_rollout(data: RolloutBody):
    """Roll an uploaded firmware out in waves."""
    from sqlalchemy import select as sel
    from .models import Firmware
    fw = session.scalar(sel(Firmware).where(Firmware.version == data.version))
    if fw is None:
        raise not_found(f"firmware {data.version}")
    selector = {k: getattr(data, k) for k in ("region", "model", "firmware") if getattr(data, k)}
    try:
        ro = operations.start_rollout(fw, g.user, selector, data.waves, data.success_threshold, data.error_threshold)
    except FleetError as exc:
        raise _fleet_error(exc) from None
    session.commit()
    return jsonify(rollout_to_dict(ro)), 201


@bp.get("/rollouts/<int:rid>")
@api_user_required("noc")
def get_rollout(rid: int):
    """A rollout with its counts per target status."""
    ro = session.get(Rollout, rid)
    if ro is None:
        raise not_found(f"rollout {rid}")
    operations.require_rollout_scope(ro, g.user)
    return jsonify(rollout_to_dict(ro))


@bp.post("/rollouts/<int:rid>/<action>")
@api_user_required("noc")
def rollout_action(rid: int, action: str):
    """Pause, resume or roll back a rollout."""
    ro = session.get(Rollout, rid)
    if ro is None or action not in ("pause", "resume", "rollback"):
        raise not_found(f"rollout {rid}/{action}")
    try:
        {"pause": operations.pause_rollout, "resume": operations.resume_rollout,
         "rollback": operations.rollback_rollout}[action](ro, g.user)
    except FleetError as exc:
        raise conflict(str(exc)) from None
    session.commit()
    return jsonify(rollout_to_dict(ro))


@bp.get("/alarms")
@api_user_required()
def list_alarms():
    """Active NOC alarms in scope (?active=0 for cleared ones)."""
    active = request.args.get("active", "1") not in ("0", "false")
    items = [{"id": a.id, "kind": a.kind, "serial": a.serial, "region_code": a.region_code, "message": a.message,
              "raised_at": iso(a.raised_at), "cleared_at": iso(a.cleared_at)}
             for a in queries.alarms(g.user.scope, active=active)]
    return jsonify({"items": items, "total": len(items), "page": 1, "per_page": len(items)})
