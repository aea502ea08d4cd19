"""A real encoder push through a real nginx-rtmp: admission, live HLS with program date-times,
VLC playback, a second publisher refused, and the replay after the push stops."""
from __future__ import annotations

import datetime as dt
import time

import m3u8
import pytest
import requests

from .conftest import make_meeting, push, vlc_plays, wait_for

pytestmark = [pytest.mark.xdist_group("rtmp")]


def _api(client, auth, mid):
    from portal_server.core.db import session
    headers = auth.headers("v001-editor")
    session.remove()  # the test shares the app context with its requests: read fresh rows
    try:
        return client.get(f"/api/v1/meetings/{mid}", headers=headers).get_json()
    finally:
        session.remove()  # and never keep SQLite's write lock from the live server's callbacks


def _via_nginx(url: str, stack) -> str:
    return stack["http"] + "/hls/" + url.split("/hls/", 1)[1]


def _playlist(url):
    r = requests.get(url, timeout=5)
    return m3u8.loads(r.text) if r.status_code == 200 else None


def test_push_goes_live_plays_and_becomes_a_replay(app, client, auth, rtmp_stack, meeting):
    mid, key = meeting["id"], meeting["stream_key"]
    started = time.monotonic()
    enc = push(rtmp_stack["rtmp"], key, seconds=16)
    try:
        live = wait_for(lambda: _api(client, auth, mid)["hls_url"], 10, what="meeting live")
        master = _via_nginx(live, rtmp_stack)  # index.m3u8: this rendition and the 480p one
        url = master.rsplit("/", 1)[0] + "/live.m3u8"
        pl = wait_for(lambda: (lambda p: p if p and len(p.segments) >= 2 else None)(_playlist(url)), 15,
                      what="live playlist with two segments")
        assert time.monotonic() - started < 15, "the playlist took longer than 15 s to go live"
        assert not pl.is_endlist and pl.playlist_type != "vod"
        assert all(s.program_date_time is not None for s in pl.segments)
        assert all(0.5 <= s.duration <= 3.0 for s in pl.segments)
        first_seq, first_last = pl.media_sequence or 0, pl.segments[-1].uri
        # A second encoder on the live key is refused; the first goes on.
        second = push(rtmp_stack["rtmp"], key, seconds=3)
        assert second.wait(15) != 0
        assert _api(client, auth, mid)["status"] == "live"
        # VLC plays the live stream from the master playlist (media time advances).
        res = vlc_plays(master)
        assert "advanced_ms" in res, res
        pl2 = _playlist(url)
        assert pl2.segments[-1].uri != first_last and (pl2.media_sequence or 0) >= first_seq
        assert pl2.segments[-1].program_date_time > pl.segments[-1].program_date_time
        data = _api(client, auth, mid)
        assert data["status"] == "live" and data["replay_url"] is None
    finally:
        enc.wait(40)
    # The push stopped: the meeting ends and its recording becomes a VOD replay with a thumbnail.
    data = wait_for(lambda: (lambda d: d if d["replay_url"] else None)(_api(client, auth, mid)), 25,
                    what="replay ready")
    assert data["status"] == "ended" and data["hls_url"] is None
    replay = _playlist(_via_nginx(data["replay_url"], rtmp_stack))
    assert replay.is_endlist and replay.playlist_type == "vod"
    total = sum(s.duration for s in replay.segments)
    # The recording starts once the stream has been probed (~5 s: codecs and two keyframes).
    assert 8 <= total <= 17, total
    thumb = requests.get(_via_nginx(data["thumbnail_url"], rtmp_stack), timeout=5)
    assert thumb.status_code == 200 and thumb.content[:3] == b"\xff\xd8\xff"
    res = vlc_plays(_via_nginx(data["replay_url"], rtmp_stack), seconds=4)
    assert "advanced_ms" in res, res


