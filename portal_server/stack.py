"""Configs and supervision for the whole stack (`make run`) and the test fixtures.

Writes under ``$COMMUNITV_DATA_DIR/run``: redis.conf, mosquitto.conf + dynamic-security.json,
nginx.conf (RTMP ``live`` application with callbacks; HTTP serving /hls/ and TV files itself
and proxying the rest to gunicorn) and a Procfile run by honcho in the foreground.
"""
from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import shlex
import shutil
import pwd
import socket
import sys
from pathlib import Path

from portal_server.core.config import MQTT_SERVER_USER, WILDCARDS, Settings, url_host
from portal_server.core.protocol import (SERVER_ROLE, TERMINAL_ROLE, acl_changes, box_role_acls, box_role_name,
                                         role_acls, role_change_lines, server_role_acls, terminal_role_acls)

log = logging.getLogger(__name__)
STB_STATIC = Path(__file__).resolve().parent.parent / "stb_app" / "static"
#: nginx's own error answers (a body over client_max_body_size never reaches the app): Chinese.
ERROR_PAGES = Path(__file__).resolve().parent / "static" / "errors"


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    """True when ``port`` cannot be bound on ``host`` (something listens there)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return True
    return False


# Where we listen (COMMUNITV_LISTEN, INTERFACES §2) ------------------------------------------

def is_loopback(addr: str) -> bool:
    """127.0.0.0/8, ::1 and the name localhost."""
    import ipaddress
    if addr.strip("[]") == "localhost":
        return True
    try:
        return ipaddress.ip_address(addr.strip("[]")).is_loopback
    except ValueError:
        return False


def listen_addresses(listen: str) -> list[str]:
    """The addresses a public service (HTTP, MQTT, RTMP) binds: ``listen`` itself, plus loopback
    when ``listen`` is one LAN address, because the server's own clients (ingest, web, ffmpeg
    pulling a meeting back) always dial 127.0.0.1. A wildcard already covers loopback."""
    if listen == "::":          # nginx and Mosquitto bind [::] IPv6-only: add IPv4's wildcard
        return ["::", "0.0.0.0"]
    if listen in WILDCARDS or is_loopback(listen):
        return [listen]
    return [listen, "127.0.0.1"]


def host_addresses() -> list[str]:
    """This host's IPv4 addresses other than loopback (to suggest a public URL)."""
    import subprocess
    try:
        out = subprocess.run(["ip", "-o", "-4", "addr", "show"], capture_output=True, text=True,
                             timeout=5).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    addrs = [line.split()[3].split("/")[0] for line in out.splitlines() if len(line.split()) > 3]
    return [a for a in addrs if not is_loopback(a)]


def check_listen(listen: str) -> str | None:
    """None when ``listen`` is an address of this host (or a wildcard); else the message to stop with."""
    import ipaddress
    try:
        ipaddress.ip_address(listen)
    except ValueError:
        return (f"COMMUNITV_LISTEN={listen!r} 不是IP地址 / is not an IP address "
                f"(use 0.0.0.0, 127.0.0.1 or one of this host's addresses: {', '.join(host_addresses()) or '-'})")
    family = socket.AF_INET6 if ":" in listen else socket.AF_INET
    with socket.socket(family) as s:
        try:
            s.bind((listen, 0))
        except OSError:
            return (f"COMMUNITV_LISTEN={listen} 不是本机的地址 / is not an address of this host "
                    f"(its addresses: {', '.join(host_addresses()) or '-'}; or 0.0.0.0 for all of them)")
    return None


def public_url_warning(settings: Settings) -> str | None:
    """The start-up warning when we listen on a network but boxes would be sent to loopback."""
    if is_loopback(settings.listen) or not is_loopback(settings.public_host):
        return None
    suggest = next(iter(host_addresses()), "<LAN address>") if settings.listen in WILDCARDS \
        else settings.listen
    return (f"注意：服务监听在 {settings.listen}，但 COMMUNITV_PUBLIC_URL 仍是 {settings.public_url}，"
            f"机顶盒和手机扫码将无法访问。请设置 COMMUNITV_PUBLIC_URL=http://{url_host(suggest)}:8000 后重新启动。\n"
            f"WARNING: listening on {settings.listen}, but COMMUNITV_PUBLIC_URL is still {settings.public_url}: "
            f"box portal URLs, QR codes, HLS and RTMP URLs would point at loopback and no box or phone could "
            f"use them. Set COMMUNITV_PUBLIC_URL=http://{url_host(suggest)}:8000 (the address boxes reach) "
            f"and start again.")


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


