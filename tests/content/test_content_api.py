"""The API workflow and what the boxes see (the TV contract of queries.tv_items / tv_item)."""
import datetime as dt
import json
import threading

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from portal_server.content import queries
from portal_server.core.db import session

from .conftest import CITY, TOWN01, V001, V002, household_box


def ids(village, section=None, tags=None, mine=None):
    """Ids on a village's TV, restricted to ``mine`` (the demo city has content of its own)."""
    got = [i["id"] for i in queries.tv_items(village, section, tags)]
    return [i for i in got if mine is None or i in mine]


def test_draft_is_invisible_until_approved_then_reaches_exactly_its_village(api, draft, box, client,
                                                                             captured_signals):
    item = draft("v001-editor", [V001], title="东河村道路硬化工程公示", pinned=True)
    assert item["status"] == "draft" and item["version"] == 1
    mine = {item["id"]}
    assert ids(V001, mine=mine) == []
    assert api("v001-editor", "post", f"/contents/{item['id']}/submit").get_json()["status"] == "submitted"
    assert ids(V001, mine=mine) == []          # submitted is still not on TV
    r = api("town01-reviewer", "post", f"/contents/{item['id']}/approve")
    assert r.status_code == 200 and r.get_json()["status"] == "published"

    shown = queries.tv_items(V001)
    assert shown[0]["id"] == item["id"]       # pinned and newest
    one = shown[0]
    assert set(one) == {"id", "section", "title", "summary", "body", "images", "video", "attachments",
                        "pinned", "published_at", "expire_at", "source", "tags", "version"}
    assert one["source"] == "东河村" and one["pinned"] is True and one["version"] == 1
    assert one["published_at"].tzinfo is not None and one["summary"] == "本月收支明细见附件。"
    assert ids(V002, mine=mine) == []
    assert queries.tv_item(item["id"], V001)["title"] == "东河村道路硬化工程公示"
    assert queries.tv_item(item["id"], V002) is None
    # The signal names exactly the one village.
    assert [(k, s, kw["region_codes"]) for k, s, kw in captured_signals] == [("published", item["id"], [V001])]
    # The box API: village 001's box has it, village 002's does not.
    hh1 = client.get("/api/v1/terminal/contents?section=affairs", headers=box(household_box(V001))).get_json()
    hh2 = client.get("/api/v1/terminal/contents?section=affairs", headers=box(household_box(V002))).get_json()
    assert item["id"] in [i["id"] for i in hh1["items"]]
    assert item["id"] not in [i["id"] for i in hh2["items"]]
    assert hh1["items"][0]["id"] == item["id"] and hh1["items"][0]["body"] == "<p>本月收支明细见附件。</p>"


def test_town_item_reaches_every_village_of_the_town_only(publish, captured_signals):
    cid = publish("town01-editor", "city-reviewer", [TOWN01], title="青石镇冬季防火通知", section="safety")
    from portal_server.demo import village_codes
    town01 = [c for c in village_codes() if c.startswith("990101001")]
    assert captured_signals[-1][2]["region_codes"] == town01
    assert all(ids(v, "safety", mine={cid}) == [cid] for v in town01)
    assert ids("990101002001", "safety", mine={cid}) == []
    assert ids(V001, "party", mine={cid}) == []  # section filter


def test_tagged_items_only_for_households_with_the_tag(publish):
    untagged = publish(title="全村通知")
    tagged = publish(title="独居老人冬季送温暖", target_tags=["elderly_alone"], section="elderly")
    mine = {untagged, tagged}
    assert ids(V001, mine=mine) == [untagged]
    assert ids(V001, tags=["elderly_alone", "veteran"], mine=mine) == [tagged]
    assert ids(V001, tags=["veteran"], mine=mine) == []
    assert queries.tv_items(V001, tags=[]) == []
    assert queries.tv_item(tagged, V001) is None
    assert queries.tv_item(tagged, V001, tags=["elderly_alone"])["tags"] == ["elderly_alone"]


