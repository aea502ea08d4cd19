"""Reads of the registry, always within the caller's scope (a User or a Scope).

Public for other features (cases, grids): ``person_by_id_number``, ``is_deceased``,
``has_tag``, ``household_members``, ``household_get``.
"""
from __future__ import annotations

import json

from sqlalchemy import and_, bindparam, func, or_, select

from portal_server.core import crypto, scope
from portal_server.core.api import iso
from portal_server.core.audit import AuditEvent
from portal_server.core.db import session
from portal_server.core.households import TAG_NAMES, Household
from portal_server.core.regions import Region, Scope
from portal_server.core.terminals import Terminal

from .models import FINDING_KINDS, STATUS_NAMES, Finding, House, HouseholdHouse, Person


def under(column, path: str):
    """``column`` lies in the subtree ``path`` (which ends with "/"). On SQLite also as a range an
    index can use (SQLite never uses an index for LIKE with an ESCAPE clause); not on PostgreSQL,
    where a locale collation may order "/" against digits differently."""
    prefix = column.startswith(path, autoescape=True)
    if session.get_bind().dialect.name != "sqlite":
        return prefix
    return and_(column >= path, column < path[:-1] + "0", prefix)


def _scoped(who, column):
    return under(column, (who if isinstance(who, Scope) else who.scope).path)


def _code(path: str) -> str:
    return path.rstrip("/").rsplit("/", 1)[-1]


def tag_label(code: str) -> str:
    return TAG_NAMES.get(code, code)


# For other features ------------------------------------------------------------------------------

def _active_first(p) -> int:
    """Sort key when one ID number names several people (moved, re-registered): the active one
    first, then the deceased, then any other status."""
    return {"active": 0, "deceased": 1}.get(p.status, 2)


def _deceased(status: str, tags: str) -> bool:
    """The register's rule for a deceased person: the status, or the tag (set by a clerk)."""
    return status == "deceased" or "deceased" in tags.split()


def person_by_id_number(id_number: str, who=None, include_inactive: bool = True) -> Person | None:
    """The person registered with this ID number (the active record first), optionally only
    inside the scope of ``who``. Used by cases for "deceased / already receiving subsidy" checks."""
    h = crypto.lookup_hash((id_number or "").strip().upper())
    if not h:
        return None
    q = select(Person).where(Person.id_number_hash == h)
    if who is not None:
        q = q.where(scope.filter(who, Person.region_path))
    if not include_inactive:
        q = q.where(Person.status == "active")
    rows = list(session.scalars(q.order_by(Person.id)))
    rows.sort(key=_active_first)
    return rows[0] if rows else None


def person_by_lookup_hash(h: str | None) -> Person | None:
    """The person whose ID number has the keyed hash ``h`` (``core.crypto.lookup_hash``), active first."""
    if not h:
        return None
    rows = list(session.scalars(select(Person).where(Person.id_number_hash == h).order_by(Person.id)))
    rows.sort(key=_active_first)
    return rows[0] if rows else None


_P = Person.__table__
_BY_HASH = select(_P.c.name, _P.c.status, _P.c.tags).where(_P.c.id_number_hash == bindparam("h")).order_by(_P.c.id)


def deceased_name(h: str | None) -> str | None:
    """The name of the person whose ID number has the keyed hash ``h`` when the register lists
    them as deceased (``person_by_lookup_hash`` then ``is_deceased``, as plain rows: one Core
    SELECT on a hot path such as a box's application), else None."""
    if not h:
        return None
    rows = sorted(session.connection().execute(_BY_HASH, {"h": h}), key=_active_first)
    if not rows:
        return None
    p = rows[0]
    return p.name if _deceased(p.status, p.tags) else None


def deceased_in(region: Region) -> dict[str, Person]:
    """ID-number hash → person, for everyone registered as deceased under ``region``."""
    rows = session.scalars(select(Person).where(Person.region_path.startswith(region.path, autoescape=True),
                                                Person.status == "deceased", Person.id_number_hash.is_not(None)))
    return {p.id_number_hash: p for p in rows}


def is_deceased(person_or_id_number) -> bool:
    """True when the person (a Person or an ID number) is registered as deceased."""
    p = person_or_id_number
    if isinstance(p, str):
        p = person_by_id_number(p)
    if p is None:
        return False
    return _deceased(p.status, p.tags)


def has_tag(person: Person, tag: str) -> bool:
    """The person or their household carries ``tag`` (e.g. low_income = already on the subsidy list)."""
    return tag in person.tag_list or tag in person.household.tag_list


def household_get(household_id: int) -> Household | None:
    return session.get(Household, household_id)


def household_members(household_id: int, include_inactive: bool = False) -> list[Person]:
    q = select(Person).where(Person.household_id == household_id)
    if not include_inactive:
        q = q.where(Person.status == "active")
    return list(session.scalars(q.order_by(Person.id)))


