"""Reads of the service catalogue and bookings (scoped where they hold residents' data)."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import bindparam, select

from portal_server.core.api import iso
from portal_server.core.db import session, utcnow
from portal_server.core.regions import Scope

from .models import (
    BOOKING_STATUS_NAMES,
    HANDLE_LEVEL_NAMES,
    Booking,
    BookingSlot,
    ServiceAdmission,
    ServiceCategory,
    ServiceItem,
)


def item_by_code(code: str, include_withdrawn: bool = False) -> ServiceItem | None:
    q = select(ServiceItem).where(ServiceItem.code == code)
    if not include_withdrawn:
        q = q.where(ServiceItem.active.is_(True))
    return session.scalar(q)


_ITEMS, _ADMISSIONS = ServiceItem.__table__, ServiceAdmission.__table__
_ITEM_ROW = select(_ITEMS).where(_ITEMS.c.code == bindparam("code"), _ITEMS.c.active.is_(True))
_ADMITTED = select(_ADMISSIONS.c.id).where(_ADMISSIONS.c.town_id == bindparam("town_id"),
                                           _ADMISSIONS.c.service_code == bindparam("code"))


def item_row(code: str):
    """An active item as a plain row (its columns as attributes, as on ``ServiceItem``), read with
    one Core SELECT: for hot paths such as a box's application. None when unknown or withdrawn."""
    return session.connection().execute(_ITEM_ROW, {"code": code}).first()


def admitted(town_id: int | None, code: str) -> bool:
    """True when item ``code`` is on the admission list (准入清单) of town ``town_id``."""
    return town_id is not None and session.connection().execute(
        _ADMITTED, {"town_id": town_id, "code": code}).first() is not None


def category_by_code(code: str) -> ServiceCategory | None:
    return session.scalar(select(ServiceCategory).where(ServiceCategory.code == code))


def children(parent: ServiceCategory | None) -> list[ServiceCategory]:
    """Sub-categories of ``parent`` (top level for None) that hold at least one active item."""
    q = select(ServiceCategory).where(
        ServiceCategory.parent_id == parent.id if parent else ServiceCategory.parent_id.is_(None))
    rows = list(session.scalars(q.order_by(ServiceCategory.sort, ServiceCategory.id)))
    return [c for c in rows if _has_items(c)]


def _descendant_ids(cat: ServiceCategory) -> list[int]:
    ids, frontier = [cat.id], [cat.id]
    while frontier:
        frontier = list(session.scalars(select(ServiceCategory.id).where(ServiceCategory.parent_id.in_(frontier))))
        ids += frontier
    return ids


def _has_items(cat: ServiceCategory) -> bool:
    return session.scalar(select(ServiceItem.id).where(ServiceItem.category_id.in_(_descendant_ids(cat)),
                                                       ServiceItem.active.is_(True)).limit(1)) is not None


def items_query(category: ServiceCategory | None = None, deep: bool = True, q: str | None = None):
    """Active items, optionally of a category (and its sub-categories when ``deep``)."""
    query = select(ServiceItem).where(ServiceItem.active.is_(True))
    if category is not None:
        ids = _descendant_ids(category) if deep else [category.id]
        query = query.where(ServiceItem.category_id.in_(ids))
    if q:
        query = query.where(ServiceItem.name.contains(q, autoescape=True))
    return query.order_by(ServiceItem.code)


def items_directly_in(category: ServiceCategory) -> list[ServiceItem]:
    return list(session.scalars(items_query(category, deep=False)))


def material_to_dict(m: dict) -> dict:
    form = m.get("form", "原件")
    return {"name": m["name"], "quantity": m.get("quantity", 1), "form": form,
            "original": form != "复印件", "copy": form != "原件"}


def item_to_dict(item: ServiceItem) -> dict:
    """The API shape of INTERFACES §4 plus the other elements of the national catalogue."""
    return {"code": item.code, "name": item.name, "type": item.item_type,
            "category": " / ".join(item.category.path_names()), "category_code": item.category.code,
            "department": item.department, "implementer": item.implementer, "basis": item.basis,
            "conditions": item.conditions, "materials": [material_to_dict(m) for m in item.materials],
            "steps": item.steps, "time_limit_days": item.promised_days,
            "statutory_days": item.statutory_days, "promised_days": item.promised_days,
            "fee": item.fee, "fee_basis": item.fee_basis, "location": item.location, "hours": item.hours,
            "visits": item.visits, "phone": item.phone, "local": item.local,
            "handle_level": item.handle_level, "handle_level_name": HANDLE_LEVEL_NAMES.get(item.handle_level, ""),
            "department_code": item.department_code, "tv_apply": item.tv_apply, "subsidy": item.subsidy}


