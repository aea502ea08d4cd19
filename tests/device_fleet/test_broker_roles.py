"""Upgrading an installation whose broker roles were created by an older version: issue 22 denied a
box publishing its own config/cmd topics, but a role created before kept the old ACLs. The ingest's
start (and the broker's config writer, before it starts) bring every role to the current set."""
import json
import logging
import subprocess

from device_fleet import broker
from portal_server import stack
from portal_server.core import protocol
from portal_server.core.mqtt import parse_url
from portal_server.demo import terminal_secret

from .conftest import read_config

BOX = "CTV-OLD-000001"
#: The box role as versions before issue 22 created it: its own topics, nothing denied.
OLD_ACLS = [protocol.acl("publishClientSend", protocol.dev_topic(BOX, "#")),
            protocol.acl("subscribePattern", protocol.dev_topic(BOX, "#")),
            protocol.acl("publishClientReceive", protocol.dev_topic(BOX, "#"))]


def _publish(port, user, password, client_id, payload):
    return subprocess.run(["mosquitto_pub", "-p", port, "-u", user, "-P", password, "-i", client_id, "-q", "1",
                           "-r", "-t", protocol.dev_topic(BOX, "config"), "-m", payload],
                          capture_output=True, text=True, timeout=10, check=False)


def test_an_old_box_role_is_brought_to_the_current_acls(app, port, caplog):
    url = app.config["SETTINGS"].mqtt_server_url
    server = parse_url(url)
    secret = terminal_secret(BOX)
    # The box's account as an older version left it.
    broker.run_commands(url, [
        {"command": "deleteClient", "username": BOX}, {"command": "deleteRole", "rolename": protocol.box_role_name(BOX)},
        {"command": "createRole", "rolename": protocol.box_role_name(BOX), "acls": OLD_ACLS},
        {"command": "createClient", "username": BOX, "clientid": BOX, "password": secret,
         "roles": [{"rolename": protocol.TERMINAL_ROLE}, {"rolename": protocol.box_role_name(BOX)}]}])
    genuine = json.dumps({"state": "paired", "portal_url": "http://portal/tv/?token=ok", "heartbeat_s": 60})
    forged = json.dumps({"state": "paired", "portal_url": "http://evil.example/", "heartbeat_s": 60})
    try:
        # Before the sync the box can overwrite the config the ingest trusts.
        _publish(port, BOX, secret, BOX, forged)
        assert "evil" in read_config(port, BOX, secret)["portal_url"]

        with caplog.at_level(logging.WARNING, logger="device_fleet.broker"):
            changed = broker.sync_roles(url)
        assert list(changed) == [protocol.box_role_name(BOX)]
        removed, added = changed[protocol.box_role_name(BOX)]
        assert removed == [] and {a["topic"] for a in added} == {protocol.dev_topic(BOX, "config"),
                                                                 protocol.dev_topic(BOX, "cmd")}
        assert f"broker role box-{BOX} brought to the current ACLs" in caplog.text
        assert "publishClientSend deny ctv/v1/dev/CTV-OLD-000001/config" in caplog.text

        # After it the server's config stays, whatever the box sends.
        _publish(port, server["username"], server["password"], "ctv-test-server", genuine)
        _publish(port, BOX, secret, BOX, forged)
        assert read_config(port, BOX, secret)["portal_url"] == "http://portal/tv/?token=ok"
        role = next(r for r in broker.list_roles(url) if r["rolename"] == protocol.box_role_name(BOX))
        assert protocol.acl_changes(role["acls"], protocol.box_role_acls(BOX)) == ([], [])

        # A second start changes nothing.
        assert broker.sync_roles(url) == {}
    finally:
        _publish(port, server["username"], server["password"], "ctv-test-server", "")
        broker.run_commands(url, [{"command": "deleteClient", "username": BOX},
                                  {"command": "deleteRole", "rolename": protocol.box_role_name(BOX)}])


def test_a_changed_acl_is_replaced_and_foreign_roles_are_left_alone():
    have = [*OLD_ACLS, protocol.acl("publishClientSend", protocol.dev_topic(BOX, "config"), allow=True, priority=1),
            protocol.acl("subscribePattern", "obsolete/#")]
    cmds, changed = broker.role_sync_commands([
        {"rolename": protocol.box_role_name(BOX), "acls": have},
        {"rolename": "operator-own", "acls": [protocol.acl("subscribePattern", "x/#")]}])
    assert list(changed) == [protocol.box_role_name(BOX)]
    kinds = [(c["command"], c["topic"]) for c in cmds]
    # The allowed config publish goes and comes back denied; the obsolete topic goes.
    assert ("removeRoleACL", protocol.dev_topic(BOX, "config")) in kinds
    assert ("removeRoleACL", "obsolete/#") in kinds
    assert kinds.index(("removeRoleACL", protocol.dev_topic(BOX, "config"))) < \
        kinds.index(("addRoleACL", protocol.dev_topic(BOX, "config")))
    assert next(c for c in cmds if c["command"] == "addRoleACL" and c["topic"].endswith("/config"))["allow"] is False


def test_the_broker_file_of_an_older_version_is_upgraded_before_the_broker_starts(tmp_path, caplog):
    """make run and the production broker host write mosquitto's files before starting it."""
    old = stack.dynsec_document("pw", [(BOX, "secret")])
    for r in old["roles"]:
        if r["rolename"] == protocol.box_role_name(BOX):
            r["acls"] = OLD_ACLS
    (tmp_path / "dynamic-security.json").write_text(json.dumps(old))
    with caplog.at_level(logging.WARNING, logger="portal_server.stack"):
        stack.write_mosquitto(tmp_path, 1883, "pw", [(BOX, "secret")])
    doc = json.loads((tmp_path / "dynamic-security.json").read_text())
    role = next(r for r in doc["roles"] if r["rolename"] == protocol.box_role_name(BOX))
    assert role["acls"] == protocol.box_role_acls(BOX)
    assert "1 role(s) brought to the current ACLs" in caplog.text
    caplog.clear()
    stack.write_mosquitto(tmp_path, 1883, "pw", [(BOX, "secret")])
    assert json.loads((tmp_path / "dynamic-security.json").read_text()) == doc
    assert "brought to the current ACLs" not in caplog.text
