"""Every write of the feedback loop: validate → change → flush → signal → audit.

The caller commits (views commit before answering the resident). Errors are core ``ApiError``s
(400 bad input, 403 role/scope, 409 state) so the API, the staff web and the TV can all show them.
"""
from __future__ import annotations

import datetime as dt
import io
import json
import logging
import secrets
import uuid
from dataclasses import dataclass
from pathlib import Path

from flask import current_app
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from portal_server.core import audit, clock, crypto, outbox, scope, signals
from portal_server.core.accounts import Department, User
from portal_server.core.api import ApiError, bad_request, conflict, forbidden
from portal_server.core.db import add_once, session, utcnow
from portal_server.core.regions import Region, region_by_code
from portal_server.core.terminals import Terminal

from . import rules
from .models import (
    CATEGORIES,
    OPEN,
    PENDING,
    STATUS_NAMES,
    Poll,
    PollVote,
    WorkOrder,
    WorkOrderEvent,
    WorkOrderPhoto,
)

log = logging.getLogger(__name__)

MAX_PHOTOS = 3
MAX_PHOTO_BYTES = 10 * 1024 * 1024
PHOTO_MAX_SIDE = 1600
STAFF_ACTIONS = ("accept", "assign", "escalate", "return", "reply", "close", "reopen")
#: Marking an order urgent is a handler's step too, but not one of the loop's transitions.
ACTIONS = STAFF_ACTIONS + ("rate", "follow_up", "urgent")


# Who is acting ----------------------------------------------------------------------------

@dataclass
class Actor:
    """The person or box behind a step: exactly one of user/terminal, or neither for the system."""

    user: User | None = None
    terminal: Terminal | None = None
    name_override: str | None = None

    @property
    def name(self) -> str:
        if self.name_override:
            return self.name_override
        if self.user is not None:
            return self.user.username
        if self.terminal is not None:
            return f"terminal:{self.terminal.serial}"
        return "system"

    @property
    def level(self) -> str:
        if self.user is not None:
            return "department" if self.user.department_code else self.user.region.level
        if self.terminal is not None or self.name_override == "phone":
            return "resident"
        return "system"


SYSTEM = Actor()


# Desks and permissions --------------------------------------------------------------------

def desk_of_user(user: User) -> tuple[str, str]:
    """(level, code) of the desk a staff user sits at."""
    if user.department_code:
        return "department", user.department_code
    return user.region.level, user.region.code


def can_handle(user: User, order: WorkOrder) -> bool:
    """A handler acts on orders at a desk in their scope (regions) or of their department."""
    if not user.has_role("handler"):
        return False
    if "admin" in user.roles:
        return True
    if order.handler_level == "department":
        return user.department_code == order.handler_code
    if user.department_code:
        return False
    return bool(order.handler_path) and order.handler_path.startswith(user.region.path)


def can_view(user: User, order: WorkOrder) -> bool:
    """Staff see orders from their scope, at their desk, or once handled by their department."""
    if "admin" in user.roles:
        return True
    if can_handle(user, order):
        return True
    if user.department_code:
        return any(e.code == user.department_code for e in order.events)
    return order.region_path.startswith(user.region.path) or (
        bool(order.handler_path) and order.handler_path.startswith(user.region.path))


def allowed_actions(user: User, order: WorkOrder) -> list[str]:
    """The actions this staff user may take on the order now (for the order page's buttons)."""
    out = []
    if can_handle(user, order):
        for a in STAFF_ACTIONS:
            if _state_problem(order, a) is None:
                out.append(a)
        if _state_problem(order, "urgent") is None:
            out.append("urgent")
    if order.status == "closed" and order.follow_up == "due" and _can_follow_up(user, order):
        out.append("follow_up")
    return out


def _can_follow_up(user: User, order: WorkOrder) -> bool:
    return user.has_role("grid_worker") and order.region_path.startswith(user.region.path) \
        and not user.department_code


