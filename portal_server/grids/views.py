"""Staff web of grids: create grids and assign households (admins, clerks), the assessment rule table
(admins), rankings and weekly reports (leaders: analysts), with xlsx downloads."""
from __future__ import annotations

import datetime as dt
import io

from openpyxl import Workbook
from openpyxl.styles import Font, PatternFill
from flask import Blueprint, Response, abort, flash, g, redirect, render_template, request, url_for
from sqlalchemy import select

from portal_server.core import clock, scope
from portal_server.core.api import ApiError
from portal_server.core.auth import roles_required
from portal_server.core.db import session
from portal_server.core.households import TAG_NAMES
from portal_server.core.regions import Region, region_by_code

from . import operations as ops
from . import queries
from .models import CARD_NAMES, LEVEL_NAMES, LEVELS, RULES

bp = Blueprint("grids_staff", __name__, url_prefix="/admin/grids", template_folder="templates")

RANKING_ROLES = ("analyst", "admin", "clerk", "handler")


def _villages():
    return session.scalars(select(Region).where(scope.filter(g.user, Region.path), Region.level == "village")
                           .order_by(Region.code).limit(500)).all()


@bp.route("/", methods=["GET", "POST"])
@roles_required(*ops.MANAGER_ROLES)
def index():
    """Grids in scope; create one (village, name, its grid worker)."""
    if request.method == "POST":
        try:
            grid = ops.create_grid(g.user, request.form.get("region_code", ""), request.form.get("name", ""),
                                   request.form.get("worker", ""))
            session.commit()
            flash(f"已创建网格“{grid.name}”，请划入住户", "ok")
            return redirect(url_for("grids_staff.grid", grid_id=grid.id))
        except ApiError as e:
            session.rollback()
            flash(e.message, "error")
        return redirect(url_for("grids_staff.index"))
    grids = session.scalars(queries.grids_query(g.user).limit(500)).all()
    counts = queries.household_counts([x.id for x in grids])
    villages = _villages()
    workers = []
    for v in villages[:200]:
        workers.extend(queries.grid_workers(v))
    return render_template("grids/index.html", grids=grids, counts=counts, villages=villages, workers=workers)


def map_layer(user, village: Region) -> dict:
    """The grids layer of the registry's 电子装户图 (registry.add_map_layer): every reader sees
    each house's grid; managers (the grids API's roles, in scope) also get the assign form."""
    layer = queries.village_grid_layer(user, village)
    layer["assign"] = None
    if user.has_role(*ops.MANAGER_ROLES) and scope.covers(user, village):
        layer["assign"] = {"url": url_for("grids_staff.map_assign"), "label": "划入网格", "group_field": "grid_id",
                           "hint": "点按房屋选中或取消；点“整排选择”选中一排。选好后点“划入所选网格”。"}
    return layer


def _back(target: str | None) -> str:
    if target and target.startswith("/admin/") and not target.startswith("//"):
        return target
    return url_for("grids_staff.index")


@bp.post("/map-assign")
@roles_required(*ops.MANAGER_ROLES)
def map_assign():
    """The household map's assign form: the selected houses' households go into one grid (the same
    write and checks as POST /api/v1/grids/<id>/households: a grid outside the caller's scope →
    403 naming its region, a household of another village → 400, nothing changed)."""
    back = _back(request.form.get("next"))
    try:
        grid_id = int(request.form.get("grid_id", ""))
    except ValueError:
        return render_template("grids/assign_failed.html", message="请选择网格", back=back), 400
    try:
        grid = ops.get_grid(grid_id)
        scope.require(g.user, grid.region, "网格")
        r = ops.assign_households(g.user, grid, request.form.getlist("household_ids"))
        session.commit()
    except ApiError as e:
        session.rollback()
        return render_template("grids/assign_failed.html", message=e.message, back=back), e.status
    flash(f"已将 {r['assigned']} 户划入“{grid.name}”（其中从其他网格调入 {r['moved']} 户）", "ok")
    return redirect(back, 303)


@bp.route("/<int:grid_id>", methods=["GET", "POST"])
@roles_required(*ops.MANAGER_ROLES)
def grid(grid_id: int):
    """The village's households: tick those of this grid (by list)."""
    gr = queries.grid_for(g.user, grid_id)
    if gr is None:
        abort(404)
    if request.method == "POST":
        ids = request.form.getlist("household_id")
        try:
            if request.form.get("action") == "remove":
                n = ops.remove_households(g.user, gr, ids)
                flash(f"已移出 {n} 户", "ok")
            else:
                r = ops.assign_households(g.user, gr, ids)
                flash(f"已划入 {r['assigned']} 户（其中从其他网格调入 {r['moved']} 户）", "ok")
            session.commit()
        except (ApiError, ValueError) as e:
            session.rollback()
            flash(getattr(e, "message", "请选择住户"), "error")
        return redirect(url_for("grids_staff.grid", grid_id=gr.id))
    rows = queries.village_households(gr.region)
    return render_template("grids/grid.html", grid=gr, rows=rows, TAG_NAMES=TAG_NAMES)


