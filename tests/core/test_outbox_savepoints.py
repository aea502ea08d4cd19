"""A savepoint that rolls back (core.db.add_once losing a race to a retry, every ``begin_nested``)
undoes only its own part of the outbox: what the write queued before it is still handed over at
the commit (it was all dropped: SQLAlchemy's after_rollback fires for a savepoint too)."""
from __future__ import annotations

from sqlalchemy import text

from portal_server.core import outbox
from portal_server.core.db import session

CALLS: list[str] = []


def mark(name: str) -> None:
    CALLS.append(name)


def test_a_savepoint_rollback_keeps_what_was_queued_before_it(app):
    CALLS.clear()
    outbox.call("tests.core.test_outbox_savepoints:mark", "before")
    session.execute(text("SELECT 1"))
    sp = session.begin_nested()
    outbox.call("tests.core.test_outbox_savepoints:mark", "inside")
    sp.rollback()
    with session.begin_nested():  # a savepoint released: its part stays
        outbox.call("tests.core.test_outbox_savepoints:mark", "released")
    outbox.call("tests.core.test_outbox_savepoints:mark", "after")
    assert [e.args[0] for e in outbox.pending()] == ["before", "released", "after"]
    session.commit()
    assert CALLS == ["before", "released", "after"]


def test_a_transaction_ending_without_commit_hands_nothing_over(app):
    CALLS.clear()
    session.execute(text("SELECT 1"))  # an operation reads or flushes before it queues
    outbox.call("tests.core.test_outbox_savepoints:mark", "lost")
    session.close()   # a failed request's session is closed, not rolled back explicitly
    assert outbox.pending() == []
    session.commit()
    assert CALLS == []


def test_a_released_savepoint_hands_nothing_over_before_the_commit(app, tmp_path):
    """add_once's savepoint is released in the middle of a write: nothing may leave before the
    write commits (a rollback after it sent the notices all the same), and a file written before
    it still goes with a rollback."""
    CALLS.clear()
    session.execute(text("SELECT 1"))
    photo = tmp_path / "p" / "1.jpg"
    photo.parent.mkdir()
    photo.write_bytes(b"jpeg")
    outbox.file_written(photo, root=tmp_path)
    outbox.call("tests.core.test_outbox_savepoints:mark", "notice")
    with session.begin_nested():
        pass
    assert CALLS == [] and len(outbox.pending()) == 1
    session.rollback()
    assert CALLS == [] and not photo.exists() and not photo.parent.exists() and tmp_path.exists()
