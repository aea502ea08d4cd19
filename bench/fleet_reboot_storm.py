"""Reboot storm: N simulated boxes lose power at once and come back (goal: all online, configured and
home page fetched within 60 s, zero errors).

Starts its own stack on free ports, as `make run` lays it out: redis-server, mosquitto (dynamic security
with every demo box account written before start), gunicorn behind nginx (the village pages are files
nginx serves; only ``/tv/?token=…`` reaches Python) and `communitv ingest`, on a demo city seeded with
enough households for N boxes. The simulator (device_fleet.sim) connects all boxes (warm-up), cuts the
power of all of them at once (sockets dropped: the broker sends their Last Wills), and they come back
within a second with full-jitter backoff. Measured from the power cut:
  - every box reconnected and got its config again,
  - the ingest shows every box online (Redis, last seen after the cut, no Last Will pending),
  - every paired box opened its portal URL and got its home page: 200 after the portal's redirect
    ``/tv/?token=…`` → ``/tv/v/<village>/home.html`` (anything else counts as an error).
The limit in the same run: Mosquitto alone — the same storm with no ingest and no page fetch
(connect + retained config only). The simulator runs on the same machine and is part of both figures.

Environment: BENCH_BOXES (default 10000), BENCH_WORKERS (HTTP fetchers, 32), BENCH_WEB_WORKERS (gunicorn, 2),
BENCH_DEBUG=1 (progress every 5 s on stderr). Subprocess logs stay in the printed temp dir.
"""
from __future__ import annotations

import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import redis

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from device_fleet.sim import Fleet, load_boxes, raise_fd_limit
from portal_server import stack
from portal_server.core.config import Settings

N = int(os.environ.get("BENCH_BOXES", "10000"))
WORKERS = int(os.environ.get("BENCH_WORKERS", "32"))
WEB_WORKERS = int(os.environ.get("BENCH_WEB_WORKERS", "2"))
GOAL_S = 60.0
REPORT = (lambda s: print(s, file=sys.stderr)) if os.environ.get("BENCH_DEBUG") else (lambda s: None)


def log_file(tmp: Path, name: str):
    """A subprocess's stdout and stderr go to a file in the bench's temp dir (read it when something hangs)."""
    return open(tmp / f"{name}.log", "ab")


def start_ingest(cli, env, log: Path, timeout=60) -> subprocess.Popen:
    """`communitv ingest`, returned once it says it runs (subscribed: a hello before that is lost)."""
    p = subprocess.Popen(cli + ["ingest", "--no-sync"], env=env, stdout=open(log, "ab"), stderr=subprocess.STDOUT)
    deadline = time.time() + timeout
    while time.time() < deadline:
        if b"ingest running" in log.read_bytes():
            return p
        if p.poll() is not None:
            raise SystemExit(f"the ingest exited ({p.returncode}); see {log}")
        time.sleep(0.1)
    raise SystemExit(f"the ingest did not subscribe within {timeout} s; see {log}")


