"""The box agent: what runs on a Linux set-top box (``python -m device_fleet.agent``).

Connects as its serial with its factory secret (persistent session, a day's expiry, Last Will
``offline``), reconnects with exponential backoff and full jitter, says hello after every
connect, follows the retained config (pairing code or portal URL + region topics), heartbeats
every ``heartbeat_s``, executes commands and acks them; plays HLS with libVLC and shows alerts
over the video with VLC's marquee, acking each alert and playing its spoken version (``audio_url``).
"""
from __future__ import annotations

import argparse
import hashlib
import logging
import os
import random
import socket
import threading
import time
from pathlib import Path

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from portal_server.core.mqtt import parse_url

from portal_server.core import protocol

log = logging.getLogger("ctv.agent")
SESSION_EXPIRY_S = 86400


def backoff_delay(attempt: int, base: float = 1.0, cap: float = 300.0, rng=random) -> float:
    """Exponential backoff with full jitter: uniform(0, min(cap, base·2^attempt))."""
    return rng.uniform(0, min(cap, base * (2 ** attempt)))


#: A box connected but without a config says hello again after this long (then twice as long, ...).
HELLO_RETRY_S = 10.0


def hello_retry_delay(attempt: int, base: float = HELLO_RETRY_S, cap: float = 300.0, rng=random) -> float:
    """When to repeat an unanswered hello: doubling from ``base`` up to ``cap``, ±50% jitter.

    A hello is not retained: one sent while no ingest was subscribed (the ingest restarting, or
    starting after the broker) is lost, and a box seen for the first time has no retained config
    to fall back on. Without a repeat it would wait for its config until its next reconnect.
    """
    return min(cap, base * (2 ** attempt)) * rng.uniform(0.5, 1.5)


class Player:
    """libVLC with a marquee for alerts and messages; ``dummy`` outputs on a headless box or in tests."""

    def __init__(self, dummy: bool = True):
        import vlc
        self.vlc = vlc
        opts = ["--no-xlib", "--quiet", "--sub-source=marq", "--network-caching=500"]
        if dummy:
            opts += ["--vout=dummy", "--aout=dummy"]
        self.instance = vlc.Instance(" ".join(opts))
        self.mp = self.instance.media_player_new()
        self.url: str | None = None
        self.marquee: str | None = None

    def play(self, url: str, timeout: float = 15.0) -> tuple[bool, str]:
        self.mp.set_media(self.instance.media_new(url))
        self.mp.play()
        deadline = time.monotonic() + timeout
        State = self.vlc.State
        while time.monotonic() < deadline:
            st = self.mp.get_state()
            if st == State.Playing:
                self.url = url
                return True, "playing"
            if st in (State.Error, State.Ended):
                return False, f"player state {st}"
            time.sleep(0.1)
        return False, "timed out waiting for playback"

    def show(self, text: str | None, timeout_ms: int = 0) -> None:
        """Show ``text`` over the video (None clears it)."""
        M = self.vlc.VideoMarqueeOption
        self.marquee = text
        if text is None:
            self.mp.video_set_marquee_int(M.Enable, 0)
            return
        self.mp.video_set_marquee_int(M.Enable, 1)
        self.mp.video_set_marquee_int(M.Size, 36)
        self.mp.video_set_marquee_int(M.Position, 8)  # top
        self.mp.video_set_marquee_int(M.Timeout, timeout_ms)
        self.mp.video_set_marquee_string(M.Text, text)

    def playing(self) -> str | None:
        return self.url if self.mp.get_state() == self.vlc.State.Playing else None

    def speak(self, url: str | None) -> None:
        """Play an alert's spoken version (audio_url) over the video on a second player; None stops it."""
        if getattr(self, "audio_mp", None) is None:
            self.audio_mp = self.instance.media_player_new()
        self.audio_url = url
        if url is None:
            self.audio_mp.stop()
            return
        self.audio_mp.set_media(self.instance.media_new(url))
        self.audio_mp.play()

    def stop(self) -> None:
        self.mp.stop()
        self.url = None