def admitted_codes(town_id: int) -> set[str]:
    """The town's admission list (准入清单): item codes its village halls may receive."""
    return set(session.scalars(select(ServiceAdmission.service_code).where(ServiceAdmission.town_id == town_id)))


def admitted_at_village(village, item: ServiceItem) -> bool:
    """True when the village's hall may receive ``item`` (a village-level item on its town's list)."""
    if village is None or village.level != "village" or not item.local:
        return False
    return admitted(village.parent_id, item.code)


def top_categories() -> list[ServiceCategory]:
    """Top-level categories holding active items, in catalogue order."""
    return children(None)


def items_under(cat: ServiceCategory) -> list[ServiceItem]:
    """Active items of ``cat`` and its sub-categories, by code."""
    return list(session.scalars(items_query(cat)))


def category_to_dict(c: ServiceCategory) -> dict:
    return {"code": c.code, "name": c.name, "level": c.level,
            "parent": c.parent.code if c.parent else None}


def slots_at(region_ids: list[int], now: dt.datetime | None = None, days: int = 7) -> list[BookingSlot]:
    """Future slots at these places within ``days`` days, earliest first."""
    now = (now or utcnow()).astimezone(dt.UTC)
    if not region_ids:
        return []
    rows = session.scalars(select(BookingSlot).where(
        BookingSlot.region_id.in_(region_ids), BookingSlot.starts_at > now,
        BookingSlot.starts_at < now + dt.timedelta(days=days)).order_by(BookingSlot.starts_at, BookingSlot.region_id))
    # At the same time, the village hall (nearer for old people) comes before the town centre.
    return sorted(rows, key=lambda s: (s.starts_at, s.region.level != "village"))


def slot_to_dict(s: BookingSlot) -> dict:
    place = s.region.name + ("便民服务站" if s.region.level == "village" else "便民服务中心")
    return {"id": s.id, "place": place, "region_code": s.region.code, "level": s.region.level,
            "starts_at": iso(s.starts_at), "ends_at": iso(s.ends_at), "capacity": s.capacity,
            "booked": s.booked, "available": max(0, s.capacity - s.booked) if not s.closed else 0,
            "closed": s.closed}


def booking_get(booking_id: int) -> Booking | None:
    return session.get(Booking, booking_id)


def booking_to_dict(b: Booking) -> dict:
    item = item_by_code(b.service_code, include_withdrawn=True)
    return {"id": b.id, "code": b.code, "status": b.status, "status_name": BOOKING_STATUS_NAMES[b.status],
            "service_code": b.service_code, "service_name": item.name if item else b.service_code,
            "slot": slot_to_dict(b.slot), "household_id": b.household_id,
            "created_at": iso(b.created_at), "served_at": iso(b.served_at)}


def household_bookings(household_id: int | None, serial: str | None = None, limit: int = 20) -> list[Booking]:
    q = select(Booking)
    if household_id:
        q = q.where(Booking.household_id == household_id)
    else:
        q = q.where(Booking.terminal_serial == serial)
    return list(session.scalars(q.order_by(Booking.id.desc()).limit(limit)))


def bookings_in(scope: Scope, day: dt.date | None = None, status: str | None = None, zone=None):
    """Bookings at places inside ``scope`` (optionally of one local day / status), by time."""
    q = select(Booking).join(BookingSlot, BookingSlot.id == Booking.slot_id).where(
        scope.region_filter(BookingSlot.region_path))
    if day is not None:
        start = dt.datetime.combine(day, dt.time(0), zone).astimezone(dt.UTC)
        q = q.where(BookingSlot.starts_at >= start, BookingSlot.starts_at < start + dt.timedelta(days=1))
    if status:
        q = q.where(Booking.status == status)
    return q.order_by(BookingSlot.starts_at, Booking.id)