def _state_problem(order: WorkOrder, action: str) -> str | None:
    """None when ``action`` is allowed in the order's state, else why not (naming the state)."""
    s = order.status
    name = f"{s}（{STATUS_NAMES.get(s, s)}）"
    if action == "accept":
        ok = s in PENDING
    elif action in ("assign", "escalate", "return"):
        ok = s in OPEN
        if ok and action == "escalate" and order.handler_level == "department":
            return f"order is in state {name} at a city department: there is no level above"
        if ok and action == "return" and order.handler_level == "village":
            return f"order is in state {name} at village level: there is no level below"
    elif action == "reply":
        ok = s in OPEN and order.accepted_at is not None
        if s in OPEN and not ok:
            return f"order is in state {name} and was never accepted: accept it first"
    elif action == "close":
        ok = s == "replied"
    elif action == "reopen":
        ok = s in ("replied", "closed")
    elif action == "rate":
        ok = s in ("replied", "closed") and order.rating is None
        if s in ("replied", "closed") and not ok:
            return f"order is in state {name} and this reply was already rated"
    elif action == "follow_up":
        ok = s == "closed" and order.follow_up == "due"
    elif action == "urgent":
        ok = s in OPEN and not order.urgent
        if s in OPEN and not ok:
            return f"order is in state {name} and is already urgent"
    else:
        return f"unknown action {action}"
    return None if ok else f"action {action} is not allowed: order is in state {name}"


# Internals --------------------------------------------------------------------------------

def _event(order: WorkOrder, actor: Actor, action: str, note: str | None = None, **detail) -> WorkOrderEvent:
    ev = WorkOrderEvent(order=order, at=utcnow(), action=action, actor=actor.name, level=actor.level,
                        code=order.handler_code, status=order.status, deadline_at=order.deadline_at,
                        note=note, detail=json.dumps(detail, ensure_ascii=False, default=str))
    session.add(ev)
    return ev


def _after(order: WorkOrder, actor: Actor, action: str, note: str | None = None, **detail) -> WorkOrderEvent:
    """Record the step: event → flush → signal → audit."""
    order.updated_at = utcnow()
    ev = _event(order, actor, action, note, **detail)
    session.flush()
    signals.feedback_changed.send(order.id, action=action, region_code=order.region.code,
                                  status=order.status)
    audit.record(f"feedback.{action}", "work_order", order.id, order.region.code, actor=actor.name,
                 code=order.code, status=order.status, desk=f"{order.handler_level}:{order.handler_code}",
                 **({"note": note} if note else {}), **detail)
    return ev


def _restart_clock(order: WorkOrder, now: dt.datetime) -> None:
    order.clock_started_at = now
    order.deadline_at = rules.deadline_for(order.category, now, urgent=bool(order.urgent))
    order.overdue_noted_at = None


def _set_desk(order: WorkOrder, level: str, code: str, path: str | None) -> None:
    order.handler_level, order.handler_code, order.handler_path = level, code, path


def _region_desk(region: Region) -> tuple[str, str, str]:
    return region.level, region.code, region.path


def _level_above(order: WorkOrder) -> str:
    """The region code supervising the current desk."""
    if order.handler_level == "village":
        return order.region.parent.code
    city = order.region.chain()[0]
    return city.code


# Submitting -------------------------------------------------------------------------------

def _validate_category(category) -> str:
    if category not in CATEGORIES:
        raise bad_request(f"unknown category {category!r} (one of: {', '.join(CATEGORIES)})",
                          field="category")
    return category


