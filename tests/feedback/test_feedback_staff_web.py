"""Staff web: inbox with yellow/red rows, order page with allowed actions, board, polls, home card."""
import datetime as dt
import re

from portal_server.core.db import session
from portal_server.feedback import queries
from tests.conftest import csrf_from


def test_inbox_due_soon_first_with_lights_and_home_card(client, auth, file_order, staff_login):
    late = file_order(category="roads", content="很久以前的问题")["id"]
    soon = file_order(category="party", content="咨询入党")["id"]
    now = dt.datetime.now(dt.UTC)
    o = queries.get(late)
    o.clock_started_at, o.deadline_at = now - dt.timedelta(days=30), now - dt.timedelta(days=29)
    y = queries.get(soon)  # 80 % of its time used
    y.clock_started_at, y.deadline_at = now - dt.timedelta(hours=8), now + dt.timedelta(hours=2)
    session.commit()
    staff_login("v001-handler")
    html = client.get("/admin/feedback/").get_data(as_text=True)
    mine = html.split('id="mine"')[1].split('id="below"')[0]
    rows = re.findall(r'data-light="(\w+)" data-order="(\d+)"', mine)
    ids = [int(i) for _, i in rows]
    assert ids.index(late) < ids.index(soon)
    lights = {int(i): l for l, i in rows}
    assert lights[late] == "red" and lights[soon] == "yellow"
    assert 'class="red"' in mine and 'class="yellow"' in mine
    home = client.get("/admin/").get_data(as_text=True)
    assert "诉求办理" in home and "我的待办诉求（超期 1 件）" in home


def test_order_page_shows_only_allowed_actions_and_form_acts(client, auth, file_order, staff_login):
    oid = file_order(category="water", content="停水了")["id"]
    staff_login("v002-handler")
    assert client.get(f"/admin/feedback/{oid}").status_code == 403
    client.post("/admin/logout", data={"csrf_token": csrf_from(client.get("/admin/").get_data(as_text=True))})
    staff_login("v001-handler")
    html = client.get(f"/admin/feedback/{oid}").get_data(as_text=True)
    forms = set(re.findall(r'data-action="(\w+)"', html.split('id="timeline"')[0]))
    assert forms == {"accept", "assign", "escalate", "urgent"}
    r = client.post(f"/admin/feedback/{oid}/action", data={"csrf_token": csrf_from(html), "action": "accept"})
    assert r.status_code == 302
    html = client.get(f"/admin/feedback/{oid}").get_data(as_text=True)
    assert "已受理" in html
    r = client.post(f"/admin/feedback/{oid}/action", data={"csrf_token": csrf_from(html), "action": "close"})
    assert r.status_code == 409 and "accepted" in r.get_data(as_text=True)
    r = client.post(f"/admin/feedback/{oid}/action", data={"action": "reply", "message": "x"})
    assert r.status_code == 400  # no CSRF token
    r = client.post(f"/admin/feedback/{oid}/action", data={"csrf_token": csrf_from(html), "action": "reply",
                                                          "message": "已恢复供水"})
    assert r.status_code == 302
    html = client.get(f"/admin/feedback/{oid}").get_data(as_text=True)
    assert "已恢复供水" in html
    timeline = html.split('id="timeline"')[1]
    assert [a for a in re.findall(r'<tr data-action="(\w+)"', timeline)] == ["submit", "accept", "reply"]
    # Calling the resident back: the clear number is shown once asked for, and audited.
    from portal_server.core import audit
    assert "****" in html
    r = client.post(f"/admin/feedback/{oid}/phone", data={"csrf_token": csrf_from(html)})
    assert re.search(r'id="phone">1\d{10}<', r.get_data(as_text=True))
    assert audit.events_for("household", queries.get(oid).household_id)[-1].action == "pii.unmask"


def test_board_ranks_with_a_minimum(client, auth, file_order, act, app, staff_login):
    app.config["FEEDBACK_MIN_RANK_ORDERS"] = 2
    for serial in ("CTV-HH-010001", "CTV-HH-010002"):  # village 002: answered on time
        oid = file_order(serial, "roads")["id"]
        act("v002-handler", oid, "accept")
        act("v002-handler", oid, "reply", message="已修")
        act(serial, oid, "rate", score=5)
    for serial in ("CTV-HH-000003", "CTV-HH-000004"):  # village 001: not answered
        file_order(serial, "roads")
    file_order("CTV-HH-070001", "roads")  # town 02: a single order, not ranked
    staff_login("admin")
    html = client.get("/admin/feedback/board").get_data(as_text=True)
    villages = html.split('id="villages"')[1].split("</table>")[0]
    codes = re.findall(r'data-code="(\d+)"><td>([^<]+)</td>', villages)
    ranks = dict(codes)
    assert ranks["990101001002"] == "1"
    assert ranks["990101001001"] == "2"
    assert "不足" in ranks["990101002001"]
    assert 'data-ctv-chart' in html and "按期办结率" in html and "5.0" in villages
    # The same board as a workbook (the chart's "导出 Excel").
    import io
    import openpyxl
    wb = openpyxl.load_workbook(io.BytesIO(client.get("/admin/feedback/board?format=xlsx").data))
    rows = {r[2]: r for r in wb["村（社区）"].iter_rows(min_row=2, values_only=True)}
    assert rows["990101001002"][0] == 1 and rows["990101001002"][4] == 100.0
    api = client.get("/api/v1/feedback/board", headers=auth.headers("town01-handler")).get_json()
    assert [v["code"] for v in api["villages"] if v["rank"]] == ["990101001002", "990101001001"]
    assert "990101002001" not in [v["code"] for v in api["villages"]]  # outside town 01
    assert api["villages"][0]["on_time_rate"] == 1.0 and api["villages"][0]["avg_rating"] == 5.0


