"""The production path of the HLS job: on_publish queues a job on the media queue, a real RQ worker
runs it, the job starts the supervisor as its own process; ffmpeg killed while the encoder still
publishes is restarted and the recording continues after a discontinuity."""
from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess

import pytest

from portal_server.meetings import queries

from .conftest import fresh, make_meeting, push, wait_for

pytestmark = [pytest.mark.xdist_group("rtmp")]


def test_supervisor_process_restarts_a_lost_ffmpeg(app, client, auth, rtmp_stack):
    from portal_server.core import jobs

    settings = app.config["SETTINGS"]
    settings.jobs_inline = False  # as in production: the job goes through Redis to a worker
    m = make_meeting(client, auth, start_in=dt.timedelta(minutes=-5))
    out = settings.hls_dir / "meetings" / str(m["id"])
    enc = push(rtmp_stack["rtmp"], m["stream_key"], seconds=22)
    try:
        wait_for(lambda: fresh(lambda: queries.meeting_by_id(m["id"]).status == "live"), 10, what="live")
        fresh(lambda: jobs.work(app, burst=True))  # runs the queued spawn job, then returns
        first = wait_for(lambda: fresh(lambda: queries.meeting_by_id(m["id"]).ffmpeg_pid), 15, what="ffmpeg pid")
        wait_for(lambda: (out / "live.m3u8").exists() and (out / "live.m3u8").read_text().count(".ts") >= 1, 15,
                 what="first segment")
        os.kill(first, signal.SIGKILL)
        second = wait_for(lambda: fresh(lambda: (lambda x: x.ffmpeg_pid if x.ffmpeg_pid not in (None, first) else None)(
            queries.meeting_by_id(m["id"]))), 10, what="a restarted ffmpeg")
        assert second != first
        before = (out / "record.m3u8").read_text().count(".ts")
        wait_for(lambda: (out / "record.m3u8").read_text().count(".ts") >= before + 2, 12, what="segments after restart")
        assert fresh(lambda: queries.meeting_by_id(m["id"]).ffmpeg_restarts) >= 1
        assert fresh(lambda: queries.meeting_by_id(m["id"]).status) == "live"
    finally:
        enc.wait(40)
    wait_for(lambda: fresh(lambda: queries.meeting_by_id(m["id"]).replay_ready), 30, what="replay")
    replay = (out / "replay.m3u8").read_text()
    assert "#EXT-X-DISCONTINUITY" in replay and replay.rstrip().endswith("#EXT-X-ENDLIST")


def test_ffmpeg_is_stopped_at_the_end_of_the_window(app, client, auth, rtmp_stack):
    """The hard limit: the encoder goes on publishing, but at the end of the admission window the
    supervisor stops ffmpeg, ends the meeting and closes the recording."""
    from portal_server.core.db import session, utcnow

    m = make_meeting(client, auth, start_in=dt.timedelta(minutes=-5))

    def shrink():  # the window (end + 2 h) closes 9 s from now
        row = queries.meeting_by_id(m["id"])
        row.ends_at = utcnow() - dt.timedelta(hours=2) + dt.timedelta(seconds=9)
        session.commit()
    fresh(shrink)
    # 50 fps does not fit the boxes (≤ 30 fps): this stream is transcoded.
    enc = push(rtmp_stack["rtmp"], m["stream_key"], seconds=20, size="640x360", rate=50)
    try:
        wait_for(lambda: fresh(lambda: queries.meeting_by_id(m["id"]).status == "live"), 8, what="live")
        row = wait_for(lambda: fresh(lambda: (lambda x: x if x.status == "ended" else None)(
            queries.meeting_by_id(m["id"]))), 16, what="ended at the window's end")
        assert enc.poll() is None  # the encoder was still publishing
        assert row.ended_at is not None
    finally:
        enc.kill()
        enc.wait(10)
    wait_for(lambda: fresh(lambda: queries.meeting_by_id(m["id"]).replay_ready), 20, what="replay")
    assert fresh(lambda: queries.meeting_by_id(m["id"]).hls_mode) == "transcode"
    seg = sorted((app.config["SETTINGS"].hls_dir / "meetings" / str(m["id"])).glob("seg_*.ts"))[0]
    probe = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
                            "stream=codec_name,profile,r_frame_rate,height", "-of", "csv=p=0", str(seg)],
                           capture_output=True, text=True).stdout.strip().splitlines()[0]
    assert probe == "h264,High,360,30/1", probe
    from portal_server.core.audit import events_for
    assert any(e.action == "meeting.ended" and "window_over" in e.detail for e in fresh(lambda: events_for("meeting", m["id"])))


def test_an_encoder_that_drops_and_comes_back_resumes_the_meeting(app, client, auth, rtmp_stack):
    m = make_meeting(client, auth, start_in=dt.timedelta(minutes=-5))
    out = app.config["SETTINGS"].hls_dir / "meetings" / str(m["id"])
    enc = push(rtmp_stack["rtmp"], m["stream_key"], seconds=10)
    assert enc.wait(40) == 0
    wait_for(lambda: fresh(lambda: queries.meeting_by_id(m["id"]).replay_ready), 20, what="first replay")
    first = (out / "replay.m3u8").read_text().count(".ts")
    assert fresh(lambda: queries.meeting_by_id(m["id"]).status) == "ended"
    enc = push(rtmp_stack["rtmp"], m["stream_key"], seconds=10)  # the uplink is back
    try:
        wait_for(lambda: fresh(lambda: queries.meeting_by_id(m["id"]).status == "live"), 8, what="live again")
    finally:
        assert enc.wait(40) == 0
    wait_for(lambda: fresh(lambda: (lambda x: x.status == "ended" and x.ffmpeg_pid is None)(queries.meeting_by_id(m["id"]))),
             25, what="ended again")
    replay = (out / "replay.m3u8").read_text()
    assert replay.count(".ts") > first and "#EXT-X-DISCONTINUITY" in replay and "#EXT-X-ENDLIST" in replay
