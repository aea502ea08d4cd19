"""Reads of the feedback loop; every list takes the caller (scope, desk or household)."""
from __future__ import annotations

import datetime as dt
from collections import defaultdict

from sqlalchemy import and_, func, or_, select

from portal_server.core import clock
from portal_server.core.accounts import Department, User
from portal_server.core.api import iso
from portal_server.core.db import session, utcnow
from portal_server.core.regions import Region
from portal_server.core.terminals import Terminal

from . import rules
from .models import (
    ACTION_NAMES,
    CATEGORY_NAMES,
    LEVEL_NAMES,
    OPEN,
    STATUS_NAMES,
    Poll,
    PollVote,
    WorkOrder,
    WorkOrderEvent,
)


def get(order_id: int) -> WorkOrder | None:
    return session.get(WorkOrder, order_id)


def by_code(code: str) -> WorkOrder | None:
    return session.scalar(select(WorkOrder).where(WorkOrder.code == code))


def light(order: WorkOrder, now: dt.datetime | None = None) -> str:
    return rules.light(order.clock_started_at, order.deadline_at, now or utcnow(),
                       done=order.status not in OPEN)


def desk_name(level: str | None, code: str) -> str:
    """The Chinese name of a desk (a region or a department)."""
    if level != "department":
        r = session.scalar(select(Region).where(Region.code == code))
        if r is not None:
            return r.name
    d = session.scalar(select(Department).where(Department.code == code))
    return d.name if d else code


def event_to_dict(e: WorkOrderEvent) -> dict:
    out = {"action": e.action, "actor": e.actor, "level": e.level, "at": iso(e.at),
           "code": e.code, "status": e.status, "deadline": iso(e.deadline_at)}
    if e.note:
        out["note"] = e.note
    out.update({k: v for k, v in e.detail_dict.items() if k not in out})
    return out


def order_to_dict(o: WorkOrder, with_events: bool = True, resident: bool = False) -> dict:
    """The API shape of INTERFACES §4 (residents get the same minus staff-only facts)."""
    out = {"id": o.id, "code": o.code, "status": o.status, "status_name": STATUS_NAMES.get(o.status),
           "category": o.category, "category_name": CATEGORY_NAMES.get(o.category),
           "content": o.content, "callback": o.callback, "channel": o.channel, "urgent": bool(o.urgent),
           "region_code": o.region.code,
           "handler": {"level": o.handler_level, "code": o.handler_code},
           "handler_name": desk_name(o.handler_level, o.handler_code),
           "deadline": iso(o.deadline_at), "light": light(o),
           "reply": o.reply, "replied_at": iso(o.replied_at), "rating": o.rating,
           "created_at": iso(o.created_at), "updated_at": iso(o.updated_at),
           "can_rate": o.status in ("replied", "closed") and o.rating is None,
           "photos": len(o.photos)}
    if not resident:
        out.update({"problem": o.problem, "supervisor_code": o.supervisor_code,
                    "pass_count": o.pass_count, "reopen_count": o.reopen_count,
                    "follow_up": o.follow_up, "lat": o.lat, "lon": o.lon, "address": o.address})
    if with_events:
        out["events"] = [event_to_dict(e) for e in o.events]
    return out


# Staff lists ------------------------------------------------------------------------------

def _desk_condition(user: User):
    if "admin" in user.roles:
        return WorkOrder.id.isnot(None)
    if user.department_code:
        return and_(WorkOrder.handler_level == "department", WorkOrder.handler_code == user.department_code)
    return user.scope.region_filter(WorkOrder.handler_path)


def inbox(user: User, include_done: bool = False, limit: int = 200) -> list[WorkOrder]:
    """Orders at the desks this handler acts on: urgent ones first, then due soon first."""
    q = select(WorkOrder).where(_desk_condition(user))
    if not include_done:
        q = q.where(WorkOrder.status.in_(OPEN))
    return list(session.scalars(q.order_by(WorkOrder.urgent.desc(), WorkOrder.deadline_at, WorkOrder.id)
                                .limit(limit)))


def visible_query(user: User):
    """Every order the user may see (desk, scope of origin, or department history)."""
    if "admin" in user.roles:
        return select(WorkOrder)
    if user.department_code:
        touched = select(WorkOrderEvent.order_id).where(WorkOrderEvent.code == user.department_code)
        return select(WorkOrder).where(or_(_desk_condition(user), WorkOrder.id.in_(touched)))
    return select(WorkOrder).where(or_(user.scope.region_filter(WorkOrder.region_path),
                                       user.scope.region_filter(WorkOrder.handler_path)))