def submit(category: str, content: str | None = "", callback: bool = False, *, channel: str,
           actor: Actor, region: Region | None = None, household_id: int | None = None,
           idem_owner: str, idempotency_key: str | None = None, contact: str | None = None,
           lat: float | None = None, lon: float | None = None, address: str | None = None,
           urgent: bool = False) -> tuple[WorkOrder, bool]:
    """File an order routed to its village (or return the order a retried key already made).

    ``urgent`` orders are due the same day at every desk (care's one-key help; the hotline and
    staff when they mark it: the caller checks who may). Returns (order, created). The row is
    flushed; the caller commits before answering.
    """
    _validate_category(category)
    content = (content or "").strip()
    if len(content) > 2000:
        raise bad_request("content is too long (at most 2000 characters)", field="content")
    if region is None or region.level != "village":
        raise bad_request("a village region is required", field="region_code")
    if idempotency_key is not None:
        idempotency_key = str(idempotency_key).strip()[:80] or None
        existing = _by_key(idem_owner, idempotency_key)
        if existing is not None:
            return existing, False
    now = utcnow()
    order = WorkOrder(code="tmp-" + uuid.uuid4().hex[:24], category=category, content=content,
                      callback=bool(callback), channel=channel, household_id=household_id,
                      terminal_serial=actor.terminal.serial if actor.terminal else None,
                      submitted_by=actor.name, idem_owner=idem_owner, idempotency_key=idempotency_key,
                      contact_enc=crypto.encrypt(contact) if contact else None,
                      region_id=region.id, region_path=region.path, lat=lat, lon=lon, address=address,
                      urgent=bool(urgent), status="submitted", created_at=now, updated_at=now)
    order.region = region
    _set_desk(order, *_region_desk(region))
    _restart_clock(order, now)
    if idempotency_key is not None:
        # The unique (owner, key) constraint settles a race between two retries.
        order, created = add_once(order, lambda: _by_key(idem_owner, idempotency_key))
        if not created:
            log.info("feedback: concurrent retry of key %s/%s answered with order %s",
                     idem_owner, idempotency_key, order.id)
            return order, False
    else:
        session.add(order)
        session.flush()
    order.code = "FK" + clock.fmt(now, "%Y%m%d") + f"{order.id:06d}"
    _after(order, actor, "submit", content or None, channel=channel, category=category,
           callback=bool(callback), **({"urgent": True} if order.urgent else {}))
    return order, True


def _by_key(owner: str, key: str | None) -> WorkOrder | None:
    if key is None:
        return None
    return session.scalar(select(WorkOrder).where(WorkOrder.idem_owner == owner,
                                                  WorkOrder.idempotency_key == key))


# Actions ----------------------------------------------------------------------------------

