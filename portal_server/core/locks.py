"""Named locks that hold across app hosts.

On PostgreSQL (the production layout, several app hosts) a lock is a session advisory lock held
on its own connection: every host sees it, and it goes when its holder's connection does (a
killed host frees it). On SQLite (one machine by definition) it is an flock on a file next to
the database. Periodic jobs are deduplicated in Redis (``core.jobs.run_due_periodic``).
"""
from __future__ import annotations

import fcntl
import hashlib
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import text

from portal_server.core import db


def lock_key(name: str) -> int:
    """A stable signed 64-bit key for ``pg_advisory_lock`` (the same on every host)."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


class Held:
    """A taken lock; ``release()`` (or leaving the ``with``) gives it back."""

    def __init__(self, release):
        self._release = release

    def release(self) -> None:
        if self._release:
            self._release()
            self._release = None


def try_acquire(name: str, lock_dir: Path) -> Held | None:
    """Take the lock ``name`` without waiting; None when another process (on any host) holds it."""
    eng = db.engine()
    if eng.dialect.name == "postgresql":
        conn = eng.connect()
        try:
            got = conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": lock_key(name)}).scalar()
            conn.commit()
        except Exception:
            conn.close()
            raise
        if not got:
            conn.close()
            return None

        def release():
            try:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": lock_key(name)})
                conn.commit()
            finally:
                conn.close()
        return Held(release)
    lock_dir.mkdir(parents=True, exist_ok=True)
    fh = open(lock_dir / (hashlib.sha256(name.encode()).hexdigest()[:24] + ".lock"), "w")  # noqa: SIM115 (held past this call)
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        fh.close()
        return None
    return Held(fh.close)


@contextmanager
def held(name: str, lock_dir: Path):
    """``with held(name, dir) as h:`` — h is None when someone else has it."""
    h = try_acquire(name, lock_dir)
    try:
        yield h
    finally:
        if h:
            h.release()
