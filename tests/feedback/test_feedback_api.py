"""The API walk of issue 5 and the bad-input rules."""
import json

from portal_server.core import audit


def test_walk_box_files_village_escalates_town_replies_box_rates_two(client, auth, box, act, file_order):
    filed = file_order("CTV-HH-000001", "water", content="村东头水井水泵坏了", callback=True,
                       idempotency_key="walk-1")
    assert filed["status"] == "submitted" and filed["code"].startswith("FK")
    oid = filed["id"]

    r = client.get(f"/api/v1/feedback/{oid}", headers=box("CTV-HH-000001"))
    assert r.status_code == 200
    assert r.get_json()["handler"] == {"level": "village", "code": "990101001001"}
    assert r.get_json()["handler_name"] == "东河村"

    assert act("v001-handler", oid, "accept").status_code == 200
    r = act("v001-handler", oid, "escalate")
    assert r.status_code == 200, r.get_data(as_text=True)
    assert r.get_json()["handler"]["code"] == "990101001000" and r.get_json()["status"] == "escalated"

    # The village cannot act any more, village 002 never could.
    assert act("v002-handler", oid, "reply", message="x").status_code == 403
    assert client.get(f"/api/v1/feedback/{oid}", headers=auth.headers("v002-handler")).status_code == 403
    assert act("v001-handler", oid, "reply", message="x").status_code == 403

    r = act("town01-handler", oid, "reply", message="镇水务站已派人更换水泵，今天下午恢复供水。")
    assert r.status_code == 200, r.get_data(as_text=True)
    assert r.get_json()["status"] == "replied"

    seen = client.get(f"/api/v1/feedback/{oid}", headers=box("CTV-HH-000001")).get_json()
    assert seen["reply"] == "镇水务站已派人更换水泵，今天下午恢复供水。"
    assert seen["can_rate"] is True

    # Another household of the same village may neither read nor rate it.
    assert client.get(f"/api/v1/feedback/{oid}", headers=box("CTV-HH-000002")).status_code == 403
    assert act("CTV-HH-000002", oid, "rate", score=5).status_code == 403

    r = act("CTV-HH-000001", oid, "rate", score=2)
    assert r.status_code == 200
    body = r.get_json()
    assert body["status"] == "reopened" and body["rating"] == 2

    full = client.get(f"/api/v1/feedback/{oid}", headers=auth.headers("town01-handler")).get_json()
    steps = [(e["action"], e["actor"], e["level"]) for e in full["events"]]
    assert steps == [("submit", "terminal:CTV-HH-000001", "resident"),
                     ("accept", "v001-handler", "village"),
                     ("escalate", "v001-handler", "village"),
                     ("reply", "town01-handler", "town"),
                     ("rate", "terminal:CTV-HH-000001", "resident"),
                     ("reopen", "terminal:CTV-HH-000001", "resident")]
    ats = [e["at"] for e in full["events"]]
    assert ats == sorted(ats) and all("+08:00" in a for a in ats)
    assert all(e["deadline"] for e in full["events"])
    assert full["events"][2]["to"] == "town:990101001000"
    # ... and each step is in the audit trail.
    trail = [e.action for e in audit.events_for("work_order", oid)]
    assert trail == ["feedback.submit", "feedback.accept", "feedback.escalate", "feedback.reply",
                     "feedback.rate", "feedback.reopen"]
    assert audit.verify().ok


def test_retry_with_same_key_is_the_same_order(client, box, file_order):
    a = file_order("CTV-HH-000003", "roads", idempotency_key="k-77")
    r = client.post("/api/v1/feedback", json={"category": "roads", "idempotency_key": "k-77"},
                    headers=box("CTV-HH-000003"))
    assert r.status_code == 200 and r.get_json()["id"] == a["id"] and r.get_json()["code"] == a["code"]
    # The same key from another household is another order.
    b = file_order("CTV-HH-000004", "roads", idempotency_key="k-77")
    assert b["id"] != a["id"]


def test_bad_input_is_400_naming_the_field_and_stores_nothing(client, box, auth):
    from sqlalchemy import func, select

    from portal_server.core.db import session
    from portal_server.feedback.models import WorkOrder

    before = session.scalar(select(func.count()).select_from(WorkOrder))
    r = client.post("/api/v1/feedback", json={"category": "weather"}, headers=box("CTV-HH-000001"))
    assert r.status_code == 400 and r.get_json()["error"]["field"] == "category"
    r = client.post("/api/v1/feedback", json={"content": "x"}, headers=box("CTV-HH-000001"))
    assert r.status_code == 400 and r.get_json()["error"]["field"] == "category"
    r = client.post("/api/v1/feedback", json={"category": "water"})
    assert r.status_code == 401
    session.remove()
    assert session.scalar(select(func.count()).select_from(WorkOrder)) == before


