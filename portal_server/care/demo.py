"""Demo elderly services for every village (idempotent)."""
from __future__ import annotations

from sqlalchemy import select

from portal_server.core.db import session

from .models import ElderlyService


def seed(ctx) -> None:
    have = set(session.scalars(select(ElderlyService.region_id)))
    made = 0
    for i, v in enumerate(ctx.villages):
        if v.id in have:
            continue
        rows = [
            ("meal", f"{v.name}老年助餐点", f"{v.name}村委会一楼", "每周一至周五 11:00-12:30（80岁以上老人每餐3元）",
             f"0791-86{i:03d}01", "独居、高龄老人可申请送餐上门。"),
            ("health_check", "65岁以上老人免费健康体检", f"{v.parent.name}卫生院（{v.name}村卫生室预约）",
             f"每月{(i % 20) + 5}日 8:00-11:00，空腹前往", f"0791-86{i:03d}02", "带身份证、医保卡。"),
            ("home_visit", "网格员上门探访", "上门服务", "独居老人每周至少一次，留守老人每月两次",
             f"0791-86{i:03d}03", "如需临时探访请拨打电话或在电视上按“一键求助”。"),
        ]
        for kind, title, place, schedule, phone, details in rows:
            session.add(ElderlyService(region_id=v.id, region_path=v.path, kind=kind, title=title, place=place,
                                       schedule=schedule, phone=phone, details=details))
            made += 1
    session.flush()
    ctx.count("elderly_services", made)
