"""`communitv ingest`: the MQTT side of the fleet.

Subscribes to every box's
hello, hb, status and ack. Answers hello with the retained config; keeps last-seen times and the
latest heartbeat in Redis, written in batches (never a database row per heartbeat); sends
``box_acked`` for acks. Malformed or oversized payloads are dropped and counted.
"""
from __future__ import annotations

import json
import logging
import queue
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
from sqlalchemy import select

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
from portal_server.system.metrics import INGEST_MESSAGES as INGESTED  # noqa: E402
from portal_server.system.metrics import MQTT_DROPPED_KEY as DROPPED  # noqa: E402


from .operations import config_payload as _config_payload, ensure_pairing_code  # noqa: E402
from .operations import sync_broker_clients as sync_broker_accounts  # noqa: E402,F401


def config_payload(term: Terminal, settings=None) -> bytes:
    return _config_payload(term)


class Ingest:
    """The ingest loop: MQTT callbacks only queue; one thread handles hello/ack, one flushes heartbeats."""

    def __init__(self, app, flush_interval: float = 0.5, watch_interval: float = 1.0):
        self.app = app
        self.settings = app.config["SETTINGS"]
        self.flush_interval = flush_interval
        self.watch_interval = watch_interval
        self.last_sample: dict[str, float] = {}
        self.prev_online: set[str] | None = None
        self.stop_event = threading.Event()
        self.work: queue.Queue = queue.Queue(maxsize=100_000)
        self.seen: dict[str, tuple[float, bytes | None]] = {}
        self.status: dict[str, str] = {}
        self.hb_count = 0
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
        client.subscribe([(SHARE + protocol.dev_topic("+", k), 1) for k in ("hello", "hb", "status", "ack")])

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
                with self.lock:
                    self.seen[serial] = (time.time(), self.seen.get(serial, (0, None))[1])
                self.work.put(("hello", serial, hello))
            elif kind == "ack":
                self.work.put(("ack", serial, protocol.decode_ack(msg.payload)))
        except protocol.ProtocolError as exc:
            log.warning("dropped %s: %s", msg.topic, exc)
            self._drop("too_large" if "too large" in str(exc) else "malformed")
        except queue.Full:
            self._drop("overload")

    # Workers.
    def _handle_work(self):
        """Hellos and acks, in batches: after a power cut 10,000 hellos arrive within seconds, and one
        query and one session per batch (not per hello) keeps the ingest from falling behind."""
        with self.app.app_context():
            while not self.stop_event.is_set():
                try:
                    items = [self.work.get(timeout=0.5)]
                except queue.Empty:
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

    def flush(self) -> None:
        """Write the buffered presence to Redis in one pipeline."""
        with self.lock:
            seen, self.seen = self.seen, {}
            status, self.status = self.status, {}
            hb_count, self.hb_count = self.hb_count, 0
        if not seen and not status:
            return
        r = core_redis.client()
        pipe = r.pipeline(transaction=False)
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
