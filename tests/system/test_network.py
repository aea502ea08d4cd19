"""Going live on a real network (issue 13): the stack runs in its own network namespace with
COMMUNITV_LISTEN on its end of a veth pair; a second namespace is a village LAN. From there a box
connects to MQTT with its secret and gets its config, Chromium opens its portal and a section,
ffmpeg pushes a meeting over RTMP that plays back as HLS — and Redis, gunicorn and PostgreSQL's
ports are refused. Addresses exist only inside the two namespaces the test creates."""
from __future__ import annotations

import csv
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SERVER_IP, BOX_IP = "10.213.0.1", "10.213.0.2"
BIN = Path(sys.executable).parent


def _ip(*args, check=True):
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check, timeout=30)


@pytest.fixture
def village_lan():
    """Two namespaces joined by a veth pair: (server ns, LAN ns). Removed afterwards, even on failure."""
    tag = uuid.uuid4().hex[:6]
    srv, lan = f"ctv-srv-{tag}", f"ctv-lan-{tag}"
    r = _ip("netns", "add", srv, check=False)
    if r.returncode != 0:
        pytest.skip(f"`ip netns add` is not possible here ({r.stderr.strip()}): needs root and CAP_SYS_ADMIN")
    try:
        _ip("netns", "add", lan)
        _ip("link", "add", f"vs{tag}", "netns", srv, "type", "veth", "peer", "name", f"vl{tag}", "netns", lan)
        for ns, dev, addr in ((srv, f"vs{tag}", SERVER_IP), (lan, f"vl{tag}", BOX_IP)):
            _ip("-n", ns, "addr", "add", f"{addr}/24", "dev", dev)
            _ip("-n", ns, "link", "set", dev, "up")
            _ip("-n", ns, "link", "set", "lo", "up")
        yield srv, lan
    finally:
        for ns in (srv, lan):
            _ip("netns", "del", ns, check=False)


def in_lan(lan: str, *args, timeout=120) -> dict:
    """Run a tests.system.village_lan subcommand inside the LAN namespace; its JSON answer."""
    r = subprocess.run(["ip", "netns", "exec", lan, sys.executable, "-m", "tests.system.village_lan", *args],
                       capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


@pytest.fixture
def stack_in_namespace(village_lan, tmp_path):
    """`make run`'s stack (portal_server.stack run, as tests/system/test_make_run.py starts it) inside
    the server namespace, with COMMUNITV_LISTEN on the veth address and the standard ports."""
    srv, lan = village_lan
    data = tmp_path / "var"
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMMUNITV_")}
    env.update(COMMUNITV_DATA_DIR=str(data), COMMUNITV_LISTEN=SERVER_IP, PYTHONUNBUFFERED="1")
    # A small city keeps the test fast; `make run` then finds it seeded (test_make_run seeds the full one).
    for cmd in (["db", "upgrade"], ["demo", "seed", "--households-per-village", "2"]):
        subprocess.run([str(BIN / "communitv"), *cmd], env=env, check=True, capture_output=True, timeout=300)
    (data / ".seeded").write_text("seeded\n")
    log = open(tmp_path / "run.log", "w")
    proc = subprocess.Popen(["ip", "netns", "exec", srv, sys.executable, "-m", "portal_server.stack", "run"],
                            env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://{SERVER_IP}:8000"
    try:
        deadline = time.monotonic() + 180
        while True:
            assert proc.poll() is None, "stack exited:\n" + (tmp_path / "run.log").read_text()[-3000:]
            if in_lan(lan, "probe", SERVER_IP, "8000")["8000"] == "open":
                h = in_lan(lan, "http", "GET", base + "/healthz")
                if h["status"] == 200:
                    break
            assert time.monotonic() < deadline, "not healthy:\n" + (tmp_path / "run.log").read_text()[-3000:]
            time.sleep(2)
        yield {"base": base, "lan": lan, "data": data, "log": tmp_path / "run.log"}
    finally:
        try:
            os.killpg(proc.pid, signal.SIGINT)
            proc.wait(30)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def test_a_village_lan_reaches_mqtt_portal_and_rtmp_but_not_the_internal_ports(stack_in_namespace):
    s = stack_in_namespace
    lan, base = s["lan"], s["base"]
    banner = s["log"].read_text()
    assert f"MQTT broker mqtt://{SERVER_IP}:1883" in banner and f"rtmp://{SERVER_IP}:1935/live/" in banner

    # What a box, a phone and an encoder use is reachable; Redis, gunicorn and PostgreSQL are not.
    ports = in_lan(lan, "probe", SERVER_IP, "8000", "1883", "1935", "6379", "8001", "5432")
    assert ports == {"8000": "open", "1883": "open", "1935": "open",
                     "6379": "refused", "8001": "refused", "5432": "refused"}

    # A box connects with its own secret and is told its portal on the LAN address.
    with open(s["data"] / "demo-terminals.csv", newline="") as fh:
        secret = next(r["secret"] for r in csv.DictReader(fh) if r["serial"] == "CTV-HH-000001")
    boxed = in_lan(lan, "box", SERVER_IP, "1883", "CTV-HH-000001", secret)
    assert boxed["connected"] is True, boxed
    cfg = boxed["config"]
    assert cfg["state"] == "paired" and cfg["portal_url"].startswith(f"{base}/tv/?token="), cfg
    assert in_lan(lan, "box", SERVER_IP, "1883", "CTV-HH-000001", "wrong-secret")["connected"] is False

    # The TV's browser opens that portal and walks into a section with the remote.
    tv = in_lan(lan, "browser", cfg["portal_url"], timeout=180)
    assert tv["home"] == f"{base}/tv/v/990101001001/home.html" and tv["focused"] == "party", tv
    assert tv["section"] == f"{base}/tv/v/990101001001/s-party.html", tv

    # The village hall pushes its meeting over RTMP; the LAN plays it back as HLS.
    tok = in_lan(lan, "http", "POST", base + "/api/v1/auth/token",
                 json.dumps({"username": "v001-editor", "password": "communitv-demo"}))["json"]["token"]
    now = dt.datetime.now(dt.UTC)
    m = in_lan(lan, "http", "POST", base + "/api/v1/meetings",
               json.dumps({"title": "村民大会", "region_code": "990101001001", "starts_at": now.isoformat(),
                           "ends_at": (now + dt.timedelta(hours=1)).isoformat()}), tok)["json"]
    assert m["publish_url"] == f"rtmp://{SERVER_IP}:1935/live/{m['stream_key']}"
    push = subprocess.Popen(
        ["ip", "netns", "exec", lan, "ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-re",
         "-f", "lavfi", "-i", "testsrc=size=640x360:rate=25", "-f", "lavfi", "-i", "sine=frequency=440",
         "-t", "40", "-c:v", "libx264", "-preset", "ultrafast", "-g", "50", "-pix_fmt", "yuv420p",
         "-c:a", "aac", "-f", "flv", m["publish_url"]],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline, live = time.monotonic() + 60, None
        while time.monotonic() < deadline:
            live = in_lan(lan, "http", "GET", f"{base}/api/v1/meetings/{m['id']}", "", tok)["json"]
            if live.get("hls_url"):
                break
            assert push.poll() is None, push.stderr.read().decode()[-2000:]
            time.sleep(1)
        assert live and live["status"] == "live" and live["hls_url"].startswith(f"{base}/hls/"), live
        played = in_lan(lan, "hls", live["hls_url"], timeout=120)
        assert played.get("segment_status") == 200 and played["segment_bytes"] > 1000, \
            str(played) + "\n" + s["log"].read_text()[-3000:]
    finally:
        push.kill()
        push.wait(10)
