"""TV pages of 社区管理 (村务公开), 平安社区 and 社区党建 under /tv/affairs/...

Published disclosures of the box's village with their publication date, each as a large table;
safety contacts and alert history; party study materials confirmed with OK.
"""
from __future__ import annotations

from flask import Blueprint, abort, render_template

from portal_server.core import clock
from portal_server.core.auth import keep_terminal_cookie, page_terminal
from portal_server.core.db import utcnow
from stb_app import add_section_action

from . import queries

bp = Blueprint("affairs_tv", __name__, url_prefix="/tv/affairs", template_folder="templates")
bp.after_request(keep_terminal_cookie)


@bp.get("/")
def index():
    """村务公开: the village's published disclosures, newest first."""
    term = page_terminal()
    rows = [queries.to_dict(d) for d in queries.published_for(term.region)]
    return render_template("affairs/tv_index.html", rows=rows, village=term.region)


@bp.get("/d/<int:disclosure_id>")
def show(disclosure_id: int):
    term = page_terminal()
    d = queries.get(disclosure_id)
    if d is None or d.status != "published" or d.region_id != term.region_id:
        abort(404)
    return render_template("affairs/tv_show.html", d=queries.to_dict(d))


@bp.get("/safety")
def safety():
    """平安社区: whom to call, and the village's alert history."""
    term = page_terminal()
    return render_template("affairs/tv_safety.html", contacts=queries.contacts_for(term.region),
                           alerts=queries.alert_history(term.region), village=term.region)


@bp.get("/party")
def party():
    """社区党建: this month's study materials (and earlier ones), confirm with OK."""
    term = page_terminal()
    month = clock.fmt(utcnow(), "%Y-%m")
    mats = queries.materials_for(term.region)
    return render_template("affairs/tv_party.html", mats=mats, month=month,
                           studied=queries.studied_ids(term.household_id))


def register_tv_hooks(app) -> None:
    """Our tiles on the portal's section pages."""
    add_section_action(app, "affairs", "村务公开", "/tv/affairs/")
    add_section_action(app, "safety", "联系民警与调解员", "/tv/affairs/safety")
    add_section_action(app, "party", "党员学习", "/tv/affairs/party")
