"""Reads of meetings, always scoped: staff by their Scope, boxes by their village."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

from flask import current_app
from sqlalchemy import func, literal, select

from portal_server.core import clock, signing
from portal_server.core.api import iso
from portal_server.core.db import session, utcnow
from portal_server.core.regions import Scope

from .models import CHOICES, STATUS_NAMES, Attendance, Meeting, Motion, Vote

#: Admission window: encoders may publish from 30 minutes before the start until 2 hours after the end.
EARLY = dt.timedelta(minutes=30)
LATE = dt.timedelta(hours=2)


def window(m: Meeting) -> tuple[dt.datetime, dt.datetime]:
    """When the meeting's stream key is admitted."""
    return clock.aware(m.starts_at) - EARLY, clock.aware(m.ends_at) + LATE


def hls_dir(meeting_id: int) -> Path:
    """Where ffmpeg writes the meeting's HLS (live playlist, recording, replay, thumbnail)."""
    return current_app.config["SETTINGS"].hls_dir / "meetings" / str(meeting_id)


def hls_path(meeting_id: int, name: str) -> str:
    """The URL path (served by nginx or the app under /hls/) of a file of the meeting's HLS."""
    return f"/hls/meetings/{meeting_id}/{name}"


def _public(path: str) -> str:
    return current_app.config["SETTINGS"].public_url.rstrip("/") + path


def meeting_by_id(meeting_id: int) -> Meeting | None:
    return session.get(Meeting, meeting_id)


def meeting_by_key(key: str) -> Meeting | None:
    return session.scalar(select(Meeting).where(Meeting.stream_key == key))


def in_scope(scope: Scope, status: str | None = None):
    """Staff listing: meetings of regions inside ``scope``, newest start first."""
    q = select(Meeting).where(scope.region_filter(Meeting.region_path))
    if status:
        q = q.where(Meeting.status == status)
    return q.order_by(Meeting.starts_at.desc(), Meeting.id.desc())


def for_box_path(region_path: str):
    """Meetings a box of the region at ``region_path`` may watch: its village's and its town's."""
    return select(Meeting).where(literal(region_path or "-").startswith(Meeting.region_path),
                                 Meeting.status != "cancelled")


def visible_to_box(m: Meeting, terminal) -> bool:
    return bool(terminal.region_path) and terminal.region_path.startswith(m.region_path)


def box_sections(region_path: str, now: dt.datetime | None = None) -> dict[str, list[Meeting]]:
    """The TV list: live now, upcoming (soonest first), past (newest first, at most 20)."""
    now = now or utcnow()
    rows = session.scalars(for_box_path(region_path).order_by(Meeting.starts_at)).all()
    live = [m for m in rows if m.status == "live"]
    upcoming = [m for m in rows if m.status == "scheduled" and clock.aware(m.ends_at) + LATE > now]
    past = [m for m in rows if m.status == "ended"][::-1][:20]
    return {"live": live, "upcoming": upcoming, "past": past}


def live_for_box(region_path: str) -> list[Meeting]:
    return list(session.scalars(for_box_path(region_path).where(Meeting.status == "live")))


def open_motion(m: Meeting) -> Motion | None:
    return session.scalar(select(Motion).where(Motion.meeting_id == m.id, Motion.status == "open")
                          .order_by(Motion.id.desc()))


def results(motion: Motion) -> dict:
    """{"yes","no","abstain","total"} for ``motion``."""
    counts = dict(session.execute(select(Vote.choice, func.count()).where(Vote.motion_id == motion.id)
                                  .group_by(Vote.choice)).all())
    out = {c: int(counts.get(c, 0)) for c in CHOICES}
    out["total"] = sum(out.values())
    return out


def household_vote(motion: Motion, household_id: int | None) -> str | None:
    if household_id is None:
        return None
    return session.scalar(select(Vote.choice).where(Vote.motion_id == motion.id,
                                                    Vote.household_id == household_id))


def attendance(m: Meeting) -> dict:
    """{"boxes": distinct boxes that watched, "households": distinct households}."""
    boxes = session.scalar(select(func.count()).select_from(Attendance).where(Attendance.meeting_id == m.id))
    hh = session.scalar(select(func.count(func.distinct(Attendance.household_id)))
                        .where(Attendance.meeting_id == m.id, Attendance.household_id.is_not(None)))
    return {"boxes": int(boxes or 0), "households": int(hh or 0)}


def motion_to_dict(motion: Motion, household_id: int | None = None) -> dict:
    d = {"id": motion.id, "title": motion.title, "status": motion.status,
         "opened_at": iso(motion.opened_at), "closed_at": iso(motion.closed_at), "results": results(motion)}
    if household_id is not None:
        d["my_vote"] = household_vote(motion, household_id)
    return d


