"""Box accounts in Mosquitto's dynamic-security plugin, over ``$CONTROL/dynamic-security/v1``."""
from __future__ import annotations

import json
import logging
import threading
import uuid

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from portal_server.core.mqtt import parse_url
from portal_server.core.protocol import TERMINAL_ROLE, box_role_acls, box_role_name

log = logging.getLogger(__name__)
CONTROL = "$CONTROL/dynamic-security/v1"


def box_commands(serial: str, secret: str) -> list[dict]:
    """The dynsec commands that create a box's role and account (errors for existing ones are fine)."""
    return [
        {"command": "createRole", "rolename": box_role_name(serial), "acls": box_role_acls(serial)},
        {"command": "createClient", "username": serial, "clientid": serial, "password": secret,
         "roles": [{"rolename": TERMINAL_ROLE}, {"rolename": box_role_name(serial)}]},
        # An existing account gets the secret again (re-import after a factory reset).
        {"command": "setClientPassword", "username": serial, "password": secret},
    ]


def run_commands(server_url: str, commands: list[dict], batch: int = 300, timeout: float = 30.0) -> list[dict]:
    """Send dynsec ``commands`` in batches, waiting for each batch's response."""
    args = parse_url(server_url)
    responses: list[dict] = []
    got = threading.Event()
    connected = threading.Event()

    def on_connect(c, _u, _f, reason, _p):
        if not reason.is_failure:
            c.subscribe(CONTROL + "/response", qos=1)

    def on_subscribe(*_a):
        connected.set()

    def on_message(_c, _u, msg):
        try:
            responses.extend(json.loads(msg.payload).get("responses", []))
        finally:
            got.set()

    c = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"ctv-dynsec-{uuid.uuid4().hex[:8]}")
    c.username_pw_set(args["username"], args["password"])
    c.on_connect, c.on_subscribe, c.on_message = on_connect, on_subscribe, on_message
    c.connect(args["host"], args["port"], 30)
    c.loop_start()
    try:
        if not connected.wait(timeout):
            raise ConnectionError("cannot reach the broker's dynamic-security control topic")
        for i in range(0, len(commands), batch):
            got.clear()
            c.publish(CONTROL, json.dumps({"commands": commands[i:i + batch]}), qos=1).wait_for_publish(timeout)
            if not got.wait(timeout):
                raise TimeoutError("no answer from the dynamic-security plugin")
    finally:
        c.loop_stop()
        c.disconnect()
    return responses


def register_boxes(server_url: str, boxes: list[tuple[str, str]]) -> int:
    """Create (or refresh) broker accounts for (serial, secret) pairs; returns how many."""
    cmds: list[dict] = []
    for serial, secret in boxes:
        cmds.extend(box_commands(serial, secret))
    if cmds:
        run_commands(server_url, cmds)
    return len(boxes)


def existing_accounts(server_url: str) -> set[str]:
    """Usernames the broker already knows."""
    res = run_commands(server_url, [{"command": "listClients", "verbose": False, "count": -1}])
    for r in res:
        if r.get("command") == "listClients":
            return set(r.get("data", {}).get("clients", []))
    return set()
