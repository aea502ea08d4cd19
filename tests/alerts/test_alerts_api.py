"""Alerts through the API against the real broker: delivery to outside subscribers (retained, expiry),
cancel, scope, bad input, idempotency, the two-person rule, CAP 1.2 against the OASIS schema."""
from __future__ import annotations

import datetime as dt
import time

from sqlalchemy import select

from portal_server.alerts import cap
from portal_server.core.audit import AuditEvent
from portal_server.core.db import session

from .conftest import CITY, TOWN01, V001, V002, messages, send, sub, sub_bg


def test_village_subscribers_get_the_alert_live_and_retained(app, client, auth, demo_box, port):
    serial, secret, region = demo_box("CTV-HH-000001")
    assert region == V001
    topic = f"ctv/v1/region/{V001}/alert"
    live = sub_bg(port, serial, secret, topic)
    time.sleep(0.7)  # subscribed before the POST
    r = send(client, auth)
    assert r.status_code == 201, r.get_data(as_text=True)
    a = r.get_json()
    assert a["status"] == "active" and a["regions"] == [V001]
    out, err = live.communicate(timeout=15)
    [(payload, _retained, expiry)] = messages(out)
    assert payload["id"] == a["id"] and payload["headline"] == "山洪预警：请向高处转移"
    assert set(payload) >= {"id", "severity", "urgency", "headline", "description", "instruction", "expires",
                            "display", "cap_url", "ts"}
    assert payload["cap_url"].endswith(f"/api/v1/alerts/{a['id']}.cap") and payload["display"] == "fullscreen"
    assert 5 * 3600 < expiry <= 6 * 3600  # MQTT 5 message expiry = the alert's (default 6 h)
    # A box that boots later still gets it: retained.
    later = sub(port, serial, secret, f"ctv/v1/region/{V001}/#")
    [(payload, retained, _e)] = messages(later.stdout)
    assert retained and payload["id"] == a["id"]
    # A village-002 box sees nothing of it.
    s2, k2, _ = demo_box("CTV-HH-010001")
    assert sub(port, s2, k2, f"ctv/v1/region/{V002}/alert", wait=1).stdout == ""


def test_city_wide_alert_is_one_message_on_the_city_topic(app, client, auth, demo_box, port):
    serial, secret, _ = demo_box("CTV-HH-070001")
    auth.token("city-reviewer")  # logged in first: on a loaded machine a login takes seconds
    every = sub_bg(port, serial, secret, "ctv/v1/region/+/alert", count=100, wait=3)
    time.sleep(0.7)
    r = send(client, auth, user="city-reviewer", regions=[CITY, TOWN01, V001])
    assert r.status_code == 201
    out, _ = every.communicate(timeout=10)
    got = [(m[0]["id"]) for m in messages(out) if m[0]]
    assert got == [r.get_json()["id"]]  # the town and village are inside the city: one message
    assert r.get_json()["regions"] == [CITY]


def test_cancel_clears_the_retained_alert(app, client, auth, demo_box, port):
    serial, secret, _ = demo_box("CTV-HH-000002")
    a = send(client, auth).get_json()
    topic = f"ctv/v1/region/{V001}/alert"
    live = sub_bg(port, serial, secret, topic, count=2)  # the retained alert, then the clearing
    time.sleep(0.7)
    r = client.post(f"/api/v1/alerts/{a['id']}/cancel", json={"reason": "误报"}, headers=auth.headers("v001-reviewer"))
    assert r.status_code == 200 and r.get_json()["status"] == "cancelled"
    out, _ = live.communicate(timeout=15)
    msgs = messages(out)
    assert msgs[0][0]["id"] == a["id"] and msgs[1][0] is None  # empty payload: boxes clear it
    assert sub(port, serial, secret, topic, wait=1).stdout == ""  # nothing retained any more
    again = client.post(f"/api/v1/alerts/{a['id']}/cancel", headers=auth.headers("v001-reviewer"))
    assert again.status_code == 409


