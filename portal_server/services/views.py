"""Staff web of 下沉服务: the catalogue (edit, import with preview), slots and the bookings counter."""
from __future__ import annotations

import datetime as dt

from flask import Blueprint, flash, g, redirect, render_template, request, url_for
from sqlalchemy import select

from portal_server.core import clock, imports
from portal_server.core.api import ApiError
from portal_server.core.auth import roles_required
from portal_server.core.db import session
from portal_server.core.exports import xlsx_response
from portal_server.core.regions import Region

from . import operations as ops
from . import queries
from .models import BOOKING_STATUS_NAMES, HANDLE_LEVEL_NAMES, ITEM_TYPES, BookingSlot

bp = Blueprint("services_staff", __name__, url_prefix="/admin/services", template_folder="templates")

STAFF = ("editor", "handler", "grid_worker", "reviewer", "analyst")


def home_card(user):
    if not user.has_role("handler", "editor", "grid_worker"):
        return None
    today = clock.today()
    n = len(session.scalars(queries.bookings_in(user.scope, today, "booked", clock.city_tz())).all())
    return {"title": "今日服务预约", "value": n, "url": url_for("services_staff.bookings")}


@bp.get("/")
@roles_required(*STAFF)
def catalogue():
    """The catalogue: every active item, grouped by category; the import upload and a running import's progress."""
    items = session.scalars(queries.items_query()).all()
    job = request.args.get("job")
    if job and imports.status(job, g.user) is None:
        flash("找不到该导入任务（已过期或不是您发起的）", "error")
        job = None
    return render_template("services/catalogue.html", items=items, job=job)


@bp.route("/import", methods=["GET", "POST"])
@roles_required("editor")
def catalogue_import():
    """Step 1: upload (.xlsx, or CSV in UTF-8 or GBK); step 2: the preview — new, updated (which
    fields), unchanged and every bad row with its reason — nothing written yet; step 3: 确认导入,
    written by a background job (core.imports) whose progress the catalogue page follows."""
    if request.method == "GET":
        return render_template("services/import.html", preview=None)
    token = request.form.get("token", "")
    if token:  # confirm a previewed upload (kept by core.imports.stash for this user only)
        # Checked again and written in one transaction by the job (the catalogue may have changed
        # since the preview); all rows or none.
        job = imports.start_stashed(token, g.user, "portal_server.services.operations:run_catalogue_import", "项")
        if job is None:
            flash("预览已过期或已经导入过，请重新上传", "error")
            return redirect(url_for("services_staff.catalogue_import"))
        return redirect(url_for("services_staff.catalogue", job=job), 303)
    f = request.files.get("file")
    if f is None or not f.filename:
        flash("请选择要导入的文件（.xlsx 或 CSV）", "error")
        return render_template("services/import.html", preview=None), 400
    data = f.read()
    try:
        plan = ops.plan_catalogue(data, g.user, f.filename)
    except ApiError as e:
        session.rollback()
        flash(f"导入失败：{e.message}", "error")
        # not the catalogue's owner: say so with the status
        return render_template("services/import.html", preview=None), (403 if e.status == 403 else 400)
    token = imports.stash(g.user, data, f.filename) if plan.ok else None
    return render_template("services/import.html", preview=plan.preview(), token=token, filename=f.filename)


@bp.get("/import/template.xlsx")
@roles_required("editor")
def import_template():
    """An empty catalogue table with the Chinese headers and one example row."""
    headers = [h for h in ops.IMPORT_HEADERS if not h.isascii()]
    example = ["11360100MB0099-001", "示例事项（导入前请删除本行）", "公共服务", "社会保障/养老服务/高龄津贴",
               "市民政局", "镇（街道）便民服务中心", "《示例依据》", "年满80周岁的本市户籍老年人",
               "居民身份证:1:原件;户口簿:1:复印件", "提交材料|受理审核|办结", 20, 5, "不收费", "",
               "各村便民服务站", "工作日 9:00-12:00，14:00-17:00", 1, "0791-12345", "是", "村级", "civil-affairs",
               "是", "是"]
    return xlsx_response("服务事项导入模板", headers, [example])


