"""Live channels relayed from the head-end (INTERFACES §4.5): a test source sends MPEG-TS over UDP
on loopback; POST /api/v1/channels → live HLS that VLC plays; the M3U and XMLTV list it with
catch-up; a past window plays as VOD; the source killed → source_lost and a NOC alarm; back → live."""
from __future__ import annotations

import subprocess
import time

import pytest
from lxml import etree
from sqlalchemy import select

from device_fleet.models import Alarm
from epg import xmltv
from portal_server import stack
from portal_server.core.db import session
from streaming import channels
from tests.meetings.conftest import fresh, vlc_plays, wait_for

from .conftest import source

pytestmark = [pytest.mark.xdist_group("channels")]


def _post(client, auth, user="noc", **kw):
    data = {"name": "青山县测试频道", "number": 31, "source_url": "udp://127.0.0.1:5999", **kw}
    r = client.post("/api/v1/channels", headers=auth.headers(user), json=data)
    session.remove()
    return r


def test_bad_sources_numbers_and_roles_are_refused(client, auth, relays):
    for url in ("file:///etc/passwd", "udp://8.8.8.8:1234", "http://example.com/live.ts", "rtmp://127.0.0.1/live/x",
                "udp://127.0.0.1", "concat:udp://127.0.0.1:1234", "udp://[::ffff:8.8.8.8]:1234"):
        r = _post(client, auth, source_url=url)
        assert r.status_code == 400, (url, r.get_json())
        msg = r.get_json()["error"]["message"]
        assert any("\u4e00" <= ch <= "\u9fff" for ch in msg), msg  # said in Chinese
    assert _post(client, auth, number=1).status_code == 409  # the city channel's number
    assert _post(client, auth, user="city-editor").status_code == 403
    assert client.post("/api/v1/channels", json={}).status_code == 401
    # Multicast and private head-ends are fine.
    r = _post(client, auth, source_url="udp://@239.1.1.7:1234", number=41)
    assert r.status_code == 201, r.get_json()
    d = r.get_json()
    assert d["status"] in ("starting", "source_lost") and d["xmltv_id"] == "ch41.qingshan"
    assert d["hls_url"].endswith("/hls/channels/ch41.qingshan/live.m3u8")
    assert _post(client, auth, number=41).status_code == 409
    assert client.delete(f"/api/v1/channels/{d['id']}", headers=auth.headers("city-editor")).status_code == 403
    assert client.delete(f"/api/v1/channels/{d['id']}", headers=auth.headers("admin")).status_code == 204
    session.remove()
    assert client.get(f"/api/v1/channels/{d['id']}", headers=auth.headers("noc")).status_code == 404


def _status(cid):
    return fresh(lambda: __import__("epg.queries", fromlist=["x"]).channel_by_id(cid).status)


def _alarm(xid):
    return fresh(lambda: session.scalar(select(Alarm).where(Alarm.subject == xid, Alarm.cleared_at.is_(None))))


def test_relay_live_vlc_catchup_source_lost_and_back(app, client, auth, relays, live_server):
    port = stack.free_port()
    src = source(port)
    try:
        r = _post(client, auth, source_url=f"udp://127.0.0.1:{port}", name="青山县测试频道", number=31,
                  catchup_hours=2)
        assert r.status_code == 201, r.get_json()
        ch = r.get_json()
        cid, xid = ch["id"], ch["xmltv_id"]
        wait_for(lambda: _status(cid) == "live", 40, what="live")
        t0 = time.time()
        got = fresh(lambda: client.get(f"/api/v1/channels/{cid}", headers=auth.headers("noc")).get_json())
        assert got["status"] == "live" and got["relay_mode"] == "copy"
        assert got["hls_url"] == f"{live_server}/hls/channels/{xid}/live.m3u8"
        res = vlc_plays(got["hls_url"])
        assert res["ok"], res

        # The M3U and the XMLTV carry it, with Kodi IPTV Simple's catch-up attributes.
        m3u = {e["tvg-id"]: e for e in xmltv.decode_m3u(fresh(lambda: client.get("/epg/channels.m3u").get_data(as_text=True)))}
        e = m3u[xid]
        assert e["tvg-chno"] == "31" and e["catchup"] == "default" and e["catchup-days"] == "1"
        assert e["catchup-source"].endswith(f"/epg/catchup/{xid}.m3u8?start={{utc}}&end={{utcend}}")
        assert e["url"] == got["hls_url"]
        ids = {c.get("id") for c in etree.fromstring(fresh(lambda: client.get("/epg/xmltv.xml").data)).findall("channel")}
        assert xid in ids

        # Catch-up: a past window plays as VOD.
        wait_for(lambda: time.time() - t0 > 16, 30, what="some segments")
        start, end = int(t0) + 2, int(t0) + 12
        r = fresh(lambda: client.get(f"/epg/catchup/{xid}.m3u8?start={start}&end={end}"))
        assert r.status_code == 200, r.get_data(as_text=True)
        text = r.get_data(as_text=True)
        assert text.rstrip().endswith("#EXT-X-ENDLIST") and "#EXT-X-PLAYLIST-TYPE:VOD" in text
        assert f"{live_server}/hls/channels/{xid}/seg_" in text
        dur = float(subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0",
                                    f"{live_server}/epg/catchup/{xid}.m3u8?start={start}&end={end}"],
                                   capture_output=True, text=True, timeout=30, check=True).stdout.strip())
        assert 8 <= dur <= 16, dur
        # Outside the window: 404.
        for a, b in ((int(t0) - 3 * 3600, int(t0) - 3 * 3600 + 60), (int(time.time()) + 600, int(time.time()) + 700),
                     (end, start)):
            url = f"/epg/catchup/{xid}.m3u8?start={a}&end={b}"
            assert fresh(lambda u=url: client.get(u)).status_code == 404

        # The source dies: source_lost and a NOC alarm.
        src.kill()
        src.wait(5)
        wait_for(lambda: _status(cid) == "source_lost", 30, what="source_lost")
        alarm = _alarm(xid)
        assert alarm is not None and alarm.kind == "channel_source_lost" and "信号中断" in alarm.message
        # Back: live again by itself, the alarm cleared, the live playlist continues after a discontinuity.
        src = source(port)
        wait_for(lambda: _status(cid) == "live", 45, what="live again")
        assert _alarm(xid) is None
        out = app.config["SETTINGS"].hls_dir / "channels" / xid
        wait_for(lambda: "#EXT-X-DISCONTINUITY\n" in (out / "live.m3u8").read_text(), 15, what="a discontinuity")
    finally:
        src.kill()
        src.wait(5)


