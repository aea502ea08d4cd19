"""Acks (published by boxes through the real broker and ingest, or from the TV portal), the delivery
figures per village, what the TV portal shows, the history, the command line."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from portal_server.affairs import queries as affairs_queries
from portal_server.alerts import queries
from portal_server.core.regions import region_by_code

from tests.device_fleet.conftest import ingest  # noqa: F401  (the ingest service in this process)

from .conftest import CITY, TOWN01, V001, V002, messages, send, sub


def wait_for(fn, timeout=8.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = fn()
        if v:
            return v
        time.sleep(0.1)
    return fn()


def pub_ack(port, serial, secret, alert_id):
    """mosquitto_pub as the box: its ack on its own topic."""
    return subprocess.run(["mosquitto_pub", "-p", port, "-u", serial, "-P", secret, "-i", serial,
                           "-t", f"ctv/v1/dev/{serial}/ack", "-q", "1",
                           "-m", json.dumps({"kind": "alert", "id": str(alert_id), "ok": True, "ts": int(time.time())})],
                          capture_output=True, text=True, timeout=10)


def test_acks_published_by_boxes_move_the_figures(app, client, auth, ingest, demo_box, port):  # noqa: F811
    a = send(client, auth).get_json()
    h = auth.headers("noc")
    before = client.get(f"/api/v1/alerts/{a['id']}", headers=h).get_json()
    assert before["targeted"] == 5 and before["acked"] == 0  # 4 households + the village hall
    assert before["unacked"] == ["CTV-HH-000001", "CTV-HH-000002", "CTV-HH-000003", "CTV-HH-000004", "CTV-VIL-001"]
    serial, secret, _ = demo_box("CTV-HH-000002")
    assert pub_ack(port, serial, secret, a["id"]).returncode == 0
    after = wait_for(lambda: (lambda j: j["acked"] == 1 and j)(
        client.get(f"/api/v1/alerts/{a['id']}", headers=h).get_json()))
    assert after and "CTV-HH-000002" not in after["unacked"] and len(after["unacked"]) == 4
    assert after["villages"] == [{"code": V001, "name": "东河村", "targeted": 5, "acked": 1, "unacked": 4}]
    # The same ack again, and an ack for an alert that does not exist, change nothing.
    pub_ack(port, serial, secret, a["id"])
    pub_ack(port, serial, secret, 99999)
    time.sleep(0.5)
    assert client.get(f"/api/v1/alerts/{a['id']}", headers=h).get_json()["acked"] == 1
    from portal_server.core import redis as core_redis
    assert not core_redis.client().exists("ctv:alert:99999:acks")
    # At the end the acks are kept in the database (Redis is only the hot path).
    client.post(f"/api/v1/alerts/{a['id']}/cancel", headers=auth.headers("v001-reviewer"))
    assert not core_redis.client().exists(f"ctv:alert:{a['id']}:acks")
    ended = client.get(f"/api/v1/alerts/{a['id']}", headers=h).get_json()
    assert ended["acked"] == 1 and "CTV-HH-000002" not in ended["unacked"]


def test_a_town_alert_counts_every_village_and_the_town_hall(app, client, auth):
    a = send(client, auth, user="town01-reviewer", regions=[TOWN01]).get_json()
    d = client.get(f"/api/v1/alerts/{a['id']}", headers=auth.headers("noc")).get_json()
    assert d["targeted"] == 7 * 5 + 1  # 7 villages × (4 households + hall) + CTV-TOWN-01
    assert [v["code"] for v in d["villages"]] == [TOWN01] + [f"990101001{n:03d}" for n in range(1, 8)]
    # A village handler sees only their village's boxes of it.
    mine = client.get(f"/api/v1/alerts/{a['id']}", headers=auth.headers("v001-handler")).get_json()
    assert mine["targeted"] == 5 and all(s in ("CTV-VIL-001",) or s.startswith("CTV-HH-00000") for s in mine["unacked"])


def test_tv_portal_lists_and_acks_the_alerts_of_its_box(app, client, auth, box):
    city = send(client, auth, user="noc", regions=[CITY], headline="全市停水通知", severity="Minor").get_json()
    mine = send(client, auth, headline="东河村山洪预警").get_json()
    other = send(client, auth, user="noc", regions=[V002], headline="东岭村预警").get_json()
    hdr = box("CTV-HH-000001")
    items = client.get("/api/v1/terminal/alerts", headers=hdr).get_json()["items"]
    assert [i["id"] for i in items] == [mine["id"], city["id"]]
    shown = queries.active_for_region_chain(["990100000000", TOWN01, V001])
    assert [i["id"] for i in shown] == [mine["id"], city["id"]]
    assert set(shown[0]) >= {"id", "severity", "urgency", "headline", "description", "instruction", "expires", "display",
                             "cap_url", "category", "event", "sent_at", "audio_url"}
    assert shown[0]["sent_at"].endswith("+08:00")
    r = client.post(f"/api/v1/alerts/{mine['id']}/ack", headers=hdr)
    assert r.status_code == 200 and r.get_json()["first"] is True
    assert client.post(f"/api/v1/alerts/{mine['id']}/ack", headers=hdr).get_json()["first"] is False
    assert client.post(f"/api/v1/alerts/{other['id']}/ack", headers=hdr).status_code == 403
    assert client.post(f"/api/v1/alerts/{mine['id']}/ack").status_code == 401
    d = client.get(f"/api/v1/alerts/{mine['id']}", headers=auth.headers("noc")).get_json()
    assert d["acked"] == 1 and "CTV-HH-000001" not in d["unacked"]
    client.post(f"/api/v1/alerts/{mine['id']}/cancel", headers=auth.headers("v001-reviewer"))
    assert [i["id"] for i in queries.active_for_region_chain(["990100000000", TOWN01, V001])] == [city["id"]]
    assert client.post(f"/api/v1/alerts/{mine['id']}/ack", headers=hdr).status_code == 409
    # History: the village's own and the city's, newest first, not the other village's.
    hist = queries.history_for_region(V001)
    assert [h["headline"] for h in hist][:2] == ["东河村山洪预警", "全市停水通知"]
    assert "东岭村预警" not in [h["headline"] for h in hist]
    assert len(hist) == 5  # and the demo city's past alerts of the village and the city
    assert queries.history_for_region(V001, limit=1) == hist[:1]
    assert hist[0]["status"] == "cancelled"
    safety = affairs_queries.alert_history(region_by_code(V001))
    assert safety == [{k: h[k] for k in ("headline", "severity", "event", "status", "sent_at")} for h in hist]


def test_cli_sends_an_alert(app, client, auth, demo_box, port):
    settings = app.config["SETTINGS"]
    env = dict(os.environ, COMMUNITV_DATA_DIR=str(settings.data_dir), COMMUNITV_DATABASE_URL=settings.database_url,
               COMMUNITV_REDIS_URL=settings.redis_url, COMMUNITV_MQTT_URL=settings.mqtt_url,
               COMMUNITV_SECRET_KEY=app.config["SECRET_KEY"])
    from portal_server.core.db import session
    session.remove()
    r = subprocess.run([sys.executable, "-m", "portal_server.cli", "alerts", "send", "--region", V001,
                        "--template", "typhoon", "--urgency", "Immediate", "--user", "v001-reviewer"],
                       env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "active" in r.stdout and "5 boxes targeted" in r.stdout
    alert_id = int(r.stdout.split()[1])
    serial, secret, _ = demo_box("CTV-HH-000001")
    [(payload, retained, _e)] = messages(sub(port, serial, secret, f"ctv/v1/region/{V001}/alert").stdout)
    assert retained and payload["id"] == alert_id and payload["headline"].startswith("台风预警")
    a = client.get(f"/api/v1/alerts/{alert_id}", headers=auth.headers("noc")).get_json()
    assert a["created_by"] == "v001-reviewer" and a["needs_confirmation"] is True
    bad = subprocess.run([sys.executable, "-m", "portal_server.cli", "alerts", "send", "--region", V002,
                          "--template", "fire", "--user", "v001-reviewer"], env=env, capture_output=True, text=True,
                         timeout=60)
    assert bad.returncode != 0 and V002 in bad.stderr
