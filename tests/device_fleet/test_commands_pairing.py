"""Pairing, commands, CSV import, alarms and rollouts — real broker, real ingest, mosquitto_* as boxes."""
import json
import subprocess
import time

import pytest

from device_fleet import operations
from portal_server.core.audit import events_for
from portal_server.core.db import session
from portal_server.core.terminals import terminal_by_serial

from .conftest import boxes, pub, read_config


def wait_for(fn, timeout=5.0, step=0.1):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = fn()
        if v:
            return v
        time.sleep(step)
    return fn()


def test_binding_through_the_api_flips_the_config_to_paired(app, client, auth, ingest, port):
    sec = boxes(app, "CTV-NEW-0002")["CTV-NEW-0002"]
    pub(port, "CTV-NEW-0002", sec, "hello", json.dumps({"model": "CTV-S905", "fw": "2.3.1"}))
    cfg = wait_for(lambda: read_config(port, "CTV-NEW-0002", sec, wait=2))
    assert cfg["state"] == "unpaired"
    code = cfg["pairing_code"]
    hh = client.get("/api/v1/terminals/CTV-HH-010001", headers=auth.headers("noc")).get_json()["household_id"]
    t0 = time.time()
    r = client.post("/api/v1/terminals/CTV-NEW-0002/bind", json={"household_id": hh}, headers=auth.headers("noc"))
    assert r.status_code == 200, r.get_data(as_text=True)
    assert r.get_json()["region_code"] == "990101001002" and "/tv/?token=" in r.get_json()["portal_url"]
    cfg = read_config(port, "CTV-NEW-0002", sec)
    assert time.time() - t0 < 2.0
    assert cfg["state"] == "paired"
    assert cfg["region_codes"] == ["990100000000", "990101001000", "990101001002"]
    assert "pairing_code" not in cfg
    assert operations.terminal_by_pairing_code(code) is None
    assert [e.action for e in events_for("terminal", "CTV-NEW-0002")] == ["terminal.bind"]


def test_bind_refuses_outside_scope_and_bad_input(app, client, auth):
    h = auth.headers("v002-handler")
    r = client.post("/api/v1/terminals/CTV-NEW-0003/bind", json={"region_code": "990101001002"}, headers=h)
    assert r.status_code in (403, 404)  # inventory is visible to city staff only
    noc = auth.headers("noc")
    r = client.post("/api/v1/terminals/CTV-NEW-0003/bind", json={}, headers=noc)
    assert r.status_code == 400 and "household_id" in str(r.get_json()["error"])
    r = client.post("/api/v1/terminals/CTV-NEW-0003/bind", json={"household_id": 999999}, headers=noc)
    assert r.status_code == 400
    r = client.post("/api/v1/terminals/CTV-NEW-0003/bind", json={"region_code": "990101001003"}, headers=noc)
    assert r.status_code == 200 and r.get_json()["kind"] == "village"


def test_pairing_page_on_the_installers_phone(app, client, auth, ingest, port):
    sec = boxes(app, "CTV-NEW-0004")["CTV-NEW-0004"]
    pub(port, "CTV-NEW-0004", sec, "hello", json.dumps({"model": "CTV-S905", "fw": "2.3.1"}))
    code = wait_for(lambda: read_config(port, "CTV-NEW-0004", sec, wait=2))["pairing_code"]
    r = client.get(f"/m/pair?code={code}")
    assert r.status_code == 302 and "/admin/login" in r.headers["Location"]
    auth.login("grid-v001")
    page = client.get(f"/m/pair?code={code}").get_data(as_text=True)
    assert "CTV-NEW-0004" in page
    import re
    from tests.conftest import csrf_from
    hh = re.search(r'name="household_id" value="(\d+)"', page).group(1)
    r = client.post("/m/pair", data={"code": code, "household_id": hh, "csrf_token": csrf_from(page)})
    assert r.status_code == 200 and "绑定成功" in r.get_data(as_text=True)
    assert read_config(port, "CTV-NEW-0004", sec)["state"] == "paired"
    assert terminal_by_serial("CTV-NEW-0004").region.code == "990101001001"


