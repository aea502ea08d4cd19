"""The writer of the production layout (portal_server.deploy): systemd units that systemd accepts,
the Dockerfile and compose file as the writer makes them and valid against the Compose
specification, a missing or unreachable peer named with backoff, the RTMP callbacks' trust, and
scheduled jobs that run once across app hosts."""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from portal_server import deploy, stack

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
APP_HOSTS = "10.215.0.3:8001,10.215.0.4:8001"


def layout_env(data: Path, **kw) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMMUNITV_")}
    env.update(COMMUNITV_DATA_DIR=str(data), COMMUNITV_SECRET_KEY="k" * 40,
               COMMUNITV_DATABASE_URL="postgresql+psycopg://communitv:pw@10.215.0.1:5432/communitv",
               COMMUNITV_REDIS_URL="redis://10.215.0.1:6379/0", COMMUNITV_MQTT_URL="mqtt://10.215.0.2:1883",
               COMMUNITV_PUBLIC_URL="http://10.216.0.5:8000", COMMUNITV_RTMP_URL="rtmp://10.216.0.5:1935/live",
               COMMUNITV_RTMP_PULL="rtmp://10.215.0.5:1935/live", COMMUNITV_APP_HOSTS=APP_HOSTS,
               COMMUNITV_EDGE_HOSTS="10.215.0.5", COMMUNITV_LISTEN="10.215.0.3")
    env.update(kw)
    return env


def test_every_role_writes_units_systemd_accepts_with_the_layout_s_addresses(tmp_path):
    env = layout_env(tmp_path / "data")
    roles = {r: deploy.write_role(r, tmp_path / r, env) for r in deploy.ROLES}
    units = sorted(str(f) for r in roles.values() for f in r.files if f.suffix == ".service")
    assert len(units) == 2 + 1 + 3 + 2                  # postgres+redis, mosquitto, web+worker+ingest, nginx+rtmp
    v = subprocess.run(["systemd-analyze", "verify", *units], capture_output=True, text=True, check=False,
                       timeout=120)
    assert v.returncode == 0, v.stderr
    assert not [ln for ln in v.stderr.splitlines() if "communitv-" in ln], v.stderr

    # What the units run is the running layout's: gunicorn on the host's address, peers from settings.
    web = (tmp_path / "app" / "systemd" / "communitv-app-web.service").read_text()
    assert "--bind 10.215.0.3:8001" in web and "deploy wait --role app" in web
    # … and as `make run` runs it: the access log through the redacting logger (no box token in a
    # production log), gunicorn's hooks, and the three processes' metrics summed in one local folder.
    assert "--logger-class portal_server.core.accesslog.RedactingLogger" in web
    assert "python:portal_server.system.gunicorn_conf" in web
    prom = f"PROMETHEUS_MULTIPROC_DIR={tmp_path / 'app' / 'prometheus'}"
    for proc in ("web", "worker", "ingest"):
        assert prom in (tmp_path / "app" / "systemd" / f"communitv-app-{proc}.service").read_text(), proc
    assert (tmp_path / "app" / "prometheus").is_dir() and str(tmp_path / "data") not in prom
    assert "COMMUNITV_DATABASE_URL=postgresql+psycopg://communitv:pw@10.215.0.1:5432/communitv" in \
        (tmp_path / "app" / "communitv.env").read_text()
    nginx = (tmp_path / "edge" / "nginx.conf").read_text()
    assert "server 10.215.0.3:8001" in nginx and "server 10.215.0.4:8001" in nginx
    assert "proxy_next_upstream error timeout" in nginx and "127.0.0.1:8001" not in nginx
    rtmp = (tmp_path / "edge" / "nginx-rtmp.conf").read_text()
    assert "allow play 10.215.0.3;" in rtmp and "allow play 10.215.0.4;" in rtmp
    assert "on_publish http://127.0.0.1:8002/" in rtmp               # the edge's callback server
    assert f"{tmp_path / 'data' / 'hls'}/" in nginx                     # files from the shared volume
    assert "listener 1883 10.215.0.3\n" in (tmp_path / "broker" / "mosquitto.conf").read_text()
    pg = (tmp_path / "db" / "systemd" / "communitv-db-postgres.service").read_text()
    assert "User=postgres" in pg and "listen_addresses=10.215.0.3" in pg
    assert "host all all 10.215.0.0/24 scram-sha-256" in (tmp_path / "db" / "pg_hba.conf").read_text()


