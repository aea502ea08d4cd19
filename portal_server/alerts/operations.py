"""Every write of emergency alerts: create (two-person rule), approve/confirm, reject, update, cancel,
expire, acks. validate → change → flush → signal → audit → outbox; the handler commits once.

Delivery goes through the outbox (DESIGN §1): the alert row and its delivery intent commit together;
after commit ``tasks.deliver`` publishes one retained message per targeted region on the region alert
topic of ``core.protocol`` (the newest live alert of that region, or an empty payload that clears
it) at once, and when Mosquitto does not confirm it the job is queued with retries. The periodic
sweep compares what the database says each region shows with what Mosquitto holds retained (asked
directly) and redelivers the difference, so an alert sent while Redis or the broker was away, or lost
in a broker crash, still reaches every box. Acks count for any active alert, even when Redis lost its
live set; while Redis is away they are written to alert_acks instead.
"""
from __future__ import annotations

import datetime as dt
import logging
import threading
import time

from flask import current_app
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from portal_server.core import audit, clock, mqtt, outbox, protocol, signals, speech
from portal_server.core import metrics as core_metrics
from portal_server.core import redis as core_redis
from portal_server.core.api import ApiError, bad_request, conflict, forbidden, parse_ts
from portal_server.core.db import add_once, session, utcnow
from portal_server.core.regions import Region, region_by_code

from .models import (
    CATEGORIES,
    CATEGORY_NAMES,
    CERTAINTIES,
    SEVERITIES,
    STATUS_NAMES,
    TWO_PERSON,
    URGENCIES,
    Alert,
    AlertAck,
    AlertRegion,
)
from .texts import template as text_template

log = logging.getLogger(__name__)

#: Who may send, approve, update and cancel alerts (admins hold every role).
SENDER_ROLES = ("noc", "reviewer")
#: Who may read an alert's delivery figures (grid workers need the unacked households).
READER_ROLES = ("noc", "reviewer", "grid_worker", "handler")
#: An alert lives at most this long.
MAX_LIFETIME = dt.timedelta(days=7)
DEFAULT_LIFETIME = dt.timedelta(hours=6)
#: Redis: set of live alert ids; hash per alert of serial → first ack time (epoch seconds).
LIVE_KEY = "ctv:alerts:live"
ACKS_KEY = "ctv:alert:{}:acks"
ACKS_TTL_S = 8 * 86400
#: Redis hash region code → what Mosquitto last confirmed on its alert topic ("<id>|<audio url>" or "").
DELIVERED_KEY = "ctv:alerts:delivered"
#: Seconds between the retries of a delivery job (RQ Retry) when the broker is away.
DELIVERY_RETRY = (1, 2, 5, 10, 30, 60, 120)

# Count an ack only for a live alert: one round trip, no key for a forged id.
_ACK_SCRIPT = """
if redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 1 then
  local n = redis.call('HSETNX', KEYS[2], ARGV[2], ARGV[3])
  redis.call('EXPIRE', KEYS[2], ARGV[4])
  return n
end
return -1
"""


def topic(code: str) -> str:
    return protocol.region_alert_topic(code)


# Validation -------------------------------------------------------------------------------

def _text(data: dict, key: str, limit: int, required: bool = False) -> str:
    v = data.get(key)
    if v is None or (isinstance(v, str) and not v.strip()):
        if required:
            raise bad_request(f"missing field: {key}", field=key)
        return ""
    if not isinstance(v, str):
        raise bad_request(f"invalid field {key}: must be a string", field=key)
    v = v.strip()
    if len(v) > limit:
        raise bad_request(f"invalid field {key}: at most {limit} characters", field=key)
    return v


def _choice(data: dict, key: str, allowed: tuple[str, ...], default: str | None = None) -> str:
    v = data.get(key, default)
    if v in (None, ""):
        raise bad_request(f"missing field: {key}", field=key)
    if v not in allowed:
        raise bad_request(f"invalid field {key}: {v!r} is not one of {', '.join(allowed)}", field=key)
    return v


