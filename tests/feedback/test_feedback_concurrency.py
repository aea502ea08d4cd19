"""Hundreds of orders filed in parallel over real HTTP, each retried: every one stored exactly once."""
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from sqlalchemy import func, select

from portal_server.core.db import session
from portal_server.feedback.models import WorkOrder

ORDERS = 240
BOXES = ["CTV-HH-000001", "CTV-HH-000002", "CTV-HH-000003", "CTV-HH-000004",
         "CTV-HH-010001", "CTV-HH-010002"]


@pytest.fixture
def any_db_server(any_db_app):
    """Like ``live_server`` but on SQLite and on PostgreSQL (where the unique constraint races)."""
    import threading

    from werkzeug.serving import make_server

    from portal_server import stack

    port = stack.free_port()
    server = make_server("127.0.0.1", port, any_db_app, threaded=True)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{port}"
    server.shutdown()


def test_parallel_submissions_with_retries_store_each_order_once(any_db_server, any_db_app):
    from tests.conftest import terminal_token

    live_server = any_db_server
    # A load test: 120 requests per box, far over a family's rate limit (core.limits).
    any_db_app.config["RATE_LIMITS"] = {"box_write": "100000 per minute"}

    tokens = {s: terminal_token(s) for s in BOXES}
    before = session.scalar(select(func.count()).select_from(WorkOrder))
    # SQLite transactions start with BEGIN IMMEDIATE: never hold one while the server writes.
    session.remove()
    jobs = []
    for i in range(ORDERS):
        serial = BOXES[i % len(BOXES)]
        # Each order is sent three times: two at once (a double press) and a late retry.
        jobs += [(serial, f"conc-{i}")] * 3

    def post(job):
        serial, key = job
        s = requests.Session()
        for attempt in range(5):  # a client retries on connection trouble like a box would
            try:
                r = s.post(live_server + "/api/v1/feedback", timeout=60,
                           json={"category": "sanitation", "content": key, "idempotency_key": key},
                           headers={"X-Terminal-Token": tokens[serial]})
                return serial, key, r.status_code, r.json()
            except requests.ConnectionError:
                if attempt == 4:
                    raise

    with ThreadPoolExecutor(max_workers=24) as pool:
        results = list(pool.map(post, jobs))

    assert all(code in (200, 201) for _, _, code, _ in results), \
        {code for _, _, code, _ in results}
    by_key: dict[str, set] = {}
    for serial, key, code, body in results:
        by_key.setdefault((serial, key), set()).add(body["id"])
    assert len(by_key) == ORDERS
    assert all(len(ids) == 1 for ids in by_key.values()), "a retry made a second order"
    assert sum(1 for *_, code, _ in results if code == 201) == ORDERS

    session.remove()
    after = session.scalar(select(func.count()).select_from(WorkOrder))
    assert after - before == ORDERS
    stored = session.execute(select(WorkOrder.idempotency_key, func.count())
                             .where(WorkOrder.idempotency_key.like("conc-%"))
                             .group_by(WorkOrder.idempotency_key)).all()
    assert len(stored) == ORDERS and all(n == 1 for _, n in stored)
    codes = session.scalars(select(WorkOrder.code).where(WorkOrder.idempotency_key.like("conc-%"))).all()
    assert len(set(codes)) == ORDERS