def person_get(person_id: int) -> Person | None:
    return session.get(Person, person_id)


# Households ----------------------------------------------------------------------------------------

def _household_conditions(who, region, tag, q, status) -> list:
    conds = [_scoped(who, Household.region_path)]
    if region is not None:
        conds.append(under(Household.region_path, region.path))
    if status and status != "all":
        conds.append(Household.status == status)
    if tag:
        conds.append(or_(Household.tags == tag, Household.tags.startswith(tag + " ", autoescape=True),
                         Household.tags.endswith(" " + tag, autoescape=True),
                         Household.tags.contains(" " + tag + " ", autoescape=True)))
    if q:
        like = q.strip()
        conds.append(or_(Household.head_name.contains(like, autoescape=True),
                         Household.address.contains(like, autoescape=True),
                         Household.number.contains(like, autoescape=True)))
    return conds


def households_query(who, region: Region | None = None, tag: str | None = None, q: str | None = None,
                     status: str = "active", no_box: bool = False):
    """select(Household, terminal serial) within scope, in village order (count: households_count)."""
    stmt = (select(Household, Terminal.serial)
            .outerjoin(Terminal, Terminal.household_id == Household.id)
            .where(*_household_conditions(who, region, tag, q, status)))
    if no_box:
        stmt = stmt.where(Terminal.id.is_(None))
    return stmt.order_by(Household.region_path, Household.id)


def households_count(who, region: Region | None = None, tag: str | None = None, q: str | None = None,
                     status: str = "active", no_box: bool = False) -> int:
    """How many rows ``households_query`` gives (without the join when it is not needed)."""
    if no_box:
        stmt = households_query(who, region, tag, q, status, no_box)
        return session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery()))
    return session.scalar(select(func.count(Household.id)).where(*_household_conditions(who, region, tag, q, status)))


def page(stmt, page_no: int, per_page: int, total: int | None = None) -> tuple[list, int]:
    """One page of a (Household, serial) query and the total."""
    if total is None:
        total = session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery()))
    rows = session.execute(stmt.limit(per_page).offset((page_no - 1) * per_page)).all()
    return rows, total


def household_to_dict(hh: Household, serial: str | None) -> dict:
    """INTERFACES §4.1's listing shape (phone masked)."""
    return {"id": hh.id, "number": hh.number, "region_code": _code(hh.region_path), "address": hh.address,
            "head_name": hh.head_name, "phone": hh.phone_masked, "tags": hh.tag_list, "members": hh.size,
            "terminal": serial, "status": hh.status}


def terminal_of(hh: Household) -> Terminal | None:
    return session.scalar(select(Terminal).where(Terminal.household_id == hh.id))


def released_boxes(household_id: int) -> list[dict]:
    """Boxes released when the household moved out: [{"serial", "at"}] (from the audit trail)."""
    rows = session.scalars(select(AuditEvent).where(AuditEvent.action == "household.move_out",
                                                    AuditEvent.object_type == "household",
                                                    AuditEvent.object_id == str(household_id))
                           .order_by(AuditEvent.id))
    out = []
    for ev in rows:
        try:
            serials = json.loads(ev.detail or "{}").get("released_boxes") or []
        except ValueError:
            serials = []
        out.extend({"serial": s, "at": ev.at} for s in serials)
    return out


def household_detail(hh: Household) -> dict:
    t = terminal_of(hh)
    d = household_to_dict(hh, t.serial if t else None)
    # One household "with its members" (INTERFACES §4.1): the list, as POST takes it; the
    # listing's count stays under members_count. Deceased and moved-out members keep their status.
    d["members_count"] = d["members"]
    d["members"] = [person_to_dict(p) for p in household_members(hh.id, include_inactive=True)]
    d["house"] = house_of(hh.id)
    return d


def person_to_dict(p: Person) -> dict:
    return {"id": p.id, "household_id": p.household_id, "name": p.name, "id_number": p.id_number_masked,
            "relation": p.relation, "birth_date": p.birth_date.isoformat() if p.birth_date else None,
            "tags": p.tag_list, "status": p.status, "died_on": p.died_on.isoformat() if p.died_on else None}


def people_query(who, region: Region | None = None, tag: str | None = None, q: str | None = None,
                 status: str = "active"):
    stmt = select(Person).where(_scoped(who, Person.region_path))
    if tag == "deceased" and status == "active":
        status = "all"  # asking for the deceased means the ones no longer active
    if region is not None:
        stmt = stmt.where(under(Person.region_path, region.path))
    if status and status != "all":
        stmt = stmt.where(Person.status == status)
    if tag:
        stmt = stmt.where(or_(Person.tags == tag, Person.tags.startswith(tag + " ", autoescape=True),
                              Person.tags.endswith(" " + tag, autoescape=True),
                              Person.tags.contains(" " + tag + " ", autoescape=True)))
    if q:
        stmt = stmt.where(Person.name.contains(q.strip(), autoescape=True))
    return stmt.order_by(Person.region_path, Person.id)


