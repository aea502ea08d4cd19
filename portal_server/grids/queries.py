"""Reads of grids and field work, always within the caller's scope; the assessment."""
from __future__ import annotations

import datetime as dt
from collections import defaultdict

from sqlalchemy import func, select

from portal_server.alerts import queries as alert_queries
from portal_server.care import queries as care_queries
from portal_server.core import clock, scope
from portal_server.core.accounts import User, UserRole
from portal_server.core.households import TAG_NAMES, Household
from portal_server.core.db import session
from portal_server.core.regions import Region
from portal_server.feedback import queries as feedback_queries

from .models import (
    CARD_NAMES,
    LEVELS,
    RULES,
    VISIT_KIND_NAMES,
    AssessmentRule,
    Grid,
    GridHousehold,
    Patrol,
    Visit,
    WeeklyReport,
)


# Grids ------------------------------------------------------------------------------------

def grids_query(user: User, region: Region | None = None):
    """Grids in the caller's scope (or in ``region`` inside it)."""
    q = select(Grid).where(scope.filter(user, Grid.region_path))
    if region is not None:
        q = q.where(Grid.region_path.startswith(region.path, autoescape=True))
    return q.order_by(Grid.region_path, Grid.name, Grid.id)


def household_counts(grid_ids: list[int]) -> dict[int, int]:
    if not grid_ids:
        return {}
    return dict(session.execute(select(GridHousehold.grid_id, func.count()).where(
        GridHousehold.grid_id.in_(grid_ids)).group_by(GridHousehold.grid_id)).all())


def grid_to_dict(g: Grid, households: int | None = None) -> dict:
    return {"id": g.id, "region_code": g.region.code, "region_name": g.region.name, "name": g.name,
            "worker": g.worker.username, "worker_name": g.worker.display_name,
            "households": households if households is not None else household_counts([g.id]).get(g.id, 0),
            "created_at": clock.iso(g.created_at)}


def grid_for(user: User, grid_id: int) -> Grid | None:
    g = session.get(Grid, grid_id)
    if g is None or not scope.covers(user, g.region):
        return None
    return g


def grid_workers(region: Region) -> list[User]:
    """Active grid workers of a village (the choice when creating a grid)."""
    return list(session.scalars(select(User).join(UserRole, UserRole.user_id == User.id).where(
        UserRole.role == "grid_worker", User.region_id == region.id, User.active.is_(True))
        .order_by(User.username)))


def village_households(region: Region) -> list[tuple[Household, Grid | None]]:
    """Every household of a village with its grid (None when in none)."""
    rows = session.execute(select(Household, Grid).outerjoin(
        GridHousehold, GridHousehold.household_id == Household.id).outerjoin(
        Grid, Grid.id == GridHousehold.grid_id).where(Household.region_id == region.id)
        .order_by(Household.number)).all()
    return [(h, g) for h, g in rows]


#: Outline colours of a village's grids on the household map (by the grid's order in its village).
GRID_COLORS = ("#d9480f", "#1971c2", "#2f9e44", "#9c36b5", "#e8590c", "#0c8599", "#c2255c", "#5c940d",
               "#364fc7", "#a61e4d")


def village_grid_layer(user: User, village: Region) -> dict:
    """The grids of a village as a layer of the household map: each grid with its colour, label
    (name and worker) and household count, and which grid every household of the village is in."""
    scope.require(user, village, "网格")
    grids = list(session.scalars(select(Grid).where(Grid.region_id == village.id).order_by(Grid.name, Grid.id)))
    counts = household_counts([x.id for x in grids])
    by_household = dict(session.execute(
        select(GridHousehold.household_id, GridHousehold.grid_id)
        .join(Household, Household.id == GridHousehold.household_id)
        .where(Household.region_id == village.id)).all())
    return {"title": "网格",
            "groups": [{"id": x.id, "label": f"{x.name}·{x.worker.display_name or x.worker.username}", "short": x.name,
                        "color": GRID_COLORS[i % len(GRID_COLORS)], "count": counts.get(x.id, 0)}
                       for i, x in enumerate(grids)],
            "by_household": by_household, "none_label": "未划入网格"}


