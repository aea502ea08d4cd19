"""The HLS job of a live meeting and the reaper.

``start_live(meeting_id)`` is what on_publish calls: in production it queues ``run_live`` on the
``media`` queue, where the RQ worker holds ffmpeg for the whole meeting under a hard time limit
(the end of the admission window); with ``jobs_inline`` (tests, a machine without a worker) the
same supervisor runs in a daemon thread so the callback returns at once.

The supervisor restarts ffmpeg when it dies while the meeting is still live (the encoder still
publishes), ends the meeting when ffmpeg is lost for good, and closes the recording into a VOD
playlist with a thumbnail when the encoder stops.
"""
from __future__ import annotations

import datetime as dt
import logging
import os
import subprocess
import sys
import threading
import time

from flask import current_app
from sqlalchemy import select

from epg import operations as epg_ops
from epg import queries as epg_queries
from portal_server.core import clock, locks
from portal_server.core.db import session, utcnow
from portal_server.meetings import operations as meeting_ops
from portal_server.meetings import queries as meeting_queries
from portal_server.meetings.models import Meeting

from . import channels, hls, supervise

log = logging.getLogger(__name__)

MAX_RESTARTS = 5
#: Extra seconds the RQ job may run beyond the window (closing the recording).
JOB_MARGIN_S = 600
_threads: dict[int, threading.Thread] = {}


def start_live(meeting_id: int) -> None:
    """Start the HLS job of a meeting that just went live (never blocks the callback)."""
    settings = current_app.config["SETTINGS"]
    if settings.jobs_inline:
        app = current_app._get_current_object()
        t = threading.Thread(target=_thread_main, args=(app, meeting_id), name=f"hls-meeting-{meeting_id}",
                             daemon=True)
        _threads[meeting_id] = t
        t.start()
        return
    from portal_server.core import jobs
    jobs.enqueue("streaming.tasks:spawn_supervisor", meeting_id, queue_name="media",
                 job_id=f"hls-meeting-{meeting_id}-{int(time.time())}", timeout_s=60)


def spawn_supervisor(meeting_id: int) -> int:
    """RQ job (media queue): start the meeting's supervisor as its own process and return its pid.

    The supervisor holds ffmpeg for hours; inside the RQ worker it would block every other job
    (one worker runs one job at a time) and a second village's meeting would wait for the first.
    So the job only launches it, detached, under a hard limit (``timeout``: the end of the
    admission window plus a margin; the supervisor also stops ffmpeg at the window's end itself)."""
    m = meeting_queries.meeting_by_id(meeting_id)
    _start, end = meeting_queries.window(m)
    limit = max(60, int((end - utcnow()).total_seconds())) + JOB_MARGIN_S
    settings = current_app.config["SETTINGS"]
    log_path = settings.log_dir / f"supervisor-meeting-{meeting_id}.log"
    env = dict(os.environ, COMMUNITV_DATA_DIR=str(settings.data_dir), COMMUNITV_DATABASE_URL=settings.database_url,
               COMMUNITV_RTMP_URL=settings.rtmp_url, COMMUNITV_RTMP_PULL=settings.rtmp_pull,
               COMMUNITV_EDGE_HOSTS=settings.edge_hosts, COMMUNITV_PUBLIC_URL=settings.public_url,
               COMMUNITV_REDIS_URL=settings.redis_url, COMMUNITV_MQTT_URL=settings.mqtt_url)
    with open(log_path, "a") as logf:
        proc = subprocess.Popen(["timeout", "-k", "30", "-s", "INT", str(limit), sys.executable, "-m",
                                 "portal_server.cli", "meeting-supervisor", str(meeting_id)], stdin=subprocess.DEVNULL, stdout=logf,
                                stderr=logf, env=env, start_new_session=True)
    log.info("hls meeting %s: supervisor pid %s (hard limit %s s)", meeting_id, proc.pid, limit)
    return proc.pid


def _thread_main(app, meeting_id: int) -> None:
    with app.app_context():
        try:
            run_live(meeting_id)
        except Exception:
            log.exception("hls meeting %s: supervisor failed", meeting_id)
        finally:
            session.remove()


def _status(meeting_id: int) -> str | None:
    """The meeting's status, read without holding a transaction (SQLite write lock)."""
    try:
        return session.scalar(select(Meeting.status).where(Meeting.id == meeting_id))
    finally:
        session.rollback()