# Houses / the household map ----------------------------------------------------------------------

def house_of(household_id: int) -> dict | None:
    h = session.scalar(select(House).join(HouseholdHouse, HouseholdHouse.house_id == House.id)
                       .where(HouseholdHouse.household_id == household_id))
    return {"id": h.id, "number": h.number, "lane": h.lane} if h else None


def village_plan(who, village: Region, online: set[str] | None = None) -> dict:
    """The 电子装户图 of one village: lanes of house plots, each with its households' tags and
    box state. ``online`` is the set of online serials (presence from the fleet)."""
    scope.require(who, village, "住户")
    houses = list(session.scalars(select(House).where(House.region_id == village.id)
                                  .order_by(House.row, House.col)))
    rows = session.execute(
        select(HouseholdHouse.house_id, Household, Terminal.serial)
        .join(Household, Household.id == HouseholdHouse.household_id)
        .outerjoin(Terminal, Terminal.household_id == Household.id)
        .where(Household.region_id == village.id, Household.status == "active")).all()
    by_house: dict[int, list] = {}
    for house_id, hh, serial in rows:
        by_house.setdefault(house_id, []).append((hh, serial))
    online = online or set()
    lanes: dict[tuple[int, str], list] = {}
    for h in houses:
        hhs = by_house.get(h.id, [])
        tags = sorted({t for hh, _s in hhs for t in hh.tag_list})
        serials = [s for _hh, s in hhs if s]
        box = "none" if not serials else ("online" if any(s in online for s in serials) else "offline")
        lanes.setdefault((h.row, h.lane), []).append({
            "id": h.id, "number": h.number, "col": h.col, "tags": tags, "box": box,
            "households": [{"id": hh.id, "head_name": hh.head_name, "number": hh.number} for hh, _s in hhs]})
    # Houses whose households all moved out: the plot says so (and that the box was released).
    moved = session.execute(
        select(HouseholdHouse.house_id, Household.number)
        .join(Household, Household.id == HouseholdHouse.household_id)
        .where(Household.region_id == village.id, Household.status == "moved_out")).all()
    moved_by_house: dict[int, list[str]] = {}
    for house_id, number in moved:
        moved_by_house.setdefault(house_id, []).append(number)
    for lane in lanes.values():
        for h in lane:
            h["moved_out"] = [] if h["households"] else moved_by_house.get(h["id"], [])
    unplaced = session.scalar(select(func.count(Household.id))
                              .outerjoin(HouseholdHouse, HouseholdHouse.household_id == Household.id)
                              .where(Household.region_id == village.id, Household.status == "active",
                                     HouseholdHouse.house_id.is_(None)))
    return {"village": {"code": village.code, "name": village.name},
            "lanes": [{"row": r, "lane": lane, "houses": hs} for (r, lane), hs in sorted(lanes.items())],
            "unplaced": unplaced}


def villages_in(who) -> list[Region]:
    return list(session.scalars(select(Region).where(Region.level == "village",
                                                     scope.filter(who, Region.path)).order_by(Region.code)))


# Data comparison -----------------------------------------------------------------------------------

def findings(who, region: Region | None = None, kind: str | None = None) -> list[Finding]:
    stmt = select(Finding).where(scope.filter(who, Finding.region_path))
    if region is not None:
        stmt = stmt.where(Finding.region_path.startswith(region.path, autoescape=True))
    if kind:
        stmt = stmt.where(Finding.kind == kind)
    return list(session.scalars(stmt.order_by(Finding.kind, Finding.region_path, Finding.id).limit(2000)))


def finding_to_dict(f: Finding) -> dict:
    return {"kind": f.kind, "kind_name": FINDING_KINDS.get(f.kind, f.kind), "region_code": _code(f.region_path),
            "household_id": f.household_id, "person_id": f.person_id, "detail": f.detail,
            "found_at": iso(f.found_at)}


def elderly_alone_households(region: Region) -> list[tuple[int, str, str]]:
    """(id, number, head) of active elderly-alone households under ``region`` (comparison input)."""
    rows = session.execute(select(Household.id, Household.number, Household.head_name)
                           .where(Household.region_path.startswith(region.path, autoescape=True),
                                  Household.status == "active",
                                  and_(Household.tags.contains("elderly_alone")))).all()
    return [tuple(r) for r in rows]


__all__ = [
    "STATUS_NAMES",
    "findings",
    "has_tag",
    "household_get",
    "household_members",
    "household_to_dict",
    "households_query",
    "is_deceased",
    "person_by_id_number",
    "village_plan",
]
