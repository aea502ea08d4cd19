"""Demo grids: village 001's first grid for grid-v001 with half of its households (idempotent)."""
from __future__ import annotations

from sqlalchemy import select

from portal_server.core.db import session
from portal_server.core.households import Household

from .models import Grid, GridHousehold

VILLAGE = "990101001001"


def seed(ctx) -> None:
    worker = ctx.users.get("grid-v001")
    village = ctx.region(VILLAGE)
    if worker is None or village is None:
        return
    if session.scalar(select(Grid.id).where(Grid.region_id == village.id)):
        return
    grid = Grid(region_id=village.id, region_path=village.path, name="第一网格", worker_id=worker.id,
                created_by="demo")
    session.add(grid)
    session.flush()
    households = session.scalars(select(Household.id).where(Household.region_id == village.id)
                                 .order_by(Household.number)).all()
    for hid in households[: max(1, len(households) // 2)]:
        session.add(GridHousehold(household_id=hid, grid_id=grid.id, assigned_by="demo"))
    session.flush()
    ctx.count("grids")
    ctx.count("grid_households", max(1, len(households) // 2))
