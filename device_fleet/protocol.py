"""The box protocol of INTERFACES §5 as data: topics, pure encode/decode, ProtocolError.

Nothing here touches the network or the database, so the ingest, the agent, the simulator and the
tests share one definition.
"""
from __future__ import annotations

import json
import re
import time

PREFIX = "ctv/v1"
MAX_PAYLOAD = 16 * 1024
SERIAL_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$")

DEV_KINDS = ("status", "hello", "config", "hb", "cmd", "ack")


class ProtocolError(ValueError):
    """A payload or topic that does not follow the protocol; the message says what is wrong."""


def dev_topic(serial: str, kind: str) -> str:
    return f"{PREFIX}/dev/{serial}/{kind}"


def region_topic(code: str, kind: str) -> str:
    return f"{PREFIX}/region/{code}/{kind}"


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
