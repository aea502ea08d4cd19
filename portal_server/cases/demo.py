"""Demo cases: a handful of applications of 东河村 and 东岭村 households at different steps, so the
desks, the supervision list and 我的办件 are not empty on a fresh demo city. Idempotent."""
from __future__ import annotations

from sqlalchemy import func, select

from portal_server.core.db import session
from portal_server.core.households import Household

from . import operations as ops
from .models import Case

# (household number, item code, [(account, action, note)])
STORIES = [
    ("H990101001001-003", "11360100MB0004-001", []),                                            # 高龄津贴: waiting
    ("H990101001001-003", "11360100MB0023-001", [("v001-clerk", "accept", "材料齐全")]),          # 居住证明
    ("H990101001001-004", "11360100MB0005-001", [("v001-clerk", "accept", ""),
                                                  ("v001-clerk", "forward", "990101001000")]),    # 两项补贴 → 镇
    ("H990101001001-004", "11360100MB0003-003", [("v001-clerk", "accept", ""),
                                                  ("v001-clerk", "suspend", "请补充医疗费用票据")]),
    ("H990101001002-001", "11360100MB0002-001", [("v002-clerk", "accept", ""),
                                                  ("v002-clerk", "complete", "已登记参保，请按时缴费")]),
]


def seed(ctx) -> None:
    """Create the demo cases once (skipped when any case exists)."""
    if session.scalar(select(func.count(Case.id))):
        return
    made = 0
    for number, code, steps in STORIES:
        hh = session.scalar(select(Household).where(Household.number == number))
        clerk = ctx.users.get("v001-clerk" if number.startswith("H990101001001") else "v002-clerk")
        if hh is None or clerk is None:
            continue
        case, _ = ops.apply(code, "counter", user=clerk, household_id=hh.id, note="窗口代办（演示数据）")
        for username, action, note in steps:
            user = ctx.users[username]
            if action == "forward":
                ops.act(case, action, user, to=note)
            else:
                ops.act(case, action, user, note=note)
        made += 1
    ctx.count("cases", made)
