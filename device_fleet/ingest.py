"""`communitv ingest`: the MQTT side of the fleet.

Subscribes to every box's hello, hb, status and ack, and to every box's retained config (so it
knows what each box gets the moment it subscribes). A hello from a box whose retained config is
current — same heartbeat and time zone as the settings, portal URL not near its expiry — needs no
answer: after a power cut 10,000 rebooting boxes find their config on the broker, and their hellos
only mark them present and report their firmware (checked against the database in batches, one
query per 500 boxes). A box with no retained config (first boot, unknown box) or a stale one gets
a fresh config built from the database, as before. Last-seen times, the latest heartbeat and the
expiry of each retained portal URL go to Redis in batches (never a database row per heartbeat);
acks send ``box_acked``. Malformed or oversized payloads are dropped and counted.
"""
from __future__ import annotations

import json
import logging
import queue
import re
import threading
import hashlib
import time

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from portal_server.core import protocol, redis as core_redis, signals
from portal_server.core.mqtt import parse_url
from portal_server.core.terminals import Terminal
from portal_server.core.db import session
from sqlalchemy import or_, select

from . import presence

log = logging.getLogger(__name__)
#: Heartbeats taken in since the key was created (for /metrics and the ingest benchmark).
HB_TOTAL = "ctv:fleet:hb_total"
# A plain subscription: Mosquitto 2.0.11 delivered a $share/ subscription at ~300 msg/s with loss
# in bench/fleet_heartbeats.py (vs ~12,000 msg/s plain), so one ingest process takes the stream.
SHARE = ""
#: How long the broker keeps the ingest's session (and queues the boxes' messages) while it is away.
SESSION_EXPIRY_S = 600
#: Most hellos or acks handled in one database session.
HELLO_BATCH = 500
#: The expiry (epoch s) signed into a portal URL (``…&e=<exp>&sig=…``, core.terminals.portal_url).
PORTAL_EXPIRY_RE = re.compile(rb"[?&]e=(\d+)")
from portal_server.core.metrics import INGEST_MESSAGES as INGESTED  # noqa: E402
from portal_server.core.metrics import MQTT_DROPPED_KEY as DROPPED  # noqa: E402


from .operations import config_payload as _config_payload, ensure_pairing_code  # noqa: E402
from .operations import sync_broker_clients as sync_broker_accounts  # noqa: E402,F401


def config_payload(term: Terminal, settings=None) -> bytes:
    return _config_payload(term)


def refresh_before_s(settings) -> float:
    """A retained portal URL expiring sooner than this is re-issued (on the box's hello, and by the
    periodic ``device_fleet.tasks:refresh_configs``): a week, or a third of a short lifetime."""
    return min(7 * 86400, settings.portal_url_ttl_days * 86400 / 3)


def retained_facts(payload: bytes) -> tuple[str, int | None, int, str] | None:
    """(state, portal URL expiry or None, heartbeat_s, timezone) of a retained config; None when
    the topic was cleared."""
    if not payload:
        return None
    cfg = protocol.decode_config(payload)
    m = PORTAL_EXPIRY_RE.search(cfg.get("portal_url", "").encode())
    return cfg["state"], int(m.group(1)) if m else None, int(cfg["heartbeat_s"]), cfg.get("timezone", "")