def test_editor_or_reviewer_of_village_001_cannot_alert_village_002(app, client, auth):
    r = send(client, auth, user="v001-reviewer", regions=[V002])
    assert r.status_code == 403 and V002 in r.get_json()["error"]["message"]
    r = send(client, auth, user="v001-reviewer", regions=[V001, V002])
    assert r.status_code == 403 and V002 in r.get_json()["error"]["message"]
    assert send(client, auth, user="v001-editor", regions=[V002]).status_code == 403
    assert send(client, auth, user="v001-editor", regions=[V001]).status_code == 403  # editors do not send alerts
    assert send(client, auth, user="grid-v001").status_code == 403
    assert send(client, auth, user="noc", regions=[V002]).status_code == 201
    from portal_server.alerts.models import Alert
    assert session.scalar(select(Alert).where(Alert.created_by == "v001-reviewer")) is None


def test_bad_input_is_a_400_naming_the_field(app, client, auth):
    past = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=5)).isoformat()
    cases = [({"headline": None}, "headline"), ({"headline": "  "}, "headline"), ({"expires": past}, "expires"),
             ({"expires": "tomorrow"}, "expires"), ({"severity": "Terrible"}, "severity"),
             ({"category": "Weather"}, "category"), ({"urgency": "Now"}, "urgency"),
             ({"certainty": "Sure"}, "certainty"), ({"regions": []}, "regions"), ({"regions": ["990199999999"]}, "regions"),
             ({"regions": "nonsense"}, "regions"), ({"template": "meteor"}, "template"),
             ({"severity": None}, "severity")]
    for change, field in cases:
        r = send(client, auth, **change) if change.get(list(change)[0]) is not None else \
            client.post("/api/v1/alerts", json={k: v for k, v in {
                "regions": [V001], "category": "Met", "severity": "Moderate", "urgency": "Expected",
                "certainty": "Likely", "headline": "x"}.items() if k != list(change)[0]},
                headers=auth.headers("v001-reviewer"))
        assert r.status_code == 400, (change, r.get_data(as_text=True))
        err = r.get_json()["error"]
        assert err["field"] == field and field in err["message"], (change, err)
    r = client.post("/api/v1/alerts", data="not json", headers=auth.headers("v001-reviewer"))
    assert r.status_code == 400
    assert client.get("/api/v1/alerts?status=nope", headers=auth.headers("noc")).status_code == 400


def test_same_idempotency_key_gives_the_same_alert(app, client, auth):
    before = client.get("/api/v1/alerts", headers=auth.headers("v001-reviewer")).get_json()["total"]
    a = send(client, auth, idempotency_key="flood-0203")
    b = send(client, auth, idempotency_key="flood-0203")
    assert a.status_code == 201 and b.status_code == 200 and a.get_json()["id"] == b.get_json()["id"]
    c = send(client, auth, idempotency_key="flood-0204")
    assert c.get_json()["id"] != a.get_json()["id"]
    listing = client.get("/api/v1/alerts", headers=auth.headers("v001-reviewer")).get_json()
    assert listing["total"] == before + 2


def test_template_fills_the_chinese_text(app, client, auth):
    r = client.post("/api/v1/alerts", json={"regions": [V001], "template": "water_cut"},
                    headers=auth.headers("v001-reviewer"))
    a = r.get_json()
    assert r.status_code == 201 and a["event"] == "停水通知" and "储备生活用水" in a["instruction"]
    assert a["severity"] == "Minor" and a["display"] == "banner"


def _events(alert_id):
    return [(e.action, e.actor) for e in session.scalars(
        select(AuditEvent).where(AuditEvent.object_type == "alert", AuditEvent.object_id == str(alert_id))
        .order_by(AuditEvent.id))]


