"""Staff web of the registry (/admin/households, /admin/users, /admin/audit) and the installer's
phone pages (/m/households). Thin: parse the form, call operations/queries, commit once, render."""
from __future__ import annotations

import datetime as dt

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    url_for,
)
from sqlalchemy import select

from device_fleet import operations as fleet_ops
from portal_server.care import queries as care_queries
from portal_server.core import clock, exports, imports, scope
from portal_server.core.accounts import (
    ROLE_NAMES,
    ROLES,
    Department,
    User,
    user_by_username,
)
from portal_server.core.api import ApiError
from portal_server.core.audit import AuditEvent
from portal_server.core.auth import login_required, roles_required
from portal_server.core.db import session
from portal_server.core.households import TAG_NAMES
from portal_server.core.regions import Region, region_by_code
from portal_server.feedback import queries as feedback_queries

from . import operations as ops
from . import queries, tasks
from .models import FINDING_KINDS, RELATIONS, STATUS_NAMES

bp = Blueprint("registry", __name__, url_prefix="/admin", template_folder="templates")
m_bp = Blueprint("registry_m", __name__, url_prefix="/m/households", template_folder="templates")

PER_PAGE = 50
HOUSEHOLD_TAGS = ("elderly_alone", "low_income", "disabled", "left_behind_child", "veteran")
EXPORT_HEADERS = ["户号", "村代码", "地址", "户主姓名", "联系电话", "标签", "人数", "终端"]


@bp.app_context_processor
def _names():
    return {"TAG_NAMES": TAG_NAMES, "HOUSEHOLD_TAGS": HOUSEHOLD_TAGS, "STATUS_NAMES": STATUS_NAMES,
            "RELATIONS": RELATIONS, "FINDING_KINDS": FINDING_KINDS}


def _fail(exc: ApiError) -> None:
    flash(exc.message, "error")


def _scoped_region(code: str | None) -> Region | None:
    if not code:
        return None
    r = region_by_code(code)
    if r is None or not scope.covers(g.user, r):
        abort(403)
    return r


def _household_or_403(household_id: int):
    hh = queries.household_get(household_id)
    if hh is None:
        abort(404)
    if not scope.covers(g.user, hh.region):
        abort(403)
    return hh


# Households -------------------------------------------------------------------------------------