class Ingest:
    """The ingest loop: MQTT callbacks only queue; one thread handles hello/ack, one flushes heartbeats."""

    def __init__(self, app, flush_interval: float = 0.5, watch_interval: float = 1.0,
                 alarm_interval: float | None = None):
        self.app = app
        self.settings = app.config["SETTINGS"]
        self.flush_interval = flush_interval
        self.watch_interval = watch_interval
        #: Alarms are weighed every ``alarm_interval`` (10 watches): their limits are minutes, and
        #: reading every box's presence and terminal row each second cost the ingest more CPU than
        #: 10,000 rebooting boxes' messages (py-spy, bench/fleet_reboot_storm.py).
        self.alarm_interval = 10 * watch_interval if alarm_interval is None else alarm_interval
        self.last_alarms = 0.0
        self.last_sample: dict[str, float] = {}
        self.prev_online: set[str] | None = None
        self.stop_event = threading.Event()
        self.work: queue.Queue = queue.Queue(maxsize=100_000)
        self.seen: dict[str, tuple[float, bytes | None]] = {}
        self.status: dict[str, str] = {}
        self.hb_count = 0
        #: serial → what its retained config says (``retained_facts``), as the broker holds it.
        self.retained: dict[str, tuple[str, int | None, int, str]] = {}
        #: Portal URL expiries seen since the last flush (None: no portal URL any more) → Redis.
        self.expiry_changes: dict[str, int | None] = {}
        #: Firmware reported in hellos not answered with a config (recorded in batches).
        self.fw_reported: dict[str, str] = {}
        self.lock = threading.Lock()
        self.ready = threading.Event()
        args = parse_url(self.settings.mqtt_server_url)
        # One name per installation and a session the broker keeps while we are away (reconnecting,
        # or the next leader taking over): the boxes' acks are QoS 1 and sent once, so an ack
        # published in that gap waits in the broker instead of being lost.
        digest = hashlib.sha1(self.settings.database_url.encode()).hexdigest()[:10]
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"ctv-ingest-{digest}",
                                  protocol=paho.MQTTv5)
        self.client.username_pw_set(args["username"], args["password"])
        self.client.max_inflight_messages_set(1000)
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = lambda *a: self.ready.set()
        self.client.on_message = self._on_message
        self._args = args

    # MQTT callbacks (network thread): parse, count, hand over.
    def _on_connect(self, client, _u, _f, reason, _p):
        if reason.is_failure:
            log.error("ingest: broker refused us: %s", reason)
            return
        # QoS 0 for the many (hello, hb, status, and every config: each retained one arrives once now,
        # then each change, ours included): our session is not kept, so QoS 1 promised nothing more
        # than TCP does, and cost a PUBACK per message both ways plus Mosquitto's window of 20
        # in-flight messages, which a reboot storm's 30,000 hellos and statuses queued behind (the
        # broker drops QoS 0 to a connected client only past max_queued_messages pending packets).
        # Acks stay QoS 1: few, and each one settles a command.
        client.subscribe([(SHARE + protocol.dev_topic("+", k), 0) for k in ("hello", "hb", "status", "config")]
                         + [(SHARE + protocol.dev_topic("+", "ack"), 1)])

    def _drop(self, reason: str) -> None:
        try:
            with self.app.app_context():
                core_redis.client().hincrby(DROPPED, reason, 1)
        except Exception:
            pass

    def _on_message(self, _c, _u, msg):
        try:
            serial, kind = protocol.parse_dev_topic(msg.topic)
            INGESTED.labels(kind).inc()
            if kind == "hb":
                protocol.decode_hb(msg.payload)
                with self.lock:
                    self.seen[serial] = (time.time(), msg.payload)
                    self.hb_count += 1
            elif kind == "status":
                st = protocol.decode_status(msg.payload) if msg.payload else {"state": "offline"}
                with self.lock:
                    self.status[serial] = st["state"]
                    if st["state"] == "online":
                        self.seen.setdefault(serial, (time.time(), None))
            elif kind == "hello":
                hello = protocol.decode_hello(msg.payload)
                now = time.time()
                with self.lock:
                    self.seen[serial] = (now, self.seen.get(serial, (0, None))[1])
                    current = self.config_current(serial, now)
                    if current and hello.get("fw"):
                        self.fw_reported[serial] = hello["fw"]
                if not current:
                    self.work.put(("hello", serial, hello))
            elif kind == "config":
                facts = retained_facts(msg.payload)
                with self.lock:
                    if facts is None:
                        self.retained.pop(serial, None)
                    else:
                        self.retained[serial] = facts
                    self.expiry_changes[serial] = facts[1] if facts else None
            elif kind == "ack":
                self.work.put(("ack", serial, protocol.decode_ack(msg.payload)))
        except protocol.ProtocolError as exc:
            log.warning("dropped %s: %s", msg.topic, exc)
            self._drop("too_large" if "too large" in str(exc) else "malformed")
        except queue.Full:
            self._drop("overload")

    def config_current(self, serial: str, now: float) -> bool:
        """Whether the box's retained config (as the broker holds it) is what we would send now:
        then the box has it already when it subscribes, and its hello needs no answer."""
        facts = self.retained.get(serial)
        if facts is None:
            return False
        state, expires, heartbeat_s, tz = facts
        if heartbeat_s != self.settings.heartbeat_s or tz != self.settings.timezone:
            return False
        if state == "unpaired":
            return True
        return expires is not None and expires - now > refresh_before_s(self.settings)

    # Workers.
    def _handle_work(self):
        """Hellos and acks, in batches: after a power cut 10,000 hellos arrive within seconds, and one
        query and one session per batch (not per hello) keeps the ingest from falling behind."""
        with self.app.app_context():
            while not self.stop_event.is_set():
                try:
                    items = [self.work.get(timeout=0.5)]
                except queue.Empty:
                    items = []
                with self.lock:
                    fw, self.fw_reported = self.fw_reported, {}
                if fw:
                    try:
                        self.note_firmware(fw)
                    except Exception:
                        session.rollback()
                        log.exception("ingest: recording the firmware of %d boxes failed", len(fw))
                    finally:
                        session.remove()
                if not items:
                    continue
                while len(items) < HELLO_BATCH:
                    try:
                        items.append(self.work.get_nowait())
                    except queue.Empty:
                        break
                hellos: dict[str, dict] = {}  # a box that repeated its hello is answered once
                try:
                    for kind, serial, data in items:
                        if kind == "hello":
                            hellos[serial] = data
                        elif kind == "ack":
                            self._on_ack(serial, data)
                    if hellos:
                        self.on_hellos(hellos)
                except Exception:
                    log.exception("ingest: handling a batch of %d messages failed", len(items))
                finally:
                    session.remove()

    def _on_ack(self, serial: str, data: dict) -> None:
        try:
            if data["kind"] == "cmd":
                from .operations import command_ack
                command_ack(serial, data["id"], data["ok"], data.get("detail"))
                session.commit()
            signals.box_acked.send(serial, kind=data["kind"], id=data["id"], ok=data["ok"],
                                   detail=data.get("detail"))
        except Exception:
            session.rollback()
            log.exception("ingest: handling an ack from %s failed", serial)

    def on_hello(self, serial: str, hello: dict) -> None:
        self.on_hellos({serial: hello})

    def on_hellos(self, hellos: dict[str, dict]) -> None:
        """Answer each box's hello with its retained config; note the firmware it reports."""
        terms = {t.serial: t for t in session.scalars(select(Terminal).where(Terminal.serial.in_(list(hellos))))}
        for serial in hellos.keys() - terms.keys():
            self._drop("unknown_serial")
        for term in terms.values():
            ensure_pairing_code(term)  # an unbound box seen for the first time
        session.commit()  # the pairing codes are committed before a box can show one
        fw_changed = False
        for serial, term in terms.items():
            fw = hellos[serial].get("fw")
            if fw and fw != term.firmware:
                term.firmware, fw_changed = fw, True
            self.client.publish(protocol.dev_topic(serial, "config"), config_payload(term, self.settings),
                                qos=1, retain=True)
        if fw_changed:
            session.commit()

    def note_firmware(self, reported: dict[str, str]) -> int:
        """Record the firmware boxes reported in their hellos: one query per version and 500 boxes
        finds the rows that differ (after a power cut: none), and only those are written."""
        by_fw: dict[str, list[str]] = {}
        for serial, fw in reported.items():
            by_fw.setdefault(fw, []).append(serial)
        changed = 0
        for fw, serials in by_fw.items():
            for i in range(0, len(serials), HELLO_BATCH):
                for term in session.scalars(select(Terminal).where(
                        Terminal.serial.in_(serials[i:i + HELLO_BATCH]),
                        or_(Terminal.firmware.is_(None), Terminal.firmware != fw))):
                    term.firmware = fw
                    changed += 1
        if changed:
            session.commit()
        return changed

    def flush(self) -> None:
        """Write the buffered presence to Redis in one pipeline."""
        with self.lock:
            seen, self.seen = self.seen, {}
            status, self.status = self.status, {}
            hb_count, self.hb_count = self.hb_count, 0
            expiries, self.expiry_changes = self.expiry_changes, {}
        if not seen and not status and not expiries:
            return
        r = core_redis.client()
        pipe = r.pipeline(transaction=False)
        if expiries:
            presence.note_portal_expiries(pipe, expiries)
        if hb_count:
            pipe.incrby(HB_TOTAL, hb_count)
        if seen:
            pipe.zadd(presence.LASTSEEN, {s: ts for s, (ts, _) in seen.items()})
            pipe.srem(presence.OFFLINE, *seen.keys())
            step = presence.history_step_s()
            for s, (ts, hb) in seen.items():
                if hb:
                    pipe.set(presence.HB + s, hb, ex=86400)
                    if ts - self.last_sample.get(s, 0) >= step:
                        # Downsampled history: one sample per step per box, capped list.
                        self.last_sample[s] = ts
                        try:
                            h = json.loads(hb)
                        except ValueError:
                            h = {}
                        sample = json.dumps({"ts": int(ts), "cpu": h.get("cpu"), "mem_free_kb": h.get("mem_free_kb"),
                                             "uptime_s": h.get("uptime_s"), "fw": h.get("fw")})
                        pipe.rpush(presence.HIST + s, sample)
                        pipe.ltrim(presence.HIST + s, -presence.HIST_LEN, -1)
                        pipe.expire(presence.HIST + s, presence.HIST_TTL_S)
        for s, st in status.items():
            if st == "offline" and s not in seen:
                pipe.sadd(presence.OFFLINE, s)
        pipe.execute()

    def _flusher(self):
        with self.app.app_context():
            while not self.stop_event.wait(self.flush_interval):
                try:
                    self.flush()
                except Exception:
                    log.exception("ingest: flushing presence failed (will retry)")

    def watch(self) -> None:
        """Presence changes (signal), alarms, command expiry: derived from Redis every watch_interval."""
        online = presence.online_serials()
        if self.prev_online is not None:
            for s in online - self.prev_online:
                signals.presence_changed.send(s, online=True)
            for s in self.prev_online - online:
                signals.presence_changed.send(s, online=False)
        self.prev_online = online
        from .operations import evaluate_alarms, expire_commands
        if time.monotonic() - self.last_alarms >= self.alarm_interval:
            self.last_alarms = time.monotonic()
            evaluate_alarms()
            session.commit()
        expire_commands()
        session.commit()

    def _watcher(self):
        with self.app.app_context():
            while not self.stop_event.wait(self.watch_interval):
                try:
                    self.watch()
                except Exception:
                    log.exception("ingest: watch failed (will retry)")
                finally:
                    session.remove()

    def start(self) -> "Ingest":
        self.threads = [threading.Thread(target=self._handle_work, daemon=True, name="ingest-work"),
                        threading.Thread(target=self._watcher, daemon=True, name="ingest-watch"),
                        threading.Thread(target=self._flusher, daemon=True, name="ingest-flush")]
        for t in self.threads:
            t.start()
        # Back within a second or two of the broker: boxes reconnect at once and ack what they show.
        self.client.reconnect_delay_set(1, 2)
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = SESSION_EXPIRY_S
        self.client.connect_async(self._args["host"], self._args["port"], 30, clean_start=False,
                                  properties=props)
        self.client.loop_start()
        return self

    def stop(self) -> None:
        """A clean stop ends the session too (nothing left queued for an ingest that is gone)."""
        self.stop_event.set()
        props = Properties(PacketTypes.DISCONNECT)
        props.SessionExpiryInterval = 0
        self.client.disconnect(properties=props)
        self.client.loop_stop()
        for t in self.threads:
            t.join(5)


def dropped_counts(r) -> dict[str, int]:
    return {k.decode(): int(v) for k, v in r.hgetall(DROPPED).items()}