def test_wrong_or_out_of_window_key_is_refused_and_nothing_recorded(app, client, auth, rtmp_stack):
    hls_root = app.config["SETTINGS"].hls_dir / "meetings"
    later = make_meeting(client, auth, start_in=dt.timedelta(hours=3))
    encoders = [push(rtmp_stack["rtmp"], key, seconds=3) for key in ("not-a-meeting-key", later["stream_key"])]
    for enc in encoders:  # an admitted 3 s push would exit 0
        assert enc.wait(20) != 0, "nginx admitted a stream it should refuse"
    assert _api(client, auth, later["id"])["status"] == "scheduled"
    assert not (hls_root / str(later["id"])).exists()
    assert not any(hls_root.glob("*/record.m3u8")) if hls_root.exists() else True
    # The callback itself: 403 for a bad key, form-encoded like nginx sends it.
    r = client.post("/api/v1/streams/on_publish", data={"app": "live", "name": "nope", "clientid": "7"})
    assert r.status_code == 403 and r.get_json()["error"]["code"] == "forbidden"


def _ffprobe_video(url: str) -> str:
    import subprocess
    out = subprocess.run(["ffprobe", "-v", "error", "-rw_timeout", "10000000", "-select_streams", "v:0",
                          "-show_entries", "stream=codec_name,width,height", "-of", "csv=p=0", url],
                         capture_output=True, text=True, timeout=40, check=False)
    return out.stdout.strip().splitlines()[0] if out.stdout.strip() else out.stderr[-300:]


def test_live_meeting_has_a_480p_rendition_in_a_signed_master_playlist(app, client, auth, rtmp_stack, meeting):
    """The box gets the master playlist: the pushed 720p (copied, 1 s segments) and a 480p
    rendition; one signature opens both playlists and their segments through nginx's
    secure_link, ffprobe opens each rendition, the bare path is 403, the replay stays 720p."""
    mid, key = meeting["id"], meeting["stream_key"]
    enc = push(rtmp_stack["rtmp"], key, seconds=16)
    try:
        live = wait_for(lambda: _api(client, auth, mid)["hls_url"], 10, what="meeting live")
        assert "/hls/s/" in live and live.endswith(f"/meetings/{mid}/index.m3u8")
        url = _via_nginx(live, rtmp_stack)
        master = wait_for(lambda: _playlist(url), 15, what="master playlist")
        assert master.is_variant and len(master.playlists) == 2
        res = sorted((p.stream_info.resolution, p.stream_info.bandwidth, p.uri) for p in master.playlists)
        assert res == [((854, 480), 1_000_000, "low.m3u8"), ((1280, 720), 3_000_000, "live.m3u8")], res
        base = url.rsplit("/", 1)[0]
        for (width, height), _bw, name in res:
            def two_segments(name=name):
                p = _playlist(f"{base}/{name}")
                return p if p and len(p.segments) >= 2 else None
            pl = wait_for(two_segments, 20, what=f"{name} with two segments")
            assert pl.target_duration == 1 and all(0.5 <= s.duration <= 1.6 for s in pl.segments), name
            assert all(s.program_date_time is not None for s in pl.segments)
            seg = requests.get(f"{base}/{pl.segments[-1].uri}", timeout=5)
            assert seg.status_code == 200 and seg.content[:1] == b"\x47", name
            assert _ffprobe_video(f"{base}/{name}") == f"h264,{width},{height}"  # as the master says
        bare = rtmp_stack["http"] + f"/hls/meetings/{mid}/"
        assert all(requests.get(bare + name, timeout=5).status_code == 403 for name in ("index.m3u8", "low.m3u8"))
        assert fresh_mode(mid) == "copy"
    finally:
        enc.wait(40)
    data = wait_for(lambda: (lambda d: d if d["replay_url"] else None)(_api(client, auth, mid)), 25,
                    what="replay ready")
    replay = _playlist(_via_nginx(data["replay_url"], rtmp_stack))
    assert replay.is_endlist and len(replay.segments) >= 6
    assert _ffprobe_video(_via_nginx(data["replay_url"], rtmp_stack)) == "h264,1280,720"
    low = (app.config["SETTINGS"].hls_dir / "meetings" / str(mid) / "low.m3u8").read_text()
    assert low.rstrip().endswith("#EXT-X-ENDLIST")


def fresh_mode(mid):
    from portal_server.meetings import queries

    from .conftest import fresh
    return fresh(lambda: queries.meeting_by_id(mid).hls_mode)
