"""JSON API of meetings (INTERFACES §4): schedule, read, motions, votes from boxes, attendance."""
from __future__ import annotations

from flask import g, request
from pydantic import BaseModel, Field

from portal_server.core.api import body, make_blueprint, not_found, paginate, parse_ts
from portal_server.core.auth import (
    api_user_required,
    terminal_required,
    user_or_terminal,
)
from portal_server.core.db import session

from . import operations as ops
from . import queries
from .models import CHOICE_KEYS, Motion

bp = make_blueprint("meetings_api", __name__)

MANAGE_ROLES = ("editor", "handler")


class MeetingIn(BaseModel):
    title: str = Field(max_length=128)
    region_code: str = Field(max_length=12)
    starts_at: str
    ends_at: str
    agenda: str = Field(default="", max_length=5000)


class MotionIn(BaseModel):
    title: str = Field(max_length=200)


class VoteIn(BaseModel):
    #: yes / no / abstain, or the colour key: green / red / yellow.
    choice: str = Field(max_length=8)


def _meeting_for_staff(meeting_id: int):
    m = queries.meeting_by_id(meeting_id)
    if m is None or not g.user.scope.covers(m.region):
        raise not_found(f"meeting {meeting_id}")
    return m


@bp.post("/meetings")
@api_user_required(*MANAGE_ROLES)
@body(MeetingIn)
def create(data: MeetingIn):
    """Schedule a meeting: ``title``, ``region_code`` (in scope), ``starts_at``, ``ends_at`` →
    ``{"id","status":"scheduled","stream_key","rtmp_url",...}``."""
    m = ops.schedule(g.user, data.title, data.region_code, parse_ts(data.starts_at, "starts_at"),
                     parse_ts(data.ends_at, "ends_at"), data.agenda)
    session.commit()
    return queries.meeting_to_dict(m, staff=True), 201


@bp.get("/meetings")
@user_or_terminal
def listing():
    """Meetings in the caller's scope (staff, ``?status=``) or of the box's village (box)."""
    status = request.args.get("status") or None
    if g.user is not None:
        return paginate(queries.in_scope(g.user.scope, status), lambda m: queries.meeting_to_dict(m, staff=True),
                        session)
    q = queries.for_box_path(g.terminal.region_path)
    if status:
        q = q.where(queries.Meeting.status == status)
    return paginate(q.order_by(queries.Meeting.starts_at.desc()),
                    lambda m: queries.meeting_to_dict(m, household_id=g.terminal.household_id), session)


@bp.get("/meetings/<int:meeting_id>")
@user_or_terminal
def show(meeting_id: int):
    """``status`` (scheduled, live, ended), ``hls_url``, ``replay_url``, ``attendance``, ``vote_results``;
    a box sees the meetings of its village (with its household's votes), never the stream key."""
    m = queries.meeting_by_id(meeting_id)
    if g.user is not None:
        if m is None or not g.user.scope.covers(m.region):
            raise not_found(f"meeting {meeting_id}")
        return queries.meeting_to_dict(m, staff=True)
    if m is None or not queries.visible_to_box(m, g.terminal):
        raise not_found(f"meeting {meeting_id}")
    return queries.meeting_to_dict(m, household_id=g.terminal.household_id)


@bp.post("/meetings/<int:meeting_id>/motions")
@api_user_required(*MANAGE_ROLES)
@body(MotionIn)
def open_motion(meeting_id: int, data: MotionIn):
    """Open a motion during the live meeting (409 when not live or another is open)."""
    motion = ops.open_motion(g.user, _meeting_for_staff(meeting_id), data.title)
    session.commit()
    return queries.motion_to_dict(motion), 201


@bp.post("/meetings/<int:meeting_id>/motions/<int:motion_id>/close")
@api_user_required(*MANAGE_ROLES)
def close_motion(meeting_id: int, motion_id: int):
    """Close the motion: votes are final; results stay visible."""
    m = _meeting_for_staff(meeting_id)
    motion = session.get(Motion, motion_id)
    if motion is None or motion.meeting_id != m.id:
        raise not_found(f"motion {motion_id}")
    ops.close_motion(g.user, motion)
    session.commit()
    return queries.motion_to_dict(motion)


@bp.post("/meetings/<int:meeting_id>/motions/<int:motion_id>/vote")
@terminal_required
@body(VoteIn)
def vote(meeting_id: int, motion_id: int, data: VoteIn):
    """A household's vote from its box: ``choice`` yes/no/abstain (or green/red/yellow);
    changeable until the motion closes (409 after), 403 from a box of another village."""
    motion = session.get(Motion, motion_id)
    if motion is None or motion.meeting_id != meeting_id:
        raise not_found(f"motion {motion_id}")
    choice = CHOICE_KEYS.get(data.choice, data.choice)
    v = ops.cast_vote(g.terminal, motion_id, choice)
    session.commit()
    return {"motion_id": motion_id, "choice": v.choice, "results": queries.results(motion)}


@bp.post("/meetings/<int:meeting_id>/finish")
@api_user_required(*MANAGE_ROLES)
def finish(meeting_id: int):
    """Close the meeting for good: it ends and its stream key is replaced (an encoder that
    reconnects is refused; until then a dropped encoder may resume within the window)."""
    m = ops.finish(g.user, _meeting_for_staff(meeting_id))
    session.commit()
    return queries.meeting_to_dict(m, staff=True)


@bp.post("/meetings/<int:meeting_id>/attend")
@terminal_required
def attend(meeting_id: int):
    """The TV live page says this box is watching (counted once per box)."""
    m = queries.meeting_by_id(meeting_id)
    if m is None or not queries.visible_to_box(m, g.terminal):
        raise not_found(f"meeting {meeting_id}")
    ops.attend_from_tv(g.terminal, m)
    session.commit()
    return {"attendance": queries.attendance(m)}


@bp.get("/meetings/<int:meeting_id>/state")
@terminal_required
def state(meeting_id: int):
    """What the TV live page polls: status, the open motion (with this household's vote), URLs."""
    m = queries.meeting_by_id(meeting_id)
    if m is None or not queries.visible_to_box(m, g.terminal):
        raise not_found(f"meeting {meeting_id}")
    motion = queries.open_motion(m)
    last = m.motions[-1] if m.motions else None
    return {"status": m.status, **queries.urls(m),
            "motion": queries.motion_to_dict(motion, g.terminal.household_id) if motion else None,
            "last_motion": queries.motion_to_dict(last, g.terminal.household_id) if last else None}


