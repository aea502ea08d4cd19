"""Every write of grids and field work: validate → change → flush → audit → outbox.

The caller commits once. Errors are core ``ApiError``s with Chinese messages (400 bad input,
403 scope or a household outside the worker's grids, 404 unknown things).
"""
from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import math
import secrets
from pathlib import Path

from flask import current_app
from sqlalchemy import delete, select

from portal_server.core import audit, clock, outbox, scope
from portal_server.core.accounts import User, user_by_username
from portal_server.core.api import ApiError, bad_request, forbidden
from portal_server.core.db import add_once, session
from portal_server.core.households import Household
from portal_server.core.regions import region_by_code
from portal_server.feedback import operations as feedback_ops

from .models import (
    RULES,
    VISIT_KINDS,
    AssessmentRule,
    Grid,
    GridHousehold,
    Patrol,
    Visit,
    WeeklyReport,
)

MAX_PHOTO_BYTES = feedback_ops.MAX_PHOTO_BYTES
MAX_NOTE = 2000
MAX_TRACK_POINTS = 5000
#: Who manages grids (creates them, assigns households).
MANAGER_ROLES = ("admin", "clerk")


# Grids ------------------------------------------------------------------------------------

def _require_manager(user: User) -> None:
    if not user.has_role(*MANAGER_ROLES):
        raise forbidden("只有管理员和办事员可以管理网格")


def create_grid(user: User, region_code: str, name: str, worker: str) -> Grid:
    """A grid in a village of the caller's scope; ``worker`` must be a grid worker of that village (400)."""
    _require_manager(user)
    region = region_by_code((region_code or "").strip())
    if region is None:
        raise bad_request(f"区域 {region_code} 不存在", field="region_code")
    if region.level != "village":
        raise bad_request("网格必须建在村（社区）内，请填写村级区划代码", field="region_code")
    scope.require(user, region, "网格")
    name = (name or "").strip()
    if not name or len(name) > 64:
        raise bad_request("请填写网格名称（不超过64个字）", field="name")
    w = user_by_username((worker or "").strip())
    if w is None or not w.active:
        raise bad_request(f"网格员账号 {worker} 不存在或已停用", field="worker")
    if "grid_worker" not in w.roles:
        raise bad_request(f"账号 {worker} 不是网格员", field="worker")
    if w.region_id != region.id:
        raise bad_request(f"网格员 {worker} 不属于{region.name}，不能负责该村的网格", field="worker")
    if session.scalar(select(Grid.id).where(Grid.region_id == region.id, Grid.name == name)):
        raise bad_request(f"{region.name}已有名为“{name}”的网格", field="name")
    grid = Grid(region_id=region.id, region_path=region.path, name=name, worker_id=w.id,
                created_by=user.username, created_at=clock.now())
    grid.region, grid.worker = region, w
    session.add(grid)
    session.flush()
    audit.record("grid.create", "grid", grid.id, region.code, actor=user.username, name=name,
                 worker=w.username)
    return grid


def assign_households(user: User, grid: Grid, household_ids: list) -> dict:
    """Put households (of the grid's village) into ``grid``; one moving from another grid leaves it.

    Returns {"assigned": n, "moved": m}. Any id that is not a household of the village → 400,
    nothing changed."""
    _require_manager(user)
    scope.require(user, grid.region, "网格")
    if not isinstance(household_ids, list) or not household_ids:
        raise bad_request("请选择要划入网格的住户", field="household_ids")
    try:
        ids = sorted({int(i) for i in household_ids if not isinstance(i, bool)})
    except (TypeError, ValueError):
        raise bad_request("household_ids 必须是住户编号列表", field="household_ids") from None
    if len(ids) > 5000:
        raise bad_request("一次最多划入5000户", field="household_ids")
    rows = {h.id: h for h in session.scalars(select(Household).where(Household.id.in_(ids)))}
    bad = [i for i in ids if i not in rows or rows[i].region_id != grid.region_id]
    if bad:
        raise bad_request(f"住户 {', '.join(map(str, bad[:10]))} 不在{grid.region.name}，不能划入该网格",
                          field="household_ids")
    current = {gh.household_id: gh for gh in session.scalars(
        select(GridHousehold).where(GridHousehold.household_id.in_(ids)))}
    now = clock.now()
    moved = 0
    assigned = 0
    for hid in ids:
        gh = current.get(hid)
        if gh is not None and gh.grid_id == grid.id:
            continue
        if gh is not None:
            moved += 1
            gh.grid_id, gh.assigned_by, gh.assigned_at = grid.id, user.username, now
        else:
            session.add(GridHousehold(household_id=hid, grid_id=grid.id, assigned_by=user.username,
                                      assigned_at=now))
        assigned += 1
    session.flush()
    audit.record("grid.assign", "grid", grid.id, grid.region.code, actor=user.username,
                 households=ids, moved=moved)
    return {"assigned": assigned, "moved": moved}


