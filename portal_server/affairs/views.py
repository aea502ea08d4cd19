"""Staff web of 社区管理 (村务公开), the town's supervision board, safety contacts and party records."""
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

from portal_server.core import imports
from portal_server.core.api import ApiError
from portal_server.core.auth import roles_required
from portal_server.core.db import session
from portal_server.core.exports import workbook_response, xlsx_response
from portal_server.core.regions import Region, region_by_code

from . import operations as ops
from . import queries
from .models import CONTACT_ROLE_NAMES, CONTACT_ROLES, KIND_NAMES

bp = Blueprint("affairs_staff", __name__, url_prefix="/admin/affairs", template_folder="templates")

STAFF = ("editor", "reviewer", "handler", "grid_worker", "analyst")


def _villages():
    return session.scalars(select(Region).where(g.user.scope.region_filter(Region.path), Region.level == "village")
                           .order_by(Region.code)).all()


def home_card(user):
    pending = queries.awaiting_review(user)
    if pending:  # the review step comes first, as content's review queue does
        return {"title": "待我审核的村务公开", "value": len(pending), "url": url_for("affairs_staff.index"),
                "tone": "warn"}
    if not user.has_role("reviewer", "editor", "analyst") or user.region.level == "village":
        return None
    b = queries.board(user.scope)
    return {"title": "村务公开逾期村", "value": b["late_count"], "url": url_for("affairs_staff.board")}


@bp.get("/")
@roles_required(*STAFF)
def index():
    rows = session.scalars(queries.in_scope(g.user.scope).limit(300)).all()
    return render_template("affairs/index.html", rows=rows, villages=_villages(), KIND=KIND_NAMES,
                           period_name=queries.period_name)


def _redirect_index():
    return redirect(url_for("affairs_staff.index"))


#: What each import is, for the upload and preview pages.
IMPORT_KINDS = {"finance": "财务收支", "subsidy": "惠民补贴名单"}
#: The headers of each import's template workbook, with an example row.
TEMPLATES = {"finance": (["月份", "收支项目", "收入", "支出"], [["2026-10", "村集体光伏电站发电收入", 12860.5, None],
                                                          ["2026-10", "农村人居环境整治保洁费", None, 6500]]),
             "subsidy": (["姓名", "补贴项目", "金额", "备注"], [["王秀英", "高龄津贴", 300, "80周岁以上"]])}


def _plan(kind: str, region, data: bytes, filename: str, period: str):
    if kind == "finance":
        return ops.plan_finance(region, data, g.user, filename)
    return ops.plan_subsidy(region, period, data, g.user, filename)


@bp.post("/import/<kind>")
@roles_required("editor")
def import_csv(kind: str):
    """Step 1 → 2: the uploaded table (.xlsx, or CSV in UTF-8 or GBK) is checked (core.imports) and
    previewed — the rows to import and every bad row with its reason; nothing is written yet."""
    if kind not in IMPORT_KINDS:
        abort(404)
    f = request.files.get("file")
    if f is None or not f.filename:
        flash("请选择要导入的文件（.xlsx 或 CSV）", "error")
        return _redirect_index()
    region = region_by_code(request.form.get("region_code", ""))
    period, title = request.form.get("period", ""), request.form.get("title", "")
    data = f.read()
    try:
        plan = _plan(kind, region, data, f.filename, period)
    except ApiError as e:
        session.rollback()
        flash(f"导入失败：{e.message}", "error")
        return _redirect_index()
    token = None
    if plan.ok:  # kept (Redis, this user only) until 确认导入
        token = imports.stash(g.user, data, f.filename, kind=kind, region_code=region.code, period=period,
                              title=title)
    return render_template("affairs/import_preview.html", kind=kind, what=IMPORT_KINDS[kind], region=region,
                           period=period, title=title, preview=plan.preview(), token=token, filename=f.filename)


@bp.post("/import/<kind>/confirm")
@roles_required("editor")
def import_confirm(kind: str):
    """Step 3: 确认导入 — the previewed file is checked again and written in one transaction (all
    rows or none); the clerk lands on the draft, which waits for review before it is public."""
    stashed = imports.unstash(request.form.get("token", ""), g.user)
    if stashed is None or stashed[2].get("kind") != kind:
        flash("预览已过期或已经导入过，请重新上传", "error")
        return _redirect_index()
    data, filename, meta = stashed
    region = region_by_code(meta.get("region_code", ""))
    try:
        if kind == "finance":
            d = ops.import_finance(region, data, g.user, meta.get("title") or None, filename)
        else:
            d = ops.import_subsidy(region, meta.get("period", ""), data, g.user, meta.get("title", ""), filename)
        session.commit()
    except ApiError as e:
        session.rollback()
        flash(f"导入失败：{e.message}", "error")
        return _redirect_index()
    flash(f"已导入「{d.title}」，等待审核公开", "ok")
    return redirect(url_for("affairs_staff.show", disclosure_id=d.id), 303)


