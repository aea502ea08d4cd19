"""The web workers publish the outbox's MQTT messages over their own broker connection
(core.outbox.DIRECT_MQTT, set by gunicorn's post_fork) instead of queueing a job for each: a
box's application no longer waits for a Redis round trip, and the worker no longer forks a work
horse per notice. What this must never lose: a message the broker does not acknowledge within
ACK_WAIT_S, or one committed while the connection is down, goes to the queued job (with its
retries) as before. Real Mosquitto throughout: a second broker is frozen (SIGSTOP) to stop
acknowledging, the way a hung broker does."""
from __future__ import annotations

import signal
import subprocess
import time

import pytest

from portal_server import stack
from portal_server.core import jobs, outbox, protocol
from portal_server.core import mqtt as core_mqtt
from portal_server.core.config import MQTT_SERVER_USER
from portal_server.core.db import session
from tests.conftest import _stop, wait_port

from .test_outbox import V001, _listen


def _queued_deliveries() -> list:
    return [j for j in jobs.queue("high").jobs if j.args and j.args[0] == "portal_server.core.outbox:deliver"]


@pytest.fixture
def direct(app, monkeypatch):
    """The app as a web worker runs it: jobs queued (not inline), MQTT published directly."""
    monkeypatch.setattr(app.config["SETTINGS"], "jobs_inline", False)
    monkeypatch.setattr(outbox, "DIRECT_MQTT", True)
    jobs.queue("high").empty()
    return app


def _notice(title: str) -> None:
    outbox.mqtt(protocol.region_notice_topic(V001), protocol.notice_payload("content", 1, title, "/tv/"), qos=1)


def test_a_connected_worker_publishes_itself_and_queues_nothing(direct):
    assert core_mqtt.publisher().wait_connected(10)
    listener = _listen(direct, protocol.region_notice_topic(V001), wait=5)
    _notice("直接发布")
    session.commit()
    out, _ = listener.communicate(timeout=10)
    assert protocol.decode_notice(out.strip().encode())["title"] == "直接发布"
    assert _queued_deliveries() == []


def _forget(url: str) -> None:
    """Close this test's own publisher (it would keep reconnecting for the rest of the run)."""
    import os
    pub = core_mqtt._publishers.pop((os.getpid(), url), None)
    if pub is not None:
        pub.close()


def test_without_a_broker_connection_the_message_is_queued_at_once(direct):
    url = direct.extensions["ctv_mqtt_server_url"] = f"mqtt://{MQTT_SERVER_USER}:x@127.0.0.1:{stack.free_port()}"
    try:   # nobody listens there
        _notice("排队发送")
        session.commit()
        queued = _queued_deliveries()
        assert len(queued) == 1 and queued[0].args[1] == protocol.region_notice_topic(V001)
        assert queued[0].retries_left == 3   # the job's retries (1, 5, 30 s) take it from here
    finally:
        _forget(url)


def test_a_message_the_broker_does_not_acknowledge_goes_to_the_queue(direct, tmp_path, monkeypatch):
    port = stack.free_port()
    conf = stack.write_mosquitto(tmp_path / "mq", port, direct.config["SETTINGS"].mqtt_server_password,
                                 overwrite_dynsec=True)
    broker = subprocess.Popen(["mosquitto", "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"mqtt://{MQTT_SERVER_USER}:{direct.config['SETTINGS'].mqtt_server_password}@127.0.0.1:{port}"
    try:
        wait_port(port, proc=broker)
        direct.extensions["ctv_mqtt_server_url"] = url
        assert core_mqtt.publisher(url).wait_connected(10)
        monkeypatch.setattr(outbox, "ACK_WAIT_S", 1.0)
        broker.send_signal(signal.SIGSTOP)   # hung: the publish goes out, no PUBACK comes back
        _notice("未确认")
        session.commit()
        assert _queued_deliveries() == []    # sent, waiting for the acknowledgement
        deadline = time.monotonic() + 10
        while not _queued_deliveries() and time.monotonic() < deadline:
            time.sleep(0.2)
        queued = _queued_deliveries()
        assert len(queued) == 1 and queued[0].args[2]["title"] == "未确认"
    finally:
        broker.send_signal(signal.SIGCONT)
        _stop(broker)
        _forget(url)
