"""SQLite writers queue in core.db.WriterQueue (threads on a lock, processes on a flock) instead of
SQLite's busy handler, and give the queue back when their transaction ends."""
from __future__ import annotations

import subprocess
import sys
import threading
import time

from sqlalchemy import text

from portal_server.core import db


def test_the_queue_lets_one_writer_in_at_a_time_and_gives_up_after_its_timeout(tmp_path):
    q = db.WriterQueue(str(tmp_path / "x.db"), timeout=0.3)
    fd = q.acquire()
    assert fd is not None
    t0 = time.monotonic()
    assert q.acquire() is None and time.monotonic() - t0 >= 0.3   # waited, then left it to SQLite
    got = []
    t = threading.Thread(target=lambda: got.append(q.acquire()))
    t.start()
    time.sleep(0.05)
    q.release(fd)
    t.join(2)
    assert got and got[0] is not None
    q.release(got[0])


def test_another_process_holding_the_flock_makes_writers_wait(tmp_path):
    q = db.WriterQueue(str(tmp_path / "x.db"), timeout=5)
    holder = subprocess.Popen([sys.executable, "-c", (
        "import fcntl, os, sys, time\n"
        f"fd = os.open({q.path!r}, os.O_RDWR | os.O_CREAT)\n"
        "fcntl.flock(fd, fcntl.LOCK_EX); print('held', flush=True); time.sleep(0.5)\n")],
        stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    t0 = time.monotonic()
    fd = q.acquire()
    assert fd is not None and time.monotonic() - t0 > 0.2
    q.release(fd)
    holder.wait(5)


def test_a_write_transaction_takes_the_queue_and_commit_gives_it_back(tmp_path):
    eng = db.make_engine(f"sqlite:///{tmp_path / 'w.db'}")
    with eng.connect() as c:
        c.exec_driver_sql("CREATE TABLE t (x INTEGER)")
        c.commit()
    waited = []

    def second_writer():
        t0 = time.monotonic()
        with eng.connect() as c2:
            c2.execute(text("INSERT INTO t VALUES (2)"))
            c2.commit()
        waited.append(time.monotonic() - t0)
    with eng.connect() as c1:
        c1.execute(text("INSERT INTO t VALUES (1)"))       # BEGIN IMMEDIATE: c1 holds the queue
        t = threading.Thread(target=second_writer)
        t.start()
        time.sleep(0.4)
        assert t.is_alive()
        c1.commit()
    t.join(5)
    assert waited and waited[0] >= 0.3
    with eng.connect() as c:
        assert c.execute(text("SELECT count(*) FROM t")).scalar() == 2
        c.rollback()
    eng.dispose()