def test_severe_alert_waits_for_a_second_person(app, client, auth, demo_box, port):
    serial, secret, _ = demo_box("CTV-HH-000003")
    r = send(client, auth, user="town01-reviewer", regions=[V001], severity="Severe", urgency="Expected")
    a = r.get_json()
    assert r.status_code == 201 and a["status"] == "pending_approval"
    assert sub(port, serial, secret, f"ctv/v1/region/{V001}/alert", wait=1).stdout == ""  # not sent
    own = client.post(f"/api/v1/alerts/{a['id']}/approve", headers=auth.headers("town01-reviewer"))
    assert own.status_code == 403
    narrow = client.post(f"/api/v1/alerts/{a['id']}/approve", headers=auth.headers("v002-editor"))
    assert narrow.status_code in (403, 404)
    ok = client.post(f"/api/v1/alerts/{a['id']}/approve", headers=auth.headers("v001-reviewer"))
    assert ok.status_code == 200 and ok.get_json()["status"] == "active"
    assert ok.get_json()["approved_by"] == "v001-reviewer"
    [(payload, retained, _)] = messages(sub(port, serial, secret, f"ctv/v1/region/{V001}/alert").stdout)
    assert retained and payload["id"] == a["id"]
    assert _events(a["id"]) == [("alert.create", "town01-reviewer"), ("alert.approve", "v001-reviewer")]


def test_immediate_severe_alert_goes_out_at_once_and_is_confirmed_afterwards(app, client, auth, demo_box, port):
    serial, secret, _ = demo_box("CTV-HH-000004")
    r = send(client, auth, user="town01-reviewer", regions=[TOWN01], severity="Extreme", urgency="Immediate")
    a = r.get_json()
    assert a["status"] == "active" and a["needs_confirmation"] is True
    [(payload, _r, _e)] = messages(sub(port, serial, secret, f"ctv/v1/region/{TOWN01}/alert").stdout)
    assert payload["id"] == a["id"]
    ok = client.post(f"/api/v1/alerts/{a['id']}/approve", headers=auth.headers("city-reviewer"))
    assert ok.get_json()["needs_confirmation"] is False and ok.get_json()["approved_by"] == "city-reviewer"
    assert client.post(f"/api/v1/alerts/{a['id']}/approve", headers=auth.headers("noc")).status_code == 409
    assert _events(a["id"]) == [("alert.create", "town01-reviewer"), ("alert.confirm", "city-reviewer")]


def test_rejected_alert_never_goes_out(app, client, auth):
    a = send(client, auth, user="city-reviewer", regions=[V001], severity="Severe").get_json()
    r = client.post(f"/api/v1/alerts/{a['id']}/reject", json={"reason": "信息不实"}, headers=auth.headers("noc"))
    assert r.get_json()["status"] == "rejected"
    assert client.post(f"/api/v1/alerts/{a['id']}/approve", headers=auth.headers("noc")).status_code == 409
    assert client.get(f"/api/v1/alerts/{a['id']}.cap").status_code == 404  # never public


def _valid(doc: bytes):
    errors = cap.validate(doc)
    assert not errors, errors
    from lxml import etree
    return etree.fromstring(doc)


NS = {"c": cap.NS}