def run_live(meeting_id: int, poll_s: float = 0.25) -> dict:
    """Hold ffmpeg for the live meeting until the encoder stops or the window ends (hard limit);
    then close the recording. Returns facts for logs and tests."""
    settings = current_app.config["SETTINGS"]
    m = meeting_queries.meeting_by_id(meeting_id)
    if m is None:
        return {"error": "no such meeting"}
    key = m.stream_key
    _start, hard_end = meeting_queries.window(m)
    out_dir = meeting_queries.hls_dir(meeting_id)
    out_dir.mkdir(parents=True, exist_ok=True)
    settings.log_dir.mkdir(parents=True, exist_ok=True)
    session.rollback()
    # One supervisor per meeting, whichever app host's worker took the job (a PostgreSQL advisory
    # lock; an flock on one machine): a resumed meeting's new job waits while the previous one is
    # still closing the recording (or carries on itself, having seen the meeting live again).
    while True:
        lock = locks.try_acquire(f"hls-supervisor-{meeting_id}", settings.data_dir / "locks")
        if lock is not None:
            break
        if _status(meeting_id) != "live" or utcnow() >= hard_end:
            return {"skipped": "another supervisor holds the meeting"}
        time.sleep(2)
    try:
        return _supervise(meeting_id, key, hard_end, out_dir, settings, poll_s)
    finally:
        lock.release()


def write_live_playlists(out_dir, ended: bool = False, segment_s: int = hls.MEETING_SEGMENT_S) -> int:
    """The live playlists of a meeting from its recordings: ``live.m3u8`` (main rendition) and,
    when it is recorded, ``low.m3u8`` (480p). Returns the main recording's segment count."""
    n = hls.write_live_playlist(out_dir, ended=ended, segment_s=segment_s)
    if (out_dir / "low_record.m3u8").exists():
        hls.write_live_playlist(out_dir, ended=ended, record="low_record.m3u8", live="low.m3u8", segment_s=segment_s)
    return n


