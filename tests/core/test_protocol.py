"""core.protocol: the box protocol of INTERFACES §5 as data — topics, named fixture payloads that
round-trip through the pure encoders/decoders, ProtocolError naming what is wrong, broker ACLs."""
from __future__ import annotations

import json

import pytest

from portal_server.core import protocol as p

SERIAL = "CTV-HH-000001"
VILLAGE = "990101001001"

# Named fixture payloads: what travels on the wire, byte for byte as a box or the server sends it.
HELLO = b'{"model":"HX-3798","fw":"2.3.1","mac":"00:11:22:33:44:55","ip":"10.0.0.9","ts":1764547200}'
HEARTBEAT = (b'{"uptime_s":3600,"fw":"2.3.1","cpu":7.5,"mem_free_kb":40000,"playing":null,"page":"home",'
             b'"ts":1764547200}')
STATUS_ONLINE = b'{"state":"online","ts":1764547200}'
ACK_ALERT = b'{"kind":"alert","id":"42","ok":true,"ts":1764547200}'
CONFIG_PAIRED = (b'{"state":"paired","region_codes":["990101000000","990101001000","990101001001"],'
                 b'"heartbeat_s":60,"timezone":"Asia/Shanghai","portal_url":"http://portal/tv/","ts":1764547200}')
CONFIG_UNPAIRED = (b'{"state":"unpaired","region_codes":[],"heartbeat_s":60,"timezone":"Asia/Shanghai",'
                   b'"pairing_code":"482913","ts":1764547200}')
CMD_REBOOT = b'{"id":"c-1","type":"reboot","args":{},"expires":1764550800,"ts":1764547200}'
NOTICE_CONTENT = b'{"type":"content","id":7,"title":"\xe5\x81\x9c\xe6\xb0\xb4\xe9\x80\x9a\xe7\x9f\xa5","url":"/tv/item/7","ts":1764547200}'
ALERT_FULLSCREEN = (b'{"id":42,"severity":"Severe","urgency":"Immediate","headline":"\xe5\xa4\xa7\xe9\xa3\x8e",'
                    b'"description":null,"instruction":null,"expires":1764550800,"display":"fullscreen",'
                    b'"cap_url":"http://portal/api/v1/alerts/42.cap","ts":1764547200}')


def test_topics():
    assert p.dev_topic(SERIAL, "hb") == "ctv/v1/dev/CTV-HH-000001/hb"
    assert p.dev_all("hb") == "ctv/v1/dev/+/hb"
    assert p.region_alert_topic(VILLAGE) == "ctv/v1/region/990101001001/alert"
    assert p.region_notice_topic(VILLAGE) == "ctv/v1/region/990101001001/notice"
    assert p.parse_dev_topic("ctv/v1/dev/CTV-HH-000001/ack") == (SERIAL, "ack")
    assert p.parse_region_topic(p.region_alert_topic(VILLAGE)) == (VILLAGE, "alert")
    for bad in ("ctv/v1/dev/CTV-HH-000001/evil", "ctv/v2/dev/x/hb", "ctv/v1/dev/../hb"):
        with pytest.raises(p.ProtocolError):
            p.parse_dev_topic(bad)
    with pytest.raises(p.ProtocolError):
        p.parse_region_topic("ctv/v1/dev/x/hb")


def test_box_messages_decode():
    assert p.decode_hello(HELLO)["fw"] == "2.3.1"
    assert p.decode_hb(HEARTBEAT)["page"] == "home"
    assert p.decode_status(STATUS_ONLINE) == {"state": "online", "ts": 1764547200}
    assert p.decode_ack(ACK_ALERT) == {"kind": "alert", "id": "42", "ok": True, "detail": None, "ts": 1764547200}


def test_server_messages_round_trip():
    assert p.decode_config(CONFIG_PAIRED)["portal_url"] == "http://portal/tv/"
    assert p.decode_config(CONFIG_UNPAIRED)["pairing_code"] == "482913"
    cfg = json.loads(CONFIG_PAIRED)
    again = p.encode_config(paired=True, region_codes=cfg["region_codes"], heartbeat_s=60, timezone="Asia/Shanghai",
                            portal_url="http://portal/tv/")
    assert {k: v for k, v in json.loads(again).items() if k != "ts"} == {k: v for k, v in cfg.items() if k != "ts"}
    cmd = p.decode_cmd(CMD_REBOOT)
    assert json.loads(p.encode_cmd(id=cmd["id"], type="reboot", args={}, expires=cmd["expires"]))["type"] == "reboot"
    notice = json.loads(NOTICE_CONTENT)
    assert p.notice_payload("content", 7, "停水通知", "/tv/item/7", ts=1764547200) == notice
    assert p.decode_notice(NOTICE_CONTENT)["url"] == "/tv/item/7"
    alert = json.loads(ALERT_FULLSCREEN)
    built = p.alert_payload(id=42, severity="Severe", urgency="Immediate", headline="大风", description=None,
                            instruction=None, expires=1764550800, display="fullscreen",
                            cap_url="http://portal/api/v1/alerts/42.cap", ts=1764547200)
    assert built == alert and p.decode_alert(ALERT_FULLSCREEN) == alert
    assert p.decode_alert(p.CLEAR) is None
    assert "audio_url" in p.alert_payload(**{**alert, "audio_url": "/media/a.m4a"})


@pytest.mark.parametrize("payload,message", [
    (b"not json", "not UTF-8 JSON"),
    (b"[1]", "JSON object"),
    (b'{"kind":"cmd","ok":true}', "missing field: id"),
    (b'{"kind":"oops","id":"1","ok":true}', "kind must be cmd or alert"),
    (b"{" + b" " * (p.MAX_PAYLOAD + 1) + b"}", "too large"),
])
def test_bad_acks_name_what_is_wrong(payload, message):
    with pytest.raises(p.ProtocolError, match=message):
        p.decode_ack(payload)


def test_bad_server_payloads_are_refused():
    with pytest.raises(p.ProtocolError, match="notice type"):
        p.notice_payload("spam", 1, "x", "/tv/")
    with pytest.raises(p.ProtocolError, match="display"):
        p.decode_alert(b'{"id":1,"display":"popup"}')
    with pytest.raises(p.ProtocolError, match="portal_url"):
        p.decode_config(b'{"state":"paired","heartbeat_s":60}')


def test_acl_roles():
    own = {(a["acltype"], a["topic"]) for a in p.box_role_acls(SERIAL) if a["allow"]}
    assert own == {(k, "ctv/v1/dev/CTV-HH-000001/#") for k in
                   ("publishClientSend", "subscribePattern", "publishClientReceive")}
    denied = {(a["acltype"], a["topic"]) for a in p.box_role_acls(SERIAL) if not a["allow"]}
    assert denied == {("publishClientSend", "ctv/v1/dev/CTV-HH-000001/config"),
                      ("publishClientSend", "ctv/v1/dev/CTV-HH-000001/cmd")}
    assert p.box_role_name(SERIAL) == "box-CTV-HH-000001"
    term = {(a["acltype"], a["topic"]) for a in p.terminal_role_acls()}
    assert ("subscribePattern", "ctv/v1/region/#") in term
    assert not any(a["acltype"] == "publishClientSend" for a in p.terminal_role_acls())  # boxes never publish to regions
    assert ("publishClientSend", "ctv/#") in {(a["acltype"], a["topic"]) for a in p.server_role_acls()}
