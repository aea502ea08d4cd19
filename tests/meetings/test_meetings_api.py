"""Meetings through the API: scheduling in scope, the admission window, one vote per household
(changeable until close, refused from another village or after close), attendance from heartbeats,
the live notice to the village's boxes."""
from __future__ import annotations

import datetime as dt
import json
import threading
import time

import pytest

from portal_server.core.db import session
from portal_server.meetings import operations as ops
from portal_server.meetings import queries

from .conftest import V001, V002, box_serials, make_meeting

MINE = lambda i: box_serials(V001)[i]
OTHER = lambda: box_serials(V002)[0]
NOW = lambda: dt.datetime.now(dt.UTC)


def _fresh():
    session.remove()


def test_schedule_read_and_scope(any_db_app, client, auth, box):
    m = make_meeting(client, auth)
    assert m["status"] == "scheduled" and len(m["stream_key"]) >= 20
    assert m["rtmp_url"] == any_db_app.config["SETTINGS"].rtmp_url and m["publish_url"].endswith("/" + m["stream_key"])
    assert m["starts_at"].endswith("+08:00") and m["hls_url"] is None and m["replay_url"] is None
    staff = client.get(f"/api/v1/meetings/{m['id']}", headers=auth.headers("v001-editor")).get_json()
    assert staff["attendance"] == {"boxes": 0, "households": 0} and staff["vote_results"] == []
    # A box of the village sees it without the stream key; a box of another village does not.
    mine = client.get(f"/api/v1/meetings/{m['id']}", headers=box(MINE(0)))
    assert mine.status_code == 200 and "stream_key" not in mine.get_json()
    other = client.get(f"/api/v1/meetings/{m['id']}", headers=box(OTHER()))
    assert other.status_code == 404
    # Another village's staff neither see it nor schedule for V001.
    assert client.get(f"/api/v1/meetings/{m['id']}", headers=auth.headers("v002-editor")).status_code == 404
    r = client.post("/api/v1/meetings", headers=auth.headers("v002-editor"),
                    json={"title": "x", "region_code": V001, "starts_at": NOW().isoformat(),
                          "ends_at": (NOW() + dt.timedelta(hours=1)).isoformat()})
    assert r.status_code == 403
    listing = client.get("/api/v1/meetings", headers=auth.headers("v002-editor")).get_json()
    assert all(i["region_code"] == V002 for i in listing["items"])


@pytest.mark.parametrize("body,field", [
    ({"title": "", "region_code": V001}, "title"),
    ({"title": "会", "region_code": "990101001999"}, "region_code"),
    ({"title": "会", "region_code": V001, "starts_at": "tomorrow"}, "starts_at"),
    ({"title": "会", "region_code": V001, "ends_at": (NOW() - dt.timedelta(days=2)).isoformat()}, "ends_at"),
    ({"title": "会", "region_code": V001, "ends_at": (NOW() + dt.timedelta(days=3)).isoformat()}, "ends_at"),
])
def test_bad_input_is_a_400_naming_the_field(client, auth, body, field):
    base = {"starts_at": (NOW() + dt.timedelta(hours=1)).isoformat(),
            "ends_at": (NOW() + dt.timedelta(hours=2)).isoformat()}
    r = client.post("/api/v1/meetings", headers=auth.headers("v001-editor"), json={**base, **body})
    assert r.status_code == 400, r.get_data(as_text=True)
    assert r.get_json()["error"]["field"] == field
    assert client.post("/api/v1/meetings", headers=auth.headers("v001-editor"), data="{").status_code == 400


