"""Sessions and tokens: logout kills the cookie server-side, Secure cookies over https, staff
pages cannot be framed, password change, API token revocation, bad credentials → 401, and no
token in the access log."""
import os
import shlex
import subprocess
import time
import urllib.error
import urllib.request

from portal_server import stack
from portal_server.core import signing

from tests.conftest import TEST_SECRET, AuthActions, _stop, csrf_from, make_test_app, terminal_token, wait_port


def test_a_session_cookie_is_dead_after_logout(app, client, auth):
    auth.login("v001-editor")
    assert client.get("/admin/").status_code == 200
    stolen = client.get_cookie("ctv_session").value
    page = client.get("/admin/").get_data(as_text=True)
    assert client.post("/admin/logout", data={"csrf_token": csrf_from(page)}).status_code == 302
    other = app.test_client()
    other.set_cookie("ctv_session", stolen)
    r = other.get("/admin/")
    assert r.status_code == 302 and "/admin/login" in r.headers["Location"]


def test_staff_pages_cannot_be_framed(client, auth):
    for path in ("/admin/login", "/noc/", "/m/pair"):
        r = client.get(path)
        assert r.headers.get("X-Frame-Options") == "DENY", path
        assert "frame-ancestors 'none'" in r.headers.get("Content-Security-Policy", ""), path
    auth.login("admin")
    r = client.get("/admin/")
    assert r.status_code == 200 and r.headers["X-Frame-Options"] == "DENY"


def test_cookies_are_secure_when_the_public_url_is_https(tmp_path, redis_server, mosquitto_server, sqlite_template):
    from portal_server.core import db
    https_app = make_test_app(tmp_path, redis_server, mosquitto_server, sqlite_template,
                              public_url="https://tv.example.cn")
    with https_app.app_context():
        c = https_app.test_client()
        a = AuthActions(c, https_app.config["SETTINGS"].demo_password)
        r = a.login("v001-editor")
        assert r.status_code == 302
        cookie = [h for h in r.headers.getlist("Set-Cookie") if h.startswith("ctv_session=")][0]
        assert "Secure" in cookie and "HttpOnly" in cookie
        r = c.get("/tv/?token=" + terminal_token("CTV-HH-000001"))
        assert all("Secure" in h for h in r.headers.getlist("Set-Cookie"))
        db.session.remove()
    db.engine().dispose()


def test_password_change_page_revokes_old_tokens(app, client, auth):
    old_token = auth.headers("v001-editor")
    auth.login("v001-editor")
    page = client.get("/admin/password").get_data(as_text=True)
    assert "修改密码" in page
    r = client.post("/admin/password", data={"csrf_token": csrf_from(page), "current": "wrong",
                                             "new": "a-new-password-1", "confirm": "a-new-password-1"})
    assert r.status_code == 400 and "当前密码不正确" in r.get_data(as_text=True)
    r = client.post("/admin/password", data={"csrf_token": csrf_from(page), "current": auth.password,
                                             "new": "a-new-password-1", "confirm": "a-new-password-1"})
    assert r.status_code == 302
    assert client.get("/admin/").status_code == 200          # this session goes on
    assert client.get("/api/v1/contents", headers=old_token).status_code == 401
    fresh = app.test_client()
    assert fresh.post("/api/v1/auth/token", json={"username": "v001-editor",
                                                  "password": "a-new-password-1"}).status_code == 200


def test_api_token_revocation_and_bad_credentials_are_401_everywhere(client, auth):
    h = auth.headers("city-editor")
    assert client.get("/api/v1/contents", headers=h).status_code == 200
    assert client.delete("/api/v1/auth/token", headers=h).status_code == 204
    r = client.get("/api/v1/contents", headers=h)
    assert r.status_code == 401
    # A public endpoint does not ignore a revoked or forged credential either.
    assert client.get("/api/v1/regions/990100000000").status_code == 200
    assert client.get("/api/v1/regions/990100000000", headers=h).status_code == 401
    assert client.get("/api/v1/services", headers={"X-Terminal-Token": "forged"}).status_code == 401
    assert client.get("/healthz", headers={"Authorization": "Bearer nonsense"}).status_code == 401


def test_no_token_in_the_access_log(app, tmp_path):
    """The real gunicorn command of the Procfile, its access log read after box, Open311 and video requests."""
    settings = app.config["SETTINGS"]
    port = stack.free_port()
    pf = stack.procfile(tmp_path / "run", settings, {"mqtt": stack.free_port(), "redis": stack.free_port(),
                                                     "http": stack.free_port(), "app": port,
                                                     "rtmp": stack.free_port()})
    web = next(line for line in pf.read_text().splitlines() if line.startswith("web: "))[5:]
    argv = shlex.split(web)
    log = tmp_path / "access.log"
    argv[argv.index("--access-logfile") + 1] = str(log)
    argv[argv.index("--workers") + 1] = "1"
    env = dict(os.environ, COMMUNITV_DATA_DIR=str(settings.data_dir), COMMUNITV_DATABASE_URL=settings.database_url,
               COMMUNITV_REDIS_URL=settings.redis_url, COMMUNITV_MQTT_URL=settings.mqtt_url,
               COMMUNITV_SECRET_KEY=TEST_SECRET, COMMUNITV_PUBLIC_URL=f"http://127.0.0.1:{port}")
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    box = terminal_token("CTV-HH-000001")
    sig = signing.sign_hls_url("/hls/meetings/1/live.m3u8")
    try:
        wait_port(port, 30, proc=proc)
        base = f"http://127.0.0.1:{port}"
        for path, headers in ((f"/tv/?token={box}", {}),
                              ("/open311/v2/services.json?api_key=SECRET-API-KEY-123", {}),
                              (sig, {}),
                              ("/api/v1/services", {"X-Terminal-Token": box, "Referer": f"{base}/tv/?token={box}"})):
            req = urllib.request.Request(base + path, headers=headers)
            try:
                urllib.request.urlopen(req, timeout=10).read()
            except urllib.error.HTTPError:
                pass
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and log.read_text().count("\n") < 4:
            time.sleep(0.1)
    finally:
        _stop(proc)
    text = log.read_text()
    assert text.count("\n") >= 4, text
    assert box not in text and "SECRET-API-KEY-123" not in text and sig.split("/")[3] not in text
    assert "token=[redacted]" in text and "api_key=[redacted]" in text
