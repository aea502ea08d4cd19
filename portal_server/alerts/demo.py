"""Demo alerts: a little history (ended alerts) so the safety page and the NOC list are not empty.
Nothing live: a live alert would cover every demo TV full screen (idempotent)."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from portal_server.core.db import session, utcnow

from .models import Alert, AlertRegion
from .texts import TEMPLATES


def seed(ctx) -> None:
    if session.scalar(select(Alert.id).where(Alert.created_by == "demo").limit(1)) is not None:
        return
    now = utcnow()
    made = 0
    for days, key, region, status in ((30, "typhoon", ctx.city, "expired"), (12, "water_cut", ctx.villages[0], "expired"),
                                      (3, "flood", ctx.villages[0], "cancelled")):
        t = TEMPLATES[key]
        sent = now - dt.timedelta(days=days)
        a = Alert(msg_type="Alert", status=status, category=t["category"], event=t["event"], severity=t["severity"],
                  urgency=t["urgency"], certainty=t["certainty"], headline=t["headline"],
                  description=t["description"], instruction=t["instruction"], display="fullscreen",
                  sent_at=sent, expires_at=sent + dt.timedelta(hours=t["expires_h"]), created_by="demo",
                  sender_region_path=ctx.city.path, needs_confirmation=False, targeted_at_send=0,
                  ended_at=sent + dt.timedelta(hours=1 if status == "cancelled" else t["expires_h"]),
                  cancelled_at=sent + dt.timedelta(hours=1) if status == "cancelled" else None,
                  cancelled_by="demo" if status == "cancelled" else None,
                  approved_by="admin" if t["severity"] in ("Severe", "Extreme") else None)
        a.regions = [AlertRegion(region_id=region.id, code=region.code, path=region.path)]
        session.add(a)
        made += 1
    session.flush()
    ctx.count("alerts", made)