@bp.get("/households")
@roles_required(*ops.READ_ROLES)
def households():
    """Search, tag filter, paging and the xlsx export of the list."""
    region = _scoped_region(request.args.get("region"))
    tag = request.args.get("tag") or None
    if tag and tag not in TAG_NAMES:
        tag = None
    q = request.args.get("q", "").strip()
    status = request.args.get("status", "active")
    args = (g.user, region, tag, q, status, bool(request.args.get("no_box")))
    stmt = queries.households_query(*args)
    if request.args.get("format") == "xlsx":
        rows = session.execute(stmt).all()
        return exports.xlsx_response("住户名单", EXPORT_HEADERS, (
            [hh.number, queries._code(hh.region_path), hh.address, hh.head_name, hh.phone_masked,
             [TAG_NAMES.get(t, t) for t in hh.tag_list], hh.size, serial or "无"] for hh, serial in rows))
    try:
        page_no = max(1, int(request.args.get("page", 1)))
    except ValueError:
        page_no = 1
    rows, total = queries.page(stmt, page_no, PER_PAGE, queries.households_count(*args))
    args = {k: v for k, v in request.args.items() if k != "page"}
    return render_template("registry/households.html", rows=rows, total=total, page=page_no,
                           pages=max(1, (total + PER_PAGE - 1) // PER_PAGE), args=args, q=q, tag=tag,
                           region=region, villages=queries.villages_in(g.user), can_write=g.user.has_role(*ops.WRITE_ROLES))


@bp.route("/households/new", methods=["GET", "POST"])
@roles_required(*ops.WRITE_ROLES)
def household_new():
    form = request.form
    if request.method == "POST":
        try:
            hh = ops.create_household(g.user, {"region_code": form.get("region_code"), "address": form.get("address"),
                                               "head_name": form.get("head_name"), "phone": form.get("phone"),
                                               "tags": form.getlist("tags"),
                                               "members": [{"name": form.get("head_name"), "relation": "户主",
                                                            "id_number": form.get("id_number")}]})
            session.commit()
            flash(f"已添加住户 {hh.number}", "ok")
            return redirect(url_for("registry.household", household_id=hh.id))
        except ApiError as exc:
            session.rollback()
            _fail(exc)
    return render_template("registry/household_form.html", villages=queries.villages_in(g.user), form=form)


def _household_page(hh, phone: str | None = None):
    term = queries.terminal_of(hh)
    online = tasks.online_serials() if term else set()
    return render_template(
        "registry/household.html", hh=hh, term=term, online=term is not None and term.serial in online,
        members=queries.household_members(hh.id, include_inactive=True), house=queries.house_of(hh.id),
        orders=[feedback_queries.order_to_dict(o, with_events=False) for o in feedback_queries.household_orders(hh.id)],
        care_tasks=care_queries.household_tasks(hh.id),
        last_checkin=care_queries.last_checkin_days([hh.id]).get(hh.id), phone=phone, fmt=clock.fmt,
        released=queries.released_boxes(hh.id) if hh.status != "active" else [],
        panels=[p for p in (fn(hh.id) for fn in current_app.extensions.get("registry_household_panels", ())) if p],
        can_write=g.user.has_role(*ops.WRITE_ROLES))


@bp.get("/households/<int:household_id>")
@roles_required(*ops.READ_ROLES)
def household(household_id: int):
    """Members, tags, box, feedback and care history of one household."""
    return _household_page(_household_or_403(household_id))


@bp.post("/households/<int:household_id>/<action>")
@roles_required(*ops.WRITE_ROLES)
def household_action(household_id: int, action: str):
    """edit · add_member · member (deceased / moved out) · move_out · unmask."""
    hh = _household_or_403(household_id)
    f = request.form
    try:
        if action == "edit":
            ops.update_household(g.user, hh, {"address": f.get("address"), "head_name": f.get("head_name"),
                                              "phone": f.get("phone") or None, "tags": f.getlist("tags")}
                                 if f.get("phone") else {"address": f.get("address"), "head_name": f.get("head_name"),
                                                          "tags": f.getlist("tags")})
            flash("已保存", "ok")
        elif action == "add_member":
            ops.add_person(g.user, hh, {"name": f.get("name"), "id_number": f.get("id_number"),
                                        "relation": f.get("relation"), "birth_date": f.get("birth_date"),
                                        "tags": f.getlist("tags")})
            flash("已添加成员", "ok")
        elif action == "member":
            p = queries.person_get(int(f.get("person_id", 0)))
            if p is None or p.household_id != hh.id:
                abort(404)
            if f.get("what") == "deceased":
                ops.mark_deceased(g.user, p, ops._parse_date(f.get("died_on"), "died_on"))
                flash(f"已登记 {p.name} 去世", "ok")
            elif f.get("what") == "moved_out":
                ops.move_out_person(g.user, p)
                flash(f"{p.name} 已迁出", "ok")
        elif action == "move_out":
            term = queries.terminal_of(hh)
            if term is not None and not f.get("release_box"):
                flash(f"该户的机顶盒 {term.serial} 将解除绑定，请勾选确认后再办理迁出", "error")
                return redirect(url_for("registry.household", household_id=hh.id))
            ops.move_out_household(g.user, hh, f.get("note", ""))
            flash(f"{hh.number} 已整户迁出" + (f"，机顶盒 {term.serial} 已解除绑定，回到配对界面" if term else ""), "ok")
        elif action == "unmask":
            phone = ops.unmask(g.user, hh, "phone", f.get("reason") or "住户页面查看")
            session.commit()
            return _household_page(hh, phone=phone)
        else:
            abort(404)
        session.commit()
    except ApiError as exc:
        session.rollback()
        _fail(exc)
    return redirect(url_for("registry.household", household_id=hh.id))


# Import: upload → preview → confirm ---------------------------------------------------------------

@bp.route("/households/import", methods=["GET", "POST"])
@roles_required(*ops.WRITE_ROLES)
def households_import():
    """Step 1: upload; step 2: the preview (new/updated/unchanged/bad rows); step 3: confirm."""
    if request.method == "GET":
        job = request.args.get("job")
        if job and imports.status(job, g.user) is None:
            flash("找不到该导入任务（已过期或不是您发起的）", "error")
            job = None
        return render_template("registry/import.html", preview=None, job=job)
    token = request.form.get("token", "")
    if token:  # confirm a previewed upload (kept by core.imports.stash for this user only)
        # The rows are checked again and written by a background job (one transaction); the page
        # it redirects to polls the job's progress and then shows the counts or the reason.
        job = imports.start_stashed(token, g.user, "portal_server.registry.operations:run_household_import", "户")
        if job is None:
            flash("上传的文件已过期或已经导入过，请重新上传", "error")
            return redirect(url_for("registry.households_import"))
        return redirect(url_for("registry.households_import", job=job), 303)
    f = request.files.get("file")
    if f is None or not f.filename:
        flash("请选择要上传的文件", "error")
        return render_template("registry/import.html", preview=None), 400
    data = f.read()
    try:
        plan = ops.plan_household_import(g.user, data, f.filename)
    except ApiError as exc:
        _fail(exc)
        return render_template("registry/import.html", preview=None), 400
    token = imports.stash(g.user, data, f.filename) if plan.ok else None
    return render_template("registry/import.html", preview=plan.preview(), token=token, filename=f.filename)


@bp.get("/households/import/template.xlsx")
@roles_required(*ops.WRITE_ROLES)
def import_template():
    """An empty table with the right Chinese headers and one example row."""
    code = g.user.region.code if g.user.region.level == "village" else "990101001001"
    return exports.xlsx_response("住户导入模板", ["村代码", "地址", "户主姓名", "联系电话", "标签", "户主身份证号"],
                                 [[code, "1组1号", "张三", "13800001234", "独居老人、低保户", ""]])


# The household map and the data comparison ------------------------------------------------------------

@bp.get("/households/map")
@roles_required(*ops.READ_ROLES)
def household_map():
    """电子装户图: a village's lanes of house plots coloured by tags and box state."""
    villages = queries.villages_in(g.user)
    code = request.args.get("village") or (villages[0].code if villages else None)
    village = _scoped_region(code) if code else None
    if village is not None and village.level != "village":
        abort(404)
    plan = queries.village_plan(g.user, village, tasks.online_serials()) if village else None
    layers = []
    if village is not None:
        layers = [x for x in (fn(g.user, village) for fn in current_app.extensions.get("registry_map_layers", ()))
                  if x]
    return render_template("registry/map.html", plan=plan, villages=villages, village=village, layers=layers,
                           here=url_for("registry.household_map", village=village.code) if village else None)


@bp.route("/households/compare", methods=["GET", "POST"])
@roles_required(*ops.READ_ROLES)
def compare():
    """数据比对: the region's findings; POST runs the comparison now."""
    region = _scoped_region(request.values.get("region")) or g.user.region
    if request.method == "POST":
        n = tasks.compare_region(region)
        session.commit()
        flash(f"比对完成：发现 {n} 条问题", "ok")
        return redirect(url_for("registry.compare", region=region.code))
    rows = queries.findings(g.user, region, request.args.get("kind") or None)
    if request.args.get("format") == "xlsx":
        return exports.xlsx_response("数据比对", ["问题", "村代码", "说明", "户ID", "发现时间"],
                                     ([FINDING_KINDS.get(f.kind, f.kind), queries._code(f.region_path), f.detail,
                                       f.household_id, clock.fmt(f.found_at)] for f in rows))
    return render_template("registry/compare.html", rows=rows, region=region, fmt=clock.fmt,
                           kind=request.args.get("kind", ""))


# Staff accounts --------------------------------------------------------------------------------------

def _users_in_scope():
    return list(session.scalars(select(User).join(Region, Region.id == User.region_id)
                                .where(scope.filter(g.user, Region.path)).order_by(User.username)))


@bp.route("/users", methods=["GET", "POST"])
@roles_required("admin")
def users():
    """Accounts inside the admin's scope; the form creates one."""
    if request.method == "POST":
        f = request.form
        try:
            u = ops.create_account(g.user, {"username": f.get("username"), "password": f.get("password"),
                                            "roles": f.getlist("roles"), "region_code": f.get("region_code"),
                                            "department": f.get("department") or None,
                                            "display_name": f.get("display_name") or None})
            session.commit()
            flash(f"已创建账号 {u.username}", "ok")
            return redirect(url_for("registry.users"))
        except ApiError as exc:
            session.rollback()
            _fail(exc)
    return render_template("registry/users.html", users=_users_in_scope(), roles=ROLES, ROLE_NAMES=ROLE_NAMES,
                           departments=list(session.scalars(select(Department))))


@bp.route("/users/<username>", methods=["GET", "POST"])
@roles_required("admin")
def user_edit(username: str):
    """Roles, scope, department; reset the password; deactivate (sessions and tokens stop at once)."""
    u = user_by_username(username)
    if u is None:
        abort(404)
    if not scope.covers(g.user, u.region):
        abort(403)
    if request.method == "POST":
        f = request.form
        what = f.get("what")
        try:
            if what == "save":
                ops.update_account(g.user, u, {"roles": f.getlist("roles"), "region_code": f.get("region_code"),
                                               "department": f.get("department") or None,
                                               "display_name": f.get("display_name") or u.display_name})
            elif what == "password":
                ops.update_account(g.user, u, {"password": f.get("password")})
            elif what in ("deactivate", "activate"):
                ops.update_account(g.user, u, {"active": what == "activate"})
            session.commit()
            flash("已保存", "ok")
            return redirect(url_for("registry.user_edit", username=u.username))
        except ApiError as exc:
            session.rollback()
            _fail(exc)
    return render_template("registry/user_edit.html", u=u, roles=ROLES, ROLE_NAMES=ROLE_NAMES,
                           departments=list(session.scalars(select(Department))))


# The audit trail -----------------------------------------------------------------------------------------

@bp.get("/audit")
@roles_required("admin")
def audit_page():
    """Filters: who (actor), what (action prefix), when (from/to, city days), region (code prefix);
    CSV and xlsx export of the filtered rows."""
    a = request.args
    stmt = select(AuditEvent)
    if g.user.region.level != "city":
        stmt = stmt.where(AuditEvent.region_code.startswith(_scope_prefix(g.user.region), autoescape=True))
    if a.get("who"):
        stmt = stmt.where(AuditEvent.actor == a["who"].strip())
    if a.get("what"):
        stmt = stmt.where(AuditEvent.action.startswith(a["what"].strip(), autoescape=True))
    if a.get("region"):
        r = _scoped_region(a["region"].strip())
        stmt = stmt.where(AuditEvent.region_code.startswith(_scope_prefix(r), autoescape=True))
    for key, op in (("from", "ge"), ("to", "lt")):
        if a.get(key):
            try:
                day = dt.date.fromisoformat(a[key])
            except ValueError:
                flash(f"日期格式不正确：{a[key]}（应为 YYYY-MM-DD）", "error")
                continue
            start, end = clock.day_bounds(day)
            stmt = stmt.where(AuditEvent.at >= start) if op == "ge" else stmt.where(AuditEvent.at < end)
    stmt = stmt.order_by(AuditEvent.id.desc())
    fmt = a.get("format")
    if fmt in ("csv", "xlsx"):
        rows = session.scalars(stmt.limit(50000)).all()
        headers = ["序号", "时间", "操作人", "操作", "对象", "区域", "详情", "IP"]
        data = ([e.id, clock.fmt(e.at, "%Y-%m-%d %H:%M:%S"), e.actor, e.action, f"{e.object_type}:{e.object_id}",
                 e.region_code or "", e.detail, e.ip or ""] for e in rows)
        return (exports.csv_response if fmt == "csv" else exports.xlsx_response)("操作日志", headers, data)
    rows = session.scalars(stmt.limit(200)).all()
    return render_template("registry/audit.html", rows=rows, args=a, fmt=clock.fmt)


def _scope_prefix(region: Region) -> str:
    """Codes of a region's subtree share this prefix (town 990101001000 → 990101001)."""
    code = region.code
    return {"city": code[:4], "town": code[:9], "village": code}.get(region.level, code)


# The installer's phone: open a household, pair the new box --------------------------------------------------

@m_bp.get("")
@login_required
def m_households():
    if not g.user.has_role(*ops.READ_ROLES):
        abort(403)
    q = request.args.get("q", "").strip()
    rows, total = queries.page(queries.households_query(g.user, None, None, q), 1, 30)
    return render_template("registry/m_households.html", rows=rows, total=total, q=q)


@m_bp.route("/<int:household_id>", methods=["GET", "POST"])
@login_required
def m_household(household_id: int):
    """The household on the installer's phone: type or scan the box's pairing code to bind it."""
    if not g.user.has_role(*ops.WRITE_ROLES, "grid_worker", "noc"):
        abort(403)
    hh = _household_or_403(household_id)
    done = None
    code = (request.values.get("code") or "").strip()
    if request.method == "POST":
        term = ops.box_for_code(code)
        if term is None:
            flash(f"配对码 {code} 无效或已使用，请核对电视上显示的配对码", "error")
        elif term.paired and term.household_id != hh.id:
            flash(f"终端 {term.serial} 已绑定其他地址，请先在网管中心解绑", "error")
        else:
            try:
                fleet_ops.bind_terminal(term, g.user, household_id=hh.id)
                session.commit()  # the outbox then sends the box its portal
                done = term
            except fleet_ops.FleetError as exc:
                session.rollback()
                flash(str(exc), "error")
    return render_template("registry/m_household.html", hh=hh, term=queries.terminal_of(hh), done=done, code=code,
                           members=queries.household_members(hh.id))
