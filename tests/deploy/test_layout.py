"""The production layout running (issue 14): separate hosts in network namespaces this test creates,
each started with `communitv deploy run --role R` (the configs of portal_server.deploy):

    server network 10.215.0.0/24       db .1 (PostgreSQL + Redis)   broker .2   app1 .3   app2 .4   edge .5
    village LAN    10.216.0.0/24       broker .2   edge .5   a box .100

The LAN has no route to the server network: only the broker's MQTT and the edge's HTTP/RTMP are
there. Files (TV snapshots, media, HLS) are one folder every host sees (the NFS of a real layout).
Against it: a box is configured over MQTT and opens its portal through the edge; an editor
publishes through app host 1 and the box's page shows it; app host 1 is killed and the staff API
keeps answering through app host 2; an alert reaches a box; a meeting pushed to the edge's RTMP
plays as HLS. Everything is torn down, also on failure."""
from __future__ import annotations

import csv
import datetime as dt
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
SRV, LAN = "10.215.0", "10.216.0"
HOSTS = {"db": [f"{SRV}.1"], "broker": [f"{SRV}.2", f"{LAN}.2"], "app1": [f"{SRV}.3"], "app2": [f"{SRV}.4"],
         "edge": [f"{SRV}.5", f"{LAN}.5"], "lan": [f"{LAN}.100"]}
EDGE, EDGE_SRV, BROKER_LAN = f"{LAN}.5", f"{SRV}.5", f"{LAN}.2"
DB_PASSWORD = "layout-" + secrets.token_hex(6)

pytestmark = pytest.mark.xdist_group("netns")


def _ip(*args, check=True):
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check, timeout=30)


@pytest.fixture(scope="module")
def network():
    """A switch namespace with two bridges and one namespace per host; removed afterwards."""
    tag = uuid.uuid4().hex[:5]
    sw = f"ctv-sw-{tag}"
    if _ip("netns", "add", sw, check=False).returncode != 0:
        pytest.skip("`ip netns add` is not possible here: needs root and CAP_SYS_ADMIN")
    names = {h: f"ctv-{h}-{tag}" for h in HOSTS}
    try:
        for br in ("bs", "bl"):
            _ip("-n", sw, "link", "add", br, "type", "bridge")
            _ip("-n", sw, "link", "set", br, "up")
        for i, (host, addrs) in enumerate(HOSTS.items()):
            ns = names[host]
            _ip("netns", "add", ns)
            _ip("-n", ns, "link", "set", "lo", "up")
            for j, addr in enumerate(addrs):
                dev, peer = f"e{j}", f"v{i}{j}{tag}"
                _ip("link", "add", dev, "netns", ns, "type", "veth", "peer", "name", peer, "netns", sw)
                _ip("-n", ns, "addr", "add", f"{addr}/24", "dev", dev)
                _ip("-n", ns, "link", "set", dev, "up")
                _ip("-n", sw, "link", "set", peer, "master", "bs" if addr.startswith(SRV) else "bl")
                _ip("-n", sw, "link", "set", peer, "up")
        yield names
    finally:
        for ns in [*names.values(), sw]:
            _ip("netns", "del", ns, check=False)


def in_ns(ns: str, *args, timeout=120) -> dict:
    """A tests.system.village_lan subcommand run inside ``ns``; its JSON answer."""
    r = subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-m", "tests.system.village_lan", *args],
                       check=False, capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


class Layout:
    def __init__(self, names, shared: Path, work: Path):
        self.names, self.shared, self.work = names, shared, work
        self.procs: dict[str, subprocess.Popen] = {}
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("COMMUNITV_")}
        self.env.update(
            PYTHONUNBUFFERED="1", COMMUNITV_DATA_DIR=str(shared),
            COMMUNITV_SECRET_KEY=secrets.token_urlsafe(32),
            COMMUNITV_DATABASE_URL=f"postgresql+psycopg://communitv:{DB_PASSWORD}@{SRV}.1:5432/communitv",
            COMMUNITV_REDIS_URL=f"redis://{SRV}.1:6379/0", COMMUNITV_MQTT_URL=f"mqtt://{SRV}.2:1883",
            COMMUNITV_PUBLIC_URL=f"http://{EDGE}:8000", COMMUNITV_RTMP_URL=f"rtmp://{EDGE}:1935/live",
            COMMUNITV_RTMP_PULL=f"rtmp://{EDGE_SRV}:1935/live",
            COMMUNITV_APP_HOSTS=f"{SRV}.3:8001,{SRV}.4:8001", COMMUNITV_EDGE_HOSTS=EDGE_SRV)

    def host_env(self, host):
        listen = {"db": f"{SRV}.1", "app1": f"{SRV}.3", "app2": f"{SRV}.4"}.get(host, "0.0.0.0")
        return dict(self.env, COMMUNITV_LISTEN=listen)

    def start(self, host, role, out: Path):
        log = open(self.work / f"{host}.log", "w")  # noqa: SIM115 (the host's stdout while it runs)
        self.procs[host] = subprocess.Popen(
            ["ip", "netns", "exec", self.names[host], str(BIN / "communitv"), "deploy", "run", "--role", role,
             "--out", str(out)], env=self.host_env(host), cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True)

    def run(self, host, *args, timeout=300):
        return subprocess.run(["ip", "netns", "exec", self.names[host], str(BIN / "communitv"), *args],
                              check=False, env=self.host_env(host), cwd=ROOT, capture_output=True, text=True,
                              timeout=timeout)

    def kill(self, host, sig=signal.SIGKILL):
        p = self.procs.pop(host, None)
        if p is None:
            return
        try:
            os.killpg(p.pid, sig)
            p.wait(20)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.wait(10)

    def logs(self, *hosts):
        return "\n".join(f"--- {h}\n" + (self.work / f"{h}.log").read_text()[-2500:]
                         for h in hosts if (self.work / f"{h}.log").exists())


