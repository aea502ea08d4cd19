"""The box protocol of INTERFACES §5 as data: topics, pure encode/decode, the broker's ACL roles,
ProtocolError (DESIGN §3.4 "Protocols as data").

Every ``ctv/v1/...`` topic and every payload a box receives is built here and nowhere else;
nothing here touches the network or the database, so the server features, the ingest, the agent,
the simulator, the process supervisor (broker ACLs) and the tests share one definition.
"""
from __future__ import annotations

import json
import re
import time

PREFIX = "ctv/v1"
MAX_PAYLOAD = 16 * 1024
SERIAL_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$")

DEV_KINDS = ("status", "hello", "config", "hb", "cmd", "ack")
#: What the server publishes on a region topic (a box subscribes to its city, town and village).
REGION_KINDS = ("alert", "notice")
#: Every region topic (the terminal role may read them all).
REGION_ALL = f"{PREFIX}/region/#"
#: Every topic of the protocol (the server role).
ALL = "ctv/#"
#: Notice types (INTERFACES §5): a published item, a live meeting, an open poll.
NOTICE_TYPES = ("content", "meeting_live", "poll", "case")


class ProtocolError(ValueError):
    """A payload or topic that does not follow the protocol; the message says what is wrong."""


def dev_topic(serial: str, kind: str) -> str:
    return f"{PREFIX}/dev/{serial}/{kind}"


def region_topic(code: str, kind: str) -> str:
    return f"{PREFIX}/region/{code}/{kind}"


def probe_topic(token: str) -> str:
    """A server-only topic a server process publishes a marker to itself on (core.mqtt.retained)."""
    return f"{PREFIX}/server/probe/{token}"


def region_alert_topic(code: str) -> str:
    """The retained alert topic of a region."""
    return region_topic(code, "alert")


def region_notice_topic(code: str) -> str:
    """The notice topic of a region (new content, a live meeting, an open poll)."""
    return region_topic(code, "notice")


def dev_all(kind: str) -> str:
    """The subscription to ``kind`` from every box (``ctv/v1/dev/+/<kind>``)."""
    return dev_topic("+", kind)


def parse_region_topic(topic: str) -> tuple[str, str]:
    """ctv/v1/region/<code>/<kind> → (code, kind)."""
    parts = topic.split("/")
    if len(parts) != 5 or f"{parts[0]}/{parts[1]}" != PREFIX or parts[2] != "region" or not parts[3]:
        raise ProtocolError(f"not a region topic: {topic}")
    return parts[3], parts[4]


def parse_dev_topic(topic: str) -> tuple[str, str]:
    """ctv/v1/dev/<serial>/<kind> → (serial, kind)."""
    parts = topic.split("/")
    if len(parts) != 5 or parts[0] != "ctv" or parts[1] != "v1" or parts[2] != "dev":
        raise ProtocolError(f"not a device topic: {topic}")
    serial, kind = parts[3], parts[4]
    if not SERIAL_RE.match(serial) or kind not in DEV_KINDS:
        raise ProtocolError(f"bad device topic: {topic}")
    return serial, kind


