"""Every write of meetings: schedule, admit/stop a publisher, motions, votes, attendance, minutes.

validate → change → flush → signal → audit. The caller commits. Errors are core ``ApiError``s
(400 bad input, 403 refused/scope, 404, 409 state) shared by the API, the staff web and the TV.
"""
from __future__ import annotations

import datetime as dt
import logging
import re
import secrets
import uuid
from pathlib import Path

from flask import current_app
from sqlalchemy import select

from portal_server.core import audit, outbox, protocol, scope, signals
from portal_server.core.api import ApiError, bad_request, conflict, forbidden, not_found
from portal_server.core.db import session, utcnow
from portal_server.core.regions import region_by_code

from . import queries
from .models import CHOICES, Attendance, Meeting, Motion, Vote

log = logging.getLogger(__name__)

MAX_DURATION = dt.timedelta(hours=12)
MINUTES_TYPES = (".pdf", ".doc", ".docx", ".txt", ".jpg", ".jpeg", ".png")


def schedule(user, title: str, region_code: str, starts_at: dt.datetime | None, ends_at: dt.datetime | None,
             agenda: str = "") -> Meeting:
    """A new meeting of a village or town inside the user's scope, with a fresh stream key."""
    title = (title or "").strip()
    if not title:
        raise bad_request("title is required", field="title")
    if len(title) > 128:
        raise bad_request("title is too long (at most 128 characters)", field="title")
    if len(agenda or "") > 5000:
        raise bad_request("agenda is too long (at most 5000 characters)", field="agenda")
    region = region_by_code(region_code or "")
    if region is None:
        raise bad_request(f"unknown region {region_code!r}", field="region_code")
    scope.require(user, region)
    if region.level not in ("village", "town"):
        raise bad_request("a meeting belongs to a village or a town", field="region_code")
    if starts_at is None:
        raise bad_request("starts_at is required", field="starts_at")
    if ends_at is None:
        raise bad_request("ends_at is required", field="ends_at")
    if ends_at <= starts_at:
        raise bad_request("ends_at must be after starts_at", field="ends_at")
    if ends_at - starts_at > MAX_DURATION:
        raise bad_request("a meeting lasts at most 12 hours", field="ends_at")
    if ends_at <= utcnow():
        raise bad_request("ends_at is in the past", field="ends_at")
    m = Meeting(title=title, agenda=(agenda or "").strip(), region=region, region_path=region.path,
                starts_at=starts_at.astimezone(dt.UTC), ends_at=ends_at.astimezone(dt.UTC),
                stream_key=secrets.token_urlsafe(18), status="scheduled", created_by=user.username,
                ffmpeg_restarts=0, replay_ready=False)
    session.add(m)
    session.flush()
    signals.meeting_state_changed.send(m.id, region_code=region.code, state="scheduled")
    audit.record("meeting.schedule", "meeting", m.id, region.code, actor=user.username, title=title,
                 starts_at=m.starts_at.isoformat(), ends_at=m.ends_at.isoformat())
    return m


def update(user, m: Meeting, title: str, agenda: str, starts_at, ends_at) -> Meeting:
    """Change a scheduled meeting's title, agenda and times."""
    if m.status != "scheduled":
        raise conflict("only a scheduled meeting can be changed")
    if not title or not title.strip() or len(title) > 128:
        raise bad_request("title is required (at most 128 characters)", field="title")
    if starts_at is None or ends_at is None or ends_at <= starts_at or ends_at - starts_at > MAX_DURATION:
        raise bad_request("ends_at must be after starts_at (at most 12 hours)", field="ends_at")
    m.title, m.agenda = title.strip(), (agenda or "").strip()
    m.starts_at, m.ends_at = starts_at.astimezone(dt.UTC), ends_at.astimezone(dt.UTC)
    session.flush()
    signals.meeting_state_changed.send(m.id, region_code=m.region.code, state="scheduled")
    audit.record("meeting.update", "meeting", m.id, m.region.code, actor=user.username, title=m.title)
    return m


def cancel(user, m: Meeting) -> Meeting:
    if m.status != "scheduled":
        raise conflict("only a scheduled meeting can be cancelled")
    m.status = "cancelled"
    session.flush()
    signals.meeting_state_changed.send(m.id, region_code=m.region.code, state="cancelled")
    audit.record("meeting.cancel", "meeting", m.id, m.region.code, actor=user.username)
    return m


def rotate_key(user, m: Meeting) -> Meeting:
    """A new stream key (the old one leaked, or OBS must be re-paired)."""
    if m.status == "live":
        raise conflict("the key of a live meeting cannot change")
    m.stream_key = secrets.token_urlsafe(18)
    session.flush()
    audit.record("meeting.rotate_key", "meeting", m.id, m.region.code, actor=user.username)
    return m


# Publishing (nginx-rtmp callbacks) ---------------------------------------------------------