def test_state_conflicts_are_409_naming_the_state(client, act, file_order):
    oid = file_order()["id"]
    r = act("v001-handler", oid, "close")
    assert r.status_code == 409 and "submitted" in str(r.get_json()["error"])  # English detail kept beside the Chinese message
    r = act("v001-handler", oid, "reply", message="好的")
    assert r.status_code == 409 and "submitted" in str(r.get_json()["error"])  # English detail kept beside the Chinese message
    act("v001-handler", oid, "accept")
    r = act("v001-handler", oid, "return", reason="不归我们管")
    assert r.status_code == 409 and "village" in str(r.get_json()["error"])
    r = act("v001-handler", oid, "reply", message="")
    assert r.status_code == 400 and r.get_json()["error"]["field"] == "message"
    r = act("v001-handler", oid, "fly")
    assert r.status_code == 400 and r.get_json()["error"]["field"] == "action"
    act("v001-handler", oid, "reply", message="已处理")
    r = act("CTV-HH-000001", oid, "rate", score=9)
    assert r.status_code == 400 and r.get_json()["error"]["field"] == "score"
    assert act("CTV-HH-000001", oid, "rate", score=5).get_json()["status"] == "closed"
    r = act("CTV-HH-000001", oid, "rate", score=4)
    assert r.status_code == 409 and "closed" in str(r.get_json()["error"])


def test_hotline_files_for_a_village_and_department_path(client, auth, act):
    h = auth.headers("hotline")
    r = client.post("/api/v1/feedback", json={"category": "assistance", "content": "低保申请咨询",
                                              "channel": "hotline", "region_code": "990101001001",
                                              "contact_phone": "13800001111", "idempotency_key": "12345-1"},
                    headers=h)
    assert r.status_code == 201, r.get_data(as_text=True)
    oid = r.get_json()["id"]
    r = client.post("/api/v1/feedback", json={"category": "assistance", "channel": "hotline"}, headers=h)
    assert r.status_code == 400 and r.get_json()["error"]["field"] == "region_code"
    act("v001-handler", oid, "accept")
    act("v001-handler", oid, "escalate")
    act("town01-handler", oid, "accept")
    r = act("town01-handler", oid, "escalate")
    assert r.get_json()["handler"] == {"level": "department", "code": "civil-affairs"}
    assert r.get_json()["handler_name"] == "市民政局"
    assert act("town01-handler", oid, "accept").status_code == 403
    assert act("dept-civil", oid, "accept").status_code == 200
    r = act("dept-civil", oid, "return", reason="请镇里先核实家庭收入")
    assert r.status_code == 200 and r.get_json()["handler"]["code"] == "990101001000"
    # Passed on three times without a reply: a supervised problem order at the city.
    body = r.get_json()
    assert body["problem"] is True and body["supervisor_code"] == "990100000000"
    assert [e["action"] for e in body["events"]][-1] == "supervise"


def test_openapi_lists_the_feedback_endpoints(client):
    doc = client.get("/api/v1/openapi.json").get_json()
    assert "/api/v1/feedback/{order_id}/actions" in doc["paths"]
    assert "ActionIn" in doc["components"]["schemas"] and "FeedbackIn" in doc["components"]["schemas"]
    assert "/open311/v2/services.json" in doc["paths"]


def test_open311_services_and_requests(client, auth):
    r = client.get("/open311/v2/services.json")
    assert r.status_code == 200 and r.mimetype == "application/json"
    services = json.loads(r.get_data(as_text=True))
    assert isinstance(services, list) and len(services) == 10
    for s in services:
        assert set(s) >= {"service_code", "service_name", "description", "metadata", "type", "keywords", "group"}
        assert s["type"] in ("realtime", "batch", "blackbox") and isinstance(s["metadata"], bool)
    from lxml import etree
    xml = etree.fromstring(client.get("/open311/v2/services.xml").data)
    assert xml.tag == "services" and len(xml.findall("service")) == 10
    assert xml.find("service/service_code").text == "water" and xml.find("service/metadata").text == "false"
    key = auth.token("hotline")
    r = client.post("/open311/v2/requests.json", data={"api_key": key, "service_code": "roads",
                                                       "description": "桥面塌陷", "address_id": "990101001002",
                                                       "lat": "30.1", "long": "120.2"})
    assert r.status_code == 201, r.get_data(as_text=True)
    rid = r.get_json()[0]["service_request_id"]
    one = client.get(f"/open311/v2/requests/{rid}.json?api_key={key}").get_json()[0]
    assert one["status"] == "open" and one["service_code"] == "roads" and one["lat"] == 30.1
    assert one["agency_responsible"] == "东岭村"
    listed = client.get(f"/open311/v2/requests.json?api_key={key}&service_code=roads").get_json()
    assert rid in [x["service_request_id"] for x in listed]
    bad = client.post("/open311/v2/requests.json", data={"api_key": key, "service_code": "nope",
                                                         "address_id": "990101001002"})
    assert bad.status_code == 400 and bad.get_json()[0]["code"] == 400
    assert bad.get_json()[0]["description"] == "诉求类别 'nope' 不存在"      # Chinese, as every API error
    en = client.post("/open311/v2/requests.json", data={"api_key": key, "service_code": "nope"},
                     headers={"Accept-Language": "en"})
    assert en.get_json()[0]["description"] == "service_code 'nope' not found"
    assert client.get("/open311/v2/requests.json").status_code == 401
