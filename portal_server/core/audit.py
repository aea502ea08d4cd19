"""The append-only, hash-chained audit trail.

Every row stores the hash of the previous row and its own hash over (previous hash, its
fields). ``verify()`` walks the chain: an edited row breaks its own hash, a deleted row
breaks the sequence and the next row's link. Appends are serialised by locking the single
``audit_head`` row, so the chain stays linear under concurrent writers.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
from dataclasses import dataclass

from flask import current_app, g, has_request_context, request
from sqlalchemy import DateTime, Integer, String, Text, event, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from . import clock
from .db import Base, session, utcnow

GENESIS = "0" * 64


class AuditEvent(Base):
    __tablename__ = "audit_events"

    #: Sequence number; contiguous from 1 (a gap means a deleted row).
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    #: Username, "terminal:<serial>", "system" or "cli".
    actor: Mapped[str] = mapped_column(String(80))
    #: Dotted verb, e.g. content.approve, feedback.escalate, pii.unmask.
    action: Mapped[str] = mapped_column(String(64), index=True)
    object_type: Mapped[str] = mapped_column(String(32))
    object_id: Mapped[str] = mapped_column(String(64), index=True)
    #: Region code the action concerns (for scoped audit views).
    region_code: Mapped[str | None] = mapped_column(String(12))
    #: Canonical JSON of the details.
    detail: Mapped[str] = mapped_column(Text, default="{}")
    ip: Mapped[str | None] = mapped_column(String(45))
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditHead(Base):
    """One row: the last sequence number and hash (the lock that serialises appends)."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, default=0)
    hash: Mapped[str] = mapped_column(String(64), default=GENESIS)


def _key() -> bytes:
    """The chain's HMAC key: derived from the secret key, never stored in the database."""
    return current_app.config["SETTINGS"].audit_key


def _digest(prev_hash: str, seq: int, at: dt.datetime, actor: str, action: str, object_type: str,
            object_id: str, region_code: str | None, detail: str, ip: str | None,
            key: bytes | None = None) -> str:
    at_utc = clock.utc(at)
    material = json.dumps([prev_hash, seq, at_utc.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), actor, action,
                           object_type, object_id, region_code, detail, ip],
                          ensure_ascii=False, separators=(",", ":"))
    # HMAC, not a plain hash: whoever can write the database cannot re-hash an edited chain.
    return hmac.new(key if key is not None else _key(), material.encode(), hashlib.sha256).hexdigest()


def current_actor() -> str:
    """Who is acting in this request: the staff user, the box, or 'system'."""
    if has_request_context():
        user = getattr(g, "user", None)
        if user is not None:
            return user.username
        terminal = getattr(g, "terminal", None)
        if terminal is not None:
            return f"terminal:{terminal.serial}"
    return getattr(g, "actor", "system") if has_request_context() else "system"


def record(action: str, object_type: str, object_id, region_code: str | None = None,
           actor: str | None = None, **detail) -> AuditEvent:
    """Append an event in the caller's transaction (it commits or rolls back with the change)."""
    sess = session()
    head = sess.scalar(select(AuditHead).where(AuditHead.id == 1).with_for_update())
    if head is None:
        head = AuditHead(id=1, seq=0, hash=GENESIS)
        sess.add(head)
        sess.flush()
    seq = head.seq + 1
    at = utcnow()
    ip = request.remote_addr if has_request_context() else None
    detail_json = json.dumps(detail, ensure_ascii=False, sort_keys=True, default=str)
    actor = actor or current_actor()
    digest = _digest(head.hash, seq, at, actor, action, object_type, str(object_id), region_code,
                     detail_json, ip)
    ev = AuditEvent(id=seq, at=at, actor=actor, action=action, object_type=object_type,
                    object_id=str(object_id), region_code=region_code, detail=detail_json, ip=ip,
                    prev_hash=head.hash, hash=digest)
    sess.add(ev)
    sess.execute(update(AuditHead).where(AuditHead.id == 1).values(seq=seq, hash=digest))
    sess.flush()
    return ev


@event.listens_for(Session, "before_flush")
def _append_only(sess, _ctx, _instances):
    """The ORM never updates or deletes audit rows."""
    for obj in list(sess.dirty) + list(sess.deleted):
        if isinstance(obj, AuditEvent):
            raise RuntimeError("audit_events is append-only")


@dataclass
class VerifyResult:
    ok: bool
    count: int
    problem: str | None = None
    at_id: int | None = None


def verify() -> VerifyResult:
    """Walk the whole chain; report the first broken row."""
    prev = GENESIS
    expected = 1
    count = 0
    for ev in session.execute(select(AuditEvent).order_by(AuditEvent.id)).scalars().yield_per(2000):
        if ev.id != expected:
            return VerifyResult(False, count, f"row {expected} is missing (next is {ev.id})", expected)
        if ev.prev_hash != prev:
            return VerifyResult(False, count, f"row {ev.id} does not link to row {ev.id - 1}", ev.id)
        digest = _digest(ev.prev_hash, ev.id, ev.at, ev.actor, ev.action, ev.object_type,
                         ev.object_id, ev.region_code, ev.detail, ev.ip)
        if digest != ev.hash:
            return VerifyResult(False, count, f"row {ev.id} was altered (hash mismatch)", ev.id)
        prev = ev.hash
        expected += 1
        count += 1
    head = session.get(AuditHead, 1)
    if head is not None and (head.seq != count or head.hash != prev):
        return VerifyResult(False, count,
                            f"the chain ends at row {count} but the head records row {head.seq}", count)
    return VerifyResult(True, count)


def rekey(old_key: bytes, new_key: bytes) -> int:
    """Re-compute the whole chain with ``new_key`` after checking it with ``old_key`` (secret
    rotation; flushes, caller commits). Raises ValueError when the chain is broken."""
    prev_old = prev_new = GENESIS
    n = 0
    rows = list(session.execute(select(AuditEvent).order_by(AuditEvent.id)).scalars())
    for ev in rows:
        args = (ev.id, ev.at, ev.actor, ev.action, ev.object_type, ev.object_id, ev.region_code, ev.detail, ev.ip)
        if ev.prev_hash != prev_old or _digest(prev_old, *args, key=old_key) != ev.hash:
            raise ValueError(f"audit row {ev.id} does not verify with the old key: nothing re-keyed")
        prev_old = ev.hash
        new_hash = _digest(prev_new, *args, key=new_key)
        session.execute(update(AuditEvent).where(AuditEvent.id == ev.id).values(prev_hash=prev_new, hash=new_hash))
        prev_new = new_hash
        n += 1
    session.execute(update(AuditHead).where(AuditHead.id == 1).values(hash=prev_new))
    session.flush()
    return n


def events_for(object_type: str, object_id) -> list[AuditEvent]:
    """The trail of one object, oldest first."""
    return list(session.scalars(select(AuditEvent).where(AuditEvent.object_type == object_type,
                                                         AuditEvent.object_id == str(object_id))
                                .order_by(AuditEvent.id)))
