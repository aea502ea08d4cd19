"""Meeting video only through signed, expiring URLs: the API and the box players get them, the
bare path is 403 — in the app's /hls/ route and in nginx's secure_link, with one signature."""
import subprocess
import urllib.error
import urllib.request

import pytest

from portal_server import stack
from portal_server.core import signing
from portal_server.core.db import session
from portal_server.meetings.models import Meeting

from tests.conftest import _stop, terminal_token, wait_port

PLAYLIST = "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXTINF:2.0,\nseg-00001.ts\n#EXT-X-ENDLIST\n"


@pytest.fixture
def live_meeting(app, client, auth):
    import datetime as dt
    now = dt.datetime.now(dt.UTC)
    r = client.post("/api/v1/meetings", headers=auth.headers("v001-editor"),
                    json={"title": "签名测试会议", "region_code": "990101001001",
                          "starts_at": (now - dt.timedelta(minutes=5)).isoformat(),
                          "ends_at": (now + dt.timedelta(hours=1)).isoformat()})
    assert r.status_code == 201, r.get_data(as_text=True)
    mid = r.get_json()["id"]
    m = session.get(Meeting, mid)
    m.status, m.replay_ready = "live", True
    session.commit()
    folder = app.config["SETTINGS"].hls_dir / "meetings" / str(mid)
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("live.m3u8", "low.m3u8", "replay.m3u8"):
        (folder / name).write_text(PLAYLIST)
    (folder / "index.m3u8").write_text("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=3000000\nlive.m3u8\n"
                                       "#EXT-X-STREAM-INF:BANDWIDTH=1000000\nlow.m3u8\n")
    (folder / "seg-00001.ts").write_bytes(b"\x47" * 188)
    (folder / "thumb.jpg").write_bytes(b"\xff\xd8\xff")
    return mid


def _rel(url):
    return "/hls/" + url.split("/hls/", 1)[1]


def test_api_gives_signed_urls_and_the_bare_path_is_403(client, auth, live_meeting):
    mid = live_meeting
    d = client.get(f"/api/v1/meetings/{mid}", headers=auth.headers("v001-editor")).get_json()
    for key in ("hls_url", "replay_url", "thumbnail_url"):
        assert "/hls/s/" in d[key], d[key]
        assert client.get(_rel(d[key])).status_code == 200
    # The renditions and segments named relatively by the master playlist inherit the signature.
    assert _rel(d["hls_url"]).endswith(f"/meetings/{mid}/index.m3u8")
    for name in ("live.m3u8", "low.m3u8", "seg-00001.ts"):
        assert client.get(_rel(d["hls_url"]).rsplit("/", 1)[0] + "/" + name).status_code == 200
    for bare in (f"/hls/meetings/{mid}/index.m3u8", f"/hls/meetings/{mid}/live.m3u8", f"/hls/meetings/{mid}/low.m3u8",
                 f"/hls/meetings/{mid}/seg-00001.ts", f"/hls/meetings/{mid}/replay.m3u8"):
        assert client.get(bare).status_code == 403
    # Another meeting's folder with this signature, a forged one, an expired one: 403.
    other = _rel(d["hls_url"]).replace(f"/meetings/{mid}/", f"/meetings/{mid + 1}/")
    assert client.get(other).status_code == 403
    forged = "/hls/s/" + "A" * 22 + _rel(d["hls_url"])[len("/hls/s/") + 22:]
    assert client.get(forged).status_code == 403
    expired = signing.sign_hls_url(f"/hls/meetings/{mid}/live.m3u8", ttl=-10)
    assert client.get(expired).status_code == 403


def test_box_players_get_signed_urls(app, client, live_meeting):
    mid = live_meeting
    c = app.test_client()
    assert c.get("/tv/?token=" + terminal_token("CTV-HH-000001")).status_code == 302
    page = c.get(f"/tv/meetings/{mid}/live").get_data(as_text=True)
    assert '/hls/s/' in page and f"/hls/meetings/{mid}/live.m3u8" not in page
    index = c.get("/tv/meetings/").get_data(as_text=True)
    assert f"/hls/meetings/{mid}/thumb.jpg" not in index
    # The guide lists the meeting to everyone but plays it only with a signature.
    anon = app.test_client()
    assert anon.get("/epg/live/v990101001001.qingshan.m3u8").status_code == 401
    r = c.get("/epg/live/v990101001001.qingshan.m3u8")
    assert r.status_code == 302 and r.headers["Location"].startswith("/hls/s/")
    assert c.get(r.headers["Location"]).status_code == 200


def test_nginx_checks_the_same_signature(app, tmp_path, live_meeting):
    """The secure_link location of stack.write_nginx accepts exactly what sign_hls_url signs."""
    mid = live_meeting
    settings = app.config["SETTINGS"]
    port = stack.free_port()
    conf = stack.write_nginx(tmp_path / "nginx", settings, port, stack.free_port())
    proc = subprocess.Popen(["nginx", "-c", str(conf), "-p", str(tmp_path / "nginx")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port, proc=proc)
        base = f"http://127.0.0.1:{port}"

        def status(path):
            try:
                return urllib.request.urlopen(base + path, timeout=5).status
            except urllib.error.HTTPError as e:
                return e.code

        signed = signing.sign_hls_url(f"/hls/meetings/{mid}/live.m3u8")
        assert status(signed) == 200
        assert status(signed.rsplit("/", 1)[0] + "/seg-00001.ts") == 200
        assert status(f"/hls/meetings/{mid}/live.m3u8") == 403
        assert status(signing.sign_hls_url(f"/hls/meetings/{mid}/live.m3u8", ttl=-10)) == 403
        assert status(signed.replace(f"/meetings/{mid}/", f"/meetings/{mid + 1}/")) == 403
    finally:
        _stop(proc)