def dynsec_document(server_password: str, clients=()) -> dict:
    """A dynamic-security config: the server account and roles, plus ``clients`` (serial, secret)
    as terminals. Used when the broker is not running yet; at runtime device_fleet adds clients
    through ``$CONTROL/dynamic-security/v1`` with the same roles."""
    roles = [
        {"rolename": SERVER_ROLE, "acls": server_role_acls()},
        # Shared by every box: region topics (alerts, notices) are readable by all boxes.
        {"rolename": TERMINAL_ROLE, "acls": terminal_role_acls()},
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


def upgrade_role_acls(doc: dict) -> dict[str, tuple[list[dict], list[dict]]]:
    """Bring the roles of a saved dynamic-security document to the current ACLs (a role created by an
    older version keeps its old ACLs otherwise: issue 22's deny on a box's own config/cmd topics).
    Changes ``doc`` in place, logs and returns {rolename: (removed, added)}; roles this project does
    not own are left alone. The broker is not running yet: the file is the whole truth."""
    changed = {}
    for role in doc.get("roles", []):
        want = role_acls(role["rolename"])
        if want is None:
            continue
        remove, add = acl_changes(role.get("acls", []), want)
        if remove or add:
            role["acls"] = want
            changed[role["rolename"]] = (remove, add)
    for line in role_change_lines(changed, "dynamic-security.json"):
        log.warning("%s", line)
    return changed


def mosquitto_listeners(port: int, listen: str = "127.0.0.1") -> str:
    """The broker's MQTT listener lines (``per_listener_settings false``: one auth for all)."""
    return "".join(f"listener {port} {addr}\n" for addr in listen_addresses(listen))


def write_mosquitto(run_dir: Path, port: int, server_password: str, clients=(),
                    overwrite_dynsec: bool = False, listen: str = "127.0.0.1") -> Path:
    """mosquitto.conf with the dynamic-security plugin, MQTT on ``listen`` (and loopback);
    returns the conf path."""
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
        upgrade_role_acls(doc)
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
{mosquitto_listeners(port, listen)}plugin {plugin}
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
# every write in the append-only file, flushed each second: a restart keeps the queue and the acks
appendonly yes
appendfsync everysec
daemonize no
protected-mode yes
{auth}""")
    os.chmod(conf, 0o600)
    return conf


def nginx_module_lines() -> str:
    mods = Path("/usr/lib/nginx/modules/ngx_rtmp_module.so")
    return f"load_module {mods};\n" if mods.exists() else ""


def nginx_listen_lines(port: int, listen: str = "127.0.0.1", indent: str = "        ") -> str:
    """``listen`` directives for one public port (HTTP or RTMP): ``listen`` and loopback."""
    return "".join(f"{indent}listen {url_host(addr)}:{port};\n" for addr in listen_addresses(listen))


def nginx_upstream(servers: list[str]) -> str:
    """The ``app`` upstream: every app host; a host that refuses or fails is skipped for 10 s and the
    request goes to the next one (``proxy_next_upstream`` in the locations)."""
    lines = "".join(f"        server {s} max_fails=1 fail_timeout=10s;\n" for s in servers)
    return f"    upstream app {{\n{lines}        keepalive 64;\n    }}"


#: What the edge retries on another app host: a refused/reset connection (the host is down; nginx
#: retries even a POST then, nothing was sent), a timeout, or a 502/503 of a host going down.
NEXT_UPSTREAM = "proxy_next_upstream error timeout http_502 http_503; proxy_next_upstream_tries 3;"


def nginx_callback_server(port: int) -> str:
    """On loopback only: nginx-rtmp's callbacks reach the app hosts through this (nginx-rtmp's own
    HTTP client dials one address; the upstream fails over). No X-Forwarded-For: the app trusts a
    callback from an edge host without one (streaming.api)."""
    return f"""    server {{
        listen 127.0.0.1:{port};
        location /api/v1/streams/ {{
            proxy_pass http://app;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            {NEXT_UPSTREAM}
        }}
        location / {{ return 404; }}
    }}
