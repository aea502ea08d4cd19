"""The guide on the TV (/tv/guide): now/next of the box's channels, and a channel's week."""
from __future__ import annotations

import datetime as dt

from flask import Blueprint, abort, render_template, request

from portal_server.core import clock
from portal_server.core.auth import keep_terminal_cookie, page_terminal

from . import queries

bp = Blueprint("epg_tv", __name__, url_prefix="/tv/guide", template_folder="templates")
bp.after_request(keep_terminal_cookie)
WEEKDAYS = "一二三四五六日"


def _hm(ts) -> str:
    return clock.fmt(ts, "%H:%M")


@bp.get("/")
def index():
    """Now and next on the box's channels (city, county relays, its village hall)."""
    term = page_terminal()
    village = term.region_codes()[-1] if term.region_codes() else None
    ids = [c["id"] for c in queries.channels(village)]
    rows = queries.now_next(channel_ids=ids)
    return render_template("epg/tv_guide.html", rows=rows, hm=_hm)


@bp.get("/<xmltv_id>")
def week(xmltv_id: str):
    """One channel's week, a day per page (``?day=0..6``)."""
    term = page_terminal()
    village = term.region_codes()[-1] if term.region_codes() else None
    chans = {c["id"]: c for c in queries.channels(village)}
    if xmltv_id not in chans:
        abort(404)
    try:
        day = max(0, min(6, int(request.args.get("day", 0))))
    except ValueError:
        day = 0
    today = clock.today()
    start = clock.day_bounds(today + dt.timedelta(days=day))[0]
    progs = queries.programmes(start, start + dt.timedelta(days=1), [xmltv_id])
    days = [(i, f"周{WEEKDAYS[(today + dt.timedelta(days=i)).weekday()]}" if i else "今天") for i in range(7)]
    return render_template("epg/tv_week.html", ch=chans[xmltv_id], progs=progs, hm=_hm, days=days,
                           day=day, now=clock.local(clock.now()))


def register_tv_hooks(app) -> None:
    """Our tiles on the portal's section pages."""
    from stb_app import add_section_action
    add_section_action(app, "live", "节目指南", "/tv/guide/")