def test_pinned_first_then_newest(publish):
    a = publish(title="第一条")
    b = publish(title="第二条")
    c = publish(title="置顶", pinned=True)
    d = publish(title="第四条")
    assert ids(V001, mine={a, b, c, d}) == [c, d, b, a]
    assert [i["id"] for i in queries.tv_items(V001, limit=1)] == [c]


def test_scheduled_publish_and_expiry_by_the_periodic_job(api, draft, captured_signals):
    from portal_server.content import tasks
    from portal_server.core.db import utcnow

    soon = utcnow() + dt.timedelta(hours=1)
    item = draft(publish_at=soon.isoformat(), expire_at=(soon + dt.timedelta(days=1)).isoformat())
    api("v001-editor", "post", f"/contents/{item['id']}/submit")
    r = api("v001-reviewer", "post", f"/contents/{item['id']}/approve")
    assert r.get_json()["status"] == "approved"
    assert ids(V001, mine={item["id"]}) == [] and captured_signals == []
    from portal_server.content import operations as ops
    assert ops.publish_due(soon + dt.timedelta(seconds=1)) == 1
    assert captured_signals[-1][0] == "published"
    # tv_items compares with the real clock: the item's time has not come yet, so it stays hidden.
    assert ids(V001, mine={item["id"]}) == []
    assert ops.expire_due(soon + dt.timedelta(days=2)) == 1
    assert captured_signals[-1][:2] == ("unpublished", item["id"])
    assert captured_signals[-1][2] == {"region_codes": [V001], "reason": "expired", "targets": [V001]}
    session.commit()
    assert api("v001-editor", "get", f"/contents/{item['id']}").get_json()["status"] == "expired"
    assert tasks.run_schedule() == {"published": 0, "expired": 0}


def test_notice_goes_to_the_target_region_topic(app, publish, mosquitto_server):
    from portal_server.core.mqtt import parse_url

    args = parse_url(app.config["SETTINGS"].mqtt_server_url)
    got, ready = [], threading.Event()
    sub = paho.Client(CallbackAPIVersion.VERSION2, client_id="content-test-sub", protocol=paho.MQTTv5)
    sub.username_pw_set(args["username"], args["password"])
    sub.on_connect = lambda c, *a: c.subscribe("ctv/v1/region/+/notice", qos=1)
    sub.on_subscribe = lambda *a: ready.set()
    sub.on_message = lambda c, u, m: got.append((m.topic, json.loads(m.payload)))
    sub.connect(args["host"], args["port"])
    sub.loop_start()
    try:
        assert ready.wait(5)
        cid = publish(title="停水通知")
        deadline = dt.datetime.now() + dt.timedelta(seconds=5)
        while not got and dt.datetime.now() < deadline:
            threading.Event().wait(0.05)
    finally:
        sub.loop_stop()
        sub.disconnect()
    topic, payload = got[0]
    assert topic == f"ctv/v1/region/{V001}/notice"
    assert payload["type"] == "content" and payload["id"] == cid and payload["title"] == "停水通知"
    assert payload["url"] == f"/tv/item/{cid}" and isinstance(payload["ts"], int)


def test_bad_input_names_the_field_and_saves_nothing(api):
    from sqlalchemy import func, select

    from portal_server.content.models import Content

    before = session.scalar(select(func.count()).select_from(Content))
    cases = [
        ({"section": "news", "title": "x", "target_regions": [V001]}, 400, "section"),
        ({"section": "party", "title": "  ", "target_regions": [V001]}, 400, "title"),
        ({"section": "party", "title": "x", "target_regions": []}, 400, "target_regions"),
        ({"section": "party", "title": "x", "target_regions": ["123"]}, 400, "target_regions"),
        ({"section": "party", "title": "x", "target_regions": [V001], "target_tags": ["rich"]}, 400, "target_tags"),
        ({"section": "party", "title": "x", "target_regions": [V001], "publish_at": "2030-01-02T00:00:00+08:00",
          "expire_at": "2030-01-01T00:00:00+08:00"}, 400, "expire_at"),
        ({"section": "party", "title": "x", "target_regions": [V001], "publish_at": "tomorrow"}, 400, "publish_at"),
        ({"section": "party", "target_regions": [V001]}, 400, "title"),
    ]
    for payload, status, field in cases:
        r = api("v001-editor", "post", "/contents", json=payload)
        assert r.status_code == status, (payload, r.get_data(as_text=True))
        assert r.get_json()["error"]["field"] == field, payload
    r = api("v001-editor", "post", "/contents", json={"section": "party", "title": "x",
                                                      "target_regions": [V001, V002]})
    assert r.status_code == 403 and V002 in r.get_json()["error"]["message"]
    assert api("v001-editor", "post", "/contents", data="nonsense").status_code == 400
    assert session.scalar(select(func.count()).select_from(Content)) == before


