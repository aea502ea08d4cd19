"""The alert write and read paths on SQLite and PostgreSQL: scoped listing (a prefix query both ways),
acks persisted from Redis, history for the TV."""
from __future__ import annotations

from portal_server.alerts import operations as ops, queries
from portal_server.core.db import session

from tests.conftest import AuthActions

from .conftest import CITY, TOWN01, V001, V002


def test_alerts_on_sqlite_and_postgresql(any_db_app):
    client = any_db_app.test_client()
    auth = AuthActions(client, any_db_app.config["SETTINGS"].demo_password)
    body = {"category": "Fire", "severity": "Minor", "urgency": "Expected", "certainty": "Observed",
            "headline": "山火预警"}
    town = client.post("/api/v1/alerts", json=dict(body, regions=[TOWN01]), headers=auth.headers("town01-reviewer"))
    other = client.post("/api/v1/alerts", json=dict(body, regions=[V002]), headers=auth.headers("noc"))
    assert town.status_code == 201 and other.status_code == 201
    tid = town.get_json()["id"]
    # A village reviewer sees the town's alert (above it) but not the other village's.
    mine = client.get("/api/v1/alerts?status=active", headers=auth.headers("v001-reviewer")).get_json()
    assert [i["id"] for i in mine["items"]] == [tid]
    assert client.get(f"/api/v1/alerts/{other.get_json()['id']}", headers=auth.headers("v001-reviewer")).status_code == 404
    assert ops.record_ack(tid, "CTV-HH-000001") is True
    assert ops.persist_live_acks() == 1 and ops.persist_live_acks() == 0
    session.commit()
    r = client.post(f"/api/v1/alerts/{tid}/cancel", headers=auth.headers("city-reviewer"))
    assert r.status_code == 200
    d = client.get(f"/api/v1/alerts/{tid}", headers=auth.headers("noc")).get_json()
    assert d["acked"] == 1 and d["targeted"] == 36 and "CTV-HH-000001" not in d["unacked"]
    assert queries.history_for_region(V001)[0]["headline"] == "山火预警"
    assert queries.active_for_region_chain([CITY, TOWN01, V001]) == []
