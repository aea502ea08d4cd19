"""Issue 6's "How it will be checked", item by item, with real mosquitto_pub/mosquitto_sub as outside boxes.

Every test first clears what an earlier test may have left retained on the shared broker, so what it
reads can only have come from what it did.
"""
import json
import signal
import subprocess
import time

from device_fleet.cli import run_import
from portal_server.core.protocol import dev_topic
from portal_server.core import mqtt

from .conftest import boxes, pub

HB_S = 2  # heartbeat_s of the test settings


def wait_for(fn, timeout=5.0, step=0.1):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = fn()
        if v:
            return v
        time.sleep(step)
    return fn()


def clear_retained(serial):
    mqtt.publish(dev_topic(serial, "config"), b"", retain=True)
    mqtt.publish(dev_topic(serial, "status"), b"", retain=True)


def retained_config(port, serial, secret, wait=3):
    """The box's config as the broker holds it → (retained flag, config) or None (client id = serial:
    the broker refuses any other for a box's account)."""
    r = subprocess.run(["mosquitto_sub", "-p", port, "-u", serial, "-P", secret, "-i", serial,
                        "-t", dev_topic(serial, "config"), "-C", "1", "-W", str(wait), "-F", "%r %p"],
                       capture_output=True, text=True, timeout=wait + 5, check=False)
    if not r.stdout.strip():
        return None
    flag, payload = r.stdout.strip().split(" ", 1)
    return flag == "1", json.loads(payload)


def config_after(port, serial, secret, state):
    """Wait until the broker holds a config in ``state``, then read it afresh: a subscriber that came
    while the server published gets it live (retain flag 0); a later one proves it is retained."""
    assert wait_for(lambda: (c := retained_config(port, serial, secret, wait=1)) and c[1]["state"] == state), \
        f"no {state} config for {serial}"
    return retained_config(port, serial, secret)


def hb(uptime=5):
    return json.dumps({"uptime_s": uptime, "fw": "2.3.1", "cpu": 3, "mem_free_kb": 50000, "playing": None,
                       "page": "home", "ts": int(time.time())})


def test_demo_box_hello_is_answered_with_a_retained_paired_config_naming_its_three_regions(app, ingest, port):
    serial = "CTV-HH-520002"  # a household box of village 53 (index 52)
    sec = boxes(app, serial)[serial]
    clear_retained(serial)
    assert retained_config(port, serial, sec, wait=1) is None
    assert pub(port, serial, sec, "hello", json.dumps({"model": "CTV-S905", "fw": "2.3.1", "ts": 1})).returncode == 0
    retained, cfg = config_after(port, serial, sec, "paired")
    assert retained
    village = cfg["region_codes"][-1]
    assert cfg["state"] == "paired" and len(cfg["region_codes"]) == 3
    assert cfg["region_codes"] == ["990100000000", village[:9] + "000", village]
    assert village[9:] != "000" and village[6:9] != "000"  # a village, in a town
    assert app.config["SETTINGS"].public_url in cfg["portal_url"] and "/tv/?token=" in cfg["portal_url"]