"""


def write_nginx(run_dir: Path, settings: Settings, http_port: int, upstream_port: int,
                listen: str | None = None, upstreams: list[str] | None = None,
                callback_port: int | None = None) -> Path:
    """nginx.conf: HTTP that serves files (TV pages, HLS, media) and proxies the app. The RTMP ingest
    has its own one-worker nginx (``write_nginx_rtmp``). ``upstreams`` (host:port of every app host,
    the edge of the production layout) replaces the one local gunicorn; ``callback_port`` adds the
    loopback server nginx-rtmp's callbacks go through."""
    run_dir.mkdir(parents=True, exist_ok=True)
    for d in ("nginx-tmp", "log"):
        (run_dir / d).mkdir(exist_ok=True)
    data = settings.data_dir
    listen = settings.listen if listen is None else listen
    user = "user root;\n" if os.geteuid() == 0 else ""
    conf = run_dir / "nginx.conf"
    push = nginx_push(settings)
    conf.write_text(f"""# generated by portal_server.stack
{push['module']}{user}worker_processes auto;
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
{nginx_upstream(upstreams or [f"127.0.0.1:{upstream_port}"])}
    # TV page views for the leaders' figures (portal_server.stats): one line per view, one file per
    # UTC day, read by the aggregation job; the serial is the ctv_sn cookie, nothing else is kept.
    log_format ctv_beacon '$msec $cookie_ctv_sn $arg_p';
    map $request_uri $ctv_error_type {{ default html; "~^/api/" json; }}
    map $time_iso8601 $ctv_beacon_day {{ default "undated"; "~^(?<d>[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}})" $d; }}
{nginx_callback_server(callback_port) if callback_port else ""}    server {{
{nginx_listen_lines(http_port, listen).rstrip(chr(10))}
        server_name _;
        # A body over client_max_body_size is refused by nginx before the app sees it: say so in
        # Chinese (JSON for the API, a page for the staff web and the phone).
        error_page 413 /_errors/413.$ctv_error_type;
        location /_errors/ {{
            internal;
            alias {ERROR_PAGES}/;
            default_type text/html;
            types {{ text/html html; application/json json; }}
            charset utf-8;
        }}
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
        location = /tv/beacon {{
            access_log {settings.log_dir}/tv-beacon-$ctv_beacon_day.log ctv_beacon;
            add_header Cache-Control no-store;
            return 204;
        }}
{push['locations']}{nginx_portal_entry(settings)}        location @app {{
            proxy_pass http://app;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $remote_addr;
            proxy_set_header X-Forwarded-Proto $scheme;
            {NEXT_UPSTREAM}
        }}
        location / {{
            proxy_pass http://app;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $remote_addr;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_read_timeout 120s;
            {NEXT_UPSTREAM}
        }}
    }}
{push['server']}}}
""")
    os.chmod(conf, 0o600)  # it holds the TV-page and video link secrets
    return conf


NCHAN_MODULE = Path("/usr/lib/nginx/modules/ngx_nchan_module.so")


def nginx_push(settings: Settings) -> dict:
    """The portal's push channel (stb_app.push) in nginx: nchan, when Debian's module is installed
    (without it pages keep polling ``alert.json``). Returns the ``module`` line, the subscriber
    ``locations`` for the public server and the publisher ``server`` on a Unix socket."""
    if not NCHAN_MODULE.exists():
        return {"module": "", "locations": "", "server": ""}
    sock = settings.push_socket
    sock.parent.mkdir(parents=True, exist_ok=True)
    sock.unlink(missing_ok=True)  # a stale socket from a killed nginx would stop the bind
    return {"module": f"load_module {NCHAN_MODULE};\n", "locations": f"""\
        # A TV page's push connection (WebSocket; long-poll for clients without one): the boxes
        # holding the region's key (as for its pages), subscribed to the channels of the region
        # and the two above it. nginx holds the idle socket; Python only publishes on a change.
        location ~ "^/tv/v/(?<pcode>[0-9]{{12}})/push/(?<pa>[0-9]{{12}})/(?<pb>[0-9]{{12}})$" {{
            secure_link $cookie_ctv_vk;
            secure_link_md5 "$pcode {settings.tv_link_secret}";
            if ($secure_link = "") {{ return 403; }}
            nchan_subscriber websocket longpoll;
            nchan_channel_id "r$pa" "r$pb" "r$pcode";
            nchan_subscriber_first_message newest;
            nchan_websocket_ping_interval 25;
            nchan_subscriber_timeout 300s;
            add_header Cache-Control no-store;
        }}
""", "server": f"""\
    # The push publisher: a Unix socket only this host's processes (the app, workers) reach.
    server {{
        listen unix:{sock};
        location ~ "^/_push/(?<pch>r[0-9]{{12}})$" {{
            nchan_publisher http;
            nchan_channel_id $pch;
            nchan_message_buffer_length 4;
            nchan_message_timeout 120s;
        }}
        location / {{ return 404; }}
    }}
"""}