def act(order: WorkOrder, actor: Actor, action: str, *, to: str | None = None,
        message: str | None = None, reason: str | None = None, score: int | None = None) -> WorkOrder:
    """Apply one action of INTERFACES §4 (plus follow_up): 403 for role/scope, 409 for state."""
    if action not in ACTIONS:
        raise bad_request(f"unknown action {action!r} (one of: {', '.join(ACTIONS)})", field="action")
    # Who may: checked before the state so that outsiders learn nothing about it.
    if action == "rate":
        term = actor.terminal
        if term is None:
            raise forbidden("only the box that filed the order may rate it")
        same = (order.household_id is not None and term.household_id == order.household_id) or \
            (order.terminal_serial is not None and term.serial == order.terminal_serial)
        if not same:
            raise forbidden("only the household that filed the order may rate it")
    elif action == "follow_up":
        if actor.user is None or not _can_follow_up(actor.user, order):
            raise forbidden("follow-up visits are made by the village's grid worker")
    else:
        if actor.user is None:
            raise forbidden(f"action {action} needs a handler")
        if not actor.user.has_role("handler"):
            raise forbidden(f"action {action} needs the handler role")
        if not can_handle(actor.user, order):
            raise forbidden(f"工单 {order.code} 在 {order.handler_level}:{order.handler_code} 办理，"
                            "不在您的管辖范围内")
    problem = _state_problem(order, action)
    if problem:
        raise conflict(problem, state=order.status)
    now = utcnow()
    if action == "accept":
        order.status = "accepted"
        order.accepted_at = order.accepted_at or now
        _after(order, actor, "accept")
    elif action in ("assign", "escalate", "return"):
        _transfer(order, actor, action, to, (reason or message or "").strip() or None, now)
    elif action == "reply":
        text = (message or "").strip()
        if not text:
            raise bad_request("a reply needs a message", field="message")
        if len(text) > 2000:
            raise bad_request("the reply is too long (at most 2000 characters)", field="message")
        order.status = "replied"
        order.reply = text
        order.replied_at = now
        order.replied_by_desk = f"{order.handler_level}:{order.handler_code}"
        order.replied_on_time = now <= clock.aware(order.deadline_at)
        order.rating = None
        order.rated_at = None
        order.pass_count = 0
        _after(order, actor, "reply", text, on_time=order.replied_on_time)
    elif action == "close":
        _close(order, now)
        _after(order, actor, "close", (reason or message or "").strip() or None)
    elif action == "reopen":
        _reopen(order, now)
        _after(order, actor, "reopen", (reason or message or "").strip() or None)
    elif action == "rate":
        if not isinstance(score, int) or isinstance(score, bool) or not 1 <= score <= 5:
            raise bad_request("score must be an integer from 1 to 5", field="score")
        order.rating = score
        order.rated_at = now
        comment = (message or "").strip() or None
        _after(order, actor, "rate", comment, score=score)
        if score <= 2:
            _reopen(order, now)
            _after(order, actor, "reopen", f"居民评价{score}分，不满意，重新办理", score=score)
        elif order.status == "replied":
            _close(order, now)
            _after(order, actor, "close", f"居民评价{score}分，满意", score=score)
    elif action == "urgent":
        _mark_urgent(order, now)
        _after(order, actor, "urgent", (reason or message or "").strip() or None)
    elif action == "follow_up":
        note = (message or reason or "").strip()
        if not note:
            raise bad_request("a follow-up visit needs a note", field="message")
        order.follow_up = "done"
        order.follow_up_note = note
        _after(order, actor, "follow_up", note)
    return order


def _mark_urgent(order: WorkOrder, now: dt.datetime) -> None:
    """Urgent from now on: the current desk's deadline comes forward to the urgent one (never
    later than it was); later desks get urgent deadlines through ``_restart_clock``."""
    order.urgent = True
    due = rules.deadline_for(order.category, now, urgent=True)
    if due < clock.aware(order.deadline_at):
        order.clock_started_at = now
        order.deadline_at = due
        order.overdue_noted_at = None


def _close(order: WorkOrder, now: dt.datetime) -> None:
    order.status = "closed"
    order.closed_at = now
    order.follow_up = "due"


def _reopen(order: WorkOrder, now: dt.datetime) -> None:
    order.status = "reopened"
    order.reopen_count += 1
    order.closed_at = None
    order.follow_up = None
    _restart_clock(order, now)


