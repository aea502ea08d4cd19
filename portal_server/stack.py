"""Configs and supervision for the whole stack (`make run`) and the test fixtures.

Writes under ``$COMMUNITV_DATA_DIR/run``: redis.conf, mosquitto.conf + dynamic-security.json,
nginx.conf (RTMP ``live`` application with callbacks; HTTP serving /hls/ and TV files itself
and proxying the rest to gunicorn) and a Procfile run by honcho in the foreground.
"""
from __future__ import annotations

import base64
import hashlib
import json
import os
import pwd
import socket
import sys
from pathlib import Path

from portal_server.core.config import MQTT_SERVER_USER, Settings

#: The terminal role's ACL (INTERFACES §5): own dev topics and region topics only.
TERMINAL_ROLE = "terminal"
SERVER_ROLE = "server"
STB_STATIC = Path(__file__).resolve().parent.parent / "stb_app" / "static"


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return True
    return False


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def dynsec_password(password: str, salt: bytes | None = None, iterations: int = 101) -> dict:
    """Mosquitto dynamic-security's PBKDF2-SHA512 password fields."""
    salt = salt or os.urandom(12)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations, 64)
    return {"password": base64.b64encode(digest).decode(), "salt": base64.b64encode(salt).decode(),
            "iterations": iterations}


def _acl(kind: str, topic: str, allow: bool = True, priority: int = 0) -> dict:
    return {"acltype": kind, "topic": topic, "allow": allow, "priority": priority}


def box_role_name(serial: str) -> str:
    return f"box-{serial}"


def box_role_acls(serial: str) -> list[dict]:
    """A box's own topics. Mosquitto 2.0.11's dynamic security does not substitute %c/%u in
    ACL topics (tested), so every box gets its own role naming its serial."""
    own = f"ctv/v1/dev/{serial}/#"
    return [_acl("publishClientSend", own), _acl("subscribePattern", own),
            _acl("publishClientReceive", own)]


def dynsec_document(server_password: str, clients=()) -> dict:
    """A dynamic-security config: the server account and roles, plus ``clients`` (serial, secret)
    as terminals. Used when the broker is not running yet; at runtime device_fleet adds clients
    through ``$CONTROL/dynamic-security/v1`` with the same roles."""
    roles = [
        {"rolename": SERVER_ROLE, "acls": [
            _acl("publishClientSend", "$CONTROL/dynamic-security/#"),
            _acl("publishClientReceive", "$CONTROL/dynamic-security/#"),
            _acl("subscribePattern", "$CONTROL/dynamic-security/#"),
            _acl("publishClientSend", "ctv/#"), _acl("publishClientReceive", "ctv/#"),
            _acl("subscribePattern", "ctv/#"), _acl("subscribePattern", "$share/#"),
            _acl("publishClientReceive", "$SYS/#"), _acl("subscribePattern", "$SYS/#"),
            _acl("unsubscribePattern", "#")]},
        # Shared by every box: region topics (alerts, notices) are readable by all boxes.
        {"rolename": TERMINAL_ROLE, "acls": [
            _acl("subscribePattern", "ctv/v1/region/#"),
            _acl("publishClientReceive", "ctv/v1/region/#"),
            _acl("unsubscribePattern", "#")]},
    ]
    docs = [{"username": MQTT_SERVER_USER, "textName": "CommuniTV server",
             "roles": [{"rolename": SERVER_ROLE}], **dynsec_password(server_password)}]
    for serial, secret in clients:
        roles.append({"rolename": box_role_name(serial), "acls": box_role_acls(serial)})
        docs.append({"username": serial, "clientid": serial,
                     "roles": [{"rolename": TERMINAL_ROLE}, {"rolename": box_role_name(serial)}],
                     **dynsec_password(secret)})
    return {"clients": docs, "groups": [], "roles": roles,
            "defaultACLAccess": {"publishClientSend": False, "publishClientReceive": False,
                                 "subscribe": False, "unsubscribe": True}}