def test_dockerfile_and_compose_are_the_writer_s_and_valid_compose():
    import jsonschema
    import yaml
    assert (ROOT / "Dockerfile").read_text() == deploy.dockerfile(), "run `communitv deploy docker`"
    text = (ROOT / "docker-compose.yml").read_text()
    assert text == deploy.compose_yaml(), "run `communitv deploy docker`"
    doc = yaml.safe_load(text)
    assert doc == deploy.compose_document()
    schema = json.loads((ROOT / "deploy" / "schema" / "compose-spec.json").read_text())
    jsonschema.Draft7Validator(schema).validate(doc)
    # The problems of the old file: nothing mounted from ./deploy/, no loopback, no read-only pid.
    assert "./deploy" not in text and "127.0.0.1" not in text and ":ro" not in text
    svc = doc["services"]
    assert svc["edge"]["ports"] == ["80:8000", "1935:1935"] and svc["broker"]["ports"] == ["1883:1883"]
    assert "nginx" in deploy.IMAGE_PACKAGES and "libnginx-mod-rtmp" in deploy.IMAGE_PACKAGES
    for role in ("broker", "app", "edge"):
        assert svc[role]["command"][:5] == ["communitv", "deploy", "run", "--role", role]
    # The compose settings are the ones the layout test runs with.
    assert set(layout_env(Path("/x"))) - set(os.environ) - {"COMMUNITV_SECRET_KEY", "COMMUNITV_DATA_DIR"} \
        <= set(deploy.COMPOSE_ENV) | {"COMMUNITV_DATA_DIR"}
    # A bad file is caught by the schema.
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft7Validator(schema).validate({**doc, "services": {"x": {"ports": "80"}}})


def test_a_missing_or_unreachable_peer_is_named_and_retried_with_backoff(tmp_path):
    closed = stack.free_port()
    env = layout_env(tmp_path, COMMUNITV_MQTT_URL=f"mqtt://127.0.0.1:{closed}")
    env.pop("COMMUNITV_DATABASE_URL")
    r = subprocess.run([str(BIN / "communitv"), "deploy", "wait", "--role", "app", "--max-wait", "2.5"],
                       env=env, capture_output=True, text=True, check=False, timeout=60)
    assert r.returncode == 1
    lines = r.stderr.splitlines()
    assert any("缺少对等节点 数据库 PostgreSQL" in ln and "COMMUNITV_DATABASE_URL" in ln for ln in lines), r.stderr
    assert any(f"peer broker at 127.0.0.1:{closed} unreachable" in ln for ln in lines), r.stderr
    assert "retrying in 1s" in r.stderr and "retrying in 2s" in r.stderr          # backing off

    # The edge needs one app host: a missing COMMUNITV_APP_HOSTS is named; one of two up is enough.
    out = io.StringIO()
    assert not deploy.wait_for_peers("edge", max_wait_s=0, out=out) or os.environ.get("COMMUNITV_APP_HOSTS")
    import socket
    with socket.socket() as up:
        up.bind(("127.0.0.1", 0))
        up.listen()
        hosts = f"127.0.0.1:{up.getsockname()[1]},127.0.0.1:{closed}"
        assert deploy.peer_problems("edge", {"COMMUNITV_APP_HOSTS": hosts}) == []
    assert "COMMUNITV_APP_HOSTS" in deploy.peer_problems("edge", {})[0]


def test_rtmp_callbacks_come_from_loopback_or_an_edge_host_only(app, client):
    settings = app.config["SETTINGS"]
    form = {"app": "live", "name": "no-such-key", "clientid": "1"}
    outsider = client.post("/api/v1/streams/on_publish", data=form, environ_base={"REMOTE_ADDR": "10.215.0.9"})
    assert outsider.status_code == 403 and "COMMUNITV_EDGE_HOSTS" in outsider.get_json()["error"]["message"]
    settings.edge_hosts = "10.215.0.0/24, localhost"
    edge = client.post("/api/v1/streams/on_publish", data=form, environ_base={"REMOTE_ADDR": "10.215.0.9"})
    assert edge.status_code == 403 and "COMMUNITV_EDGE_HOSTS" not in edge.get_json()["error"]["message"]
    proxied = client.post("/api/v1/streams/on_publish", data=form, headers={"X-Forwarded-For": "1.2.3.4"},
                          environ_base={"REMOTE_ADDR": "10.215.0.9"})
    assert "COMMUNITV_EDGE_HOSTS" in proxied.get_json()["error"]["message"]


