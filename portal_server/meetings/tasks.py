"""Jobs of meetings: attendance from the boxes' heartbeats while a meeting is live."""
from __future__ import annotations

from sqlalchemy import select

from device_fleet import queries as fleet_queries

from portal_server.core.db import session
from portal_server.core.terminals import Terminal

from . import operations as ops
from .models import Meeting


def collect_attendance() -> dict:
    """Periodic: for every live meeting, note the boxes of its region whose latest heartbeat
    (kept in Redis by the fleet ingest) says they play the meeting."""
    noted = {}
    for m in session.scalars(select(Meeting).where(Meeting.status == "live")).all():
        boxes = session.execute(select(Terminal.serial, Terminal.household_id)
                                .where(Terminal.region_path.startswith(m.region_path, autoescape=True))).all()
        households = {s: h for s, h in boxes}
        heartbeats = {s: hb for s, (_online, _seen, hb) in fleet_queries.presence_of(list(households)).items() if hb}
        noted[m.id] = ops.attendance_from_heartbeats(m, heartbeats, households)
    session.commit()
    return noted
