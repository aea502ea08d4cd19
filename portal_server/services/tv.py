"""TV pages of 下沉服务 (/tv/services/...) and the phone page of an item (/m/services/<code>).

Categories in at most three levels, each item on one screen of large text with a QR code to
the same item on the phone, slot booking with the remote (booking code on screen, cancellable).
"""
from __future__ import annotations


from flask import Blueprint, abort, current_app, render_template, request

from portal_server.core import clock
from portal_server.core.auth import keep_terminal_cookie, page_terminal
from portal_server.core.qr import qr_svg
from stb_app import add_section_action

from . import operations as ops
from . import queries

bp = Blueprint("services_tv", __name__, url_prefix="/tv/services", template_folder="templates")
bp.after_request(keep_terminal_cookie)
phone_bp = Blueprint("services_phone", __name__, url_prefix="/m/services", template_folder="templates")

WEEKDAYS = "一二三四五六日"


def when(ts) -> str:
    local = clock.local(ts)
    return f"{local.month}月{local.day}日 周{WEEKDAYS[local.weekday()]} {local:%H:%M}"


#: Items per page of the category panel (digit keys 1–8 open one).
PER_PAGE = 8


@bp.get("/")
def index():
    """办事指南 on one screen: categories left, the focused category's items right (paged)."""
    page_terminal()
    cats = [(c, queries.items_under(c)) for c in queries.top_categories()]
    return render_template("services/tv_index.html", cats=cats, per_page=PER_PAGE,
                           total=sum(len(i) for _, i in cats), section_name="下沉服务")


@bp.get("/c/<path:code>")
def category(code: str):
    """A category: its sub-categories (tiles) and the items directly in it (rows)."""
    page_terminal()
    cat = queries.category_by_code(code)
    if cat is None:
        abort(404)
    back = f"/tv/services/c/{cat.parent.code}" if cat.parent else "/tv/services/"
    return render_template("services/tv_category.html", cat=cat, subs=queries.children(cat),
                           items=queries.items_directly_in(cat), back=back)


@bp.get("/item/<code>")
def item(code: str):
    """One item on one screen: materials, where to go (for this box's village), time limit, fee;
    我要办理 (apply, when the item may be started from the TV) and 预约; QR to the phone."""
    term = page_terminal()
    it = queries.item_by_code(code)
    if it is None:
        abort(404)
    link = current_app.config["SETTINGS"].public_url.rstrip("/") + f"/m/services/{it.code}"
    return render_template("services/tv_item.html", it=it, d=queries.item_to_dict(it), qr=qr_svg(link),
                           where=where_for(term, it), back="/tv/services/")


def where_for(term, it) -> str:
    """Where this household goes (or whose desk gets its TV application) for the item."""
    village = term.region
    if village is not None and queries.admitted_at_village(village, it):
        return f"本村（{village.name}）便民服务站可以受理"
    return ops.where_to_go(it, village if village is not None and village.level == "village" else None)


@bp.get("/item/<code>/book")
def book(code: str):
    """The slots this household may book for the item (its village hall if local, its town centre)."""
    term = page_terminal()
    it = queries.item_by_code(code)
    if it is None:
        abort(404)
    slots = queries.slots_at([p.id for p in ops.places_for(term, it)])
    return render_template("services/tv_book.html", it=it, slots=slots, when=when,
                           slot_to_dict=queries.slot_to_dict)


@bp.get("/bookings")
def bookings():
    """我的预约: codes, places and times; cancel with OK."""
    term = page_terminal()
    rows = queries.household_bookings(term.household_id, term.serial)
    names = {}
    for b in rows:
        it = queries.item_by_code(b.service_code, include_withdrawn=True)
        names[b.service_code] = it.name if it else b.service_code
    return render_template("services/tv_bookings.html", rows=rows, when=when, names=names,
                           highlight=request.args.get("new"))


@phone_bp.get("/<code>")
def phone_item(code: str):
    """The same item on a phone (reached from the TV's QR code): everything, selectable text."""
    it = queries.item_by_code(code)
    if it is None:
        abort(404)
    return render_template("services/phone_item.html", it=it, d=queries.item_to_dict(it))


def register_tv_hooks(app) -> None:
    """Our tiles on the portal's section pages."""
    add_section_action(app, "services", "办事指南", "/tv/services/")
    add_section_action(app, "services", "我的预约", "/tv/services/bookings")
