"""Demo catalogue: the shipped 全市通办 catalogue (data/catalogue.csv, 126 items in three-level
categories), every town's admission list (准入清单: all village-level items), and booking slots."""
from __future__ import annotations

from pathlib import Path

from sqlalchemy import func, select

from portal_server.core.db import session

from . import operations as ops
from .models import ServiceAdmission, ServiceItem

#: The catalogue shipped with the project (UTF-8, Chinese headers); `communitv services import` reads the same format.
CATALOGUE = Path(__file__).parent / "data" / "catalogue.csv"


def seed(ctx) -> None:
    """Import the catalogue (idempotent, see below), admit the village-level items
    in towns that have no list yet, and a week of slots at every village hall and town centre."""
    before = session.scalar(select(func.count(ServiceItem.id)))
    # A complete, current catalogue is left alone (a second seed changes nothing, and a staff edit of an
    # item survives it); a missing item or the first catalogue's rows without 办理层级/电视申请 bring the
    # file in (its changed rows rewritten, equal ones left as they are).
    plan = ops.plan_catalogue(CATALOGUE.read_bytes(), None, CATALOGUE.name)
    if plan.counts()["new"] or not session.scalar(select(func.count(ServiceItem.id)).where(ServiceItem.tv_apply.is_(True))):
        ops.import_catalogue(plan, "demo", source=CATALOGUE.name)
    ctx.count("service_items", session.scalar(select(func.count(ServiceItem.id))) - before)
    local = list(session.scalars(select(ServiceItem.code).where(ServiceItem.local.is_(True),
                                                                ServiceItem.active.is_(True))))
    listed = set(session.scalars(select(ServiceAdmission.town_id).distinct()))
    for town in ctx.towns:
        if town.id not in listed:
            ctx.count("service_admissions", ops.admit(None, town, local, True, actor="demo"))
    ctx.count("booking_slots", ops.ensure_slots(ctx.towns + ctx.villages))
