"""COMMUNITV_LISTEN (INTERFACES §2): the public services listen where the boxes are, the internal
ones never leave loopback, a wrong address stops the start, and every URL follows the public URL."""
import os
import subprocess
import sys

from portal_server import stack
from portal_server.core.config import Settings


def _settings(tmp_path, **kw):
    return Settings(data_dir=tmp_path, secret_key="x" * 40, **kw)


def test_an_address_of_another_host_stops_the_start_naming_it(tmp_path):
    env = dict(os.environ, COMMUNITV_DATA_DIR=str(tmp_path / "var"), COMMUNITV_LISTEN="203.0.113.77")
    r = subprocess.run([sys.executable, "-m", "portal_server.stack", "run"], env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    assert "COMMUNITV_LISTEN=203.0.113.77" in r.stderr and "不是本机的地址" in r.stderr
    assert "is not an address of this host" in r.stderr
    assert not (tmp_path / "var" / "communitv.db").exists()      # refused before touching anything
    assert "not an IP address" in stack.check_listen("village-hall")


def test_lan_address_puts_http_mqtt_rtmp_there_and_keeps_the_rest_on_loopback(tmp_path):
    lan = (stack.host_addresses() or ["127.0.0.2"])[0]
    s = _settings(tmp_path, listen=lan)
    ports = {"http": 8000, "app": 8001, "mqtt": 1883, "redis": 6379, "rtmp": 1935}
    pf = stack.procfile(tmp_path / "run", s, ports).read_text()
    run = tmp_path / "run"
    nginx, rtmp = (run / "nginx.conf").read_text(), (run / "nginx-rtmp.conf").read_text()
    mosq, redis = (run / "mosquitto.conf").read_text(), (run / "redis.conf").read_text()
    assert f"listen {lan}:8000;" in nginx and "listen 127.0.0.1:8000;" in nginx
    assert f"listen {lan}:1935;" in rtmp and "listen 127.0.0.1:1935;" in rtmp
    assert "allow play 127.0.0.1;" in rtmp and "deny play all;" in rtmp
    assert f"listener 1883 {lan}" in mosq and "listener 1883 127.0.0.1" in mosq
    assert "bind 127.0.0.1\n" in redis and "upstream app {\n        server 127.0.0.1:8001 " in nginx
    assert "--bind 127.0.0.1:8001" in pf
    # Boxes, phones and encoders are told the LAN address when no public URL is given.
    assert s.public_url == f"http://{lan}:8000" and s.rtmp_url == f"rtmp://{lan}:1935/live"
    assert s.rtmp_pull_url == "rtmp://127.0.0.1:1935/live"       # our ffmpeg plays from loopback
    assert stack.public_url_warning(s) is None
    banner = stack.start_banner(s, ports)
    assert f"mqtt://{lan}:1883" in banner and f"http://{lan}:8000/m/" in banner
    assert f"rtmp://{lan}:1935/live/<stream key>" in banner


def test_all_addresses_with_a_loopback_public_url_is_warned_in_both_languages(tmp_path):
    s = _settings(tmp_path, listen="0.0.0.0")
    run = tmp_path / "run"
    stack.procfile(run, s, {"http": 8000, "app": 8001, "mqtt": 1883, "redis": 6379, "rtmp": 1935})
    assert "listen 0.0.0.0:8000;" in (run / "nginx.conf").read_text()
    assert "listener 1883 0.0.0.0" in (run / "mosquitto.conf").read_text()
    w = stack.public_url_warning(s)
    assert "COMMUNITV_PUBLIC_URL" in w and "机顶盒" in w and "WARNING" in w
    ok = _settings(tmp_path, listen="0.0.0.0", public_url="http://tv.qingshan.example:8000")
    assert stack.public_url_warning(ok) is None
    assert ok.rtmp_url == "rtmp://tv.qingshan.example:1935/live"
    assert stack.public_url_warning(_settings(tmp_path)) is None   # loopback for development: quiet


def test_box_phone_and_encoder_urls_follow_the_public_url(app, client, auth):
    """A box's portal URL, a phone QR link, the meeting's RTMP URL and the M3U's HLS URLs are all
    built from COMMUNITV_PUBLIC_URL (RTMP: its host on :1935 unless COMMUNITV_RTMP_URL says otherwise)."""
    import datetime as dt

    from portal_server.core.terminals import portal_url, terminal_by_serial
    from portal_server.feedback.phone import poster_link

    lan = Settings.from_env(public_url="http://10.213.0.1:8000", data_dir=app.config["SETTINGS"].data_dir,
                            secret_key="x" * 40)
    settings = app.config["SETTINGS"]
    settings.public_url, settings.rtmp_url = lan.public_url, lan.rtmp_url
    assert portal_url(terminal_by_serial("CTV-HH-000001")).startswith("http://10.213.0.1:8000/tv/?token=")
    assert poster_link("990101001001").startswith("http://10.213.0.1:8000/m/feedback?t=")
    now = dt.datetime.now(dt.UTC)
    m = client.post("/api/v1/meetings", headers=auth.headers("v001-editor"),
                    json={"title": "村民大会", "region_code": "990101001001", "starts_at": now.isoformat(),
                          "ends_at": (now + dt.timedelta(hours=1)).isoformat()}).get_json()
    assert m["publish_url"] == "rtmp://10.213.0.1:1935/live/" + m["stream_key"]
    m3u = client.get("/epg/channels.m3u").get_data(as_text=True)
    assert "127.0.0.1" not in m3u