def nginx_portal_entry(settings: Settings) -> str:
    """``/tv/?token=…`` (a box's portal URL, core.terminals.portal_url) verified by nginx alone: the
    signature and expiry by secure_link, the box's token version by the file
    ``<serial>/<version>`` in ``portal_token_dir`` (gone once the version moved on); then the
    cookies ``ctv_terminal`` and ``ctv_vk`` and a redirect to the village's home page. A forged URL
    is refused here (403); an expired or revoked one, and the old token-only URL, go to the app
    (which shows the pairing screen for the first two)."""
    return f"""\
        location = /tv/ {{
            # A revoked version's file must be seen gone at once, not after the file cache's second.
            open_file_cache off;
            error_page 418 = @app;
            if ($arg_sig = "") {{ return 418; }}
            secure_link $arg_sig,$arg_e;
            secure_link_md5 "$arg_e $arg_box $arg_ver $arg_vc $arg_vk $arg_token {settings.portal_link_secret}";
            if ($secure_link = "") {{ return 403; }}
            if ($secure_link = "0") {{ return 418; }}
            if (!-f {settings.portal_token_dir}/$arg_box/$arg_ver) {{ return 418; }}
            absolute_redirect off;
            add_header Set-Cookie "ctv_terminal=$arg_token; Path=/; Max-Age=31536000; HttpOnly; SameSite=Lax";
            add_header Set-Cookie "ctv_vk=$arg_vk; Path=/tv/v/; Max-Age=31536000; HttpOnly; SameSite=Lax";
            add_header Set-Cookie "ctv_sn=$arg_box; Path=/tv/; Max-Age=31536000; SameSite=Lax";
            add_header Cache-Control no-store;
            return 302 /tv/v/$arg_vc/home.html;
        }}
"""


def write_nginx_rtmp(run_dir: Path, settings: Settings, rtmp_port: int, upstream_port: int,
                     listen: str | None = None, play_from: list[str] | None = None) -> Path:
    """nginx-rtmp.conf: the RTMP ingest alone, in ONE worker. nginx-rtmp keeps a live stream inside
    the worker that accepted the publisher; a player (our ffmpeg pulling the meeting back) on
    another worker gets nothing, and Debian's module's rtmp_auto_push does not relay (tested:
    ffprobe times out with 2 workers, answers in 2 s with 1). HTTP keeps its own nginx with
    ``worker_processes auto`` (``write_nginx``). The callbacks go to ``upstream_port`` on loopback
    (gunicorn, or the edge's callback server); ``play_from`` (the app hosts' addresses) may also
    play a stream back, besides loopback."""
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "log").mkdir(exist_ok=True)
    allow = "".join(f"            allow play {a};\n" for a in ["127.0.0.1", *(play_from or [])])
    listen = settings.listen if listen is None else listen
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
{nginx_listen_lines(rtmp_port, listen).rstrip(chr(10))}
        chunk_size 4096;
        application live {{
            live on;
            record off;
            # Only keys of meetings inside their window are admitted (the app answers 2xx/403).
            on_publish http://127.0.0.1:{upstream_port}/api/v1/streams/on_publish;
            on_publish_done http://127.0.0.1:{upstream_port}/api/v1/streams/on_publish_done;
            notify_method post;
            drop_idle_publisher 15s;
{allow}            deny play all;
        }}
    }}
}}
""")
    return conf


def venv_bin(name: str) -> str:
    return str(Path(sys.executable).parent / name)


def metrics_dir(run_dir: Path) -> Path:
    """Where web, worker and ingest keep their Prometheus counters (summed by /metrics); emptied at
    every start so a restart begins from fresh files instead of the last run's dead processes."""
    d = run_dir / "prometheus"
    if d.exists():
        shutil.rmtree(d)
    d.mkdir(parents=True)
    return d


