"""JSON API of INTERFACES §4.3: grids, visits, patrols, the phone app's day, the assessment."""
from __future__ import annotations

import datetime as dt

from flask import g, request
from pydantic import BaseModel, Field

from portal_server.core import clock, scope
from portal_server.core.api import ApiError, bad_request, body, make_blueprint, paginate
from portal_server.core.auth import api_user_required
from portal_server.core.db import session
from portal_server.core.regions import region_by_code

from . import operations as ops
from . import queries
from .models import LEVELS, Patrol

bp = make_blueprint("grids_api", __name__)

#: Who reads the assessment (leaders are analysts).
ASSESSMENT_ROLES = ("admin", "analyst", "handler", "clerk", "grid_worker", "reviewer")


class GridIn(BaseModel):
    region_code: str = Field(description="a village code inside the caller's scope")
    name: str = Field(max_length=64)
    worker: str = Field(description="username of a grid worker of that village")


class HouseholdsIn(BaseModel):
    household_ids: list[int]


class VisitIn(BaseModel):
    household_id: int | None = Field(None, description="required for visit and event")
    kind: str = Field("visit", description="visit, patrol or event")
    note: str = Field("", max_length=2000)
    category: str | None = Field(None, description="feedback category of an event: files a work order (channel grid)")
    lat: float | None = None
    lon: float | None = None
    photo: str | None = Field(None, description="JPEG/PNG as a data: URL or base64, at most 10 MB")
    idempotency_key: str | None = Field(None, max_length=80, description="client-generated: a replay is stored once")
    recorded_at: str | None = Field(None, description="when it was written on the phone (ISO 8601)")


class TrackIn(BaseModel):
    points: list[list[float]] = Field(default_factory=list, description="[[lat, lon, epoch seconds], ...]")


@bp.post("/grids")
@api_user_required(*ops.MANAGER_ROLES)
@body(GridIn)
def create_grid(data: GridIn):
    """A grid inside a village; the worker must be a grid worker of that village (else 400)."""
    grid = ops.create_grid(g.user, data.region_code, data.name, data.worker)
    session.commit()
    return queries.grid_to_dict(grid, 0), 201


@bp.get("/grids")
@api_user_required()
def list_grids():
    """Grids in the caller's scope (``?region=`` narrows), each with its ``households`` count."""
    region = None
    if request.args.get("region"):
        region = scope.require(g.user, request.args["region"], "网格")
    out = paginate(queries.grids_query(g.user, region), lambda x: x, session)
    counts = queries.household_counts([x.id for x in out["items"]])
    out["items"] = [queries.grid_to_dict(x, counts.get(x.id, 0)) for x in out["items"]]
    return out


@bp.get("/grids/<int:grid_id>")
@api_user_required()
def get_grid(grid_id: int):
    """One grid with its households."""
    grid = queries.grid_for(g.user, grid_id)
    if grid is None:
        raise ApiError(404, "not_found", f"网格 {grid_id} 不存在")
    out = queries.grid_to_dict(grid)
    out["household_list"] = [queries.household_to_dict(h, gr) for h, gr in
                             queries.village_households(grid.region) if gr is not None and gr.id == grid.id]
    return out


@bp.post("/grids/<int:grid_id>/households")
@api_user_required(*ops.MANAGER_ROLES)
@body(HouseholdsIn)
def assign(grid_id: int, data: HouseholdsIn):
    """Put households into the grid; a household belongs to one grid at a time (it leaves its old one)."""
    grid = queries.grid_for(g.user, grid_id)
    if grid is None:
        raise ApiError(404, "not_found", f"网格 {grid_id} 不存在")
    result = ops.assign_households(g.user, grid, data.household_ids)
    session.commit()
    return {"id": grid.id, "households": queries.household_counts([grid.id]).get(grid.id, 0), **result}


