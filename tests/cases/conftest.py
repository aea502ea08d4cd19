"""Fixtures of the case tests: a client that ends the test thread's transaction after every request,
a box's broker credentials, and an outside MQTT subscriber (mosquitto_sub as the box)."""
from __future__ import annotations

import csv
import json
import subprocess

import pytest

from device_fleet.broker import register_boxes
from tests.conftest import session_ending_client

V001, V002, TOWN01 = "990101001001", "990101001002", "990101001000"
LOW_INCOME = "11360100MB0003-001"      # 最低生活保障申请: subsidy, village-level intake, TV
ID_CARD = "11360100MB0006-001"         # 居民身份证换领: only at the police station (department)


@pytest.fixture
def client(app):
    return session_ending_client(app)


@pytest.fixture
def demo_box(app):
    """``demo_box("CTV-HH-000001")`` → (serial, secret), registered in the broker."""
    with open(app.config["SETTINGS"].data_dir / "demo-terminals.csv", newline="") as fh:
        rows = {r["serial"]: r for r in csv.DictReader(fh)}

    def get(serial: str):
        register_boxes(app.config["SETTINGS"].mqtt_server_url, [(serial, rows[serial]["secret"])])
        return serial, rows[serial]["secret"]
    return get


def listen(mosquitto_server, serial, secret, topic, count, wait=20):
    """mosquitto_sub as the box in the background; ``read(proc)`` gives the JSON payloads."""
    return subprocess.Popen(["mosquitto_sub", "-p", str(mosquitto_server["port"]), "-u", serial, "-P", secret,
                             "-i", serial, "-t", topic, "-C", str(count), "-W", str(wait), "-F", "%p"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def read(proc, timeout=30) -> list[dict]:
    out, _ = proc.communicate(timeout=timeout)
    return [json.loads(line) for line in out.splitlines() if line.strip()]