#: gunicorn's worker model, the one place ``make run`` (``procfile``), deploy's app role and
#: bench/cases.py take it from: single-threaded (sync) workers, 2 × cores + 1 of them (gunicorn's
#: rule). Requests are CPU-bound Python; threads in one process queue on its GIL, and under load a
#: thread holding SQLite's write lock waits for the GIL behind its siblings: with 4 × 4 threads,
#: 50 boxes applying back to back saw p99 four times p50 (bench/cases.py). Separate processes take
#: requests in the order they come. A long request (a big xlsx export) holds one worker, so the
#: worker timeout is two minutes.
GUNICORN_WORKERS = ("--workers", str(2 * (os.cpu_count() or 1) + 1), "--timeout", "120")


def gunicorn_argv(bind: str, gunicorn: str | None = None) -> list[str]:
    """The web process's command line (without access log flags): worker model, hooks, app."""
    return [gunicorn or venv_bin("gunicorn"), *GUNICORN_WORKERS, "--bind", bind,
            "-c", "python:portal_server.system.gunicorn_conf", "--graceful-timeout", "5",
            "portal_server.app:create_app()"]


def web_argv(bind: str, gunicorn: str | None = None) -> list[str]:
    """The web process as every layout runs it (``make run``'s Procfile, deploy's app role): the
    gunicorn hooks (dead workers' gauges dropped from /metrics) and the access log on stdout through
    the logger that redacts tokens, keys and video signatures."""
    argv = gunicorn_argv(bind, gunicorn)
    return argv[:-1] + ["--access-logfile", "-", "--logger-class", "portal_server.core.accesslog.RedactingLogger",
                        argv[-1]]


def procfile(run_dir: Path, settings: Settings, ports: dict, clients=(), listen: str | None = None) -> Path:
    """Every config plus the Procfile honcho runs. HTTP, MQTT and RTMP listen on ``listen``
    (default ``settings.listen``) and loopback; Redis and gunicorn on loopback only."""
    listen = settings.listen if listen is None else listen
    mosq = write_mosquitto(run_dir, ports["mqtt"], settings.mqtt_server_password, clients, listen=listen)
    redis_conf = write_redis(run_dir, ports["redis"], settings.redis_password if settings.redis_auth else None)
    nginx_conf = write_nginx(run_dir, settings, ports["http"], ports["app"], listen=listen)
    rtmp_conf = write_nginx_rtmp(run_dir, settings, ports["rtmp"], ports["app"], listen=listen)
    pf = run_dir / "Procfile"
    prom = f"PROMETHEUS_MULTIPROC_DIR={metrics_dir(run_dir)}"
    keep = Path(__file__).resolve().parent.parent / "scripts" / "keep"
    pf.write_text(
        f"redis: {keep} redis-server 30 redis-server {redis_conf}\n"
        f"mosquitto: {keep} mosquitto 30 mosquitto -c {mosq}\n"
        f"nginx: nginx -c {nginx_conf} -p {run_dir}\n"
        f"rtmp: nginx -c {rtmp_conf} -p {run_dir}\n"
        f"web: env {prom} " + shlex.join(web_argv(f"127.0.0.1:{ports['app']}")) + "\n"
        f"worker: env {prom} {venv_bin('communitv')} worker\n"
        f"ingest: env {prom} {venv_bin('communitv')} ingest\n" + channel_procs())
    return pf


def channel_procs() -> str:
    """Procfile lines of the live channels: the demo head-end (test pictures as MPEG-TS over UDP
    on loopback) and the relays process (every channel under the ffmpeg supervisor)."""
    return (f"headend: {sys.executable} -m streaming.headend\n"
            f"relays: {sys.executable} -m portal_server.cli channel-relays\n")


def demo_box_accounts(settings: Settings) -> list[tuple[str, str]]:
    """(serial, secret) of every demo box, from the CSV the seed wrote."""
    import csv
    path = settings.data_dir / "demo-terminals.csv"
    if not path.exists():
        return []
    with open(path, newline="") as fh:
        return [(row["serial"], row["secret"]) for row in csv.DictReader(fh)]