HOLDER = """
import sys
from pathlib import Path
from portal_server.core import db, locks
db._engine = db.make_engine(sys.argv[1])
held = locks.try_acquire(sys.argv[2], Path(sys.argv[3]))
print("held" if held else "busy", flush=True)
sys.stdin.readline()
"""


def test_two_app_hosts_racing_on_a_scheduled_job_run_it_once(any_db_app):
    """Two workers on two hosts see the same tick: one enqueues it. And while one host runs a
    periodic job, the other host's run of it skips (a PostgreSQL advisory lock; an flock on SQLite)."""
    from redis import Redis

    from portal_server.core import jobs
    settings = any_db_app.config["SETTINGS"]
    hosts = [Redis.from_url(settings.redis_url) for _ in range(2)]
    for h in hosts:
        h.flushdb()
    now, barrier, started = 1_900_000_000.0, threading.Barrier(2), []

    def host(r):
        barrier.wait()
        started.extend(jobs.run_due_periodic(r, now=now))
    threads = [threading.Thread(target=host, args=(r,)) for r in hosts]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert sorted(started) == sorted(jobs.PERIODIC) and len(started) == len(set(started))
    assert sum(hosts[0].llen(f"rq:queue:{q}") for q in jobs.QUEUES) == len(jobs.PERIODIC)

    # Host B is running the content schedule (publish/expiry): host A's run of it skips.
    path = "portal_server.content.tasks:run_schedule"
    b = subprocess.Popen([sys.executable, "-c", HOLDER, settings.database_url, "periodic:" + path,
                          str(settings.data_dir / "locks")], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         text=True, cwd=ROOT)
    try:
        assert b.stdout.readline().strip() == "held"
        assert jobs.run_exclusive(path) == {"skipped": "running elsewhere"}
    finally:
        b.stdin.write("\n")
        b.stdin.flush()
        b.wait(20)
    assert jobs.run_exclusive(path) != {"skipped": "running elsewhere"}    # B done: A runs it


def test_the_layout_s_redis_requires_the_password_every_app_host_uses(tmp_path):
    """The db role's Redis has requirepass (0600 config, append-only file); the app hosts' settings
    carry the same password: derived from the shared key by default, or the URL's own."""
    import stat
    from urllib.parse import urlparse

    env = layout_env(tmp_path / "data")
    db = deploy.write_role("db", tmp_path / "db", env)
    conf = tmp_path / "db" / "redis.conf"
    assert conf in db.files and stat.S_IMODE(conf.stat().st_mode) == 0o600
    text = conf.read_text()
    assert "appendonly yes" in text
    deploy.write_role("app", tmp_path / "app", env)
    app_env = deploy.read_env_file(tmp_path / "app" / "communitv.env")
    assert app_env["COMMUNITV_REDIS_AUTH"] == "1"
    assert stat.S_IMODE((tmp_path / "app" / "communitv.env").stat().st_mode) == 0o600
    password = urlparse(deploy.settings_from(app_env).redis_url).password
    assert password and len(password) >= 32 and f"requirepass {password}\n" in text
    # An explicit password in the URL wins on both sides.
    env2 = layout_env(tmp_path / "data", COMMUNITV_REDIS_URL="redis://:given-pw-0123456789@10.215.0.1:6379/0")
    deploy.write_role("db", tmp_path / "db2", env2)
    assert "requirepass given-pw-0123456789\n" in (tmp_path / "db2" / "redis.conf").read_text()

    # The real server: without the password nothing, with the app host's URL everything.
    import redis
    port = stack.free_port()
    live = tmp_path / "live.conf"
    live.write_text(text.replace("bind 10.215.0.3", "bind 127.0.0.1").replace("port 6379", f"port {port}")
                    .replace("protected-mode no", "protected-mode yes"))
    proc = subprocess.Popen(["redis-server", str(live)], stdout=subprocess.DEVNULL)
    try:
        from tests.conftest import wait_port
        wait_port(port, proc=proc)
        with pytest.raises(redis.AuthenticationError):
            redis.Redis(port=port).set("x", 1)
        assert redis.Redis(port=port, password=password).set("x", 1)
    finally:
        proc.terminate()
        proc.wait(10)