def write_mosquitto(run_dir: Path, port: int, server_password: str, clients=(),
                    overwrite_dynsec: bool = False) -> Path:
    """mosquitto.conf with the dynamic-security plugin; returns the conf path."""
    run_dir.mkdir(parents=True, exist_ok=True)
    dynsec = run_dir / "dynamic-security.json"
    if overwrite_dynsec or not dynsec.exists():
        doc = dynsec_document(server_password, clients)
    else:
        # Keep what the broker saved (boxes registered at runtime); add missing boxes. The plugin
        # rewrites its whole file after every change, so thousands of boxes go in here, before
        # the broker starts, never one by one over $CONTROL.
        doc = json.loads(dynsec.read_text())
        have = {c["username"] for c in doc.get("clients", [])}
        extra = dynsec_document(server_password, [c for c in clients if c[0] not in have])
        doc["clients"] += [c for c in extra["clients"] if c["username"] != MQTT_SERVER_USER]
        have_roles = {r["rolename"] for r in doc.get("roles", [])}
        doc["roles"] += [r for r in extra["roles"] if r["rolename"] not in have_roles]
    tmp = dynsec.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc, indent=1))
    os.chmod(tmp, 0o600)
    os.replace(tmp, dynsec)
    plugin = "/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so"
    for cand in Path("/usr/lib").glob("*/mosquitto_dynamic_security.so"):
        plugin = str(cand)
    (run_dir / "mosquitto").mkdir(exist_ok=True)
    conf = run_dir / "mosquitto.conf"
    conf.write_text(f"""# generated by portal_server.stack — edit the generator, not this file
per_listener_settings false
# Run as whoever started us (as root mosquitto would switch to "mosquitto" and lose our files).
user {pwd.getpwuid(os.geteuid()).pw_name}
allow_anonymous false
listener {port} 127.0.0.1
plugin {plugin}
plugin_opt_config_file {dynsec}
persistence true
persistence_location {run_dir / 'mosquitto'}/
autosave_interval 60
# Limits set on purpose (DESIGN §4)
# The ingest's subscription takes a burst of one QoS 1 ack per box after a city-wide alert (10,000 at
# once); with 1,000 the broker dropped a quarter of them (bench/alerts_latency.py). A box's own queue
# holds a handful of messages, so the higher cap costs nothing for boxes.
max_queued_messages 20000
max_inflight_messages 20
max_connections -1
max_packet_size 262144
persistent_client_expiration 1d
log_dest stderr
log_type error
log_type warning
connection_messages false
""")
    return conf


def write_redis(run_dir: Path, port: int, password: str | None = None) -> Path:
    """redis.conf; with ``password`` Redis requires it (clients: ``COMMUNITV_REDIS_AUTH=1``)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "redis").mkdir(exist_ok=True)
    conf = run_dir / "redis.conf"
    auth = f"requirepass {password}\n" if password else ""
    conf.write_text(f"""# generated by portal_server.stack
