"""Fixtures of the elderly-care tests."""
import pytest
from sqlalchemy import select

from portal_server.core.db import session
from portal_server.core.households import Household
from portal_server.core.terminals import Terminal

VILLAGE = "990101001001"


@pytest.fixture
def elderly_box(app):
    """(household, serial) of an elderly_alone household in village 001 (tagged here if the RNG gave none)."""
    rows = session.scalars(select(Household).where(Household.region_path.endswith(VILLAGE + "/"))
                           .order_by(Household.number)).all()
    hh = next((h for h in rows if "elderly_alone" in h.tag_list), None)
    if hh is None:
        hh = rows[0]
        hh.tags = (hh.tags + " elderly_alone").strip()
    # Only one elderly household in the village keeps the assertions exact.
    for other in rows:
        if other is not hh and "elderly_alone" in other.tag_list:
            other.tags = " ".join(t for t in other.tag_list if t != "elderly_alone")
    serial = session.scalar(select(Terminal.serial).where(Terminal.household_id == hh.id))
    hid = hh.id
    session.commit()
    return hid, serial


@pytest.fixture
def city_time(app):
    """A datetime today in city time at HH:MM."""
    import datetime as dt
    from zoneinfo import ZoneInfo

    def _at(hhmm: str):
        zone = ZoneInfo(app.config["SETTINGS"].timezone)
        return dt.datetime.combine(dt.datetime.now(zone).date(), dt.time.fromisoformat(hhmm), zone)
    return _at