class Agent:
    def __init__(self, serial: str, secret: str, mqtt_url: str, model: str = "CTV-S905", fw: str = "2.3.1",
                 player: Player | None = None, state_dir: Path | None = None, mac: str | None = None,
                 hello_retry_s: float = HELLO_RETRY_S):
        self.serial, self.secret, self.model, self.fw, self.mac = serial, secret, model, fw, mac
        self.args = parse_url(mqtt_url)
        self.player = player
        self.state_dir = state_dir
        if state_dir:
            f = Path(state_dir) / "firmware"
            if f.exists():
                self.fw = f.read_text().strip() or fw
        self.config: dict | None = None
        self.alerts: dict[str, dict] = {}          # region topic → active alert
        self.acked: list[tuple[str, str, bool]] = []
        self.heartbeat_s = 60
        self.started = time.monotonic()
        self.page = "boot"
        self.stop_event = threading.Event()
        self.connected = threading.Event()
        self.configured = threading.Event()
        self.region_subs: list[str] = []
        self.hello_retry_s = hello_retry_s
        self.hello_attempt = 0
        self.next_hello = float("inf")  # monotonic time of the next hello while no config came
        self.client = self._make_client()

    def _make_client(self) -> paho.Client:
        c = paho.Client(CallbackAPIVersion.VERSION2, client_id=self.serial, protocol=paho.MQTTv5)
        c.username_pw_set(self.serial, self.secret)
        c.will_set(protocol.dev_topic(self.serial, "status"), protocol.encode_status("offline"), qos=1, retain=True)
        c.on_connect, c.on_disconnect, c.on_message = self._on_connect, self._on_disconnect, self._on_message
        # Reconnecting is ours (full jitter below), not paho's fixed exponential delay.
        c.reconnect_delay_set(3600, 3600)
        return c

    # Connection -------------------------------------------------------------------------------
    def _connect_loop(self) -> None:
        attempt = 0
        while not self.stop_event.is_set():
            if not self.connected.is_set():
                self.client.loop_stop()
                props = Properties(PacketTypes.CONNECT)
                props.SessionExpiryInterval = SESSION_EXPIRY_S
                try:
                    self.client.connect(self.args["host"], self.args["port"], keepalive=max(30, self.heartbeat_s * 2),
                                        clean_start=False, properties=props)
                    self.client.loop_start()
                    if self.connected.wait(10):
                        attempt = 0
                    else:
                        raise ConnectionError("CONNACK refused or missing")
                except (OSError, ConnectionError) as exc:
                    delay = backoff_delay(attempt)
                    attempt += 1
                    log.warning("%s: connect failed (%s); retrying in %.1fs", self.serial, exc, delay)
                    self.stop_event.wait(delay)
                    continue
            self.stop_event.wait(0.5)

    def _on_connect(self, c, _u, _flags, reason, _props):
        if reason.is_failure:
            log.error("%s: broker refused: %s", self.serial, reason)
            return
        c.publish(protocol.dev_topic(self.serial, "status"), protocol.encode_status("online"), qos=1, retain=True)
        subs = [(protocol.dev_topic(self.serial, "config"), 1), (protocol.dev_topic(self.serial, "cmd"), 1)]
        subs += [(t, 1) for t in self.region_subs]
        c.subscribe(subs)
        self.hello_attempt = 0
        self.say_hello()
        self.connected.set()

    def say_hello(self) -> None:
        """Publish hello; until a config comes, the heartbeat loop repeats it (``hello_retry_delay``)."""
        self.next_hello = time.monotonic() + hello_retry_delay(self.hello_attempt, base=self.hello_retry_s)
        self.hello_attempt += 1
        self.client.publish(protocol.dev_topic(self.serial, "hello"),
                            protocol.encode_hello(model=self.model, fw=self.fw, mac=self.mac, ip=_local_ip()), qos=1)

    def _on_disconnect(self, *_a):
        self.connected.clear()

    # Messages ---------------------------------------------------------------------------------
    def _on_message(self, _c, _u, msg):
        try:
            if msg.topic.startswith(protocol.PREFIX + "/region/"):
                self._on_region(msg.topic, msg.payload)
                return
            _serial, kind = protocol.parse_dev_topic(msg.topic)
            if kind == "config":
                self.apply_config(protocol.decode_config(msg.payload))
            elif kind == "cmd":
                threading.Thread(target=self.execute, args=(protocol.decode_cmd(msg.payload),), daemon=True).start()
        except protocol.ProtocolError as exc:
            log.warning("%s: ignored %s: %s", self.serial, msg.topic, exc)

    def apply_config(self, cfg: dict) -> None:
        self.config = cfg
        self.next_hello = float("inf")
        self.heartbeat_s = int(cfg["heartbeat_s"])
        if cfg["state"] == "unpaired":
            self.page = "pairing"
            self._show(f"配对码 {cfg['pairing_code']}")
        else:
            self.page = "home"
            want = [protocol.region_topic(code, "#") for code in cfg.get("region_codes", [])]
            new = [t for t in want if t not in self.region_subs]
            old = [t for t in self.region_subs if t not in want]
            if old:
                self.client.unsubscribe(old)
            if new:
                self.client.subscribe([(t, 1) for t in new])
            self.region_subs = want
            if not self.alerts:
                self._show(None)
        self.configured.set()

    def _on_region(self, topic: str, payload: bytes) -> None:
        if not topic.endswith("/alert"):
            return  # notices: the portal page refreshes itself
        alert = protocol.decode_alert(payload)
        if alert is None:
            if (self.alerts.pop(topic, None) or {}).get("audio_url"):
                self._speak(None)
        else:
            if alert.get("expires") and isinstance(alert["expires"], (int, float)) and alert["expires"] < time.time():
                return
            old = self.alerts.get(topic) or {}
            first = old.get("id") != alert["id"]
            self.alerts[topic] = alert
            if first:  # the same alert again (audio added, reconnect) is not acked twice
                self.ack("alert", alert["id"], True, "displayed")
            audio = alert.get("audio_url")
            if audio and (first or audio != old.get("audio_url")):
                self._speak(audio)  # read aloud for those who cannot read
        top = next(iter(self.alerts.values()), None)
        self._show(f"【{top.get('headline', '')}】{top.get('instruction', '')}" if top else None)

    def _speak(self, url: str | None) -> None:
        if self.player:
            try:
                self.player.speak(url)
            except Exception:
                log.exception("alert audio failed")

    def _show(self, text: str | None) -> None:
        if self.player:
            try:
                self.player.show(text)
            except Exception:
                log.exception("marquee failed")

    def ack(self, kind: str, id_: str, ok: bool, detail: str | None = None) -> None:
        self.acked.append((kind, id_, ok))
        self.client.publish(protocol.dev_topic(self.serial, "ack"),
                            protocol.encode_ack(kind=kind, id=id_, ok=ok, detail=detail), qos=1)

    # Commands ---------------------------------------------------------------------------------
    def execute(self, cmd: dict) -> None:
        if cmd.get("expires") and cmd["expires"] < time.time():
            self.ack("cmd", cmd["id"], False, "expired before it arrived")
            return
        t, args = cmd["type"], cmd["args"]
        try:
            if t == "reboot":
                self.ack("cmd", cmd["id"], True, "rebooting")
                time.sleep(0.3)
                self.reboot()
            elif t == "reload":
                self.page = "home"
                self.ack("cmd", cmd["id"], True, "reloaded")
            elif t == "tune":
                if not self.player:
                    self.ack("cmd", cmd["id"], False, "no player on this box")
                    return
                ok, detail = self.player.play(args["url"])
                self.ack("cmd", cmd["id"], ok, detail)
            elif t == "message":
                self._show(args.get("text"))
                self.ack("cmd", cmd["id"], True, "shown")
            elif t == "upgrade":
                ok, detail = self.upgrade(args)
                self.ack("cmd", cmd["id"], ok, detail)
                if ok:
                    time.sleep(0.3)
                    self.reboot()
        except Exception as exc:  # never die on a command
            log.exception("%s: command %s failed", self.serial, t)
            self.ack("cmd", cmd["id"], False, f"{type(exc).__name__}: {exc}")

    def upgrade(self, args: dict) -> tuple[bool, str]:
        import requests
        r = requests.get(args["url"], timeout=60)
        if r.status_code != 200:
            return False, f"download failed: HTTP {r.status_code}"
        digest = hashlib.sha256(r.content).hexdigest()
        if digest != args.get("sha256"):
            return False, "sha256 mismatch"
        self.fw = args["version"]
        if self.state_dir:
            Path(self.state_dir).mkdir(parents=True, exist_ok=True)
            (Path(self.state_dir) / "firmware").write_text(self.fw)
        return True, f"installed {self.fw}"

    def reboot(self) -> None:
        """Drop the connection cleanly (the ack is delivered) and come back as after a power cycle."""
        self.client.disconnect()
        self.client.loop_stop()
        self.connected.clear()
        self.started = time.monotonic()
        self.page = "boot"

    # Heartbeats -------------------------------------------------------------------------------
    def heartbeat(self) -> None:
        self.client.publish(protocol.dev_topic(self.serial, "hb"), protocol.encode_hb(
            uptime_s=int(time.monotonic() - self.started), fw=self.fw, cpu=round(random.uniform(2, 30), 1),
            mem_free_kb=_mem_free_kb(), playing=self.player.playing() if self.player else None, page=self.page), qos=0)

    def _hb_loop(self) -> None:
        while not self.stop_event.wait(self.heartbeat_s if self.configured.is_set() else 1):
            if self.connected.is_set() and self.configured.is_set():
                self.heartbeat()
            elif self.connected.is_set() and time.monotonic() >= self.next_hello:
                self.say_hello()

    def start(self) -> "Agent":
        self.threads = [threading.Thread(target=self._connect_loop, daemon=True, name=f"agent-{self.serial}"),
                        threading.Thread(target=self._hb_loop, daemon=True, name=f"hb-{self.serial}")]
        for t in self.threads:
            t.start()
        return self

    def stop(self, graceful: bool = True) -> None:
        self.stop_event.set()
        if graceful:
            self.client.publish(protocol.dev_topic(self.serial, "status"), protocol.encode_status("offline"),
                                qos=1, retain=True).wait_for_publish(2)
        self.client.disconnect()
        self.client.loop_stop()
        if self.player:
            self.player.stop()


def _local_ip() -> str | None:
    try:
        return socket.gethostbyname(socket.gethostname())
    except OSError:
        return None


def _mem_free_kb() -> int | None:
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemAvailable:"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="CommuniTV box agent")
    p.add_argument("--serial", default=os.environ.get("CTV_SERIAL"), required=not os.environ.get("CTV_SERIAL"))
    p.add_argument("--secret", default=os.environ.get("CTV_SECRET"), required=not os.environ.get("CTV_SECRET"))
    p.add_argument("--mqtt", default=os.environ.get("COMMUNITV_MQTT_URL", "mqtt://127.0.0.1:1883"))
    p.add_argument("--model", default="CTV-S905")
    p.add_argument("--fw", default="2.3.1")
    p.add_argument("--state-dir", default=os.environ.get("CTV_STATE_DIR"))
    p.add_argument("--video", action="store_true", help="real video/audio output (default: dummy outputs)")
    p.add_argument("--no-player", action="store_true", help="run without libVLC")
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    player = None if a.no_player else Player(dummy=not a.video)
    agent = Agent(a.serial, a.secret, a.mqtt, a.model, a.fw, player=player,
                  state_dir=Path(a.state_dir) if a.state_dir else None).start()
    import signal
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    done.wait()
    agent.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