def test_reboot_command_is_acked_and_shown(app, client, auth, ingest, port):
    sec = boxes(app, "CTV-HH-000001")["CTV-HH-000001"]
    box = subprocess.Popen(["mosquitto_sub", "-p", port, "-u", "CTV-HH-000001", "-P", sec, "-i", "CTV-HH-000001",
                            "-t", "ctv/v1/dev/CTV-HH-000001/cmd", "-C", "1", "-W", "10"],
                           stdout=subprocess.PIPE, text=True)
    time.sleep(0.5)
    h = auth.headers("noc")
    r = client.post("/api/v1/terminals/CTV-HH-000001/commands", json={"type": "reboot"}, headers=h)
    assert r.status_code == 201 and r.get_json()["status"] == "sent"
    cid = r.get_json()["id"]
    cmd = json.loads(box.communicate(timeout=10)[0])
    assert cmd["id"] == cid and cmd["type"] == "reboot" and cmd["expires"] > time.time()
    got = []
    from portal_server.core import signals

    def rec(sender, **kw):
        got.append((sender, kw))
    signals.box_acked.connect(rec)
    try:
        pub(port, "CTV-HH-000001", sec, "ack", json.dumps({"kind": "cmd", "id": cid, "ok": True,
                                                            "detail": "rebooting", "ts": int(time.time())}))
        st = wait_for(lambda: client.get(f"/api/v1/commands/{cid}", headers=h).get_json()["status"] != "sent" and
                      client.get(f"/api/v1/commands/{cid}", headers=h).get_json())
    finally:
        signals.box_acked.disconnect(rec)
    assert st["status"] == "acked" and st["detail"] == "rebooting" and st["serial"] == "CTV-HH-000001"
    assert got and got[0][0] == "CTV-HH-000001" and got[0][1]["kind"] == "cmd"
    listed = client.get("/api/v1/terminals/CTV-HH-000001/commands", headers=h).get_json()["items"]
    assert listed[0]["id"] == cid and listed[0]["status"] == "acked"
    # Another box cannot read this box's commands.
    other = boxes(app, "CTV-HH-000002")["CTV-HH-000002"]
    r = subprocess.run(["mosquitto_sub", "-p", port, "-u", "CTV-HH-000002", "-P", other, "-i", "CTV-HH-000002",
                        "-t", "ctv/v1/dev/CTV-HH-000001/cmd", "-C", "1", "-W", "2"],
                       capture_output=True, text=True, timeout=10)
    assert "denied" in (r.stdout + r.stderr)


def test_bad_commands_are_refused_and_unacked_ones_expire(app, client, auth, ingest):
    h = auth.headers("noc")
    assert client.post("/api/v1/terminals/CTV-HH-000001/commands", json={"type": "explode"}, headers=h).status_code == 400
    r = client.post("/api/v1/terminals/CTV-HH-000001/commands", json={"type": "tune", "args": {}}, headers=h)
    assert r.status_code == 400 and "url" in str(r.get_json()["error"])
    r = client.post("/api/v1/terminals/CTV-HH-000001/commands",
                    json={"type": "message", "args": {"text": "今晚停电检修"}, "expires_s": 10}, headers=h)
    cid = r.get_json()["id"]
    from portal_server.core.db import session
    from device_fleet.models import Command
    import datetime as dt
    session.get(Command, cid).expires_at = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=1)
    session.commit()
    st = wait_for(lambda: client.get(f"/api/v1/commands/{cid}", headers=h).get_json()["status"] == "expired")
    assert st


def test_bulk_command_by_region(app, client, auth):
    h = auth.headers("noc")
    r = client.post("/api/v1/commands", json={"type": "reload", "region": "990101001001"}, headers=h)
    assert r.status_code == 201
    assert r.get_json()["total"] == 5  # four households and the village hall
    assert client.post("/api/v1/commands", json={"type": "reload", "model": "NOPE"}, headers=h).status_code == 400