def validate(data: dict, now: dt.datetime | None = None, partial: bool = False) -> dict:
    """Clean alert values from ``data`` (API body, form or CLI); 400 naming the first bad field.

    ``template`` (a key of texts.TEMPLATES) fills the fields that are not given. With ``partial``
    (an update) only the given fields are checked and returned."""
    now = now or utcnow()
    if not isinstance(data, dict):
        raise bad_request("request body must be a JSON object")
    if data.get("template"):
        t = text_template(str(data["template"]))
        if t is None:
            raise bad_request(f"invalid field template: unknown template {data['template']!r}", field="template")
        hours = t.pop("expires_h")
        t.pop("name")
        data = {**t, "expires": (now + dt.timedelta(hours=hours)).isoformat(),
                **{k: v for k, v in data.items() if v not in (None, "")}}
    out: dict = {}
    given = (lambda k: k in data and data[k] not in (None, "")) if partial else (lambda k: True)
    if given("headline"):
        out["headline"] = _text(data, "headline", 160, required=True)
    if given("category"):
        out["category"] = _choice(data, "category", CATEGORIES)
    if given("severity"):
        out["severity"] = _choice(data, "severity", SEVERITIES)
    if given("urgency"):
        out["urgency"] = _choice(data, "urgency", URGENCIES)
    if given("certainty"):
        out["certainty"] = _choice(data, "certainty", CERTAINTIES)
    for key, limit in (("description", 4000), ("instruction", 2000)):
        if given(key):
            out[key] = _text(data, key, limit)
    if given("event"):
        out["event"] = _text(data, "event", 128) or (CATEGORY_NAMES[out["category"]] + "预警"
                                                     if "category" in out else "")
    if given("expires"):
        raw = data.get("expires")
        if isinstance(raw, (int, float)) and not isinstance(raw, bool):
            expires = dt.datetime.fromtimestamp(raw, dt.timezone.utc)
        else:
            expires = parse_ts(raw, "expires") or (now + DEFAULT_LIFETIME)
        if expires <= now:
            raise bad_request("invalid field expires: the expiry is in the past", field="expires")
        if expires - now > MAX_LIFETIME:
            raise bad_request("invalid field expires: an alert lives at most 7 days", field="expires")
        out["expires_at"] = expires.astimezone(dt.timezone.utc)
    if given("display"):
        d = data.get("display")
        if d not in (None, "", "fullscreen", "banner"):
            raise bad_request("invalid field display: must be fullscreen or banner", field="display")
        out["display"] = d or None
    return out


def _default_display(severity: str, urgency: str) -> str:
    return "fullscreen" if severity in TWO_PERSON or severity == "Moderate" or urgency == "Immediate" else "banner"


def target_regions(codes, user) -> list[Region]:
    """The regions of ``codes``: 400 for a missing list or an unknown code, 403 naming a region outside
    the sender's scope (``user`` None: the command line, the whole city)."""
    if isinstance(codes, str):
        codes = [c for c in codes.replace(",", " ").split() if c]
    if not codes or not isinstance(codes, list):
        raise bad_request("missing field: regions (a list of region codes)", field="regions")
    regions: list[Region] = []
    for code in dict.fromkeys(codes):
        if not isinstance(code, str):
            raise bad_request("invalid field regions: codes must be strings", field="regions")
        r = region_by_code(code)
        if r is None:
            raise bad_request(f"invalid field regions: unknown region {code}", field="regions")
        if user is not None and not user.scope.covers(r):
            raise forbidden(f"区域 {code}（{r.name}）不在您的管辖范围内 (region {code} is outside your scope)")
        regions.append(r)
    # A region inside another targeted region adds nothing (its boxes get the parent's topic).
    return [r for r in regions if not any(o is not r and r.path.startswith(o.path) for o in regions)]


def _check_sender(user) -> None:
    if user is not None and not user.has_role(*SENDER_ROLES):
        raise forbidden("只有管理员、网管中心或审核员可以发布预警 (sending alerts needs the role admin, noc or reviewer)")


def _actor(user) -> str:
    return user.username if user is not None else "cli"


def _may_act_on(alert: Alert, user) -> None:
    """Approve, update, cancel: a sender whose scope covers every targeted region."""
    _check_sender(user)
    if user is None:
        return
    for ar in alert.regions:
        if not ar.path.startswith(user.scope.path):
            raise forbidden(f"区域 {ar.code} 不在您的管辖范围内 (region {ar.code} is outside your scope)")


