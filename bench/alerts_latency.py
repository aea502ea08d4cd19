"""Alert delivery latency against the limit: the same retained message published by bare `mosquitto_pub`.

Starts its own stack on free ports: redis-server, mosquitto (dynamic security, every demo box account
written before start, as `make run` does), gunicorn (the app) and `communitv ingest`, on a demo city
seeded with enough households for N boxes. The simulator (device_fleet.sim) connects N boxes that
subscribe to their city, town and village topics and ack every alert, as the box agent does. Then, in
alternating rounds:
  - ours:  POST /api/v1/alerts for the whole city (one retained QoS 1 message on the city topic);
           time from the POST returning to each box receiving it; then until every ack is counted
           (GET /api/v1/alerts/<id> shows acked == N);
  - limit: `mosquitto_pub -r -q 1` of the same payload on the same topic; time from mosquitto_pub
           returning to each box receiving it.
Prints p50 and p99 of both, the ratio of the p99s, and the time until all acks were counted.
Goals (issue 7): p99 under 1 s, within 1.5× of Mosquitto alone; all acks counted within 5 s.

Environment: BENCH_BOXES (default 10000), BENCH_ROUNDS (default 2).
"""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from _city import seed_city, start_ingest, start_redis_and_broker, stop, wait_port  # noqa: E402
from device_fleet.sim import Fleet  # noqa: E402
from portal_server import stack  # noqa: E402
from portal_server.core import protocol  # noqa: E402
from portal_server.core.config import MQTT_SERVER_USER  # noqa: E402

N = int(os.environ.get("BENCH_BOXES", 10_000))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", 2))
CITY = "990100000000"
TOPIC = protocol.region_alert_topic(CITY)


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, math.ceil(p / 100 * len(s)) - 1))] if s else float("nan")


class Loop:
    """The simulator's selector loop in a thread, so the main thread can time HTTP calls."""

    def __init__(self, fleet: Fleet):
        self.fleet, self.stop = fleet, threading.Event()
        self.t = threading.Thread(target=self.run, daemon=True)

    def run(self):
        while not self.stop.is_set():
            self.fleet.step(0.01)

    def __enter__(self):
        self.t.start()
        return self

    def __exit__(self, *a):
        self.stop.set()
        self.t.join(5)


def wait_all_seen(fleet: Fleet, alert_id: str, n: int, timeout: float = 60) -> dict[str, float]:
    deadline = time.time() + timeout
    while time.time() < deadline:
        seen = fleet.alert_seen.get(alert_id, {})
        if len(seen) >= n:
            break
        time.sleep(0.02)
    return dict(fleet.alert_seen.get(alert_id, {}))


