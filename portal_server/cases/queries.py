"""Reads of one-stop handling, always with the caller's scope: a box reads its household's cases,
staff the cases of households in their scope or at their desk."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import func, or_, select
from sqlalchemy.orm import selectinload

from portal_server.core import clock, scope
from portal_server.core.accounts import Department, User
from portal_server.core.api import ApiError, not_found
from portal_server.core.db import session
from portal_server.core.households import Household
from portal_server.core.regions import Region
from portal_server.core.terminals import Terminal
from portal_server.registry import queries as registry_queries

from .models import CHANNEL_NAMES, OPEN, STATUS_NAMES, Case, CaseEvent

#: Plain words for the resident (我的办件): what is happening and what comes next.
PLAIN = {"submitted": "已提交，等待工作人员受理", "accepted": "正在办理", "returned": "已退回，请看说明",
         "suspended": "暂停办理，等待补充材料", "completed": "已办结，请按彩色键评价",
         "followed_up": "已办结并回访，请评价", "evaluated": "已评价，谢谢您", "archived": "已完成归档"}
LIGHT_NAMES = {"green": "正常", "yellow": "临近时限", "red": "已超时"}


#: Lists show the household's number and village: load them with the page's cases, not one by one.
WITH_HOUSEHOLD = selectinload(Case.household).selectinload(Household.region)


def desk_labels(cases) -> dict[str, str]:
    """Desk code → its name in words for a page of cases, in two queries."""
    codes = {c.desk_code for c in cases}
    out = {d.code: d.name for d in session.scalars(select(Department).where(Department.code.in_(codes)))}
    for r in session.scalars(select(Region).where(Region.code.in_(codes))):
        out[r.code] = r.name + ("便民服务站" if r.level == "village" else "便民服务中心")
    return out


def light(case: Case, now: dt.datetime | None = None) -> str:
    """green / yellow / red: red past the deadline (or completed late); yellow in the last working
    day or the last quarter of the promised time; green otherwise."""
    deadline = clock.aware(case.deadline)
    if case.status not in OPEN:
        done = clock.aware(case.completed_at) if case.completed_at else None
        return "red" if done is not None and done > deadline else "green"
    now = now or clock.now()
    if now > deadline:
        return "red"
    span = deadline - clock.aware(case.created_at)
    left = deadline - now
    if left <= dt.timedelta(days=1) or left <= span / 4:
        return "yellow"
    return "green"


def get(case_id: int) -> Case | None:
    return session.get(Case, case_id)


def can_read(who, case: Case) -> bool:
    """A box: its household's own. Staff: households in scope, or the case is at their desk."""
    if isinstance(who, Terminal):
        return who.household_id is not None and who.household_id == case.household_id
    if case.region_path.startswith(who.scope.path) or case.desk_path.startswith(who.scope.path):
        return True
    return bool(who.department_code) and who.department_code == case.desk_code


def load(case_id: int, who) -> Case:
    """The case if ``who`` may read it: 404 unknown, 403 another household's / outside scope."""
    case = get(case_id)
    if case is None:
        raise not_found(f"办件 {case_id}")
    if not can_read(who, case):
        raise ApiError(403, "forbidden", "这件办件不属于本户" if isinstance(who, Terminal)
                       else f"办件 {case.number} 不在您的管辖范围内")
    return case


def _visible(user: User):
    cond = or_(Case.region_path.startswith(user.scope.path, autoescape=True),
               Case.desk_path.startswith(user.scope.path, autoescape=True))
    if user.department_code:
        cond = or_(cond, Case.desk_code == user.department_code)
    return cond


def search(user: User, status: str | None = None, region: str | None = None, q: str | None = None,
           service_code: str | None = None):
    """Cases visible to ``user``: ``status`` (one or comma-separated), ``region`` (a code in scope),
    ``q`` (case number, applicant name or item name). Open ones first, nearest deadline first."""
    query = select(Case).where(_visible(user)).options(WITH_HOUSEHOLD)
    if status:
        query = query.where(Case.status.in_([s for s in status.split(",") if s]))
    if region:
        r = scope.require(user, region)
        query = query.where(Case.region_path.startswith(r.path, autoescape=True))
    if service_code:
        query = query.where(Case.service_code == service_code)
    if q:
        q = q.strip()
        query = query.where(or_(Case.number == q, Case.applicant_name.contains(q, autoescape=True),
                                Case.service_name.contains(q, autoescape=True)))
    return query.order_by(Case.deadline, Case.id)


def desk_code_of(user: User) -> str:
    return user.department_code or user.region.code


