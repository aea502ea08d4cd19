"""RQ jobs of the feedback loop (periodic: the deadline sweep)."""
from __future__ import annotations

import logging

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