def signed_path(meeting_id: int, name: str) -> str:
    """The signed, expiring path of a file of the meeting's HLS (the bare path is refused)."""
    return signing.sign_hls_url(hls_path(meeting_id, name))


def live_signed_path(meeting_id: int) -> str:
    """The signed path boxes play a live meeting from: the master playlist ``index.m3u8`` (the
    main rendition and the 480p one, same folder, one signature) unless
    ``COMMUNITV_MEETING_LOW_RENDITION`` is off (then the main rendition's ``live.m3u8``)."""
    low = current_app.config["SETTINGS"].meeting_low_rendition
    return signed_path(meeting_id, "index.m3u8" if low else "live.m3u8")


def urls(m: Meeting) -> dict:
    live = m.status == "live"
    return {"hls_url": _public(live_signed_path(m.id)) if live else None,
            "replay_url": _public(signed_path(m.id, "replay.m3u8")) if m.replay_ready else None,
            "thumbnail_url": _public(signed_path(m.id, "thumb.jpg")) if m.replay_ready else None}


def meeting_to_dict(m: Meeting, staff: bool = False, household_id: int | None = None) -> dict:
    """The API shape (INTERFACES §4); the stream key only for staff."""
    d = {"id": m.id, "title": m.title, "agenda": m.agenda, "region_code": m.region.code,
         "region_name": m.region.name, "starts_at": iso(m.starts_at), "ends_at": iso(m.ends_at),
         "status": m.status, "status_name": STATUS_NAMES.get(m.status, m.status),
         "live_at": iso(m.live_at), "ended_at": iso(m.ended_at), **urls(m),
         "attendance": attendance(m),
         "motions": [motion_to_dict(x, household_id) for x in m.motions],
         "minutes_url": _public(f"/media/meetings/{m.minutes_file}") if m.minutes_file else None,
         "minutes_name": m.minutes_name}
    d["vote_results"] = [{"motion_id": x["id"], "title": x["title"], **x["results"]} for x in d["motions"]]
    if staff:
        settings = current_app.config["SETTINGS"]
        start, end = window(m)
        d.update(stream_key=m.stream_key, rtmp_url=settings.rtmp_url.rstrip("/"),
                 publish_url=settings.rtmp_url.rstrip("/") + "/" + m.stream_key,
                 window={"from": iso(start), "until": iso(end)}, hls_mode=m.hls_mode,
                 ffmpeg_restarts=m.ffmpeg_restarts, created_by=m.created_by)
    return d


def guide_rows(start: dt.datetime, end: dt.datetime) -> list[tuple]:
    """For the programme guide: (id, title, agenda, starts_at, ends_at, status, replay_ready,
    region code, region level, region name) of meetings overlapping [start, end), not cancelled."""
    start, end = clock.utc(start), clock.utc(end)  # SQLite compares wall times: bounds in UTC
    from portal_server.core.regions import Region
    q = (select(Meeting.id, Meeting.title, Meeting.agenda, Meeting.starts_at, Meeting.ends_at, Meeting.status,
                Meeting.replay_ready, Region.code, Region.level, Region.name)
         .join(Region, Region.id == Meeting.region_id)
         .where(Meeting.status != "cancelled", Meeting.starts_at < end, Meeting.ends_at > start))
    return list(session.execute(q))


def live_in_region(region_code: str) -> Meeting | None:
    """The live meeting of exactly this region (a village hall's channel plays it)."""
    from portal_server.core.regions import Region
    return session.scalar(select(Meeting).join(Region, Region.id == Meeting.region_id)
                          .where(Region.code == region_code, Meeting.status == "live"))


def daily_figures(day, start, end) -> dict[str, dict[str, float]]:
    """Meetings that went live in [start, end) (UTC) by their region, and the boxes that attended."""
    out: dict[str, dict[str, float]] = {}
    for path, n in session.execute(select(Meeting.region_path, func.count())
                                   .where(Meeting.live_at >= start, Meeting.live_at < end)
                                   .group_by(Meeting.region_path)):
        out.setdefault(path, {})["meetings.held"] = n
    for path, n in session.execute(select(Meeting.region_path, func.count(Attendance.id))
                                   .join(Attendance, Attendance.meeting_id == Meeting.id)
                                   .where(Meeting.live_at >= start, Meeting.live_at < end)
                                   .group_by(Meeting.region_path)):
        out.setdefault(path, {})["meetings.attendance"] = n
    return out