def remove_households(user: User, grid: Grid, household_ids: list[int]) -> int:
    """Take households out of ``grid`` (they go back to the whole village's workers)."""
    _require_manager(user)
    scope.require(user, grid.region, "网格")
    ids = [int(i) for i in household_ids]
    n = session.execute(delete(GridHousehold).where(GridHousehold.grid_id == grid.id,
                                                    GridHousehold.household_id.in_(ids))).rowcount
    session.flush()
    audit.record("grid.unassign", "grid", grid.id, grid.region.code, actor=user.username, households=ids)
    return n


# Visits and events ------------------------------------------------------------------------

def worker_grid_ids(user: User) -> list[int]:
    return list(session.scalars(select(Grid.id).where(Grid.worker_id == user.id)))


def _worker_household(user: User, household_id) -> tuple[Household, int | None]:
    """The household and its grid, if the worker may visit it: in one of their grids, or (a village
    without grids for that household) in their scope. Else 403/404."""
    try:
        hid = int(household_id)
    except (TypeError, ValueError):
        raise bad_request("household_id 必须是住户编号", field="household_id") from None
    hh = session.get(Household, hid)
    if hh is None:
        raise ApiError(404, "not_found", f"住户 {hid} 不存在")
    gh = session.get(GridHousehold, hid)
    if gh is not None:
        if gh.grid.worker_id != user.id and "admin" not in user.roles:
            raise forbidden(f"住户 {hh.number} 不在您负责的网格内")
        return hh, gh.grid_id
    if not scope.covers(user, hh.region):
        raise forbidden(f"住户 {hh.number} 不在您负责的网格内")
    if worker_grid_ids(user):
        # A worker with grids works their grids; households nobody was given stay with the village.
        raise forbidden(f"住户 {hh.number} 不在您负责的网格内")
    return hh, None


def _decode_photo(photo: str | None) -> bytes | None:
    """A data URL or plain base64 → bytes, with the size limit checked before anything else."""
    if not photo:
        return None
    if not isinstance(photo, str):
        raise bad_request("照片格式不正确，请重新拍照", field="photo")
    head, _, data = photo.partition(",") if photo.startswith("data:") else ("", "", photo)
    if head and not head.startswith("data:image/"):
        raise bad_request("所选文件不是图片，请拍照或选择 JPG、PNG 图片", field="photo")
    if len(data) > MAX_PHOTO_BYTES * 4 // 3 + 8:
        raise bad_request("照片太大（超过10MB），请重新拍照或压缩后再传", field="photo")
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise bad_request("照片格式不正确，请重新拍照", field="photo") from None
    if len(raw) > MAX_PHOTO_BYTES:
        raise bad_request("照片太大（超过10MB），请重新拍照或压缩后再传", field="photo")
    return raw


def prepare_photo(raw: bytes) -> bytes:
    """Re-encode through the feedback loop's photo check (real image, EXIF dropped) with a Chinese message."""
    try:
        prepared = feedback_ops.prepare_photos([(raw, "photo")])
    except ApiError:
        raise bad_request("所选文件不是图片，请拍照或选择 JPG、PNG 图片", field="photo") from None
    return prepared[0][0]


def _store_photo(visit: Visit, jpeg: bytes) -> str:
    media = current_app.config["SETTINGS"].media_dir
    rel = Path("grids") / str(visit.id) / f"{secrets.token_hex(8)}.jpg"
    target = media / rel
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".tmp")
    tmp.write_bytes(jpeg)
    tmp.replace(target)
    outbox.file_written(target, root=media)  # a visit that is never committed keeps no photo
    return str(rel)


def _coord(value, lo: float, hi: float, field: str) -> float | None:
    if value is None or value == "":
        return None
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise bad_request("位置坐标格式不正确", field=field) from None
    if not math.isfinite(v) or not lo <= v <= hi:
        raise bad_request("位置坐标超出范围", field=field)
    return v


