"""Box accounts in Mosquitto's dynamic-security plugin, over ``$CONTROL/dynamic-security/v1``."""
from __future__ import annotations

import json
import logging
import threading
import uuid

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from portal_server.core.mqtt import parse_url
from portal_server.core.protocol import (TERMINAL_ROLE, acl_changes, box_role_acls, box_role_name, role_acls,
                                         role_change_lines)

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


def list_roles(server_url: str, page: int = 500) -> list[dict]:
    """Every role the broker holds, with its ACLs (``listRoles`` verbose, a page at a time)."""
    roles: list[dict] = []
    while True:
        res = run_commands(server_url, [{"command": "listRoles", "verbose": True, "count": page,
                                         "offset": len(roles)}])
        data = next((r.get("data", {}) for r in res if r.get("command") == "listRoles"), {})
        got = data.get("roles", [])
        roles.extend(got)
        total = data.get("totalCount")
        if len(got) < page or (total is not None and len(roles) >= total):
            return roles


def role_sync_commands(roles: list[dict]) -> tuple[list[dict], dict[str, tuple[list[dict], list[dict]]]]:
    """The dynsec commands that bring ``roles`` (as listed) to the current ACLs, and the changes by
    role. Roles this project does not own are left alone."""
    cmds: list[dict] = []
    changed = {}
    for role in roles:
        name = role["rolename"]
        want = role_acls(name)
        if want is None:
            continue
        remove, add = acl_changes(role.get("acls", []), want)
        if not (remove or add):
            continue
        changed[name] = (remove, add)
        cmds += [{"command": "removeRoleACL", "rolename": name, "acltype": a["acltype"], "topic": a["topic"]}
                 for a in remove]
        cmds += [{"command": "addRoleACL", "rolename": name, **a} for a in add]
    return cmds, changed


def sync_roles(server_url: str) -> dict[str, tuple[list[dict], list[dict]]]:
    """Bring the roles an older version created on a running broker to the current ACLs (issue 22
    denied a box publishing its own config/cmd topics; a role created before keeps the old set until
    changed). Idempotent: a second run finds nothing to do. Logs and returns {role: (removed, added)}.

    The plugin rewrites its file after every command, so a large upgrade is best done by
    ``stack.write_mosquitto`` before the broker starts (make run, ``deploy run``); this catches a
    broker that kept running through the upgrade."""
    cmds, changed = role_sync_commands(list_roles(server_url))
    if cmds:
        failed = [r for r in run_commands(server_url, cmds, batch=100) if r.get("error")]
        if failed:
            log.error("broker role sync: %d command(s) failed, first: %s", len(failed), failed[0])
    for line in role_change_lines(changed, "running broker"):
        log.warning("%s", line)
    return changed
