"""NOC web of emergency alerts (/noc/alerts): send from a template, list, one alert's delivery by
village (live), approve / reject / cancel, and the CSV of unacked households for grid workers."""
from __future__ import annotations

import csv
import datetime as dt
import io

from flask import Blueprint, Response, abort, flash, g, jsonify, redirect, render_template, request, \
    url_for
from sqlalchemy import select

from portal_server.core import audit, clock
from portal_server.core.api import ApiError
from portal_server.core.auth import roles_required
from portal_server.core.db import session
from portal_server.core.regions import Region

from . import operations as ops, queries
from .models import (CATEGORIES, CATEGORY_NAMES, CERTAINTIES, CERTAINTY_NAMES, SEVERITIES, SEVERITY_COLOURS,
                     SEVERITY_NAMES, STATUS_NAMES, URGENCIES, URGENCY_NAMES)
from .texts import TEMPLATES

bp = Blueprint("alerts_noc", __name__, url_prefix="/noc/alerts", template_folder="templates")


@bp.context_processor
def _names():
    return {"SEVERITY_NAMES": SEVERITY_NAMES, "URGENCY_NAMES": URGENCY_NAMES, "CERTAINTY_NAMES": CERTAINTY_NAMES,
            "CATEGORY_NAMES": CATEGORY_NAMES, "STATUS_NAMES": STATUS_NAMES, "COLOURS": SEVERITY_COLOURS,
            "local": lambda ts: clock.fmt(ts, "%m-%d %H:%M:%S", empty="—")}


def home_card(user):
    if not user.has_role(*ops.SENDER_ROLES):
        return None
    n = len(session.scalars(queries.visible_query(user.scope, "active")).all())
    pending = len(session.scalars(queries.visible_query(user.scope, "pending_approval")).all())
    return {"title": "应急广播播发中" + (f"（{pending} 条待审批）" if pending else ""), "value": n,
            "url": url_for("alerts_noc.index")}


def _regions_in_scope() -> list[Region]:
    return list(session.scalars(select(Region).where(g.user.scope.region_filter(Region.path))
                                .order_by(Region.path)))


def _alert_or_404(alert_id: int):
    a = queries.alert_get(alert_id)
    if a is None or not queries.visible_to(a, g.user.scope):
        abort(404)
    return a


@bp.route("/", methods=["GET", "POST"])
@roles_required(*ops.READER_ROLES)
def index():
    """The list of alerts in scope and (for senders) the form to send one."""
    form = {}
    if request.method == "POST":
        if not g.user.has_role(*ops.SENDER_ROLES):
            abort(403)
        form = request.form.to_dict()
        data = dict(form, regions=request.form.getlist("regions"))
        data.pop("csrf_token", None)
        if data.get("expires_in_h"):
            try:
                hours = float(data.pop("expires_in_h"))
            except ValueError:
                hours = -1
            data["expires"] = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=hours)).isoformat()
        try:
            alert, _created = ops.create(data, g.user, idempotency_key=data.get("idempotency_key") or None)
            session.commit()
        except ApiError as e:
            session.rollback()
            flash(e.message, "error")
        else:
            flash("已播发" if alert.status == "active" else "已提交，等待第二人审批后播发", "ok")
            return redirect(url_for("alerts_noc.show", alert_id=alert.id))
    alerts = session.scalars(queries.visible_query(g.user.scope).limit(200)).all()
    import uuid
    return render_template("alerts/index.html", alerts=alerts, templates=TEMPLATES, regions=_regions_in_scope(),
                           categories=CATEGORIES, severities=SEVERITIES, urgencies=URGENCIES,
                           certainties=CERTAINTIES, form=form, can_send=g.user.has_role(*ops.SENDER_ROLES),
                           idem=uuid.uuid4().hex)


@bp.get("/<int:alert_id>")
@roles_required(*ops.READER_ROLES)
def show(alert_id: int):
    a = _alert_or_404(alert_id)
    return render_template("alerts/show.html", a=a, d=queries.delivery(a, g.user.scope),
                           can_send=g.user.has_role(*ops.SENDER_ROLES), audio=queries.audio_url(a),
                           trail=audit.events_for("alert", a.id))


@bp.get("/<int:alert_id>/figures.json")
@roles_required(*ops.READER_ROLES)
def figures(alert_id: int):
    """The live figures the alert page polls every few seconds."""
    a = _alert_or_404(alert_id)
    d = queries.delivery(a, g.user.scope)
    d["unacked"] = d["unacked"][:200]
    d["status"], d["status_name"] = a.status, STATUS_NAMES.get(a.status, a.status)
    resp = jsonify(d)
    resp.headers["Cache-Control"] = "no-store"
    return resp


@bp.post("/<int:alert_id>/action")
@roles_required(*ops.SENDER_ROLES)
def action(alert_id: int):
    a = _alert_or_404(alert_id)
    what = request.form.get("action")
    try:
        if what == "approve":
            ops.approve(a, g.user)
            msg = "已审批" if a.status == "active" else "已确认"
        elif what == "reject":
            ops.reject(a, g.user, request.form.get("reason", ""))
            msg = "已驳回"
        elif what == "cancel":
            ops.cancel(a, g.user, request.form.get("reason", ""))
            msg = "已撤销，终端将清除该预警"
        else:
            abort(400)
        session.commit()
        flash(msg, "ok")
    except ApiError as e:
        session.rollback()
        flash(e.message, "error")
    return redirect(url_for("alerts_noc.show", alert_id=alert_id))


@bp.get("/<int:alert_id>/unacked.csv")
@roles_required(*ops.READER_ROLES)
def unacked_csv(alert_id: int):
    """Households (address, masked phone) and institutional boxes that did not ack; written to the audit trail."""
    a = _alert_or_404(alert_id)
    rows = queries.unacked_households(a, g.user.scope, for_user=g.user)
    names = {r.code: r.name for r in session.scalars(select(Region).where(
        Region.code.in_(list({c for _s, _h, c in rows}))))} if rows else {}
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["村/社区", "区划代码", "终端", "户号", "户主", "地址", "电话（已脱敏）", "标签"])
    for serial, hh, code in rows:
        if hh is None:
            w.writerow([names.get(code, code), code, serial, "", "（机构终端）", "", "", ""])
        else:
            w.writerow([names.get(code, code), code, serial, hh.number, hh.head_name, hh.address, hh.phone_masked,
                        " ".join(hh.tag_list)])
    audit.record("alert.export_unacked", "alert", a.id, g.user.region.code, actor=g.user.username,
                 rows=len(rows), scope=g.user.scope.code)
    session.commit()
    data = "\ufeff" + buf.getvalue()  # BOM: Excel opens the Chinese text correctly
    return Response(data, mimetype="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f"attachment; filename=alert-{a.id}-unacked.csv"})
