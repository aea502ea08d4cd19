"""The whole stack as `make run` starts it (honcho: redis, mosquitto, nginx-rtmp, gunicorn,
worker, ingest), on free ports: healthy, seeded, and honest when Redis dies."""
import os
import signal
import subprocess
import sys
import time

import pytest
import requests

from portal_server import stack


@pytest.fixture
def running_stack(tmp_path):
    ports = {k: stack.free_port() for k in ("http", "app", "mqtt", "redis", "rtmp")}
    env = dict(os.environ,
               COMMUNITV_DATA_DIR=str(tmp_path / "var"),
               COMMUNITV_PUBLIC_URL=f"http://127.0.0.1:{ports['http']}",
               COMMUNITV_MQTT_URL=f"mqtt://127.0.0.1:{ports['mqtt']}",
               COMMUNITV_REDIS_URL=f"redis://127.0.0.1:{ports['redis']}/0",
               COMMUNITV_RTMP_URL=f"rtmp://127.0.0.1:{ports['rtmp']}/live",
               COMMUNITV_APP_PORT=str(ports["app"]))
    log = open(tmp_path / "run.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "portal_server.stack", "run"], env=env,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{ports['http']}"
    yield base, ports, proc, tmp_path / "run.log"
    try:
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(30)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        os.killpg(proc.pid, signal.SIGKILL)


def _wait_healthy(base, proc, logfile, timeout=180):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        assert proc.poll() is None, "stack exited:\n" + logfile.read_text()[-3000:]
        try:
            last = requests.get(base + "/healthz", timeout=3)
            if last.status_code == 200:
                return last.json()
        except requests.RequestException as exc:  # nginx/gunicorn not listening yet
            last = exc
        time.sleep(1)
    raise AssertionError(f"not healthy in {timeout}s: {getattr(last, 'text', last)}\n" + logfile.read_text()[-3000:])


def test_make_run_brings_up_a_healthy_seeded_city(running_stack):
    base, ports, proc, logfile = running_stack
    health = _wait_healthy(base, proc, logfile)
    assert health["checks"] == {"db": "ok", "redis": "ok", "mqtt": "ok"}
    city = requests.get(base + "/api/v1/regions/990100000000", timeout=5).json()
    assert len(city["children"]) == 14
    tok = requests.post(base + "/api/v1/auth/token", json={"username": "admin", "password": "communitv-demo"},
                        timeout=10).json()["token"]
    inst = requests.get(base + "/api/v1/terminals?kind=department,town,village",
                        headers={"Authorization": f"Bearer {tok}"}, timeout=10).json()
    assert inst["total"] == 101
    login = requests.get(base + "/admin/login", timeout=5)
    assert login.status_code == 200 and "工作人员登录" in login.text
    _tv_portal_through_nginx(base, logfile.parent / "var")
    # Redis requires its password (derived from the secret key); without it nothing is answered.
    from portal_server.core.config import Settings
    pw = Settings(data_dir=logfile.parent / "var").redis_password
    anon = subprocess.run(["redis-cli", "-p", str(ports["redis"]), "get", "x"], capture_output=True, text=True, timeout=10)
    assert "NOAUTH" in anon.stdout + anon.stderr
    # Redis goes away: /healthz says so by name.
    subprocess.run(["redis-cli", "-p", str(ports["redis"]), "-a", pw, "--no-auth-warning", "shutdown", "nosave"],
                   timeout=10)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        r = requests.get(base + "/healthz", timeout=10)
        if r.status_code == 503:
            break
        time.sleep(0.5)
    assert r.status_code == 503 and "redis" in r.json()["failing"]


def test_a_taken_port_is_named(tmp_path):
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        env = dict(os.environ, COMMUNITV_DATA_DIR=str(tmp_path / "var"),
                   COMMUNITV_PUBLIC_URL=f"http://127.0.0.1:{port}")
        r = subprocess.run([sys.executable, "-m", "portal_server.stack", "run"], env=env,
                           capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    assert f"http port {port}" in r.stderr and "already in use" in r.stderr


def _tv_portal_through_nginx(base, data_dir):
    """A box's portal URL through the production path: the app checks the token once, then nginx
    serves the village's page file behind secure_link (no Python), and refuses other villages."""
    from itsdangerous import URLSafeSerializer

    secret = (data_dir / "secret_key").read_text().strip()
    token = URLSafeSerializer(secret, salt="ctv-terminal").dumps({"s": "CTV-HH-000001", "v": 1})
    box = requests.Session()
    r = box.get(base + "/tv/?token=" + token, allow_redirects=False, timeout=10)
    assert r.status_code == 302 and r.headers["Location"] == "/tv/v/990101001001/home.html"
    home = box.get(base + "/tv/v/990101001001/home.html", timeout=10)
    assert home.status_code == 200 and "东河村" in home.text and 'data-section="party"' in home.text
    page = data_dir / "tv" / "990101001001" / "home.html"
    assert page.exists()                       # rendered once by the app, kept as a file
    marked = page.with_name(".marked")
    marked.write_text(page.read_text().replace("东河村", "东河村（文件）"))
    os.replace(marked, page)                   # as the app replaces pages: atomically
    time.sleep(1.5)                            # nginx's open_file_cache revalidates every second
    assert "东河村（文件）" in box.get(base + "/tv/v/990101001001/home.html", timeout=10).text   # nginx served it
    other = box.get(base + "/tv/v/990101001002/home.html", allow_redirects=False, timeout=10)
    assert other.status_code == 302 and other.headers["Location"].endswith("/tv/")
    assert requests.get(base + "/tv/v/990101001001/home.html", allow_redirects=False, timeout=10).status_code == 302
    assert box.get(base + "/tv/static/tv.js", timeout=10).status_code == 200
