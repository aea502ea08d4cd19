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
import subprocess
import sys
import time
import uuid

import pytest

from .hosts import (
    BROKER_LAN,
    EDGE,
    ROOT,
    SRV,
    NoNamespaces,
    in_ns,
    network,
    running_layout,
)

pytestmark = pytest.mark.xdist_group("netns")


@pytest.fixture(scope="module")
def layout(tmp_path_factory):
    """The running layout; namespaces and processes gone afterwards, also on failure."""
    try:
        with network() as net, running_layout(net, tmp_path_factory.mktemp("layout")) as lay:
            yield lay
    except NoNamespaces as exc:
        pytest.skip(str(exc))


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

    # One MQTT ingest for the layout: the other app host stands by.
    logs = {h: (layout.work / f"{h}.log").read_text() for h in ("app1", "app2")}
    running = [h for h, t in logs.items() if "ingest running" in t]
    assert len(running) == 1 and "ingest standby" in logs[{"app1": "app2", "app2": "app1"}[running[0]]], \
        layout.logs("app1", "app2")

    # App host 1 dies: the staff web and API keep answering through the edge (app host 2).
    staff = _token(lan, base, "city-editor")
    layout.kill("app1")
    counts = in_ns(lan, "burst", f"{base}/api/v1/contents?per_page=5", "40", staff)
    assert counts == {"200": 40}, counts
    assert in_ns(lan, "http", "GET", f"{base}/admin/login")["status"] == 200
    deadline = time.monotonic() + 20                  # app host 2's ingest is (or takes over as) the one
    while "ingest running" not in (layout.work / "app2.log").read_text():
        assert time.monotonic() < deadline, layout.logs("app2")
        time.sleep(1)

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