def main_size(info: hls.InputInfo | None, segment_s: int) -> tuple[int, int]:
    """Width and height of the main rendition (as copied, or as ``hls.encode_args`` scales it)."""
    if info is None or not info.height:
        return 1280, 720
    if info.fits_boxes(segment_s):
        return info.width, info.height
    h = min(hls.MAX_H, info.height)
    h -= h % 2
    return (info.width * h // info.height) // 2 * 2, h


class MeetingJob(supervise.Job):
    """The meeting's ffmpeg: pulls the admitted RTMP stream into the recording (and, with
    ``COMMUNITV_MEETING_LOW_RENDITION``, the 480p one beside it, both named by the master playlist
    ``index.m3u8``); restarted (a few times) while the encoder still publishes; stopped when it
    leaves or the window closes."""

    def __init__(self, meeting_id, url, info, hard_end, out_dir, settings, poll_s):
        self.meeting_id, self.url, self.info, self.hard_end, self.out_dir = meeting_id, url, info, hard_end, out_dir
        self.name = f"hls meeting {meeting_id}"
        self.log_path = settings.log_dir / f"ffmpeg-meeting-{meeting_id}.log"
        self.poll_s = poll_s
        self.low = bool(settings.meeting_low_rendition)
        self.segment_s = hls.meeting_segment_s(info)
        self.window_over = False
        self.seen_stat = None

    def command(self, restarts):
        if restarts and _status(self.meeting_id) != "live":
            return None
        if self.low:
            hls.write_master(self.out_dir, *main_size(self.info, self.segment_s))
        return hls.build_command(self.url, self.out_dir, self.info, append=(self.out_dir / "record.m3u8").exists(),
                                 low=self.low, segment_s=self.segment_s)

    def started(self, proc, mode, restarts):
        meeting_ops.set_stream_facts(self.meeting_id, ffmpeg_pid=proc.pid, hls_mode=mode, ffmpeg_restarts=restarts)
        session.commit()  # the job commits (operations only flush): the staff page and reaper read these
        self.last_check, self.stopping_since = 0.0, None

    def tick(self, proc):
        # Re-derive the live playlists only when a recording changed (a long meeting's recording
        # holds thousands of 1 s segments; it is read 4 times a second).
        stats = []
        for name in ("record.m3u8", "low_record.m3u8"):
            try:
                st = (self.out_dir / name).stat()
                stats.append((st.st_mtime_ns, st.st_size))
            except FileNotFoundError:
                stats.append(None)
        if stats != self.seen_stat:
            self.seen_stat = stats
            write_live_playlists(self.out_dir, segment_s=self.segment_s)
        now = time.monotonic()
        if utcnow() >= self.hard_end:
            log.warning("hls meeting %s: window over, stopping ffmpeg (hard limit)", self.meeting_id)
            self.window_over = True
            return supervise.STOP
        if now - self.last_check >= 1.0:
            self.last_check = now
            if _status(self.meeting_id) != "live":
                self.stopping_since = self.stopping_since or now
                # The encoder stopped: ffmpeg sees the end of the stream by itself; make sure.
                if now - self.stopping_since > 6:
                    return supervise.STOP
        return None

    def exited(self, rc):
        write_live_playlists(self.out_dir, segment_s=self.segment_s)
        self.seen_stat = None

    def restart_delay(self, restarts):
        if (not self.window_over and _status(self.meeting_id) == "live" and utcnow() < self.hard_end
                and restarts < MAX_RESTARTS):
            return min(2.0, 0.5 * (restarts + 1))
        return None


def _supervise(meeting_id, key, hard_end, out_dir, settings, poll_s) -> dict:
    url = settings.rtmp_pull_url.rstrip("/") + "/" + key
    info = None
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and _status(meeting_id) == "live":
        try:
            info = hls.probe(url)
            if info.video_codec:
                break
        except Exception as e:  # the publish is admitted only once on_publish has answered
            log.info("hls meeting %s: probe not ready (%s)", meeting_id, str(e)[:200])
        time.sleep(0.3)
    if _status(meeting_id) != "live":  # the encoder left while we were probing
        return {"mode": None, **finalize(meeting_id)}
    job = MeetingJob(meeting_id, url, info, hard_end, out_dir, settings, poll_s)
    facts = supervise.supervise(job)
    if job.window_over:
        facts["window_over"] = True
    if _status(meeting_id) == "live":
        m = meeting_queries.meeting_by_id(meeting_id)
        meeting_ops.end(m, "window_over" if job.window_over else "ffmpeg_lost")
        session.commit()
    facts.update(finalize(meeting_id))
    return facts


def finalize(meeting_id: int) -> dict:
    """Close the recording: live playlist ended, VOD replay playlist, thumbnail; replay_ready."""
    out_dir = meeting_queries.hls_dir(meeting_id)
    write_live_playlists(out_dir, ended=True)
    n = hls.write_replay(out_dir)
    thumb = hls.make_thumbnail(out_dir) if n else False
    meeting_ops.set_stream_facts(meeting_id, ffmpeg_pid=None, replay_ready=bool(n and thumb))
    session.commit()
    log.info("hls meeting %s: replay %s segments, thumbnail %s", meeting_id, n, thumb)
    return {"segments": n, "thumbnail": thumb}


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


#: The 480p rendition is for watching live (replays are the main rendition): its files go this long
#: after the meeting ended (disk, and nightly backups, which take the HLS folder).
LOW_KEPT_AFTER_END = dt.timedelta(minutes=10)


def drop_low_renditions(now: dt.datetime) -> int:
    """Remove the 480p rendition (and the master naming it) of meetings ended ``LOW_KEPT_AFTER_END``
    ago or deleted. Returns how many meetings lost theirs."""
    n = 0
    for rec in (current_app.config["SETTINGS"].hls_dir / "meetings").glob("*/low_record.m3u8"):
        if not rec.parent.name.isdigit():
            continue
        m = meeting_queries.meeting_by_id(int(rec.parent.name))
        if m is not None and (m.status != "ended" or m.ended_at is None
                              or clock.aware(m.ended_at) > now - LOW_KEPT_AFTER_END):
            continue
        for f in [*rec.parent.glob("low_*.ts"), rec.parent / "low.m3u8", rec.parent / "index.m3u8", rec]:
            f.unlink(missing_ok=True)
        n += 1
    return n


def reap() -> dict:
    """Periodic: a live meeting without a running ffmpeg past its window is ended; an ended one
    whose recording was never closed (the worker died) gets its replay; the 480p rendition of a
    meeting ended a while ago is removed."""
    now = utcnow()
    ended, closed = 0, 0
    for m in session.scalars(select(Meeting).where(Meeting.status.in_(("live", "ended")),
                                                  Meeting.replay_ready.is_(False))).all():
        if _alive(m.ffmpeg_pid):
            continue
        _s, end = meeting_queries.window(m)
        if m.status == "live" and now > end + dt.timedelta(minutes=5):
            meeting_ops.end(m, "window_over")
            session.commit()
            ended += 1
        if m.status == "ended" and (meeting_queries.hls_dir(m.id) / "record.m3u8").exists():
            finalize(m.id)
            closed += 1
    low = drop_low_renditions(now)
    session.rollback()
    return {"ended": ended, "closed": closed, "low_dropped": low}


# Relayed channels --------------------------------------------------------------------------------

def start_channel(channel_id: int) -> None:
    """Job (after a channel is created): with ``jobs_inline`` its relay starts in a thread here;
    otherwise the relays process (``communitv channel-relays``, a Procfile
    entry of ``make run``) picks the new channel up within ``channels.POLL_S``."""
    if current_app.config["SETTINGS"].jobs_inline:
        channels.start_thread(channel_id)


def remove_channel_files(xmltv_id: str) -> None:
    """Job (after a channel is deleted): its HLS and catch-up go (its supervisor also stops)."""
    channels.remove_files(xmltv_id)


def cleanup_channels() -> dict:
    """Periodic: catch-up older than each channel's ``catchup_hours`` is removed; disk use per
    channel is recorded for the NOC."""
    out = {}
    for ch in epg_queries.relayed_channels():
        kept = channels.cleanup_channel(ch)
        epg_ops.set_relay_facts(ch.id, disk_bytes=kept)
        out[ch.xmltv_id] = kept
    session.commit()
    return out