bind 127.0.0.1
port {port}
dir {run_dir / 'redis'}
save 300 10
appendonly no
daemonize no
protected-mode yes
{auth}""")
    os.chmod(conf, 0o600)
    return conf


def nginx_module_lines() -> str:
    mods = Path("/usr/lib/nginx/modules/ngx_rtmp_module.so")
    return f"load_module {mods};\n" if mods.exists() else ""


def write_nginx(run_dir: Path, settings: Settings, http_port: int, upstream_port: int) -> Path:
    """nginx.conf: HTTP that serves files (TV pages, HLS, media) and proxies the app. The RTMP ingest
    has its own one-worker nginx (``write_nginx_rtmp``)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    for d in ("nginx-tmp", "log"):
        (run_dir / d).mkdir(exist_ok=True)
    data = settings.data_dir
    user = "user root;\n" if os.geteuid() == 0 else ""
    conf = run_dir / "nginx.conf"
    conf.write_text(f"""# generated by portal_server.stack
{user}worker_processes auto;
daemon off;
pid {run_dir / 'nginx.pid'};
error_log {run_dir / 'log' / 'nginx-error.log'} warn;
worker_rlimit_nofile 65535;
events {{ worker_connections 16384; multi_accept on; }}
http {{
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    # Pages and scripts are UTF-8 (Chinese): say so, or clients guess Latin-1 for files nginx serves.
    charset utf-8;
    charset_types text/css text/plain text/xml application/javascript application/json;
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_timeout 65;
    keepalive_requests 10000;
    open_file_cache max=10000 inactive=30s;
    open_file_cache_valid 1s;
    client_max_body_size 64m;
    client_body_temp_path {run_dir / 'nginx-tmp'} 1 2;
    proxy_temp_path {run_dir / 'nginx-tmp'}/proxy;
    fastcgi_temp_path {run_dir / 'nginx-tmp'}/fcgi;
    uwsgi_temp_path {run_dir / 'nginx-tmp'}/uwsgi;
    scgi_temp_path {run_dir / 'nginx-tmp'}/scgi;
    gzip on;
    gzip_types text/css application/javascript application/json image/svg+xml;
    upstream app {{ server 127.0.0.1:{upstream_port}; keepalive 64; }}
    server {{
        listen 127.0.0.1:{http_port};
        server_name _;
        location /hls/ {{
            alias {data / 'hls'}/;
            add_header Cache-Control no-cache;
            add_header Access-Control-Allow-Origin *;
        }}
        # Meeting video only through signed, expiring URLs (portal_server.core.signing): the
        # signature and expiry sit in the path so segments named relatively inherit them.
        location /hls/meetings/ {{
            return 403;
        }}
        location ~ "^/hls/s/(?<hsig>[A-Za-z0-9_-]{{22}})/(?<hexp>[0-9]{{1,12}})/(?<hdir>[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*)/(?<hfile>[A-Za-z0-9_.-]+)$" {{
            secure_link $hsig,$hexp;
            secure_link_md5 "$hexp/$hdir {settings.hls_link_secret}";
            if ($secure_link = "") {{ return 403; }}
            if ($secure_link = "0") {{ return 403; }}
            alias {data / 'hls'}/$hdir/$hfile;
            add_header Cache-Control no-cache;
            add_header Access-Control-Allow-Origin *;
        }}
        # TV static assets (ES5 scripts, CSS, images): long-lived, versioned by query string.
        location /tv/static/ {{
            alias {STB_STATIC}/;
            expires 7d;
        }}
        # The TV pages of a region (rendered once per change by the app, stb_app.snapshots), for the
        # boxes holding that region's key: secure_link recomputes the cookie ctv_vk from the code in
        # the URL, so no Python runs for them; a missing page falls back to the app, which renders it.
        location ~ "^/tv/v/(?<vcode>[0-9]{{12}})/(?<vfile>[a-z0-9-]+[.](html|json))$" {{
            secure_link $cookie_ctv_vk;
            secure_link_md5 "$vcode {settings.tv_link_secret}";
            if ($secure_link = "") {{ return 302 /tv/; }}
            root {settings.snapshot_dir};
            add_header Cache-Control no-cache;
            try_files /$vcode/$vfile @app;
        }}
        location /media/ {{
            alias {settings.media_dir}/;
            expires 1d;
        }}
        location @app {{
            proxy_pass http://app;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $remote_addr;
            proxy_set_header X-Forwarded-Proto $scheme;
        }}
        location / {{
            proxy_pass http://app;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $remote_addr;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_read_timeout 120s;
        }}
    }}
}}
""")
    os.chmod(conf, 0o600)  # it holds the TV-page and video link secrets
    return conf


