"""JSON API of the service catalogue and bookings (INTERFACES §4)."""
from __future__ import annotations

from flask import g, request
from pydantic import BaseModel, Field
from sqlalchemy import or_, select

from portal_server.core.api import (
    bad_request,
    json_body,
    make_blueprint,
    not_found,
    paginate,
    parse,
)
from portal_server.core import clock, scope
from portal_server.core.auth import (
    api_user_required,
    terminal_required,
    user_or_terminal,
)
from portal_server.core.db import session
from portal_server.core.regions import region_by_code

from . import operations as ops
from . import queries
from .models import ServiceCategory

bp = make_blueprint("services_api", __name__)

MANAGE_ROLES = ("editor",)
COUNTER_ROLES = ("handler", "editor", "grid_worker")


class BookingIn(BaseModel):
    service_code: str = Field(min_length=1, max_length=64)
    slot_id: int


def _category(value: str | None) -> ServiceCategory | None:
    if not value:
        return None
    cat = session.scalar(select(ServiceCategory).where(or_(ServiceCategory.code == value,
                                                           ServiceCategory.name == value)))
    if cat is None:
        raise bad_request(f"unknown category {value!r}", field="category")
    return cat


@bp.get("/services")
def listing():
    """The service catalogue (public): ``?category=`` (code or name, includes sub-categories), ``?q=``."""
    query = queries.items_query(_category(request.args.get("category")), q=request.args.get("q"))
    return paginate(query, queries.item_to_dict, session)


@bp.get("/services/categories")
def categories():
    """The category tree (at most three levels), flat, parents before children."""
    rows = session.scalars(select(ServiceCategory).order_by(ServiceCategory.level, ServiceCategory.sort,
                                                            ServiceCategory.id))
    items = [queries.category_to_dict(c) for c in rows]
    return {"items": items, "total": len(items), "page": 1, "per_page": len(items)}


@bp.get("/services/<code>")
def show(code: str):
    """One service item with every element of the national catalogue."""
    item = queries.item_by_code(code)
    if item is None:
        raise not_found(f"service {code}")
    return queries.item_to_dict(item)


@bp.post("/services")
@api_user_required(*MANAGE_ROLES)
def save():
    """Create or update (by ``code``) one item: fields as the CSV columns; materials and steps may be lists."""
    raw = json_body()
    if isinstance(raw.get("materials"), list):
        raw["materials"] = ops.format_materials([queries.material_to_dict(m) if "form" in m else
                                                 {"name": m.get("name"), "quantity": m.get("quantity", 1),
                                                  "form": "原件" if m.get("original", True) and not m.get("copy") else
                                                  ("复印件" if not m.get("original", True) else "原件和复印件")}
                                                 for m in raw["materials"]])
    if isinstance(raw.get("category"), list):
        raw["category"] = "/".join(raw["category"])
    item, created = ops.save_item(raw, g.user.username, user=g.user)
    session.commit()
    return queries.item_to_dict(item), 201 if created else 200


@bp.post("/services/import")
@api_user_required(*MANAGE_ROLES)
def import_csv():
    """Import a catalogue table (.xlsx or CSV in UTF-8/GBK; body, or multipart ``file``): all rows
    or none; 400 names the first bad row (``row``) and lists every one (``rows``). ``?preview=1``
    checks without writing and returns the preview (counts, new/updated/unchanged/bad rows)."""
    f = request.files.get("file")
    data = f.read() if f else request.get_data()
    if not data:
        raise bad_request("send the CSV as the body or as multipart field file", field="file")
    filename = f.filename if f else ""
    if request.args.get("preview") in ("1", "true"):
        return ops.plan_catalogue(data, g.user, filename).preview()
    result = ops.import_table(data, g.user.username, user=g.user, filename=filename)
    session.commit()
    return result


@bp.get("/services/<code>/slots")
@user_or_terminal
def slots(code: str):
    """Bookable slots for the item: from a box, at its village hall (local items) and town centre;
    staff give ``?region=`` (a village or town code in scope)."""
    item = queries.item_by_code(code)
    if item is None:
        raise not_found(f"service {code}")
    if g.terminal is not None:
        places = ops.places_for(g.terminal, item)
    else:
        region = region_by_code(request.args.get("region", ""))
        if region is None:
            raise bad_request("give ?region= (a village or town code)", field="region")
        scope.require(g.user, region)
        places = [region]
    rows = queries.slots_at([p.id for p in places])
    items = [queries.slot_to_dict(s) for s in rows]
    return {"items": items, "total": len(items), "page": 1, "per_page": len(items)}


@bp.post("/bookings")
@terminal_required
def create_booking():
    """Book a slot from a box: ``service_code``, ``slot_id`` → ``{"id","code"}``.

    409 when the slot is full, past or closed (the message says which)."""
    data = parse(BookingIn)
    b = ops.book(g.terminal, data.service_code, data.slot_id)
    session.commit()
    return queries.booking_to_dict(b), 201


create_booking.__openapi_body__ = BookingIn


def _load(booking_id: int):
    b = queries.booking_get(booking_id)
    if b is None:
        raise not_found(f"booking {booking_id}")
    if g.get("terminal") is not None:
        t = g.terminal
        mine = (t.household_id and b.household_id == t.household_id) or b.terminal_serial == t.serial
        if not mine:
            raise not_found(f"booking {booking_id}")
    else:
        scope.require(g.user, b.slot.region, "预约")
    return b


@bp.get("/bookings")
@user_or_terminal
def list_bookings():
    """A box's own bookings, or (staff) the bookings at places in scope: ``?status=&day=YYYY-MM-DD``."""
    if g.terminal is not None:
        rows = queries.household_bookings(g.terminal.household_id, g.terminal.serial)
        items = [queries.booking_to_dict(b) for b in rows]
        return {"items": items, "total": len(items), "page": 1, "per_page": len(items)}
    import datetime as dt
    day = None
    if request.args.get("day"):
        try:
            day = dt.date.fromisoformat(request.args["day"])
        except ValueError:
            raise bad_request("day must be YYYY-MM-DD", field="day") from None
    return paginate(queries.bookings_in(g.user.scope, day, request.args.get("status"), clock.city_tz()),
                    queries.booking_to_dict, session)


@bp.get("/bookings/<int:booking_id>")
@user_or_terminal
def show_booking(booking_id: int):
    """One booking (a box reads its own)."""
    return queries.booking_to_dict(_load(booking_id))


@bp.post("/bookings/<int:booking_id>/cancel")
@user_or_terminal
def cancel_booking(booking_id: int):
    """Cancel: the box that booked, or staff in scope."""
    b = _load(booking_id)
    actor = f"terminal:{g.terminal.serial}" if g.get("terminal") is not None else g.user.username
    ops.cancel(b, actor)
    session.commit()
    return queries.booking_to_dict(b)


@bp.post("/bookings/<int:booking_id>/serve")
@api_user_required(*COUNTER_ROLES)
def serve_booking(booking_id: int):
    """Staff mark the booking as served at the counter."""
    b = _load(booking_id)
    ops.serve(b, g.user)
    session.commit()
    return queries.booking_to_dict(b)


@bp.post("/slots/<int:slot_id>/close")
@api_user_required(*COUNTER_ROLES)
def close_slot(slot_id: int):
    """Close a slot to new bookings (existing ones stay)."""
    from .models import BookingSlot
    slot = session.get(BookingSlot, slot_id)
    if slot is None:
        raise not_found(f"slot {slot_id}")
    scope.require(g.user, slot.region, "时段")
    ops.set_slot_closed(slot, True, g.user.username)
    session.commit()
    return queries.slot_to_dict(slot)
