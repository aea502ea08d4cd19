"""Fleet fixtures: the ingest service in a background thread against the test app, outside boxes."""
import json
import subprocess

import pytest

from device_fleet.broker import register_boxes
from device_fleet.ingest import Ingest
from portal_server.demo import terminal_secret
from tests.conftest import session_ending_client


@pytest.fixture
def ingest(app):
    """`communitv ingest` running in this process (threads) against the test app."""
    ing = Ingest(app, flush_interval=0.2, watch_interval=0.3, alarm_interval=0.3).start()
    assert ing.ready.wait(10), "ingest did not subscribe"
    yield ing
    ing.stop()


@pytest.fixture
def port(mosquitto_server):
    return str(mosquitto_server["port"])


def boxes(app, *serials):
    """Register demo boxes in the broker (as the demo sync does) → {serial: secret}."""
    register_boxes(app.config["SETTINGS"].mqtt_server_url, [(s, terminal_secret(s)) for s in serials])
    return {s: terminal_secret(s) for s in serials}


def pub(port, serial, secret, kind, payload, **kw):
    """mosquitto_pub as the box."""
    return subprocess.run(["mosquitto_pub", "-p", port, "-u", serial, "-P", secret, "-i", serial,
                           "-t", f"ctv/v1/dev/{serial}/{kind}", "-q", "1", "-m", payload],
                          capture_output=True, text=True, timeout=10, **kw)


def read_config(port, serial, secret, wait=5):
    """The retained config the box would get (mosquitto_sub as the box)."""
    r = subprocess.run(["mosquitto_sub", "-p", port, "-u", serial, "-P", secret, "-i", serial,
                        "-t", f"ctv/v1/dev/{serial}/config", "-C", "1", "-W", str(wait)],
                       capture_output=True, text=True, timeout=wait + 5)
    return json.loads(r.stdout) if r.stdout.strip() else None


def sub_one(port, serial, secret, topic, wait=5):
    return subprocess.run(["mosquitto_sub", "-p", port, "-u", serial, "-P", secret, "-i", serial + "-s",
                           "-t", topic, "-C", "1", "-W", str(wait)], capture_output=True, text=True,
                          timeout=wait + 5)


@pytest.fixture
def client(app):
    """The test client, ending the test thread's database transaction after every request (the
    ingest thread writes a box's ack meanwhile)."""
    return session_ending_client(app)
