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
import errno
import heapq
import http.client
import itertools
import logging
import os
import queue
import random
import resource
import selectors
import socket
import threading
import time
from urllib.parse import urljoin, urlsplit

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from portal_server.core.mqtt import parse_url

from portal_server.core import protocol
from .agent import HELLO_RETRY_S, SESSION_EXPIRY_S, backoff_delay, hello_retry_delay

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


class _Client(paho.Client):
    """paho's client, connecting without binding first.

    paho binds every socket to ``("", 0)`` before ``connect()``. With 10,000 sockets open in one
    process the kernel's search for a free port in ``bind()`` took ~2.5 ms each (25 of the 49 s a
    10,000-box reboot storm took against Mosquitto alone, all of it in the simulator) and cannot
    reuse ports in TIME_WAIT; ``connect()`` picks the local port itself, cheaply. A real box holds
    one socket: this is the simulator's problem only.
    """

    sockaddr: tuple = ()
    last_error = ""  # errno name of the last socket error (why a connection failed, for the stats)

    def _sock_recv(self, bufsize: int) -> bytes:
        try:
            return super()._sock_recv(bufsize)
        except BlockingIOError:
            raise
        except OSError as exc:
            self.last_error = errno.errorcode.get(exc.errno or 0, type(exc).__name__)
            raise

    def _create_socket_connection(self):
        # Non-blocking too: when the broker's listen backlog overflows (10,000 boxes at once) the
        # kernel drops the SYN and retries it a second later; a blocking connect() would stall every
        # other box of the loop for that second. paho queues CONNECT until the socket is writable.
        family, sockaddr = self.sockaddr
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setblocking(False)
        err = sock.connect_ex(sockaddr)
        if err not in (0, errno.EINPROGRESS, errno.EWOULDBLOCK):
            sock.close()
            raise OSError(err, os.strerror(err))
        return sock


class Browser:
    """What a box's browser does to open its portal URL, cheaply: GET, follow redirects, keep the
    cookies the portal sets, read the page. One kept-alive connection per server, as a browser keeps.

    ``requests`` cost ~1 ms of CPU per request in the simulator's process, where 10,000 boxes' fetches
    competed for the GIL with the MQTT loop of the same 10,000 boxes; ``http.client`` costs a fraction.
    """

    def __init__(self, timeout: float = 30.0, max_redirects: int = 5):
        self.timeout, self.max_redirects = timeout, max_redirects
        self.conns: dict[tuple[str, int], http.client.HTTPConnection] = {}

    def _request(self, host: str, port: int, path: str, cookies: dict[str, str]):
        headers = {"User-Agent": "CommuniTV-sim"}
        if cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
        for attempt in (0, 1):
            conn = self.conns.get((host, port))
            reused = conn is not None
            if conn is None:
                conn = self.conns[(host, port)] = http.client.HTTPConnection(host, port, timeout=self.timeout)
            try:
                conn.request("GET", path, headers=headers)
                resp = conn.getresponse()
                body = resp.read()
                return resp, body
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                conn.close()
                del self.conns[(host, port)]
                if not reused or attempt:  # a browser retries once when a kept-alive connection was closed
                    raise
            except Exception:
                conn.close()
                self.conns.pop((host, port), None)
                raise
        raise AssertionError("unreachable")

    def get(self, url: str) -> int:
        """The final HTTP status of opening ``url`` with an empty cookie jar."""
        cookies: dict[str, str] = {}
        for _ in range(self.max_redirects + 1):
            u = urlsplit(url)
            path = (u.path or "/") + (f"?{u.query}" if u.query else "")
            resp, _body = self._request(u.hostname, u.port or 80, path, cookies)
            for header in resp.headers.get_all("Set-Cookie") or []:
                name, _, value = header.split(";", 1)[0].partition("=")
                cookies[name.strip()] = value.strip()
            if resp.status in (301, 302, 303, 307, 308) and resp.headers.get("Location"):
                url = urljoin(url, resp.headers["Location"])
                continue
            return resp.status
        return resp.status


