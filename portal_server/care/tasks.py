"""Jobs of elderly care (take ids, not objects)."""
from __future__ import annotations


def check_missed_checkins() -> dict:
    """Periodic: open tasks for missed check-ins, escalate unanswered ones in the evening."""
    from portal_server.core.db import session

    from . import operations as ops
    result = ops.check_missed()
    session.commit()
    return result