@bp.post("/visits")
@api_user_required("grid_worker")
@body(VisitIn)
def record_visit(data: VisitIn):
    """A grid worker's visit, patrol note or event (an event with a ``category`` files a work order,
    channel ``grid``, and answers with its ``feedback_id``). A replayed ``idempotency_key`` → 200
    with the stored entry. A household outside the worker's grids → 403."""
    recorded_at = None
    if data.recorded_at:
        try:
            recorded_at = clock.parse(data.recorded_at)
        except ValueError:
            raise bad_request("recorded_at 时间格式不正确", field="recorded_at") from None
    visit, created = ops.record_visit(g.user, household_id=data.household_id, kind=data.kind, note=data.note,
                                      category=data.category, lat=data.lat, lon=data.lon, photo=data.photo,
                                      idempotency_key=data.idempotency_key, recorded_at=recorded_at)
    session.commit()
    return {**queries.visit_to_dict(visit), "created": created}, 201 if created else 200


@bp.get("/visits")
@api_user_required("grid_worker")
def my_visits():
    """The worker's 民情日志 of ``?day=YYYY-MM-DD`` (today by default)."""
    day = None
    if request.args.get("day"):
        try:
            day = dt.date.fromisoformat(request.args["day"])
        except ValueError:
            raise bad_request("day 必须是 YYYY-MM-DD", field="day") from None
    rows = queries.day_log(g.user, day)
    return {"items": [queries.visit_to_dict(v) for v in rows], "total": len(rows), "page": 1,
            "per_page": len(rows)}


@bp.get("/grids/me")
@api_user_required("grid_worker")
def my_day():
    """The phone app's day in one request: tasks (care, unacked alerts, follow-ups), my households
    with tags, today's log and the running patrol."""
    return queries.today(g.user)


@bp.post("/patrols")
@api_user_required("grid_worker")
def start_patrol():
    """Start a patrol (the running one if there is one)."""
    p = ops.start_patrol(g.user)
    session.commit()
    return queries.patrol_to_dict(p), 201


def _patrol(patrol_id: int):
    p = session.get(Patrol, patrol_id)
    if p is None or p.worker_id != g.user.id:
        raise ApiError(404, "not_found", f"巡查 {patrol_id} 不存在")
    return p


@bp.post("/patrols/<int:patrol_id>/track")
@api_user_required("grid_worker")
@body(TrackIn)
def add_track(patrol_id: int, data: TrackIn):
    """Append points to the running patrol's track."""
    p = ops.add_track(g.user, _patrol(patrol_id), data.points)
    session.commit()
    return queries.patrol_to_dict(p)


@bp.post("/patrols/<int:patrol_id>/stop")
@api_user_required("grid_worker")
@body(TrackIn)
def stop_patrol(patrol_id: int, data: TrackIn):
    """Stop the patrol (with its last points); its length is computed from the track."""
    p = ops.stop_patrol(g.user, _patrol(patrol_id), data.points)
    session.commit()
    return queries.patrol_to_dict(p)


def assessment_args(user):
    """(region, level, period, start, end) from ``?period=&level=&region=&date=`` (400 on nonsense)."""
    period = request.args.get("period", "week")
    if period not in ("week", "month"):
        raise bad_request("period 必须是 week 或 month", field="period")
    level = request.args.get("level", "worker")
    if level not in LEVELS:
        raise bad_request("level 必须是 worker、grid 或 village", field="level")
    code = request.args.get("region") or user.region.code
    region = region_by_code(code)
    if region is None:
        raise bad_request(f"区域 {code} 不存在", field="region")
    scope.require(user, region, "考核")
    day = None
    if request.args.get("date"):
        try:
            day = dt.date.fromisoformat(request.args["date"])
        except ValueError:
            raise bad_request("date 必须是 YYYY-MM-DD", field="date") from None
    start, end = queries.period_bounds(period, day)
    return region, level, period, start, end


@bp.get("/assessment")
@api_user_required(*ASSESSMENT_ROLES)
def assessment():
    """``{"items": [{"key","name","visits","events","on_time_rate","points","card"}]}`` per worker,
    grid or village of the region (default: the caller's) for the week or month containing ``?date=``."""
    region, level, period, start, end = assessment_args(g.user)
    items = queries.assessment(region, level, start, end)
    return {"items": items, "total": len(items), "page": 1, "per_page": len(items), "period": period,
            "level": level, "region": region.code, "from": start.isoformat(),
            "to": (end - dt.timedelta(days=1)).isoformat()}