def main():
    city = seed_city("ctv-alerts-bench-", N)
    ports, env, settings, rows, procs = city.ports, city.env, city.settings, city.rows, city.procs
    web = f"http://127.0.0.1:{ports['web']}"
    n = len(rows)
    ours: list[float] = []
    limit: list[float] = []
    ack_times: list[float] = []
    missing = {"ours": 0, "limit": 0}
    try:
        start_redis_and_broker(city)
        procs.append(subprocess.Popen([stack.venv_bin("gunicorn"), "--workers", "1", "--threads", "4",
                                       "--bind", f"127.0.0.1:{ports['web']}", "portal_server.app:create_app()"],
                                      env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        procs.append(start_ingest(city))   # subscribed before any box says hello
        wait_port(ports["web"])
        s = requests.Session()
        tok = s.post(f"{web}/api/v1/auth/token", json={"username": "admin", "password": settings.demo_password},
                     timeout=30).json()["token"]
        h = {"Authorization": f"Bearer {tok}"}
        body = {"regions": [CITY], "category": "Met", "event": "山洪灾害预警", "severity": "Moderate",
                "urgency": "Expected", "certainty": "Likely", "headline": "山洪预警：请向高处转移",
                "description": "上游强降雨，河道水位快速上涨。", "instruction": "请沿河居民立即转移到村避险点。"}
        # Warm the app (its MQTT connection, imports) on one village.
        w = s.post(f"{web}/api/v1/alerts", json=dict(body, regions=["990101014006"]), headers=h, timeout=30).json()
        s.post(f"{web}/api/v1/alerts/{w['id']}/cancel", headers=h, timeout=30)

        t = time.time()
        fleet = Fleet(settings.mqtt_url, rows, fetch=False, fetch_workers=1, alerts=True)
        fleet.run(report=lambda _s: None, until=lambda: all(b.configured for b in fleet.boxes), duration=300,
                  ramp_s=10)
        settle = time.time() + 3  # the region subscriptions' SUBACKs
        while time.time() < settle:
            fleet.step(0.01)
        print(f"{n} boxes connected, configured and subscribed (city, town, village) in {time.time() - t:.0f} s")

        with Loop(fleet):
            for rnd in range(ROUNDS):
                # Ours: the API.
                t0 = time.time()
                r = s.post(f"{web}/api/v1/alerts", json=dict(body, idempotency_key=f"bench-{rnd}"), headers=h,
                           timeout=30)
                t_ret = time.time()
                assert r.status_code == 201, r.text
                aid = r.json()["id"]
                seen = wait_all_seen(fleet, str(aid), n)
                missing["ours"] += n - len(seen)
                ours += [ts - t_ret for ts in seen.values()]
                acked_in, acked = None, 0
                deadline = t_ret + 30
                while time.time() < deadline:
                    acked = s.get(f"{web}/api/v1/alerts/{aid}", headers=h, timeout=30).json()["acked"]
                    if acked >= n:
                        acked_in = time.time() - t_ret
                        break
                    time.sleep(0.25)
                if acked_in is None:
                    print(f"round {rnd + 1}: only {acked}/{n} acks counted after 30 s; sim sent "
                          f"{len(fleet.alert_seen.get(str(aid), {}))}")
                ack_times.append(acked_in if acked_in is not None else float("inf"))
                print(f"round {rnd + 1} ours:  POST took {(t_ret - t0) * 1000:.0f} ms, received by {len(seen)}/{n}, "
                      f"p50 {pct([x for x in seen.values()], 50) - t_ret:.3f} s, all acks counted in "
                      f"{acked_in if acked_in is not None else float('nan'):.2f} s")
                s.post(f"{web}/api/v1/alerts/{aid}/cancel", headers=h, timeout=30)
                time.sleep(2)
                # The limit: bare mosquitto_pub of the same payload on the same topic.
                raw_id = f"raw-{rnd}"
                payload = dict(json.loads(json.dumps(r.json())), id=raw_id)
                payload = {k: payload[k] for k in ("id", "severity", "urgency", "headline", "description",
                                                   "instruction", "display", "cap_url")}
                payload.update(expires=int(time.time()) + 3600, ts=int(time.time()))
                subprocess.run(["mosquitto_pub", "-p", str(ports["mqtt"]), "-u", MQTT_SERVER_USER, "-P",
                                settings.mqtt_server_password, "-t", TOPIC, "-q", "1", "-r", "-V", "mqttv5",
                                "-D", "publish", "message-expiry-interval", "3600", "-m",
                                json.dumps(payload, ensure_ascii=False)], check=True)
                t_ret = time.time()
                seen = wait_all_seen(fleet, raw_id, n)
                missing["limit"] += n - len(seen)
                limit += [ts - t_ret for ts in seen.values()]
                print(f"round {rnd + 1} limit: mosquitto_pub, received by {len(seen)}/{n}")
                subprocess.run(["mosquitto_pub", "-p", str(ports["mqtt"]), "-u", MQTT_SERVER_USER, "-P",
                                settings.mqtt_server_password, "-t", TOPIC, "-q", "1", "-r", "-n"], check=True)
                time.sleep(2)
        fleet.close()
    finally:
        stop(procs)
    o50, o99, l50, l99 = pct(ours, 50), pct(ours, 99), pct(limit, 50), pct(limit, 99)
    worst_ack = max(ack_times) if ack_times else float("inf")
    print(f"boxes  {n} simulated (one process, one selector loop), {ROUNDS} rounds, a city-wide alert = one retained "
          f"QoS 1 message on {TOPIC}")
    print(f"ours   POST /api/v1/alerts → box: p50 {o50 * 1000:.0f} ms, p99 {o99 * 1000:.0f} ms "
          f"(missing {missing['ours']})")
    print(f"limit  mosquitto_pub → box:       p50 {l50 * 1000:.0f} ms, p99 {l99 * 1000:.0f} ms "
          f"(missing {missing['limit']})")
    print(f"ratio  ours/limit p99 = {o99 / l99:.2f} (p50 {o50 / l50:.2f})   acks: all {n} counted within "
          f"{worst_ack:.2f} s (worst round)")
    print(f"goals  p99 < 1 s: {'met' if o99 < 1 else 'NOT met'} · within 1.5× of Mosquitto: "
          f"{'met' if o99 <= 1.5 * l99 else 'NOT met'} · acks within 5 s: {'met' if worst_ack <= 5 else 'NOT met'}")


if __name__ == "__main__":
    main()
