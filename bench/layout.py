"""The production layout in network namespaces (tests/deploy/hosts.py: db, broker, two app hosts, the
edge, a village LAN), measured from the LAN:

1. the TV home page through the edge under 200 connections (wrk), against the same nginx serving a
   plain file of the same size (the limit); ratio goal >= 0.8;
2. a publish through app host 1 visible on a box's page through the edge (goal <= 5 s);
3. staff API requests through the edge while app host 1 is killed (goal: 0 lost — the edge retries
   a refused host on the other one).

Needs root (network namespaces). BENCH_SECONDS (default 8) per wrk run.
"""
from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from portal_server.core.config import Settings  # noqa: E402
from stb_app.snapshots import village_key  # noqa: E402
from tests.deploy.hosts import (BROKER_LAN, EDGE, SRV, NoNamespaces, in_ns,  # noqa: E402
                                network, running_layout)

SECONDS = int(os.environ.get("BENCH_SECONDS", "8"))
V001 = "990101001001"


def wrk(ns: str, url: str, conns: int, seconds: int, header: str) -> dict:
    r = subprocess.run(["ip", "netns", "exec", ns, "wrk", "-t2", f"-c{conns}", f"-d{seconds}s", "--timeout", "10s",
                        "-H", header, url], capture_output=True, text=True, check=False, timeout=seconds + 60)
    out = r.stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    total = int(re.search(r"(\d+) requests in", out).group(1))
    non2xx = int(m.group(1)) if (m := re.search(r"Non-2xx or 3xx responses: (\d+)", out)) else 0
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    errors = sum(int(x) for x in sock.groups()) if sock else 0
    return {"rps": rps, "requests": total, "non2xx": non2xx, "socket_errors": errors}


def token(ns: str, base: str, user: str) -> str:
    return in_ns(ns, "http", "POST", base + "/api/v1/auth/token",
                 json.dumps({"username": user, "password": "communitv-demo"}))["json"]["token"]


def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="ctv-bench-layout-"))
    try:
        with network() as net, running_layout(net, work) as lay:
            lan, edge_ns = net["lan"], net["edge"]
            base = f"http://{EDGE}:8000"
            settings = Settings(data_dir=lay.shared, secret_key=lay.env["COMMUNITV_SECRET_KEY"])
            cookie = "Cookie: ctv_vk=" + village_key(V001, settings.tv_link_secret)
            home = f"{base}/tv/v/{V001}/home.html"
            deadline = time.monotonic() + 30                     # through the app once: the snapshot exists
            snap = lay.shared / "tv" / V001 / "home.html"
            while not snap.exists() and time.monotonic() < deadline:
                subprocess.run(["ip", "netns", "exec", lan, "curl", "-s", "-o", "/dev/null", "-H", cookie, home],
                               check=False)
                time.sleep(0.5)
            plain = lay.shared / "media" / "bench-plain.html"
            plain.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(snap, plain)
            tv = wrk(lan, home, 200, SECONDS, cookie)
            limit = wrk(lan, f"{base}/media/bench-plain.html", 200, SECONDS, cookie)
            print(f"TV home through the edge, 200 connections: {tv['rps']:.0f} req/s ({tv['non2xx']} non-2xx, "
                  f"{tv['socket_errors']} socket errors)")
            print(f"  limit, the same nginx serving a plain file of {plain.stat().st_size} bytes: {limit['rps']:.0f} req/s")
            print(f"  ratio {tv['rps'] / limit['rps']:.2f} (goal >= 0.8)")

            # Publish through app host 1 -> visible on a box's page through the edge.
            app1 = f"http://{SRV}.3:8001"
            ed, rv = token(edge_ns, app1, "v001-editor"), token(edge_ns, app1, "town01-reviewer")
            with open(lay.shared / "demo-terminals.csv") as fh:
                secret = next(r["secret"] for r in csv.DictReader(fh) if r["serial"] == "CTV-HH-000001")
            cfg = in_ns(lan, "box", BROKER_LAN, "1883", "CTV-HH-000001", secret)["config"]
            in_ns(lan, "tvwatch", cfg["portal_url"], "s-affairs.html", "村", "10")
            title = "性能测试公告 " + uuid.uuid4().hex[:4]
            item = in_ns(edge_ns, "http", "POST", app1 + "/api/v1/contents",
                         json.dumps({"section": "affairs", "title": title, "body": "<p>x</p>",
                                     "target_regions": [V001]}), ed)["json"]
            in_ns(edge_ns, "http", "POST", f"{app1}/api/v1/contents/{item['id']}/submit", "", ed)
            t0 = time.monotonic()
            in_ns(edge_ns, "http", "POST", f"{app1}/api/v1/contents/{item['id']}/approve", "", rv)
            approved = time.monotonic() - t0
            seen = in_ns(lan, "tvwatch", cfg["portal_url"], "s-affairs.html", title, "10")
            print(f"publish through app host 1 -> on a box's page through the edge: "
                  f"{seen.get('seen_after_s', 'not seen')} s after the approval answered "
                  f"(approve took {approved:.2f} s; goal <= 5 s)")

            # App host 1 killed under staff API load.
            staff = token(lan, base, "city-editor")
            killer = threading.Timer(2.0, lambda: lay.kill("app1"))
            killer.start()
            api = wrk(lan, f"{base}/api/v1/contents?per_page=5", 20, SECONDS, f"Authorization: Bearer {staff}")
            killer.join()
            lost = api["non2xx"] + api["socket_errors"]
            print(f"staff API through the edge, app host 1 killed after 2 s: {api['requests']} requests, "
                  f"{lost} lost ({api['non2xx']} non-2xx, {api['socket_errors']} socket errors); goal 0")
    except NoNamespaces as exc:
        print(f"skipped: {exc}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
