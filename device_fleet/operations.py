"""Every write of the fleet: inventory import, broker accounts, pairing, commands, firmware, rollouts, alarms.

Shape of each write: validate → change → flush → signal → audit. Writes that are followed by an
MQTT publish commit first (a box may answer within milliseconds, and the ingest — another
process — must then find the row).
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import math
import random
import re
import secrets
import time
import uuid
from dataclasses import dataclass

from flask import current_app
from sqlalchemy import func, select

from portal_server.core import audit, imports, outbox, protocol, scope, signals
from portal_server.core.api import ApiError
from portal_server.core.db import session, utcnow
from portal_server.core.households import Household
from portal_server.core.regions import region_by_code
from portal_server.core.terminals import (Terminal, check_secret, factory_secret, hash_secret, portal_url,
                                          revoke_token_marks)

from . import broker, presence, queries
from .models import (COMMAND_TYPES, Alarm, Command, CommandBatch, Firmware, Rollout, RolloutTarget)

log = logging.getLogger(__name__)


class FleetError(ValueError):
    """A refused fleet operation; ``field`` names the offending input."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


def _settings():
    return current_app.config["SETTINGS"]


# Broker accounts -------------------------------------------------------------------------------

def register_in_broker(boxes: list[tuple[str, str]]) -> int:
    """Create (or refresh) the broker accounts of (serial, secret) pairs, batched."""
    return broker.register_boxes(_settings().mqtt_server_url, boxes)


def sync_broker_clients(app) -> int:
    """Register every demo terminal whose broker account is missing (idempotent, batched).

    The demo seed runs before the broker starts in ``make run``; demo secrets are derivable from
    the secret key, imported boxes were registered at import time (their secrets are not kept).
    """
    url = app.config["SETTINGS"].mqtt_server_url
    have = broker.existing_accounts(url)
    with app.app_context():
        boxes = []
        for term in session.scalars(select(Terminal).order_by(Terminal.id)):
            if term.serial in have:
                continue
            secret = factory_secret(term.serial)
            if check_secret(term, secret):
                boxes.append((term.serial, secret))
        session.remove()  # never hold the database while waiting on the broker
    return broker.register_boxes(url, boxes)


def sync_broker_roles(app) -> dict:
    """Bring the broker's roles (server, terminal, every box's) to the current ACLs, idempotently:
    run at ingest start, so an installation upgraded with its broker running gets them too."""
    return broker.sync_roles(app.config["SETTINGS"].mqtt_server_url)


# Inventory import ------------------------------------------------------------------------------

MAC_RE = re.compile(r"^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}$")
CSV_COLUMNS = ("serial", "mac", "model", "secret")


@dataclass
class ImportResult:
    created: int
    updated: int


class ImportRowError(FleetError):
    """A bad CSV row; ``line`` is its 1-based line number in the file."""

    def __init__(self, line: int, message: str):
        super().__init__(f"第 {line} 行: {message}", field="file")
        self.line = line


#: Header texts of the inventory table (the factory's English ones, or Chinese).
INVENTORY_HEADERS = {"serial": "serial", "序列号": "serial", "mac": "mac", "MAC地址": "mac", "model": "model",
                     "型号": "model", "secret": "secret", "出厂密钥": "secret"}


