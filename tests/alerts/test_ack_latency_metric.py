"""Operators see how long boxes take to acknowledge an alert: acks stored from Redis feed the
``ctv_alert_ack_seconds`` histogram on /metrics (the Grafana dashboard's p50/p99 panel)."""
from __future__ import annotations

import re
import time

from portal_server.alerts import operations as ops
from portal_server.core.db import session

from .conftest import send


def _count(text: str) -> float:
    m = re.search(r"^ctv_alert_ack_seconds_count ([0-9.e+]+)$", text, re.M)
    return float(m.group(1)) if m else 0.0


def test_stored_acks_feed_the_latency_histogram(app, client, auth):
    before = _count(client.get("/metrics").get_data(as_text=True))
    r = send(client, auth)
    assert r.status_code in (200, 201), r.get_data(as_text=True)
    alert_id = r.get_json()["id"]
    session.remove()
    for serial in ("CTV-HH-000001", "CTV-HH-000002", "CTV-VIL-001"):
        assert ops.record_ack(alert_id, serial, time.time()) is True
    assert ops.persist_acks(alert_id) == 3
    session.commit()
    assert ops.persist_acks(alert_id) == 0        # stored once, observed once
    text = client.get("/metrics").get_data(as_text=True)
    assert _count(text) == before + 3
    assert re.search(r'^ctv_alert_ack_seconds_bucket\{le="5.0"\} ([0-9.]+)$', text, re.M)
