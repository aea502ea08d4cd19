"""What the fleet benchmarks share: a seeded demo city in a temp dir, its Redis and Mosquitto (every
box account written before the broker starts, as `make run` does), the ingest, and cleanup.
Not a benchmark itself (`make bench` skips files starting with "_")."""
from __future__ import annotations

import math
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from device_fleet.sim import load_boxes, raise_fd_limit  # noqa: E402
from portal_server import stack  # noqa: E402
from portal_server.core.config import Settings  # noqa: E402


@dataclass
class City:
    tmp: Path
    ports: dict
    env: dict
    settings: Settings
    rows: list                 #: (serial, secret) of the first N bound boxes
    cli: list = field(default_factory=lambda: [sys.executable, "-m", "portal_server.cli"])
    procs: list = field(default_factory=list)


def wait_port(port: int, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if stack.port_in_use(port):
            return
        time.sleep(0.05)
    raise SystemExit(f"port {port} did not open")


def log_file(tmp: Path, name: str):
    """A subprocess's stdout and stderr go to a file in the bench's temp dir (read it when something hangs)."""
    return open(tmp / f"{name}.log", "ab")


def seed_city(prefix: str, n_boxes: int, port_names=("redis", "mqtt", "web"), public: str = "web") -> City:
    """A demo city with enough households for ``n_boxes``; COMMUNITV_* point at free ports."""
    raise_fd_limit()
    tmp = Path(tempfile.mkdtemp(prefix=prefix))
    ports = {k: stack.free_port() for k in port_names}
    env = dict(os.environ, COMMUNITV_DATA_DIR=str(tmp), COMMUNITV_REDIS_URL=f"redis://127.0.0.1:{ports['redis']}/0",
               COMMUNITV_MQTT_URL=f"mqtt://127.0.0.1:{ports['mqtt']}",
               COMMUNITV_PUBLIC_URL=f"http://127.0.0.1:{ports[public]}")
    os.environ.update(env)
    city = City(tmp, ports, env, Settings.from_env(), [])
    hh = max(1, math.ceil((n_boxes - 111) / 85))
    t = time.time()
    subprocess.run(city.cli + ["db", "upgrade"], env=env, check=True, stdout=subprocess.DEVNULL)
    subprocess.run(city.cli + ["demo", "seed", "--households-per-village", str(hh)], env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    print(f"logs and data in {tmp}")
    print(f"seeded the demo city with {hh} households per village in {time.time() - t:.0f} s")
    city.rows = [r for r in load_boxes(tmp / "demo-terminals.csv") if not r[0].startswith("CTV-NEW")][:n_boxes]
    return city


def start_redis_and_broker(city: City) -> None:
    """redis-server and mosquitto (dynamic security with every box account) on the city's ports."""
    run = city.tmp / "run"
    city.procs.append(subprocess.Popen(["redis-server", str(stack.write_redis(run, city.ports["redis"])), "--save", ""],
                                       stdout=log_file(city.tmp, "redis"), stderr=subprocess.STDOUT))
    conf = stack.write_mosquitto(run, city.ports["mqtt"], city.settings.mqtt_server_password, clients=city.rows)
    city.procs.append(subprocess.Popen(["mosquitto", "-c", str(conf)], stdout=log_file(city.tmp, "mosquitto"),
                                       stderr=subprocess.STDOUT, preexec_fn=raise_fd_limit))
    wait_port(city.ports["redis"])
    wait_port(city.ports["mqtt"])


def start_ingest(city: City, log_name: str = "ingest", timeout: float = 60) -> subprocess.Popen:
    """`communitv ingest`, returned once it says it runs (subscribed: a hello before that is lost)."""
    log = city.tmp / f"{log_name}.log"
    p = subprocess.Popen(city.cli + ["ingest", "--no-sync"], env=city.env, stdout=open(log, "ab"),
                         stderr=subprocess.STDOUT)
    deadline = time.time() + timeout
    while time.time() < deadline:
        if log.exists() and b"ingest running" in log.read_bytes():
            return p
        if p.poll() is not None:
            raise SystemExit(f"the ingest exited ({p.returncode}); see {log}")
        time.sleep(0.1)
    raise SystemExit(f"the ingest did not subscribe within {timeout} s; see {log}")


def stop(procs: list) -> None:
    for p in reversed(procs):
        p.terminate()
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