# Writes -----------------------------------------------------------------------------------

def create(data: dict, user, idempotency_key: str | None = None, now: dt.datetime | None = None,
           actor: str | None = None) -> tuple[Alert, bool]:
    """A new alert → (alert, created). Severe/Extreme wait for a second person (``pending_approval``)
    unless the sender marked them Immediate: then they go out at once and are confirmed afterwards."""
    now = now or utcnow()
    _check_sender(user)
    actor = actor or _actor(user)
    idem = None
    if idempotency_key:
        if not isinstance(idempotency_key, str) or len(idempotency_key) > 80:
            raise bad_request("invalid field idempotency_key: a string of at most 80 characters",
                              field="idempotency_key")
        idem = f"{actor}:{idempotency_key}"
        existing = session.scalar(select(Alert).where(Alert.idem_key == idem))
        if existing is not None:
            return existing, False
    values = validate(data, now)
    regions = target_regions((data or {}).get("regions"), user)
    two_person = values["severity"] in TWO_PERSON
    immediate = values["urgency"] == "Immediate"
    status = "pending_approval" if two_person and not immediate else "active"
    alert = Alert(msg_type="Alert", status=status, category=values["category"], event=values["event"],
                  severity=values["severity"], urgency=values["urgency"], certainty=values["certainty"],
                  headline=values["headline"], description=values["description"],
                  instruction=values["instruction"],
                  display=values.get("display") or _default_display(values["severity"], values["urgency"]),
                  sent_at=now, expires_at=values["expires_at"], created_by=actor,
                  sender_region_path=user.region.path if user is not None else "", idem_key=idem,
                  needs_confirmation=two_person and immediate, targeted_at_send=0)
    alert.regions = [AlertRegion(region_id=r.id, code=r.code, path=r.path) for r in regions]
    try:
        with session.begin_nested():
            session.add(alert)
            session.flush()
    except IntegrityError:  # the same key submitted twice at once
        return session.scalar(select(Alert).where(Alert.idem_key == idem)), False
    if status == "active":
        _went_live(alert)
    signals.alert_changed.send(alert.id, region_codes=alert.region_codes, state=alert.status)
    audit.record("alert.create", "alert", alert.id, regions[0].code, actor=actor, status=status,
                 severity=alert.severity, urgency=alert.urgency, regions=alert.region_codes,
                 headline=alert.headline, second_person=("after" if alert.needs_confirmation else
                                                         "before" if status == "pending_approval" else None))
    return alert, True


def _went_live(alert: Alert) -> None:
    from . import queries
    alert.targeted_at_send = queries.targeted_count(alert)
    session.flush()
    outbox.call("portal_server.alerts.operations:sync_live", live=[alert.id])
    _deliver(alert.region_codes)
    if current_app.config.get("ALERTS_SPEECH", True):
        outbox.job("portal_server.alerts.tasks:speak", alert.id, queue="media", timeout_s=300)


def approve(alert: Alert, user) -> Alert:
    """The second person: a pending alert goes out now; an Immediate one sent at once is confirmed."""
    _may_act_on(alert, user)
    actor = _actor(user)
    if actor == alert.created_by:
        raise forbidden("第二人不能是发布人本人 (the second person must be someone other than the sender)")
    if alert.status == "pending_approval":
        now = utcnow()
        if clock.aware(alert.expires_at) <= now:
            raise conflict("该预警在审批前已过期 (expired before it was approved)")
        alert.status, alert.sent_at = "active", now
        alert.approved_by, alert.approved_at = actor, now
        session.flush()
        _went_live(alert)
        action = "alert.approve"
    elif alert.needs_confirmation:
        alert.needs_confirmation = False
        alert.approved_by, alert.approved_at = actor, utcnow()
        session.flush()
        action = "alert.confirm"
    else:
        raise conflict("该预警无需审批或确认 (not waiting for a second person)")
    signals.alert_changed.send(alert.id, region_codes=alert.region_codes, state=alert.status)
    audit.record(action, "alert", alert.id, alert.region_codes[0], actor=actor, sender=alert.created_by)
    return alert


