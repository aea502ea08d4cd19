"""Jobs of the service catalogue."""
from __future__ import annotations

from portal_server.core.db import session
from portal_server.core.regions import Region


def refresh_slots(days: int = 7) -> int:
    """Keep a week of weekday slots open at every village hall and town service centre."""
    from sqlalchemy import select

    from . import operations as ops

    places = list(session.scalars(select(Region).where(Region.level.in_(("town", "village")))))
    made = ops.ensure_slots(places, days)
    session.commit()
    return made
