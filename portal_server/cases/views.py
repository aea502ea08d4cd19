"""Staff web of one-stop handling: my desk (overdue first), the case page (timeline, materials
checklist, actions), search, the ledger as xlsx (办件台账), the leaders' supervision list and the
counter form (代办申请)."""
from __future__ import annotations

from flask import (
    Blueprint,
    abort,
    flash,
    g,
    redirect,
    render_template,
    request,
    url_for,
)
from sqlalchemy import select

from portal_server.core import clock, exports
from portal_server.core.api import ApiError
from portal_server.core.auth import roles_required
from portal_server.core.db import session
from portal_server.core.households import Household
from portal_server.services import queries as service_queries

from . import operations as ops
from . import queries
from .models import CHANNEL_NAMES, OPEN, STATUS_NAMES, STATUSES

bp = Blueprint("cases_staff", __name__, url_prefix="/admin/cases", template_folder="templates")

STAFF = ("clerk", "handler", "analyst")
LEVEL_NAMES = {"village": "村便民服务站", "town": "镇便民服务中心", "department": "市直部门"}
#: Ledger export cap: one sheet a county office can open.
LEDGER_MAX = 50000
LEDGER_HEADERS = ["办件号", "事项编码", "事项名称", "申请人", "户号", "所在村", "渠道", "状态", "当前办理", "受理时间",
                  "承诺时限", "办结时间", "时限状态", "督办次数", "评价"]


def _ctx(**kw):
    return dict(STATUS=STATUS_NAMES, CHANNEL=CHANNEL_NAMES, LEVEL=LEVEL_NAMES, light=queries.light,
                LIGHT=queries.LIGHT_NAMES, fmt=clock.fmt, desk_label=ops.desk_label,
                desk_labels=queries.desk_labels, **kw)


@bp.get("/")
@roles_required(*STAFF)
def desk():
    """我的办件台: open cases at my desk, overdue first; search over everything in scope."""
    q, status = request.args.get("q", "").strip(), request.args.get("status", "")
    if status and status not in STATUSES:
        status = ""
    try:
        page = max(1, int(request.args.get("page", 1)))
    except ValueError:
        page = 1
    if q or status:
        query = queries.search(g.user, status or None, q=q or None)
        rows = session.scalars(query.limit(50).offset((page - 1) * 50)).all()
        total = None
    else:
        rows, total = queries.desk(g.user, limit=50, offset=(page - 1) * 50)
    now = clock.now()
    items = []
    if g.user.has_role("clerk") and g.user.region.level == "village":
        codes = service_queries.admitted_codes(g.user.region.parent_id)
        items = [i for i in session.scalars(service_queries.items_query()) if i.local and i.code in codes]
    elif g.user.has_role("clerk"):
        items = list(session.scalars(service_queries.items_query()))
    return render_template("cases/desk.html", **_ctx(rows=rows, total=total, q=q, status=status, page=page,
                                                     now=now, items=items, searching=bool(q or status)))


@bp.post("/new")
@roles_required("clerk")
def new():
    """代办申请 at the counter: household number (户号) and item → a case at my desk."""
    number = request.form.get("household", "").strip()
    hh = session.scalar(select(Household).where(Household.number == number))
    if hh is None:
        flash(f"户号 {number} 不存在", "error")
        return redirect(url_for("cases_staff.desk"))
    try:
        case, _ = ops.apply(request.form.get("service_code", ""), "counter", user=g.user, household_id=hh.id,
                            note=request.form.get("note"), applicant_name=request.form.get("applicant_name") or None,
                            id_number=request.form.get("id_number") or None)
        session.commit()
    except ApiError as e:
        session.rollback()
        flash(e.message, "error")
        return redirect(url_for("cases_staff.desk"))
    flash(f"已受理申请，办件号 {case.number}", "ok")
    return redirect(url_for("cases_staff.case_page", case_id=case.id))


def _load(case_id: int):
    try:
        return queries.load(case_id, g.user)
    except ApiError as e:
        abort(e.status)


@bp.get("/<int:case_id>")
@roles_required(*STAFF)
def case_page(case_id: int):
    """One case: applicant, item, deadline light, intake flags, materials checklist, timeline, actions."""
    case = _load(case_id)
    item = service_queries.item_by_code(case.service_code, include_withdrawn=True)
    allowed = [a for a, (states, _) in ops.TRANSITIONS.items() if case.status in states
               and (g.user.has_role(*ops.LEADER_ROLES) if a == "supervise" else g.user.has_role(*ops.STAFF_ROLES))]
    return render_template("cases/case.html", **_ctx(c=case, item=item, allowed=allowed, OPEN=OPEN,
                                                     ACTION=ops.ACTION_NAMES, now=clock.now(),
                                                     household=case.household))


@bp.post("/<int:case_id>/action")
@roles_required(*STAFF)
def action(case_id: int):
    case = _load(case_id)
    act = request.form.get("action", "")
    score = request.form.get("score")
    try:
        ops.act(case, act, g.user, note=request.form.get("note"), to=request.form.get("to") or None,
                score=int(score) if score and score.isdigit() else None)
        session.commit()
        flash(f"办件 {case.number}：{ops.ACTION_NAMES.get(act, act)}完成", "ok")
    except ApiError as e:
        session.rollback()
        flash(e.message, "error")
    return redirect(url_for("cases_staff.case_page", case_id=case_id))


@bp.post("/<int:case_id>/materials")
@roles_required("clerk", "handler")
def materials(case_id: int):
    case = _load(case_id)
    try:
        ops.check_materials(case, g.user, [int(x) for x in request.form.getlist("received") if x.isdigit()])
        session.commit()
        flash("材料核对已保存", "ok")
    except ApiError as e:
        session.rollback()
        flash(e.message, "error")
    return redirect(url_for("cases_staff.case_page", case_id=case_id))


@bp.get("/supervision")
@roles_required(*STAFF)
def supervision():
    """督办: open cases in scope that are overdue, due within a day, or already supervised."""
    return render_template("cases/supervision.html", **_ctx(rows=queries.supervision(g.user), now=clock.now()))


@bp.get("/ledger.xlsx")
@roles_required(*STAFF)
def ledger():
    """办件台账 as xlsx: every case in scope (filters as the search), one row each."""
    query = queries.search(g.user, request.args.get("status") or None, request.args.get("region") or None,
                           request.args.get("q") or None)
    cases = list(session.scalars(query.limit(LEDGER_MAX)))
    desks, now = queries.desk_labels(cases), clock.now()   # every desk's name in two queries, not one a row
    return exports.xlsx_response("办件台账", LEDGER_HEADERS, (
        [c.number, c.service_code, c.service_name, c.applicant_name, c.household.number, c.household.region.name,
         CHANNEL_NAMES.get(c.channel, c.channel), STATUS_NAMES[c.status], desks.get(c.desk_code, c.desk_code),
         c.created_at, c.deadline, c.completed_at, queries.LIGHT_NAMES[queries.light(c, now)], c.supervised,
         c.score or ""] for c in cases))
