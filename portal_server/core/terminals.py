"""Terminals (set-top boxes and institutional terminals) and their portal tokens.

The fleet service (device_fleet) owns provisioning and presence; the identity of a box is
core because the portal, feedback, alerts and meetings all need to know whose box is asking.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import hmac

from flask import current_app
from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import DateTime, ForeignKey, Integer, String, select
from sqlalchemy.orm import Mapped, mapped_column, relationship

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


def portal_token(terminal: Terminal) -> str:
    """The signed token carried in the box's portal URL and sent as X-Terminal-Token."""
    return _serializer().dumps({"s": terminal.serial, "v": terminal.token_version})


def terminal_for_token(token: str | None) -> Terminal | None:
    """The paired terminal a token names, or None for a forged, revoked or unpaired one."""
    if not token:
        return None
    try:
        data = _serializer().loads(token)
    except BadSignature:
        return None
    if not isinstance(data, dict):
        return None
    term = session.scalar(select(Terminal).where(Terminal.serial == data.get("s")))
    if term is None or term.token_version != data.get("v") or not term.paired:
        return None
    return term


def terminal_by_serial(serial: str) -> Terminal | None:
    return session.scalar(select(Terminal).where(Terminal.serial == serial))


def portal_url(terminal: Terminal) -> str:
    return current_app.config["SETTINGS"].public_url.rstrip("/") + "/tv/?token=" + portal_token(terminal)
