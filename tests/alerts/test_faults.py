"""Fault injection with the real services (issue 20): this test's own redis-server (with a password)
and Mosquitto (dynamic security, every box with its own credentials), stopped and restarted while
alerts are sent and shown, without touching the services the other tests of this worker share.

The production path runs as it does on a server: the app hands delivery to its outbox (not
``jobs_inline``), a real ``communitv worker`` process runs the queued retries and the periodic
sweep, the ingest takes the boxes' MQTT acks, and twenty simulated boxes (paho, like the agent:
subscribed to their city, town and village topics, acking each new alert once) show what a resident
would see. Half of them ack over MQTT like the agent, half by POST like the TV portal's OK button.
"""
from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import threading
import time
import uuid

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from sqlalchemy import func, select

from portal_server import stack
from portal_server.core import jobs, mqtt as core_mqtt, protocol
from portal_server.core.db import session
from tests.conftest import make_test_app, session_ending_client, terminal_token, wait_port

from .conftest import CITY, TOWN01

VILLAGES = [f"990101001{n:03d}" for n in range(1, 5)]        # 东河村 … : 4 households + the hall each
HEADLINE = "山洪预警：请向高处转移（故障演练）"


class Service:
    """One real server process we may stop (SIGKILL: a crash, nothing saved) and start again on the
    same port with the same configuration and data directory."""

    def __init__(self, argv: list[str], port: int, log_path):
        self.argv, self.port, self.log_path, self.proc = argv, port, log_path, None

    def start(self) -> None:
        self.proc = subprocess.Popen(self.argv, stdout=subprocess.DEVNULL, stderr=open(self.log_path, "a"))
        wait_port(self.port, proc=self.proc)

    def crash(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        deadline = time.monotonic() + 5
        while stack.port_in_use(self.port) and time.monotonic() < deadline:
            time.sleep(0.05)

    def save(self) -> None:
        """Mosquitto writes its persistence file on SIGUSR1 (as its autosave every minute would)."""
        db = self.log_path.parent / "mosquitto" / "mosquitto" / "mosquitto.db"
        before = db.stat().st_mtime_ns if db.exists() else 0
        self.proc.send_signal(signal.SIGUSR1)
        assert wait_until(lambda: db.exists() and db.stat().st_mtime_ns != before, 5), "no autosave"

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


class Box:
    """A simulated set-top box: its own MQTT account, a persistent session like the agent's,
    subscribed to the region topics of its config, showing and acking each new alert once."""

    def __init__(self, serial: str, secret: str, region_codes: list[str], port: int, ack_by: str, acker):
        self.serial, self.secret, self.port, self.ack_by, self.acker = serial, secret, port, ack_by, acker
        self.village = region_codes[-1]
        self.topics = [protocol.region_topic(c, "#") for c in region_codes]
        self.shown: dict[str, int] = {}        # region topic → alert id on screen
        self.acked: set[int] = set()
        self.lock = threading.Lock()
        c = paho.Client(CallbackAPIVersion.VERSION2, client_id=serial, protocol=paho.MQTTv5)
        c.username_pw_set(serial, secret)
        c.reconnect_delay_set(1, 2)
        c.on_connect, c.on_message = self._on_connect, self._on_message
        self.client, self.connected = c, threading.Event()
        c.on_disconnect = lambda *a: self.connected.clear()

    def power_on(self) -> "Box":
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 3600
        self.client.connect_async("127.0.0.1", self.port, keepalive=30, clean_start=False, properties=props)
        self.client.loop_start()
        return self

    def power_off(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def _on_connect(self, c, _u, _f, reason, _p):
        if not reason.is_failure:
            c.subscribe([(t, 1) for t in self.topics])
            self.connected.set()

    def _on_message(self, c, _u, msg):
        if not msg.topic.endswith("/alert"):
            return
        alert = protocol.decode_alert(msg.payload)
        with self.lock:
            if alert is None:
                self.shown.pop(msg.topic, None)
                return
            self.shown[msg.topic] = alert["id"]
            first = alert["id"] not in self.acked
            self.acked.add(alert["id"])
        if first:
            if self.ack_by == "mqtt":     # the agent
                c.publish(protocol.dev_topic(self.serial, "ack"),
                          protocol.encode_ack(kind="alert", id=str(alert["id"]), ok=True, detail="displayed"), qos=1)
            else:                         # the TV portal's OK (off the network thread, as a browser would)
                threading.Thread(target=self.acker, args=(self, alert["id"]), daemon=True).start()

    def showing(self) -> set[int]:
        with self.lock:
            return set(self.shown.values())


@pytest.fixture
def faults(tmp_path, test_settings_base, sqlite_template, request):
    """Own Redis (requirepass) and Mosquitto for this test, the app on them with the production
    outbox path, the ingest in this process and a real worker process. Yields a namespace."""
    from device_fleet.ingest import Ingest

    run = tmp_path / "services"
    rport, mport = stack.free_port(), stack.free_port()
    password = uuid.uuid4().hex
    rconf = stack.write_redis(run / "redis", rport, password)
    # Without its append-only file: the crash loses everything (the live set, the queue, what was
    # delivered), the worst case the sweep must repair.
    redis_svc = Service(["redis-server", str(rconf), "--save", "", "--appendonly", "no"], rport, run / "redis.log")
    with open(sqlite_template / "demo-terminals.csv", newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["region_code"] in VILLAGES]
    assert len(rows) == 20
    mconf = stack.write_mosquitto(run / "mosquitto", mport, test_settings_base.mqtt_server_password,
                                  clients=[(r["serial"], r["secret"]) for r in rows], overwrite_dynsec=True)
    mosq_svc = Service(["mosquitto", "-c", str(mconf)], mport, run / "mosquitto.log")
    redis_svc.start()
    mosq_svc.start()
    redis_url = f"redis://:{password}@127.0.0.1:{rport}"
    app = make_test_app(tmp_path, {"url": redis_url}, {"url": f"mqtt://127.0.0.1:{mport}"}, sqlite_template)
    settings = app.config["SETTINGS"]
    settings.jobs_inline = False          # the outbox as in production: at once, else queued with retries
    app.config["ALERTS_SPEECH"] = False
    worker = ingest = None
    boxes: list[Box] = []
    with app.app_context():
        try:
            env = dict(os.environ, COMMUNITV_DATA_DIR=str(settings.data_dir),
                       COMMUNITV_DATABASE_URL=settings.database_url, COMMUNITV_REDIS_URL=settings.redis_url,
                       COMMUNITV_MQTT_URL=settings.mqtt_url, COMMUNITV_SECRET_KEY=app.config["SECRET_KEY"],
                       COMMUNITV_PUBLIC_URL=settings.public_url, COMMUNITV_ALERTS_SPEECH="0")
            # The worker is started while Redis is away (a host booting before the db host): it waits.
            redis_svc.crash()
            worker = subprocess.Popen([sys.executable, "-m", "portal_server.cli", "worker"], env=env,
                                      stdout=open(run / "worker.log", "w"), stderr=subprocess.STDOUT)
            assert wait_until(lambda: "Redis not reachable" in (run / "worker.log").read_text(), 20), \
                (run / "worker.log").read_text()[-3000:]
            redis_svc.start()
            ingest = Ingest(app, flush_interval=0.2, watch_interval=0.3).start()
            assert ingest.ready.wait(10), "ingest did not subscribe"
            client = session_ending_client(app)
            tokens = {r["serial"]: terminal_token(r["serial"]) for r in rows}

            def post_ack(box: Box, alert_id: int) -> None:
                for _ in range(20):        # the portal page retries its OK until the server answers
                    r = client.post(f"/api/v1/alerts/{alert_id}/ack",
                                    headers={"X-Terminal-Token": tokens[box.serial]})
                    if r.status_code == 200:
                        return
                    time.sleep(0.5)

            for i, r in enumerate(rows):
                boxes.append(Box(r["serial"], r["secret"], [CITY, TOWN01, r["region_code"]], mport,
                                 "mqtt" if i % 2 else "http", post_ack))
            yield type("Faults", (), dict(app=app, client=client, redis=redis_svc, mosquitto=mosq_svc,
                                          boxes=boxes, worker=worker, run=run, ingest=ingest))
        finally:
            for b in boxes:
                b.power_off()
            if ingest is not None:
                ingest.stop()
            if worker is not None:
                worker.terminate()
                try:
                    worker.wait(10)
                except subprocess.TimeoutExpired:
                    worker.kill()
                    worker.wait(10)
                    raise AssertionError("the worker did not stop on SIGTERM") from None
            pub = core_mqtt._publishers.pop((os.getpid(), settings.mqtt_server_url), None)
            if pub is not None:
                pub.close()
            session.remove()
            from portal_server.core import db
            db.engine().dispose()
            mosq_svc.stop()
            redis_svc.stop()


def wait_until(fn, timeout: float, step: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = fn()
        if v:
            return v
        time.sleep(step)
    return fn()


def test_alerts_survive_a_redis_crash_and_a_broker_crash(faults):
    from portal_server.alerts.models import Alert

    f = faults
    client = f.client
    password = f.app.config["SETTINGS"].demo_password
    tok = client.post("/api/v1/auth/token", json={"username": "town01-reviewer", "password": password})
    staff = {"Authorization": f"Bearer {tok.get_json()['token']}"}
    noc_tok = client.post("/api/v1/auth/token", json={"username": "noc", "password": password})
    noc = {"Authorization": f"Bearer {noc_tok.get_json()['token']}"}
    early, late = f.boxes[:17], f.boxes[17:]      # three boxes are switched on only at the end
    from rq import Worker
    assert wait_until(lambda: Worker.all(connection=jobs.queue().connection), 20), "the worker did not start"
    for b in early:
        b.power_on()
    assert wait_until(lambda: all(b.connected.is_set() for b in early), 10)
    time.sleep(0.5)                            # subscribed
    f.mosquitto.save()                         # the broker's periodic autosave (sessions, subscriptions)
    body = {"regions": VILLAGES[:3], "category": "Met", "event": "山洪灾害预警", "severity": "Moderate",
            "urgency": "Expected", "certainty": "Likely", "headline": HEADLINE,
            "instruction": "请立即转移到村委会避险点", "idempotency_key": "drill-1"}

    # (a) Redis crashes; the alert is sent anyway and the answer is honest.
    f.redis.crash()
    t0 = time.monotonic()
    r1 = client.post("/api/v1/alerts", json=body, headers=staff)
    assert r1.status_code == 201, r1.get_data(as_text=True)
    a1 = r1.get_json()
    assert a1["status"] == "active"
    print("POST with Redis down took", round(time.monotonic() - t0, 2), "s")
    r2 = client.post("/api/v1/alerts", json=body, headers=staff)     # the sender's retry
    assert r2.status_code == 200 and r2.get_json()["id"] == a1["id"]
    assert session.scalar(select(func.count()).select_from(Alert).where(Alert.headline == HEADLINE)) == 1
    session.remove()
    # Mosquitto is up: the boxes of the three villages show it at once and ack while Redis is away.
    a1_boxes = [b for b in early if b.village in VILLAGES[:3]]
    assert wait_until(lambda: all(a1["id"] in b.showing() for b in a1_boxes), 5)
    time.sleep(1.0)                        # the acks arrive (MQTT through the ingest, POST from the portal)
    f.redis.start()                        # back, empty: no live set, no queue, nothing delivered
    from portal_server.alerts import operations as ops
    from portal_server.core import redis as core_redis
    # The sweep refills the live set (and Redis records the regions as delivered).
    assert wait_until(lambda: core_redis.client().sismember(ops.LIVE_KEY, str(a1["id"])), 15), \
        "no sweep after Redis came back:\n" + (f.run / "worker.log").read_text()[-4000:]

    # (b) The broker crashes during the live alert (its retained message was never saved) …
    f.mosquitto.crash()
    # … and a second alert goes to the fourth village while it is away.
    body2 = dict(body, regions=[VILLAGES[3]], headline="停水通知（故障演练）", severity="Minor",
                 idempotency_key="drill-2")
    t0 = time.monotonic()
    r3 = client.post("/api/v1/alerts", json=body2, headers=staff)
    print("POST with the broker down took", round(time.monotonic() - t0, 2), "s")
    assert r3.status_code == 201, r3.get_data(as_text=True)
    a2 = r3.get_json()
    # The delivery failed at once and went to the queue with retries; the worker's first try fails too.
    time.sleep(4)
    f.mosquitto.start()

    # (c) Both back: every box shows its alert (the late ones too) and every ack counts.
    for b in late:
        b.power_on()
    want = {b.serial: a1["id"] if b.village in VILLAGES[:3] else a2["id"] for b in f.boxes}

    def figures():
        d1 = client.get(f"/api/v1/alerts/{a1['id']}", headers=noc).get_json()
        d2 = client.get(f"/api/v1/alerts/{a2['id']}", headers=noc).get_json()
        return d1, d2

    ok = wait_until(lambda: all(want[b.serial] in b.showing() for b in f.boxes)
                    and (lambda d: d[0]["acked"] == 15 and d[1]["acked"] == 5)(figures()), 35, step=0.5)
    d1, d2 = figures()
    missing = [b.serial for b in f.boxes if want[b.serial] not in b.showing()]
    assert ok, (f"not shown on {missing}; alert 1 acked {d1['acked']}/15 unacked {d1['unacked']}; "
                f"alert 2 acked {d2['acked']}/5 unacked {d2['unacked']}\n" + (f.run / "worker.log").read_text()[-3000:])
    assert d1["unacked"] == [] and d2["unacked"] == []
    # The second alert's delivery job was retried by the worker (RQ Retry: its scheduler re-queues
    # it) until Mosquitto confirmed.
    from rq.job import Job
    from rq.registry import FinishedJobRegistry
    q = jobs.queue("high")

    def delivered_by_retry():
        return [j for j in Job.fetch_many(FinishedJobRegistry(queue=q).get_job_ids(), connection=q.connection)
                if j is not None and j.args[:2] == ("portal_server.alerts.tasks:deliver", [VILLAGES[3]])]
    # The sweep may have been quicker; the retry still comes (RQ restarts a scheduler that lost Redis
    # at its next maintenance, jobs.MAINTENANCE_S).
    done = wait_until(delivered_by_retry, jobs.MAINTENANCE_S + 15, step=0.5)
    from rq.registry import FailedJobRegistry, ScheduledJobRegistry, StartedJobRegistry
    state = {r.__name__: r(queue=q).get_job_ids() for r in (ScheduledJobRegistry, StartedJobRegistry, FailedJobRegistry)}
    assert done and done[0].retries_left < len(ops.DELIVERY_RETRY), \
        f"the delivery job was not retried: {state} {q.job_ids}\n" + (f.run / "worker.log").read_text()[-5000:]
    assert f.worker.poll() is None, "the worker died:\n" + (f.run / "worker.log").read_text()[-3000:]

    # A wrong alert is cancelled while Redis is away again: 200, and its boxes clear it at once.
    f.redis.crash()
    r = client.post(f"/api/v1/alerts/{a2['id']}/cancel", json={"reason": "演练结束"}, headers=staff)
    assert r.status_code == 200 and r.get_json()["status"] == "cancelled", r.get_data(as_text=True)
    a2_boxes = [b for b in f.boxes if b.village == VILLAGES[3]]
    assert wait_until(lambda: not any(b.showing() for b in a2_boxes), 5)
    assert all(a1["id"] in b.showing() for b in f.boxes if b.village in VILLAGES[:3])