def test_admission_window_and_a_single_publisher(app, client, auth):
    m = make_meeting(client, auth, start_in=dt.timedelta(hours=1))
    key, start = m["stream_key"], dt.datetime.fromisoformat(m["starts_at"])
    end = dt.datetime.fromisoformat(m["ends_at"])
    _fresh()
    with pytest.raises(ops.ApiError) as e:
        ops.admit_publish(key, "1", now=start - dt.timedelta(minutes=31))
    assert e.value.status == 403
    session.rollback()
    with pytest.raises(ops.ApiError):
        ops.admit_publish(key, "1", now=end + dt.timedelta(hours=2, minutes=1))
    session.rollback()
    with pytest.raises(ops.ApiError):
        ops.admit_publish("nope", "1")
    session.rollback()
    live = ops.admit_publish(key, "7", now=start - dt.timedelta(minutes=29))
    session.commit()
    assert live.status == "live"
    with pytest.raises(ops.ApiError) as e:
        ops.admit_publish(key, "8", now=start)
    assert e.value.code == "already_publishing"
    session.rollback()
    assert ops.publish_done(key, "8") is None  # a refused publisher's done changes nothing
    assert queries.meeting_by_key(key).status == "live"
    ops.publish_done(key, "7")
    session.commit()
    assert queries.meeting_by_key(key).status == "ended"
    # The encoder lost its uplink and comes back within the window: the meeting resumes.
    assert ops.admit_publish(key, "9", now=start).status == "live"
    session.commit()
    # Staff finish it for good: it ends and the old key is refused from now on.
    r = client.post(f"/api/v1/meetings/{m['id']}/finish", headers=auth.headers("v001-editor"))
    assert r.status_code == 200 and r.get_json()["status"] == "ended" and r.get_json()["stream_key"] != key
    _fresh()
    r = client.post("/api/v1/streams/on_publish", data={"app": "live", "name": key, "clientid": "10"})
    assert r.status_code == 403
    assert not (app.config["SETTINGS"].hls_dir / "meetings" / str(m["id"])).exists()
    assert client.post(f"/api/v1/meetings/{m['id']}/finish", headers=auth.headers("v002-editor")).status_code == 404


def _go_live(meeting_id):
    m = queries.meeting_by_id(meeting_id)
    ops.admit_publish(m.stream_key, "1")
    session.commit()
    return m


def test_voting_by_remote(any_db_app, client, auth, box):
    m = make_meeting(client, auth, start_in=dt.timedelta(minutes=-5))
    h = auth.headers("v001-editor")
    # No motion before the meeting is live.
    assert client.post(f"/api/v1/meetings/{m['id']}/motions", headers=h, json={"title": "修路"}).status_code == 409
    _go_live(m["id"])
    r = client.post(f"/api/v1/meetings/{m['id']}/motions", headers=h, json={"title": "是否同意硬化村东道路"})
    assert r.status_code == 201
    motion = r.get_json()["id"]
    assert client.post(f"/api/v1/meetings/{m['id']}/motions", headers=h, json={"title": "又一个"}).status_code == 409
    url = f"/api/v1/meetings/{m['id']}/motions/{motion}/vote"
    hh1, hh2 = box(MINE(0)), box(MINE(1))
    assert client.post(url, headers=hh1, json={"choice": "green"}).get_json()["results"]["yes"] == 1
    res = client.post(url, headers=hh1, json={"choice": "red"}).get_json()["results"]  # changed, not added
    assert res == {"yes": 0, "no": 1, "abstain": 0, "total": 1}
    assert client.post(url, headers=hh2, json={"choice": "yellow"}).status_code == 200
    assert client.post(url, headers=hh2, json={"choice": "purple"}).status_code == 400
    # A box of another village, or a box without a token, may not vote.
    assert client.post(url, headers=box(OTHER()), json={"choice": "yes"}).status_code == 403
    assert client.post(url, json={"choice": "yes"}).status_code == 401
    state = client.get(f"/api/v1/meetings/{m['id']}/state", headers=hh1).get_json()
    assert state["motion"]["title"] == "是否同意硬化村东道路" and state["motion"]["my_vote"] == "no"
    closed = client.post(f"/api/v1/meetings/{m['id']}/motions/{motion}/close", headers=h)
    assert closed.status_code == 200 and closed.get_json()["results"]["total"] == 2
    late = client.post(url, headers=hh1, json={"choice": "yes"})
    assert late.status_code == 409
    data = client.get(f"/api/v1/meetings/{m['id']}", headers=h).get_json()
    assert data["vote_results"] == [{"motion_id": motion, "title": "是否同意硬化村东道路", "yes": 0, "no": 1,
                                     "abstain": 1, "total": 2}]
    # Voting boxes count as attending.
    assert data["attendance"] == {"boxes": 2, "households": 2}


