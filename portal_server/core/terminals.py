"""Terminals (set-top boxes and institutional terminals) and their portal tokens.

The fleet service (device_fleet) owns provisioning and presence; the identity of a box is
core because the portal, feedback, alerts and meetings all need to know whose box is asking.
"""
from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import time
from dataclasses import dataclass
from pathlib import Path

from flask import current_app
from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import DateTime, ForeignKey, Integer, String, bindparam, select
from sqlalchemy.orm import Mapped, joinedload, mapped_column, relationship

from .db import Base, session, utcnow
from .households import Household
from .regions import Region

KINDS = ("department", "town", "village", "household")


class Terminal(Base):
    __tablename__ = "terminals"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: Factory serial = MQTT client id = MQTT username.
    serial: Mapped[str] = mapped_column(String(32), unique=True, index=True)
    #: department, town, village (institutional) or household.
    kind: Mapped[str] = mapped_column(String(16), index=True)
    mac: Mapped[str | None] = mapped_column(String(17))
    model: Mapped[str | None] = mapped_column(String(32))
    #: Firmware version last reported by the box (hello/hb).
    firmware: Mapped[str | None] = mapped_column(String(32))
    #: salted SHA-256 of the factory secret (high-entropy secret: a fast hash is enough).
    secret_hash: Mapped[str] = mapped_column(String(96))
    #: The region the box shows (village for households and village halls).
    region_id: Mapped[int | None] = mapped_column(ForeignKey("regions.id"), index=True)
    region_path: Mapped[str | None] = mapped_column(String(255), index=True)
    household_id: Mapped[int | None] = mapped_column(ForeignKey("households.id"), index=True)
    #: Department code for city department terminals.
    department_code: Mapped[str | None] = mapped_column(String(32))
    #: Shown on an unbound box's pairing screen.
    pairing_code: Mapped[str | None] = mapped_column(String(8), unique=True)
    #: Bumped to revoke every portal token issued to this box.
    token_version: Mapped[int] = mapped_column(Integer, default=1)
    bound_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    region: Mapped[Region | None] = relationship()
    household: Mapped[Household | None] = relationship()

    @property
    def paired(self) -> bool:
        return self.region_id is not None

    def region_codes(self) -> list[str]:
        return [c for c in (self.region_path or "").split("/") if c]


def hash_secret(secret: str, serial: str) -> str:
    return "sha256$" + hashlib.sha256(f"{serial}:{secret}".encode()).hexdigest()


def factory_secret(serial: str) -> str:
    """A demo box's factory secret, derived from the secret key (stable across runs)."""
    key = current_app.config["SECRET_KEY"].encode()
    return hmac.new(key, f"factory:{serial}".encode(), hashlib.sha256).hexdigest()[:32]


def check_secret(terminal: Terminal, secret: str) -> bool:
    return hmac.compare_digest(terminal.secret_hash, hash_secret(secret, terminal.serial))


def _serializer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt="ctv-terminal")


def _settings():
    return current_app.config["SETTINGS"]


