"""TV pages of 养老助老 (/tv/care/...): 报平安, 一键求助, elderly services; the checkin state."""
from __future__ import annotations

from flask import Blueprint, render_template, request

from portal_server.core.auth import keep_terminal_cookie, page_terminal
from stb_app import add_section_action, add_state_provider

from . import queries

bp = Blueprint("care_tv", __name__, url_prefix="/tv/care", template_folder="templates")
bp.after_request(keep_terminal_cookie)


@bp.get("/")
def index():
    """The elderly-care section: 报平安 (for households that have it), 一键求助, services."""
    term = page_terminal()
    rows = queries.services_for(term.region) if term.region else []
    return render_template("care/tv_index.html", state=queries.checkin_state(term), services=rows,
                           focus_help=request.args.get("focus") == "help")


@bp.get("/checkin")
def checkin():
    """One screen with one big OK button: 报平安."""
    term = page_terminal()
    return render_template("care/tv_checkin.html", state=queries.checkin_state(term))


def state(terminal) -> dict:
    """The ``checkin`` state of INTERFACES §6's home button."""
    return queries.checkin_state(terminal)


def register_tv_hooks(app) -> None:
    """Our tiles on the portal's section pages and our personal facts on its home screen."""
    add_section_action(app, "elderly", "报平安", "/tv/care/checkin")
    add_section_action(app, "elderly", "一键求助", "/tv/care/?focus=help")
    add_section_action(app, "elderly", "养老服务", "/tv/care/")
    add_state_provider(app, "checkin", state)