def supervised(user: User, limit: int = 200) -> list[WorkOrder]:
    """Open orders in the scope but not at the user's own desk (for town supervision)."""
    q = visible_query(user).where(WorkOrder.status.in_(OPEN))
    if not user.department_code:
        q = q.where(WorkOrder.handler_code != user.region.code)
    return list(session.scalars(q.order_by(WorkOrder.urgent.desc(), WorkOrder.problem.desc(),
                                           WorkOrder.deadline_at).limit(limit)))


def follow_ups(user: User) -> list[WorkOrder]:
    """Closed orders in the grid worker's villages waiting for a follow-up visit."""
    q = select(WorkOrder).where(WorkOrder.follow_up == "due", WorkOrder.status == "closed",
                                user.scope.region_filter(WorkOrder.region_path))
    return list(session.scalars(q.order_by(WorkOrder.closed_at)))


def my_counts(user: User) -> tuple[int, int]:
    """(open, overdue) at the user's desks, for the home card."""
    now = utcnow()
    base = select(func.count()).select_from(WorkOrder).where(_desk_condition(user),
                                                             WorkOrder.status.in_(OPEN))
    return (session.scalar(base) or 0, session.scalar(base.where(WorkOrder.deadline_at < now)) or 0)


def household_orders(household_id: int | None, serial: str | None = None, limit: int = 20) -> list[WorkOrder]:
    cond = WorkOrder.household_id == household_id if household_id is not None else \
        WorkOrder.terminal_serial == serial
    return list(session.scalars(select(WorkOrder).where(cond)
                                .order_by(WorkOrder.id.desc()).limit(limit)))


def terminal_may_read(term: Terminal, order: WorkOrder) -> bool:
    if term.household_id is not None:
        return order.household_id == term.household_id
    return order.terminal_serial == term.serial


# Supervision board ------------------------------------------------------------------------

def _unit_stats(orders: list[WorkOrder]) -> dict:
    n = len(orders)
    replied = [o for o in orders if o.replied_at is not None]
    closed = [o for o in orders if o.status == "closed"]
    on_time = [o for o in closed if o.replied_on_time]
    rated = [o.rating for o in orders if o.rating is not None]
    return {"orders": n,
            "on_time_rate": len(on_time) / n if n else 0.0,
            "reply_rate": len(replied) / n if n else 0.0,
            "reopen_rate": len([o for o in orders if o.reopen_count]) / n if n else 0.0,
            "avg_rating": sum(rated) / len(rated) if rated else None,
            "closed": len(closed), "overdue_open": len([o for o in orders if o.status in OPEN and light(o) == "red"])}


def board(user: User) -> dict:
    """Villages, towns and departments ranked by on-time closure (then reply rate, rating).

    Villages and towns are judged by the orders from their area, departments by the orders
    that reached them. Units with fewer than ``min_rank_orders`` orders are listed unranked.
    """
    orders = list(session.scalars(visible_query(user)))
    by_village, by_town, by_dept = defaultdict(list), defaultdict(list), defaultdict(list)
    dept_touch = defaultdict(set)
    if orders:
        for oid, code in session.execute(select(WorkOrderEvent.order_id, WorkOrderEvent.code)
                                         .where(WorkOrderEvent.order_id.in_([o.id for o in orders]))):
            dept_touch[oid].add(code)
    depts = {d.code: d.name for d in session.scalars(select(Department))}
    for o in orders:
        codes = [c for c in o.region_path.split("/") if c]
        by_village[codes[-1]].append(o)
        if len(codes) >= 2:
            by_town[codes[-2]].append(o)
        for c in dept_touch[o.id]:
            if c in depts:
                by_dept[c].append(o)
    names = {r.code: r.name for r in session.scalars(
        select(Region).where(Region.code.in_(list(by_village) + list(by_town))))} if orders else {}
    minimum = rules.min_rank_orders()

    def ranked(groups, name_of):
        rows = [{"code": c, "name": name_of(c), **_unit_stats(os_)} for c, os_ in groups.items()]
        rows.sort(key=lambda r: (-r["on_time_rate"], -r["reply_rate"], r["reopen_rate"],
                                 -(r["avg_rating"] or 0), r["code"]))
        rank = 0
        for r in rows:
            if r["orders"] >= minimum:
                rank += 1
                r["rank"] = rank
            else:
                r["rank"] = None
        return [r for r in rows if r["rank"]] + [r for r in rows if not r["rank"]]

    return {"minimum": minimum,
            "villages": ranked(by_village, lambda c: names.get(c, c)),
            "towns": ranked(by_town, lambda c: names.get(c, c)),
            "departments": ranked(by_dept, lambda c: depts.get(c, c)),
            "total": len(orders)}


# Polls ------------------------------------------------------------------------------------

