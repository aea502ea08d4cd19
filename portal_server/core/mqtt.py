"""The server's MQTT client: one paho client per process, connected as the server account.

Used to publish configs, commands, notices and alerts, and (by device_fleet) to talk to the
broker's dynamic-security plugin. Reconnects by itself (paho's backoff).
"""
from __future__ import annotations

import json
import logging
import os
import threading
import time
import uuid
from urllib.parse import urlparse

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.properties import Properties
from paho.mqtt.packettypes import PacketTypes

from . import protocol

log = logging.getLogger(__name__)


def parse_url(url: str) -> dict:
    """mqtt://user:pass@host:port → connection arguments."""
    u = urlparse(url)
    return {"host": u.hostname or "127.0.0.1", "port": u.port or 1883,
            "username": u.username, "password": u.password}


class Publisher:
    """A connected paho client with a blocking ``publish`` that waits for the broker's PUBACK."""

    def __init__(self, url: str, client_id: str | None = None):
        self.url = url
        args = parse_url(url)
        self.client = paho.Client(CallbackAPIVersion.VERSION2,
                                  client_id=client_id or f"ctv-server-{os.getpid()}-{uuid.uuid4().hex[:6]}",
                                  protocol=paho.MQTTv5)
        if args["username"]:
            self.client.username_pw_set(args["username"], args["password"])
        self.client.max_inflight_messages_set(1000)
        self.client.max_queued_messages_set(0)
        self._connected = threading.Event()
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.reconnect_delay_set(1, 30)
        self.client.connect_async(args["host"], args["port"], keepalive=30)
        self.client.loop_start()

    def _on_connect(self, _c, _u, _flags, reason, _props):
        if not reason.is_failure:
            self._connected.set()
        else:
            log.error("MQTT connect refused: %s", reason)

    def _on_disconnect(self, *_a):
        self._connected.clear()

    def wait_connected(self, timeout: float = 5.0) -> bool:
        return self._connected.wait(timeout)

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def publish(self, topic: str, payload, qos: int = 1, retain: bool = False,
                expiry_s: int | None = None, wait: bool = True, timeout: float = 5.0):
        """Publish ``payload`` (dict → JSON, str, bytes or None); wait for the PUBACK when ``wait``."""
        if isinstance(payload, (dict, list)):
            payload = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
        elif isinstance(payload, str):
            payload = payload.encode()
        props = None
        if expiry_s is not None:
            props = Properties(PacketTypes.PUBLISH)
            props.MessageExpiryInterval = max(1, int(expiry_s))
        if not self.wait_connected(timeout):
            raise ConnectionError(f"MQTT broker not reachable at {parse_url(self.url)['host']}")
        info = self.client.publish(topic, payload, qos=qos, retain=retain, properties=props)
        if wait and qos > 0:
            info.wait_for_publish(timeout)
        return info

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


_publishers: dict[tuple[int, str], Publisher] = {}
_lock = threading.Lock()


def publisher(url: str | None = None) -> Publisher:
    """The process-wide publisher for ``url`` (default: the app's)."""
    if url is None:
        from flask import current_app
        # The server account's URL reads its pinned password file: once per app, not per message.
        url = current_app.extensions.get("ctv_mqtt_server_url")
        if url is None:
            url = current_app.extensions["ctv_mqtt_server_url"] = current_app.config["SETTINGS"].mqtt_server_url
    key = (os.getpid(), url)
    with _lock:
        if key not in _publishers:
            _publishers[key] = Publisher(url)
    return _publishers[key]


def publish(topic: str, payload, **kwargs):
    """Publish through the process-wide publisher."""
    return publisher().publish(topic, payload, **kwargs)


def retained(pattern: str, url: str | None = None, timeout: float = 5.0) -> dict[str, bytes]:
    """What the broker holds right now as retained messages on ``pattern`` (topic → payload), read
    by a fresh connection: subscribe, then publish a marker to ourselves; the broker sends the
    retained messages of a subscription before it handles our next packet, so all of them have
    arrived when the marker does. Raises ConnectionError when the broker does not answer."""
    if url is None:
        from flask import current_app
        url = current_app.config["SETTINGS"].mqtt_server_url
    args = parse_url(url)
    marker = protocol.probe_topic(uuid.uuid4().hex)
    found: dict[str, bytes] = {}
    done, connected = threading.Event(), threading.Event()
    c = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"ctv-probe-{uuid.uuid4().hex[:10]}",
                    protocol=paho.MQTTv5)
    if args["username"]:
        c.username_pw_set(args["username"], args["password"])

    def on_connect(client, _u, _f, reason, _p):
        if not reason.is_failure:
            connected.set()
            client.subscribe([(pattern, 1), (marker, 1)])

    def on_subscribe(client, *_a):
        client.publish(marker, b"1", qos=1)

    def on_message(_client, _u, msg):
        if msg.topic == marker:
            done.set()
        elif msg.retain:
            found[msg.topic] = msg.payload

    c.on_connect, c.on_subscribe, c.on_message = on_connect, on_subscribe, on_message
    try:
        c.connect(args["host"], args["port"], keepalive=30)
    except OSError as exc:
        raise ConnectionError(f"MQTT broker not reachable at {args['host']}: {exc}") from exc
    c.loop_start()
    try:
        if not done.wait(timeout):
            raise ConnectionError("MQTT broker did not answer the probe"
                                  + ("" if connected.is_set() else " (not connected)"))
    finally:
        c.disconnect()
        c.loop_stop()
    return found


def ping(url: str, timeout: float = 2.0) -> bool:
    """True when the broker accepts a fresh connection with these credentials."""
    pub = publisher(url)
    if pub.connected:
        return True
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pub.wait_connected(0.1):
            return True
    return False
