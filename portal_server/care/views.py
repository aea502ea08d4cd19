"""Staff web of 养老助老: care tasks (grid workers, village heads) and elderly services."""
from __future__ import annotations


from flask import Blueprint, flash, g, redirect, render_template, request, url_for
from sqlalchemy import select

from portal_server.core import clock
from portal_server.core.api import ApiError
from portal_server.core.auth import roles_required
from portal_server.core.db import session
from portal_server.core.regions import Region, region_by_code

from . import operations as ops
from . import queries
from .models import SERVICE_KIND_NAMES, SERVICE_KINDS, ElderlyService

bp = Blueprint("care_staff", __name__, url_prefix="/admin/care", template_folder="templates")


def home_card(user):
    if not user.has_role("grid_worker", "handler"):
        return None
    n = len(session.scalars(queries.tasks_query(user, "open")).all())
    return {"title": "养老关爱待办", "value": n, "url": url_for("care_staff.tasks")}


@bp.get("/tasks")
@roles_required("grid_worker", "handler")
def tasks(phone_for: int | None = None, phone: str | None = None):
    status = request.args.get("status", "open")
    rows = session.scalars(queries.tasks_query(g.user, status if status in ("open", "done", "all") else "open")).all()
    return render_template("care/tasks.html", rows=rows, status=status, local=lambda ts: clock.fmt(ts, "%m-%d %H:%M"), deadline=ops.checkin_deadline().strftime("%H:%M"),
                           phone_for=phone_for, phone=phone)


@bp.post("/tasks/<int:task_id>/unmask")
@roles_required("grid_worker", "handler")
def unmask(task_id: int):
    t = queries.task_get(task_id)
    if t is None or not g.user.scope.covers(t.region):
        flash("任务不存在", "error")
        return redirect(url_for("care_staff.tasks"))
    try:
        phone = ops.reveal_phone(t, g.user)
        session.commit()
    except ApiError as e:
        flash(e.message, "error")
        return redirect(url_for("care_staff.tasks"))
    return tasks(phone_for=t.id, phone=phone)


@bp.post("/tasks/<int:task_id>/close")
@roles_required("grid_worker", "handler")
def close(task_id: int):
    t = queries.task_get(task_id)
    if t is None or not g.user.scope.covers(t.region):
        flash("任务不存在", "error")
        return redirect(url_for("care_staff.tasks"))
    try:
        ops.close_task(t, g.user, request.form.get("note"))
        session.commit()
        flash("已记录处理情况", "ok")
    except ApiError as e:
        session.rollback()
        flash(e.message, "error")
    return redirect(url_for("care_staff.tasks"))


@bp.route("/services", methods=["GET", "POST"])
@roles_required("editor", "grid_worker", "handler")
def services():
    """Elderly services of the villages in scope; add one."""
    if request.method == "POST":
        region = region_by_code(request.form.get("region_code", ""))
        if region is None or not g.user.scope.covers(region):
            flash("请选择辖区内的村", "error")
        else:
            try:
                ops.add_service(region, request.form.get("kind", ""), request.form.get("title", ""),
                                request.form.get("place", ""), request.form.get("schedule", ""),
                                request.form.get("phone", ""), request.form.get("details", ""), g.user.username)
                session.commit()
                flash("已添加", "ok")
            except ApiError as e:
                session.rollback()
                flash(e.message, "error")
        return redirect(url_for("care_staff.services"))
    rows = session.scalars(select(ElderlyService).where(g.user.scope.region_filter(ElderlyService.region_path))
                           .order_by(ElderlyService.region_path, ElderlyService.kind).limit(500)).all()
    villages = session.scalars(select(Region).where(g.user.scope.region_filter(Region.path),
                                                    Region.level == "village").order_by(Region.code)).all()
    return render_template("care/services.html", rows=rows, villages=villages, kinds=SERVICE_KINDS,
                           KIND=SERVICE_KIND_NAMES)
