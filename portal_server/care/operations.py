"""Every write of elderly care: check-ins, care tasks (missed check-in, help), escalation,
elderly services, read aloud. validate → change → flush → signal → audit → outbox; the caller commits.
"""
from __future__ import annotations

import datetime as dt
import logging

from flask import current_app
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from device_fleet import queries as fleet_queries

from portal_server.core import audit, clock, outbox, speech
from portal_server.core.api import bad_request, conflict, forbidden
from portal_server.core.db import session, utcnow
from portal_server.core.households import Household, unmask_phone
from portal_server.core.regions import Region
from portal_server.core.terminals import Terminal
from portal_server.feedback import operations as fb

from .models import SERVICE_KINDS, CareTask, CheckIn, ElderlyService

log = logging.getLogger(__name__)

#: Households with this tag get the daily check-in.
CHECKIN_TAG = "elderly_alone"
#: Heartbeat pages that do not mean somebody is watching.
IDLE_PAGES = (None, "", "boot", "pairing", "standby", "off")
#: A second help press within this many minutes returns the same task.
HELP_DEDUPE_MIN = 30


def _setting_time(name: str) -> dt.time:
    return dt.time.fromisoformat(str(getattr(current_app.config["SETTINGS"], name)))


def checkin_deadline() -> dt.time:
    """By this city time a household must have checked in or used the TV
    (``Settings.care_checkin_deadline``, COMMUNITV_CARE_CHECKIN_DEADLINE)."""
    return _setting_time("care_checkin_deadline")


def escalate_at() -> dt.time:
    """Still-open tasks of the day go to the village head at this city time
    (``Settings.care_escalate_at``, COMMUNITV_CARE_ESCALATE_AT)."""
    return _setting_time("care_escalate_at")


def local_day(now: dt.datetime | None = None) -> dt.date:
    return clock.local(now or utcnow()).date()


def needs_checkin(household: Household | None) -> bool:
    """Elderly-alone households still living here (a moved-out household keeps its tags as history)."""
    return household is not None and CHECKIN_TAG in household.tag_list and household.status == "active"


def _box_household(terminal: Terminal, household_id: int | None) -> Household:
    if terminal.household_id is None:
        raise forbidden("this box belongs to no household")
    if household_id is not None and int(household_id) != terminal.household_id:
        raise forbidden("a box may only check in its own household")
    return terminal.household


# Check-ins --------------------------------------------------------------------------------

def check_in(terminal: Terminal, household_id: int | None = None,
             now: dt.datetime | None = None) -> tuple[CheckIn, bool]:
    """Today's 报平安 of the box's household (idempotent per day); clears today's open task.

    Returns (checkin, created). 403 for another household's id or a box of no household."""
    hh = _box_household(terminal, household_id)
    now = (now or utcnow()).astimezone(dt.UTC)
    day = local_day(now)
    existing = session.scalar(select(CheckIn).where(CheckIn.household_id == hh.id, CheckIn.day == day))
    if existing is not None:
        return existing, False
    ci = CheckIn(household_id=hh.id, day=day, at=now, terminal_serial=terminal.serial)
    try:
        with session.begin_nested():
            session.add(ci)
            session.flush()
    except IntegrityError:  # the same box pressed OK twice at once
        return session.scalar(select(CheckIn).where(CheckIn.household_id == hh.id, CheckIn.day == day)), False
    cleared = []
    for task in session.scalars(select(CareTask).where(CareTask.household_id == hh.id,
                                                       CareTask.kind == "missed_checkin",
                                                       CareTask.day == day,
                                                       CareTask.status != "done")):
        task.status, task.closed_at, task.closed_by = "done", now, "checkin"
        task.note = "本人已通过电视报平安"
        cleared.append(task.id)
    session.flush()
    audit.record("care.checkin", "household", hh.id, hh.region.code, actor=f"terminal:{terminal.serial}",
                 day=day.isoformat(), cleared_tasks=cleared)
    return ci, True


def _tv_used_since(households: list[Household], since: dt.datetime) -> set[int]:
    """Households whose box sent a heartbeat from a portal page since ``since``."""
    serials = {t.serial: t.household_id for t in session.scalars(
        select(Terminal).where(Terminal.household_id.in_([h.id for h in households])))}
    if not serials:
        return set()
    try:
        seen = fleet_queries.presence_of(list(serials))
    except Exception:  # Redis down: nobody counts as seen, so nobody is missed silently
        log.warning("care: presence unavailable; TV use not taken into account", exc_info=True)
        return set()
    used = set()
    for serial, (_online, last_seen, hb) in seen.items():
        if last_seen is None or last_seen < since.timestamp():
            continue
        if hb is not None and hb.get("page") in IDLE_PAGES and not hb.get("playing"):
            continue
        used.add(serials[serial])
    return used