@bp.route("/item/<code>", methods=["GET", "POST"])
@bp.route("/new", methods=["GET", "POST"], defaults={"code": None})
@roles_required("editor")
def edit(code: str | None):
    """Edit or create an item with every element of the national catalogue."""
    item = queries.item_by_code(code) if code else None
    if code and item is None:
        return render_template("services/catalogue.html", items=[]), 404
    error, status = None, 200
    form = {}
    if request.method == "POST":
        form = {k: request.form.get(k, "") for k in ops.CSV_COLUMNS}
        form["local"] = "是" if request.form.get("local") else "否"
        if code:
            form["code"] = code
        try:
            item, _ = ops.save_item(form, g.user.username, user=g.user)
            session.commit()
            flash(f"已保存「{item.name}」", "ok")
            return redirect(url_for("services_staff.catalogue"))
        except ApiError as e:
            session.rollback()
            error, status = e.message, (403 if e.status == 403 else 400)
    elif item is not None:
        d = queries.item_to_dict(item)
        form = dict(d, type=item.item_type, category="/".join(item.category.path_names()),
                    materials=ops.format_materials(item.materials), steps="|".join(item.steps))
    return render_template("services/edit.html", item=item, form=form, error=error, types=ITEM_TYPES,
                           forms=ops.FORMS), status


@bp.get("/bookings")
@roles_required(*STAFF)
def bookings():
    """The counter: bookings at places in my scope for a day (today by default)."""
    zone = clock.city_tz()
    try:
        day = dt.date.fromisoformat(request.args.get("day", "")) if request.args.get("day") else clock.today()
    except ValueError:
        day = clock.today()
    rows = session.scalars(queries.bookings_in(g.user.scope, None if request.args.get("all") else day,
                                               None, zone)).all()
    slots = session.scalars(select(BookingSlot).where(
        g.user.scope.region_filter(BookingSlot.region_path),
        BookingSlot.starts_at >= clock.day_bounds(day)[0], BookingSlot.starts_at < clock.day_bounds(day)[1])
        .order_by(BookingSlot.region_id, BookingSlot.starts_at).limit(200)).all()
    names = {i.code: i.name for i in session.scalars(queries.items_query())}
    return render_template("services/bookings.html", rows=rows, day=day, names=names, local=lambda ts: clock.fmt(ts, "%m-%d %H:%M"),
                           STATUS=BOOKING_STATUS_NAMES, slots=slots, all=bool(request.args.get("all")))


@bp.post("/bookings/<int:booking_id>/<action>")
@roles_required("handler", "editor", "grid_worker")
def booking_action(booking_id: int, action: str):
    b = queries.booking_get(booking_id)
    if b is None or not g.user.scope.covers(b.slot.region):
        flash("预约不存在或不在您的辖区", "error")
        return redirect(url_for("services_staff.bookings"))
    try:
        if action == "serve":
            ops.serve(b, g.user)
        elif action == "cancel":
            ops.cancel(b, g.user.username)
        session.commit()
        flash(f"预约 {b.code} 已{'办结' if action == 'serve' else '取消'}", "ok")
    except ApiError as e:
        session.rollback()
        flash(e.message, "error")
    return redirect(request.referrer or url_for("services_staff.bookings"))


@bp.post("/slots/<int:slot_id>/toggle")
@roles_required("handler", "editor", "grid_worker")
def slot_toggle(slot_id: int):
    slot = session.get(BookingSlot, slot_id)
    if slot is not None and g.user.scope.covers(slot.region):
        ops.set_slot_closed(slot, not slot.closed, g.user.username)
        session.commit()
        flash("时段已" + ("关闭" if slot.closed else "开放"), "ok")
    return redirect(request.referrer or url_for("services_staff.bookings"))


@bp.route("/admissions", methods=["GET", "POST"])
@roles_required("clerk")
def admissions():
    """村级准入清单: a town clerk (or admin, for ``?town=``) chooses the items the town's village halls
    may receive; the others go to the town centre or the department."""
    town = g.user.region if g.user.region.level == "town" else None
    if g.user.has_role("admin") and request.args.get("town"):
        town = session.scalar(select(Region).where(Region.code == request.args["town"]))
    if town is None or town.level != "town":
        flash("准入清单由镇（街道）办事员设置；管理员请在地址后加 ?town=镇代码", "error")
        return redirect(url_for("admin.home"))
    if request.method == "POST":
        chosen = set(request.form.getlist("code"))
        local = [i.code for i in session.scalars(queries.items_query()) if i.local]
        have = queries.admitted_codes(town.id)
        try:
            ops.admit(g.user, town, [c for c in local if c in chosen and c not in have], True)
            ops.admit(g.user, town, [c for c in have if c not in chosen], False)
            session.commit()
            flash(f"{town.name}村级准入清单已保存：{len(chosen & set(local))} 项", "ok")
        except ApiError as e:
            session.rollback()
            flash(e.message, "error")
        return redirect(url_for("services_staff.admissions", town=town.code))
    items = [i for i in session.scalars(queries.items_query()) if i.local]
    return render_template("services/admissions.html", town=town, items=items,
                           admitted=queries.admitted_codes(town.id), LEVEL=HANDLE_LEVEL_NAMES)


__all__ = ["Region", "bp"]
