"""The ingest against a real Mosquitto, with mosquitto_pub/mosquitto_sub as outside boxes."""
import json
import subprocess
import time




from .conftest import boxes, pub, read_config, sub_one  # noqa: F401


def test_hello_gets_retained_paired_config_with_region_chain(app, ingest, port):
    sec = boxes(app, "CTV-HH-000001")["CTV-HH-000001"]
    assert pub(port, "CTV-HH-000001", sec, "hello", json.dumps({"model": "CTV-S905", "fw": "2.3.2", "ts": 1})).returncode == 0
    time.sleep(1.0)
    # Retained: a subscriber that comes later still gets it (same client id family).
    r = subprocess.run(["mosquitto_sub", "-p", port, "-u", "CTV-HH-000001", "-P", sec, "-i", "CTV-HH-000001",
                        "-t", "ctv/v1/dev/CTV-HH-000001/config", "-C", "1", "-W", "5"],
                       capture_output=True, text=True, timeout=10)
    cfg = json.loads(r.stdout)
    assert cfg["state"] == "paired"
    assert cfg["region_codes"] == ["990100000000", "990101001000", "990101001001"]
    assert "/tv/?token=" in cfg["portal_url"] and cfg["heartbeat_s"] == 2


def test_a_box_cannot_forge_its_own_retained_config(app, ingest, port):
    """The ingest trusts the config retained on the broker; only the server may write it."""
    sec = boxes(app, "CTV-HH-000001")["CTV-HH-000001"]
    pub(port, "CTV-HH-000001", sec, "hello", json.dumps({"model": "CTV-S905", "fw": "2.3.2", "ts": 1}))
    assert "/tv/?token=" in (read_config(port, "CTV-HH-000001", sec) or {}).get("portal_url", "")
    forged = json.dumps({"state": "paired", "portal_url": "http://evil.example/", "heartbeat_s": 2})
    r = subprocess.run(["mosquitto_pub", "-p", port, "-u", "CTV-HH-000001", "-P", sec, "-i", "CTV-HH-000001",
                        "-q", "1", "-r", "-t", "ctv/v1/dev/CTV-HH-000001/config", "-m", forged],
                       capture_output=True, text=True, timeout=10)
    time.sleep(0.5)
    cfg = read_config(port, "CTV-HH-000001", sec)
    assert cfg and "evil" not in cfg["portal_url"] and "/tv/?token=" in cfg["portal_url"], (cfg, r.stderr)


def test_unbound_box_gets_a_pairing_code(app, ingest, port):
    sec = boxes(app, "CTV-NEW-0001")["CTV-NEW-0001"]
    pub(port, "CTV-NEW-0001", sec, "hello", json.dumps({"model": "CTV-S905", "fw": "2.3.1"}))
    r = subprocess.run(["mosquitto_sub", "-p", port, "-u", "CTV-NEW-0001", "-P", sec, "-i", "CTV-NEW-0001",
                        "-t", "ctv/v1/dev/CTV-NEW-0001/config", "-C", "1", "-W", "5"],
                       capture_output=True, text=True, timeout=10)
    cfg = json.loads(r.stdout)
    assert cfg["state"] == "unpaired" and len(cfg["pairing_code"]) == 6 and "portal_url" not in cfg


def test_box_cannot_read_another_box_or_publish_outside_its_topics(app, port):
    secs = boxes(app, "CTV-HH-000001", "CTV-HH-000002")
    a = secs["CTV-HH-000001"]
    r = subprocess.run(["mosquitto_sub", "-p", port, "-u", "CTV-HH-000001", "-P", a, "-i", "CTV-HH-000001",
                        "-t", "ctv/v1/dev/CTV-HH-000002/config", "-C", "1", "-W", "2"],
                       capture_output=True, text=True, timeout=10)
    assert "denied" in (r.stdout + r.stderr)
    bad = subprocess.run(["mosquitto_sub", "-p", port, "-u", "CTV-HH-000001", "-P", "wrong", "-i", "CTV-HH-000001",
                          "-t", "ctv/v1/dev/CTV-HH-000001/config", "-C", "1", "-W", "2"],
                         capture_output=True, text=True, timeout=10)
    assert bad.returncode != 0 and "not authorised" in bad.stderr


def test_heartbeats_make_a_box_online_and_silence_offline(app, client, auth, ingest, port):
    sec = boxes(app, "CTV-HH-000003")["CTV-HH-000003"]
    h = auth.headers("noc")
    hb = json.dumps({"uptime_s": 5, "fw": "2.3.1", "cpu": 3, "mem_free_kb": 50000, "playing": None,
                     "page": "home", "ts": int(time.time())})
    assert pub(port, "CTV-HH-000003", sec, "hb", hb).returncode == 0
    deadline = time.time() + 3
    while time.time() < deadline and not client.get("/api/v1/terminals/CTV-HH-000003", headers=h).get_json()["online"]:
        time.sleep(0.1)
    t = client.get("/api/v1/terminals/CTV-HH-000003", headers=h).get_json()
    assert t["online"] and t["last_heartbeat"]["page"] == "home" and "+08:00" in t["last_seen"]
    online = client.get("/api/v1/terminals?status=online&per_page=1000", headers=h).get_json()
    assert "CTV-HH-000003" in {x["serial"] for x in online["items"]}
    time.sleep(2.5 * 2 + 0.5)  # 2.5 × heartbeat_s without a heartbeat
    assert client.get("/api/v1/terminals/CTV-HH-000003", headers=h).get_json()["online"] is False


def test_last_will_marks_offline_at_once(app, client, auth, ingest, port):
    sec = boxes(app, "CTV-HH-000004")["CTV-HH-000004"]
    h = auth.headers("noc")
    pub(port, "CTV-HH-000004", sec, "hb", json.dumps({"uptime_s": 1, "ts": 1}))
    time.sleep(0.6)
    assert client.get("/api/v1/terminals/CTV-HH-000004", headers=h).get_json()["online"]
    pub(port, "CTV-HH-000004", sec, "status", json.dumps({"state": "offline", "ts": 2}))
    time.sleep(0.6)
    assert client.get("/api/v1/terminals/CTV-HH-000004", headers=h).get_json()["online"] is False


def test_malformed_payloads_are_counted_and_ingest_survives(app, client, ingest, port):
    sec = boxes(app, "CTV-HH-000002")["CTV-HH-000002"]
    pub(port, "CTV-HH-000002", sec, "hb", "{not json")
    pub(port, "CTV-HH-000002", sec, "hello", "x" * 20000)
    time.sleep(0.8)
    text = client.get("/metrics").get_data(as_text=True)
    assert 'ctv_ingest_dropped_total{reason="malformed"} 1' in text
    assert 'ctv_ingest_dropped_total{reason="too_large"} 1' in text
    # Still answering.
    pub(port, "CTV-HH-000002", sec, "hello", json.dumps({"model": "m", "fw": "2.3.1"}))
    r = subprocess.run(["mosquitto_sub", "-p", port, "-u", "CTV-HH-000002", "-P", sec, "-i", "CTV-HH-000002",
                        "-t", "ctv/v1/dev/CTV-HH-000002/config", "-C", "1", "-W", "5"],
                       capture_output=True, text=True, timeout=10)
    assert json.loads(r.stdout)["state"] == "paired"