def test_unbound_imported_box_gets_a_pairing_code_and_binding_through_the_api_flips_it_to_paired(
        app, client, auth, ingest, port, tmp_path):
    serial, secret = "CTV-IMP-0101", "imported-secret-0101"
    csv = tmp_path / "inventory.csv"
    csv.write_text(f"serial,mac,model,secret\n{serial},00:11:22:33:44:66,CTV-S905,{secret}\n")
    code, msg = run_import(app, str(csv))  # what `communitv terminals import FILE.csv` runs
    assert code == 0, msg
    clear_retained(serial)
    assert pub(port, serial, secret, "hello", json.dumps({"model": "CTV-S905", "fw": "2.3.1"})).returncode == 0
    retained, cfg = config_after(port, serial, secret, "unpaired")
    assert retained and cfg["state"] == "unpaired" and "portal_url" not in cfg, (retained, cfg)
    pairing = cfg["pairing_code"]
    assert len(pairing) == 6
    assert pairing in client.get(f"/tv/pair?code={pairing}").get_data(as_text=True)  # what the TV shows

    h = auth.headers("noc")
    hh = client.get("/api/v1/terminals/CTV-HH-030001", headers=h).get_json()["household_id"]
    # The box stays subscribed (as a box does): its retained unpaired config, then the paired one live.
    box = subprocess.Popen(["mosquitto_sub", "-p", port, "-u", serial, "-P", secret, "-i", serial, "-q", "1",
                            "-t", dev_topic(serial, "config"), "-C", "2", "-W", "10"], stdout=subprocess.PIPE, text=True)
    assert json.loads(box.stdout.readline())["state"] == "unpaired"
    t0 = time.time()
    r = client.post(f"/api/v1/terminals/{serial}/bind", json={"household_id": hh}, headers=h)
    assert r.status_code == 200, r.get_data(as_text=True)
    live = json.loads(box.stdout.readline())
    assert time.time() - t0 < 1.0, "the box did not get its paired config within a second"
    assert live["state"] == "paired"
    box.wait(5)
    retained, cfg = config_after(port, serial, secret, "paired")
    assert retained and cfg["region_codes"] == ["990100000000", "990101001000", "990101001004"]
    assert "pairing_code" not in cfg and "/tv/?token=" in cfg["portal_url"]


def test_heartbeats_make_a_box_online_and_silence_offline_within_two_and_a_half_heartbeats(
        app, client, auth, ingest, port):
    serial = "CTV-HH-530001"
    sec = boxes(app, serial)[serial]
    h = auth.headers("noc")

    def online():
        return client.get(f"/api/v1/terminals/{serial}", headers=h).get_json()["online"]
    assert not online()
    for i in range(3):
        assert pub(port, serial, sec, "hb", hb(i)).returncode == 0
        assert wait_for(online, timeout=2), "a heartbeat did not make the box online"
        time.sleep(HB_S / 2)
    last = time.time()
    listed = client.get("/api/v1/terminals?status=online&per_page=1000", headers=h).get_json()["items"]
    assert serial in {x["serial"] for x in listed}
    while online():
        time.sleep(0.1)
        assert time.time() - last < 2.5 * HB_S + 1.0, "still online after 2.5 × heartbeat_s"
    assert time.time() - last > 2.5 * HB_S - 1.5, "offline before 2.5 × heartbeat_s without heartbeats"
    listed = client.get("/api/v1/terminals?status=offline&per_page=1000", headers=h).get_json()["items"]
    assert serial in {x["serial"] for x in listed}


