"""Typed settings read from ``COMMUNITV_*`` environment variables.

One place for every knob (DESIGN §3.2). ``Settings.from_env()`` reads the environment;
tests build ``Settings(**overrides)`` directly and pass it to ``create_app``.
"""
from __future__ import annotations

import dataclasses
import os
import secrets
from dataclasses import dataclass, field
from datetime import time as dt_time
from pathlib import Path

from . import keys


def _env(name: str, default: str | None = None) -> str | None:
    return os.environ.get("COMMUNITV_" + name, default)


#: ``listen`` values meaning "every address of this host".
WILDCARDS = ("0.0.0.0", "::")


def url_host(addr: str) -> str:
    """An address as the host part of a URL (IPv6 in brackets)."""
    return f"[{addr}]" if ":" in addr and not addr.startswith("[") else addr


#: The broker account the server (web, worker, ingest) connects with.
MQTT_SERVER_USER = "ctv-server"


@dataclass
class Settings:
    #: Where the database, media, HLS output, recordings, logs and generated configs live.
    data_dir: Path = Path("./var")
    #: SQLAlchemy URL; SQLite in the data dir by default, PostgreSQL via postgresql+psycopg://.
    database_url: str = ""
    #: Redis for presence, heartbeats, throttles, caches and RQ.
    redis_url: str = "redis://127.0.0.1:6379/0"
    #: The broker; mqtt://user:pass@host:port (credentials of the server account).
    mqtt_url: str = "mqtt://127.0.0.1:1883"
    #: Where encoders push RTMP (shown to village hall staff); by default the host of
    #: ``public_url`` on port 1935, so a village hall's encoder gets an address it can reach.
    rtmp_url: str = ""
    #: The URL boxes and phones reach us at (QR codes, box portal URLs, HLS and firmware URLs).
    #: By default ``http://<listen>:8000`` when ``listen`` names one address, else 127.0.0.1.
    public_url: str = ""
    #: The address where HTTP :8000, MQTT :1883 and RTMP :1935 listen for boxes, phones and
    #: encoders (``0.0.0.0`` or a LAN address to go live). Redis, gunicorn and every internal
    #: port stay on loopback whatever it says (INTERFACES §2).
    listen: str = "127.0.0.1"
    #: Where the server's own ffmpeg plays an admitted meeting back (nginx-rtmp allows play
    #: from there only). Default: loopback, same port and app as ``rtmp_url`` (`make run`); on
    #: separate hosts the edge's address on the server network (``communitv deploy``).
    rtmp_pull: str = ""
    #: Edge hosts (addresses, CIDRs or names, comma-separated) whose nginx-rtmp may call the
    #: RTMP callbacks; loopback always may. Set on app hosts of the production layout.
    edge_hosts: str = ""
    #: Folder of the nightly backup (`communitv backup` archives, 7 daily + 4 weekly kept);
    #: empty (the default) turns the nightly backup off.
    backup_dir: str = ""
    #: Signs sessions, CSRF tokens, API and terminal tokens; derives the PII encryption key.
    secret_key: str = ""
    #: Password of the demo accounts made by `communitv demo seed`.
    demo_password: str = "communitv-demo"
    #: Heartbeat interval told to boxes; offline after 2.5 × this without one.
    heartbeat_s: int = 60
    #: Timezone of the city (boxes and XMLTV show local time).
    timezone: str = "Asia/Shanghai"
    #: Lifetime of staff API bearer tokens, in seconds.
    token_ttl_s: int = 12 * 3600
    #: Lifetime of a box's portal URL (its config carries a fresh one at every hello), in days.
    portal_url_ttl_days: int = 90
    #: Failed logins per username+IP per minute before throttling.
    login_max_failures: int = 4
    #: Where MQTT dynamic-security admin commands go (the server account must be allowed to use it).
    mqtt_dynsec_enabled: bool = True
    #: Elderly care (养老助老), city time HH:MM: an elderly_alone household neither checked in
    #: nor seen on the TV by then gets a task for its grid worker.
    care_checkin_deadline: str = "10:00"
    #: Elderly care, city time HH:MM: care tasks of the day still open then go to the village head.
    care_escalate_at: str = "18:00"
    #: A real county's boundaries for the cockpit map: GeoJSON whose features carry the 12-digit
    #: division code in ``properties.code`` (empty: the generated plan of the demo city).
    map_geojson: str = ""
    #: Networks (CIDR, comma-separated) a live channel's source host must be in: ffmpeg is never
    #: pointed at arbitrary hosts. Default: loopback, private and multicast ranges.
    channel_sources: str = ("127.0.0.0/8,::1/128,10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,fc00::/7,"
                            "224.0.0.0/4,ff00::/8")
    #: Longest wait (seconds) between two restarts of a channel relay whose source is away.
    channel_backoff_cap_s: int = 30
    #: A live meeting also carries a 480p rendition (a second encode on the media host) in a master
    #: playlist, which boxes on weak lines pick by bandwidth.
    meeting_low_rendition: bool = True
    #: Run RQ jobs inline (tests, or a machine without a worker).
    jobs_inline: bool = False
    #: Redis requires a password (`make run` sets it): the URL gets the derived ``redis_password``
    #: unless it already carries one. Redis holds the job queue, whose jobs are unpickled.
    redis_auth: bool = False
    #: Testing mode (Flask TESTING).
    testing: bool = False
    #: Extra Flask config values.
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir).resolve()
        if not self.database_url:
            self.database_url = f"sqlite:///{self.data_dir / 'communitv.db'}"
        if not self.public_url:
            host = self.listen if self.listen not in WILDCARDS else "127.0.0.1"
            self.public_url = f"http://{url_host(host)}:8000"
        if not self.rtmp_url:
            self.rtmp_url = f"rtmp://{url_host(self.public_host)}:1935/live"
        if not self.secret_key:
            self.secret_key = load_or_create_secret(self.data_dir)
        else:
            self.secret_key = keys.check_secret(self.secret_key, "COMMUNITV_SECRET_KEY")
        if self.redis_auth:
            from urllib.parse import urlparse

            u = urlparse(self.redis_url)
            if not u.password:
                self.redis_url = self.redis_url.replace("://", f"://:{self.redis_password}@", 1)
        for name in ("care_checkin_deadline", "care_escalate_at"):
            try:  # a typo in a clock time must stop the start, not the 10 o'clock check
                dt_time.fromisoformat(str(getattr(self, name)))
            except ValueError:
                raise ValueError(f"COMMUNITV_{name.upper()} must be a time HH:MM, "
                                 f"not {getattr(self, name)!r}") from None

    @classmethod
    def from_env(cls, **overrides) -> "Settings":
        """Read the ``COMMUNITV_*`` variables; ``overrides`` win."""
        values: dict = {}
        for f in dataclasses.fields(cls):
            raw = _env(f.name.upper())
            if raw is None or f.name == "extra":
                continue
            if f.type in ("int",):
                values[f.name] = int(raw)
            elif f.type in ("bool",):
                values[f.name] = raw.lower() in ("1", "true", "yes", "on")
            else:
                values[f.name] = raw
        values.update(overrides)
        return cls(**values)

    @property
    def public_host(self) -> str:
        """The host name or address of ``public_url`` (what boxes, phones and encoders dial)."""
        from urllib.parse import urlparse
        return urlparse(self.public_url).hostname or "127.0.0.1"

    @property
    def rtmp_pull_url(self) -> str:
        """Where the server's own ffmpeg plays an admitted stream back: ``rtmp_pull`` when set
        (the edge of the production layout), else nginx-rtmp on loopback (it always listens there
        too, and allows play from 127.0.0.1), same port and app as ``rtmp_url``."""
        if self.rtmp_pull:
            return self.rtmp_pull
        from urllib.parse import urlparse
        u = urlparse(self.rtmp_url)
        return f"{u.scheme}://127.0.0.1:{u.port or 1935}{u.path}"

    @property
    def mqtt_server_url(self) -> str:
        """The broker URL with the server account's credentials (derived when the URL has none)."""
        from urllib.parse import urlparse

        u = urlparse(self.mqtt_url)
        if u.username:
            return self.mqtt_url
        return f"{u.scheme}://{MQTT_SERVER_USER}:{self.mqtt_server_password}@{u.hostname}:{u.port or 1883}"

    @property
    def mqtt_server_password(self) -> str:
        """The server account's broker password: pinned in ``$DATA_DIR/mqtt_server_password`` once
        the secret key has been rotated (the broker keeps it), derived from the key before."""
        pinned = mqtt_password_file(self.data_dir)
        if pinned.exists():
            return pinned.read_text().strip()
        import hashlib
        import hmac
        return hmac.new(self.secret_key.encode(), b"mqtt-server", hashlib.sha256).hexdigest()[:32]

    @property
    def tv_link_secret(self) -> str:
        """Shared by the app and nginx's secure_link to sign the TV pages of a region (stb_app)."""
        import hashlib
        import hmac
        return hmac.new(self.secret_key.encode(), b"tv-village-link", hashlib.sha256).hexdigest()[:32]

    @property
    def portal_link_secret(self) -> str:
        """Shared by the app and nginx's secure_link to sign boxes' portal URLs (core.terminals)."""
        import hashlib
        import hmac
        return hmac.new(self.secret_key.encode(), b"tv-portal-link", hashlib.sha256).hexdigest()[:32]

    @property
    def hls_link_secret(self) -> str:
        """Shared by the app and nginx's secure_link to sign meeting (and channel) HLS URLs."""
        return keys.derive(self.secret_key, "hls-link").hex()

    @property
    def redis_password(self) -> str:
        """The password `make run` gives Redis (requirepass) and every client uses."""
        return keys.derive(self.secret_key, "redis").hex()

    @property
    def audit_key(self) -> bytes:
        """Keys the audit chain (HMAC): a database writer without it cannot re-hash the chain."""
        return keys.derive(self.secret_key, "audit-chain")

    # Derived paths -------------------------------------------------------------------------
    @property
    def media_dir(self) -> Path:
        return self.data_dir / "media"

    @property
    def hls_dir(self) -> Path:
        return self.data_dir / "hls"

    @property
    def snapshot_dir(self) -> Path:
        """Pre-rendered TV pages, one folder per village (served as static files)."""
        return self.data_dir / "tv"

    @property
    def push_socket(self) -> Path:
        """nginx's push publisher (nchan) on a Unix socket: only processes of this host post to it.
        A socket path has at most 107 bytes: a deep data dir gets a short one in /tmp named after it."""
        sock = self.data_dir / "run" / "push.sock"
        if len(str(sock).encode()) <= 100:
            return sock
        import hashlib
        return Path("/tmp") / f"ctv-push-{hashlib.sha1(str(self.data_dir).encode()).hexdigest()[:12]}.sock"

    @property
    def portal_token_dir(self) -> Path:
        """One empty file ``<serial>/<token_version>`` per box whose portal URL is live: nginx checks it
        (a box whose version moved on, by rotation or rebinding, no longer has its file)."""
        return self.data_dir / "tv-tokens"

    @property
    def log_dir(self) -> Path:
        return self.data_dir / "log"


def mqtt_password_file(data_dir: Path) -> Path:
    """Where ``communitv secrets rotate`` pins the broker password of the server account."""
    return Path(data_dir) / "mqtt_server_password"


def load_or_create_secret(data_dir: Path) -> str:
    """The secret key from ``$DATA_DIR/secret_key``, generated on first use (mode 600)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / "secret_key"
    if path.exists():
        if path.stat().st_mode & 0o077:  # readable by others: close it
            os.chmod(path, 0o600)
        return keys.check_secret(path.read_text(), str(path))
    key = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(key)
    return key