#: Ports boxes, phones and encoders use (on COMMUNITV_LISTEN); the others stay on loopback.
PUBLIC_PORTS = ("http", "mqtt", "rtmp")


def stack_ports(settings: Settings) -> dict:
    """The ports of `make run`: public ones from the URLs, internal ones from loopback URLs."""
    from urllib.parse import urlparse
    return {"http": urlparse(settings.public_url).port or 8000,
            "app": int(os.environ.get("COMMUNITV_APP_PORT", 8001)),
            "mqtt": urlparse(settings.mqtt_url).port or 1883, "redis": urlparse(settings.redis_url).port or 6379,
            "rtmp": urlparse(settings.rtmp_url).port or 1935}


def taken_ports(ports: dict, listen: str) -> list[str]:
    """"name port N" for each port something else holds (on the address we would bind)."""
    taken = []
    for name, p in ports.items():
        addrs = listen_addresses(listen) if name in PUBLIC_PORTS else ["127.0.0.1"]
        if any(port_in_use(p, a) for a in addrs):
            taken.append(f"{name} port {p}")
    return taken


#: Debian starts these on install, on the ports we use by default.
DEBIAN_SERVICES = {"redis": "redis-server", "mqtt": "mosquitto"}


def debian_services_hint(taken: list[str]) -> str:
    """What to do when Debian's own redis-server/mosquitto hold our ports (after a non-root install)."""
    svcs = [svc for name, svc in DEBIAN_SERVICES.items() if any(t.startswith(name + " ") for t in taken)]
    if not svcs:
        return ""
    return (f"\nDebian's own {' and '.join(svcs)} service probably holds it (started when the package was "
            f"installed): `sudo systemctl disable --now {' '.join(svcs)}`, or keep it and run ours on other "
            f"ports, e.g. COMMUNITV_REDIS_URL=redis://127.0.0.1:6380/0 COMMUNITV_MQTT_URL=mqtt://127.0.0.1:1884 make run")


def start_banner(settings: Settings, ports: dict) -> str:
    """What `make run` prints: the URLs a box, a phone, an encoder and the staff use."""
    pub = settings.public_url.rstrip("/")
    mqtt = f"mqtt://{url_host(settings.public_host)}:{ports['mqtt']}"
    return f"""
CommuniTV is starting, listening on {settings.listen} (HTTP :{ports['http']}, MQTT :{ports['mqtt']}, RTMP :{ports['rtmp']}).
  Set-top box:  MQTT broker {mqtt} (client id = user = serial, password = its secret);
                its portal URL comes in its config: {pub}/tv/?token=...   (pairing screen without a token: {pub}/tv/)
  Phone:        {pub}/m/   (QR codes on the TV point here)
  Encoder/OBS:  {settings.rtmp_url.rstrip('/')}/<stream key>   (key on the meeting's staff page)
  Staff web:    {pub}/admin/   accounts: admin, city-editor, v001-editor, ... (password: {settings.demo_password})
  NOC:          {pub}/noc/      Health: {pub}/healthz
Box secrets for simulators: {settings.data_dir / 'demo-terminals.csv'}
Ctrl-C stops everything.
"""


def run() -> int:
    """`make run`: check the address and ports, migrate, seed once, write configs, supervise
    everything with honcho."""
    # Redis with a password (requirepass) that every process of the stack derives from the key.
    os.environ.setdefault("COMMUNITV_REDIS_AUTH", "1")
    settings = Settings.from_env()
    problem = check_listen(settings.listen)
    if problem:
        print("make run: cannot start: " + problem, file=sys.stderr)
        return 2
    ports = stack_ports(settings)
    taken = taken_ports(ports, settings.listen)
    if taken:
        print("make run: cannot start, already in use: " + ", ".join(taken) +
              ". Stop whatever holds it (e.g. `ss -ltnp | grep :PORT`) or set COMMUNITV_* to other ports." +
              debian_services_hint(taken), file=sys.stderr)
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
    print(start_banner(settings, ports), flush=True)
    warning = public_url_warning(settings)
    if warning:
        print(warning + "\n", file=sys.stderr, flush=True)
    os.execvpe(venv_bin("honcho"), [venv_bin("honcho"), "-f", str(pf), "-d", str(Path.cwd()), "start"], env)
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "run":
        sys.exit(run())
    print("usage: python -m portal_server.stack run", file=sys.stderr)
    sys.exit(2)