def _transfer(order: WorkOrder, actor: Actor, action: str, to: str | None, note: str | None,
              now: dt.datetime) -> None:
    before = f"{order.handler_level}:{order.handler_code}"
    if action == "escalate":
        if order.handler_level == "village":
            desk = _region_desk(order.region.parent)
        else:  # town or city → a city department
            dept_code = to if to else rules.escalation_department(order.category)
            dept = session.scalar(select(Department).where(Department.code == dept_code))
            if dept is None:
                raise bad_request(f"unknown department {dept_code!r}", field="to")
            desk = ("department", dept.code, None)
        order.status = "escalated"
    elif action == "return":
        if not note:
            raise bad_request("returning an order needs a reason", field="reason")
        if order.handler_level == "town":
            desk = _region_desk(order.region)
        else:  # department or city → the town of the order's village
            desk = _region_desk(order.region.parent)
        order.status = "returned"
    else:  # assign
        if not to:
            raise bad_request("assign needs `to`: a region or department code", field="to")
        dept = session.scalar(select(Department).where(Department.code == to))
        if dept is not None:
            desk = ("department", dept.code, None)
        else:
            region = region_by_code(to)
            if region is None:
                raise bad_request(f"unknown region or department {to!r}", field="to")
            user = actor.user
            if "admin" not in user.roles and not user.department_code and not scope.covers(user, region):
                raise scope.OutOfScope(region)
            desk = _region_desk(region)
        if f"{desk[0]}:{desk[1]}" == before:
            raise bad_request("the order is already at that desk", field="to")
        order.status = "assigned"
    _set_desk(order, *desk)
    _restart_clock(order, now)
    order.pass_count += 1
    _after(order, actor, action, note, **{"from": before, "to": f"{desk[0]}:{desk[1]}"})
    if order.pass_count >= rules.PROBLEM_AFTER_PASSES and not order.problem:
        order.problem = True
        order.supervisor_code = _level_above(order)
        _after(order, SYSTEM, "supervise",
               f"已转办{order.pass_count}次仍无答复，列为督办件，由上级督办",
               supervisor=order.supervisor_code)


def supplement(order: WorkOrder, actor: Actor, text: str | None, photos: list[tuple[bytes, str]] = (),
               lat: float | None = None, lon: float | None = None, address: str | None = None) -> WorkOrder:
    """Add a phone's text, photos and location to an order (all validated before anything is kept)."""
    if order.status == "closed":
        raise conflict("order is in state closed（已办结）: it cannot take more material", state=order.status)
    prepared = prepare_photos(photos)
    text = (text or "").strip()
    if not text and not prepared:
        raise bad_request("请填写反映内容", field="content")
    if len(order.photos) + len(prepared) > MAX_PHOTOS:
        raise bad_request(f"at most {MAX_PHOTOS} photos per order", field="photos")
    names = _store_photos(order, prepared)
    if lat is not None and lon is not None:
        order.lat, order.lon = lat, lon
    if address:
        order.address = address[:200]
    if text and not order.content:
        order.content = text
    _after(order, actor, "supplement", text or None, photos=names)
    return order