def household_to_dict(h: Household, grid: Grid | None = None) -> dict:
    """The masked view of a household with its tags in Chinese."""
    return {"id": h.id, "number": h.number, "head_name": h.head_name, "address": h.address,
            "region_code": h.region.code, "phone": h.phone_masked, "members": h.size,
            "tags": h.tag_list, "tag_names": [TAG_NAMES.get(t, t) for t in h.tag_list],
            "grid": {"id": grid.id, "name": grid.name} if grid is not None else None}


def worker_households(user: User) -> list[tuple[Household, Grid | None]]:
    """The households a grid worker looks after: those of their grids, or (no grid yet) the
    households of their village nobody was given."""
    mine = list(session.scalars(select(Grid).where(Grid.worker_id == user.id)))
    if mine:
        rows = session.execute(select(Household, Grid).join(
            GridHousehold, GridHousehold.household_id == Household.id).join(
            Grid, Grid.id == GridHousehold.grid_id).where(Grid.worker_id == user.id)
            .order_by(Household.number)).all()
        return [(h, g) for h, g in rows]
    taken = select(GridHousehold.household_id)
    rows = session.scalars(select(Household).where(scope.filter(user, Household.region_path),
                                                   Household.id.not_in(taken)).order_by(Household.number)
                           .limit(2000))
    return [(h, None) for h in rows]


def household_rule(user, household_id_column):
    """core.fieldwork rule: a grid worker does not get households of another worker's grid."""
    if not user.has_role("grid_worker") or "admin" in user.roles:
        return None
    others = select(GridHousehold.household_id).join(Grid, Grid.id == GridHousehold.grid_id).where(
        Grid.worker_id != user.id)
    return household_id_column.not_in(others)


# The phone app's day ------------------------------------------------------------------------

def visit_to_dict(v: Visit) -> dict:
    return {"id": v.id, "kind": v.kind, "kind_name": VISIT_KIND_NAMES.get(v.kind, v.kind),
            "household_id": v.household_id,
            "household": v.household.head_name if v.household is not None else None,
            "address": v.household.address if v.household is not None else None,
            "note": v.note, "category": v.category, "feedback_id": v.feedback_id,
            "lat": v.lat, "lon": v.lon, "photo": bool(v.photo_path),
            "recorded_at": clock.iso(v.recorded_at), "time": clock.fmt(v.recorded_at, "%H:%M"),
            "idempotency_key": v.client_key}


def day_log(user: User, day: dt.date | None = None) -> list[Visit]:
    """The worker's 民情日志 of a city day (today by default), oldest first."""
    start, end = clock.day_bounds(day or clock.today())
    return list(session.scalars(select(Visit).where(Visit.worker_id == user.id, Visit.recorded_at >= start,
                                                    Visit.recorded_at < end)
                                .order_by(Visit.recorded_at, Visit.id)))


def open_patrol(user: User) -> Patrol | None:
    return session.scalar(select(Patrol).where(Patrol.worker_id == user.id, Patrol.ended_at.is_(None)))


def patrol_to_dict(p: Patrol | None) -> dict | None:
    if p is None:
        return None
    return {"id": p.id, "started_at": clock.iso(p.started_at), "ended_at": clock.iso(p.ended_at),
            "points": len(p.track), "distance_m": p.distance_m, "track": p.track}


def today(user: User) -> dict:
    """Everything the phone app shows on opening: tasks, households, today's log, the patrol."""
    households = worker_households(user)
    mine = {h.id for h, _g in households}
    care = [care_queries.task_to_dict(t) for t in session.scalars(care_queries.tasks_query(user, "open"))]
    alerts = []
    for alert in session.scalars(alert_queries.visible_query(user.scope, "active").limit(5)):
        rows = alert_queries.unacked_households(alert, user.scope, for_user=user)
        doors = [{"serial": s, "household_id": h.id, "name": h.head_name, "address": h.address}
                 for s, h, _c in rows if h is not None]
        if doors:
            alerts.append({"id": alert.id, "headline": alert.headline, "severity": alert.severity,
                           "households": doors})
    follow = []
    for o in feedback_queries.follow_ups(user):
        if o.household_id is not None and mine and o.household_id not in mine:
            continue
        follow.append({"id": o.id, "code": o.code, "category": o.category, "content": o.content,
                       "reply": o.reply, "household_id": o.household_id})
    grids = list(session.scalars(select(Grid).where(Grid.worker_id == user.id).order_by(Grid.name)))
    return {"worker": {"username": user.username, "name": user.display_name,
                       "village": user.region.name, "region_code": user.region.code},
            "grids": [{"id": g.id, "name": g.name} for g in grids],
            "tasks": {"care": care, "alerts": alerts, "follow_ups": follow},
            "households": [household_to_dict(h, g) for h, g in households],
            "log": [visit_to_dict(v) for v in day_log(user)],
            "patrol": patrol_to_dict(open_patrol(user)),
            "categories": [{"code": c, "name": feedback_queries.CATEGORY_NAMES[c]}
                           for c in feedback_queries.CATEGORY_NAMES]}