def _load(payload: bytes) -> dict:
    if len(payload) > MAX_PAYLOAD:
        raise ProtocolError(f"payload too large ({len(payload)} bytes > {MAX_PAYLOAD})")
    try:
        data = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ProtocolError(f"payload is not UTF-8 JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ProtocolError("payload must be a JSON object")
    return data


def _num(data: dict, key: str, required: bool = False):
    v = data.get(key)
    if v is None:
        if required:
            raise ProtocolError(f"missing field: {key}")
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ProtocolError(f"field {key} must be a number")
    return v


def decode_hello(payload: bytes) -> dict:
    d = _load(payload)
    for k in ("model", "fw"):
        if k in d and not isinstance(d[k], str):
            raise ProtocolError(f"field {k} must be a string")
    _num(d, "ts")
    return {k: d.get(k) for k in ("model", "fw", "mac", "ip", "ts")}


def decode_hb(payload: bytes) -> dict:
    d = _load(payload)
    for k in ("uptime_s", "cpu", "mem_free_kb", "ts"):
        _num(d, k)
    if "fw" in d and d["fw"] is not None and not isinstance(d["fw"], str):
        raise ProtocolError("field fw must be a string")
    return {k: d.get(k) for k in ("uptime_s", "fw", "cpu", "mem_free_kb", "playing", "page", "ts")}


def decode_status(payload: bytes) -> dict:
    d = _load(payload)
    if d.get("state") not in ("online", "offline"):
        raise ProtocolError("field state must be online or offline")
    return {"state": d["state"], "ts": _num(d, "ts")}


def decode_ack(payload: bytes) -> dict:
    d = _load(payload)
    if d.get("kind") not in ("cmd", "alert"):
        raise ProtocolError("field kind must be cmd or alert")
    if d.get("id") in (None, ""):
        raise ProtocolError("missing field: id")
    if not isinstance(d.get("ok"), bool):
        raise ProtocolError("field ok must be true or false")
    return {"kind": d["kind"], "id": str(d["id"]), "ok": d["ok"], "detail": d.get("detail"),
            "ts": _num(d, "ts")}


def notice_payload(type: str, id: int, title: str, url: str, ts: int | None = None, **extra) -> dict:
    """A region ``notice`` (INTERFACES §5): {"type","id","title","url","ts"}; ``url`` is a TV path;
    ``extra`` fields (e.g. a case's ``household_id``, so other boxes of the village ignore it)."""
    if type not in NOTICE_TYPES:
        raise ProtocolError(f"notice type must be one of {', '.join(NOTICE_TYPES)}")
    return {"type": type, "id": id, "title": title, "url": url, "ts": int(time.time()) if ts is None else ts,
            **extra}


def decode_notice(payload: bytes) -> dict:
    d = _load(payload)
    if d.get("type") not in NOTICE_TYPES:
        raise ProtocolError(f"field type must be one of {', '.join(NOTICE_TYPES)}")
    if d.get("id") in (None, ""):
        raise ProtocolError("missing field: id")
    if not isinstance(d.get("url"), str):
        raise ProtocolError("field url must be a string")
    return d


def alert_payload(*, id: int, severity: str, urgency: str, headline: str, description: str | None,
                  instruction: str | None, expires: int, display: str, cap_url: str,
                  audio_url: str | None = None, ts: int | None = None) -> dict:
    """The retained region ``alert`` (INTERFACES §5); ``audio_url`` once the speech is ready."""
    if display not in ("fullscreen", "banner"):
        raise ProtocolError("display must be fullscreen or banner")
    out = {"id": id, "severity": severity, "urgency": urgency, "headline": headline,
           "description": description, "instruction": instruction, "expires": int(expires),
           "display": display, "cap_url": cap_url, "ts": int(time.time()) if ts is None else ts}
    if audio_url:
        out["audio_url"] = audio_url
    return out


#: An empty retained payload clears a region's alert.
CLEAR = b""


def encode(data: dict) -> bytes:
    out = dict(data)
    out.setdefault("ts", int(time.time()))
    return json.dumps(out, ensure_ascii=False, separators=(",", ":")).encode()


def encode_config(*, paired: bool, region_codes: list[str], heartbeat_s: int, timezone: str,
                  portal_url: str | None = None, pairing_code: str | None = None) -> bytes:
    """The retained config a box follows (INTERFACES §5)."""
    data: dict = {"state": "paired" if paired else "unpaired", "region_codes": region_codes,
                  "heartbeat_s": heartbeat_s, "timezone": timezone}
    if paired:
        data["portal_url"] = portal_url
    else:
        data["pairing_code"] = pairing_code
    return encode(data)


def encode_cmd(*, id: str, type: str, args: dict, expires: int) -> bytes:
    """A command to a box (INTERFACES §5)."""
    return encode({"id": id, "type": type, "args": args, "expires": expires})


def decode_cmd(payload: bytes) -> dict:
    d = _load(payload)
    if not isinstance(d.get("id"), str) or not d["id"]:
        raise ProtocolError("missing field: id")
    if d.get("type") not in ("reboot", "reload", "tune", "message", "upgrade"):
        raise ProtocolError("field type must be reboot, reload, tune, message or upgrade")
    if not isinstance(d.get("args", {}), dict):
        raise ProtocolError("field args must be an object")
    return {"id": d["id"], "type": d["type"], "args": d.get("args") or {}, "expires": _num(d, "expires"),
            "ts": _num(d, "ts")}


def decode_config(payload: bytes) -> dict:
    d = _load(payload)
    if d.get("state") not in ("paired", "unpaired"):
        raise ProtocolError("field state must be paired or unpaired")
    if not isinstance(d.get("region_codes", []), list):
        raise ProtocolError("field region_codes must be a list")
    hb = _num(d, "heartbeat_s", required=True)
    if hb <= 0:
        raise ProtocolError("field heartbeat_s must be positive")
    if d["state"] == "paired" and not isinstance(d.get("portal_url"), str):
        raise ProtocolError("a paired config needs portal_url")
    if d["state"] == "unpaired" and not isinstance(d.get("pairing_code"), str):
        raise ProtocolError("an unpaired config needs pairing_code")
    return d


def decode_alert(payload: bytes) -> dict | None:
    """A region alert; an empty (retained-clearing) payload → None."""
    if not payload:
        return None
    d = _load(payload)
    if d.get("id") in (None, ""):
        raise ProtocolError("missing field: id")
    if d.get("display", "fullscreen") not in ("fullscreen", "banner"):
        raise ProtocolError("field display must be fullscreen or banner")
    return d


def encode_status(state: str) -> bytes:
    if state not in ("online", "offline"):
        raise ProtocolError("state must be online or offline")
    return encode({"state": state})


def encode_hello(*, model: str, fw: str, mac: str | None = None, ip: str | None = None) -> bytes:
    return encode({"model": model, "fw": fw, "mac": mac, "ip": ip})


def encode_hb(*, uptime_s: int, fw: str, cpu: float | None = None, mem_free_kb: int | None = None,
              playing: str | None = None, page: str | None = None) -> bytes:
    return encode({"uptime_s": uptime_s, "fw": fw, "cpu": cpu, "mem_free_kb": mem_free_kb,
                   "playing": playing, "page": page})


def encode_ack(*, kind: str, id: str, ok: bool, detail: str | None = None) -> bytes:
    if kind not in ("cmd", "alert"):
        raise ProtocolError("kind must be cmd or alert")
    data = {"kind": kind, "id": id, "ok": bool(ok)}
    if detail is not None:
        data["detail"] = detail
    return encode(data)


# Broker ACLs (Mosquitto dynamic security) -----------------------------------------------------

#: The role every box holds (read every region topic) and the server's role.
TERMINAL_ROLE = "terminal"
SERVER_ROLE = "server"
DYNSEC_CONTROL = "$CONTROL/dynamic-security/#"


def acl(kind: str, topic: str, allow: bool = True, priority: int = 0) -> dict:
    """One dynamic-security ACL entry."""
    return {"acltype": kind, "topic": topic, "allow": allow, "priority": priority}


def box_role_name(serial: str) -> str:
    """The role naming one box's own topics."""
    return f"box-{serial}"


def box_role_acls(serial: str) -> list[dict]:
    """A box's own topics. Mosquitto 2.0.11's dynamic security does not substitute %c/%u in
    ACL topics (tested), so every box gets its own role naming its serial."""
    own = dev_topic(serial, "#")
    # What the server sends the box (its retained config, its commands) the box may only read: the
    # ingest trusts the retained config it sees on the broker, so a box must not write its own.
    server_only = [acl("publishClientSend", dev_topic(serial, kind), allow=False, priority=1)
                   for kind in ("config", "cmd")]
    return [*server_only, acl("publishClientSend", own), acl("subscribePattern", own),
            acl("publishClientReceive", own)]


def terminal_role_acls() -> list[dict]:
    """Shared by every box: region topics (alerts, notices) are readable by all boxes."""
    return [acl("subscribePattern", REGION_ALL), acl("publishClientReceive", REGION_ALL),
            acl("unsubscribePattern", "#")]


def server_role_acls() -> list[dict]:
    """The server: every protocol topic, shared subscriptions, $SYS and dynamic-security control."""
    return [acl("publishClientSend", DYNSEC_CONTROL), acl("publishClientReceive", DYNSEC_CONTROL),
            acl("subscribePattern", DYNSEC_CONTROL),
            acl("publishClientSend", ALL), acl("publishClientReceive", ALL),
            acl("subscribePattern", ALL), acl("subscribePattern", "$share/#"),
            acl("publishClientReceive", "$SYS/#"), acl("subscribePattern", "$SYS/#"),
            acl("unsubscribePattern", "#")]


def role_acls(rolename: str) -> list[dict] | None:
    """The current ACLs of a role this project creates (server, terminal, ``box-<serial>``); None
    for a role it does not own (an operator's own roles are left alone)."""
    if rolename == SERVER_ROLE:
        return server_role_acls()
    if rolename == TERMINAL_ROLE:
        return terminal_role_acls()
    if rolename.startswith(box_role_name("")) and len(rolename) > len(box_role_name("")):
        return box_role_acls(rolename[len(box_role_name("")):])
    return None


def _acl_key(a: dict) -> tuple[str, str]:
    return str(a.get("acltype", "")).lower(), str(a.get("topic", ""))


def acl_changes(have: list[dict], want: list[dict]) -> tuple[list[dict], list[dict]]:
    """(to remove, to add) that turn a role's ACLs ``have`` into ``want``. Dynamic security keys an
    ACL by (type, topic): one whose allow/priority changed is removed and added again."""
    wanted = {_acl_key(a): a for a in want}
    present = {_acl_key(a): a for a in have}
    remove = [a for k, a in present.items()
              if k not in wanted or (bool(a.get("allow")), int(a.get("priority", 0)))
              != (bool(wanted[k]["allow"]), int(wanted[k]["priority"]))]
    gone = {_acl_key(a) for a in remove}
    add = [a for k, a in wanted.items() if k not in present or k in gone]
    return remove, add


def describe_acl(a: dict) -> str:
    """One ACL for the log: ``publishClientSend deny ctv/v1/dev/X/config``."""
    return f"{a.get('acltype')} {'allow' if a.get('allow') else 'deny'} {a.get('topic')}"


def role_change_lines(changed: dict[str, tuple[list[dict], list[dict]]], where: str, shown: int = 20) -> list[str]:
    """Log lines for {rolename: (removed, added)}: one per role (the first ``shown``), then a count."""
    lines = [f"broker role {name} brought to the current ACLs ({where}): removed [{'; '.join(map(describe_acl, rm))}]"
             f" added [{'; '.join(map(describe_acl, add))}]" for name, (rm, add) in list(changed.items())[:shown]]
    if changed:
        lines.append(f"broker roles: {len(changed)} role(s) brought to the current ACLs ({where})")
    return lines
