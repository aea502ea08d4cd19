"""The guide on the TV (/tv/guide): now/next of the box's channels, and a channel's week (past
programmes of relayed channels open as catch-up); the live channels (/tv/channels)."""
from __future__ import annotations

import datetime as dt
from urllib.parse import quote

from flask import Blueprint, abort, jsonify, render_template, request

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
    ch = chans[xmltv_id]
    back_days = min(3, ch.get("catchup_days") or 0)  # past days of a channel with catch-up (回看)
    try:
        day = max(-back_days, min(6, int(request.args.get("day", 0))))
    except ValueError:
        day = 0
    now = clock.local(clock.now())
    today = now.date()
    start = clock.day_bounds(today + dt.timedelta(days=day))[0]
    progs = queries.programmes(start, start + dt.timedelta(days=1), [xmltv_id])
    hours = ch.get("catchup_days", 0) * 24
    for p in progs:  # a past programme inside the catch-up window opens as catch-up
        if ch.get("catchup_source") and p["stop"] <= now and p["start"] >= now - dt.timedelta(hours=hours):
            p["catchup_href"] = (f"/tv/channels/watch?ch={xmltv_id}&start={int(p['start'].timestamp())}"
                                 f"&end={int(p['stop'].timestamp())}&title={quote(p['title'])}")
    names = {-1: "昨天", 0: "今天"}
    days = [(i, names.get(i) or f"周{WEEKDAYS[(today + dt.timedelta(days=i)).weekday()]}")
            for i in range(-back_days, 7)]
    return render_template("epg/tv_week.html", ch=ch, progs=progs, hm=_hm, days=days, day=day, now=now)


def register_tv_hooks(app) -> None:
    """Our tiles on the portal's section pages."""
    from stb_app import add_section_action
    add_section_action(app, "live", "直播频道", "/tv/channels/")
    add_section_action(app, "live", "节目指南", "/tv/guide/")


# Live channels on the TV (/tv/channels/): the list with now/next, the player with zapping --------

channels_bp = Blueprint("epg_channels_tv", __name__, url_prefix="/tv/channels", template_folder="templates",
                        static_folder="static", static_url_path="/static")
channels_bp.after_request(keep_terminal_cookie)


def _village(term) -> str | None:
    return term.region_codes()[-1] if term.region_codes() else None


@channels_bp.get("/")
def channel_list():
    """视频直播's channels: number, name, now and next; OK plays."""
    term = page_terminal()
    return render_template("epg/tv_channels.html", rows=queries.box_channels(_village(term)), hm=_hm_epoch)


@channels_bp.get("/watch")
def watch():
    """The channel player: digits (2 s), channel ± and up/down zap; OK shows the banner, OK again
    pauses (timeshift); with ``start``/``end`` (epoch seconds) a past programme plays as catch-up."""
    term = page_terminal()
    chans = queries.box_channels(_village(term))
    xid = request.args.get("ch", "")
    if not chans:
        abort(404)
    current = next((c for c in chans if c["id"] == xid), chans[0])
    catchup = None
    try:
        if request.args.get("start") and request.args.get("end"):
            catchup = {"start": int(request.args["start"]), "end": int(request.args["end"]),
                       "title": request.args.get("title", "")[:60]}
    except ValueError:
        abort(404)
    return render_template("epg/tv_watch.html", chans=chans, current=current, catchup=catchup,
                           catchup_base=queries.catchup_base())


@channels_bp.get("/status.json")
def status_json():
    """Each channel's relay status, polled by the player (the slate when a source is lost)."""
    term = page_terminal()
    resp = jsonify({c["id"]: c["status"] for c in queries.box_channels(_village(term))})
    resp.headers["Cache-Control"] = "no-store"
    return resp


def _hm_epoch(ts: int | None) -> str:
    return clock.fmt(dt.datetime.fromtimestamp(ts, clock.UTC), "%H:%M") if ts else ""