def test_author_never_approves_and_reviewer_must_cover_every_target(api, draft):
    item = draft("town01-editor", [V001, V002])
    api("town01-editor", "post", f"/contents/{item['id']}/submit")
    r = api("v001-reviewer", "post", f"/contents/{item['id']}/approve")
    assert r.status_code == 403 and V002 in r.get_json()["error"]["message"]
    # admin holds every role; as author it may still not approve its own item.
    own = draft("admin", [CITY])
    api("admin", "post", f"/contents/{own['id']}/submit")
    r = api("admin", "post", f"/contents/{own['id']}/approve")
    assert r.status_code == 403 and "own" in str(r.get_json()["error"])
    assert api("town01-reviewer", "post", f"/contents/{item['id']}/approve").status_code == 200


def test_reject_needs_a_reason_and_goes_back_to_the_editor(api, draft):
    item = draft()
    api("v001-editor", "post", f"/contents/{item['id']}/submit")
    r = api("v001-reviewer", "post", f"/contents/{item['id']}/reject", json={})
    assert r.status_code == 400 and r.get_json()["error"]["field"] == "reason"
    r = api("v001-reviewer", "post", f"/contents/{item['id']}/reject", json={"reason": "金额有误，请核对"})
    body = r.get_json()
    assert body["status"] == "rejected" and body["pending_version"]["reject_reason"] == "金额有误，请核对"
    r = api("v001-editor", "patch", f"/contents/{item['id']}", json={"body": "<p>已更正</p>"})
    assert r.get_json()["status"] == "draft"
    assert api("v001-editor", "post", f"/contents/{item['id']}/submit").get_json()["status"] == "submitted"


def test_new_version_needs_review_and_the_live_one_stays_until_then(api, publish, captured_signals):
    cid = publish(title="第一版标题")
    r = api("v001-editor", "patch", f"/contents/{cid}", json={"title": "第二版标题"})
    body = r.get_json()
    assert body["status"] == "published" and body["pending_version"]["number"] == 2
    assert queries.tv_item(cid, V001)["title"] == "第一版标题"
    api("v001-editor", "post", f"/contents/{cid}/submit")
    assert queries.tv_item(cid, V001)["title"] == "第一版标题"
    n = len(captured_signals)
    assert api("v001-reviewer", "post", f"/contents/{cid}/approve").status_code == 200
    live = queries.tv_item(cid, V001)
    assert live["title"] == "第二版标题" and live["version"] == 2
    assert captured_signals[n][0] == "published"
    versions = api("v001-editor", "get", f"/contents/{cid}/versions").get_json()["items"]
    assert [(v["number"], v["status"]) for v in versions] == [(1, "superseded"), (2, "approved")]


def test_withdraw_removes_it_from_tv_with_a_signal(api, publish, captured_signals):
    cid = publish()
    assert ids(V001, mine={cid}) == [cid]
    r = api("v001-editor", "post", f"/contents/{cid}/withdraw", json={"reason": "内容过时"})
    assert r.get_json()["status"] == "withdrawn"
    assert ids(V001, mine={cid}) == []
    assert captured_signals[-1] == ("unpublished", cid, {"region_codes": [V001], "reason": "withdrawn",
                                                            "targets": [V001]})
    assert api("v001-editor", "post", f"/contents/{cid}/withdraw").status_code == 409
    assert api("v001-editor", "patch", f"/contents/{cid}", json={"title": "x"}).status_code == 409


