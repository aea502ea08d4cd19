"""RQ jobs of the feedback loop (periodic: the deadline sweep)."""
from __future__ import annotations

import logging

from portal_server.core import mqtt, protocol
from portal_server.core.db import session

log = logging.getLogger(__name__)


def check_deadlines() -> int:
    """Periodic: remind desks of orders that went red and note the level above (idempotent)."""
    from . import operations

    n = operations.check_deadlines()
    session.commit()
    if n:
        log.info("feedback: %d orders went overdue; reminders and supervisor notes recorded", n)
    return n


def announce_poll(poll_id: int) -> bool:
    """Tell the boxes of the poll's region that a poll is open (MQTT notice, INTERFACES §5)."""
    from . import queries

    poll = queries.poll_get(poll_id)
    if poll is None:
        return False
    payload = protocol.notice_payload("poll", poll.id, poll.title, f"/tv/feedback/polls/{poll.id}")
    try:
        mqtt.publish(protocol.region_notice_topic(poll.region.code), payload, qos=1)
    except Exception:  # the poll stands; boxes still find it in 民意调查
        log.exception("feedback: poll %s notice not published", poll_id)
        return False
    return True
