"""Benchmark: a village's TV home page through the production path vs nginx serving a plain file.

The production path is nginx checking the box's village key (secure_link, no Python) and sending
the pre-rendered page. The limit is the same nginx serving a static file of the same size with no
check. Both are loaded by wrk with 200 connections in the same run; the ratio is what counts
(goal ≥ 0.8, floor 0.5), with p99 under 50 ms and no errors. Also prints the page weights: first
load (HTML + CSS + JS) and a navigation to a section page.

Run: `make bench` (or .venv/bin/python bench/portal_home.py).
"""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CONNECTIONS, THREADS, SECONDS = 200, 2, 10
VILLAGE = "990101001001"


def wrk(url: str, cookie: str | None = None) -> dict:
    cmd = ["wrk", "-t", str(THREADS), "-c", str(CONNECTIONS), "-d", f"{SECONDS}s", "--latency", url]
    if cookie:
        cmd[1:1] = ["-H", f"Cookie: {cookie}"]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[p99.group(2)]
    errors = 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if m:
        errors += sum(int(x) for x in m.groups())
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if m:
        errors += int(m.group(1))
    return {"rps": rps, "p99_ms": float(p99.group(1)) * scale, "errors": errors}


def main() -> int:
    if shutil.which("wrk") is None or shutil.which("nginx") is None:
        print("needs wrk and nginx (make deps installs them)")
        return 1
    from portal_server import stack
    from portal_server.app import create_app
    from portal_server.core import db
    from portal_server.core.config import Settings

    tmp = Path(tempfile.mkdtemp(prefix="ctv-bench-portal-"))
    nginx = None
    try:
        settings = Settings(data_dir=tmp, jobs_inline=True, redis_url="redis://127.0.0.1:1/0",
                            mqtt_url="mqtt://127.0.0.1:1")
        db.upgrade(settings.database_url)
        app = create_app(settings)
        with app.app_context():
            from portal_server import demo
            from stb_app import snapshots

            demo.seed(households_per_village=1, echo=lambda *a, **k: None)
            region = snapshots.region_by_code(VILLAGE)
            # generation() falls back to -1 without Redis (no file); write the pages explicitly here
            body, _ = snapshots.render_file(region, "home.html")
            snapshots.write_atomic(settings.snapshot_dir / VILLAGE / "home.html", body)
            section, _ = snapshots.render_file(region, "s-party.html")
            key = snapshots.village_key(VILLAGE)
        # The limit: the same bytes as a plain file nginx serves without any check.
        settings.media_dir.mkdir(parents=True, exist_ok=True)
        (settings.media_dir / "plain.html").write_text(body)
        css = (ROOT / "stb_app/static/tv.css").read_bytes()
        scripts = sum(len((ROOT / "stb_app/static" / s).read_bytes()) for s in ("tv.js", "home.js"))
        first = len(body.encode()) + len(css) + scripts
        nav = len(section.encode()) + len((ROOT / "stb_app/static/pager.js").read_bytes())

        port = stack.free_port()
        conf = stack.write_nginx(tmp / "run", settings, port, stack.free_port())
        nginx = subprocess.Popen(["nginx", "-c", str(conf), "-p", str(tmp / "run")],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while not stack.port_in_use(port) and time.monotonic() < deadline:
            time.sleep(0.05)
        base = f"http://127.0.0.1:{port}"
        import urllib.request

        req = urllib.request.Request(f"{base}/tv/v/{VILLAGE}/home.html", headers={"Cookie": f"ctv_vk={key}"})
        assert urllib.request.urlopen(req).read().decode() == body, "nginx did not serve the snapshot"

        limit = wrk(f"{base}/media/plain.html")
        ours = wrk(f"{base}/tv/v/{VILLAGE}/home.html", cookie=f"ctv_vk={key}")
        ratio = ours["rps"] / limit["rps"]
        print(f"home page of {VILLAGE}: {len(body.encode())} bytes; {CONNECTIONS} connections, {SECONDS} s each")
        print(f"  production path (nginx + secure_link + snapshot): {ours['rps']:,.0f} req/s, "
              f"p99 {ours['p99_ms']:.1f} ms, errors {ours['errors']}")
        print(f"  limit (nginx, plain file of the same size):        {limit['rps']:,.0f} req/s, "
              f"p99 {limit['p99_ms']:.1f} ms, errors {limit['errors']}")
        print(f"  ratio {ratio:.2f} (goal ≥ 0.80, floor 0.50); p99 goal < 50 ms")
        print(f"page weight: first load {first / 1024:.1f} KB (limit 150 KB); "
              f"a navigation to a section {nav / 1024:.1f} KB (limit 30 KB), uncompressed")
        ok = ratio >= 0.5 and ours["p99_ms"] < 50 and ours["errors"] == 0 and first < 150_000 and nav < 30_000
        print("PASS" if ok else "BELOW GOAL")
        return 0
    finally:
        if nginx is not None:
            nginx.terminate()
            nginx.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