def admit_publish(key: str, client_id: str, now: dt.datetime | None = None) -> Meeting:
    """on_publish: admit the encoder when ``key`` is a meeting's and now is inside its window
    and nobody else publishes it; the meeting goes live. 403 otherwise."""
    now = now or utcnow()
    m = queries.meeting_by_key(key or "") if key else None
    if m is None:
        raise forbidden("unknown stream key")
    start, end = queries.window(m)
    if m.status == "cancelled":
        raise forbidden("the meeting was cancelled")
    if not (start <= now <= end):
        raise forbidden("outside the meeting's window (30 minutes before the start until 2 hours after the end)")
    if m.status == "live" and m.publisher_id and m.publisher_id != str(client_id):
        raise ApiError(403, "already_publishing", "someone is already publishing this meeting")
    # An encoder that lost its uplink comes back with the same key: the meeting resumes (the
    # recording continues after a discontinuity). Staff close a meeting for good with finish().
    resumed = m.status == "ended"
    m.status, m.publisher_id, m.ended_at = "live", str(client_id), None
    m.live_at = m.live_at or now
    session.flush()
    signals.meeting_state_changed.send(m.id, region_code=m.region.code, state="live", notice=notice_payload(m))
    audit.record("meeting.live", "meeting", m.id, m.region.code, actor="rtmp", client_id=str(client_id),
                 resumed=resumed)
    # The boxes of the region hear it after commit, from a job: the nginx callback never waits on
    # the broker, and a broker that is down costs the notice, not the meeting.
    outbox.mqtt(protocol.region_notice_topic(m.region.code), notice_payload(m), qos=1)
    return m


def publish_done(key: str, client_id: str | None) -> Meeting | None:
    """on_publish_done: the admitted encoder stopped; the meeting ends (its recording is closed
    by the HLS job). A refused publisher's done is ignored."""
    m = queries.meeting_by_key(key or "") if key else None
    if m is None or m.status != "live":
        return None
    if client_id is not None and m.publisher_id and str(client_id) != m.publisher_id:
        return None
    return end(m, "publish_done")


def end(m: Meeting, reason: str) -> Meeting:
    """The meeting leaves the live state (encoder stopped, or ffmpeg lost for good)."""
    if m.status != "live":
        return m
    m.status, m.ended_at, m.publisher_id = "ended", utcnow(), None
    for motion in m.motions:
        if motion.status == "open":
            motion.status, motion.closed_at = "closed", utcnow()
    session.flush()
    signals.meeting_state_changed.send(m.id, region_code=m.region.code, state="ended")
    audit.record("meeting.ended", "meeting", m.id, m.region.code, actor="rtmp", reason=reason)
    return m


def finish(user, m: Meeting) -> Meeting:
    """Staff close the meeting for good: it ends (if live) and its stream key is replaced, so an
    encoder still pushing, or reconnecting, is refused from now on."""
    scope.require(user, m.region, "会议")
    if m.status not in ("live", "ended"):
        raise conflict("only a live or ended meeting can be finished")
    if m.status == "live":
        end(m, "finished")
    m.stream_key = secrets.token_urlsafe(18)
    session.flush()
    audit.record("meeting.finish", "meeting", m.id, m.region.code, actor=user.username)
    return m


def set_stream_facts(meeting_id: int, **facts) -> None:
    """The HLS job notes its ffmpeg pid, mode, restarts and the replay (the job commits at once)."""
    m = session.get(Meeting, meeting_id)
    if m is None:
        return
    for k, v in facts.items():
        setattr(m, k, v)
    session.flush()


# Motions and votes -------------------------------------------------------------------------

def open_motion(user, m: Meeting, title: str) -> Motion:
    """Put a question to the vote; the boxes of the meeting's region show it over the video."""
    title = (title or "").strip()
    if not title:
        raise bad_request("title is required", field="title")
    if len(title) > 200:
        raise bad_request("title is too long (at most 200 characters)", field="title")
    scope.require(user, m.region, "会议")
    if m.status != "live":
        raise conflict("motions can only be opened while the meeting is live")
    if queries.open_motion(m) is not None:
        raise conflict("close the open motion first")
    motion = Motion(meeting=m, title=title, status="open", opened_at=utcnow())
    session.add(motion)
    session.flush()
    signals.meeting_state_changed.send(m.id, region_code=m.region.code, state="motion")
    audit.record("meeting.motion_open", "meeting", m.id, m.region.code, actor=user.username,
                 motion_id=motion.id, title=title)
    return motion


def close_motion(user, motion: Motion) -> Motion:
    m = motion.meeting
    scope.require(user, m.region, "会议")
    if motion.status != "open":
        raise conflict("the motion is already closed")
    motion.status, motion.closed_at = "closed", utcnow()
    session.flush()
    res = queries.results(motion)
    signals.meeting_state_changed.send(m.id, region_code=m.region.code, state="motion")
    audit.record("meeting.motion_close", "meeting", m.id, m.region.code, actor=user.username,
                 motion_id=motion.id, results=res)
    return motion


