"""Heartbeat ingest rate against the limit: a bare `mosquitto_sub` receiving the same stream.

Starts a real redis-server and mosquitto (dynamic security) on free ports and `communitv ingest`
as its own process; publishes N heartbeats from B distinct boxes as fast as one paho client can;
offered at BENCH_RATE per second (default 6,000/s, above the 5,000/s goal); reports how fast the
ingest took them into Redis, how fast mosquitto_sub alone received the same
stream, and the ratio. Goal (issue 6): ≥ 5,000 heartbeats/s with no loss.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import paho.mqtt.client as paho
import redis
from paho.mqtt.enums import CallbackAPIVersion

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from portal_server import stack  # noqa: E402
from portal_server.core import protocol  # noqa: E402
from portal_server.core.config import MQTT_SERVER_USER, Settings  # noqa: E402

RATE = int(os.environ.get("BENCH_RATE", 6_000))          # offered heartbeats per second
N = int(os.environ.get("BENCH_HB", RATE * 10))
BOXES = int(os.environ.get("BENCH_BOXES", 10_000))


def wait_port(port):
    for _ in range(200):
        if stack.port_in_use(port):
            return
        time.sleep(0.05)
    raise SystemExit(f"port {port} did not open")


def publish_stream(port, password, n):
    c = paho.Client(CallbackAPIVersion.VERSION2, client_id="bench-pub")
    c.username_pw_set(MQTT_SERVER_USER, password)
    c.max_queued_messages_set(0)
    c.connect("127.0.0.1", port)
    c.loop_start()
    t0 = time.perf_counter()
    for i in range(n):
        if i % 100 == 0:  # pace the stream at RATE (a fleet sends steadily, not in one burst)
            ahead = i / RATE - (time.perf_counter() - t0)
            if ahead > 0:
                time.sleep(ahead)
        serial = f"CTV-HH-{i % BOXES:06d}"
        c.publish(protocol.dev_topic(serial, "hb"), protocol.encode_hb(
            uptime_s=i, fw="2.3.1", cpu=5, mem_free_kb=40000, playing=None, page="home"), qos=0)
    elapsed = time.perf_counter() - t0
    c.loop_stop()
    c.disconnect()
    return elapsed


def main():
    tmp = Path(tempfile.mkdtemp(prefix="ctv-bench-"))
    ports = {"redis": stack.free_port(), "mqtt": stack.free_port()}
    settings = Settings(data_dir=tmp, redis_url=f"redis://127.0.0.1:{ports['redis']}/0",
                        mqtt_url=f"mqtt://127.0.0.1:{ports['mqtt']}")
    procs = [subprocess.Popen(["redis-server", str(stack.write_redis(tmp / "run", ports["redis"])), "--save", ""],
                              stdout=subprocess.DEVNULL),
             subprocess.Popen(["mosquitto", "-c", str(stack.write_mosquitto(tmp / "run", ports["mqtt"],
                                                                             settings.mqtt_server_password))],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    wait_port(ports["redis"])
    wait_port(ports["mqtt"])
    env = dict(os.environ, COMMUNITV_DATA_DIR=str(tmp), COMMUNITV_REDIS_URL=settings.redis_url,
               COMMUNITV_MQTT_URL=settings.mqtt_url)
    subprocess.run([sys.executable, "-m", "portal_server.cli", "db", "upgrade"], env=env, check=True,
                   stdout=subprocess.DEVNULL)
    try:
        # The limit: mosquitto_sub alone receiving the same stream.
        sub = subprocess.Popen(["mosquitto_sub", "-p", str(ports["mqtt"]), "-u", MQTT_SERVER_USER,
                                "-P", settings.mqtt_server_password, "-t", protocol.dev_all("hb"), "-C", str(N)],
                               stdout=subprocess.DEVNULL)
        time.sleep(1.0)
        t0 = time.perf_counter()
        publish_stream(ports["mqtt"], settings.mqtt_server_password, N)
        try:
            sub.wait(120)
            limit_s = time.perf_counter() - t0
            limit_ok = True
        except subprocess.TimeoutExpired:
            sub.kill()
            limit_s, limit_ok = time.perf_counter() - t0, False

        # Ours: the ingest service taking the same stream into Redis.
        ing = subprocess.Popen([sys.executable, "-m", "portal_server.cli", "ingest", "--no-sync"], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        for line in ing.stdout:
            if "ingest running" in line:
                break
        time.sleep(1.5)
        r = redis.Redis.from_url(settings.redis_url)
        t0 = time.perf_counter()
        publish_stream(ports["mqtt"], settings.mqtt_server_password, N)
        deadline = time.time() + 120
        got = 0
        while time.time() < deadline:
            got = int(r.get("ctv:fleet:hb_total") or 0)
            if got >= N:
                break
            time.sleep(0.02)
        ours_s = time.perf_counter() - t0
        ing.terminate()
        ing.wait(10)
        boxes_seen = r.zcard("ctv:fleet:lastseen")
    finally:
        for p in procs:
            p.terminate()
    ours_rate = got / ours_s
    limit_rate = N / limit_s
    print(f"heartbeats published: {N} from {BOXES} boxes (QoS 0), offered at {RATE:,}/s")
    print(f"limit  mosquitto_sub alone: {limit_rate:,.0f} hb/s ({limit_s:.2f} s){'' if limit_ok else ' (lost messages)'}")
    print(f"ours   communitv ingest → Redis: {ours_rate:,.0f} hb/s ({ours_s:.2f} s), stored {got}/{N}, "
          f"{boxes_seen} boxes' last-seen")
    print(f"ratio  ours/limit = {ours_rate / limit_rate:.2f}   goal ≥ 5,000 hb/s: {'met' if ours_rate >= 5000 else 'NOT met'}"
          f"   loss: {N - got}")


if __name__ == "__main__":
    main()
