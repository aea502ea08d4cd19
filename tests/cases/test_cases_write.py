"""Applying from the TV under load: checks and look-ups run before the database's write lock is
taken, concurrent retries give one case, and deadlines follow the State Council's holidays."""
from __future__ import annotations

import sqlite3
import threading
import time

import time_machine
from sqlalchemy import func, select

from portal_server.cases.models import Case
from portal_server.core.db import session

from .conftest import LOW_INCOME

BOX = "CTV-HH-000001"


@time_machine.travel("2026-09-29 10:00:00+08:00", tick=True)
def test_a_case_applied_before_national_day_is_due_after_the_holiday(client, box):
    """最低生活保障 promises 25 working days. From Tuesday 29 September: 30 Sep, then 1–7 October
    are off, Saturday 10 October is a make-up working day → due Monday 9 November (on the plain
    Mon–Fri count it would have been Tuesday 3 November)."""
    r = client.post("/api/v1/cases", json={"service_code": LOW_INCOME, "channel": "tv"}, headers=box(BOX))
    assert r.status_code == 201, r.get_data(as_text=True)
    assert r.get_json()["deadline"].startswith("2026-11-09T18:00:00+08:00")


def _post_in_thread(client, body, headers, out):
    def run():
        out.append(client.post("/api/v1/cases", json=body, headers=headers))
    t = threading.Thread(target=run)
    t.start()
    return t


def test_a_refused_or_retried_application_does_not_wait_for_the_write_lock(app, client, box):
    """While another writer holds SQLite's lock, a box asking for an unknown item gets its 404 and
    a retry gets its case at once (nothing of theirs waits on the lock); a new application waits
    and is filed when the lock is released."""
    me = box(BOX)
    first = client.post("/api/v1/cases", json={"service_code": LOW_INCOME, "channel": "tv", "idempotency_key": "w1"},
                        headers=me)
    assert first.status_code == 201
    session.remove()
    db_path = app.config["SETTINGS"].database_url.split("///", 1)[1]
    other = sqlite3.connect(db_path, isolation_level=None, timeout=30)
    other.execute("BEGIN IMMEDIATE")
    try:
        out: list = []
        t = _post_in_thread(app.test_client(), {"service_code": "nope", "channel": "tv"}, me, out)
        t.join(5)
        assert not t.is_alive() and out[0].status_code == 404
        t = _post_in_thread(app.test_client(), {"service_code": LOW_INCOME, "channel": "tv", "idempotency_key": "w1"},
                            me, out)
        t.join(5)
        assert not t.is_alive() and out[1].status_code == 200 and out[1].get_json()["id"] == first.get_json()["id"]
        t = _post_in_thread(app.test_client(), {"service_code": LOW_INCOME, "channel": "tv", "idempotency_key": "w2"},
                            me, out)
        time.sleep(1.0)
        assert t.is_alive()   # the new case waits for the writer ahead of it
    finally:
        other.execute("ROLLBACK")
        other.close()
    t.join(20)
    assert out[2].status_code == 201


def test_concurrent_retries_of_one_application_give_one_case(any_db_app):
    """Eight copies of the same TV application at once (a box retrying on a slow network): one case."""
    from tests.conftest import terminal_token

    me = {"X-Terminal-Token": terminal_token(BOX)}
    body = {"service_code": LOW_INCOME, "channel": "tv", "idempotency_key": "storm"}
    out: list = []
    start = threading.Barrier(8)

    def run():
        c = any_db_app.test_client()
        start.wait()
        out.append(c.post("/api/v1/cases", json=body, headers=me))
    threads = [threading.Thread(target=run) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(r.status_code for r in out) == [200] * 7 + [201], [r.get_data(as_text=True)[:200] for r in out]
    assert len({r.get_json()["id"] for r in out}) == 1
    n = session.scalar(select(func.count()).select_from(Case).where(Case.idempotency_key.like("%:storm")))
    assert n == 1
    session.remove()