def check_missed(now: dt.datetime | None = None) -> dict:
    """The daily check: after the deadline, a task for every elderly_alone household neither
    checked in nor seen on the TV today; after the escalation hour, today's open tasks go to the
    village head. Idempotent: safe to run every few minutes."""
    now = (now or utcnow()).astimezone(dt.UTC)
    zone = clock.city_tz()
    local = now.astimezone(zone)
    day = local.date()
    made, escalated = [], []
    if local.time() >= checkin_deadline():
        households = [h for h in session.scalars(select(Household).where(Household.tags.contains(CHECKIN_TAG)))
                      if needs_checkin(h)]
        done = set(session.scalars(select(CheckIn.household_id).where(CheckIn.day == day)))
        have = set(session.scalars(select(CareTask.household_id).where(CareTask.kind == "missed_checkin",
                                                                       CareTask.day == day)))
        todo = [h for h in households if h.id not in done and h.id not in have]
        midnight = dt.datetime.combine(day, dt.time(0), zone)
        used = _tv_used_since(todo, midnight) if todo else set()
        for h in todo:
            if h.id in used:
                continue
            task = CareTask(kind="missed_checkin", household_id=h.id, region_id=h.region_id,
                            region_path=h.region_path, day=day, status="open", created_at=now,
                            dedupe_key=f"missed_checkin:{h.id}:{day.isoformat()}")
            session.add(task)
            session.flush()
            made.append(task.id)
            audit.record("care.task_opened", "care_task", task.id, h.region.code, actor="system",
                         kind="missed_checkin", household=h.id)
    if local.time() >= escalate_at():
        for task in session.scalars(select(CareTask).where(CareTask.status == "open", CareTask.day <= day)):
            task.status, task.escalated_at = "escalated", now
            escalated.append(task.id)
            audit.record("care.task_escalated", "care_task", task.id, task.region.code, actor="system",
                         kind=task.kind)
    session.flush()
    return {"opened": made, "escalated": escalated}


# Help -------------------------------------------------------------------------------------

def request_help(terminal: Terminal, now: dt.datetime | None = None) -> tuple[CareTask, bool]:
    """One-key 求助: an urgent work order through the feedback loop (when that feature is
    installed) and a help task for the grid worker. A repeat press within 30 minutes returns
    the same task. Returns (task, created)."""
    hh = _box_household(terminal, None)
    now = (now or utcnow()).astimezone(dt.UTC)
    recent = session.scalar(select(CareTask).where(
        CareTask.household_id == hh.id, CareTask.kind == "help", CareTask.status != "done",
        CareTask.created_at >= now - dt.timedelta(minutes=HELP_DEDUPE_MIN)).order_by(CareTask.id.desc()))
    if recent is not None:
        return recent, False
    task = CareTask(kind="help", household_id=hh.id, region_id=hh.region_id, region_path=hh.region_path,
                    day=local_day(now), status="open", created_at=now)
    session.add(task)
    session.flush()
    order = _file_work_order(terminal, hh, task)
    if order is not None:
        task.work_order_id, task.work_order_code = order.id, order.code
    session.flush()
    audit.record("care.help", "care_task", task.id, hh.region.code, actor=f"terminal:{terminal.serial}",
                 work_order=task.work_order_code)
    return task, True


def _file_work_order(terminal: Terminal, hh: Household, task: CareTask):
    """File the help call as a feedback work order."""
    order, _ = fb.submit("elderly", f"【一键求助】{hh.address} 的独居老人通过电视一键求助，请立即电话联系或上门查看。",
                         True, channel="tv", actor=fb.Actor(terminal=terminal), region=hh.region,
                         household_id=hh.id, idem_owner=f"hh:{hh.id}",
                         idempotency_key=f"care-help-{task.id}", urgent=True)
    return order


# Working the tasks ------------------------------------------------------------------------

def can_work(user, task: CareTask) -> bool:
    """Grid workers in scope work every task; handlers (the village head) the escalated ones."""
    if not user.scope.covers(task.region):
        return False
    if user.has_role("grid_worker"):
        return True
    return user.has_role("handler") and task.status == "escalated"


def close_task(task: CareTask, user, note: str | None) -> CareTask:
    if not can_work(user, task):
        raise forbidden("this task is not yours to handle")
    if task.status == "done":
        raise conflict("该任务已处理")
    note = (note or "").strip()
    if not note:
        raise bad_request("请填写处理情况（例如：已上门，老人身体无恙）", field="note")
    task.status, task.closed_at, task.closed_by, task.note = "done", utcnow(), user.username, note[:2000]
    session.flush()
    audit.record("care.task_closed", "care_task", task.id, task.region.code, actor=user.username, note=note[:200])
    return task


def reveal_phone(task: CareTask, user) -> str | None:
    """The household's clear phone number for this task (audited through core.households)."""
    if not can_work(user, task):
        raise forbidden("this task is not yours to handle")
    return unmask_phone(task.household, reason=f"care task {task.id} ({task.kind}) by {user.username}")


# Elderly services -------------------------------------------------------------------------

def add_service(region: Region, kind: str, title: str, place: str, schedule: str, phone: str,
                details: str, actor: str) -> ElderlyService:
    if kind not in SERVICE_KINDS:
        raise bad_request(f"kind must be one of {', '.join(SERVICE_KINDS)}", field="kind")
    if not (title or "").strip():
        raise bad_request("title is required", field="title")
    s = ElderlyService(region_id=region.id, region_path=region.path, kind=kind, title=title.strip()[:128],
                       place=(place or "")[:255], schedule=(schedule or "")[:255], phone=(phone or "")[:32],
                       details=details or "")
    session.add(s)
    session.flush()
    audit.record("care.service_added", "elderly_service", s.id, region.code, actor=actor, title=s.title)
    return s


# Read aloud -------------------------------------------------------------------------------

def read_aloud(ref: str, text: str) -> speech.SpeechClip:
    """The speech clip of ``text`` (``ref`` names what it is); a pending clip is made by the
    speech job after the commit (through the outbox: a rollback makes nothing)."""
    clip = speech.clip_for(ref, text)
    if clip.status == "pending":
        outbox.job(speech.MAKE_JOB, clip.id, queue="media", timeout_s=300)
    return clip