def cast_vote(terminal, motion_id: int, choice: str) -> Vote:
    """A household's vote from its box; changeable until the motion closes.
    403 for a box outside the meeting's region or without a household; 409 when closed."""
    if choice not in CHOICES:
        raise bad_request(f"choice must be one of {', '.join(CHOICES)}", field="choice")
    motion = session.get(Motion, motion_id)
    if motion is None:
        raise not_found(f"motion {motion_id}")
    m = motion.meeting
    if not queries.visible_to_box(m, terminal):
        raise forbidden("this box is not in the meeting's village")
    if terminal.household_id is None:
        raise forbidden("only household boxes vote")
    if motion.status != "open" or m.status != "live":
        raise conflict("the motion is closed")
    vote = session.scalar(select(Vote).where(Vote.motion_id == motion.id,
                                             Vote.household_id == terminal.household_id))
    if vote is None:
        vote = Vote(motion_id=motion.id, household_id=terminal.household_id, serial=terminal.serial,
                    choice=choice, at=utcnow())
        session.add(vote)
    else:
        vote.choice, vote.serial, vote.at = choice, terminal.serial, utcnow()
    session.flush()
    record_attendance(m, terminal.serial, terminal.household_id, "tv")
    return vote


def record_attendance(m: Meeting, serial: str, household_id: int | None, source: str) -> Attendance:
    """Note that ``serial`` watched ``m`` (idempotent; last_seen moves on)."""
    row = session.scalar(select(Attendance).where(Attendance.meeting_id == m.id, Attendance.serial == serial))
    if row is None:
        row = Attendance(meeting_id=m.id, serial=serial, household_id=household_id, source=source,
                         first_seen=utcnow(), last_seen=utcnow())
        session.add(row)
    else:
        row.last_seen = utcnow()
    session.flush()
    return row


def attend_from_tv(terminal, m: Meeting) -> Attendance:
    """The TV live page reports that this box is watching."""
    if not queries.visible_to_box(m, terminal):
        raise forbidden("this box is not in the meeting's village")
    if m.status != "live":
        raise conflict("the meeting is not live")
    return record_attendance(m, terminal.serial, terminal.household_id, "tv")


def attendance_from_heartbeats(m: Meeting, heartbeats: dict[str, dict], households: dict[str, int | None]) -> int:
    """Boxes whose latest heartbeat says they play this meeting's stream (``playing`` holds its
    HLS URL, its path or ``meeting:<id>``). Returns how many were noted."""
    # Signed URLs put the signature before the folder: /hls/s/<sig>/<exp>/meetings/<id>/index.m3u8
    # (the master playlist; live.m3u8 and low.m3u8 are its renditions).
    marks = (queries.hls_path(m.id, ""), f"meeting:{m.id}",
             *(f"/meetings/{m.id}/{name}" for name in ("index.m3u8", "live.m3u8", "low.m3u8")))
    n = 0
    for serial, hb in heartbeats.items():
        playing = (hb or {}).get("playing") or ""
        if isinstance(playing, str) and any(mark in playing for mark in marks):
            record_attendance(m, serial, households.get(serial), "heartbeat")
            n += 1
    return n


# Minutes -----------------------------------------------------------------------------------

def attach_minutes(user, m: Meeting, filename: str, data: bytes) -> Meeting:
    """会议纪要 after the meeting: a PDF, Word, text or image file (at most 20 MB)."""
    scope.require(user, m.region, "会议")
    if m.status != "ended":
        raise conflict("minutes are attached after the meeting has ended")
    ext = Path(filename or "").suffix.lower()
    if ext not in MINUTES_TYPES:
        raise bad_request("minutes must be one of " + ", ".join(MINUTES_TYPES), field="file")
    if not data:
        raise bad_request("the file is empty", field="file")
    if len(data) > 20 * 1024 * 1024:
        raise bad_request("the file is larger than 20 MB", field="file")
    folder = current_app.config["SETTINGS"].media_dir / "meetings"
    folder.mkdir(parents=True, exist_ok=True)
    stored = f"{m.id}-minutes-{uuid.uuid4().hex[:8]}{ext}"
    (folder / stored).write_bytes(data)
    safe_name = re.sub(r"[\\/\x00-\x1f]", "_", filename)[:255]
    m.minutes_file, m.minutes_name = stored, safe_name
    session.flush()
    audit.record("meeting.minutes", "meeting", m.id, m.region.code, actor=user.username, file=safe_name)
    return m


# Notices -----------------------------------------------------------------------------------

def notice_payload(m: Meeting) -> dict:
    return protocol.notice_payload("meeting_live", m.id, f"{m.region.name} {m.title}", f"/tv/meetings/{m.id}/live")