def prepare_photos(photos: list[tuple[bytes, str]]) -> list[tuple[bytes, int, int]]:
    """Validate and re-encode photos in memory: ≤3, each ≤10 MB and a real image; EXIF dropped."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    photos = [p for p in photos if p and p[0]]
    if len(photos) > MAX_PHOTOS:
        raise bad_request(f"at most {MAX_PHOTOS} photos", field="photos")
    out = []
    for data, filename in photos:
        if len(data) > MAX_PHOTO_BYTES:
            raise bad_request(f"photo {filename or ''} is larger than 10 MB", field="photos")
        try:
            with Image.open(io.BytesIO(data)) as img:
                img.load()
                img = ImageOps.exif_transpose(img)
                img = img.convert("RGB")
                img.thumbnail((PHOTO_MAX_SIDE, PHOTO_MAX_SIDE))
                buf = io.BytesIO()
                # A fresh image without info/exif: nothing of the original metadata survives.
                clean = Image.new("RGB", img.size)
                clean.paste(img)
                clean.save(buf, "JPEG", quality=85)
                out.append((buf.getvalue(), clean.width, clean.height))
        except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
            raise bad_request(f"photo {filename or ''} is not an image", field="photos") from None
    return out


def _store_photos(order: WorkOrder, prepared: list[tuple[bytes, int, int]]) -> list[str]:
    """Write the files atomically and add rows; the caller removes files if its commit fails."""
    media = current_app.config["SETTINGS"].media_dir
    names = []
    for data, w, h in prepared:
        rel = Path("feedback") / str(order.id) / f"{secrets.token_hex(8)}.jpg"
        target = media / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(".tmp")
        tmp.write_bytes(data)
        tmp.replace(target)
        session.add(WorkOrderPhoto(order_id=order.id, path=str(rel), width=w, height=h))
        names.append(str(rel))
    session.flush()
    session.refresh(order)
    return names


def discard_files(names: list[str]) -> None:
    media = current_app.config["SETTINGS"].media_dir
    for n in names:
        try:
            (media / n).unlink()
        except OSError:
            pass


# Deadlines --------------------------------------------------------------------------------

def check_deadlines(now: dt.datetime | None = None) -> int:
    """Remind the desk and note the level above for every open order that just went red."""
    now = now or utcnow()
    rows = session.scalars(select(WorkOrder).where(WorkOrder.status.in_(OPEN),
                                                   WorkOrder.deadline_at < now,
                                                   WorkOrder.overdue_noted_at.is_(None))).all()
    for order in rows:
        order.overdue_noted_at = now
        above = _level_above(order)
        _after(order, SYSTEM, "overdue",
               f"已超过办理时限，请{order.handler_code}尽快办理；已通报上级 {above}",
               supervisor=above)
    return len(rows)


# Polls ------------------------------------------------------------------------------------

def open_poll(user: User, title: str, options: list[str], region_code: str, closes_at: dt.datetime,
              kind: str = "poll", description: str = "") -> Poll:
    """An editor opens a poll (2–6 options) for a region in their scope."""
    if not user.has_role("editor"):
        raise forbidden("opening a poll needs the editor role")
    title = (title or "").strip()
    if not title:
        raise bad_request("a poll needs a title", field="title")
    options = [str(o).strip() for o in options if str(o).strip()]
    if not 2 <= len(options) <= 6:
        raise bad_request("a poll needs 2 to 6 options", field="options")
    if kind not in ("poll", "topic"):
        raise bad_request("kind must be poll or topic", field="kind")
    region = region_by_code(region_code or "")
    if region is None:
        raise bad_request(f"unknown region {region_code!r}", field="region_code")
    scope.require(user, region)
    if clock.aware(closes_at) <= utcnow():
        raise bad_request("the closing time must be in the future", field="closes_at")
    poll = Poll(kind=kind, title=title[:120], description=(description or "").strip(),
                options_json=json.dumps(options, ensure_ascii=False), region_id=region.id,
                region_path=region.path, closes_at=closes_at, created_by=user.username)
    session.add(poll)
    session.flush()
    audit.record("poll.open", "poll", poll.id, region.code, actor=user.username, title=title,
                 options=options)
    outbox.job("portal_server.feedback.tasks:announce_poll", poll.id)  # the boxes hear of it after commit
    return poll


def vote(poll: Poll, terminal: Terminal, option: int) -> PollVote:
    """One vote per household: 409 for a second one or a closed poll, 403 outside the region."""
    if terminal.household_id is None:
        raise forbidden("only household boxes vote")
    if not (terminal.region_path or "").startswith(poll.region_path):
        raise forbidden("this poll is not for your village")
    if clock.aware(poll.closes_at) <= utcnow():
        raise conflict("the poll is closed", state="closed")
    if not isinstance(option, int) or isinstance(option, bool) or not 0 <= option < len(poll.options):
        raise bad_request(f"option must be 0 to {len(poll.options) - 1}", field="option")
    existing = session.scalar(select(PollVote).where(PollVote.poll_id == poll.id,
                                                     PollVote.household_id == terminal.household_id))
    if existing is not None:
        raise conflict("this household has already voted", state="voted")
    v = PollVote(poll_id=poll.id, household_id=terminal.household_id, option=option)
    try:
        with session.begin_nested():
            session.add(v)
            session.flush()
    except IntegrityError:
        raise conflict("this household has already voted", state="voted") from None
    audit.record("poll.vote", "poll", poll.id, terminal.region.code if terminal.region else None,
                 actor=f"terminal:{terminal.serial}", option=option)
    return v


def require(cond: bool, err: ApiError) -> None:
    if not cond:
        raise err