@bp.get("/import/<kind>/template.xlsx")
@roles_required("editor")
def import_template(kind: str):
    """An empty table with the Chinese headers and an example row."""
    if kind not in TEMPLATES:
        abort(404)
    headers, rows = TEMPLATES[kind]
    return xlsx_response(f"{IMPORT_KINDS[kind]}导入模板", headers, rows)


@bp.post("/new")
@roles_required("editor")
def new_text():
    try:
        d = ops.create_text(region_by_code(request.form.get("region_code", "")), request.form.get("kind", ""),
                            request.form.get("period", ""), request.form.get("title", ""),
                            request.form.get("body", ""), g.user)
        session.commit()
        flash("已保存，等待审核公开", "ok")
        return redirect(url_for("affairs_staff.show", disclosure_id=d.id))
    except ApiError as e:
        session.rollback()
        flash(e.message, "error")
    return _redirect_index()


@bp.get("/d/<int:disclosure_id>")
@roles_required(*STAFF)
def show(disclosure_id: int):
    d = queries.get(disclosure_id)
    if d is None or not g.user.scope.covers(d.region):
        abort(404)
    return render_template("affairs/show.html", d=queries.to_dict(d), raw=d,
                           review_problem=ops.review_problem(d, g.user) if d.status == "draft" else None)


@bp.post("/d/<int:disclosure_id>/<action>")
@roles_required("reviewer", "editor")
def act(disclosure_id: int, action: str):
    d = queries.get(disclosure_id)
    if d is None or not g.user.scope.covers(d.region):
        abort(404)
    try:
        if action == "publish":
            ops.publish(d, g.user)
        elif action == "withdraw":
            ops.withdraw(d, g.user)
        else:
            abort(404)
        session.commit()
        flash("已公开" if action == "publish" else "已撤回", "ok")
    except ApiError as e:
        session.rollback()
        flash(e.message, "error")
    return redirect(url_for("affairs_staff.show", disclosure_id=d.id))


@bp.get("/board")
@roles_required(*STAFF)
def board():
    """The supervision board: villages late with their disclosures on top, a chart of late villages
    per town and kind; ``?format=xlsx`` gives the table as a workbook."""
    b = queries.board(g.user.scope)
    kinds = ("finance", "project", "subsidy", "decision")
    if request.args.get("format") == "xlsx":
        rows = [[v["town"], v["name"], v["code"]]
                + [(queries.period_name(k, v["kinds"][k]["latest"]) if v["kinds"][k]["latest"] else "从未公开")
                   + ("（逾期）" if v["kinds"][k]["late"] else "") for k in kinds] for v in b["villages"]]
        return workbook_response("村务公开督办.xlsx", [("督办看板", ["镇", "村", "代码"] + [KIND_NAMES[k] for k in kinds], rows)])
    towns: dict[str, dict[str, int]] = {}
    for v in b["villages"]:
        t = towns.setdefault(v["town"], {k: 0 for k in kinds})
        for k in v["late"]:
            t[k] += 1
    chart = {"categories": list(towns),
             "series": [{"name": KIND_NAMES[k], "data": [towns[t][k] for t in towns]} for k in kinds]}
    return render_template("affairs/board.html", board=b, KIND=KIND_NAMES, chart=chart,
                           period_name=queries.period_name)


@bp.route("/safety", methods=["GET", "POST"])
@roles_required("editor", "handler", "grid_worker")
def safety():
    if request.method == "POST":
        try:
            ops.add_contact(region_by_code(request.form.get("region_code", "")), request.form.get("role", ""),
                            request.form.get("name", ""), request.form.get("phone", ""),
                            request.form.get("duty", ""), g.user)
            session.commit()
            flash("已添加", "ok")
        except ApiError as e:
            session.rollback()
            flash(e.message, "error")
        return redirect(url_for("affairs_staff.safety"))
    from .models import SafetyContact
    rows = session.scalars(select(SafetyContact).where(g.user.scope.region_filter(SafetyContact.region_path))
                           .order_by(SafetyContact.region_path, SafetyContact.role).limit(500)).all()
    return render_template("affairs/safety.html", rows=rows, villages=_villages(), roles=CONTACT_ROLES,
                           ROLE=CONTACT_ROLE_NAMES)


@bp.get("/party")
@roles_required(*STAFF)
def party():
    """Study records of the households in scope (branch secretaries)."""
    month = request.args.get("month") or None
    return render_template("affairs/party.html", rows=queries.records_in(g.user.scope, month), month=month)
