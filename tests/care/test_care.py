"""Elderly care: missed check-ins become grid-worker tasks, checking in clears them, escalation,
help calls, the 403 for another household, unmasking is audited, speech is a real audio file."""
import json
import subprocess
import time

import pytest
from sqlalchemy import select

from portal_server.care import operations as ops
from portal_server.core.audit import AuditEvent
from portal_server.core.db import session

from .conftest import VILLAGE


def _open_tasks(client, auth, user="grid-v001"):
    r = client.get("/api/v1/care-tasks?status=open", headers=auth.headers(user))
    assert r.status_code == 200, r.get_data(as_text=True)
    return r.get_json()["items"]


@pytest.mark.city_time
def test_missed_checkin_makes_a_task_for_the_grid_worker_and_checking_in_clears_it(client, auth, box, elderly_box, city_time):
    hid, serial = elderly_box
    # Before the configured hour nothing happens.
    assert ops.check_missed(city_time("09:30"))["opened"] == []
    session.commit()
    assert _open_tasks(client, auth) == []
    result = ops.check_missed(city_time("10:05"))
    session.commit()
    assert len(result["opened"]) >= 1
    mine = [t for t in _open_tasks(client, auth) if t["household"]["id"] == hid]
    assert len(mine) == 1
    t = mine[0]
    assert t["kind"] == "missed_checkin" and t["name"] and t["address"]
    assert "****" in t["phone"]
    # Running the check again does not duplicate the task.
    ops.check_missed(city_time("10:10"))
    session.commit()
    assert len([t for t in _open_tasks(client, auth) if t["household"]["id"] == hid]) == 1
    # Another village's grid scope does not see it (v002 handler sees nothing of village 001).
    assert all(x["household"]["region_code"] != VILLAGE for x in _open_tasks(client, auth, "v002-handler"))
    # The box checks in: 201, then idempotent 200; the task is gone.
    r = client.post("/api/v1/checkins", json={}, headers=box(serial))
    assert r.status_code == 201, r.get_data(as_text=True)
    assert client.post("/api/v1/checkins", headers=box(serial)).status_code == 200
    assert [t for t in _open_tasks(client, auth) if t["household"]["id"] == hid] == []
    assert client.get("/api/v1/checkins/today", headers=box(serial)).get_json() == {
        **client.get("/api/v1/checkins/today", headers=box(serial)).get_json(), "required": True, "done_today": True}


@pytest.mark.city_time
def test_tv_use_counts_as_seen(client, auth, elderly_box, city_time, app):
    from device_fleet.presence import HB, LASTSEEN
    from portal_server.core import redis as core_redis
    hid, serial = elderly_box
    r = core_redis.client()
    r.zadd(LASTSEEN, {serial: time.time()})
    r.set(HB + serial, json.dumps({"page": "home", "playing": None, "ts": int(time.time())}))
    ops.check_missed(city_time("10:30"))
    session.commit()
    assert [t for t in _open_tasks(client, auth) if t["household"]["id"] == hid] == []


def test_checkin_for_another_household_is_403(client, box, elderly_box):
    hid, serial = elderly_box
    other = hid + 1
    r = client.post("/api/v1/checkins", json={"household_id": other}, headers=box(serial))
    assert r.status_code == 403
    assert client.post("/api/v1/checkins", json={"household_id": hid}, headers=box(serial)).status_code == 201
    # An institutional box (a village hall) has no household.
    assert client.post("/api/v1/checkins", headers=box("CTV-VIL-001")).status_code == 403
    assert client.post("/api/v1/checkins").status_code == 401


@pytest.mark.city_time
def test_unanswered_by_evening_goes_to_the_village_head(client, auth, elderly_box, city_time):
    hid, _ = elderly_box
    ops.check_missed(city_time("10:05"))
    session.commit()
    assert [t for t in _open_tasks(client, auth, "v001-handler") if t["household"]["id"] == hid] == []
    res = ops.check_missed(city_time("18:30"))
    session.commit()
    assert res["escalated"]
    head = [t for t in _open_tasks(client, auth, "v001-handler") if t["household"]["id"] == hid]
    assert len(head) == 1 and head[0]["status"] == "escalated"
    # The village head closes it with a note; unmasking the phone is audited.
    tid = head[0]["id"]
    r = client.post(f"/api/v1/care-tasks/{tid}/unmask", headers=auth.headers("v001-handler"))
    assert r.status_code == 200 and "*" not in r.get_json()["phone"]
    ev = session.scalars(select(AuditEvent).where(AuditEvent.action == "pii.unmask",
                                                  AuditEvent.object_id == str(hid))).all()
    assert ev, "unmask was not audited"
    assert client.post(f"/api/v1/care-tasks/{tid}/close", json={"note": ""},
                       headers=auth.headers("v001-handler")).status_code == 400
    r = client.post(f"/api/v1/care-tasks/{tid}/close", json={"note": "已上门，老人身体无恙"},
                    headers=auth.headers("v001-handler"))
    assert r.status_code == 200 and r.get_json()["status"] == "done"