@bp.route("/rules", methods=["GET", "POST"])
@roles_required("admin")
def rules():
    """The assessment rule table: points per visit/event/patrol and the card thresholds."""
    if request.method == "POST":
        try:
            ops.set_rules(g.user, {k: request.form.get(k) for k in RULES if request.form.get(k) is not None})
            session.commit()
            flash("考核规则已保存", "ok")
        except ApiError as e:
            session.rollback()
            flash(e.message, "error")
        return redirect(url_for("grids_staff.rules"))
    return render_template("grids/rules.html", rules=RULES, values=queries.rules())


def _ranking_args():
    period = request.args.get("period", "week")
    period = period if period in ("week", "month") else "week"
    level = request.args.get("level", "worker")
    level = level if level in LEVELS else "worker"
    region = region_by_code(request.args.get("region") or g.user.region.code)
    if region is None or not scope.covers(g.user, region):
        region = g.user.region
    day = None
    try:
        day = dt.date.fromisoformat(request.args["date"]) if request.args.get("date") else None
    except ValueError:
        day = None
    start, end = queries.period_bounds(period, day)
    return period, level, region, start, end


@bp.get("/ranking")
@roles_required(*RANKING_ROLES)
def ranking():
    """Rankings of workers, grids or villages (town and city leaders) with the yellow/red cards."""
    period, level, region, start, end = _ranking_args()
    items = queries.assessment(region, level, start, end)
    regions = session.scalars(select(Region).where(scope.filter(g.user, Region.path), Region.level != "village")
                              .order_by(Region.code)).all()
    return render_template("grids/ranking.html", items=items, period=period, level=level, region=region,
                           start=start, end=end - dt.timedelta(days=1), regions=regions,
                           LEVEL_NAMES=LEVEL_NAMES, CARD_NAMES=CARD_NAMES)


def xlsx_response(title: str, items: list[dict], level: str, filename: str) -> Response:
    """An xlsx of assessment items (openpyxl)."""
    wb = Workbook()
    ws = wb.active
    ws.title = "考核"
    ws.append([title])
    ws["A1"].font = Font(bold=True, size=14)
    ws.append(["名次", LEVEL_NAMES[level], "区划代码", "走访", "事件上报", "巡查", "按时办结率", "积分", "红黄牌"])
    fills = {"yellow": PatternFill("solid", fgColor="FFF3B0"), "red": PatternFill("solid", fgColor="F8C9C4")}
    for i in items:
        rate = "" if i.get("on_time_rate") is None else f"{i['on_time_rate'] * 100:.0f}%"
        ws.append([i.get("rank"), i["name"], i.get("region_code"), i["visits"], i["events"], i.get("patrols", 0),
                   rate, i["points"], CARD_NAMES.get(i["card"], i["card"])])
        if i["card"] in fills:
            for cell in ws[ws.max_row]:
                cell.fill = fills[i["card"]]
    for col, w in zip("ABCDEFGHI", (6, 24, 14, 8, 10, 8, 12, 8, 8)):
        ws.column_dimensions[col].width = w
    buf = io.BytesIO()
    wb.save(buf)
    return Response(buf.getvalue(),
                    mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                    headers={"Content-Disposition": f"attachment; filename={filename}"})


@bp.get("/ranking.xlsx")
@roles_required(*RANKING_ROLES)
def ranking_xlsx():
    period, level, region, start, end = _ranking_args()
    items = queries.assessment(region, level, start, end)
    title = f"{region.name}网格化考核（{start.isoformat()} 至 {(end - dt.timedelta(days=1)).isoformat()}）"
    return xlsx_response(title, items, level, f"assessment-{region.code}-{level}-{start.isoformat()}.xlsx")


@bp.get("/reports")
@roles_required(*RANKING_ROLES)
def reports():
    """The weekly reports (周报告), newest first."""
    return render_template("grids/reports.html", reports=queries.weekly_reports(), fmt=clock.fmt,
                           timedelta=dt.timedelta)


def _report_or_404(report_id: int):
    rep = queries.weekly_report(report_id)
    if rep is None:
        abort(404)
    level = request.args.get("level", "worker")
    return rep, level if level in LEVELS else "worker"


@bp.get("/reports/<int:report_id>")
@roles_required(*RANKING_ROLES)
def report(report_id: int):
    rep, level = _report_or_404(report_id)
    items = queries.report_items(rep, g.user, level)
    return render_template("grids/report.html", rep=rep, items=items, level=level, LEVEL_NAMES=LEVEL_NAMES,
                           CARD_NAMES=CARD_NAMES, end=rep.week_start + dt.timedelta(days=6), fmt=clock.fmt)


@bp.get("/reports/<int:report_id>.xlsx")
@roles_required(*RANKING_ROLES)
def report_xlsx(report_id: int):
    rep, level = _report_or_404(report_id)
    items = queries.report_items(rep, g.user, level)
    end = rep.week_start + dt.timedelta(days=6)
    title = f"网格化工作周报告（{rep.week_start.isoformat()} 至 {end.isoformat()}）· {LEVEL_NAMES[level]}"
    return xlsx_response(title, items, level, f"weekly-report-{rep.week_start.isoformat()}-{level}.xlsx")
