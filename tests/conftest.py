"""Fixtures in the style of flaskr/Indico (DESIGN §3.6), against real services.

Session-scoped (per xdist worker): a real redis-server, a real mosquitto with the dynamic
security plugin, and a demo city seeded once into a template database. Function-scoped: ``app``
gets its own copy of that database (a file copy for SQLite, ``CREATE DATABASE ... TEMPLATE`` for
PostgreSQL) and an empty Redis database, so tests never see each other's writes.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from portal_server import stack
from portal_server.core.config import Settings

TEST_SECRET = "test-secret-key-not-for-production-0123456789"
HOUSEHOLDS_PER_VILLAGE = 4


def wait_port(port: int, timeout: float = 15.0, proc=None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if stack.port_in_use(port):
            return
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before opening port {port}")
        time.sleep(0.05)
    raise RuntimeError(f"port {port} did not open within {timeout}s")


def _stop(proc) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="session")
def services_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("services")


@pytest.fixture(scope="session")
def redis_server(services_dir):
    """A real redis-server on a free port: yields its base URL (redis://127.0.0.1:PORT)."""
    port = stack.free_port()
    conf = stack.write_redis(services_dir / "redis", port)
    proc = subprocess.Popen(["redis-server", str(conf), "--save", ""], stdout=subprocess.DEVNULL)
    wait_port(port, proc=proc)
    yield {"url": f"redis://127.0.0.1:{port}", "port": port, "proc": proc, "conf": conf}
    _stop(proc)


@pytest.fixture(scope="session")
def test_settings_base() -> Settings:
    """Settings without a data dir: only used to derive the server's broker password."""
    return Settings(data_dir=Path("/tmp/ctv-unused"), secret_key=TEST_SECRET,
                    database_url="sqlite://")


@pytest.fixture(scope="session")
def mosquitto_server(services_dir, test_settings_base):
    """A real mosquitto with dynamic security: yields url, port and the server account URL."""
    port = stack.free_port()
    run_dir = services_dir / "mosquitto"
    conf = stack.write_mosquitto(run_dir, port, test_settings_base.mqtt_server_password,
                                 overwrite_dynsec=True)
    proc = subprocess.Popen(["mosquitto", "-c", str(conf)], stdout=subprocess.DEVNULL,
                            stderr=open(run_dir / "mosquitto.log", "w"))
    wait_port(port, proc=proc)
    yield {"url": f"mqtt://127.0.0.1:{port}", "port": port, "proc": proc, "conf": conf,
           "run_dir": run_dir}
    _stop(proc)


# PostgreSQL ----------------------------------------------------------------------------------

def _pg_bin(name: str) -> str:
    for cand in sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), reverse=True):
        return str(cand)
    found = shutil.which(name)
    if not found:
        raise RuntimeError(f"PostgreSQL's {name} is not installed (apt-get install postgresql)")
    return found


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory):
    """A throwaway PostgreSQL cluster on a free port (run as the postgres user when we are root)."""
    import tempfile
    # Not under pytest's 0700 tmp tree: the postgres user must be able to reach it.
    base = Path(tempfile.mkdtemp(prefix="ctv-pg-"))
    datadir, sockdir = base / "data", base / "sock"
    sockdir.mkdir()
    as_user: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(base, "postgres")
        shutil.chown(sockdir, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    subprocess.run(as_user + [_pg_bin("initdb"), "-D", str(datadir), "-U", "ctv", "--auth=trust",
                              "-E", "UTF8", "--locale=C"], check=True, stdout=subprocess.DEVNULL)
    port = stack.free_port()
    proc = subprocess.Popen(as_user + [_pg_bin("postgres"), "-D", str(datadir), "-p", str(port),
                                       "-k", str(sockdir), "-c", "listen_addresses=127.0.0.1",
                                       "-c", "fsync=off", "-c", "synchronous_commit=off",
                                       "-c", "full_page_writes=off", "-c", "max_connections=200"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(port, 30, proc=proc)
    yield {"port": port, "url": f"postgresql+psycopg://ctv@127.0.0.1:{port}/"}
    _stop(proc)
    shutil.rmtree(base, ignore_errors=True)


def _pg_admin(pg, sql: str) -> None:
    import psycopg
    with psycopg.connect(f"host=127.0.0.1 port={pg['port']} user=ctv dbname=postgres", autocommit=True) as c:
        c.execute(sql)


# The seeded demo city ------------------------------------------------------------------------

def _make_settings(data_dir: Path, database_url: str, redis_url: str, mqtt_url: str, **kw) -> Settings:
    return Settings(data_dir=data_dir, database_url=database_url, redis_url=redis_url,
                    mqtt_url=mqtt_url, secret_key=TEST_SECRET, testing=True, jobs_inline=True,
                    heartbeat_s=kw.pop("heartbeat_s", 2), extra={"WTF_CSRF_ENABLED": kw.pop("csrf", True)}, **kw)


def _seed(settings: Settings) -> None:
    from portal_server.app import create_app
    from portal_server.core import db
    from portal_server import demo

    db.upgrade(settings.database_url)
    app = create_app(settings)
    with app.app_context():
        demo.seed(households_per_village=HOUSEHOLDS_PER_VILLAGE, echo=lambda *a, **k: None)
    db.engine().dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory, redis_server, mosquitto_server) -> Path:
    """The demo city seeded once into a SQLite file (copied for every test)."""
    d = tmp_path_factory.mktemp("template")
    settings = _make_settings(d, f"sqlite:///{d / 'communitv.db'}", redis_server["url"] + "/15",
                              mosquitto_server["url"])
    _seed(settings)
    return d


@pytest.fixture(scope="session")
def postgres_template(postgres_server, tmp_path_factory, redis_server, mosquitto_server) -> str:
    _pg_admin(postgres_server, "CREATE DATABASE ctv_template")
    d = tmp_path_factory.mktemp("pgtemplate")
    settings = _make_settings(d, postgres_server["url"] + "ctv_template", redis_server["url"] + "/15",
                              mosquitto_server["url"])
    _seed(settings)
    return "ctv_template"




def _fresh_redis_url(redis_server) -> str:
    import redis
    url = redis_server["url"] + "/1"
    redis.Redis.from_url(url).flushdb()
    return url


def make_test_app(tmp_path, redis_server, mosquitto_server, sqlite_template, db_url: str | None = None, **kw):
    from portal_server.app import create_app

    data = tmp_path / "data"
    data.mkdir(exist_ok=True)
    if db_url is None:
        shutil.copy(sqlite_template / "communitv.db", data / "communitv.db")
        shutil.copy(sqlite_template / "demo-terminals.csv", data / "demo-terminals.csv")
        db_url = f"sqlite:///{data / 'communitv.db'}"
    if (sqlite_template / "media").exists():   # the demo's images and speech belong with its database
        shutil.copytree(sqlite_template / "media", data / "media", dirs_exist_ok=True)
    settings = _make_settings(data, db_url, _fresh_redis_url(redis_server), mosquitto_server["url"], **kw)
    return create_app(settings)


@pytest.fixture
def app(tmp_path, redis_server, mosquitto_server, sqlite_template):
    """A fresh app on its own copy of the seeded demo city (SQLite), CSRF on."""
    application = make_test_app(tmp_path, redis_server, mosquitto_server, sqlite_template)
    with application.app_context():
        yield application
    from portal_server.core import db
    db.session.remove()
    db.engine().dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def any_db_app(request, tmp_path, redis_server, mosquitto_server, sqlite_template):
    """The same as ``app`` on SQLite and on a real PostgreSQL (database tests use this)."""
    db_url = None
    if request.param == "postgres":
        pg = request.getfixturevalue("postgres_server")
        tmpl = request.getfixturevalue("postgres_template")
        name = "t_" + uuid.uuid4().hex[:12]
        _pg_admin(pg, f"CREATE DATABASE {name} TEMPLATE {tmpl}")
        db_url = pg["url"] + name
    application = make_test_app(tmp_path, redis_server, mosquitto_server, sqlite_template, db_url=db_url)
    with application.app_context():
        yield application
    from portal_server.core import db
    db.session.remove()
    db.engine().dispose()


@pytest.fixture
def client(app):
    return app.test_client()


def session_ending_client(app):
    """A test client that ends the test thread's transaction after every request (SQLite's BEGIN
    IMMEDIATE would otherwise block the ingest thread and subprocesses until the test ends)."""
    from flask.testing import FlaskClient

    from portal_server.core.db import session

    class Client(FlaskClient):
        def open(self, *a, **kw):
            try:
                return super().open(*a, **kw)
            finally:
                session.remove()

    app.test_client_class = Client
    return app.test_client()


class AuthActions:
    """Tokens and headers for the demo accounts (``auth.headers("v001-editor")``)."""

    def __init__(self, client, password: str):
        self.client, self.password, self._cache = client, password, {}

    def token(self, username: str) -> str:
        if username not in self._cache:
            r = self.client.post("/api/v1/auth/token", json={"username": username, "password": self.password})
            assert r.status_code == 200, r.get_data(as_text=True)
            self._cache[username] = r.get_json()["token"]
        return self._cache[username]

    def headers(self, username: str) -> dict:
        return {"Authorization": f"Bearer {self.token(username)}"}

    def login(self, username: str):
        """Log in through the staff login form (CSRF token taken from the form)."""
        import re
        page = self.client.get("/admin/login").get_data(as_text=True)
        token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
        r = self.client.post("/admin/login", data={"username": username, "password": self.password,
                                                   "csrf_token": token})
        # Tests share one app context across requests, so Flask-WTF's per-context token cache in
        # ``g`` would outlive the session that login() just renewed. Real requests never share g.
        from flask import g
        g.pop("csrf_token", None)
        return r


@pytest.fixture
def auth(client, app):
    return AuthActions(client, app.config["SETTINGS"].demo_password)


def terminal_token(serial: str) -> str:
    from portal_server.core.db import session
    from portal_server.core.terminals import portal_token, terminal_by_serial
    token = portal_token(terminal_by_serial(serial))
    # SQLite transactions start with BEGIN IMMEDIATE: do not hold the write lock while a
    # live_server thread of the same test wants to write.
    session.remove()
    return token


def boxes_heard_from(region: str) -> tuple[int, int]:
    """Mark most of the region's boxes as just heard from, as the ingest does on their heartbeats
    (a few villages with one or two silent boxes), so the figures, ranking and map have an online
    rate to show. Returns (online, total)."""
    from sqlalchemy import select

    from device_fleet import presence
    from portal_server.core import redis as core_redis
    from portal_server.core.db import session
    from portal_server.core.terminals import Terminal

    rows = session.execute(select(Terminal.serial, Terminal.region_path)
                           .where(Terminal.region_path.contains(region)).order_by(Terminal.serial)).all()
    session.remove()
    by_village: dict[str, list[str]] = {}
    for serial, path in rows:
        by_village.setdefault(path, []).append(serial)
    now, seen = time.time(), {}
    for i, (_path, serials) in enumerate(sorted(by_village.items())):
        for serial in serials[:len(serials) - i % 3]:
            seen[serial] = now
    core_redis.client().zadd(presence.LASTSEEN, seen)
    return len(seen), len(rows)


@pytest.fixture
def box(app):
    """Headers of a demo box: ``box("CTV-HH-000001")`` → {"X-Terminal-Token": ...}."""
    return lambda serial: {"X-Terminal-Token": terminal_token(serial)}


def csrf_from(html: str) -> str:
    import re
    m = re.search(r'name="csrf_token" value="([^"]+)"', html) or re.search(r'name="csrf-token" content="([^"]+)"', html)
    assert m, "page has no CSRF token"
    return m.group(1)


# A live server and the browser ---------------------------------------------------------------

@pytest.fixture
def live_server(app):
    """The app served over real HTTP on a free port (threaded werkzeug); yields its base URL."""
    import threading
    from werkzeug.serving import make_server

    port = stack.free_port()
    app.config["SETTINGS"].public_url = f"http://127.0.0.1:{port}"
    server = make_server("127.0.0.1", port, app, threaded=True)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{port}"
    server.shutdown()


@pytest.fixture(scope="session")
def browser():
    """Debian's headless Chromium through Playwright (never a downloaded browser)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True,
                              args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
        yield b
        b.close()


@pytest.fixture
def tv_page(browser):
    """A 1280×720 page like a set-top box's canvas."""
    ctx = browser.new_context(viewport={"width": 1280, "height": 720}, locale="zh-CN",
                              timezone_id="Asia/Shanghai")
    page = ctx.new_page()
    yield page
    ctx.close()


# --- Frozen city time (DESIGN §1 "One rule for time") --------------------------------------------
# Tests marked ``@pytest.mark.city_time`` run once per city wall time below, with the clock frozen
# (ticking) on today's city date at that time: the hours around midnight and 08:00 are where a
# naive-UTC row compared with a +0800 bound goes wrong. ``--city-time=07:59`` (or a comma list)
# runs only those; ``--city-time=off`` runs them once at the real time.
CITY_TIMES = ("00:30", "07:59", "12:00", "23:50")


def pytest_addoption(parser):
    parser.addoption("--city-time", default="all",
                     help="city wall times (HH:MM, comma-separated) for tests marked city_time; 'all' or 'off'")


def pytest_generate_tests(metafunc):
    if metafunc.definition.get_closest_marker("city_time") is None:
        return
    opt = metafunc.config.getoption("city_time")
    times = CITY_TIMES if opt == "all" else (None,) if opt == "off" else tuple(opt.split(","))
    metafunc.parametrize("frozen_city_time", times, indirect=True, ids=[t or "now" for t in times])


@pytest.fixture(autouse=True)
def frozen_city_time(request):
    """The frozen city time of a ``city_time`` test (aware, Asia/Shanghai), else None.

    Autouse so that it starts before ``app`` and every request and job of the test sees it."""
    hhmm = getattr(request, "param", None)
    if hhmm is None:
        yield None
        return
    import datetime as dt
    from zoneinfo import ZoneInfo

    import time_machine

    tz = ZoneInfo("Asia/Shanghai")
    hour, minute = (int(x) for x in hhmm.split(":"))
    dest = dt.datetime.combine(dt.datetime.now(tz).date(), dt.time(hour, minute), tz)
    # A UTC destination: time-machine would otherwise also switch the process time zone.
    with time_machine.travel(dest.astimezone(dt.timezone.utc), tick=True):
        yield dest


def log_in_page(page, live_server: str, username: str, password: str):
    """``page`` logged in through the staff login form (any browser context: language, zone, size)."""
    page.goto(live_server + "/admin/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url(lambda u: "/admin/login" not in u)
    return page


@pytest.fixture
def staff_page(app, live_server, browser):
    """``staff_page("city-leader", 1440, 1000)`` → a Chromium page logged in through the staff login
    form at that viewport (city time zone); its context closes after the test."""
    contexts = []

    def _open(username: str, width: int = 1280, height: int = 900):
        ctx = browser.new_context(viewport={"width": width, "height": height}, locale="zh-CN",
                                  timezone_id="Asia/Shanghai")
        contexts.append(ctx)
        return log_in_page(ctx.new_page(), live_server, username, app.config["SETTINGS"].demo_password)
    yield _open
    for ctx in contexts:
        ctx.close()