def parse_inventory_csv(data: str | bytes) -> list[tuple[int, dict]]:
    """Validate the whole file first: (line number, row) pairs, or ImportRowError on the first bad row.

    Read by the shared import helper (core.imports): CSV in UTF-8 or GBK, or an .xlsx workbook."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    try:
        table = imports.read_table(raw, "inventory", INVENTORY_HEADERS, CSV_COLUMNS)
    except imports.ImportFileError as exc:
        raise ImportRowError(1, f"{exc.message} (需要 serial,mac,model,secret)") from None
    rows, seen = [], {}
    for item in table:
        line, row = item.number, item.values
        if item.problem:
            raise ImportRowError(line, item.problem)
        serial = (row.get("serial") or "").strip()
        mac = (row.get("mac") or "").strip()
        model = (row.get("model") or "").strip()
        secret = (row.get("secret") or "").strip()
        if not protocol.SERIAL_RE.match(serial):
            raise ImportRowError(line, f"序列号无效: {serial!r}")
        if serial in seen:
            raise ImportRowError(line, f"序列号 {serial} 与第 {seen[serial]} 行重复")
        if mac and not MAC_RE.match(mac):
            raise ImportRowError(line, f"MAC 地址无效: {mac!r}")
        if not model or len(model) > 32:
            raise ImportRowError(line, "型号不能为空且不超过 32 个字符")
        if len(secret) < 16 or len(secret) > 128 or not secret.isprintable() or " " in secret:
            raise ImportRowError(line, "出厂密钥须为 16–128 个可打印字符")
        seen[serial] = line
        rows.append((line, {"serial": serial, "mac": mac or None, "model": model, "secret": secret}))
    if not rows:
        raise ImportRowError(1, "文件中没有终端")
    return rows


def import_terminals(text: str | bytes, progress=None, actor: str | None = None) -> ImportResult:
    """Import an inventory CSV (serial,mac,model,secret): all rows or none.

    New boxes enter the inventory unbound; known serials get the new secret (factory reset).
    Each box is registered in the broker before the database commits; secrets are stored hashed only.
    """
    rows = parse_inventory_csv(text)
    existing = {t.serial: t for t in session.scalars(
        select(Terminal).where(Terminal.serial.in_([r["serial"] for _, r in rows])))}
    created = updated = 0
    try:
        for _line, r in rows:
            t = existing.get(r["serial"])
            if t is None:
                t = Terminal(serial=r["serial"], kind="household", mac=r["mac"], model=r["model"],
                             secret_hash=hash_secret(r["secret"], r["serial"]))
                session.add(t)
                created += 1
            else:
                t.mac, t.model = r["mac"] or t.mac, r["model"]
                t.secret_hash = hash_secret(r["secret"], r["serial"])
                updated += 1
            if progress:
                progress(1)
        session.flush()
        audit.record("terminals.import", "terminal", "*", actor=actor, created=created, updated=updated,
                     serials=[r["serial"] for _, r in rows][:50])
        register_in_broker([(r["serial"], r["secret"]) for _, r in rows])
        session.flush()  # the caller commits (the broker accounts exist before the rows do)
    except Exception:
        session.rollback()
        raise
    return ImportResult(created, updated)


# Config and pairing ----------------------------------------------------------------------------

def config_payload(term: Terminal) -> bytes:
    """The retained config of INTERFACES §5 for this terminal."""
    s = _settings()
    if term.paired:
        return protocol.encode_config(paired=True, region_codes=term.region_codes(), heartbeat_s=s.heartbeat_s,
                                      timezone=s.timezone, portal_url=portal_url(term))
    return protocol.encode_config(paired=False, region_codes=[], heartbeat_s=s.heartbeat_s,
                                  timezone=s.timezone, pairing_code=term.pairing_code)


def ensure_pairing_code(term: Terminal) -> None:
    """Give an unbound terminal a 6-digit pairing code (the caller commits before publishing the config)."""
    if term.paired or term.pairing_code:
        return
    while True:
        code = "".join(secrets.choice("23456789") for _ in range(6))
        if session.scalar(select(Terminal.id).where(Terminal.pairing_code == code)) is None:
            break
    term.pairing_code = code
    session.flush()


def terminal_by_pairing_code(code: str) -> Terminal | None:
    code = (code or "").strip()
    if not code:
        return None
    return session.scalar(select(Terminal).where(Terminal.pairing_code == code))


def bind_terminal(term: Terminal, user, household_id: int | None = None, region_code: str | None = None) -> Terminal:
    """Bind a box to a household (or an institutional terminal to a region); after the caller's commit
    the outbox publishes the paired config (the ingest re-publishes it on the box's next hello)."""
    if (household_id is None) == (region_code is None):
        raise FleetError("give household_id or region_code (one of them)", field="household_id")
    if household_id is not None:
        hh = session.get(Household, household_id)
        if hh is None:
            raise FleetError(f"household {household_id} does not exist", field="household_id")
        region = hh.region
        if not scope.covers(user, region):
            raise FleetError(scope.OutOfScope(region, "住户").message, field="household_id")
        term.household, term.kind = hh, "household"
    else:
        region = region_by_code(region_code)
        if region is None:
            raise FleetError(f"region {region_code} does not exist", field="region_code")
        if not scope.covers(user, region):
            raise FleetError(scope.OutOfScope(region).message, field="region_code")
        term.household = None
        term.kind = {"city": "department", "town": "town", "village": "village"}[region.level]
    old = term.region.code if term.region else None
    term.region, term.region_path = region, region.path
    term.pairing_code = None
    term.bound_at = utcnow()
    term.token_version = (term.token_version or 1) + (1 if old else 0)
    session.flush()
    signals.terminal_bound.send(term.serial, region_code=region.code)
    audit.record("terminal.bind", "terminal", term.serial, region_code=region.code, actor=user.username,
                 household_id=term.household_id, previous_region=old)
    outbox.mqtt(protocol.dev_topic(term.serial, "config"), config_payload(term), qos=1, retain=True)
    return term


def rotate_portal_token(term: Terminal, user, reason: str = "") -> Terminal:
    """Give a paired box a new portal URL: its token version moves on, so every URL and token issued
    before (a leaked link, a box sold on) is revoked at nginx at once and by the app on the next
    request; the new URL goes out in the box's retained config after the commit."""
    if not term.paired:
        raise FleetError("本机尚未绑定，没有门户地址可更换", field="serial")
    old = term.token_version or 1
    term.token_version = old + 1
    session.flush()
    revoke_token_marks(term.serial)
    audit.record("terminal.rotate_token", "terminal", term.serial, region_code=term.region.code,
                 actor=user.username, previous_version=old, version=term.token_version, reason=reason[:200])
    outbox.mqtt(protocol.dev_topic(term.serial, "config"), config_payload(term), qos=1, retain=True)
    return term


def unbind_terminal(term: Terminal, user, reason: str = "") -> Terminal:
    """Release a box from its household or region: it goes back to the pairing screen with a new
    pairing code, and its token version moves on so that every portal URL and token issued to it
    stops working (nginx after the commit, the app at once). The next family in the house pairs it
    again. Caller commits; the retained unpaired config goes out after the commit."""
    if not term.paired:
        raise FleetError("本机尚未绑定，无需解除绑定", field="serial")
    old_code = term.region.code if term.region else None
    old_household = term.household_id
    term.household, term.region, term.region_path = None, None, None
    term.kind, term.bound_at = "household", None
    term.token_version = (term.token_version or 1) + 1
    session.flush()
    ensure_pairing_code(term)
    audit.record("terminal.unbind", "terminal", term.serial, region_code=old_code, actor=user.username,
                 household_id=old_household, version=term.token_version, reason=reason[:200])
    outbox.call("portal_server.core.terminals:revoke_token_marks", term.serial)
    outbox.mqtt(protocol.dev_topic(term.serial, "config"), config_payload(term), qos=1, retain=True)
    return term


# Commands --------------------------------------------------------------------------------------

def validate_command(type_: str, args: dict | None) -> dict:
    """Check a command's type and args; returns the args to send."""
    if type_ not in COMMAND_TYPES:
        raise FleetError(f"type must be one of {', '.join(COMMAND_TYPES)}", field="type")
    args = dict(args or {})
    if type_ == "tune":
        url = args.get("url")
        if not isinstance(url, str) or not re.match(r"^(https?|rtmp|udp|rtp)://", url):
            raise FleetError("tune needs args.url (http(s)/rtmp/udp/rtp URL of the stream)", field="args.url")
    elif type_ == "message":
        text = args.get("text")
        if not isinstance(text, str) or not text.strip() or len(text) > 500:
            raise FleetError("message needs args.text (1–500 characters)", field="args.text")
        args.setdefault("duration_s", 30)
    elif type_ == "upgrade":
        fw = session.scalar(select(Firmware).where(Firmware.version == str(args.get("version", ""))))
        if fw is None:
            raise FleetError("upgrade needs args.version of an uploaded firmware", field="args.version")
        args = firmware_args(fw)
    return args


def firmware_url(fw: Firmware) -> str:
    return _settings().public_url.rstrip("/") + "/noc/firmware/" + fw.filename


def firmware_args(fw: Firmware) -> dict:
    return {"version": fw.version, "url": firmware_url(fw), "sha256": fw.sha256, "size": fw.size}


def send_commands(terms: list[Terminal], type_: str, args: dict | None, user, expires_s: int = 3600,
                  selector: dict | None = None, rollout_id: int | None = None, actor: str | None = None) -> list[Command]:
    """Send a command to each terminal (one row per box, its ack is the result); published after the
    caller's commit (at once, retried by the queue when the broker is away)."""
    args = validate_command(type_, args)
    if not 10 <= int(expires_s) <= 7 * 86400:
        raise FleetError("expires_s must be between 10 s and 7 days", field="expires_s")
    if not terms:
        raise FleetError("no terminal matches", field="selector")
    actor = actor or user.username
    expires = utcnow() + dt.timedelta(seconds=int(expires_s))
    batch = None
    if selector is not None:
        batch = CommandBatch(type=type_, args_json=json.dumps(args), selector_json=json.dumps(selector),
                             total=len(terms), created_by=actor, expires_at=expires)
        session.add(batch)
        session.flush()
    cmds = [Command(id=uuid.uuid4().hex[:16], batch_id=batch.id if batch else None, rollout_id=rollout_id,
                    terminal_id=t.id, serial=t.serial, type=type_, args_json=json.dumps(args),
                    created_by=actor, expires_at=expires) for t in terms]
    session.add_all(cmds)
    session.flush()
    if batch is not None:
        audit.record("command.bulk", "command_batch", batch.id, actor=actor, type=type_, args=args,
                     selector=selector, total=len(terms))
    elif rollout_id is None:
        audit.record("command.send", "command", cmds[0].id, region_code=terms[0].region.code if terms[0].region else None,
                     actor=actor, serial=terms[0].serial, type=type_, args=args)
    outbox.job("device_fleet.tasks:publish_commands", [c.id for c in cmds], queue="high", eager=True,
               retry=(1, 5, 30))
    return cmds


def command_ack(serial: str, cmd_id: str, ok: bool, detail: str | None) -> Command | None:
    """Record a box's ack of a command (called by the ingest); feeds its rollout."""
    cmd = session.get(Command, cmd_id)
    if cmd is None or cmd.serial != serial:
        return None
    if cmd.status not in ("sent", "expired"):
        return cmd
    cmd.status = "acked" if ok else "failed"
    cmd.detail = (str(detail)[:500] if detail is not None else None)
    cmd.acked_at = utcnow()
    if cmd.rollout_id:
        tgt = session.scalar(select(RolloutTarget).where(RolloutTarget.command_id == cmd.id))
        if tgt is not None and tgt.status == "sent":
            tgt.status = "succeeded" if ok else "failed"
    session.flush()
    if cmd.rollout_id:
        evaluate_rollout(session.get(Rollout, cmd.rollout_id))
    return cmd


def expire_commands() -> int:
    """Mark sent commands past their expiry as expired (and their rollout targets as failed)."""
    now = utcnow()
    rows = session.scalars(select(Command).where(Command.status == "sent", Command.expires_at < now)).all()
    rollouts = set()
    for c in rows:
        c.status, c.detail = "expired", "终端未在有效期内确认"
        if c.rollout_id:
            tgt = session.scalar(select(RolloutTarget).where(RolloutTarget.command_id == c.id))
            if tgt is not None and tgt.status == "sent":
                tgt.status = "failed"
                rollouts.add(c.rollout_id)
    session.flush()
    for rid in rollouts:
        evaluate_rollout(session.get(Rollout, rid))
    return len(rows)


# Firmware and rollouts -------------------------------------------------------------------------

VERSION_RE = re.compile(r"^[0-9A-Za-z][0-9A-Za-z._-]{0,31}$")


def upload_firmware(version: str, data: bytes, user, model: str | None = None, notes: str = "",
                    sha256: str | None = None) -> Firmware:
    """Store a firmware image under media/firmware and record its checksum."""
    if not VERSION_RE.match(version or ""):
        raise FleetError("版本号无效", field="version")
    if session.scalar(select(Firmware.id).where(Firmware.version == version)):
        raise FleetError(f"版本 {version} 已存在", field="version")
    if not data:
        raise FleetError("固件文件为空", field="file")
    digest = hashlib.sha256(data).hexdigest()
    if sha256 and sha256.lower() != digest:
        raise FleetError("sha256 与文件内容不符", field="sha256")
    d = _settings().media_dir / "firmware"
    d.mkdir(parents=True, exist_ok=True)
    filename = f"ctv-{version}-{digest[:8]}.bin"
    (d / filename).write_bytes(data)
    fw = Firmware(version=version, model=model or None, sha256=digest, size=len(data), filename=filename,
                  notes=notes, created_by=user.username)
    session.add(fw)
    session.flush()
    audit.record("firmware.upload", "firmware", fw.id, actor=user.username, version=version, sha256=digest)
    session.flush()
    return fw


def start_rollout(fw: Firmware, user, selector: dict | None = None, waves=(5, 15, 80, 100),
                  success_threshold: float = 0.9, error_threshold: float = 0.1,
                  previous_version: str | None = None) -> Rollout:
    """Start a rollout of ``fw`` to the selected terminals (those not already on it), wave 1 at once."""
    from . import queries
    waves = [int(w) for w in waves]
    if not waves or waves != sorted(waves) or waves[-1] != 100 or waves[0] <= 0:
        raise FleetError("waves must be increasing percentages ending at 100", field="waves")
    if not (0 < success_threshold <= 1 and 0 < error_threshold <= 1):
        raise FleetError("thresholds are shares between 0 and 1", field="success_threshold")
    selector = dict(selector or {})
    terms = [t for t in queries.select_terminals(user.scope, **selector)
             if t.firmware != fw.version and (fw.model is None or t.model == fw.model)]
    if not terms:
        raise FleetError("没有需要升级的终端", field="selector")
    if previous_version is None:
        counts: dict[str, int] = {}
        for t in terms:
            counts[t.firmware or ""] = counts.get(t.firmware or "", 0) + 1
        previous_version = max(counts, key=counts.get) or None
    ro = Rollout(firmware_id=fw.id, previous_version=previous_version, waves_json=json.dumps(waves),
                 success_threshold=success_threshold, error_threshold=error_threshold,
                 selector_json=json.dumps(selector), created_by=user.username)
    session.add(ro)
    session.flush()
    order = list(terms)
    random.Random(ro.id).shuffle(order)
    session.add_all([RolloutTarget(rollout_id=ro.id, terminal_id=t.id, serial=t.serial, position=i)
                     for i, t in enumerate(order)])
    session.flush()
    audit.record("rollout.start", "rollout", ro.id, actor=user.username, version=fw.version, waves=waves,
                 targets=len(order), selector=selector)
    session.flush()
    _send_wave(ro)
    return ro


def rollout_counts(ro: Rollout) -> dict[str, int]:
    rows = session.execute(select(RolloutTarget.status, func.count()).where(RolloutTarget.rollout_id == ro.id)
                           .group_by(RolloutTarget.status)).all()
    out = {"pending": 0, "sent": 0, "succeeded": 0, "failed": 0, "rolled_back": 0}
    out.update({s: n for s, n in rows})
    out["total"] = sum(n for _s, n in rows)
    return out


def _send_wave(ro: Rollout) -> int:
    """Send the upgrade to the pending targets inside the current wave's percentage."""
    total = session.scalar(select(func.count()).where(RolloutTarget.rollout_id == ro.id))
    upto = math.ceil(total * ro.waves[ro.wave] / 100)
    targets = session.scalars(select(RolloutTarget).where(RolloutTarget.rollout_id == ro.id,
                                                          RolloutTarget.status == "pending",
                                                          RolloutTarget.position < upto)).all()
    if not targets:
        return 0
    fw = session.get(Firmware, ro.firmware_id)
    terms = {t.id: t for t in session.scalars(select(Terminal).where(Terminal.id.in_([x.terminal_id for x in targets])))}
    cmds = send_commands([terms[x.terminal_id] for x in targets], "upgrade", {"version": fw.version}, None,
                         expires_s=6 * 3600, rollout_id=ro.id, actor=f"rollout:{ro.id}")
    by_serial = {c.serial: c.id for c in cmds}
    for x in targets:
        x.status, x.command_id = "sent", by_serial[x.serial]
    session.flush()
    return len(targets)


def evaluate_rollout(ro: Rollout | None) -> None:
    """Advance a running rollout when the wave succeeded enough; pause it when too many failed."""
    if ro is None or ro.status != "running":
        return
    c = rollout_counts(ro)
    sent = c["sent"] + c["succeeded"] + c["failed"]
    if sent == 0:
        return
    if c["failed"] and c["failed"] / sent >= ro.error_threshold:
        ro.status = "paused"
        ro.pause_reason = f"失败率 {c['failed'] / sent:.0%} 达到阈值 {ro.error_threshold:.0%}，已自动暂停"
        session.flush()
        audit.record("rollout.auto_pause", "rollout", ro.id, actor="system", failed=c["failed"], sent=sent)
        session.flush()
        return
    if c["succeeded"] / sent >= ro.success_threshold:
        if ro.wave + 1 < len(ro.waves):
            ro.wave += 1
            session.flush()
            audit.record("rollout.advance", "rollout", ro.id, actor="system", wave=ro.wave,
                         percent=ro.waves[ro.wave])
            session.flush()
            _send_wave(ro)
        elif c["pending"] == 0 and c["sent"] == 0:
            ro.status = "completed"
            session.flush()
            audit.record("rollout.complete", "rollout", ro.id, actor="system", succeeded=c["succeeded"])
            session.flush()


def require_rollout_scope(ro: Rollout, user) -> None:
    """403 unless ``rollout_in_scope``."""
    if not queries.rollout_in_scope(ro, user):
        raise ApiError(403, "forbidden", f"升级任务 #{ro.id} 包含{user.region.name}管辖范围以外的终端，不能操作")


def pause_rollout(ro: Rollout, user) -> None:
    require_rollout_scope(ro, user)
    if ro.status != "running":
        raise FleetError("只有进行中的升级可以暂停", field="status")
    ro.status, ro.pause_reason = "paused", f"{user.display_name} 手动暂停"
    session.flush()
    audit.record("rollout.pause", "rollout", ro.id, actor=user.username)
    session.flush()


def resume_rollout(ro: Rollout, user) -> None:
    require_rollout_scope(ro, user)
    if ro.status != "paused":
        raise FleetError("只有已暂停的升级可以继续", field="status")
    ro.status, ro.pause_reason = "running", None
    # Failures so far were looked at by the operator: they no longer count against the threshold.
    for t in session.scalars(select(RolloutTarget).where(RolloutTarget.rollout_id == ro.id,
                                                         RolloutTarget.status == "failed")):
        t.status = "pending"
    session.flush()
    audit.record("rollout.resume", "rollout", ro.id, actor=user.username)
    session.flush()
    _send_wave(ro)
    evaluate_rollout(ro)


def rollback_rollout(ro: Rollout, user) -> int:
    """Stop the rollout and send the previous firmware to every box that took the new one."""
    require_rollout_scope(ro, user)
    if ro.status == "rolled_back":
        raise FleetError("已经回滚", field="status")
    prev = session.scalar(select(Firmware).where(Firmware.version == (ro.previous_version or "")))
    done = session.scalars(select(RolloutTarget).where(RolloutTarget.rollout_id == ro.id,
                                                       RolloutTarget.status == "succeeded")).all()
    ro.status, ro.pause_reason = "rolled_back", f"{user.display_name} 回滚"
    for t in session.scalars(select(RolloutTarget).where(RolloutTarget.rollout_id == ro.id,
                                                         RolloutTarget.status.in_(("pending", "sent")))):
        t.status = "rolled_back"
    session.flush()
    audit.record("rollout.rollback", "rollout", ro.id, actor=user.username, to_version=ro.previous_version,
                 boxes=len(done))
    session.flush()
    if prev is None or not done:
        return 0
    terms = session.scalars(select(Terminal).where(Terminal.id.in_([t.terminal_id for t in done]))).all()
    send_commands(list(terms), "upgrade", {"version": prev.version}, user, expires_s=6 * 3600,
                  selector={"rollback_of": ro.id})
    for t in done:
        t.status = "rolled_back"
    session.flush()
    return len(done)


# Alarms ----------------------------------------------------------------------------------------

INSTITUTIONAL = ("department", "town", "village")
#: The alarms evaluate_alarms raises and clears from presence (others are raised by their owners).
PRESENCE_ALARMS = ("institutional_offline", "area_outage")


def raise_alarm(kind: str, subject: str, region_code: str, message: str) -> Alarm:
    """An alarm about ``subject`` (e.g. a channel) raised by its owner; the active one is kept
    (its message updated) when it is raised again. In the caller's transaction."""
    a = session.scalar(select(Alarm).where(Alarm.kind == kind, Alarm.subject == subject, Alarm.cleared_at.is_(None)))
    if a is not None:
        a.message = message
        return a
    region = region_by_code(region_code)
    a = Alarm(kind=kind, subject=subject, serial=None, region_code=region_code,
              region_path=region.path if region else None, message=message)
    session.add(a)
    session.flush()
    audit.record("alarm.raise", "alarm", a.id, region_code=region_code, actor="system", kind=kind, subject=subject)
    return a


def clear_alarm(kind: str, subject: str) -> int:
    """Clear the active alarm of ``kind`` about ``subject`` (its cause went away); returns how many."""
    n = 0
    for a in session.scalars(select(Alarm).where(Alarm.kind == kind, Alarm.subject == subject,
                                                Alarm.cleared_at.is_(None))).all():
        a.cleared_at = utcnow()
        session.flush()
        audit.record("alarm.clear", "alarm", a.id, region_code=a.region_code, actor="system", kind=kind,
                     subject=subject)
        n += 1
    return n


def _cfg(name: str, default: float) -> float:
    return float(current_app.config.get(name, default))


def evaluate_alarms(now: float | None = None) -> dict[str, int]:
    """Raise and clear alarms from the presence in Redis. Idempotent; run every few seconds by the ingest.

    - institutional_offline: an institutional terminal seen before and silent for 5 minutes;
    - area_outage: more than half of a village's terminals dropped within 2 minutes and still down
      after a grace of 30 s (a power blip the boxes ride out raises nothing) → one alarm for the
      village (its institutional alarms are then not raised separately).
    """
    now = now or time.time()
    inst_after = _cfg("FLEET_INSTITUTIONAL_OFFLINE_S", 300)
    window = _cfg("FLEET_OUTAGE_WINDOW_S", 120)
    grace = _cfg("FLEET_OUTAGE_GRACE_S", 30)
    last = presence.last_seen_all()
    online = presence.online_serials(now)
    terms = session.execute(select(Terminal.serial, Terminal.kind, Terminal.region_path)
                            .where(Terminal.region_path.is_not(None))).all()
    by_village: dict[str, list[tuple[str, str]]] = {}
    for serial, kind, path in terms:
        codes = [c for c in path.split("/") if c]
        if len(codes) == 3:
            by_village.setdefault(codes[2], []).append((serial, kind))
    active = {(a.kind, a.serial or a.region_code): a for a in
              session.scalars(select(Alarm).where(Alarm.cleared_at.is_(None), Alarm.kind.in_(PRESENCE_ALARMS)))}
    want: dict[tuple[str, str], tuple[str, str | None, str]] = {}
    outage_villages = set()
    for village, boxes in by_village.items():
        down = sorted(last[s] for s, _k in boxes if s in last and s not in online)
        if not down:
            continue
        latest = down[-1]
        recent = [t for t in down if latest - t <= window]
        if (len(recent) * 2 > len(boxes) and now - recent[0] >= grace) \
                or (("area_outage", village) in active and len(down) * 2 > len(boxes)):
            outage_villages.add(village)
            want[("area_outage", village)] = (village, None, f"区域断网：{len(down)}/{len(boxes)} 台终端离线")
    path_of = {s: p for s, _k, p in terms}
    for serial, kind, path in terms:
        if kind not in INSTITUTIONAL or serial not in last or serial in online:
            continue
        codes = [c for c in path.split("/") if c]
        if codes[-1] in outage_villages:
            continue
        if now - last[serial] >= inst_after:
            mins = int((now - last[serial]) // 60)
            want[("institutional_offline", serial)] = (codes[-1], serial, f"机构终端 {serial} 离线 {mins} 分钟以上")
    raised = cleared = 0
    for key, (code, serial, msg) in want.items():
        if key not in active:
            path = path_of.get(serial) if serial else (region_by_code(code).path if region_by_code(code) else None)
            a = Alarm(kind=key[0], serial=serial, region_code=code, region_path=path, message=msg)
            session.add(a)
            session.flush()
            audit.record("alarm.raise", "alarm", a.id, region_code=code, actor="system", kind=key[0], serial=serial)
            raised += 1
        else:
            active[key].message = msg
    for key, a in active.items():
        if key not in want:
            a.cleared_at = utcnow()
            session.flush()
            audit.record("alarm.clear", "alarm", a.id, region_code=a.region_code, actor="system", kind=a.kind)
            cleared += 1
    session.flush()
    return {"raised": raised, "cleared": cleared}