def reject(alert: Alert, user, reason: str = "") -> Alert:
    """The second person refuses a pending alert: it never goes out."""
    _may_act_on(alert, user)
    if alert.status != "pending_approval":
        raise conflict("只能驳回待审批的预警 (only a pending alert can be rejected)")
    alert.status, alert.ended_at = "rejected", utcnow()
    alert.approved_by, alert.approved_at = _actor(user), alert.ended_at
    session.flush()
    signals.alert_changed.send(alert.id, region_codes=alert.region_codes, state=alert.status)
    audit.record("alert.reject", "alert", alert.id, alert.region_codes[0], actor=_actor(user),
                 reason=(reason or "")[:200])
    return alert


def _end(alert: Alert, status: str) -> None:
    alert.status, alert.ended_at = status, utcnow()
    session.flush()
    persist_acks(alert.id)
    outbox.call("portal_server.alerts.operations:sync_live", ended=[alert.id])
    _deliver(alert.region_codes)


def cancel(alert: Alert, user, reason: str = "") -> Alert:
    """CAP Cancel: boxes clear the alert (the retained message is cleared or replaced by another live
    alert of the region). A pending alert is simply withdrawn."""
    _may_act_on(alert, user)
    if alert.status not in ("active", "pending_approval"):
        raise conflict(f"该预警已{STATUS_NAMES.get(alert.status, alert.status)} (already {alert.status})")
    alert.cancelled_by, alert.cancelled_at = _actor(user), utcnow()
    _end(alert, "cancelled")
    signals.alert_changed.send(alert.id, region_codes=alert.region_codes, state="cancelled")
    audit.record("alert.cancel", "alert", alert.id, alert.region_codes[0], actor=_actor(user),
                 reason=(reason or "")[:200])
    return alert


def update(alert: Alert, data: dict, user) -> Alert:
    """CAP Update: a new message referencing ``alert`` replaces it on the same regions (boxes show and
    ack the new one). Fields not given are kept."""
    _may_act_on(alert, user)
    if alert.status != "active":
        raise conflict("只能更新播发中的预警 (only an active alert can be updated)")
    now = utcnow()
    values = validate(data, now, partial=True)
    if not values:
        raise bad_request("nothing to update: give at least one field", field="headline")
    keep = {k: getattr(alert, k) for k in ("category", "event", "severity", "urgency", "certainty", "headline",
                                           "description", "instruction", "expires_at", "display")}
    keep.update({k: v for k, v in values.items() if v is not None})
    new = Alert(msg_type="Update", references_id=alert.id, status="active", sent_at=now, created_by=_actor(user),
                sender_region_path=user.region.path if user is not None else "", targeted_at_send=0,
                needs_confirmation=False, approved_by=alert.approved_by, approved_at=alert.approved_at, **keep)
    new.regions = [AlertRegion(region_id=r.region_id, code=r.code, path=r.path) for r in alert.regions]
    session.add(new)
    session.flush()
    _end(alert, "superseded")
    _went_live(new)
    signals.alert_changed.send(alert.id, region_codes=alert.region_codes, state="superseded")
    signals.alert_changed.send(new.id, region_codes=new.region_codes, state="active")
    audit.record("alert.update", "alert", new.id, new.region_codes[0], actor=_actor(user), references=alert.id,
                 changed=sorted(values))
    return new


def expire_due(now: dt.datetime | None = None) -> list[int]:
    """Periodic: live alerts past their expiry end (retained messages cleared); pending ones lapse."""
    now = now or utcnow()
    done = []
    for alert in session.scalars(select(Alert).where(Alert.status.in_(("active", "pending_approval")),
                                                     Alert.expires_at <= now)):
        _end(alert, "expired")
        signals.alert_changed.send(alert.id, region_codes=alert.region_codes, state="expired")
        audit.record("alert.expire", "alert", alert.id, alert.region_codes[0], actor="system")
        done.append(alert.id)
    return done


# Acks -------------------------------------------------------------------------------------