def test_polls_open_vote_once_and_results(client, auth, box, staff_login):
    h = auth.headers("v001-editor")
    closes = (dt.datetime.now(dt.UTC) + dt.timedelta(days=3)).isoformat()
    r = client.post("/api/v1/polls", json={"title": "村里先修哪条路？", "options": ["东路", "西路", "北路"],
                                           "region_code": "990101001001", "closes_at": closes}, headers=h)
    assert r.status_code == 201, r.get_data(as_text=True)
    pid = r.get_json()["id"]
    bad = client.post("/api/v1/polls", json={"title": "x", "options": ["只有一个"], "region_code": "990101001001",
                                             "closes_at": closes}, headers=h)
    assert bad.status_code == 400 and bad.get_json()["error"]["field"] == "options"
    assert client.post("/api/v1/polls", json={"title": "x", "options": ["a", "b"], "region_code": "990101001002",
                                              "closes_at": closes}, headers=h).status_code == 403
    listed = client.get("/api/v1/polls", headers=box("CTV-HH-000001")).get_json()["items"]
    mine = next(p for p in listed if p["id"] == pid)
    assert mine["voted"] is None and "results" not in mine
    assert pid not in [p["id"] for p in client.get("/api/v1/polls", headers=box("CTV-HH-010001")).get_json()["items"]]
    r = client.post(f"/api/v1/polls/{pid}/votes", json={"option": 1}, headers=box("CTV-HH-000001"))
    assert r.status_code == 201 and r.get_json()["results"]["options"][1]["votes"] == 1
    r = client.post(f"/api/v1/polls/{pid}/votes", json={"option": 0}, headers=box("CTV-HH-000001"))
    assert r.status_code == 409
    assert client.post(f"/api/v1/polls/{pid}/votes", json={"option": 0},
                       headers=box("CTV-HH-010001")).status_code == 403
    assert client.post(f"/api/v1/polls/{pid}/votes", json={"option": 7},
                       headers=box("CTV-HH-000002")).status_code == 400
    client.post(f"/api/v1/polls/{pid}/votes", json={"option": 1}, headers=box("CTV-HH-000002"))
    staff_login("v001-editor")
    html = client.get("/admin/feedback/polls").get_data(as_text=True)
    section = html.split(f'data-poll="{pid}"')[1].split("</section>")[0]
    assert "共 2 户投票" in section and "2 票" in section
    r = client.post("/admin/feedback/polls", data={"csrf_token": csrf_from(html), "title": "议事：广场开放时间",
                                                   "kind": "topic", "options": "八点\n九点", "region_code": "990101001001",
                                                   "closes_at": "2099-01-01T20:00"})
    assert r.status_code == 302, r.get_data(as_text=True)
    assert "议事：广场开放时间" in client.get("/admin/feedback/polls").get_data(as_text=True)


def test_opening_a_poll_notifies_the_villages_boxes(client, auth, app):
    import json
    import threading

    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion

    from portal_server.core.mqtt import parse_url

    got, ready = [], threading.Event()
    args = parse_url(app.config["SETTINGS"].mqtt_server_url)
    sub = paho.Client(CallbackAPIVersion.VERSION2, client_id="fb-test-sub")
    sub.username_pw_set(args["username"], args["password"])
    sub.on_connect = lambda c, *a: c.subscribe("ctv/v1/region/990101001001/notice", qos=1)
    sub.on_subscribe = lambda *a: ready.set()
    sub.on_message = lambda c, u, m: got.append(json.loads(m.payload))
    sub.connect(args["host"], args["port"])
    sub.loop_start()
    try:
        assert ready.wait(5)
        closes = (dt.datetime.now(dt.UTC) + dt.timedelta(days=3)).isoformat()
        r = client.post("/api/v1/polls", json={"title": "要不要建村史馆？", "options": ["要", "不要"],
                                               "region_code": "990101001001", "closes_at": closes},
                        headers=auth.headers("v001-editor"))
        pid = r.get_json()["id"]
        for _ in range(50):
            if got:
                break
            threading.Event().wait(0.1)
        assert got and got[0]["type"] == "poll" and got[0]["id"] == pid
        assert got[0]["url"] == f"/tv/feedback/polls/{pid}" and got[0]["title"] == "要不要建村史馆？"
    finally:
        sub.loop_stop()
        sub.disconnect()