def desk(user: User, limit: int = 50, offset: int = 0) -> tuple[list[Case], int]:
    """My desk: open cases held at the user's desk, overdue first (nearest deadline first)."""
    cond = (Case.desk_code == desk_code_of(user), Case.status.in_(OPEN))
    total = session.scalar(select(func.count(Case.id)).where(*cond))
    rows = list(session.scalars(select(Case).where(*cond).options(WITH_HOUSEHOLD).order_by(Case.deadline, Case.id)
                                .limit(limit).offset(offset)))
    return rows, total


def supervision(user: User, limit: int = 200) -> list[Case]:
    """Leaders' list: open cases in scope that are overdue, near their deadline or under 督办."""
    now = clock.now()
    soon = now + dt.timedelta(days=1)
    rows = session.scalars(select(Case).options(WITH_HOUSEHOLD).where(_visible(user), Case.status.in_(OPEN),
                                              or_(Case.deadline <= soon, Case.supervised > 0))
                           .order_by(Case.deadline).limit(limit))
    return list(rows)


def household_cases(household_id: int, limit: int = 30) -> list[Case]:
    """我的办件: the household's cases, newest first."""
    return list(session.scalars(select(Case).where(Case.household_id == household_id)
                                .order_by(Case.id.desc()).limit(limit)))


def to_dict(case: Case, events: bool = True, now: dt.datetime | None = None) -> dict:
    """The API shape of INTERFACES §4.2."""
    d = {"id": case.id, "number": case.number, "service_code": case.service_code,
         "service_name": case.service_name, "status": case.status, "status_name": STATUS_NAMES[case.status],
         "progress": PLAIN[case.status], "deadline": clock.iso(case.deadline), "light": light(case, now),
         "desk": case.desk_code, "desk_level": case.desk_level, "channel": case.channel,
         "household_id": case.household_id, "applicant": case.applicant_name, "score": case.score,
         "supervised": case.supervised, "flags": case.flags, "created_at": clock.iso(case.created_at)}
    if events:
        d["materials"] = case.materials
        d["events"] = [{"action": e.action, "actor": e.actor, "level": e.level, "status": e.status,
                        "desk": e.desk_code, "at": clock.iso(e.at), "note": e.note} for e in case.events]
    return d


def household_panel(household_id: int) -> dict:
    """The household page's 办件记录 (base data's panel hook)."""
    cases = household_cases(household_id, limit=20)
    return {"title": "办件记录", "headers": ["办件号", "事项", "状态", "时限", "提交时间"],
            "rows": [[c.number, c.service_name, STATUS_NAMES[c.status], clock.fmt(c.deadline), clock.fmt(c.created_at)]
                     for c in cases],
            "links": [f"/admin/cases/{c.id}" for c in cases], "empty": "没有办件记录。"}


def deceased_with_open_cases(region: Region) -> list[tuple[str, int, int | None, str]]:
    """Data comparison: open cases of people the population register lists as deceased."""
    dead = registry_queries.deceased_in(region)
    if not dead:
        return []
    rows = session.scalars(select(Case).where(Case.applicant_key.in_(list(dead)), Case.status.in_(OPEN)))
    return [("deceased_case", dead[c.applicant_key].household_id, dead[c.applicant_key].id,
             f"{dead[c.applicant_key].name} 已故，仍有在办事项“{c.service_name}”（办件 {c.number}）") for c in rows]


def daily_figures(day, start: dt.datetime, end: dt.datetime) -> dict[str, dict[str, float]]:
    """Cases of the day [start, end) (UTC) by the applicant's region: received, completed, and
    completed within their deadline (for the leaders' figures)."""
    out: dict[str, dict[str, float]] = {}
    for path, n in session.execute(select(Case.region_path, func.count())
                                   .where(Case.created_at >= start, Case.created_at < end)
                                   .group_by(Case.region_path)):
        out.setdefault(path, {})["cases.received"] = n
    for path, at, deadline in session.execute(
            select(Case.region_path, CaseEvent.at, Case.deadline).join(CaseEvent, CaseEvent.case_id == Case.id)
            .where(CaseEvent.action == "complete", CaseEvent.at >= start, CaseEvent.at < end)):
        f = out.setdefault(path, {})
        f["cases.completed"] = f.get("cases.completed", 0) + 1
        if clock.aware(at) <= clock.aware(deadline):
            f["cases.completed_on_time"] = f.get("cases.completed_on_time", 0) + 1
    return out


__all__ = ["CHANNEL_NAMES", "LIGHT_NAMES", "PLAIN", "daily_figures", "deceased_with_open_cases", "desk",
           "household_cases", "household_panel", "light", "load", "search", "supervision", "to_dict"]
