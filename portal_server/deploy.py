"""The production layout: configuration for named host roles, from the same writers as `make run`.

Roles (any host may carry several; ``app`` may run on any number of hosts):

- ``db``     PostgreSQL and Redis (the state): user, password and database from COMMUNITV_DATABASE_URL,
             Redis's port from COMMUNITV_REDIS_URL; both listen on COMMUNITV_LISTEN.
- ``broker`` Mosquitto with dynamic security (stack.write_mosquitto) on COMMUNITV_LISTEN.
- ``app``    gunicorn (on COMMUNITV_LISTEN:8001), the RQ worker and the MQTT ingest; peers from
             COMMUNITV_DATABASE_URL, COMMUNITV_REDIS_URL and COMMUNITV_MQTT_URL.
- ``edge``   nginx HTTP (:8000; TV snapshots, /media/, /hls/ from COMMUNITV_DATA_DIR, the rest proxied
             to every host of COMMUNITV_APP_HOSTS with fail-over) and nginx-rtmp (:1935; callbacks through
             the same upstream, play-back allowed to the app hosts) (stack.write_nginx / write_nginx_rtmp).

Files (TV snapshots, media, HLS, recordings) live in COMMUNITV_DATA_DIR, one shared volume (NFS)
mounted at the same path on every app and edge host (README "Production layout").

``communitv deploy write --role R --out DIR`` writes a role's configs, Procfile, env file and
systemd units; ``deploy wait`` waits for a role's peers (naming the missing one, with backoff);
``deploy run`` waits, writes and runs the role in the foreground (containers, the layout test).
"""
from __future__ import annotations

import ipaddress
import json
import os
import shlex
import socket
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

from portal_server import stack
from portal_server.core import db as core_db
from portal_server.core.config import Settings, url_host
from portal_server.core.locks import lock_key

ROLES = ("db", "broker", "app", "edge")
#: The ports of the layout (the firewall opens these, and only these, between hosts).
PORTS = {"postgres": 5432, "redis": 6379, "mqtt": 1883, "app": 8001, "http": 8000, "rtmp": 1935}
#: The edge's loopback server for nginx-rtmp's callbacks (never reachable from outside).
CALLBACK_PORT = 8002
#: Settings of the layout besides the app's own (README "Production layout").
LAYOUT_SETTINGS = {
    "COMMUNITV_LISTEN": "this host's address: every service of its role binds there",
    "COMMUNITV_APP_HOSTS": "edge: host:port of every app host, comma-separated (the nginx upstream)",
    "COMMUNITV_EDGE_HOSTS": "app: the edge hosts (addresses, CIDRs or names) trusted for RTMP callbacks",
    "COMMUNITV_APP_NETWORK": "edge: CIDR of the app hosts when they are names (compose), for RTMP play-back",
    "COMMUNITV_DB_ALLOW": "db: CIDR allowed to connect to PostgreSQL (default: the /24 of COMMUNITV_LISTEN)",
    "COMMUNITV_RTMP_PULL": "app: the edge's RTMP on the server network (ffmpeg pulls meetings back)",
}
#: Settings every host of the layout gets unless its environment says otherwise: Redis requires a
#: password (requirepass on the db role; the app hosts' COMMUNITV_REDIS_URL carries it, derived from
#: the shared secret key unless the URL gives one).
LAYOUT_DEFAULTS = {"COMMUNITV_REDIS_AUTH": "1"}
PEER_NAMES = {"db": "数据库 PostgreSQL", "redis": "Redis", "broker": "MQTT服务器 Mosquitto",
              "app": "应用节点 app"}


@dataclass
class Process:
    """One long-running program of a role (a Procfile line, a systemd unit)."""

    name: str
    argv: list[str]
    user: str | None = None          #: systemd User= (None: the communitv user)
    keep: bool = False               #: restart it in place under honcho (infrastructure)


@dataclass
class Role:
    role: str
    out: Path
    files: list[Path] = field(default_factory=list)
    setup: list[Process] = field(default_factory=list)       #: once, before the processes
    processes: list[Process] = field(default_factory=list)


# Peers -------------------------------------------------------------------------------------