def test_cap_alert_update_and_cancel_validate_against_the_oasis_schema(app, client, auth, demo_box, port):
    serial, secret, _ = demo_box("CTV-HH-000001")
    a = send(client, auth).get_json()
    r = client.get(f"/api/v1/alerts/{a['id']}.cap")
    assert r.status_code == 200 and r.mimetype == "application/cap+xml"
    root = _valid(r.data)
    assert root.findtext("c:msgType", namespaces=NS) == "Alert"
    assert root.findtext("c:info/c:headline", namespaces=NS) == "山洪预警：请向高处转移"
    assert root.findtext("c:info/c:area/c:geocode/c:value", namespaces=NS) == V001
    assert root.findtext("c:sent", namespaces=NS).endswith("+08:00")
    ident, sender, sent = (root.findtext(f"c:{k}", namespaces=NS) for k in ("identifier", "sender", "sent"))

    u = client.post(f"/api/v1/alerts/{a['id']}/update", json={"instruction": "水位继续上涨，请勿返回"},
                    headers=auth.headers("v001-reviewer"))
    assert u.status_code == 201
    new = u.get_json()
    assert new["msg_type"] == "Update" and new["references"] == a["id"] and new["headline"] == a["headline"]
    assert client.get(f"/api/v1/alerts/{a['id']}", headers=auth.headers("noc")).get_json()["status"] == "superseded"
    up = _valid(client.get(f"/api/v1/alerts/{new['id']}.cap").data)
    assert up.findtext("c:msgType", namespaces=NS) == "Update"
    assert up.findtext("c:references", namespaces=NS) == f"{sender},{ident},{sent}"
    # The boxes get the update on the same topic.
    [(payload, _r, _e)] = messages(sub(port, serial, secret, f"ctv/v1/region/{V001}/alert").stdout)
    assert payload["id"] == new["id"] and payload["instruction"] == "水位继续上涨，请勿返回"

    c = client.post(f"/api/v1/alerts/{new['id']}/cancel", headers=auth.headers("v001-reviewer")).get_json()
    doc = client.get(c["cancel_cap_url"].split("127.0.0.1:8000")[-1])
    cancel = _valid(doc.data)
    assert cancel.findtext("c:msgType", namespaces=NS) == "Cancel"
    up_ident = up.findtext("c:identifier", namespaces=NS)
    assert up_ident in cancel.findtext("c:references", namespaces=NS)
    assert client.get(f"/api/v1/alerts/{a['id']}/cancel.cap").status_code == 404  # the first was not cancelled


def test_cap_schema_rejects_a_broken_document():
    doc = cap.build(ident="x", sender="a@b", sent="2026-11-23T10:00:00+08:00", msg_type="Alert",
                    info={"category": "Met", "event": "e", "urgency": "Soon", "severity": "Severe",
                          "certainty": "Likely"})
    assert any("urgency" in e for e in cap.validate(doc))


def test_expired_alerts_are_cleared_by_the_sweep(app, client, auth, demo_box, port):
    from portal_server.alerts import tasks
    from portal_server.alerts.models import Alert
    serial, secret, _ = demo_box("CTV-HH-000001")
    auth.token("v001-reviewer")  # logged in first: on a loaded machine a login takes seconds
    soon = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=2)).isoformat()
    a = send(client, auth, expires=soon).get_json()
    [(payload, _r, expiry)] = messages(sub(port, serial, secret, f"ctv/v1/region/{V001}/alert").stdout)
    assert payload["id"] == a["id"] and expiry <= 2
    time.sleep(2.2)
    assert tasks.sweep()["expired"] == [a["id"]]
    session.remove()
    assert session.get(Alert, a["id"]).status == "expired"
    assert sub(port, serial, secret, f"ctv/v1/region/{V001}/alert", wait=1).stdout == ""


def test_two_live_alerts_on_one_region_cancelling_the_newer_restores_the_older(app, client, auth, demo_box, port):
    serial, secret, _ = demo_box("CTV-HH-000001")
    first = send(client, auth, headline="第一条").get_json()
    second = send(client, auth, headline="第二条").get_json()
    [(p, _r, _e)] = messages(sub(port, serial, secret, f"ctv/v1/region/{V001}/alert").stdout)
    assert p["id"] == second["id"]
    client.post(f"/api/v1/alerts/{second['id']}/cancel", headers=auth.headers("v001-reviewer"))
    [(p, _r, _e)] = messages(sub(port, serial, secret, f"ctv/v1/region/{V001}/alert").stdout)
    assert p["id"] == first["id"]


def test_openapi_documents_the_alert_endpoints(client):
    doc = client.get("/api/v1/openapi.json").get_json()
    assert {"/api/v1/alerts", "/api/v1/alerts/{alert_id}", "/api/v1/alerts/{alert_id}.cap",
            "/api/v1/alerts/{alert_id}/cancel", "/api/v1/alerts/{alert_id}/update"} <= set(doc["paths"])
    assert "regions" in doc["components"]["schemas"]["AlertIn"]["properties"]
