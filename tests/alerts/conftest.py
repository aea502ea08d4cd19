"""Fixtures of the alert tests: boxes with their demo credentials, outside subscribers, clean topics."""
from __future__ import annotations

import csv
import json
import subprocess

import pytest
from sqlalchemy import select

from device_fleet.broker import register_boxes
from portal_server.core import mqtt
from portal_server.core.db import session
from tests.conftest import session_ending_client

V001, V002, TOWN01, CITY = "990101001001", "990101001002", "990101001000", "990100000000"
REGION_CODES = None


@pytest.fixture(autouse=True)
def _alerts_env(request):
    """No speech synthesis unless a test asks for it (espeak-ng takes a second per alert); afterwards
    every retained alert of the test is cleared: the broker is shared by the tests of this worker."""
    app = request.getfixturevalue("any_db_app" if "any_db_app" in request.fixturenames else "app")
    app.config["ALERTS_SPEECH"] = False
    yield
    from portal_server.alerts.models import AlertRegion
    session.remove()
    codes = set(session.scalars(select(AlertRegion.code)))
    session.remove()
    for code in codes | {V001, V002, TOWN01, CITY}:
        mqtt.publish(f"ctv/v1/region/{code}/alert", b"", retain=True)


@pytest.fixture
def client(app):
    """The test client, ending the test thread's transaction after every request (SQLite BEGIN
    IMMEDIATE would otherwise block the ingest thread and subprocesses until the test ends)."""
    return session_ending_client(app)


@pytest.fixture
def demo_box(app):
    """credentials of a demo box from demo-terminals.csv, registered in the broker:
    ``demo_box("CTV-HH-000001")`` → (serial, secret, region_code)."""
    path = app.config["SETTINGS"].data_dir / "demo-terminals.csv"
    with open(path, newline="") as fh:
        rows = {r["serial"]: r for r in csv.DictReader(fh)}

    def get(serial: str):
        row = rows[serial]
        register_boxes(app.config["SETTINGS"].mqtt_server_url, [(serial, row["secret"])])
        return serial, row["secret"], row["region_code"]
    return get


@pytest.fixture
def port(mosquitto_server):
    return str(mosquitto_server["port"])


def sub(port, serial, secret, topic, count=1, wait=5, client_id=None):
    """mosquitto_sub as the box (its own credentials): waits for ``count`` messages."""
    return subprocess.run(["mosquitto_sub", "-p", port, "-u", serial, "-P", secret, "-i", client_id or serial,
                           "-t", topic, "-C", str(count), "-W", str(wait), "-V", "mqttv5", "-F", FMT],
                          capture_output=True, text=True, timeout=wait + 5)


def sub_bg(port, serial, secret, topic, count=1, wait=8):
    """A mosquitto_sub already connected (background); ``.communicate()`` for its output."""
    return subprocess.Popen(["mosquitto_sub", "-p", port, "-u", serial, "-P", secret, "-i", serial,
                             "-t", topic, "-C", str(count), "-W", str(wait), "-V", "mqttv5", "-F", FMT],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


FMT = "%p|%r|%E"


def messages(text: str) -> list[tuple[dict | None, bool, int | None]]:
    """(payload or None for an empty one, retained flag, MQTT 5 message expiry) per line of ``sub`` output."""
    out = []
    for line in text.splitlines():
        p, retained, expiry = line.rsplit("|", 2)
        out.append((json.loads(p) if p.strip() else None, retained == "1", int(expiry) if expiry.strip() else None))
    return out


def send(client, auth, user="v001-reviewer", **kw):
    """POST /api/v1/alerts with sensible values (override with kw)."""
    body = {"regions": [V001], "category": "Met", "event": "山洪灾害预警", "severity": "Moderate",
            "urgency": "Expected", "certainty": "Likely", "headline": "山洪预警：请向高处转移",
            "description": "上游强降雨", "instruction": "请立即转移到村委会避险点"}
    body.update(kw)
    body = {k: v for k, v in body.items() if v is not None}
    return client.post("/api/v1/alerts", json=body, headers=auth.headers(user))