def _hostport(url: str, default: int) -> tuple[str, int] | None:
    u = urlparse(url)
    return (u.hostname, u.port or default) if u.hostname else None


def app_hosts(env=os.environ) -> list[str]:
    return [h.strip() for h in env.get("COMMUNITV_APP_HOSTS", "").split(",") if h.strip()]


def peers(role: str, env=os.environ) -> tuple[list[tuple[str, str, tuple | None]], bool]:
    """(peer, setting, (host, port) or None when missing) the role needs, and whether any one
    of them is enough (the edge needs one app host up, the app all of its peers)."""
    if role == "app":
        db = env.get("COMMUNITV_DATABASE_URL", "")
        return [("db", "COMMUNITV_DATABASE_URL",
                 _hostport(db, PORTS["postgres"]) if db.startswith("postgresql") else None),
                ("redis", "COMMUNITV_REDIS_URL", _hostport(env.get("COMMUNITV_REDIS_URL", ""), PORTS["redis"])),
                ("broker", "COMMUNITV_MQTT_URL", _hostport(env.get("COMMUNITV_MQTT_URL", ""), PORTS["mqtt"]))], False
    if role == "edge":
        hosts = app_hosts(env)
        if not hosts:
            return [("app", "COMMUNITV_APP_HOSTS", None)], True
        return [("app", "COMMUNITV_APP_HOSTS", _hostport("tcp://" + h, PORTS["app"])) for h in hosts], True
    return [], False


