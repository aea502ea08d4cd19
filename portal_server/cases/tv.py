"""TV pages of 我的办件 (/tv/cases/...): each case's progress in plain words, its steps, and the
evaluation with the colour keys. The home screen's notice line says when a case moved."""
from __future__ import annotations

import datetime as dt

from flask import Blueprint, abort, current_app, render_template, request
from itsdangerous import BadSignature, URLSafeSerializer

from portal_server.core import clock
from portal_server.core.auth import keep_terminal_cookie, page_terminal
from portal_server.core.qr import qr_svg

from . import operations as ops
from . import queries
from .models import STATUS_NAMES

bp = Blueprint("cases_tv", __name__, url_prefix="/tv/cases", template_folder="templates")
bp.after_request(keep_terminal_cookie)
phone_bp = Blueprint("cases_phone", __name__, url_prefix="/m/cases", template_folder="templates")

#: What each step means to the resident (the timeline on the TV).
STEP_WORDS = {"submit": "提交申请", "accept": "工作人员已受理", "return": "退回", "forward": "转交办理",
              "suspend": "暂停办理", "resume": "恢复办理", "complete": "办理完成", "supervise": "领导督办",
              "follow_up": "工作人员回访", "evaluate": "您已评价", "archive": "归档", "materials": "核对材料"}
SCORES = {"red": 1, "yellow": 3, "green": 5}


def when(ts) -> str:
    return clock.fmt(ts, "%m月%d日 %H:%M")


def _signer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt="ctv-cases-phone")


def phone_link(household_id: int) -> str:
    """The QR code's link: 我的办件 of this household on a phone (signed, read-only)."""
    base = current_app.config["SETTINGS"].public_url.rstrip("/")
    return f"{base}/m/cases/{_signer().dumps(household_id)}"


@bp.get("/")
def index():
    """我的办件: every case of this household with its progress in plain words; QR to the phone."""
    term = page_terminal()
    rows = queries.household_cases(term.household_id) if term.household_id else []
    qr = qr_svg(phone_link(term.household_id)) if term.household_id else ""
    return render_template("cases/tv_cases.html", rows=rows, PLAIN=queries.PLAIN, when=when, qr=qr,
                           light=queries.light, section_name="我的办件")


@phone_bp.get("/<token>")
def phone(token: str):
    """The same 我的办件 on a phone (from the TV's QR code): each case with its steps."""
    try:
        household_id = _signer().loads(token)
    except BadSignature:
        abort(404)
    rows = queries.household_cases(household_id)
    return render_template("cases/phone_cases.html", rows=rows, PLAIN=queries.PLAIN, when=when, STEP=STEP_WORDS,
                           desk_labels=queries.desk_labels(rows))


@bp.get("/<int:case_id>")
def show(case_id: int):
    """One case: item, number, desk, deadline, every step; evaluate with the colour keys."""
    term = page_terminal()
    case = queries.get(case_id)
    if case is None or case.household_id != term.household_id:
        abort(404)
    return render_template("cases/tv_case.html", c=case, PLAIN=queries.PLAIN, when=when, STEP=STEP_WORDS,
                           desk=ops.desk_label(case), light=queries.light(case), STATUS=STATUS_NAMES,
                           new=bool(request.args.get("new")), can_rate=case.status in ("completed", "followed_up"),
                           section_name="我的办件")


def state(terminal) -> dict:
    """Home screen notices: cases that moved in the last three days, and cases waiting for a rating."""
    if not terminal.household_id:
        return {}
    rows = queries.household_cases(terminal.household_id, limit=10)
    notices = []
    recent = clock.now() - dt.timedelta(days=3)
    for c in rows:
        if c.status in ("completed", "followed_up"):
            notices.append({"text": f"您的办件「{c.service_name}」已办结，请评价", "url": f"/tv/cases/{c.id}"})
        elif c.status in ("accepted", "returned", "suspended") and clock.aware(c.updated_at) >= recent:
            notices.append({"text": f"您的办件「{c.service_name}」{queries.PLAIN[c.status]}", "url": f"/tv/cases/{c.id}"})
    return {"open_cases": sum(1 for c in rows if c.status in ("submitted", "accepted", "suspended")),
            "notices": notices[:3]}


def register_tv_hooks(app) -> None:
    """我的办件 on the 下沉服务 section page; our notices on the home screen."""
    from stb_app import add_section_action, add_state_provider
    add_section_action(app, "services", "我的办件", "/tv/cases/")
    add_state_provider(app, "cases", state)
