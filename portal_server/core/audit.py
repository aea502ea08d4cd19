"""The append-only, keyed (HMAC) hash-chained audit trail.

Appending never waits for another writer: ``record()`` inserts a row carrying its own HMAC
(``mac``, over its fields) in the caller's transaction and takes no lock. A sealing job
(``seal()``, every few seconds in the worker, and before ``verify``/``rekey``) then chains the
rows in the order they committed: each sealed row gets the next ``seq`` (contiguous from 1),
the hash of the previous sealed row and its own hash over (previous hash, seq, its fields).
Only sealers lock the single ``audit_head`` row, so writers of the application never queue on
each other for the audit (they did when every append locked the head: the head row serialised
every audited write on PostgreSQL until its commit).

``verify()`` walks the chain by ``seq`` (an edited row breaks its hash, a deleted row leaves a
gap in ``seq`` or a head pointing past the end) and checks every row not yet sealed against its
own HMAC (an edit is caught there too). The key is derived from the secret key and never stored
in the database: whoever can write the database can neither re-hash an edited chain nor forge a
row's HMAC. What sealing cannot catch: an unsealed row deleted before the next seal (a window of
``SEAL_EVERY_S`` seconds).
"""
from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import logging
from dataclasses import dataclass

from flask import current_app, g, has_request_context, request
from sqlalchemy import (
    DateTime,
    Integer,
    String,
    Text,
    event,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.orm import Mapped, Session, mapped_column
from sqlalchemy.orm.attributes import set_committed_value

from . import clock
from .db import Base, session, utcnow
from .jobs import PeriodicJob, register_periodic

log = logging.getLogger(__name__)

GENESIS = "0" * 64
#: How often the worker seals new rows into the chain (the window in which an unsealed row's
#: deletion would go unnoticed).
SEAL_EVERY_S = 5
#: Rows sealed per transaction (a backlog is sealed in several short transactions).
SEAL_BATCH = 2000


class AuditEvent(Base):
    __tablename__ = "audit_events"

    #: Insertion order, given by the database (may have gaps on PostgreSQL: rolled-back appends).
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: Position in the sealed chain, contiguous from 1 (a gap means a deleted row); NULL until sealed.
    seq: Mapped[int | None] = mapped_column(Integer, unique=True)
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
    #: HMAC of the row's own fields, written at append: guards the row until it is sealed.
    mac: Mapped[str | None] = mapped_column(String(64))
    #: Hash of the previous sealed row (GENESIS for seq 1); NULL until sealed.
    prev_hash: Mapped[str | None] = mapped_column(String(64))
    #: HMAC over (prev_hash, seq, fields); NULL until sealed.
    hash: Mapped[str | None] = mapped_column(String(64))


class AuditHead(Base):
    """One row: the last sealed sequence number and hash (locked by sealers only)."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, default=0)
    hash: Mapped[str] = mapped_column(String(64), default=GENESIS)


def _key() -> bytes:
    """The chain's HMAC key: derived from the secret key, never stored in the database."""
    return current_app.config["SETTINGS"].audit_key


def _material(at: dt.datetime, actor: str, action: str, object_type: str, object_id: str,
              region_code: str | None, detail: str, ip: str | None) -> list:
    return [clock.utc(at).strftime("%Y-%m-%dT%H:%M:%S.%fZ"), actor, action, object_type, object_id,
            region_code, detail, ip]


def _hmac(material: list, key: bytes | None) -> str:
    text = json.dumps(material, ensure_ascii=False, separators=(",", ":"))
    # HMAC, not a plain hash: whoever can write the database cannot re-hash an edited chain.
    return hmac.new(key if key is not None else _key(), text.encode(), hashlib.sha256).hexdigest()


def _digest(prev_hash: str, seq: int, at: dt.datetime, actor: str, action: str, object_type: str,
            object_id: str, region_code: str | None, detail: str, ip: str | None,
            key: bytes | None = None) -> str:
    """The chained hash of a sealed row."""
    return _hmac([prev_hash, seq, *_material(at, actor, action, object_type, object_id, region_code, detail, ip)],
                 key)


def _row_mac(at, actor, action, object_type, object_id, region_code, detail, ip, key: bytes | None = None) -> str:
    """The HMAC of an unsealed row (marked "row" so it can never pass for a chain hash)."""
    return _hmac(["row", *_material(at, actor, action, object_type, object_id, region_code, detail, ip)], key)


def _fields(ev: AuditEvent) -> tuple:
    return (ev.at, ev.actor, ev.action, ev.object_type, ev.object_id, ev.region_code, ev.detail, ev.ip)


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
    """Append an event in the caller's transaction (it commits or rolls back with the change).
    No lock: the row carries its own HMAC until the sealing job chains it."""
    at = utcnow()
    ip = request.remote_addr if has_request_context() else None
    detail_json = json.dumps(detail, ensure_ascii=False, sort_keys=True, default=str)
    actor = actor or current_actor()
    ev = AuditEvent(at=at, actor=actor, action=action, object_type=object_type, object_id=str(object_id),
                    region_code=region_code, detail=detail_json, ip=ip)
    ev.mac = _row_mac(*_fields(ev))
    session.add(ev)
    session.flush()
    return ev


#: ``append``'s statement, built once (executed with a row of parameters).
_APPEND = insert(AuditEvent.__table__)


def append(action: str, object_type: str, object_id, region_code: str | None = None,
           actor: str | None = None, **detail) -> None:
    """``record`` as one INSERT statement (no ORM object, no flush) for hot paths that do not
    need the row back: the same fields and HMAC, in the caller's transaction."""
    at = utcnow()
    ip = request.remote_addr if has_request_context() else None
    detail_json = json.dumps(detail, ensure_ascii=False, sort_keys=True, default=str)
    actor = actor or current_actor()
    fields = (at, actor, action, object_type, str(object_id), region_code, detail_json, ip)
    # On the session's connection: no autoflush, no ORM statement handling (the row needs neither).
    session.connection().execute(_APPEND, {"at": at, "actor": actor, "action": action, "object_type": object_type,
                                           "object_id": str(object_id), "region_code": region_code,
                                           "detail": detail_json, "ip": ip, "mac": _row_mac(*fields)})


def _lock_head() -> AuditHead:
    head = session.scalar(select(AuditHead).where(AuditHead.id == 1).with_for_update())
    if head is None:
        head = AuditHead(id=1, seq=0, hash=GENESIS)
        session.add(head)
        session.flush()
    return head


def seal(key: bytes | None = None, limit: int | None = None) -> int:
    """Chain the committed rows not yet sealed, oldest first (flushes; the caller commits —
    ``seal_job`` commits batch by batch). A row whose HMAC does not match is left unsealed and
    logged: sealing must never bless an edited row (``verify`` names it). → rows sealed."""
    head = _lock_head()
    seq, prev = head.seq, head.hash
    rows = list(session.scalars(select(AuditEvent).where(AuditEvent.seq.is_(None))
                                .order_by(AuditEvent.id).limit(limit or SEAL_BATCH)))
    n = 0
    for ev in rows:
        fields = _fields(ev)
        if ev.mac is None or not hmac.compare_digest(ev.mac, _row_mac(*fields, key=key)):
            log.error("audit row %s does not match its HMAC: not sealed (run `communitv audit verify`)", ev.id)
            break
        seq += 1
        digest = _digest(prev, seq, *fields, key=key)
        session.execute(update(AuditEvent).where(AuditEvent.id == ev.id)
                        .values(seq=seq, prev_hash=prev, hash=digest)
                        .execution_options(synchronize_session=False))
        for name, value in (("seq", seq), ("prev_hash", prev), ("hash", digest)):
            set_committed_value(ev, name, value)   # the loaded object in step, not flagged as changed
        prev = digest
        n += 1
    if n:
        session.execute(update(AuditHead).where(AuditHead.id == 1).values(seq=seq, hash=prev)
                        .execution_options(synchronize_session=False))
        set_committed_value(head, "seq", seq)
        set_committed_value(head, "hash", prev)
    session.flush()
    return n


def seal_all(key: bytes | None = None) -> int:
    """Seal every row committed so far (in one transaction of the caller). → rows sealed."""
    total = 0
    while True:
        n = seal(key)
        total += n
        if n < SEAL_BATCH:
            return total


def seal_job() -> int:
    """The periodic job: seal in short transactions until nothing is left."""
    total = 0
    while True:
        n = seal()
        session.commit()
        total += n
        if n < SEAL_BATCH:
            return total


register_periodic(PeriodicJob("audit-seal", "portal_server.core.audit:seal_job", SEAL_EVERY_S, queue="high",
                              timeout_s=120))


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
    #: Rows committed but not sealed yet (each checked against its own HMAC).
    unsealed: int = 0


def verify() -> VerifyResult:
    """Walk the sealed chain by ``seq``, then check every unsealed row's HMAC; report the first
    broken row (``at_id`` is its ``id``)."""
    prev = GENESIS
    expected = 1
    count = 0
    for ev in session.execute(select(AuditEvent).where(AuditEvent.seq.is_not(None))
                              .order_by(AuditEvent.seq)).scalars().yield_per(2000):
        if ev.seq != expected:
            return VerifyResult(False, count, f"sealed row {expected} is missing (next is {ev.seq})", ev.id)
        if ev.prev_hash != prev:
            return VerifyResult(False, count, f"row {ev.id} does not link to the sealed row before it", ev.id)
        digest = _digest(ev.prev_hash, ev.seq, *_fields(ev))
        if ev.hash is None or not hmac.compare_digest(digest, ev.hash):
            return VerifyResult(False, count, f"row {ev.id} was altered (hash mismatch)", ev.id)
        prev = ev.hash
        expected += 1
        count += 1
    head = session.get(AuditHead, 1)
    if head is not None and (head.seq != count or head.hash != prev):
        return VerifyResult(False, count,
                            f"the chain ends at sealed row {count} but the head records row {head.seq}", count)
    unsealed, macs = 0, set()
    for ev in session.execute(select(AuditEvent).where(AuditEvent.seq.is_(None))
                              .order_by(AuditEvent.id)).scalars().yield_per(2000):
        if ev.mac is None or not hmac.compare_digest(ev.mac, _row_mac(*_fields(ev))):
            return VerifyResult(False, count + unsealed, f"row {ev.id} was altered (HMAC mismatch, not sealed yet)",
                                ev.id, unsealed)
        if ev.mac in macs:
            return VerifyResult(False, count + unsealed, f"row {ev.id} is a copy of another row", ev.id, unsealed)
        macs.add(ev.mac)
        unsealed += 1
    return VerifyResult(True, count + unsealed, unsealed=unsealed)


def rekey(old_key: bytes, new_key: bytes) -> int:
    """Re-compute the whole chain with ``new_key`` after checking it with ``old_key`` (secret
    rotation; seals what is pending first; flushes, caller commits). Raises ValueError when the
    chain is broken."""
    _lock_head()
    seal_all(old_key)
    if session.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.seq.is_(None))):
        raise ValueError("an audit row does not verify with the old key (HMAC): nothing re-keyed")
    prev_old = prev_new = GENESIS
    n = 0
    rows = list(session.execute(select(AuditEvent).order_by(AuditEvent.seq)).scalars())
    for ev in rows:
        fields = _fields(ev)
        if ev.prev_hash != prev_old or _digest(prev_old, ev.seq, *fields, key=old_key) != ev.hash:
            raise ValueError(f"audit row {ev.id} does not verify with the old key: nothing re-keyed")
        prev_old = ev.hash
        new_hash = _digest(prev_new, ev.seq, *fields, key=new_key)
        session.execute(update(AuditEvent).where(AuditEvent.id == ev.id)
                        .values(prev_hash=prev_new, hash=new_hash, mac=_row_mac(*fields, key=new_key))
                        .execution_options(synchronize_session=False))
        prev_new = new_hash
        n += 1
    session.execute(update(AuditHead).where(AuditHead.id == 1).values(hash=prev_new)
                    .execution_options(synchronize_session=False))
    session.flush()
    return n


def events_for(object_type: str, object_id) -> list[AuditEvent]:
    """The trail of one object, oldest first."""
    return list(session.scalars(select(AuditEvent).where(AuditEvent.object_type == object_type,
                                                         AuditEvent.object_id == str(object_id))
                                .order_by(AuditEvent.id)))
