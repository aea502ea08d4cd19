"""Backup of the demo city (40 households per village) while 1,000 simulated boxes heartbeat.

Seeds the city (3,511 boxes), starts Redis, Mosquitto (every box account) and `communitv ingest`,
connects 1,000 simulated boxes (device_fleet.sim) told to heartbeat every 2 s (500 hb/s), then runs
`communitv backup FILE` as its own process. Figures: backup time (goal < 30 s), the same bytes
copied with plain `cp` (the limit) and the ratio; heartbeats the fleet sent vs. the ingest stored
in Redis before and during the backup (it keeps up when stored/sent stays ≈ 1 and nothing is lost).
"""
from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import redis

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ["COMMUNITV_HEARTBEAT_S"] = os.environ.get("BENCH_HEARTBEAT_S", "2")
from bench._city import seed_city, start_ingest, start_redis_and_broker, stop  # noqa: E402
from device_fleet.sim import Fleet  # noqa: E402

BOXES = int(os.environ.get("BENCH_BOXES", 1000))
HOUSEHOLDS = 40


def counters(fleet: Fleet, r) -> tuple[int, int]:
    return fleet.stats.get("hb", 0), int(r.get("ctv:fleet:hb_total") or 0)


def main():
    city = seed_city("ctv-bench-backup-", 111 + 85 * HOUSEHOLDS)
    city.rows = city.rows[:BOXES]
    start_redis_and_broker(city)
    try:
        city.procs.append(start_ingest(city))
        r = redis.Redis.from_url(city.settings.redis_url)
        fleet = Fleet(city.settings.mqtt_url, city.rows, fetch=False)
        done = threading.Event()
        t = threading.Thread(target=fleet.run, kwargs={"until": done.is_set, "report": lambda _s: None}, daemon=True)
        t.start()
        deadline = time.time() + 90
        while sum(b.configured for b in fleet.boxes) < BOXES and time.time() < deadline:
            time.sleep(0.5)
        configured = sum(b.configured for b in fleet.boxes)
        time.sleep(4)                                     # every box past its first (random) heartbeat
        # Before: 10 s of steady heartbeats.
        s0, g0, t0 = *counters(fleet, r), time.perf_counter()
        time.sleep(10)
        s1, g1, t1 = *counters(fleet, r), time.perf_counter()
        # During: the backup as an operator runs it.
        target = city.tmp / "backups" / "communitv.tar.gz"
        target.parent.mkdir()
        b0 = time.perf_counter()
        res = subprocess.run(city.cli + ["backup", str(target)], env=city.env, capture_output=True, text=True)
        b1 = time.perf_counter()
        s2, g2 = counters(fleet, r)
        time.sleep(2)                                     # in-flight heartbeats land
        s3, g3 = counters(fleet, r)
        done.set()
        t.join(10)
        if res.returncode != 0:
            raise SystemExit("backup failed: " + res.stderr)
        # The limit: the same database and folders copied with cp.
        lim = city.tmp / "cp-limit"
        lim.mkdir()
        c0 = time.perf_counter()
        subprocess.run(["cp", "-a", str(city.tmp / "communitv.db"), *[str(city.tmp / d) for d in ("media", "hls")
                                                                       if (city.tmp / d).exists()], str(lim)],
                       check=True)
        subprocess.run(["sync"], check=True)
        c1 = time.perf_counter()
    finally:
        stop(city.procs)
    db_mb = (city.tmp / "communitv.db").stat().st_size / 1e6
    backup_s, cp_s = b1 - b0, c1 - c0
    before_sent, before_got = (s1 - s0) / (t1 - t0), (g1 - g0) / (t1 - t0)
    during_sent, during_got = (s2 - s1) / (b1 - t1), (g2 - g1) / (b1 - t1)
    print(f"city: {HOUSEHOLDS} households per village, database {db_mb:.1f} MB; {configured}/{BOXES} boxes "
          f"configured, heartbeat every {os.environ['COMMUNITV_HEARTBEAT_S']} s")
    print(f"backup  communitv backup: {backup_s:.1f} s ({target.stat().st_size / 1e6:.1f} MB archive, "
          f"{res.stdout.strip()})   goal < 30 s: {'met' if backup_s < 30 else 'NOT met'}")
    import re
    m = re.search(r"([0-9.]+) s\)\s*$", res.stdout.strip())
    archive_s = float(m.group(1)) if m else backup_s
    print(f"limit   cp of the same database and folders: {cp_s:.2f} s   ratio backup/cp = {backup_s / cp_s:.1f} "
          f"(archive step alone {archive_s:.2f} s, ratio {archive_s / cp_s:.1f}; the rest is the command's start-up)")
    print(f"ingest  before: sent {before_sent:,.0f} hb/s, stored {before_got:,.0f} hb/s (ratio {before_got / before_sent:.2f})")
    print(f"ingest  during backup: sent {during_sent:,.0f} hb/s, stored {during_got:,.0f} hb/s "
          f"(ratio {during_got / max(during_sent, 1):.2f}); 2 s later sent {s3}, stored {g3}: "
          f"{'kept up' if g3 - g0 >= 0.99 * (s3 - s0) else 'FELL BEHIND'} (missing {max(0, (s3 - s0) - (g3 - g0))})")


if __name__ == "__main__":
    main()