@pytest.fixture(scope="module")
def layout(network, tmp_path_factory):
    work = tmp_path_factory.mktemp("layout")
    # The postgres user must reach the db host's folder: not under pytest's 0700 tree.
    base = Path(tempfile.mkdtemp(prefix="ctv-layout-"))
    os.chmod(base, 0o755)
    shared = base / "shared"
    shared.mkdir()
    lay = Layout(network, shared, work)
    try:
        lay.start("db", "db", base / "db")
        deadline = time.monotonic() + 90
        while True:
            ports = in_ns(network["app1"], "probe", f"{SRV}.1", "5432", "6379")
            if set(ports.values()) == {"open"}:
                break
            assert time.monotonic() < deadline, lay.logs("db")
            time.sleep(1)
        for cmd in (["deploy", "migrate"], ["demo", "seed", "--households-per-village", "2"]):
            r = lay.run("app1", *cmd)
            assert r.returncode == 0, r.stderr[-3000:] + lay.logs("db")
        lay.start("broker", "broker", base / "broker")
        lay.start("app1", "app", base / "app1")
        lay.start("app2", "app", base / "app2")
        lay.start("edge", "edge", base / "edge")
        deadline = time.monotonic() + 120
        while True:
            h = in_ns(network["lan"], "http", "GET", f"http://{EDGE}:8000/healthz")
            if h["status"] == 200:
                break
            for host, p in lay.procs.items():
                assert p.poll() is None, f"{host} exited:\n" + lay.logs(host)
            assert time.monotonic() < deadline, "not healthy: " + json.dumps(h)[:500] + lay.logs(*lay.procs)
            time.sleep(2)
        yield lay
    finally:
        for host in list(lay.procs):
            lay.kill(host, signal.SIGTERM)
        shutil.rmtree(base, ignore_errors=True)


def _token(ns, base, user="v001-editor"):
    r = in_ns(ns, "http", "POST", base + "/api/v1/auth/token",
              json.dumps({"username": user, "password": "communitv-demo"}))
    assert r["status"] == 200, r
    return r["json"]["token"]