def test_cleanup_keeps_the_catchup_hours_and_the_noc_sees_disk_use(app, client, auth, relays):
    import os

    from streaming import tasks

    r = _post(client, auth, source_url="udp://127.0.0.1:5998", number=42, catchup_hours=1)
    assert r.status_code == 201
    xid = r.get_json()["xmltv_id"]
    out = app.config["SETTINGS"].hls_dir / "channels" / xid
    (out / "idx").mkdir(parents=True, exist_ok=True)
    now = time.time()
    old, new = out / "seg_1_000000.ts", out / "seg_2_000000.ts"
    old.write_bytes(b"\0" * 1000)
    new.write_bytes(b"\0" * 3000)
    os.utime(old, (now - 2 * 3600, now - 2 * 3600))
    old_idx = out / "idx" / (time.strftime("%Y%m%d%H", time.gmtime(now - 3 * 3600)) + ".m3u8")
    new_idx = out / "idx" / (time.strftime("%Y%m%d%H", time.gmtime(now)) + ".m3u8")
    old_idx.write_text("x")
    new_idx.write_text("x")
    assert fresh(tasks.cleanup_channels)[xid] == 3000
    assert not old.exists() and new.exists() and not old_idx.exists() and new_idx.exists()
    from flask import g
    session.remove()
    g.pop("user", None)  # the API call's user, from the app context the test shares
    auth.login("noc")
    html = client.get("/noc/channels/").get_data(as_text=True)
    assert f'data-xmltv-id="{xid}"' in html and "2.9 KB" in html and "1 小时" in html
    assert "直播频道" in html
    session.remove()


def test_the_noc_page_is_for_the_noc(client, auth):
    auth.login("city-editor")
    assert client.get("/noc/channels/").status_code == 403


def test_channel_status_and_its_alarm_on_both_databases(any_db_app):
    """The migrations (epg_channels relay columns, fleet_alarms.subject) and the status/alarm
    writes on SQLite and PostgreSQL; the fleet's presence alarms leave a channel's alarm alone."""
    from device_fleet import operations as fleet_ops
    from epg import operations as ops
    from portal_server.core.accounts import user_by_username

    try:
        with any_db_app.app_context():
            ch = ops.create_relay_channel(user_by_username("noc"), "测试频道", 77, "udp://239.0.0.9:1234", 24)
            session.commit()
            cid, xid = ch.id, ch.xmltv_id
            ops.set_channel_status(cid, "source_lost")
            session.commit()
            fleet_ops.evaluate_alarms()
            assert _alarm(xid) is not None
            ops.set_channel_status(cid, "live")
            session.commit()
            assert _alarm(xid) is None
            a = session.scalar(select(Alarm).where(Alarm.subject == xid))
            assert a.cleared_at is not None and a.region_code == "990100000000"
    finally:
        channels.stop_threads()