def test_attendance_from_heartbeats(app, client, auth):
    """Boxes whose latest heartbeat (as the fleet ingest stores it in Redis) plays the meeting count."""
    from device_fleet import presence
    from portal_server.core import redis as core_redis
    from portal_server.meetings import tasks

    m = make_meeting(client, auth, start_in=dt.timedelta(minutes=-5))
    _go_live(m["id"])
    r = core_redis.client()
    now = time.time()
    hb = lambda playing: json.dumps({"uptime_s": 100, "fw": "1.0", "cpu": 5, "mem_free_kb": 1000,
                                     "playing": playing, "page": "/tv/", "ts": int(now)})
    r.zadd(presence.LASTSEEN, {MINE(0): now, MINE(1): now, MINE(2): now, OTHER(): now})
    r.set(presence.HB + MINE(0), hb(f"http://127.0.0.1:8000/hls/meetings/{m['id']}/live.m3u8"))
    r.set(presence.HB + MINE(1), hb(f"meeting:{m['id']}"))
    r.set(presence.HB + MINE(2), hb("http://127.0.0.1:8000/hls/channels/city/index.m3u8"))
    r.set(presence.HB + OTHER(), hb(f"meeting:{m['id']}"))  # another village: not counted
    _fresh()
    assert tasks.collect_attendance() == {m["id"]: 2}
    assert tasks.collect_attendance() == {m["id"]: 2}  # idempotent per box
    data = client.get(f"/api/v1/meetings/{m['id']}", headers=auth.headers("v001-editor")).get_json()
    assert data["attendance"]["boxes"] == 2


def test_going_live_notifies_the_villages_boxes_and_the_home_screen(app, client, auth, box):
    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion

    from portal_server.core.mqtt import parse_url

    got, ready = [], threading.Event()
    args = parse_url(app.config["SETTINGS"].mqtt_server_url)
    sub = paho.Client(CallbackAPIVersion.VERSION2, client_id="mt-test-sub")
    sub.username_pw_set(args["username"], args["password"])
    sub.on_connect = lambda c, *a: c.subscribe(f"ctv/v1/region/{V001}/notice", qos=1)
    sub.on_subscribe = lambda *a: ready.set()
    sub.on_message = lambda c, u, msg: got.append(json.loads(msg.payload))
    sub.connect(args["host"], args["port"])
    sub.loop_start()
    try:
        assert ready.wait(5)
        m = make_meeting(client, auth, start_in=dt.timedelta(minutes=-5))
        _go_live(m["id"])  # the commit hands the notice to the outbox
        for _ in range(50):
            if got:
                break
            time.sleep(0.1)
        assert got and got[0]["type"] == "meeting_live" and got[0]["id"] == m["id"]
        assert got[0]["url"] == f"/tv/meetings/{m['id']}/live" and "东河村" in got[0]["title"]
    finally:
        sub.loop_stop()
        sub.disconnect()
    me = client.get("/tv/api/me", headers=box(MINE(0))).get_json()
    assert {"text": "东河村 村民议事会 正在直播", "url": f"/tv/meetings/{m['id']}/live",
            "meeting_id": m["id"]} in me["notices"]
    other = client.get("/tv/api/me", headers=box(OTHER())).get_json()
    assert not any("村民议事会" in n["text"] for n in other["notices"])


def test_a_broker_that_is_down_never_fails_the_meeting(app, client, auth):
    from portal_server.core import jobs
    app.config["SETTINGS"].mqtt_url = "mqtt://127.0.0.1:9"  # nothing listens there
    m = make_meeting(client, auth, start_in=dt.timedelta(minutes=-5))
    app.config["SETTINGS"].jobs_inline = False  # as in production: a worker sends the notice
    # RQ imported before the clock starts: a worker process importing it for the first time (from
    # source, on a busy CI machine) took 0.6 s, which is not waiting on the broker.
    assert jobs.queue("high").count == 0
    t0 = time.monotonic()
    _go_live(m["id"])
    assert time.monotonic() - t0 < 0.5  # the nginx callback never waits on the broker
    assert jobs.queue("high").count == 1  # the notice waits in the queue (retried by the worker)
    assert queries.meeting_by_id(m["id"]).status == "live"


def test_openapi_lists_the_meetings_and_stream_endpoints(client):
    doc = client.get("/api/v1/openapi.json").get_json()
    paths = doc["paths"]
    for p in ("/api/v1/meetings", "/api/v1/meetings/{meeting_id}", "/api/v1/streams/on_publish",
              "/api/v1/streams/on_publish_done", "/api/v1/meetings/{meeting_id}/motions/{motion_id}/vote",
              "/api/v1/epg/now-next"):
        assert p in paths, p
    assert "requestBody" in paths["/api/v1/meetings"]["post"]


def test_stream_callbacks_come_from_the_local_nginx_only(client):
    r = client.post("/api/v1/streams/on_publish", data={"app": "live", "name": "x"},
                    environ_base={"REMOTE_ADDR": "10.1.2.3"})
    assert r.status_code == 403
    # Through the public HTTP proxy (nginx adds X-Forwarded-For) is not "local" either.
    r = client.post("/api/v1/streams/on_publish_done", data={"app": "live", "name": "x"},
                    headers={"X-Forwarded-For": "203.0.113.9"})
    assert r.status_code == 403