def token_expiry(now: float | None = None) -> int:
    """When a portal URL issued now expires (epoch s): ``portal_url_ttl_days`` ahead, rounded up to
    a whole UTC day so a box's retained config does not change at every hello."""
    now = time.time() if now is None else now
    ttl = _settings().portal_url_ttl_days * 86400
    return int(-(-(now + ttl) // 86400) * 86400)


def portal_token(terminal: Terminal, expires: int | None = None) -> str:
    """The signed token carried in the box's portal URL and sent as X-Terminal-Token: the box's
    serial, its token version (bumped to revoke) and its expiry."""
    return _serializer().dumps({"s": terminal.serial, "v": terminal.token_version,
                                "e": token_expiry() if expires is None else expires})


def token_claims(token: str | None) -> dict | None:
    """What a portal token says (``s`` serial, ``v`` version, ``e`` expiry) when its signature is
    ours and it has not expired, else None (the database is not asked)."""
    if not token:
        return None
    try:
        data = _serializer().loads(token)
    except BadSignature:
        return None
    if not isinstance(data, dict):
        return None
    exp = data.get("e")
    if exp is not None and (not isinstance(exp, int) or exp < time.time()):
        return None
    return data


def terminal_for_token(token: str | None) -> Terminal | None:
    """The paired terminal a token names, or None for a forged, expired, revoked or unpaired one
    (tokens issued before expiries existed carry none and live until the version moves on)."""
    data = token_claims(token)
    if data is None:
        return None
    # Its household, the household's village and the box's region come in the same SELECT: every
    # box request reads them (the TV pages the region, an application the household and village).
    term = session.scalar(select(Terminal).where(Terminal.serial == data.get("s"))
                          .options(joinedload(Terminal.region),
                                   joinedload(Terminal.household).joinedload(Household.region)))
    if term is None or term.token_version != data.get("v") or not term.paired:
        return None
    return term


@dataclass(frozen=True)
class BoxIdentity:
    """The box a valid token names, as plain ids: what a hot write (a box's application) and the
    credentials check of every API request need, read with one Core SELECT and no ORM objects."""

    id: int
    serial: str
    household_id: int | None
    region_id: int


_T = Terminal.__table__
_IDENTITY = select(_T.c.id, _T.c.serial, _T.c.household_id, _T.c.region_id, _T.c.token_version).where(
    _T.c.serial == bindparam("serial"))


def identity_for_token(token: str | None) -> BoxIdentity | None:
    """``terminal_for_token``'s answer as a ``BoxIdentity`` (the same rules: forged, expired,
    revoked or unpaired → None), without loading the terminal, its household and regions."""
    data = token_claims(token)
    if data is None:
        return None
    row = session.connection().execute(_IDENTITY, {"serial": data.get("s")}).first()
    if row is None or row.token_version != data.get("v") or row.region_id is None:
        return None
    return BoxIdentity(row.id, row.serial, row.household_id, row.region_id)


def terminal_by_serial(serial: str) -> Terminal | None:
    return session.scalar(select(Terminal).where(Terminal.serial == serial))


def village_key(code: str, link_secret: str | None = None) -> str:
    """The ``ctv_vk`` cookie for region ``code``: what nginx's ``secure_link_md5 "$code $secret"`` expects."""
    secret = link_secret or _settings().tv_link_secret
    digest = hashlib.md5(f"{code} {secret}".encode()).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def _link_sig(parts: list[str]) -> str:
    """nginx's ``secure_link_md5 "$arg_e $arg_box $arg_ver $arg_vc $arg_vk $arg_token <secret>"``."""
    raw = " ".join([*parts, _settings().portal_link_secret])
    return base64.urlsafe_b64encode(hashlib.md5(raw.encode()).digest()).decode().rstrip("=")


def _token_mark(serial: str, version) -> Path:
    return _settings().portal_token_dir / serial / str(version)


def mark_token_live(terminal: Terminal) -> None:
    """Keep exactly one file ``<serial>/<version>`` for this box in ``portal_token_dir``: nginx lets
    in portal URLs of that version only (a stat per call when nothing changed; a folder per box so
    that clearing old versions never lists the whole fleet)."""
    live = _token_mark(terminal.serial, terminal.token_version)
    if live.exists():
        return
    live.parent.mkdir(parents=True, exist_ok=True)
    for old in live.parent.iterdir():
        old.unlink(missing_ok=True)
    live.touch()


def revoke_token_marks(serial: str) -> None:
    """nginx stops admitting any portal URL of this box (the app still checks the version)."""
    folder = _settings().portal_token_dir / serial
    if folder.is_dir():
        for old in folder.iterdir():
            old.unlink(missing_ok=True)


def portal_url(terminal: Terminal, expires: int | None = None) -> str:
    """The box's start URL (its retained config carries it): ``/tv/?token=…`` plus what lets nginx
    admit it without Python — box, version, village, village key, expiry and their signature."""
    exp = token_expiry() if expires is None else expires
    token = portal_token(terminal, exp)
    base = _settings().public_url.rstrip("/") + "/tv/?token=" + token
    if terminal.region is None:
        return base
    mark_token_live(terminal)
    parts = [str(exp), terminal.serial, str(terminal.token_version), terminal.region.code,
             village_key(terminal.region.code), token]
    return (base + f"&box={parts[1]}&ver={parts[2]}&vc={parts[3]}&vk={parts[4]}&e={exp}"
            f"&sig={_link_sig(parts)}")


def check_portal_link(args) -> str:
    """What nginx decides for a signed portal URL, for the app (its fallback and development):
    ``"ok"``, ``"forged"``, ``"expired"`` or ``"revoked"``."""
    keys = ("e", "box", "ver", "vc", "vk", "token")
    parts = [args.get(k, "") for k in keys]
    if any(" " in p for p in parts) or not hmac.compare_digest(  # nginx reads them undecoded: no spaces
            _link_sig(parts).encode(), args.get("sig", "").encode()):
        return "forged"
    try:
        if int(parts[0]) < time.time():
            return "expired"
    except ValueError:
        return "forged"
    if not _token_mark(parts[1], parts[2]).exists():
        return "revoked"
    return "ok"
