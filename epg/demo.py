"""Demo guide: the city channel, a channel per village hall, two relayed county channels, and a
week of programmes on the city and county channels."""
from __future__ import annotations

from sqlalchemy import func, select

from portal_server.core.db import session

from . import operations as ops
from .models import Channel


def seed(ctx) -> None:
    """Idempotent: only when no channel exists yet."""
    if session.scalar(select(func.count()).select_from(Channel)):
        return
    n = ops.ensure_standard_channels([v.code for v in ctx.villages])
    ctx.count("channels", n)
    ctx.count("programmes", ops.fill_demo_week())