def record_visit(user: User, *, household_id=None, kind: str = "visit", note: str = "",
                 category: str | None = None, lat=None, lon=None, photo: str | None = None,
                 idempotency_key: str | None = None, recorded_at: dt.datetime | None = None
                 ) -> tuple[Visit, bool]:
    """Record a visit / patrol note / event of a grid worker. An ``event`` with a feedback
    ``category`` also files a work order (channel ``grid``) at the village's desk. A replayed
    ``idempotency_key`` returns the stored entry: (visit, created)."""
    if not user.has_role("grid_worker"):
        raise forbidden("只有网格员可以记录走访")
    key = (str(idempotency_key).strip()[:80] or None) if idempotency_key is not None else None
    if key is not None:
        existing = _visit_by_key(user, key)
        if existing is not None:
            return existing, False
    if kind not in VISIT_KINDS:
        raise bad_request("kind 必须是 visit（走访）、patrol（巡查）或 event（事件）", field="kind")
    note = (note or "").strip()
    if len(note) > MAX_NOTE:
        raise bad_request(f"记录内容太长（最多{MAX_NOTE}字）", field="note")
    lat = _coord(lat, -90, 90, "lat")
    lon = _coord(lon, -180, 180, "lon")
    raw = _decode_photo(photo)
    jpeg = prepare_photo(raw) if raw else None
    if household_id is None or household_id == "":
        if kind != "patrol":
            raise bad_request("请选择住户", field="household_id")
        hh, grid_id, region = None, None, user.region
        if region.level != "village":
            raise bad_request("请选择住户", field="household_id")
    else:
        hh, grid_id = _worker_household(user, household_id)
        region = hh.region
    if kind == "event":
        if not category:
            raise bad_request("上报事件请选择类别", field="category")
        if category not in feedback_ops.CATEGORIES:
            raise bad_request(f"未知的事件类别 {category}", field="category")
        if not note:
            raise bad_request("上报事件请填写情况说明", field="note")
    elif category:
        category = None
    now = clock.now()
    when = clock.utc(recorded_at) if recorded_at else now
    if when > now + dt.timedelta(minutes=5):
        when = now
    visit = Visit(worker_id=user.id, grid_id=grid_id, household_id=hh.id if hh else None,
                  region_id=region.id, region_path=region.path, kind=kind, note=note, category=category,
                  lat=lat, lon=lon, client_key=key, recorded_at=when, created_at=now)
    if key is not None:
        visit, created = add_once(visit, lambda: _visit_by_key(user, key))
        if not created:
            return visit, False
    else:
        session.add(visit)
        session.flush()
    if jpeg:
        visit.photo_path = _store_photo(visit, jpeg)
    if kind == "event":
        order, _created = feedback_ops.submit(
            category, note, False, channel="grid", actor=feedback_ops.Actor(user=user), region=region,
            household_id=hh.id if hh else None, idem_owner=f"user:{user.id}",
            idempotency_key=f"grid-visit:{visit.id}", lat=lat, lon=lon)
        visit.feedback_id = order.id
    session.flush()
    audit.record(f"grid.{kind}", "grid_visit", visit.id, region.code, actor=user.username,
                 household=hh.number if hh else None, feedback_id=visit.feedback_id,
                 **({"category": category} if category else {}))
    return visit, True


def _visit_by_key(user: User, key: str) -> Visit | None:
    return session.scalar(select(Visit).where(Visit.worker_id == user.id, Visit.client_key == key))


# Patrols ----------------------------------------------------------------------------------

def start_patrol(user: User) -> Patrol:
    """Start a patrol (an unfinished one is returned instead of starting a second)."""
    if not user.has_role("grid_worker"):
        raise forbidden("只有网格员可以巡查")
    open_ = session.scalar(select(Patrol).where(Patrol.worker_id == user.id, Patrol.ended_at.is_(None)))
    if open_ is not None:
        return open_
    p = Patrol(worker_id=user.id, region_path=user.region.path, started_at=clock.now(), track_json="[]",
               distance_m=0.0)
    session.add(p)
    session.flush()
    audit.record("grid.patrol_start", "grid_patrol", p.id, user.region.code, actor=user.username)
    return p