def poll_get(poll_id: int) -> Poll | None:
    return session.get(Poll, poll_id)


def polls_for_terminal(term: Terminal) -> list[Poll]:
    """Open polls for the box's village, its town or the city."""
    paths = []
    acc = ""
    for c in term.region_codes():
        acc += c + "/"
        paths.append(acc)
    now = utcnow()
    return list(session.scalars(select(Poll).where(Poll.region_path.in_(paths), Poll.closes_at > now)
                                .order_by(Poll.closes_at)))


def polls_in_scope(user: User) -> list[Poll]:
    """Polls for regions in the user's scope or above it (a village editor sees the city's too)."""
    chain_paths = []
    acc = ""
    for c in user.region.chain_codes():
        acc += c + "/"
        chain_paths.append(acc)
    return list(session.scalars(select(Poll).where(or_(user.scope.region_filter(Poll.region_path),
                                                       Poll.region_path.in_(chain_paths)))
                                .order_by(Poll.id.desc())))


def poll_results(poll: Poll, scope=None) -> dict:
    counts = dict(session.execute(select(PollVote.option, func.count()).where(PollVote.poll_id == poll.id)
                                  .group_by(PollVote.option)).all())
    total = sum(counts.values())
    return {"total": total,
            "options": [{"index": i, "label": label, "votes": counts.get(i, 0),
                         "share": (counts.get(i, 0) / total) if total else 0.0}
                        for i, label in enumerate(poll.options)]}


def household_vote(poll: Poll, household_id: int | None) -> PollVote | None:
    if household_id is None:
        return None
    return session.scalar(select(PollVote).where(PollVote.poll_id == poll.id,
                                                 PollVote.household_id == household_id))


def poll_is_open(poll: Poll) -> bool:
    closes = clock.aware(poll.closes_at)
    return closes > utcnow()


def poll_to_dict(poll: Poll, household_id: int | None = None, with_results: bool | None = None) -> dict:
    voted = household_vote(poll, household_id)
    out = {"id": poll.id, "kind": poll.kind, "title": poll.title, "description": poll.description,
           "options": poll.options, "region_code": poll.region.code, "closes_at": iso(poll.closes_at),
           "open": poll_is_open(poll),
           "voted": voted.option if voted else None}
    if with_results or (with_results is None and voted is not None):
        out["results"] = poll_results(poll)
    return out


__all__ = ["ACTION_NAMES", "LEVEL_NAMES"]


def daily_figures(day: dt.date, start: dt.datetime, end: dt.datetime) -> dict[str, dict[str, float]]:
    """Work orders of the day [start, end) (UTC) by the filing region: received, closed, closed
    on time (replied within the deadline), and the ratings given (sum and count)."""
    out: dict[str, dict[str, float]] = defaultdict(dict)

    def add(path, metric, n):
        out[path][metric] = out[path].get(metric, 0) + (n or 0)

    for path, n in session.execute(select(WorkOrder.region_path, func.count())
                                   .where(WorkOrder.created_at >= start, WorkOrder.created_at < end)
                                   .group_by(WorkOrder.region_path)):
        add(path, "feedback.received", n)
    for path, on_time, n in session.execute(
            select(WorkOrder.region_path, WorkOrder.replied_on_time, func.count())
            .where(WorkOrder.closed_at >= start, WorkOrder.closed_at < end)
            .group_by(WorkOrder.region_path, WorkOrder.replied_on_time)):
        add(path, "feedback.closed", n)
        if on_time:
            add(path, "feedback.closed_on_time", n)
    for path, total, n in session.execute(
            select(WorkOrder.region_path, func.sum(WorkOrder.rating), func.count())
            .where(WorkOrder.rated_at >= start, WorkOrder.rated_at < end, WorkOrder.rating.is_not(None))
            .group_by(WorkOrder.region_path)):
        add(path, "feedback.rating_sum", total)
        add(path, "feedback.rated", n)
    return dict(out)


def deadline_outcomes(order_ids: list[int], now: dt.datetime | None = None) -> dict[int, bool | None]:
    """For assessments: per order, True answered in time, False answered late or overdue without an
    answer, None still within its deadline."""
    now = now or utcnow()
    out: dict[int, bool | None] = {}
    ids = list(order_ids)
    for i in range(0, len(ids), 500):
        for oid, on_time, status, deadline in session.execute(
                select(WorkOrder.id, WorkOrder.replied_on_time, WorkOrder.status, WorkOrder.deadline_at)
                .where(WorkOrder.id.in_(ids[i:i + 500]))):
            if on_time is not None and status not in OPEN:
                out[oid] = bool(on_time)
            elif deadline is not None and clock.aware(deadline) < now:
                out[oid] = False
            else:
                out[oid] = None
    return out
