"""Demo data: a few work orders in village 001 at different stages, and an open poll."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select

from portal_server.core.db import session, utcnow
from portal_server.core.terminals import Terminal

from . import operations as ops
from .models import Poll, WorkOrder


def seed(ctx) -> None:
    """Idempotent: only when no order exists yet."""
    if session.scalar(select(func.count()).select_from(WorkOrder)):
        return
    v001 = ctx.region("990101001001")
    boxes = list(session.scalars(select(Terminal).where(Terminal.region_id == v001.id,
                                                        Terminal.kind == "household")
                                 .order_by(Terminal.serial).limit(3)))
    handler = ops.Actor(user=ctx.users["v001-handler"])
    samples = [("water", "村东头水井的水泵坏了，三天没水", True),
               ("roads", "二组路口路灯不亮，晚上出行不安全", False),
               ("elderly", "独居老人想申请助餐服务", True)]
    for i, (cat, text, cb) in enumerate(samples):
        if i >= len(boxes):
            break
        box = boxes[i]
        order, _ = ops.submit(cat, text, cb, channel="tv", actor=ops.Actor(terminal=box), region=v001,
                              household_id=box.household_id, idem_owner=f"hh:{box.household_id}",
                              idempotency_key=f"demo-{i}")
        if i >= 1:
            ops.act(order, handler, "accept")
        if i == 1:
            ops.act(order, handler, "reply", message="已联系电工，明天上午修好路灯。")
        ctx.count("work_orders")
    if session.scalar(select(func.count()).select_from(Poll)) == 0:
        ops.open_poll(ctx.users["v001-editor"], "村文化广场晚上开放到几点？", ["晚上8点", "晚上9点", "晚上10点"],
                      "990101001001", utcnow() + dt.timedelta(days=30))
        ctx.count("polls")