def _points(points) -> list[list[float]]:
    if not isinstance(points, list):
        raise bad_request("points 必须是 [纬度, 经度, 时间] 的列表", field="points")
    out = []
    for p in points:
        if not isinstance(p, (list, tuple)) or len(p) < 2:
            raise bad_request("轨迹点格式不正确", field="points")
        lat = _coord(p[0], -90, 90, "points")
        lon = _coord(p[1], -180, 180, "points")
        t = float(p[2]) if len(p) > 2 and isinstance(p[2], (int, float)) else clock.now().timestamp()
        out.append([lat, lon, t])
    return out


def add_track(user: User, patrol: Patrol, points) -> Patrol:
    """Append track points to the worker's running patrol."""
    if patrol.worker_id != user.id:
        raise forbidden("这不是您的巡查")
    if patrol.ended_at is not None:
        raise ApiError(409, "conflict", "巡查已结束")
    track = patrol.track + _points(points)
    if len(track) > MAX_TRACK_POINTS:
        raise bad_request("轨迹点太多", field="points")
    patrol.track_json = json.dumps(track)
    session.flush()
    return patrol


def stop_patrol(user: User, patrol: Patrol, points=None) -> Patrol:
    """Finish the patrol: its length is computed from the track (idempotent once stopped)."""
    if patrol.worker_id != user.id:
        raise forbidden("这不是您的巡查")
    if patrol.ended_at is not None:
        return patrol
    if points:
        add_track(user, patrol, points)
    patrol.ended_at = clock.now()
    patrol.distance_m = round(track_length(patrol.track), 1)
    session.flush()
    audit.record("grid.patrol_stop", "grid_patrol", patrol.id, user.region.code, actor=user.username,
                 points=len(patrol.track), distance_m=patrol.distance_m)
    return patrol


def track_length(track: list[list[float]]) -> float:
    """Metres along the track (haversine)."""
    total = 0.0
    for (a, b), (c, d) in zip(((p[0], p[1]) for p in track), ((p[0], p[1]) for p in track[1:])):
        p1, p2 = math.radians(a), math.radians(c)
        dp, dl = p2 - p1, math.radians(d - b)
        h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
        total += 2 * 6371000 * math.asin(min(1.0, math.sqrt(h)))
    return total


# Assessment rules and weekly reports ----------------------------------------------------

def set_rules(user: User, values: dict) -> dict:
    """Admins change the rule table; every value must be a number ≥ 0 (rates 0–1)."""
    if "admin" not in user.roles:
        raise forbidden("只有管理员可以修改考核规则")
    clean = {}
    for key, raw in values.items():
        if key not in RULES:
            raise bad_request(f"未知的规则 {key}", field=key)
        try:
            v = float(raw)
        except (TypeError, ValueError):
            raise bad_request(f"“{RULES[key][0]}”必须是数字", field=key) from None
        if not math.isfinite(v) or v < 0 or (key.endswith("on_time") and key.startswith(("yellow", "red")) and v > 1):
            raise bad_request(f"“{RULES[key][0]}”超出范围", field=key)
        clean[key] = v
    now = clock.now()
    for key, v in clean.items():
        row = session.get(AssessmentRule, key)
        if row is None:
            session.add(AssessmentRule(key=key, value=v, updated_by=user.username, updated_at=now))
        else:
            row.value, row.updated_by, row.updated_at = v, user.username, now
    session.flush()
    audit.record("grid.rules", "grid_rules", "table", user.region.code, actor=user.username, **clean)
    return clean


def save_weekly_report(week_start: dt.date, data: dict) -> tuple[WeeklyReport, bool]:
    """Store the report of the week starting ``week_start`` (once: a second call returns it)."""
    existing = session.scalar(select(WeeklyReport).where(WeeklyReport.week_start == week_start))
    if existing is not None:
        return existing, False
    rep = WeeklyReport(week_start=week_start, generated_at=clock.now(),
                       data_json=json.dumps(data, ensure_ascii=False))
    rep, created = add_once(rep, lambda: session.scalar(select(WeeklyReport)
                                                       .where(WeeklyReport.week_start == week_start)))
    if not created:
        return rep, False
    audit.record("grid.weekly_report", "grid_weekly_report", rep.id, None, actor="system",
                 week_start=week_start.isoformat())
    return rep, True


def get_grid(grid_id: int) -> Grid:
    g = session.get(Grid, grid_id)
    if g is None:
        raise ApiError(404, "not_found", f"网格 {grid_id} 不存在")
    return g