def record_ack(alert_id: int, serial: str, ts: float | None = None) -> bool | None:
    """Count a box's ack in Redis; while Redis is away, straight into alert_acks (the caller
    commits). True: first ack of this box; False: already counted; None: no such live alert."""
    ts = ts or time.time()
    try:
        r = core_redis.client()
        args = (_ACK_SCRIPT, 2, LIVE_KEY, ACKS_KEY.format(alert_id), str(alert_id), serial, f"{ts:.3f}", ACKS_TTL_S)
        n = r.eval(*args)
        if n == -1 and active_ids([alert_id]):  # Redis lost its live set: the database says it is live
            r.sadd(LIVE_KEY, str(alert_id))
            n = r.eval(*args)
    except core_redis.redis_lib.RedisError:
        log.warning("alerts: Redis away, ack of %s for alert %s kept in the database", serial, alert_id)
        if not active_ids([alert_id]):
            return None
        return store_acks([(alert_id, serial, ts)]) == 1
    return None if n == -1 else bool(n)


def store_acks(batch) -> int:
    """Acks (alert id, serial, epoch seconds) written to alert_acks when Redis cannot count them:
    the first ack of a box per active alert, inside the caller's transaction → how many were new."""
    live = active_ids({a for a, _s, _t in batch})
    have = set(session.execute(select(AlertAck.alert_id, AlertAck.serial)
                               .where(AlertAck.alert_id.in_(live)))) if live else set()
    new = 0
    for alert_id, serial, ts in batch:
        if alert_id in live and (alert_id, serial) not in have:
            have.add((alert_id, serial))
            _row, created = add_once(AlertAck(alert_id=alert_id, serial=serial,
                                              at=dt.datetime.fromtimestamp(ts, dt.timezone.utc)),
                                     lambda: session.scalar(select(AlertAck).where(AlertAck.alert_id == alert_id,
                                                                                   AlertAck.serial == serial)))
            new += created
    return new


def active_ids(ids) -> set[int]:
    """Which of these alert ids are active in the database (the truth when Redis forgot)."""
    return set(session.scalars(select(Alert.id).where(Alert.id.in_(list(ids)), Alert.status == "active")))


class AckBatcher:
    """Acks from the ingest, counted in Redis in pipelined batches: a city-wide alert brings 10,000 acks
    within a second or two, and one round trip each was the bottleneck (bench/alerts_latency.py)."""

    def __init__(self, client, interval_s: float = 0.05, app=None):
        self.client, self.interval_s, self.app = client, interval_s, app
        self.pending: list[tuple[int, str, float]] = []
        self.lock = threading.Lock()
        self.wake = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True, name="alerts-acks")
        self.thread.start()

    def add(self, alert_id: int, serial: str) -> None:
        with self.lock:
            self.pending.append((alert_id, serial, time.time()))
        self.wake.set()

    def flush(self) -> int:
        with self.lock:
            batch, self.pending = self.pending, []
        if batch:
            try:
                return self._flush(batch)
            except Exception:  # Redis away: a box acks once, so its ack goes to the database instead
                log.warning("alerts: Redis away, %d acks kept in the database", len(batch), exc_info=True)
                if self.app is None:
                    return 0
                with self.app.app_context():
                    try:
                        store_acks(batch)
                        session.commit()
                    except Exception:
                        log.exception("alerts: a batch of %d acks was lost", len(batch))
                    finally:
                        session.remove()
        return len(batch)

    def _flush(self, batch) -> int:
        if batch:
            script = self.client.register_script(_ACK_SCRIPT)
            counted = self._count(script, batch)
            missed = [b for b, n in zip(batch, counted) if n == -1]
            if missed and self.app is not None:  # not in Redis' live set: ask the database
                with self.app.app_context():
                    try:
                        live = active_ids({a for a, _s, _t in missed})
                    finally:
                        session.remove()
                if live:
                    self.client.sadd(LIVE_KEY, *map(str, live))
                    self._count(script, [b for b in missed if b[0] in live])
        return len(batch)

    def _count(self, script, batch) -> list:
        pipe = self.client.pipeline(transaction=False)
        for alert_id, serial, ts in batch:
            script(keys=[LIVE_KEY, ACKS_KEY.format(alert_id)],
                   args=[str(alert_id), serial, f"{ts:.3f}", ACKS_TTL_S], client=pipe)
        return pipe.execute()

    def _run(self) -> None:
        while True:
            self.wake.wait()
            time.sleep(self.interval_s)  # gather the burst
            self.wake.clear()
            try:
                self.flush()
            except Exception:  # never let the batching thread die
                log.exception("alerts: ack batch failed")