# Assessment ------------------------------------------------------------------------------

def rules() -> dict[str, float]:
    """The rule table: stored values over the defaults."""
    out = {k: v for k, (_label, v) in RULES.items()}
    for row in session.scalars(select(AssessmentRule)):
        if row.key in out:
            out[row.key] = row.value
    return out


def period_bounds(period: str, day: dt.date | None = None) -> tuple[dt.date, dt.date]:
    """[first day, day after the last) of the week (Monday–Sunday) or month containing ``day``."""
    day = day or clock.today()
    if period == "week":
        start = day - dt.timedelta(days=day.weekday())
        return start, start + dt.timedelta(days=7)
    start = day.replace(day=1)
    nxt = (start + dt.timedelta(days=32)).replace(day=1)
    return start, nxt


def _card(points: float, rate: float | None, r: dict, days: int) -> str:
    scale = days / 7
    if points < r["red_points_week"] * scale or (rate is not None and rate < r["red_on_time"]):
        return "red"
    if points < r["yellow_points_week"] * scale or (rate is not None and rate < r["yellow_on_time"]):
        return "yellow"
    return "none"


def assessment(region: Region, level: str, start: dt.date, end: dt.date,
               now: dt.datetime | None = None) -> list[dict]:
    """Per worker, grid or village under ``region``: visits, events, patrols, on-time rate of their
    orders (grid events) and care tasks, points by the rule table, and a card; best first."""
    if level not in LEVELS:
        raise ValueError(level)
    return assessment_all(region, start, end, now, levels=(level,))[level]


