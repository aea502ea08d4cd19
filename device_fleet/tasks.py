"""Jobs of the fleet (take ids, not objects). Presence, alarms and command expiry are derived
every second by the ingest process (``ingest.Ingest.watch``), which owns the MQTT stream; the jobs
here publish committed commands and re-issue retained configs before their portal URL expires."""
from __future__ import annotations

import json
import logging
import time

from flask import current_app
from sqlalchemy import select

from portal_server.core import clock, mqtt, protocol
from portal_server.core import redis as core_redis
from portal_server.core.db import session, utcnow
from portal_server.core.terminals import Terminal

from . import presence
from .ingest import HELLO_BATCH, config_payload, refresh_before_s, retained_facts
from .models import Command

log = logging.getLogger(__name__)


def publish_commands(ids: list[str]) -> int:
    """The job that publishes committed commands (QoS 1, MQTT 5 expiry = the command's); raises
    (so the queue retries) unless Mosquitto confirms them. Commands past their expiry are skipped."""
    now = utcnow()
    cmds = session.scalars(select(Command).where(Command.id.in_(list(ids)), Command.status == "sent")).all()
    pub = mqtt.publisher()
    infos = []
    for c in cmds:
        expires = clock.aware(c.expires_at)
        if expires <= now:
            continue
        payload = protocol.encode_cmd(id=c.id, type=c.type, args=json.loads(c.args_json),
                                      expires=int(expires.timestamp()))
        infos.append(pub.publish(protocol.dev_topic(c.serial, "cmd"), payload, qos=1,
                                 expiry_s=max(1, int((expires - now).total_seconds())), wait=False))
    for info in infos[-50:]:
        info.wait_for_publish(10)
    if infos and not all(i.is_published() for i in infos[-50:]):
        raise ConnectionError("Mosquitto did not confirm the commands")
    return len(infos)


def refresh_configs(now: float | None = None) -> int:
    """Re-publish the retained config of every box whose portal URL runs out within
    ``refresh_before_s`` (the expiries the ingest saw on the broker), with a fresh portal URL, so
    that a box switched on after months still opens its portal; returns how many were sent."""
    now = time.time() if now is None else now
    due = presence.portal_urls_expiring(now + refresh_before_s(current_app.config["SETTINGS"]))
    pub = mqtt.publisher()
    r = core_redis.client()
    sent = 0
    for i in range(0, len(due), HELLO_BATCH):
        chunk = due[i:i + HELLO_BATCH]
        terms = {t.serial: t for t in session.scalars(select(Terminal).where(Terminal.serial.in_(chunk)))
                 if t.paired}
        gone = [s for s in chunk if s not in terms]
        if gone:  # retired or unbound since: no portal URL to refresh (an unbound box's hello gets its pairing code)
            presence.note_portal_expiries(r, dict.fromkeys(gone))
        infos, expiries = [], {}
        for serial, term in terms.items():
            payload = config_payload(term)
            infos.append(pub.publish(protocol.dev_topic(serial, "config"), payload, qos=1, retain=True, wait=False))
            facts = retained_facts(payload)
            expiries[serial] = facts[1] if facts else None
        for info in infos:
            info.wait_for_publish(10)
        # As the ingest will note from the broker (and the next run must not send them again without it).
        presence.note_portal_expiries(r, expiries)
        sent += len(infos)
        session.rollback()  # read only
    if sent:
        log.info("fleet: %d retained configs re-issued before their portal URL expired", sent)
    return sent