def reachable(host: str, port: int, timeout: float = 2.0) -> str | None:
    """None when a TCP connection opens; else why not."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return None
    except OSError as exc:
        return str(exc) or exc.__class__.__name__


def peer_problems(role: str, env=os.environ) -> list[str]:
    """What stops the role from starting, one line per peer (empty: go)."""
    wanted, any_one = peers(role, env)
    problems, ok = [], 0
    for peer, setting, hp in wanted:
        label = PEER_NAMES.get(peer, peer)
        if hp is None:
            problems.append(f"{role}: 缺少对等节点 {label} 的地址（请设置 {setting}）/ missing peer {peer}: "
                            f"set {setting}")
            continue
        why = reachable(*hp)
        if why:
            problems.append(f"{role}: 无法连接对等节点 {label} {url_host(hp[0])}:{hp[1]}（{setting}）/ peer "
                            f"{peer} at {url_host(hp[0])}:{hp[1]} unreachable: {why}")
        else:
            ok += 1
    if any_one and ok:
        return []
    return problems


def read_env_file(path: Path | None) -> dict:
    env = dict(os.environ)
    if path and path.exists():
        for line in path.read_text().splitlines():
            if "=" in line and not line.lstrip().startswith("#"):
                k, _, v = line.partition("=")
                env[k.strip()] = v.strip()
    return env


def wait_for_peers(role: str, env_file: Path | None = None, max_wait_s: float | None = None,
                   out=sys.stderr, first_delay: float = 1.0, max_delay: float = 30.0) -> bool:
    """Wait until the role's peers answer, saying which is missing or unreachable each time and
    backing off (1, 2, 4 … 30 s). The env file is read again every round (a fixed setting is
    picked up without a restart). False after ``max_wait_s``."""
    delay, start = first_delay, time.monotonic()
    while True:
        problems = peer_problems(role, read_env_file(env_file))
        if not problems:
            return True
        waited = time.monotonic() - start
        if max_wait_s is not None and waited >= max_wait_s:
            return False
        for p in problems:
            print(f"{p}; {delay:.0f} 秒后重试 / retrying in {delay:.0f}s", file=out, flush=True)
        time.sleep(delay)
        delay = min(max_delay, delay * 2)


# Writers per role ----------------------------------------------------------------------------

def _pg_bin(name: str) -> str:
    for cand in sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), reverse=True):
        return str(cand)
    return f"/usr/lib/postgresql/15/bin/{name}"


def _exe(name: str) -> str:
    """A program of our venv (gunicorn, communitv) or of the system."""
    own = Path(stack.venv_bin(name))
    if own.exists():
        return str(own)
    import shutil
    return shutil.which(name) or f"/usr/bin/{name}"


def _give(path: Path, user: str) -> None:
    """As root, hand ``path`` (and what is in it) to the service user when that user exists."""
    import pwd
    import shutil
    if os.geteuid() != 0:
        return
    try:
        pwd.getpwnam(user)
    except KeyError:
        return
    for p in [path, *(path.rglob("*") if path.is_dir() else [])]:
        shutil.chown(p, user)


def write_db(settings: Settings, out: Path, env=os.environ) -> Role:
    """PostgreSQL (a cluster in ``out/pgdata``; account and database of COMMUNITV_DATABASE_URL) and
    Redis, both on COMMUNITV_LISTEN."""
    r = Role("db", out)
    u = urlparse(settings.database_url)
    if not u.scheme.startswith("postgresql"):
        raise SystemExit("db: COMMUNITV_DATABASE_URL must be postgresql+psycopg://user:password@host/db")
    addr = settings.listen
    allow = env.get("COMMUNITV_DB_ALLOW") or (
        str(ipaddress.ip_network(f"{addr}/24", strict=False)) if addr not in ("0.0.0.0", "::") else "0.0.0.0/0")
    out.mkdir(parents=True, exist_ok=True)
    hba = out / "pg_hba.conf"
    hba.write_text("# generated by portal_server.deploy (role db)\nlocal all all trust\n"
                   f"host all all 127.0.0.1/32 scram-sha-256\nhost all all {allow} scram-sha-256\n")
    pw = out / "db-password"
    fd = os.open(pw, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write((u.password or "") + "\n")
    pgdata = out / "pgdata"
    if os.geteuid() == 0:          # the cluster belongs to the postgres user (run as root: tests)
        import shutil
        for f in (out, pw):
            shutil.chown(f, "postgres")
    user, dbname = u.username or "communitv", (u.path or "/communitv").lstrip("/") or "communitv"
    r.setup.append(Process("initdb", ["/bin/sh", "-c",
        (f"test -s {pgdata}/PG_VERSION || {{ {_pg_bin('initdb')} -D {pgdata} -U {user} --pwfile={pw} "
        f"--auth-local=trust --auth-host=scram-sha-256 -E UTF8 --locale=C >/dev/null && "
        f"echo 'CREATE DATABASE \"{dbname}\";' | {_pg_bin('postgres')} --single -D {pgdata} postgres >/dev/null; }}")],
        user="postgres"))
    r.processes.append(Process("postgres", [_pg_bin("postgres"), "-D", str(pgdata), "-c", f"listen_addresses={addr}",
                                            "-c", f"port={u.port or PORTS['postgres']}", "-c", f"hba_file={hba}",
                                            "-c", f"unix_socket_directories={out}", "-c", "max_connections=300",
                                            # a dead app host's locks go within ~1 min
                                            "-c", "tcp_keepalives_idle=30", "-c", "tcp_keepalives_interval=10",
                                            "-c", "tcp_keepalives_count=3"],
                               user="postgres"))
    ru = urlparse(settings.redis_url)
    rport = ru.port or PORTS["redis"]
    (out / "redis").mkdir(exist_ok=True)
    rconf = out / "redis.conf"
    # The password of COMMUNITV_REDIS_URL (given there, or derived from the secret key: the layout
    # sets COMMUNITV_REDIS_AUTH=1, so every app host's URL carries the same one). RQ unpickles the
    # jobs it finds in Redis: nobody on the server network may write there without it.
    auth = f"requirepass {ru.password}\n" if ru.password else ""
    fd = os.open(rconf, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(f"# generated by portal_server.deploy (role db)\nbind {addr}\nport {rport}\n"
                 f"dir {out / 'redis'}\nsave 300 10\n"
                 "# every write in the append-only file, flushed each second: a restart keeps the queue and\n"
                 "# the live alerts' acks\nappendonly yes\nappendfsync everysec\ndaemonize no\n"
                 f"# reachable from the server network only (firewall: README)\nprotected-mode no\n{auth}")
    os.chmod(rconf, 0o600)
    _give(out / "redis", "redis")
    _give(rconf, "redis")
    r.processes.append(Process("redis", ["redis-server", str(rconf)], user="redis", keep=True))
    r.files += [hba, rconf]
    return r


def write_broker(settings: Settings, out: Path, env=os.environ) -> Role:
    """Mosquitto with dynamic security: the server account (password derived from the secret key)
    and the demo boxes of COMMUNITV_DATA_DIR/demo-terminals.csv when there is one."""
    r = Role("broker", out)
    port = urlparse(settings.mqtt_url).port or PORTS["mqtt"]
    conf = stack.write_mosquitto(out, port, settings.mqtt_server_password, stack.demo_box_accounts(settings),
                                 listen=settings.listen)
    r.files.append(conf)
    r.processes.append(Process("mosquitto", ["mosquitto", "-c", str(conf)], keep=True))
    return r


def write_app(settings: Settings, out: Path, env=os.environ) -> Role:
    """gunicorn on COMMUNITV_LISTEN:8001, the RQ worker (with the periodic scheduler: Redis makes a
    tick run once whichever app host sees it first) and the MQTT ingest (a shared subscription)."""
    r = Role("app", out)
    out.mkdir(parents=True, exist_ok=True)
    port = int(env.get("COMMUNITV_APP_PORT", PORTS["app"]))
    r.setup.append(Process("migrate", [_exe("communitv"), "deploy", "migrate"]))
    # Web, worker and ingest keep their Prometheus counters in one folder of this host (never the
    # shared data folder: two hosts' pids would collide), summed by /metrics as under `make run`.
    prom = out / "prometheus"
    prom.mkdir(exist_ok=True)
    metrics_env = ["/usr/bin/env", f"PROMETHEUS_MULTIPROC_DIR={prom}"]
    r.processes += [
        Process("web", metrics_env + stack.web_argv(f"{url_host(settings.listen)}:{port}", _exe("gunicorn"))),
        Process("worker", metrics_env + [_exe("communitv"), "worker"]),
        Process("ingest", metrics_env + [_exe("communitv"), "ingest"]),
    ]
    return r


def _play_from(env) -> list[str]:
    """Addresses/CIDRs allowed to play RTMP back: the app hosts that are addresses, plus
    COMMUNITV_APP_NETWORK."""
    out = []
    for h in app_hosts(env):
        host = urlparse("tcp://" + h).hostname or ""
        try:
            out.append(str(ipaddress.ip_address(host)))
        except ValueError:
            pass
    if env.get("COMMUNITV_APP_NETWORK"):
        out.append(env["COMMUNITV_APP_NETWORK"])
    return out


def write_edge(settings: Settings, out: Path, env=os.environ) -> Role:
    """nginx HTTP (files from the shared volume, the rest to every app host) and nginx-rtmp."""
    r = Role("edge", out)
    hosts = app_hosts(env)
    if not hosts:
        raise SystemExit("edge: 缺少对等节点 应用节点 app 的地址（请设置 COMMUNITV_APP_HOSTS）/ "
                         "missing peer app: set COMMUNITV_APP_HOSTS")
    http = urlparse(settings.public_url).port or PORTS["http"]
    rtmp = urlparse(settings.rtmp_url).port or PORTS["rtmp"]
    conf = stack.write_nginx(out, settings, http, PORTS["app"], listen=settings.listen,
                             upstreams=[h if ":" in h else f"{h}:{PORTS['app']}" for h in hosts],
                             callback_port=CALLBACK_PORT)
    rconf = stack.write_nginx_rtmp(out, settings, rtmp, CALLBACK_PORT, listen=settings.listen,
                                   play_from=_play_from(env))
    r.files += [conf, rconf]
    r.processes += [Process("nginx", ["nginx", "-c", str(conf), "-p", str(out)]),
                    Process("rtmp", ["nginx", "-c", str(rconf), "-p", str(out)])]
    return r


WRITERS = {"db": write_db, "broker": write_broker, "app": write_app, "edge": write_edge}


def env_file_text(env=os.environ) -> str:
    """Every COMMUNITV_* setting of this host (systemd EnvironmentFile, the Procfile's .env)."""
    keys = sorted(k for k in env if k.startswith("COMMUNITV_"))
    return "# generated by portal_server.deploy\n" + "".join(f"{k}={env[k]}\n" for k in keys)


def systemd_unit(role: Role, p: Process, env_file: Path) -> str:
    user = p.user or "communitv"
    pre = "\n".join(f"ExecStartPre={'+' if s.user == 'root' else ''}{shlex.join(s.argv)}" for s in role.setup
                    if s.user == p.user)
    wait = "" if not peers(role.role, {})[0] else \
        f"ExecStartPre={_exe('communitv')} deploy wait --role {role.role} --env-file {env_file}\n"
    return f"""# generated by portal_server.deploy (role {role.role}) — edit the generator, not this file
[Unit]
Description=CommuniTV {role.role}: {p.name}
After=network-online.target
Wants=network-online.target
PartOf=communitv-{role.role}.target

[Service]
Type=simple
User={user}
EnvironmentFile={env_file}
Environment=PYTHONUNBUFFERED=1
{wait}{pre + chr(10) if pre else ''}ExecStart={shlex.join(p.argv)}
Restart=always
RestartSec=3
LimitNOFILE=65535
TimeoutStopSec=20

[Install]
WantedBy=communitv-{role.role}.target
"""


def systemd_target(role: Role) -> str:
    units = " ".join(f"communitv-{role.role}-{p.name}.service" for p in role.processes)
    return f"""# generated by portal_server.deploy
[Unit]
Description=CommuniTV {role.role} host
Wants={units}

[Install]
WantedBy=multi-user.target
"""


def settings_from(env) -> Settings:
    """Settings from a mapping of COMMUNITV_* variables (as ``Settings.from_env`` reads os.environ)."""
    import dataclasses
    values: dict = {}
    for f in dataclasses.fields(Settings):
        raw = env.get("COMMUNITV_" + f.name.upper())
        if raw is None or f.name == "extra":
            continue
        values[f.name] = int(raw) if f.type == "int" else \
            raw.lower() in ("1", "true", "yes", "on") if f.type == "bool" else raw
    return Settings(**values)


def procfile_text(r: Role, as_root: bool = False) -> str:
    """The role's Procfile (honcho); infrastructure restarts in place (scripts/keep); as root,
    the postgres user's processes go through runuser."""
    keep = Path(__file__).resolve().parent.parent / "scripts" / "keep"
    lines = []
    for p in r.processes:
        argv = (["runuser", "-u", p.user, "--"] if as_root and p.user else []) + p.argv
        lines.append(f"{p.name}: {shlex.join([str(keep), p.name, '3', *argv] if p.keep else argv)}\n")
    return "".join(lines)


def write_role(role: str, out: Path, env=os.environ) -> Role:
    """Every file of ``role`` under ``out``: its configs, communitv.env, Procfile and systemd units
    (``out/systemd/``, to copy to /etc/systemd/system/)."""
    if role not in WRITERS:
        raise SystemExit(f"unknown role {role!r}: one of {', '.join(ROLES)}")
    out = out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    env = {**LAYOUT_DEFAULTS, **env}
    settings = settings_from(env)
    r = WRITERS[role](settings, out, env)
    if role != "db":               # the services write pid files, logs and state in their folder
        _give(out, "communitv")
    env_file = out / "communitv.env"
    # The secret key and the database password may be in it: 0600, readable by the role's user only.
    fd = os.open(env_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(env_file_text(env))
    os.chmod(env_file, 0o600)
    if role != "db":
        _give(env_file, "communitv")
    pf = out / "Procfile"
    pf.write_text(procfile_text(r))
    units = out / "systemd"
    units.mkdir(exist_ok=True)
    for p in r.processes:
        f = units / f"communitv-{role}-{p.name}.service"
        f.write_text(systemd_unit(r, p, env_file))
        r.files.append(f)
    (units / f"communitv-{role}.target").write_text(systemd_target(r))
    r.files += [env_file, pf, units / f"communitv-{role}.target"]
    return r


def migrate(url: str) -> None:
    """`alembic upgrade heads`, once at a time across app hosts (a PostgreSQL advisory lock held
    for the upgrade: two app hosts starting together do not race on the schema)."""
    from sqlalchemy import create_engine, text

    if not url.startswith("postgresql"):
        core_db.upgrade(url)
        return
    eng = create_engine(url)
    with eng.connect() as conn:
        conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": lock_key("alembic-upgrade")})
        conn.commit()
        try:
            core_db.upgrade(url)
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": lock_key("alembic-upgrade")})
            conn.commit()
    eng.dispose()


def run(role: str, out: Path) -> int:
    """Wait for the peers, write, run the setup steps, then the processes under honcho."""
    import subprocess
    for k, v in LAYOUT_DEFAULTS.items():   # the processes honcho starts read them too
        os.environ.setdefault(k, v)
    wait_for_peers(role)
    r = write_role(role, out)
    root = os.geteuid() == 0
    for st in r.setup:
        argv = (["runuser", "-u", st.user, "--"] if root and st.user else []) + st.argv
        rc = subprocess.call(argv)
        if rc != 0:
            print(f"{role}: {st.name} failed (exit {rc})", file=sys.stderr)
            return rc
    (out / "Procfile").write_text(procfile_text(r, as_root=root))
    honcho = stack.venv_bin("honcho")
    os.execvp(honcho, [honcho, "-f", str(out / "Procfile"), "-d", str(Path.cwd()), "start"])
    return 0


# Docker: the image and the compose file, generated here (tests compare the checked-in files) ---

#: What the one CommuniTV image carries: the app, the edge's nginx (Debian's, which has
#: secure_link, plus the RTMP module) and Mosquitto for the broker role.
IMAGE_PACKAGES = ["python3", "python3-venv", "ca-certificates", "ffmpeg", "nginx", "libnginx-mod-rtmp", "mosquitto",
                  "libvlc5", "vlc-plugin-base", "fonts-noto-cjk", "espeak-ng"]


def dockerfile() -> str:
    pkgs = " ".join(IMAGE_PACKAGES)
    return f"""# generated by `communitv deploy docker` (portal_server/deploy.py) — edit the generator, not this file.
# One image for the broker, app and edge roles (`communitv deploy run --role R` picks one); the db
# role uses the postgres and redis images. The compose file is validated against the Compose
# specification's schema in tests/deploy; the roles themselves are proved running in
# tests/deploy/test_layout.py (without Docker).
FROM debian:bookworm-slim
ENV DEBIAN_FRONTEND=noninteractive PYTHONUNBUFFERED=1 COMMUNITV_DATA_DIR=/var/lib/communitv
RUN apt-get update && apt-get install -y --no-install-recommends {pkgs} \\
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml requirements.lock README.md ./
COPY portal_server ./portal_server
COPY stb_app ./stb_app
COPY streaming ./streaming
COPY epg ./epg
COPY device_fleet ./device_fleet
COPY scripts ./scripts
# Editable: the configs point at /app (TV static files for nginx, scripts/keep), as on a host.
RUN python3 -m venv /opt/venv && /opt/venv/bin/pip install --no-cache-dir -c requirements.lock -e . \\
    && useradd --system --home /var/lib/communitv communitv \\
    && mkdir -p /var/lib/communitv /var/lib/communitv-broker /etc/communitv \\
    && chown communitv /var/lib/communitv /var/lib/communitv-broker /etc/communitv
ENV PATH=/opt/venv/bin:$PATH
USER communitv
EXPOSE {PORTS['app']} {PORTS['http']} {PORTS['rtmp']} {PORTS['mqtt']}
CMD ["communitv", "deploy", "run", "--role", "app", "--out", "/etc/communitv/app"]
"""


#: The settings every CommuniTV container shares in docker-compose.yml.
COMPOSE_ENV = {
    "COMMUNITV_DATA_DIR": "/var/lib/communitv",
    "COMMUNITV_LISTEN": "0.0.0.0",
    "COMMUNITV_DATABASE_URL": "postgresql+psycopg://communitv:${POSTGRES_PASSWORD}@db:5432/communitv",
    "COMMUNITV_REDIS_URL": "redis://:${REDIS_PASSWORD}@redis:6379/0",
    "COMMUNITV_MQTT_URL": "mqtt://broker:1883",
    "COMMUNITV_PUBLIC_URL": "${COMMUNITV_PUBLIC_URL}",
    "COMMUNITV_RTMP_URL": "rtmp://${PUBLIC_HOST}:1935/live",
    "COMMUNITV_RTMP_PULL": "rtmp://edge:1935/live",
    "COMMUNITV_APP_HOSTS": "app:8001",
    "COMMUNITV_EDGE_HOSTS": "edge",
    "COMMUNITV_APP_NETWORK": "172.30.0.0/24",
}


def compose_document() -> dict:
    """docker-compose.yml: db (postgres + redis images), broker, app (2 replicas), edge — the roles of
    ``write_role``, each container running ``communitv deploy run --role R`` (it writes its own
    configs: nothing has to exist in ./deploy/). All hosts share the volume ``data`` (the NFS of a
    real layout)."""
    def ours(role, out=None, volumes=(), **extra):
        svc = {"build": ".", "image": "communitv:latest", "restart": "unless-stopped",
               "command": ["communitv", "deploy", "run", "--role", role, "--out", out or f"/etc/communitv/{role}"],
               "environment": dict(COMPOSE_ENV), "volumes": ["data:/var/lib/communitv", *volumes],
               "networks": ["backend"]}
        svc.update(extra)
        return svc
    return {
        "name": "communitv",
        "services": {
            "db": {"image": "postgres:15", "restart": "unless-stopped",
                   "environment": {"POSTGRES_USER": "communitv", "POSTGRES_PASSWORD": "${POSTGRES_PASSWORD}",
                                   "POSTGRES_DB": "communitv"},
                   "command": ["postgres", "-c", "max_connections=300", "-c", "tcp_keepalives_idle=30",
                               "-c", "tcp_keepalives_interval=10", "-c", "tcp_keepalives_count=3"],
                   "volumes": ["pg:/var/lib/postgresql/data"], "networks": ["backend"]},
            "redis": {"image": "redis:7", "restart": "unless-stopped",
                      "command": ["redis-server", "--save", "300", "10", "--appendonly", "yes",
                                  "--protected-mode", "no", "--requirepass", "${REDIS_PASSWORD}"],
                      "volumes": ["redis:/data"], "networks": ["backend"]},
            # The broker's folder keeps its account file (boxes registered at runtime) and persistence.
            "broker": ours("broker", "/var/lib/communitv-broker", ["mosq:/var/lib/communitv-broker"], ports=[f"{PORTS['mqtt']}:{PORTS['mqtt']}"],
                           ulimits={"nofile": {"soft": 65535, "hard": 65535}}),
            "app": ours("app", depends_on=["db", "redis", "broker"], deploy={"replicas": 2}),
            "edge": ours("edge", ports=[f"80:{PORTS['http']}", f"{PORTS['rtmp']}:{PORTS['rtmp']}"],
                         depends_on=["app"]),
        },
        "networks": {"backend": {"ipam": {"config": [{"subnet": COMPOSE_ENV["COMMUNITV_APP_NETWORK"]}]}}},
        "volumes": {"pg": {}, "redis": {}, "mosq": {}, "data": {}},
    }


def to_yaml(value, indent: int = 0) -> str:
    """A small YAML writer (block style, every string double-quoted as JSON, which YAML reads)."""
    pad = "  " * indent
    if isinstance(value, dict):
        if not value:
            return "{}"
        lines = []
        for k, v in value.items():
            if isinstance(v, (dict, list)) and v:
                lines.append(f"{pad}{k}:\n{to_yaml(v, indent + 1)}")
            else:
                lines.append(f"{pad}{k}: {to_yaml(v)}")
        return "\n".join(lines)
    if isinstance(value, list):
        if not value:
            return "[]"
        if all(not isinstance(v, (dict, list)) for v in value):
            return pad + "- " + f"\n{pad}- ".join(to_yaml(v) for v in value)
        return "\n".join(f"{pad}-\n{to_yaml(v, indent + 1)}" for v in value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return json.dumps(value, ensure_ascii=False)


def compose_yaml() -> str:
    return ("# generated by `communitv deploy docker` (portal_server/deploy.py) — edit the generator, not this file.\n"
            "# docker compose up: the production layout's roles as containers (PostgreSQL, Redis, Mosquitto,\n"
            "# 2 app hosts, the edge). Checked against the Compose specification's JSON schema; the same roles\n"
            "# run in tests/deploy/test_layout.py (README \"Production layout\").\n" + to_yaml(compose_document()) + "\n")
