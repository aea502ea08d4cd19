"""The production layout as separate hosts in network namespaces, for tests/deploy/test_layout.py
and bench/layout.py:

    server network 10.215.0.0/24       db .1 (PostgreSQL + Redis)   broker .2   app1 .3   app2 .4   edge .5
    village LAN    10.216.0.0/24       broker .2   edge .5   a box .100

Each host runs `communitv deploy run --role R` (portal_server.deploy). The LAN has no route to the
server network. Files live in one folder every host sees (the NFS of a real layout)."""
from __future__ import annotations

import contextlib
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
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
SRV, LAN = "10.215.0", "10.216.0"
HOSTS = {"db": [f"{SRV}.1"], "broker": [f"{SRV}.2", f"{LAN}.2"], "app1": [f"{SRV}.3"], "app2": [f"{SRV}.4"],
         "edge": [f"{SRV}.5", f"{LAN}.5"], "lan": [f"{LAN}.100"]}
EDGE, EDGE_SRV, BROKER_LAN = f"{LAN}.5", f"{SRV}.5", f"{LAN}.2"
DB_PASSWORD = "layout-" + secrets.token_hex(6)


class NoNamespaces(RuntimeError):
    """Network namespaces cannot be made here (not root)."""


def _ip(*args, check=True):
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check, timeout=30)


@contextmanager
def network():
    """A switch namespace with two bridges and one namespace per host; removed afterwards."""
    tag = uuid.uuid4().hex[:5]
    sw = f"ctv-sw-{tag}"
    if _ip("netns", "add", sw, check=False).returncode != 0:
        raise NoNamespaces("`ip netns add` is not possible here: needs root and CAP_SYS_ADMIN")
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
        """Stop ``host``: SIGKILL is the host dying (every process in its namespace at once: honcho
        starts each program in a session of its own, so killing honcho alone would leave them
        running); SIGTERM asks honcho to stop its programs, then kills what is left."""
        p = self.procs.pop(host, None)
        if p is None:
            return
        if sig == signal.SIGKILL:
            self._kill_namespace(host)
        try:
            os.killpg(p.pid, sig)
            p.wait(20)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.wait(10)
        self._kill_namespace(host)

    def _kill_namespace(self, host):
        for pid in _ip("netns", "pids", self.names[host], check=False).stdout.split():
            with contextlib.suppress(ProcessLookupError):   # gone already
                os.kill(int(pid), signal.SIGKILL)

    def logs(self, *hosts):
        return "\n".join(f"--- {h}\n" + (self.work / f"{h}.log").read_text()[-2500:]
                         for h in hosts if (self.work / f"{h}.log").exists())


@contextmanager
def running_layout(network, work: Path):
    """The roles started host by host (db, seed from app host 1, broker, app1, app2, edge) until the
    edge answers /healthz from the LAN; stopped (and the db folder removed) afterwards."""
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
        for host in reversed(list(lay.procs)):           # the edge first, the db last
            lay.kill(host, signal.SIGTERM)
        shutil.rmtree(base, ignore_errors=True)


