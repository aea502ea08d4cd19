"""Fleet simulator (`communitv sim`): thousands of boxes in one process, speaking the real protocol.

Every box is a real paho MQTT client (client id = serial, its own credentials, persistent session,
Last Will), driven by one selector loop instead of a thread per box. A box connects, publishes
``status`` online, subscribes to its config and commands, says hello, follows the config (fetches
the portal home page from ``portal_url`` in a small HTTP worker pool), heartbeats every
``heartbeat_s`` and acks commands. ``power_cut()`` drops every connection at once; boxes come back
with exponential backoff and full jitter — the reboot storm of the benchmark.
"""
from __future__ import annotations

import csv
import heapq
import itertools
import logging
import queue
import random
import resource
import selectors
import threading
import time

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from portal_server.core.mqtt import parse_url

from . import protocol
from .agent import SESSION_EXPIRY_S, backoff_delay

log = logging.getLogger("ctv.sim")


def raise_fd_limit() -> int:
    """Raise the soft open-files limit to the hard limit (10,000 boxes need 10,000 sockets)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def load_boxes(path, n: int = 0) -> list[tuple[str, str]]:
    """(serial, secret) rows of a ``serial,secret,...`` CSV (e.g. demo-terminals.csv)."""
    with open(path, newline="") as fh:
        rows = [(r["serial"], r["secret"]) for r in csv.DictReader(fh)]
    return rows[:n] if n else rows


class SimBox:
    def __init__(self, fleet: "Fleet", serial: str, secret: str):
        self.fleet, self.serial, self.secret = fleet, serial, secret
        self.attempt = 0
        self.connected = self.configured = self.fetched = False
        self.portal_url: str | None = None
        self.heartbeat_s = 60
        self.next_hb = 0.0
        self.started = time.monotonic()
        self.sock = None
        c = paho.Client(CallbackAPIVersion.VERSION2, client_id=serial, protocol=paho.MQTTv5)
        c.username_pw_set(serial, secret)
        c.will_set(protocol.dev_topic(serial, "status"), protocol.encode_status("offline"), qos=1, retain=True)
        c.on_connect, c.on_disconnect, c.on_message = self._on_connect, self._on_disconnect, self._on_message
        c.on_socket_open = lambda _c, _u, s: fleet._sock_open(self, s)
        c.on_socket_close = lambda _c, _u, s: fleet._sock_close(self, s)
        c.on_socket_register_write = lambda _c, _u, s: fleet.want_write.add(self)
        c.on_socket_unregister_write = lambda _c, _u, s: fleet.want_write.discard(self)
        self.client = c

    def connect(self) -> None:
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = SESSION_EXPIRY_S
        try:
            self.client.connect(self.fleet.host, self.fleet.port, keepalive=120, clean_start=False, properties=props)
        except OSError as exc:
            self.fleet.count("connect_error")
            log.debug("%s: %s", self.serial, exc)
            self.fleet.schedule_reconnect(self)

    def _on_connect(self, c, _u, _f, reason, _p):
        if reason.is_failure:
            self.fleet.count("refused")
            return
        self.connected, self.attempt = True, 0
        self.fleet.count("connects")
        c.publish(protocol.dev_topic(self.serial, "status"), protocol.encode_status("online"), qos=1, retain=True)
        c.subscribe([(protocol.dev_topic(self.serial, "config"), 1), (protocol.dev_topic(self.serial, "cmd"), 1)])
        c.publish(protocol.dev_topic(self.serial, "hello"),
                  protocol.encode_hello(model="CTV-SIM", fw=self.fleet.fw, mac=None, ip="10.0.0.1"), qos=1)

    def _on_disconnect(self, *_a):
        if self.connected:
            self.fleet.count("disconnects")
        self.connected = False
        self.fleet.schedule_reconnect(self)

    def _on_message(self, _c, _u, msg):
        try:
            kind = msg.topic.rsplit("/", 1)[-1]
            if kind == "config":
                cfg = protocol.decode_config(msg.payload)
                self.heartbeat_s = int(cfg["heartbeat_s"])
                if not self.configured:
                    self.configured = True
                    self.fleet.count("configured")
                    self.next_hb = time.monotonic() + random.uniform(0, self.heartbeat_s)
                    if cfg["state"] == "paired" and self.fleet.fetch and not self.fetched:
                        self.portal_url = cfg["portal_url"]
                        self.fleet.fetch_queue.put(self)
                    if cfg["state"] == "paired" and self.fleet.alerts:  # city, town and village topics
                        self.client.subscribe([(protocol.region_topic(c, "#"), 1) for c in cfg.get("region_codes", [])])
            elif kind == "alert":
                alert = protocol.decode_alert(msg.payload)
                if alert is not None:
                    self.fleet.on_alert(self, alert)
            elif kind == "cmd":
                cmd = protocol.decode_cmd(msg.payload)
                self.client.publish(protocol.dev_topic(self.serial, "ack"),
                                    protocol.encode_ack(kind="cmd", id=cmd["id"], ok=True, detail="sim"), qos=1)
                self.fleet.count("acks")
        except protocol.ProtocolError as exc:
            self.fleet.count("protocol_error")
            log.warning("%s: %s", self.serial, exc)

    def heartbeat(self, now: float) -> None:
        self.client.publish(protocol.dev_topic(self.serial, "hb"), protocol.encode_hb(
            uptime_s=int(now - self.started), fw=self.fleet.fw, cpu=5.0, mem_free_kb=50000, page="home"), qos=0)
        self.fleet.count("hb")
        self.next_hb = now + self.heartbeat_s


class Fleet:
    def __init__(self, mqtt_url: str, rows: list[tuple[str, str]], fetch: bool = True, fetch_workers: int = 16,
                 fw: str = "2.3.1", alerts: bool = False):
        raise_fd_limit()
        #: Subscribe to region topics and ack alerts; alert id → {serial: time first received}.
        self.alerts = alerts
        self.alert_seen: dict[str, dict[str, float]] = {}
        a = parse_url(mqtt_url)
        self.host, self.port = a["host"], a["port"]
        self.fw = fw
        self.fetch = fetch
        self.sel = selectors.DefaultSelector()
        self.want_write: set[SimBox] = set()
        self.boxes = [SimBox(self, s, k) for s, k in rows]
        self.pending: list[tuple[float, int, SimBox]] = []
        self._seq = itertools.count()
        self.stats: dict[str, int] = {}
        self.http_status: dict[int | str, int] = {}
        self.lock = threading.Lock()
        self.fetch_queue: queue.Queue = queue.Queue()
        self.stop_event = threading.Event()
        self.fetchers = [threading.Thread(target=self._fetch_worker, daemon=True) for _ in range(fetch_workers)]
        for t in self.fetchers:
            t.start()

    # bookkeeping
    def count(self, key: str, n: int = 1) -> None:
        with self.lock:
            self.stats[key] = self.stats.get(key, 0) + n

    def on_alert(self, box: SimBox, alert: dict) -> None:
        """A box shows an alert: note when it arrived (first time) and ack it, as the agent does."""
        seen = self.alert_seen.setdefault(str(alert["id"]), {})
        if box.serial not in seen:
            seen[box.serial] = time.time()
            box.client.publish(protocol.dev_topic(box.serial, "ack"),
                               protocol.encode_ack(kind="alert", id=str(alert["id"]), ok=True, detail="sim"), qos=1)

    def _sock_open(self, box: SimBox, sock) -> None:
        box.sock = sock
        self.sel.register(sock, selectors.EVENT_READ, box)

    def _sock_close(self, box: SimBox, sock) -> None:
        try:
            self.sel.unregister(sock)
        except (KeyError, ValueError):
            pass
        self.want_write.discard(box)
        box.sock = None

    def schedule_reconnect(self, box: SimBox) -> None:
        delay = backoff_delay(box.attempt, base=1.0, cap=60.0)
        box.attempt += 1
        heapq.heappush(self.pending, (time.monotonic() + delay, next(self._seq), box))

    def _fetch_worker(self) -> None:
        import requests
        s = requests.Session()
        while not self.stop_event.is_set():
            try:
                box = self.fetch_queue.get(timeout=0.5)
            except queue.Empty:
                continue
            try:
                r = s.get(box.portal_url, timeout=30)
                key = r.status_code
                if r.status_code == 200:
                    box.fetched = True
            except Exception as exc:  # counted, never fatal
                key = type(exc).__name__
            with self.lock:
                self.http_status[key] = self.http_status.get(key, 0) + 1
                if box.fetched:
                    self.stats["fetched"] = self.stats.get("fetched", 0) + 1

    # the loop
    def connect_all(self, ramp_s: float = 0.0) -> None:
        now = time.monotonic()
        for i, b in enumerate(self.boxes):
            at = now + (ramp_s * i / max(len(self.boxes), 1) if ramp_s else 0)
            heapq.heappush(self.pending, (at, next(self._seq), b))

    def power_cut(self, back_within_s: float = 1.0) -> None:
        """Every box loses power: sockets drop without DISCONNECT (the broker sends their Last Wills);
        they come back within ``back_within_s`` (full jitter) — then reconnect with backoff."""
        for b in self.boxes:
            b.connected = b.configured = b.fetched = False
            b.attempt = 0
            if b.sock is not None:
                sock = b.sock
                self._sock_close(b, sock)
                try:
                    sock.close()
                except OSError:
                    pass
                b.client._sock = None  # paho must not touch the dead socket
            b.started = time.monotonic()
        self.pending = []
        self.stats = {k: v for k, v in self.stats.items() if k in ("hb",)}
        self.http_status = {}
        now = time.monotonic()
        for b in self.boxes:
            heapq.heappush(self.pending, (now + random.uniform(0, back_within_s), next(self._seq), b))

    def step(self, timeout: float = 0.05) -> None:
        now = time.monotonic()
        n = 0
        while self.pending and self.pending[0][0] <= now and n < 500:  # at most 500 connects per step
            _, _, b = heapq.heappop(self.pending)
            if not b.connected and b.sock is None:
                b.connect()
            n += 1
        for key, _ev in self.sel.select(timeout):
            key.data.client.loop_read()
        for b in list(self.want_write):
            b.client.loop_write()
        if now - getattr(self, "_last_misc", 0) >= 1.0:
            self._last_misc = now
            for b in self.boxes:
                if b.sock is not None:
                    b.client.loop_misc()
                if b.connected and b.configured and b.next_hb <= now:
                    b.heartbeat(now)

    def run(self, duration: float | None = None, ramp_s: float = 0.0, report=print, until=None) -> None:
        """Connect everything and loop for ``duration`` seconds (or until ``until()`` is true / Ctrl-C)."""
        self.connect_all(ramp_s)
        t0 = time.monotonic()
        last = t0
        try:
            while not self.stop_event.is_set():
                self.step()
                now = time.monotonic()
                if now - last >= 5:
                    last = now
                    report(self.summary(now - t0))
                if duration and now - t0 >= duration or until and until():
                    break
        except KeyboardInterrupt:
            pass
        report(self.summary(time.monotonic() - t0))

    def summary(self, elapsed: float) -> str:
        s = self.stats
        return (f"[{elapsed:6.1f}s] boxes {len(self.boxes)} connected {sum(b.connected for b in self.boxes)} "
                f"configured {sum(b.configured for b in self.boxes)} fetched {sum(b.fetched for b in self.boxes)} "
                f"hb {s.get('hb', 0)} refused {s.get('refused', 0)} errors {s.get('connect_error', 0)} "
                f"http {dict(self.http_status)}")

    def close(self) -> None:
        self.stop_event.set()
        for b in self.boxes:
            try:
                b.client.disconnect()
                b.client.loop_write()
            except Exception:
                pass
