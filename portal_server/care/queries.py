"""Reads of elderly care, always scoped by the caller."""
from __future__ import annotations

import html
import re

from sqlalchemy import func, or_, select

from portal_server.core import fieldwork
from portal_server.core.api import iso
from portal_server.core.db import session
from portal_server.core.households import Household
from portal_server.core.regions import Region
from portal_server.core.speech import SpeechClip, path_url

from . import operations as ops
from .models import (
    SERVICE_KIND_NAMES,
    TASK_KIND_NAMES,
    TASK_STATUS_NAMES,
    CareTask,
    CheckIn,
    ElderlyService,
)


def task_get(task_id: int) -> CareTask | None:
    return session.get(CareTask, task_id)


def tasks_query(user, status: str = "open"):
    """Tasks in the user's scope: grid workers see all of theirs, handlers (village heads) the
    escalated ones. ``status``: open (open + escalated), done, or all."""
    q = select(CareTask).where(user.scope.region_filter(CareTask.region_path))
    if status == "open":
        q = q.where(CareTask.status.in_(("open", "escalated")))
    elif status in ("done", "escalated"):
        q = q.where(CareTask.status == status)
    if not user.has_role("grid_worker"):
        q = q.where(or_(CareTask.status == "escalated", CareTask.escalated_at.is_not(None)))
    else:  # a household in a grid is its grid worker's (core.fieldwork)
        q = q.where(fieldwork.household_filter(user, CareTask.household_id))
    return q.order_by(CareTask.kind.desc(), CareTask.created_at, CareTask.id)


def task_to_dict(t: CareTask) -> dict:
    h = t.household
    return {"id": t.id, "kind": t.kind, "kind_name": TASK_KIND_NAMES[t.kind], "status": t.status,
            "status_name": TASK_STATUS_NAMES[t.status], "day": t.day.isoformat(),
            "household": {"id": h.id, "number": h.number, "name": h.head_name, "address": h.address,
                          "phone": h.phone_masked, "region_code": t.region.code},
            "name": h.head_name, "address": h.address, "phone": h.phone_masked,
            "work_order": {"id": t.work_order_id, "code": t.work_order_code} if t.work_order_id else None,
            "created_at": iso(t.created_at), "escalated_at": iso(t.escalated_at),
            "closed_at": iso(t.closed_at), "closed_by": t.closed_by, "note": t.note}


def checked_in_today(household_id: int | None) -> CheckIn | None:
    if household_id is None:
        return None
    return session.scalar(select(CheckIn).where(CheckIn.household_id == household_id,
                                                CheckIn.day == ops.local_day()))


def checkin_state(terminal) -> dict:
    """The per-box state the home screen's 报平安 button reads."""
    hh = terminal.household
    required = ops.needs_checkin(hh)
    ci = checked_in_today(hh.id) if hh is not None else None
    return {"required": required, "done_today": ci is not None, "at": iso(ci.at) if ci else None,
            "url": "/api/v1/checkins", "page": "/tv/care/checkin", "deadline": ops.checkin_deadline().strftime("%H:%M")}


def services_for(region: Region) -> list[ElderlyService]:
    """Elderly services of a village (and those its town or city run for everybody)."""
    codes = region.chain_codes()
    rows = session.scalars(select(ElderlyService).join(Region, Region.id == ElderlyService.region_id)
                           .where(Region.code.in_(codes)).order_by(ElderlyService.kind, ElderlyService.id))
    return list(rows)


def service_to_dict(s: ElderlyService) -> dict:
    return {"id": s.id, "kind": s.kind, "kind_name": SERVICE_KIND_NAMES.get(s.kind, s.kind), "title": s.title,
            "place": s.place, "schedule": s.schedule, "phone": s.phone, "details": s.details,
            "region_code": s.region.code}


def clip_to_dict(c: SpeechClip) -> dict:
    return {"id": c.id, "ref": c.ref, "status": c.status,
            "url": path_url(c),
            "duration_s": c.duration_s, "error": c.error}


def plain(text: str | None) -> str:
    """HTML to plain text for reading aloud."""
    text = re.sub(r"<(br|/p|/li|/h\d|/tr)[^>]*>", "。", text or "", flags=re.IGNORECASE)
    text = re.sub(r"<[^>]+>", " ", text)
    return re.sub(r"\s+", " ", html.unescape(text)).strip()


def daily_figures(day, start, end) -> dict[str, dict[str, float]]:
    """Check-ins of the city day ``day`` by household region: expected (households tagged
    ``elderly_alone``, who are asked to check in daily) and done (any household that checked in)."""
    out: dict[str, dict[str, float]] = {}
    for path, n in session.execute(select(Household.region_path, func.count())
                                   .where(Household.tags.contains("elderly_alone"))
                                   .group_by(Household.region_path)):
        out.setdefault(path, {})["checkins.expected"] = n
    for path, n in session.execute(select(Household.region_path, func.count(CheckIn.id))
                                   .join(Household, Household.id == CheckIn.household_id)
                                   .where(CheckIn.day == day).group_by(Household.region_path)):
        out.setdefault(path, {})["checkins.done"] = n
    return out


def task_outcomes(path: str, start, end) -> list[tuple[int, int, str | None, bool | None]]:
    """For assessments: (household_id, region_id, closed_by, on_time) of the tasks created in
    [start, end) under region ``path``; on time = handled before it was escalated to the village
    head, late = escalated, None = still open and not escalated."""
    rows = session.execute(select(CareTask.household_id, CareTask.region_id, CareTask.closed_by,
                                  CareTask.status, CareTask.escalated_at)
                           .where(CareTask.region_path.startswith(path, autoescape=True),
                                  CareTask.created_at >= start, CareTask.created_at < end))
    out = []
    for hid, rid, by, status, esc in rows:
        on_time = False if esc is not None else (True if status == "done" else None)
        out.append((hid, rid, by, on_time))
    return out


def last_checkin_days(household_ids) -> dict[int, object]:
    """{household id: day of its latest check-in} for those that ever checked in (the registry's
    data comparison and household page read this)."""
    ids = list(household_ids)
    if not ids:
        return {}
    rows = session.execute(select(CheckIn.household_id, func.max(CheckIn.day))
                           .where(CheckIn.household_id.in_(ids)).group_by(CheckIn.household_id))
    return {hid: day for hid, day in rows}


def household_tasks(household_id: int, limit: int = 20) -> list[CareTask]:
    """A household's care tasks, newest first (for its page in the staff web)."""
    return list(session.scalars(select(CareTask).where(CareTask.household_id == household_id)
                                .order_by(CareTask.id.desc()).limit(limit)))
