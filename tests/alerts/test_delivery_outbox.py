"""Alert delivery through the outbox (DESIGN §1): a rolled-back or failed commit sends nothing (no
MQTT message seen by a real mosquitto_sub, no live set, no stale TV page mark, no job); an alert the
broker or Redis missed is redelivered by the sweep; acks count for an active alert even when Redis
lost its live set."""
from __future__ import annotations

import time

import pytest
from sqlalchemy import event

from portal_server.alerts import operations as ops
from portal_server.core import jobs, outbox, redis as core_redis
from portal_server.core.accounts import user_by_username
from portal_server.core.db import session

from tests.device_fleet.conftest import ingest  # noqa: F401  (the ingest service in this process)

from .conftest import V001, messages, send, sub, sub_bg
from .test_acks_tv import pub_ack, wait_for

BODY = {"regions": [V001], "category": "Met", "event": "山洪灾害预警", "severity": "Moderate",
        "urgency": "Expected", "certainty": "Likely", "headline": "山洪预警：请向高处转移"}


def _queued_jobs() -> int:
    return sum(jobs.queue(name).count for name in jobs.QUEUES)


@pytest.mark.parametrize("how", ["rollback", "failed commit"])
def test_a_rolled_back_alert_sends_nothing(app, demo_box, port, how):
    serial, secret, _ = demo_box("CTV-HH-000001")
    live = sub_bg(port, serial, secret, f"ctv/v1/region/{V001}/alert", wait=3)
    time.sleep(0.7)  # subscribed before the write
    alert, _ = ops.create(dict(BODY), user_by_username("v001-reviewer"))
    aid = alert.id
    assert "portal_server.alerts.tasks:deliver" in [e.path for e in outbox.pending()]
    if how == "rollback":
        session.rollback()
    else:
        def boom(_sess):
            raise RuntimeError("the database refused the commit")
        event.listen(session(), "before_commit", boom)
        try:
            with pytest.raises(RuntimeError):
                session.commit()
        finally:
            event.remove(session(), "before_commit", boom)
        session.rollback()
    assert outbox.pending() == []
    out, _ = live.communicate(timeout=10)
    assert messages(out) == []  # nothing reached the box
    r = core_redis.client()
    assert not r.sismember(ops.LIVE_KEY, str(aid)) and not r.hexists(ops.DELIVERED_KEY, V001)
    assert _queued_jobs() == 0
    session.commit()  # the next commit of this session hands over nothing left from before
    assert sub(port, serial, secret, f"ctv/v1/region/{V001}/alert", wait=1).stdout == ""


def test_the_sweep_redelivers_what_the_broker_lost(app, client, auth, demo_box, port):
    serial, secret, _ = demo_box("CTV-HH-000003")
    a = send(client, auth).get_json()
    assert core_redis.client().hget(ops.DELIVERED_KEY, V001).decode().startswith(f"{a['id']}|")
    # Mosquitto crashed before saving its retained store; Redis still says the region got the alert
    # (the sweep asks the broker, not Redis) but lost its live set.
    from portal_server.core import mqtt
    mqtt.publish(f"ctv/v1/region/{V001}/alert", b"", retain=True)
    core_redis.client().delete(ops.LIVE_KEY)
    assert sub(port, serial, secret, f"ctv/v1/region/{V001}/alert", wait=1).stdout == ""
    result = jobs.run("portal_server.alerts.tasks:sweep")
    assert V001 in result["redelivered"]
    [(payload, retained, _e)] = messages(sub(port, serial, secret, f"ctv/v1/region/{V001}/alert").stdout)
    assert retained and payload["id"] == a["id"]
    assert core_redis.client().sismember(ops.LIVE_KEY, str(a["id"]))
    # Up to date now: the next sweep sends nothing.
    assert jobs.run("portal_server.alerts.tasks:sweep")["redelivered"] == []


def test_acks_count_when_redis_lost_the_live_set(app, client, auth, ingest, demo_box, port, box):  # noqa: F811
    a = send(client, auth).get_json()
    core_redis.client().delete(ops.LIVE_KEY)   # Redis restarted empty
    r = client.post(f"/api/v1/alerts/{a['id']}/ack", headers=box("CTV-HH-000001"))
    assert r.status_code == 200 and r.get_json()["first"] is True
    core_redis.client().delete(ops.LIVE_KEY)
    serial, secret, _ = demo_box("CTV-HH-000002")
    assert pub_ack(port, serial, secret, a["id"]).returncode == 0   # through Mosquitto and the ingest
    h = auth.headers("noc")
    assert wait_for(lambda: client.get(f"/api/v1/alerts/{a['id']}", headers=h).get_json()["acked"] == 2)
    # An ended alert still counts nothing.
    client.post(f"/api/v1/alerts/{a['id']}/cancel", headers=auth.headers("v001-reviewer"))
    assert client.post(f"/api/v1/alerts/{a['id']}/ack",
                       headers=box("CTV-HH-000003")).status_code == 409