def test_a_box_that_drops_off_is_offline_by_its_last_will_sooner(app, client, auth, ingest, port):
    serial = "CTV-HH-530002"
    sec = boxes(app, serial)[serial]
    clear_retained(serial)
    h = auth.headers("noc")

    def online():
        return client.get(f"/api/v1/terminals/{serial}", headers=h).get_json()["online"]
    # The box: one connection with its Last Will (retained status offline), as the agent connects; it
    # heartbeats over that connection (mosquitto_pub -l publishes each line read from stdin).
    box = subprocess.Popen(["mosquitto_pub", "-p", port, "-u", serial, "-P", sec, "-i", serial, "-k", "60",
                            "-t", dev_topic(serial, "hb"), "-l", "--will-topic", dev_topic(serial, "status"),
                            "--will-payload", json.dumps({"state": "offline", "ts": 1}), "--will-qos", "1",
                            "--will-retain"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, text=True)
    try:
        box.stdin.write(hb() + "\n")
        box.stdin.flush()
        assert wait_for(online, timeout=3), box.stderr.read() if box.poll() is not None else "not online"
        box.send_signal(signal.SIGKILL)  # power cut: no DISCONNECT, the broker publishes the Will
        box.wait(5)
        t0 = time.time()
        assert wait_for(lambda: not online(), timeout=2.5 * HB_S)
        assert time.time() - t0 < 2.0 < 2.5 * HB_S, "the Last Will did not make the box offline sooner"
    finally:
        if box.poll() is None:
            box.kill()
            box.wait(5)


def test_box_a_cannot_read_box_b_config_or_commands_even_with_wildcards(app, client, auth, ingest, port):
    a, b = "CTV-HH-540001", "CTV-HH-540002"
    secs = boxes(app, a, b)
    clear_retained(b)
    pub(port, b, secs[b], "hello", json.dumps({"model": "CTV-S905", "fw": "2.3.1"}))
    assert wait_for(lambda: retained_config(port, b, secs[b], wait=1)), "B has a retained config"
    for topic in (dev_topic(b, "config"), dev_topic(b, "cmd"), dev_topic(b, "#"), "ctv/v1/dev/+/config",
                  "ctv/v1/dev/+/cmd", "ctv/v1/#", "#"):
        r = subprocess.run(["mosquitto_sub", "-p", port, "-u", a, "-P", secs[a], "-i", a, "-t", topic, "-C", "1",
                            "-W", "2", "-v"], capture_output=True, text=True, timeout=10, check=False)
        assert b not in r.stdout, f"A read {topic}: {r.stdout!r}"
    # A command to B while A listens on every command topic it might be allowed to.
    listener = subprocess.Popen(["mosquitto_sub", "-p", port, "-u", a, "-P", secs[a], "-i", a, "-v",
                                 "-t", "ctv/v1/dev/+/cmd", "-t", "ctv/v1/#", "-W", "3"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(0.5)
    r = client.post(f"/api/v1/terminals/{b}/commands", json={"type": "reboot"}, headers=auth.headers("noc"))
    assert r.status_code == 201
    out, _ = listener.communicate(timeout=10)
    assert b not in out
    # Nor can A speak for B: a heartbeat published under B's topics is refused by the broker.
    pub(port, a, secs[a], "hb", hb())  # its own: fine
    subprocess.run(["mosquitto_pub", "-p", port, "-u", a, "-P", secs[a], "-i", a, "-t", dev_topic(b, "hb"),
                    "-q", "1", "-m", hb()], capture_output=True, timeout=10, check=False)
    time.sleep(1.0)
    h = auth.headers("noc")
    assert client.get(f"/api/v1/terminals/{a}", headers=h).get_json()["online"]
    assert client.get(f"/api/v1/terminals/{b}", headers=h).get_json()["last_heartbeat"] is None


def test_reboot_command_is_acked_and_shown_in_the_api_and_the_noc(app, client, auth, ingest, port):
    serial = "CTV-HH-540003"
    sec = boxes(app, serial)[serial]
    box = subprocess.Popen(["mosquitto_sub", "-p", port, "-u", serial, "-P", sec, "-i", serial, "-q", "1",
                            "-t", dev_topic(serial, "cmd"), "-C", "1", "-W", "10"], stdout=subprocess.PIPE, text=True)
    time.sleep(0.5)
    h = auth.headers("noc")
    r = client.post(f"/api/v1/terminals/{serial}/commands", json={"type": "reboot"}, headers=h)
    assert r.status_code == 201 and r.get_json()["status"] == "sent"
    cid = r.get_json()["id"]
    cmd = json.loads(box.communicate(timeout=10)[0])
    assert cmd["id"] == cid and cmd["type"] == "reboot"
    assert client.get(f"/api/v1/commands/{cid}", headers=h).get_json()["status"] == "sent"
    pub(port, serial, sec, "ack", json.dumps({"kind": "cmd", "id": cid, "ok": True, "detail": "rebooting",
                                              "ts": int(time.time())}))
    st = wait_for(lambda: (c := client.get(f"/api/v1/commands/{cid}", headers=h).get_json())["status"] == "acked" and c)
    assert st and st["detail"] == "rebooting" and st["serial"] == serial
    auth.login("noc")
    page = client.get(f"/noc/terminals/{serial}").get_data(as_text=True)
    row = page.split(f'data-command="{cid}"', 1)[1].split("</tr>", 1)[0]
    assert "重启" in row and "已确认" in row and "rebooting" in row
