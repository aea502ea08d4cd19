"""Jobs of the registry: the nightly data comparison (比对) of every town, and its checks that
read other features (care's check-in history)."""
from __future__ import annotations

from flask import current_app
from sqlalchemy import select

from device_fleet import queries as fleet_queries
from portal_server.care import queries as care_queries
from portal_server.core import clock
from portal_server.core.db import session
from portal_server.core.regions import Region, region_by_code

from . import operations as ops
from . import queries

#: City hour at which the periodic job compares (it is scheduled hourly and acts once a night).
NIGHT_HOUR = 2


def online_serials() -> set[str]:
    """Boxes online now; an unreachable Redis shows every box as offline rather than failing."""
    try:
        return fleet_queries.online_serials()
    except Exception:  # noqa: BLE001 - the map still draws without presence
        return set()


def elderly_without_checkins(region: Region) -> list[tuple[str, int, int | None, str]]:
    """Elderly-alone households that never checked in (care's data)."""
    rows = queries.elderly_alone_households(region)
    last = care_queries.last_checkin_days([r[0] for r in rows])
    return [("elderly_no_checkin", hid, None, f"{number}（户主 {head}）为独居老人户，没有任何报平安记录")
            for hid, number, head in rows if hid not in last]


def compare_region(region: Region) -> int:
    """Run the comparison of one region now (the caller commits)."""
    extra = tuple(current_app.extensions.get("registry_comparison_checks", ()))
    return ops.run_comparison(region, extra_checks=(elderly_without_checkins, *extra))


def compare_all(force: bool = False) -> int:
    """Periodic (hourly): at night, refresh every town's comparison report."""
    if not force and clock.local(clock.now()).hour != NIGHT_HOUR:
        return 0
    n = 0
    for town in session.scalars(select(Region).where(Region.level == "town").order_by(Region.code)):
        n += compare_region(town)
        session.commit()
    return n


def compare_code(code: str) -> int:
    """On demand from the staff web (a job id per region)."""
    region = region_by_code(code)
    if region is None:
        return 0
    n = compare_region(region)
    session.commit()
    return n