class SimBox:
    def __init__(self, fleet: "Fleet", serial: str, secret: str):
        self.fleet, self.serial, self.secret = fleet, serial, secret
        self.attempt = 0
        self.connected = self.configured = self.fetched = self.refused = False
        self.portal_url: str | None = None
        self.heartbeat_s = 60
        self.next_hb = 0.0
        self.hello_attempt = 0
        self.next_hello = float("inf")  # monotonic time of the next hello while no config came
        self.started = time.monotonic()
        self.sock = None
        self.boot = 0  # power cuts so far
        c = _Client(CallbackAPIVersion.VERSION2, client_id=serial, protocol=paho.MQTTv5)
        c.sockaddr = fleet.sockaddr
        c.username_pw_set(serial, secret)
        c.will_set(protocol.dev_topic(serial, "status"), protocol.encode_status("offline"), qos=1, retain=True)
        c.on_connect, c.on_disconnect, c.on_message = self._on_connect, self._on_disconnect, self._on_message
        c.on_socket_open = lambda _c, _u, s: fleet._sock_open(self, s)
        c.on_socket_close = lambda _c, _u, s: fleet._sock_close(self, s)
        c.on_socket_register_write = lambda _c, _u, s: fleet._want_write(self, s, True)
        c.on_socket_unregister_write = lambda _c, _u, s: fleet._want_write(self, s, False)
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
            self.refused = True
            return
        self.connected, self.attempt = True, 0
        self.fleet.count("connects")
        c.publish(protocol.dev_topic(self.serial, "status"), protocol.encode_status("online"), qos=1, retain=True)
        c.subscribe([(protocol.dev_topic(self.serial, "config"), 1), (protocol.dev_topic(self.serial, "cmd"), 1)])
        self.hello_attempt = 0
        self.say_hello()

    def say_hello(self) -> None:
        """Publish hello; the loop repeats it while no config comes (as the agent does)."""
        self.next_hello = time.monotonic() + hello_retry_delay(self.hello_attempt, base=self.fleet.hello_retry_s)
        self.hello_attempt += 1
        self.client.publish(protocol.dev_topic(self.serial, "hello"),
                            protocol.encode_hello(model="CTV-SIM", fw=self.fleet.fw, mac=None, ip="10.0.0.1"), qos=1)
        self.fleet.count("hellos")

    def _on_disconnect(self, *_a):
        if self.connected:
            self.fleet.count("disconnects")
        elif not self.refused:  # the TCP connection failed or dropped before a CONNACK
            self.fleet.count("connect_error")
            self.fleet.count(f"connect_error:{self.client.last_error or 'closed'}")
        self.connected = self.refused = False
        self.fleet.schedule_reconnect(self)

    def _on_message(self, _c, _u, msg):
        try:
            kind = msg.topic.rsplit("/", 1)[-1]
            if kind == "config":
                cfg = protocol.decode_config(msg.payload)
                self.heartbeat_s = int(cfg["heartbeat_s"])
                self.next_hello = float("inf")
                if not self.configured:
                    self.configured = True
                    self.fleet.count("configured")
                    self.next_hb = time.monotonic() + random.uniform(0, self.heartbeat_s)
                    if cfg["state"] == "paired" and self.fleet.fetch and not self.fetched:
                        self.portal_url = cfg["portal_url"]
                        self.fleet.fetch_queue.put((self, self.boot))
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
                 fw: str = "2.3.1", alerts: bool = False, hello_retry_s: float = HELLO_RETRY_S):
        raise_fd_limit()
        #: First delay before an unanswered hello is repeated (see ``agent.hello_retry_delay``).
        self.hello_retry_s = hello_retry_s
        #: Subscribe to region topics and ack alerts; alert id → {serial: time first received}.
        self.alerts = alerts
        self.alert_seen: dict[str, dict[str, float]] = {}
        a = parse_url(mqtt_url)
        self.host, self.port = a["host"], a["port"]
        info = socket.getaddrinfo(self.host, self.port, type=socket.SOCK_STREAM)[0]  # resolved once for all boxes
        self.sockaddr = (info[0], info[4])
        self.fw = fw
        self.fetch = fetch
        self.sel = selectors.DefaultSelector()
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
        box.sock = None

    def _want_write(self, box: SimBox, sock, on: bool) -> None:
        """paho has bytes to send (or not): watch the socket for writability (a connecting socket
        becomes writable once connected)."""
        try:
            self.sel.modify(sock, selectors.EVENT_READ | (selectors.EVENT_WRITE if on else 0), box)
        except (KeyError, ValueError, OSError):
            pass

    def schedule_reconnect(self, box: SimBox) -> None:
        delay = backoff_delay(box.attempt, base=1.0, cap=60.0)
        box.attempt += 1
        heapq.heappush(self.pending, (time.monotonic() + delay, next(self._seq), box))

    def _fetch_worker(self) -> None:
        browser = Browser()
        while not self.stop_event.is_set():
            try:
                box, boot = self.fetch_queue.get(timeout=0.5)
            except queue.Empty:
                continue
            try:
                # A fresh browser for every box (the portal sets per-box cookies); it follows
                # /tv/?token=… → /tv/v/<village>/home.html as the box's browser does.
                key = browser.get(box.portal_url)
                if key == 200 and box.boot == boot:
                    box.fetched = True
            except (OSError, http.client.HTTPException):  # counted, never fatal
                key = "ConnectionError"
            except Exception as exc:
                key = type(exc).__name__
            if box.boot != boot:
                continue  # the power went off meanwhile: this fetch counts for nothing
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
            b.boot += 1  # a page fetch still under way belongs to the box's previous life
            self._drop_socket(b)
            b.started = time.monotonic()
        while not self.fetch_queue.empty():
            try:
                self.fetch_queue.get_nowait()
            except queue.Empty:
                break
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
        for key, ev in self.sel.select(timeout):
            box = key.data
            if ev & selectors.EVENT_READ:
                box.client.loop_read()
            if ev & selectors.EVENT_WRITE and box.sock is key.fileobj:
                box.client.loop_write()
        if now - getattr(self, "_last_misc", 0) >= 1.0:
            self._last_misc = now
            for b in self.boxes:
                if b.sock is not None:
                    b.client.loop_misc()
                if b.connected and b.configured and b.next_hb <= now:
                    b.heartbeat(now)
                elif b.connected and not b.configured and b.next_hello <= now:
                    b.say_hello()

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

    def _drop_socket(self, b: SimBox) -> None:
        if b.sock is not None:
            sock = b.sock
            self._sock_close(b, sock)
            try:
                sock.close()
            except OSError:
                pass
            b.client._sock = None  # paho must not touch the dead socket

    def close(self) -> None:
        """Disconnect every box cleanly (no Last Will) and close its socket."""
        self.stop_event.set()
        for b in self.boxes:
            try:
                b.client.disconnect()
                b.client.loop_write()
            except Exception:
                pass
            self._drop_socket(b)
        self.sel.close()