def test_a_lower_rendition_for_weak_lines_in_a_master_playlist(app, client, auth, relays, live_server):
    port = stack.free_port()
    src = source(port, size="1280x720")
    try:
        r = _post(client, auth, source_url=f"udp://127.0.0.1:{port}", number=32, low_rendition=True)
        assert r.status_code == 201, r.get_json()
        ch = r.get_json()
        assert ch["hls_url"].endswith(f"/hls/channels/{ch['xmltv_id']}/index.m3u8") and ch["low_rendition"]
        wait_for(lambda: _status(ch["id"]) == "live", 40, what="live")
        out = app.config["SETTINGS"].hls_dir / "channels" / ch["xmltv_id"]
        master = fresh(lambda: client.get(f"/hls/channels/{ch['xmltv_id']}/index.m3u8").get_data(as_text=True))
        assert "RESOLUTION=1280x720\nlive.m3u8" in master and "RESOLUTION=854x480\nlow/live.m3u8" in master
        wait_for(lambda: (out / "low" / "live.m3u8").exists() and ".ts" in (out / "low" / "live.m3u8").read_text(),
                 30, what="the 480p rendition")
        seg = sorted((out / "low").glob("seg_*.ts"))[0]
        probe = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "stream=height",
                                "-of", "csv=p=0", str(seg)], capture_output=True, text=True, timeout=30, check=True)
        assert probe.stdout.split()[0] == "480"
        # The M3U gives IPTV clients the master playlist.
        m3u = {e["tvg-id"]: e for e in xmltv.decode_m3u(fresh(lambda: client.get("/epg/channels.m3u").get_data(as_text=True)))}
        assert m3u[ch["xmltv_id"]]["url"] == ch["hls_url"]
    finally:
        src.kill()
        src.wait(5)


class _Hits:
    """A tiny HTTP server on ``host`` (a thread) that notes every request; ``answer(path)`` gives
    (status, headers, body)."""

    def __init__(self, host, answer, pace_s: float = 0.0):
        import http.server
        import threading
        self.paths = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                outer.paths.append(self.path)
                status, headers, body = answer(self.path)
                self.send_response(status)
                for k, v in {**headers, "Content-Length": str(len(body))}.items():
                    self.send_header(k, v)
                self.end_headers()
                step = max(1, len(body) // 40)
                for i in range(0, len(body), step):  # paced like a live stream when pace_s is given
                    self.wfile.write(body[i:i + step])
                    time.sleep(pace_s / 40)
            do_HEAD = do_GET

            def log_message(self, *a):
                pass

        self.server = http.server.ThreadingHTTPServer((host, 0), Handler)
        self.url = f"http://{host}:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def test_http_sources_never_follow_a_redirect_outside_the_allowed_networks(app, client, auth, relays, tmp_path):
    """Only 127.0.0.1 is an allowed source network here. A source on it that redirects to
    127.0.0.2 (outside) is accepted at creation (its host is fine) but the relay never reaches the
    target: ffprobe/ffmpeg do not follow redirects (max_redirects 0), the check before each start
    refuses the 3xx and HLS playlists naming outside URIs; the channel is source_lost. A plain
    HTTP TS source on the allowed host goes live."""
    app.config["SETTINGS"].channel_sources = "127.0.0.1/32"
    ts = tmp_path / "clip.ts"
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc=size=640x360:rate=25",
                    "-f", "lavfi", "-i", "sine=sample_rate=48000", "-t", "8", "-c:v", "libx264", "-preset", "ultrafast",
                    "-g", "50", "-pix_fmt", "yuv420p", "-c:a", "aac", "-f", "mpegts", str(ts)], check=True, timeout=60)
    clip = ts.read_bytes()
    outside = _Hits("127.0.0.2", lambda p: (200, {"Content-Type": "video/mp2t"}, clip))
    inside = _Hits("127.0.0.1", lambda p: (
        (302, {"Location": outside.url + "/live.ts"}, b"") if p.startswith("/redirect") else
        (200, {"Content-Type": "application/vnd.apple.mpegurl"},
         f"#EXTM3U\n#EXT-X-TARGETDURATION:8\n#EXTINF:8.0,\n{outside.url}/seg.ts\n".encode()) if p.endswith(".m3u8") else
        (200, {"Content-Type": "video/mp2t"}, clip)), pace_s=6.0)
    try:
        # ffprobe alone (the relay's probe) does not follow the redirect.
        with pytest.raises(subprocess.CalledProcessError):
            channels.probe(inside.url + "/redirect.ts", seconds=1)
        with pytest.raises(channels.SourceRefused):
            channels.check_http_source(inside.url + "/redirect.ts")
        with pytest.raises(channels.SourceRefused):
            channels.check_http_source(inside.url + "/outside.m3u8")
        assert outside.paths == []
        # Through the API and the relay: source_lost, the outside host never asked.
        r = _post(client, auth, source_url=inside.url + "/redirect.ts", number=33)
        assert r.status_code == 201, r.get_json()
        bad = r.get_json()
        wait_for(lambda: _status(bad["id"]) == "source_lost", 20, what="source_lost")
        # A plain HTTP source on the allowed host is relayed (no redirect option gets in the way).
        r = _post(client, auth, source_url=inside.url + "/plain.ts", number=34)
        assert r.status_code == 201, r.get_json()
        good = r.get_json()
        wait_for(lambda: _status(good["id"]) == "live", 30, what="the plain HTTP source live")
        assert _status(bad["id"]) == "source_lost"
        assert outside.paths == [], outside.paths
        assert any(p.startswith("/redirect") for p in inside.paths)
    finally:
        channels.stop_threads()
        inside.close()
        outside.close()
