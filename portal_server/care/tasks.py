"""Jobs of elderly care (take ids, not objects)."""
from __future__ import annotations

from portal_server.core.db import session


def check_missed_checkins() -> dict:
    """Periodic: open tasks for missed check-ins, escalate unanswered ones in the evening."""
    from . import operations as ops
    result = ops.check_missed()
    session.commit()
    return result