def test_the_layout_serves_boxes_editors_and_staff_across_hosts(layout):
    lan, edge_ns = layout.names["lan"], layout.names["edge"]
    base = f"http://{EDGE}:8000"

    # The village LAN reaches the edge's HTTP and RTMP and the broker's MQTT, nothing else.
    assert in_ns(lan, "probe", EDGE, "8000", "1935") == {"8000": "open", "1935": "open"}
    assert in_ns(lan, "probe", BROKER_LAN, "1883") == {"1883": "open"}
    inner = in_ns(lan, "probe", f"{SRV}.3", "8001")["8001"], in_ns(lan, "probe", f"{SRV}.1", "5432")["5432"]
    assert all(v != "open" for v in inner), inner
    assert in_ns(lan, "probe", EDGE, "8001", "8002", "6379") == {"8001": "refused", "8002": "refused",
                                                                   "6379": "refused"}

    # A box is configured over MQTT (the broker on its LAN address) and opens its portal through the edge.
    with open(layout.shared / "demo-terminals.csv", newline="") as fh:
        secret = next(r["secret"] for r in csv.DictReader(fh) if r["serial"] == "CTV-HH-000001")
    boxed = in_ns(lan, "box", BROKER_LAN, "1883", "CTV-HH-000001", secret)
    assert boxed["connected"] is True, boxed
    portal = boxed["config"]["portal_url"]
    assert portal.startswith(f"{base}/tv/?token="), boxed
    tv = in_ns(lan, "browser", portal, timeout=180)
    assert tv["home"] == f"{base}/tv/v/990101001001/home.html", tv

    # An editor publishes through app host 1 (on the server network); the box's page shows it ≤ 5 s.
    app1 = f"http://{SRV}.3:8001"
    title = "村务公开：分布式部署测试 " + uuid.uuid4().hex[:4]
    ed, rv = _token(edge_ns, app1), _token(edge_ns, app1, "town01-reviewer")
    in_ns(lan, "tvwatch", portal, "s-affairs.html", "村", "10")          # the page exists (cached) first
    item = in_ns(edge_ns, "http", "POST", app1 + "/api/v1/contents",
                 json.dumps({"section": "affairs", "title": title, "body": "<p>两台应用服务器</p>",
                             "target_regions": ["990101001001"]}), ed)["json"]
    in_ns(edge_ns, "http", "POST", f"{app1}/api/v1/contents/{item['id']}/submit", "", ed)
    ok = in_ns(edge_ns, "http", "POST", f"{app1}/api/v1/contents/{item['id']}/approve", "", rv)
    assert ok["json"]["status"] == "published", ok
    seen = in_ns(lan, "tvwatch", portal, "s-affairs.html", title, "5")
    assert "seen_after_s" in seen, seen

    # App host 1 dies: the staff web and API keep answering through the edge (app host 2).
    staff = _token(lan, base, "city-editor")
    layout.kill("app1")
    counts = in_ns(lan, "burst", f"{base}/api/v1/contents?per_page=5", "40", staff)
    assert counts == {"200": 40}, counts
    assert in_ns(lan, "http", "GET", f"{base}/admin/login")["status"] == 200

    # An alert sent through the edge reaches a box of the village (the region topic, via the broker).
    listener = subprocess.Popen(
        ["ip", "netns", "exec", lan, sys.executable, "-m", "tests.system.village_lan", "sub", BROKER_LAN, "1883",
         "CTV-HH-000001", secret, "ctv/v1/region/990101001001/alert", "30"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(1.5)
    reviewer = _token(lan, base, "v001-reviewer")
    sent = in_ns(lan, "http", "POST", base + "/api/v1/alerts", json.dumps(
        {"regions": ["990101001001"], "category": "Met", "event": "山洪灾害预警", "severity": "Moderate",
         "urgency": "Expected", "certainty": "Likely", "headline": "山洪预警：请向高处转移",
         "description": "上游强降雨", "instruction": "请立即转移到村委会避险点"}), reviewer)
    assert sent["status"] == 201, sent
    out, err = listener.communicate(timeout=40)
    got = json.loads(out.strip().splitlines()[-1])
    assert got["message"] and got["message"]["id"] == sent["json"]["id"], (got, err[-1000:])

    # A meeting pushed to the edge's RTMP plays as HLS through the edge (supervised on app host 2).
    now = dt.datetime.now(dt.UTC)
    m = in_ns(lan, "http", "POST", base + "/api/v1/meetings",
              json.dumps({"title": "村民大会", "region_code": "990101001001", "starts_at": now.isoformat(),
                          "ends_at": (now + dt.timedelta(hours=1)).isoformat()}), ed)["json"]
    assert m["publish_url"] == f"rtmp://{EDGE}:1935/live/{m['stream_key']}", m
    push = subprocess.Popen(
        ["ip", "netns", "exec", lan, "ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-re",
         "-f", "lavfi", "-i", "testsrc=size=640x360:rate=25", "-f", "lavfi", "-i", "sine=frequency=440",
         "-t", "40", "-c:v", "libx264", "-preset", "ultrafast", "-g", "50", "-pix_fmt", "yuv420p",
         "-c:a", "aac", "-f", "flv", m["publish_url"]],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline, live = time.monotonic() + 60, {}
        while time.monotonic() < deadline:
            live = in_ns(lan, "http", "GET", f"{base}/api/v1/meetings/{m['id']}", "", ed)["json"]
            if live.get("hls_url"):
                break
            assert push.poll() is None, push.stderr.read().decode()[-2000:] + layout.logs("edge", "app2")
            time.sleep(1)
        assert live.get("status") == "live" and live["hls_url"].startswith(f"{base}/hls/"), \
            str(live) + layout.logs("edge", "app2")
        played = in_ns(lan, "hls", live["hls_url"], timeout=120)
        assert played.get("segment_status") == 200 and played["segment_bytes"] > 1000, \
            str(played) + layout.logs("app2")
    finally:
        push.kill()
        push.wait(10)
