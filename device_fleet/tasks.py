"""Jobs of the fleet (take ids, not objects). Presence, alarms and command expiry are derived
every second by the ingest process (``ingest.Ingest.watch``), which owns the MQTT stream."""
from __future__ import annotations

import json

from sqlalchemy import select

from portal_server.core import clock, mqtt, protocol
from portal_server.core.db import session, utcnow

from .models import Command


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