def test_csv_import_with_a_bad_row_imports_nothing(app, tmp_path, mosquitto_server):
    good = "serial,mac,model,secret\nCTV-IMP-0001,00:11:22:33:44:55,CTV-S905,abcdefghijklmnop1\n"
    bad = good + "CTV-IMP-0002,zz:11,CTV-S905,abcdefghijklmnop2\n"
    f = tmp_path / "bad.csv"
    f.write_text(bad)
    res = operations.parse_inventory_csv
    with pytest.raises(operations.ImportRowError) as exc:
        operations.import_terminals(bad)
    assert exc.value.line == 3 and "MAC" in str(exc.value)
    assert terminal_by_serial("CTV-IMP-0001") is None
    # The good file: the box is in the inventory and can connect to the broker with its secret.
    operations.import_terminals(good)
    session.commit()  # the handler's (here: the test's) one commit
    assert terminal_by_serial("CTV-IMP-0001").paired is False
    port = str(mosquitto_server["port"])
    ok = subprocess.run(["mosquitto_pub", "-p", port, "-u", "CTV-IMP-0001", "-P", "abcdefghijklmnop1",
                         "-i", "CTV-IMP-0001", "-t", "ctv/v1/dev/CTV-IMP-0001/hello", "-m", "{}"],
                        capture_output=True, text=True, timeout=10)
    assert ok.returncode == 0, ok.stderr
    assert res  # parse is public too


def test_csv_import_command_reports_the_line(app, tmp_path):
    f = tmp_path / "inv.csv"
    f.write_text("serial,mac,model,secret\nCTV-IMP-0003,,CTV-S905,abcdefghijklmnop3\nCTV-IMP-0003,,CTV-S905,abcdefghijklmnop3\n")
    from device_fleet.cli import run_import
    code, out = run_import(app, str(f))
    assert code != 0 and "第 3 行" in out
    assert terminal_by_serial("CTV-IMP-0003") is None


def test_alarms_institutional_offline_and_area_outage_clear_themselves(app, client, auth, ingest):
    app.config["FLEET_INSTITUTIONAL_OFFLINE_S"] = 1
    from device_fleet import presence
    from portal_server.core import redis as core_redis
    r = core_redis.client()
    now = time.time()
    # Village 001: five boxes, three dropped within two minutes → one area outage, not three alarms.
    r.zadd(presence.LASTSEEN, {"CTV-HH-000001": now - 30, "CTV-HH-000002": now - 40, "CTV-VIL-001": now - 50,
                               "CTV-HH-000003": now, "CTV-HH-000004": now,
                               "CTV-VIL-002": now - 60})  # village 002's hall alone: institutional alarm
    h = auth.headers("noc")

    def kinds():
        rows = client.get("/api/v1/alarms", headers=h).get_json()["items"]
        return sorted((a["kind"], a["serial"] or a["region_code"]) for a in rows)
    got = wait_for(lambda: len(kinds()) == 2 and kinds())
    assert got == [("area_outage", "990101001001"), ("institutional_offline", "CTV-VIL-002")]
    r.zadd(presence.LASTSEEN, {"CTV-HH-000001": time.time(), "CTV-HH-000002": time.time(),
                               "CTV-VIL-001": time.time(), "CTV-VIL-002": time.time()})
    assert wait_for(lambda: kinds() == [])


def test_a_power_blip_raises_no_outage_and_a_lasting_cut_raises_one(app):
    """Boxes that drop and are back within the grace (30 s) raise no area outage (no flapping
    alarm per village after a one-second power cut); a cut that lasts raises one."""
    from device_fleet import presence
    from device_fleet.operations import evaluate_alarms
    from device_fleet.models import Alarm
    from portal_server.core import redis as core_redis
    from portal_server.core.db import session
    from sqlalchemy import select
    r = core_redis.client()
    t0 = time.time()
    village = {"CTV-HH-000001": t0 - 3, "CTV-HH-000002": t0 - 3, "CTV-HH-000003": t0 - 3,
               "CTV-HH-000004": t0, "CTV-VIL-001": t0}
    r.zadd(presence.LASTSEEN, village)
    with app.app_context():
        def outages():
            return [a.region_code for a in session.scalars(select(Alarm).where(
                Alarm.kind == "area_outage", Alarm.cleared_at.is_(None)))]
        evaluate_alarms(now=t0 + 5)          # three of five down for 8 s: a blip so far
        assert outages() == []
        evaluate_alarms(now=t0 + 40)         # still down after the grace: one alarm for the village
        assert outages() == ["990101001001"]
        session.rollback()