def wait_port(port, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if stack.port_in_use(port):
            return
        time.sleep(0.05)
    raise SystemExit(f"port {port} did not open")


def storm_debug(fleet):
    print(fleet.summary(0), fleet.stats, file=sys.stderr)


def storm(fleet: Fleet, r: redis.Redis | None, serials: set[str], paired: int, fetch: bool, timeout: float) -> dict:
    """Cut the power of every box and time the way back."""
    fleet.power_cut(back_within_s=1.0)
    t_cut = time.time()
    t0 = time.monotonic()
    marks: dict[str, float] = {}
    need = ["configured"] + (["fetched"] if fetch else []) + (["online"] if r is not None else [])
    last_check = 0.0
    while time.monotonic() - t0 < timeout:
        fleet.step()
        now = time.monotonic()
        if now - last_check < 0.25:
            continue
        if int(now - t0) // 5 != int(last_check - t0) // 5:
            REPORT(fleet.summary(now - t0))
        last_check = now
        if "configured" not in marks and all(b.configured for b in fleet.boxes):
            marks["configured"] = now - t0
        if fetch and "fetched" not in marks and sum(b.fetched for b in fleet.boxes) >= paired:
            marks["fetched"] = now - t0
        if r is not None and "online" not in marks:
            seen = {m.decode() for m in r.zrangebyscore("ctv:fleet:lastseen", t_cut, "+inf")}
            willed = {m.decode() for m in r.smembers("ctv:fleet:offline")}
            if len((seen - willed) & serials) == len(serials):
                marks["online"] = now - t0
        if all(k in marks for k in need):
            break
    if os.environ.get("BENCH_DEBUG"):
        storm_debug(fleet)
    marks["total"] = max(marks.values()) if all(k in marks for k in need) else float("inf")
    return marks


def main():
    raise_fd_limit()
    tmp = Path(tempfile.mkdtemp(prefix="ctv-storm-"))
    ports = {k: stack.free_port() for k in ("redis", "mqtt", "web", "http")}
    env = dict(os.environ, COMMUNITV_DATA_DIR=str(tmp), COMMUNITV_REDIS_URL=f"redis://127.0.0.1:{ports['redis']}/0",
               COMMUNITV_MQTT_URL=f"mqtt://127.0.0.1:{ports['mqtt']}",
               COMMUNITV_PUBLIC_URL=f"http://127.0.0.1:{ports['http']}")
    os.environ.update(env)
    settings = Settings.from_env()
    cli = [sys.executable, "-m", "portal_server.cli"]
    hh = max(1, math.ceil((N - 111) / 85))
    t = time.time()
    subprocess.run(cli + ["db", "upgrade"], env=env, check=True, stdout=subprocess.DEVNULL)
    subprocess.run(cli + ["demo", "seed", "--households-per-village", str(hh)], env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    print(f"logs and data in {tmp}")
    print(f"seeded the demo city with {hh} households per village in {time.time() - t:.0f} s")
    rows = load_boxes(tmp / "demo-terminals.csv")
    rows = [r for r in rows if not r[0].startswith("CTV-NEW")][:N]
    serials = {s for s, _ in rows}
    procs = []
    try:
        procs.append(subprocess.Popen(["redis-server", str(stack.write_redis(tmp / "run", ports["redis"])),
                                       "--save", ""], stdout=log_file(tmp, "redis"),
                                      stderr=subprocess.STDOUT))
        conf = stack.write_mosquitto(tmp / "run", ports["mqtt"], settings.mqtt_server_password, clients=rows)
        procs.append(subprocess.Popen(["mosquitto", "-c", str(conf)], stdout=log_file(tmp, "mosquitto"),
                                      stderr=subprocess.STDOUT, preexec_fn=raise_fd_limit))
        # Every server listens before the first box connects: 10,000 sockets take ephemeral ports, and a
        # port picked above for later could be one of them by then.
        procs.append(subprocess.Popen([stack.venv_bin("gunicorn"), "--workers", str(WEB_WORKERS), "--threads", "8",
                                       "--bind", f"127.0.0.1:{ports['web']}", "portal_server.app:create_app()"],
                                      env=env, stdout=log_file(tmp, "gunicorn"), stderr=subprocess.STDOUT))
        # nginx in front, as `make run` and production: the village pages are files it serves (the app
        # renders a missing one once); only /tv/?token=… (token check, cookies, redirect) reaches Python.
        nginx_conf = stack.write_nginx(tmp / "run", settings, ports["http"], ports["web"])
        procs.append(subprocess.Popen(["nginx", "-c", str(nginx_conf), "-p", str(tmp / "run")],
                                      stdout=log_file(tmp, "nginx"), stderr=subprocess.STDOUT))
        wait_port(ports["redis"])
        wait_port(ports["mqtt"])
        wait_port(ports["web"])
        wait_port(ports["http"])
        time.sleep(2)
        r = redis.Redis.from_url(settings.redis_url)

        # The limit: Mosquitto alone (no ingest, no page fetch: the retained configs are there from a warm-up).
        print(f"warming up {len(rows)} boxes against Mosquitto alone…")
        fleet = Fleet(settings.mqtt_url, rows, fetch=False, fetch_workers=1)
        # Configs must exist before boxes can be "configured": run the ingest briefly for the warm-up.
        ing = start_ingest(cli, env, tmp / "ingest-warmup.log")
        procs.append(ing)
        fleet.run(report=REPORT, until=lambda: all(b.configured for b in fleet.boxes), duration=300,
                  ramp_s=10)
        ing.terminate()
        ing.wait(10)
        procs.remove(ing)
        time.sleep(1)
        limit = storm(fleet, None, serials, 0, fetch=False, timeout=120)
        fleet.close()
        time.sleep(2)
        print(f"limit  Mosquitto alone: all {len(rows)} reconnected and configured in "
              f"{limit.get('configured', float('nan')):.1f} s")

        # Ours: the full stack.
        procs.append(start_ingest(cli, env, tmp / "ingest.log"))
        time.sleep(1)
        fleet = Fleet(settings.mqtt_url, rows, fetch=True, fetch_workers=WORKERS)
        fleet.run(report=REPORT, until=lambda: all(b.configured for b in fleet.boxes), duration=300)
        paired = sum(1 for b in fleet.boxes if b.portal_url)
        deadline = time.time() + 120
        while time.time() < deadline and sum(fleet.http_status.values()) < paired:
            fleet.step()
        print(f"warm: {paired} paired boxes, page statuses {fleet.http_status}")
        ours = storm(fleet, r, serials, paired, fetch=True, timeout=180)
        # Every page fetch must end in 200 (after the portal's redirect): anything else is an error.
        errors = fleet.stats.get("refused", 0) + fleet.stats.get("connect_error", 0) + sum(
            n for k, n in fleet.http_status.items() if k != 200)
        error_kinds = {k: n for k, n in fleet.stats.items() if k.startswith(("refused", "connect_error:"))}
        fleet.close()
    finally:
        for p in reversed(procs):
            p.terminate()
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
    ok200 = fleet.http_status.get(200, 0)
    print(f"boxes  {len(rows)} ({paired} paired), back within 1 s of the power cut (full jitter)")
    print(f"ours   configured {ours.get('configured', float('nan')):.1f} s · online in the ingest "
          f"{ours.get('online', float('nan')):.1f} s · portal page fetched {ours.get('fetched', float('nan')):.1f} s "
          f"(HTTP statuses {fleet.http_status}; 200: {ok200})")
    lim = limit.get("configured", float("nan"))
    print(f"limit  Mosquitto alone {lim:.1f} s   ratio ours/limit = {ours['total'] / lim:.1f}")
    print(f"goal   all within {GOAL_S:.0f} s with zero errors: "
          f"{'met' if ours['total'] <= GOAL_S and errors == 0 else 'NOT met'} (total {ours['total']:.1f} s, errors {errors}"
          f"{' ' + str(error_kinds) if error_kinds else ''})")


if __name__ == "__main__":
    main()