def test_a_household_box_gets_untagged_items_plus_its_own_tags(api, publish, client, box):
    everyone = publish(title="全村大扫除")
    alone = publish(title="独居老人关爱走访", target_tags=["elderly_alone"], section="elderly")
    vets = publish(title="退役军人座谈会", target_tags=["veteran"], section="elderly")
    mine = {everyone, alone, vets}
    from portal_server.core.terminals import terminal_by_serial

    plain_box = household_box(V001, without_tags=True)
    tagged_box = next(s for s in (f"CTV-HH-00000{n}" for n in range(1, 5)) if s != plain_box)
    terminal_by_serial(tagged_box).household.tags = "elderly_alone"
    session.commit()
    got = lambda serial: {i["id"] for i in client.get("/api/v1/terminal/contents",
                                                      headers=box(serial)).get_json()["items"]} & mine
    assert got(tagged_box) >= {everyone, alone} and everyone in got(plain_box)
    assert alone not in got(plain_box) and vets not in got(plain_box)
    items = client.get("/api/v1/terminal/contents?section=elderly", headers=box(tagged_box)).get_json()["items"]
    assert all(i["section"] == "elderly" for i in items)
    assert client.get("/api/v1/terminal/contents?section=news", headers=box(tagged_box)).status_code == 400
    stamp = next(i for i in items if i["id"] == alone)["published_at"]
    assert stamp.endswith("+08:00")


def test_openapi_lists_the_content_endpoints(client):
    doc = client.get("/api/v1/openapi.json").get_json()
    for path in ("/api/v1/contents", "/api/v1/contents/{content_id}/approve", "/api/v1/terminal/contents"):
        assert path in doc["paths"], path
    assert "ContentIn" in doc["components"]["schemas"]


def test_workflow_on_sqlite_and_postgresql(any_db_app):
    """The same targeting, tags, ordering and time rules on both databases."""
    from portal_server.content import operations as ops
    from portal_server.core.accounts import user_by_username
    from portal_server.core.db import utcnow

    ed, rv = user_by_username("town01-editor"), user_by_username("city-reviewer")

    def make(title, targets, **kw):
        c = ops.create(ed, {"section": "affairs", "title": title, "target_regions": targets, **kw})
        ops.submit(ed, c)
        ops.approve(rv, c)
        return c

    a = make("镇级通知", [TOWN01])
    b = make("两村通知", [V001, V002], pinned=True)
    t = make("独居老人", [TOWN01], target_tags=["elderly_alone"])
    later = make("明天发布", [V001], publish_at=(utcnow() + dt.timedelta(days=1)).isoformat())
    soon = make("即将下线", [V001], expire_at=(utcnow() + dt.timedelta(hours=1)).isoformat())
    session.commit()
    mine = {a.id, b.id, t.id, later.id, soon.id}
    assert ids(V001, mine=mine) == [b.id, soon.id, a.id]
    assert ids("990101001007", mine=mine) == [a.id]
    assert ids("990101002001", mine=mine) == []
    assert ids(V002, tags=["elderly_alone"], mine=mine) == [t.id]
    assert later.status == "approved"
    assert ops.expire_due(utcnow() + dt.timedelta(hours=2)) >= 1
    session.commit()
    assert ids(V001, mine=mine) == [b.id, a.id]
    assert ops.publish_due(utcnow() + dt.timedelta(days=2)) == 1


def test_tv_items_takes_the_same_few_queries_for_many_items(app, publish):
    from sqlalchemy import event

    from portal_server.core import db

    def count(fn):
        n = [0]
        listener = lambda *a: n.__setitem__(0, n[0] + 1)
        event.listen(db.engine(), "before_cursor_execute", listener)
        try:
            session.expire_all()
            fn()
        finally:
            event.remove(db.engine(), "before_cursor_execute", listener)
        return n[0]

    few = count(lambda: queries.tv_items(V002))
    for n in range(12):
        publish("v002-editor", "town01-reviewer", [V002], title=f"第{n}条")
    many = count(lambda: queries.tv_items(V002))
    assert len(queries.tv_items(V002)) >= 12
    assert many <= few + 1 and many <= 8, (few, many)   # no query per item (N+1)