_batchers: dict[tuple[int, str, int], AckBatcher] = {}
_batchers_lock = threading.Lock()


def _batcher() -> AckBatcher:
    import os
    url = current_app.config["SETTINGS"].redis_url
    app = current_app._get_current_object()
    key = (os.getpid(), url, id(app))  # per app: its database answers for acks Redis forgot
    with _batchers_lock:
        if key not in _batchers:
            _batchers[key] = AckBatcher(core_redis.client(url), app=app)
    return _batchers[key]


def on_box_acked(serial, kind=None, id=None, ok=True, **_kw) -> None:
    """Receiver of ``box_acked`` (sent by the MQTT ingest for every ack a box publishes): queued for
    the next Redis batch (never a database write here)."""
    if kind != "alert" or not ok:
        return
    try:
        alert_id = int(str(id))
    except (TypeError, ValueError):
        return
    _batcher().add(alert_id, serial)


def redis_acks(alert_id: int) -> dict[str, float]:
    raw = core_redis.client().hgetall(ACKS_KEY.format(alert_id))
    return {k.decode(): float(v) for k, v in raw.items()}


def persist_acks(alert_id: int) -> int:
    """Copy the alert's acks from Redis into alert_acks (only the new ones) → how many. Redis away:
    0 (the acks it holds stay there, counted by ``queries.acked_serials``, until they expire); a
    cancel must never fail on it."""
    try:
        acks = redis_acks(alert_id)
    except core_redis.redis_lib.RedisError:
        log.warning("alerts: Redis away, acks of alert %s not persisted now", alert_id)
        return 0
    if not acks:
        return 0
    have = set(session.scalars(select(AlertAck.serial).where(AlertAck.alert_id == alert_id)))
    rows = [{"alert_id": alert_id, "serial": s, "at": dt.datetime.fromtimestamp(ts, dt.timezone.utc)}
            for s, ts in acks.items() if s not in have]
    if rows:
        session.execute(AlertAck.__table__.insert(), rows)
        alert = session.get(Alert, alert_id)
        if alert is not None:  # how long boxes took, for the operators' latency histogram
            sent = clock.aware(alert.sent_at).timestamp()
            for s, ts in acks.items():
                if s not in have:
                    core_metrics.ALERT_ACK_SECONDS.observe(max(0.0, ts - sent))
    return len(rows)


def persist_live_acks() -> int:
    """Periodic: persist the acks of every live alert in one batch per alert."""
    n = 0
    for aid in session.scalars(select(Alert.id).where(Alert.status == "active")):
        n += persist_acks(aid)
    return n


# Delivery ---------------------------------------------------------------------------------

def _deliver(codes: list[str]) -> None:
    """After commit: bring these regions' alert topics up to date (at once; retried if it fails)."""
    outbox.job("portal_server.alerts.tasks:deliver", list(dict.fromkeys(codes)), queue="high", eager=True,
               retry=DELIVERY_RETRY)


def sync_live(live: list[int] = (), ended: list[int] = ()) -> None:
    """After commit: the Redis set of live alerts (acks are counted against it) and ended alerts' acks."""
    r = core_redis.client()
    if live:
        r.sadd(LIVE_KEY, *map(str, live))
    if ended:
        r.srem(LIVE_KEY, *map(str, ended))
        r.delete(*[ACKS_KEY.format(a) for a in ended])


def mqtt_payload(alert: Alert, audio_url: str | None = None) -> dict:
    """The retained region message of INTERFACES §5 (plus ``audio_url`` once the speech is ready)."""
    base = current_app.config["SETTINGS"].public_url.rstrip("/")
    return protocol.alert_payload(id=alert.id, severity=alert.severity, urgency=alert.urgency,
                                  headline=alert.headline, description=alert.description,
                                  instruction=alert.instruction,
                                  expires=int(clock.aware(alert.expires_at).timestamp()), display=alert.display,
                                  cap_url=f"{base}/api/v1/alerts/{alert.id}.cap", audio_url=audio_url)