def write_nginx_rtmp(run_dir: Path, settings: Settings, rtmp_port: int, upstream_port: int) -> Path:
    """nginx-rtmp.conf: the RTMP ingest alone, in ONE worker. nginx-rtmp keeps a live stream inside
    the worker that accepted the publisher; a player (our ffmpeg pulling the meeting back) on
    another worker gets nothing, and Debian's module's rtmp_auto_push does not relay (tested:
    ffprobe times out with 2 workers, answers in 2 s with 1). HTTP keeps its own nginx with
    ``worker_processes auto`` (``write_nginx``)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "log").mkdir(exist_ok=True)
    user = "user root;\n" if os.geteuid() == 0 else ""
    conf = run_dir / "nginx-rtmp.conf"
    conf.write_text(f"""# generated by portal_server.stack
{nginx_module_lines()}{user}worker_processes 1;
daemon off;
pid {run_dir / 'nginx-rtmp.pid'};
error_log {run_dir / 'log' / 'nginx-rtmp-error.log'} warn;
events {{ worker_connections 4096; }}
rtmp {{
    server {{
        listen 127.0.0.1:{rtmp_port};
        chunk_size 4096;
        application live {{
            live on;
            record off;
            # Only keys of meetings inside their window are admitted (the app answers 2xx/403).
            on_publish http://127.0.0.1:{upstream_port}/api/v1/streams/on_publish;
            on_publish_done http://127.0.0.1:{upstream_port}/api/v1/streams/on_publish_done;
            notify_method post;
            drop_idle_publisher 15s;
            allow play 127.0.0.1;
            deny play all;
        }}
    }}
}}
""")
    return conf


def venv_bin(name: str) -> str:
    return str(Path(sys.executable).parent / name)


def procfile(run_dir: Path, settings: Settings, ports: dict, clients=()) -> Path:
    mosq = write_mosquitto(run_dir, ports["mqtt"], settings.mqtt_server_password, clients)
    redis_conf = write_redis(run_dir, ports["redis"], settings.redis_password if settings.redis_auth else None)
    nginx_conf = write_nginx(run_dir, settings, ports["http"], ports["app"])
    rtmp_conf = write_nginx_rtmp(run_dir, settings, ports["rtmp"], ports["app"])
    pf = run_dir / "Procfile"
    keep = Path(__file__).resolve().parent.parent / "scripts" / "keep"
    pf.write_text(
        f"redis: {keep} redis-server 30 redis-server {redis_conf}\n"
        f"mosquitto: {keep} mosquitto 30 mosquitto -c {mosq}\n"
        f"nginx: nginx -c {nginx_conf} -p {run_dir}\n"
        f"rtmp: nginx -c {rtmp_conf} -p {run_dir}\n"
        f"web: {venv_bin('gunicorn')} --workers 4 --threads 4 --bind 127.0.0.1:{ports['app']} "
        f"--access-logfile - --logger-class portal_server.core.accesslog.RedactingLogger "
        f"--graceful-timeout 5 'portal_server.app:create_app()'\n"
        f"worker: {venv_bin('communitv')} worker\n"
        f"ingest: {venv_bin('communitv')} ingest\n")
    return pf


def demo_box_accounts(settings: Settings) -> list[tuple[str, str]]:
    """(serial, secret) of every demo box, from the CSV the seed wrote."""
    import csv
    path = settings.data_dir / "demo-terminals.csv"
    if not path.exists():
        return []
    with open(path, newline="") as fh:
        return [(row["serial"], row["secret"]) for row in csv.DictReader(fh)]


def run() -> int:
    """`make run`: check ports, migrate, seed once, write configs, supervise everything with honcho."""
    # Redis with a password (requirepass) that every process of the stack derives from the key.
    os.environ.setdefault("COMMUNITV_REDIS_AUTH", "1")
    settings = Settings.from_env()
    from urllib.parse import urlparse
    ports = {"http": urlparse(settings.public_url).port or 8000, "app": int(os.environ.get("COMMUNITV_APP_PORT", 8001)),
             "mqtt": urlparse(settings.mqtt_url).port or 1883, "redis": urlparse(settings.redis_url).port or 6379,
             "rtmp": urlparse(settings.rtmp_url).port or 1935}
    taken = [f"{name} port {p}" for name, p in ports.items() if port_in_use(p)]
    if taken:
        print("make run: cannot start, already in use: " + ", ".join(taken) +
              ". Stop whatever holds it (e.g. `ss -ltnp | grep :PORT`) or set COMMUNITV_* to other ports.",
              file=sys.stderr)
        return 2
    from portal_server.core import db as core_db
    core_db.upgrade(settings.database_url)
    run_dir = settings.data_dir / "run"
    marker = settings.data_dir / ".seeded"
    env = dict(os.environ, COMMUNITV_DATA_DIR=str(settings.data_dir), PYTHONUNBUFFERED="1")
    if not marker.exists():
        import subprocess
        rc = subprocess.call([venv_bin("communitv"), "demo", "seed"], env=env)
        if rc != 0:
            return rc
        marker.write_text("seeded\n")
    pf = procfile(run_dir, settings, ports, clients=demo_box_accounts(settings))
    print(f"""
CommuniTV is starting. Open:
  TV portal (a demo box):  {settings.public_url}/tv/   (pairing screen without a box token)
  Staff web:               {settings.public_url}/admin/   accounts: admin, city-editor, v001-editor, ... (password: {settings.demo_password})
  NOC:                     {settings.public_url}/noc/
  Health:                  {settings.public_url}/healthz
  RTMP for OBS:            {settings.rtmp_url}/<stream key>
Box secrets for simulators: {settings.data_dir / 'demo-terminals.csv'}
Ctrl-C stops everything.
""", flush=True)
    os.execvpe(venv_bin("honcho"), [venv_bin("honcho"), "-f", str(pf), "-d", str(Path.cwd()), "start"], env)
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "run":
        sys.exit(run())
    print("usage: python -m portal_server.stack run", file=sys.stderr)
    sys.exit(2)