def test_help_call_files_a_work_order_and_a_task(client, auth, box, elderly_box):
    hid, serial = elderly_box
    r = client.post("/api/v1/care/help", headers=box(serial))
    assert r.status_code == 201, r.get_data(as_text=True)
    body = r.get_json()
    again = client.post("/api/v1/care/help", headers=box(serial))
    assert again.status_code == 200 and again.get_json()["task_id"] == body["task_id"]
    tasks = [t for t in _open_tasks(client, auth) if t["kind"] == "help"]
    assert [t["household"]["id"] for t in tasks] == [hid]
    assert body["work_order"] and body["work_order"]["code"]
    order = client.get(f"/api/v1/feedback/{body['work_order']['id']}", headers=auth.headers("v001-handler"))
    assert order.status_code == 200 and order.get_json()["category"] == "elderly"


def test_a_demo_item_plays_as_speech(client, box, app):
    code = client.get("/api/v1/services", query_string={"q": "居民养老保险参保登记"}).get_json()["items"][0]["code"]
    r = client.post("/api/v1/speech", json={"ref": f"service:{code}"}, headers=box("CTV-HH-000001"))
    assert r.status_code == 200, r.get_data(as_text=True)
    url = r.get_json()["url"]
    assert url.startswith("/media/speech/") and url.endswith(".m4a")
    path = app.config["SETTINGS"].media_dir / "speech" / url.rsplit("/", 1)[1]
    probe = json.loads(subprocess.run(["ffprobe", "-v", "error", "-show_streams", "-show_format", "-of", "json",
                                       str(path)], capture_output=True, check=True).stdout)
    audio = [s for s in probe["streams"] if s["codec_type"] == "audio"]
    assert audio and audio[0]["codec_name"] == "aac"
    assert float(probe["format"]["duration"]) > 3  # a sentence, not a click
    got = client.get(url)
    assert got.status_code == 200 and got.data[:len(path.read_bytes()[:16])] == path.read_bytes()[:16]
    # The same text is made once.
    again = client.post("/api/v1/speech", json={"ref": f"service:{code}"}, headers=box("CTV-HH-000002"))
    assert again.get_json()["url"] == url
    assert client.post("/api/v1/speech", json={"ref": "nonsense:1"}, headers=box("CTV-HH-000001")).status_code == 400


def test_elderly_services_listed_by_village(client, box):
    r = client.get("/api/v1/elderly-services", headers=box("CTV-HH-000001"))
    items = r.get_json()["items"]
    kinds = {i["kind"] for i in items}
    assert {"meal", "health_check", "home_visit"} <= kinds
    assert all(i["region_code"] == VILLAGE for i in items)


@pytest.mark.city_time
def test_care_times_are_settings_read_from_the_environment(app, client, auth, elderly_box, city_time,
                                                           monkeypatch, tmp_path):
    import pytest

    from portal_server.core.config import Settings
    hid, _ = elderly_box
    # Defaults (as documented in the README) and the COMMUNITV_* variables.
    s = Settings(data_dir=tmp_path, secret_key="x" * 40)
    assert (s.care_checkin_deadline, s.care_escalate_at) == ("10:00", "18:00")
    monkeypatch.setenv("COMMUNITV_CARE_CHECKIN_DEADLINE", "08:00")
    monkeypatch.setenv("COMMUNITV_CARE_ESCALATE_AT", "16:30")
    s = Settings.from_env(data_dir=tmp_path, secret_key="x" * 40)
    assert (s.care_checkin_deadline, s.care_escalate_at) == ("08:00", "16:30")
    monkeypatch.setenv("COMMUNITV_CARE_ESCALATE_AT", "6pm")
    with pytest.raises(ValueError, match="COMMUNITV_CARE_ESCALATE_AT"):
        Settings.from_env(data_dir=tmp_path, secret_key="x" * 40)
    # The app's settings drive the daily check: an 08:00 deadline opens the task at 08:30,
    # a 16:30 escalation hands it to the village head at 17:00.
    app.config["SETTINGS"].care_checkin_deadline = "08:00"
    app.config["SETTINGS"].care_escalate_at = "16:30"
    assert ops.check_missed(city_time("07:59"))["opened"] == []
    assert ops.check_missed(city_time("08:30"))["opened"]
    session.commit()
    assert [t for t in _open_tasks(client, auth) if t["household"]["id"] == hid]
    assert [t for t in _open_tasks(client, auth, "v001-handler") if t["household"]["id"] == hid] == []
    assert ops.check_missed(city_time("17:00"))["escalated"]
    session.commit()
    assert [t for t in _open_tasks(client, auth, "v001-handler") if t["household"]["id"] == hid]
