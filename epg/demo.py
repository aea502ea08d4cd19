"""Demo guide: the city channel, a channel per village hall, two relayed county channels (their
sources: the demo head-end of ``make run``, streaming.headend), and a week of programmes on the
city and county channels."""
from __future__ import annotations

from sqlalchemy import func, select

from portal_server.core.db import session

from . import operations as ops
from .models import Programme


def seed(ctx) -> None:
    """Idempotent: missing channels are added; the week is filled only when no programme exists."""
    n = ops.ensure_standard_channels([v.code for v in ctx.villages])
    if n:
        ctx.count("channels", n)
    ops.ensure_demo_sources()  # the city and county channels come from the demo head-end
    if not session.scalar(select(func.count()).select_from(Programme)):
        ctx.count("programmes", ops.fill_demo_week())
