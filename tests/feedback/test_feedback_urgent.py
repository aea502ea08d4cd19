"""Urgent work orders (紧急件): care's one-key help, the hotline and staff mark them; they are due
the same day at every desk and come first in the staff inbox."""
import datetime as dt
import re
from zoneinfo import ZoneInfo

from portal_server.core import audit
from portal_server.feedback import rules
from tests.conftest import csrf_from

VILLAGE = "990101001001"


def _end_of_today(app) -> dt.datetime:
    zone = ZoneInfo(app.config["SETTINGS"].timezone)
    return dt.datetime.combine(dt.datetime.now(zone).date(), dt.time(23, 59, 59), zone)


def _deadline(order_json) -> dt.datetime:
    return dt.datetime.fromisoformat(order_json["deadline"])


def test_rules_urgent_is_the_same_day_whatever_the_category():
    zone = ZoneInfo("Asia/Shanghai")
    friday = dt.datetime(2026, 11, 27, 22, 30, tzinfo=zone)
    assert rules.deadline_for("assistance", friday).astimezone(zone) == \
        dt.datetime(2026, 12, 4, 23, 59, 59, tzinfo=zone)  # 5 working days over a weekend
    assert rules.deadline_for("assistance", friday, urgent=True).astimezone(zone) == \
        dt.datetime(2026, 11, 27, 23, 59, 59, tzinfo=zone)


def test_care_help_files_an_urgent_order_due_today_first_in_the_inbox(app, client, auth, box, file_order,
                                                                      staff_login):
    # An ordinary order of the same village filed first: same-day (water) deadline, lower id.
    water = file_order("CTV-HH-000001", "water", content="停水了")["id"]
    r = client.post("/api/v1/care/help", headers=box("CTV-HH-000002"))
    assert r.status_code == 201, r.get_data(as_text=True)
    help_id = r.get_json()["work_order"]["id"]

    order = client.get(f"/api/v1/feedback/{help_id}", headers=auth.headers("v001-handler")).get_json()
    assert order["urgent"] is True and order["category"] == "elderly"
    assert _deadline(order) == _end_of_today(app)  # not the 5 working days of an elderly-care request
    assert order["events"][0]["action"] == "submit" and order["events"][0]["urgent"] is True

    # The resident's TV says it is being handled today.
    tv = client.get(f"/tv/feedback/orders/{help_id}", headers=box("CTV-HH-000002")).get_data(as_text=True)
    assert 'id="urgent"' in tv and "今天办理" in tv
    assert 'id="urgent"' not in client.get(f"/tv/feedback/orders/{water}", headers=box("CTV-HH-000001")).get_data(as_text=True)

    inbox = client.get("/api/v1/feedback?box=inbox", headers=auth.headers("v001-handler")).get_json()
    ids = [o["id"] for o in inbox["items"]]
    assert ids.index(help_id) < ids.index(water)

    staff_login("v001-handler")
    html = client.get("/admin/feedback/").get_data(as_text=True)
    mine = html.split('id="mine"')[1].split('id="below"')[0]
    rows = [int(i) for i in re.findall(r'data-order="(\d+)"', mine)]
    assert rows[0] == help_id and rows.index(help_id) < rows.index(water)
    assert re.search(rf'data-order="{help_id}" data-urgent="1">\s*<td><span class="tag urgent-tag"[^>]*>紧急<', mine)
    assert f'data-order="{water}" data-urgent' not in mine
    page = client.get(f"/admin/feedback/{help_id}").get_data(as_text=True)
    assert 'id="urgent"' in page and "紧急件，当日办结" in page
    # Already urgent: no button to mark it again.
    assert 'data-action="urgent"' not in page.split('id="timeline"')[0]

    # The grid worker's care task links the urgent order, which the grid worker may open.
    client.post("/admin/logout", data={"csrf_token": csrf_from(page)})
    staff_login("grid-v001")
    tasks = client.get("/admin/care/tasks").get_data(as_text=True)
    assert f'data-work-order="{help_id}"' in tasks and "紧急工单" in tasks
    assert client.get(f"/admin/feedback/{help_id}").status_code == 200


def test_hotline_files_urgent_a_box_may_not(app, client, auth, box):
    r = client.post("/api/v1/feedback", headers=auth.headers("hotline"),
                    json={"category": "disputes", "content": "邻里纠纷，双方正在争吵，可能动手", "channel": "hotline",
                          "region_code": VILLAGE, "urgent": True, "contact_phone": "13800000000"})
    assert r.status_code == 201, r.get_data(as_text=True)
    assert dt.datetime.fromisoformat(r.get_json()["deadline"]) == _end_of_today(app)  # not 10 working days
    plain = client.post("/api/v1/feedback", headers=auth.headers("hotline"),
                        json={"category": "disputes", "content": "邻里纠纷", "channel": "hotline",
                              "region_code": VILLAGE})
    assert dt.datetime.fromisoformat(plain.get_json()["deadline"]) > _end_of_today(app)
    r = client.post("/api/v1/feedback", headers=box("CTV-HH-000001"), json={"category": "water", "urgent": True})
    assert r.status_code == 403, r.get_data(as_text=True)


def test_handler_marks_an_order_urgent_and_it_stays_urgent_up_the_levels(app, client, auth, act, file_order,
                                                                         staff_login):
    oid = file_order("CTV-HH-000001", "assistance", content="家里老人生病没钱看病")["id"]
    before = client.get(f"/api/v1/feedback/{oid}", headers=auth.headers("v001-handler")).get_json()
    assert before["urgent"] is False and _deadline(before) > _end_of_today(app)

    assert act("v002-handler", oid, "urgent").status_code == 403
    assert act("CTV-HH-000001", oid, "urgent").status_code == 403

    staff_login("v001-handler")
    html = client.get(f"/admin/feedback/{oid}").get_data(as_text=True)
    assert 'data-action="urgent"' in html
    r = client.post(f"/admin/feedback/{oid}/action",
                    data={"csrf_token": csrf_from(html), "action": "urgent", "reason": "老人独居，病情较重"})
    assert r.status_code == 302, r.get_data(as_text=True)

    after = client.get(f"/api/v1/feedback/{oid}", headers=auth.headers("v001-handler")).get_json()
    assert after["urgent"] is True and _deadline(after) == _end_of_today(app)
    step = after["events"][-1]
    assert (step["action"], step["actor"], step["note"]) == ("urgent", "v001-handler", "老人独居，病情较重")
    assert "feedback.urgent" in [e.action for e in audit.events_for("work_order", oid)]

    r = act("v001-handler", oid, "urgent")
    assert r.status_code == 409 and "already urgent" in str(r.get_json()["error"])

    # Escalated to the town: the town's clock is urgent too.
    assert act("v001-handler", oid, "accept").status_code == 200
    r = act("v001-handler", oid, "escalate")
    assert r.status_code == 200 and r.get_json()["handler"]["code"] == "990101001000"
    assert _deadline(r.get_json()) == _end_of_today(app)

    # A closed order cannot be marked any more.
    assert act("town01-handler", oid, "accept").status_code == 200
    assert act("town01-handler", oid, "reply", message="已协调医疗救助").status_code == 200
    assert act("town01-handler", oid, "close").status_code == 200
    other = file_order("CTV-HH-000001", "roads", content="路灯不亮")["id"]
    assert act("v001-handler", other, "accept").status_code == 200
    assert act("v001-handler", other, "reply", message="已修").status_code == 200
    assert act("v001-handler", other, "close").status_code == 200
    r = act("v001-handler", other, "urgent")
    assert r.status_code == 409 and "closed" in str(r.get_json()["error"])