def refresh_topics(codes: list[str]) -> None:
    """Each region topic carries the newest live alert targeting exactly that region (retained, QoS 1,
    MQTT 5 message expiry = the alert's), or an empty retained payload that clears it."""
    from . import queries
    now = utcnow()
    newest = queries.newest_live_by_code(codes, now)
    pub = mqtt.publisher()
    infos, states = [], {}
    for code in codes:
        alert = newest.get(code)
        if alert is None:
            states[code] = ""
            infos.append(pub.publish(topic(code), protocol.CLEAR, qos=1, retain=True, wait=False, timeout=2))
        else:
            audio = queries.audio_url(alert)
            states[code] = f"{alert.id}|{audio or ''}"
            ttl = int((clock.aware(alert.expires_at) - now).total_seconds())
            infos.append(pub.publish(topic(code), mqtt_payload(alert, audio), qos=1,
                                     retain=True, expiry_s=max(ttl, 1), wait=False, timeout=2))
    for info in infos:
        try:
            info.wait_for_publish(5)
        except (RuntimeError, ValueError):  # not connected / queue full: is_published() says no below
            pass
    missing = [code for code, info in zip(codes, infos) if not info.is_published()]
    if missing:  # raise, so that the queued job is retried (RQ Retry) until Mosquitto confirms
        raise ConnectionError(f"Mosquitto did not confirm the alert topics of {', '.join(missing)}")
    try:
        core_redis.client().hset(DELIVERED_KEY, mapping=states)
    except Exception:  # the boxes have it; the sweep may send it once more
        log.warning("alerts: delivery state not recorded", exc_info=True)


def reconcile() -> list[str]:
    """Periodic: the regions whose retained alert on the broker differs from what the database says
    it should show are redelivered; the live set is refilled from the database. → the codes
    redelivered. The broker itself is asked what it holds (``mqtt.retained``), not Redis's record of
    what it confirmed: a broker that crashed before saving its retained store, or a Redis that lost
    its data, would otherwise look up to date while boxes switched on later see nothing."""
    from . import queries
    now = utcnow()
    active = session.scalars(select(Alert).where(Alert.status == "active", Alert.expires_at > now)).all()
    if active:
        try:
            core_redis.client().sadd(LIVE_KEY, *[str(a.id) for a in active])
        except core_redis.redis_lib.RedisError:  # acks still count: record_ack asks the database
            log.warning("alerts: live set not refilled (Redis away)")
    shown = broker_state()
    codes = sorted({c for a in active for c in a.region_codes} | set(shown))
    if not codes:
        return []
    newest = queries.newest_live_by_code(codes, now)
    stale = [c for c in codes
             if shown.get(c, "") != (f"{newest[c].id}|{queries.audio_url(newest[c]) or ''}" if c in newest else "")]
    if stale:
        refresh_topics(stale)
    return stale


def broker_state() -> dict[str, str]:
    """Region code → "<alert id>|<audio url>" of the alert Mosquitto holds retained on its topic."""
    out = {}
    for t, payload in mqtt.retained(topic("+")).items():
        try:
            alert = protocol.decode_alert(payload)
        except protocol.ProtocolError:
            alert = {"id": "?"}  # garbage on an alert topic: replaced by what the database says
        if alert is not None:
            out[t.split("/")[3]] = f"{alert['id']}|{alert.get('audio_url') or ''}"
    return out


def attach_speech(alert: Alert) -> str:
    """Make the spoken version (core.speech: espeak-ng → AAC clip) and republish with its ``audio_url``."""
    text = "。".join(t for t in (f"紧急通知：{alert.headline}", alert.description, alert.instruction) if t)
    clip = speech.clip_for(f"alert:{alert.id}", text)
    alert.speech_clip_id = clip.id
    session.flush()
    if clip.status != "ready":
        speech.synthesise(clip)
    session.flush()
    if clip.status == "ready" and alert.status == "active":
        _deliver(alert.region_codes)
        signals.alert_changed.send(alert.id, region_codes=alert.region_codes, state=alert.status)
    return clip.status


__all__ = ["ApiError", "approve", "cancel", "create", "expire_due", "on_box_acked", "record_ack",
           "reject", "update"]