def assessment_all(region: Region, start: dt.date, end: dt.date, now: dt.datetime | None = None,
                   levels: tuple[str, ...] = LEVELS) -> dict[str, list[dict]]:
    """The assessment of every level in ``levels`` from one pass over the period's visits (the
    weekly report wants all three)."""
    t0, _ = clock.day_bounds(start)
    t1, _ = clock.day_bounds(end)
    path = region.path
    r = rules()
    villages = {v.id: v for v in session.scalars(select(Region).where(
        Region.path.startswith(path, autoescape=True), Region.level == "village"))}
    grids = {g.id: g for g in session.scalars(select(Grid).where(Grid.region_id.in_(list(villages))))} \
        if villages else {}
    users = {}
    if "worker" in levels:
        users = {u.id: u for u in session.scalars(
            select(User).join(UserRole, UserRole.user_id == User.id)
            .where(UserRole.role == "grid_worker", User.active.is_(True), User.region_id.in_(list(villages))))} \
            if villages else {}
    # One GROUP BY (an index-only scan of ix_grid_visits_period) gives every level's counts.
    facts = session.execute(
        select(Visit.worker_id, Visit.grid_id, Visit.region_id, Visit.kind, func.count())
        .where(Visit.recorded_at >= t0, Visit.recorded_at < t1, Visit.region_id.in_(list(villages)))
        .group_by(Visit.worker_id, Visit.grid_id, Visit.region_id, Visit.kind)).all() if villages else []
    # Patrol walks count as patrols of the worker (and of the worker's grids and village).
    walks = dict(session.execute(select(Patrol.worker_id, func.count()).where(
        Patrol.region_path.startswith(path, autoescape=True), Patrol.started_at >= t0,
        Patrol.started_at < t1, Patrol.ended_at.is_not(None)).group_by(Patrol.worker_id)).all())
    # Orders filed by events, judged by their deadlines.
    ev = session.execute(select(Visit.worker_id, Visit.grid_id, Visit.region_id, Visit.feedback_id)
                         .where(Visit.recorded_at >= t0, Visit.recorded_at < t1,
                                Visit.region_id.in_(list(villages)), Visit.feedback_id.is_not(None))).all() \
        if villages else []
    outcomes = feedback_queries.deadline_outcomes([e[3] for e in ev], now)
    judged = {lv: defaultdict(lambda: [0, 0]) for lv in LEVELS}  # level → unit → [on time, judged]
    for wid, gid, rid, fid in ev:
        o = outcomes.get(fid)
        if o is None:
            continue
        for lv, unit in (("worker", wid), ("grid", gid), ("village", rid)):
            if unit is not None:
                judged[lv][unit][1] += 1
                judged[lv][unit][0] += int(o)
    # Care tasks, attributed through the household's grid (or whoever closed it).
    grid_of = dict(session.execute(select(GridHousehold.household_id, GridHousehold.grid_id)
                                   .where(GridHousehold.grid_id.in_(list(grids)))).all()) if grids else {}
    by_username = {u.username: u.id for u in users.values()}
    for hid, rid, closed_by, on_time in care_queries.task_outcomes(path, t0, t1):
        if on_time is None:
            continue
        gid = grid_of.get(hid)
        wid = grids[gid].worker_id if gid in grids else by_username.get(closed_by)
        for lv, unit in (("worker", wid), ("grid", gid), ("village", rid)):
            if unit is not None:
                judged[lv][unit][1] += 1
                judged[lv][unit][0] += int(on_time)
    days = (end - start).days
    out = {}
    for level in levels:
        counts: dict = defaultdict(lambda: {"visit": 0, "patrol": 0, "event": 0})
        col = {"worker": 0, "grid": 1, "village": 2}[level]
        for row in facts:
            if row[col] is not None:
                counts[row[col]][row[3]] += row[4]
        if level == "worker":
            units = {u.id: (u.username, u.display_name, villages[u.region_id].code) for u in users.values()}
        elif level == "grid":
            units = {g.id: (str(g.id), f"{villages[g.region_id].name}·{g.name}", villages[g.region_id].code)
                     for g in grids.values()}
        else:
            units = {v.id: (v.code, v.name, v.code) for v in villages.values()}
        village_walks = defaultdict(int)
        for u in users.values():
            village_walks[u.region_id] += walks.get(u.id, 0)
        items = []
        for uid, (key, name, code) in units.items():
            c = counts.get(uid, {"visit": 0, "patrol": 0, "event": 0})
            if level == "worker":
                patrols = c["patrol"] + walks.get(uid, 0)
            elif level == "grid":
                patrols = c["patrol"] + walks.get(grids[uid].worker_id, 0)
            else:
                patrols = c["patrol"] + village_walks.get(uid, 0)
            ok, total = judged[level].get(uid, (0, 0))
            rate = round(ok / total, 3) if total else None
            points = round(c["visit"] * r["points_visit"] + c["event"] * r["points_event"]
                           + patrols * r["points_patrol"]
                           + (rate if rate is not None else 1.0) * r["points_on_time"], 1)
            card = _card(points, rate, r, days)
            items.append({"key": key, "name": name, "region_code": code, "visits": c["visit"],
                          "events": c["event"], "patrols": patrols, "on_time_rate": rate,
                          "judged": total, "points": points, "card": card, "card_name": CARD_NAMES[card]})
        items.sort(key=lambda i: (-i["points"], i["key"]))
        for n, i in enumerate(items, 1):
            i["rank"] = n
        out[level] = items
    return out


def weekly_reports(limit: int = 52) -> list[WeeklyReport]:
    return list(session.scalars(select(WeeklyReport).order_by(WeeklyReport.week_start.desc()).limit(limit)))


def weekly_report(report_id: int) -> WeeklyReport | None:
    return session.get(WeeklyReport, report_id)


def report_items(report: WeeklyReport, user: User, level: str) -> list[dict]:
    """The report's items of ``level`` inside the user's scope."""
    out = []
    for i in report.data.get(level, []):
        code = i.get("region_code")
        if code and scope.covers(user, code):
            out.append(i)
    return out
