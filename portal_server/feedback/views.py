"""Staff web of the feedback loop: inbox, order page, follow-ups, supervision board, polls."""
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
    send_from_directory,
    url_for,
)

from portal_server.core import audit, clock, crypto
from portal_server.core.accounts import Department
from portal_server.core.api import ApiError, iso, parse_ts
from portal_server.core.auth import roles_required
from portal_server.core.db import session, utcnow
from portal_server.core.exports import workbook_response
from portal_server.core.households import Household, unmask_phone

from . import operations as ops
from . import queries
from .models import (
    ACTION_NAMES,
    CATEGORY_NAMES,
    CHANNEL_NAMES,
    LEVEL_NAMES,
    STATUS_NAMES,
    WorkOrderPhoto,
)

bp = Blueprint("feedback_staff", __name__, url_prefix="/admin/feedback", template_folder="templates")

STAFF_ROLES = ("handler", "grid_worker", "editor", "analyst", "reviewer")


@bp.context_processor
def _names():
    return {"CATEGORY_NAMES": CATEGORY_NAMES, "STATUS_NAMES": STATUS_NAMES, "LEVEL_NAMES": LEVEL_NAMES,
            "ACTION_NAMES": ACTION_NAMES, "CHANNEL_NAMES": CHANNEL_NAMES, "iso": iso,
            "light": queries.light, "desk_name": queries.desk_name, "local": clock.fmt}


def home_card(user):
    """Home card: my open orders and how many are overdue."""
    if not user.has_role("handler"):
        if user.has_role("grid_worker"):
            n = len(queries.follow_ups(user))
            return {"title": "待回访诉求", "value": n, "url": url_for("feedback_staff.follow_ups")}
        return None
    open_n, overdue = queries.my_counts(user)
    return {"title": f"我的待办诉求（超期 {overdue} 件）", "value": open_n,
            "url": url_for("feedback_staff.inbox"), "tone": "red" if overdue else ("warn" if open_n else "")}


@bp.get("/")
@roles_required(*STAFF_ROLES)
def inbox():
    """Orders at my desk (due soon first) and, for supervisors, the open orders below me."""
    mine = queries.inbox(g.user) if g.user.has_role("handler") else []
    below = queries.supervised(g.user)
    mine_ids = {o.id for o in mine}
    below = [o for o in below if o.id not in mine_ids]
    return render_template("feedback/inbox.html", mine=mine, below=below, now=utcnow())


@bp.get("/<int:order_id>")
@roles_required(*STAFF_ROLES)
def order_page(order_id: int, error: str | None = None, status: int = 200, phone: str | None = None):
    order = queries.get(order_id)
    if order is None:
        abort(404)
    if not ops.can_view(g.user, order):
        abort(403)
    actions = ops.allowed_actions(g.user, order)
    household = session.get(Household, order.household_id) if order.household_id else None
    return render_template("feedback/order.html", order=order, actions=actions, error=error,
                           now=utcnow(), departments=_departments(), household=household,
                           clear_phone=phone), status


@bp.post("/<int:order_id>/phone")
@roles_required("handler", "grid_worker")
def reveal_phone(order_id: int):
    """The full phone number to call a resident back; every look is in the audit trail."""
    order = queries.get(order_id)
    if order is None:
        abort(404)
    if not ops.can_view(g.user, order):
        abort(403)
    if order.household_id:
        number = unmask_phone(session.get(Household, order.household_id), f"feedback callback {order.code}")
    else:
        audit.record("pii.unmask", "work_order", order.id, order.region.code, field="contact",
                     reason=f"feedback callback {order.code}")
        number = crypto.decrypt(order.contact_enc)
    session.commit()
    return order_page(order_id, phone=number or "（未登记）")


def _departments():
    from sqlalchemy import select

    return list(session.scalars(select(Department).order_by(Department.code)))


@bp.post("/<int:order_id>/action")
@roles_required(*STAFF_ROLES)
def order_action(order_id: int):
    order = queries.get(order_id)
    if order is None:
        abort(404)
    if not ops.can_view(g.user, order):
        abort(403)
    f = request.form
    action = f.get("action", "")
    try:
        score = int(f["score"]) if f.get("score") else None
        ops.act(order, ops.Actor(user=g.user), action, to=(f.get("to") or None),
                message=f.get("message"), reason=f.get("reason"), score=score)
        session.commit()
    except ApiError as e:
        session.rollback()
        return order_page(order_id, error=e.message, status=e.status)
    flash(f"已{ACTION_NAMES.get(action, action)}：{order.code}")
    return redirect(url_for("feedback_staff.order_page", order_id=order.id))


@bp.get("/photo/<int:photo_id>")
@roles_required(*STAFF_ROLES)
def photo(photo_id: int):
    p = session.get(WorkOrderPhoto, photo_id)
    if p is None:
        abort(404)
    if not ops.can_view(g.user, queries.get(p.order_id)):
        abort(403)
    return send_from_directory(current_app.config["SETTINGS"].media_dir, p.path)


@bp.get("/follow-ups")
@roles_required("grid_worker", "handler")
def follow_ups():
    """The grid worker's list: closed orders in their villages waiting for a visit (回访)."""
    return render_template("feedback/follow_ups.html", orders=queries.follow_ups(g.user))


@bp.get("/board")
@roles_required(*STAFF_ROLES)
def board():
    """Supervision board: villages, towns and departments ranked by on-time closure; ``?format=xlsx``
    gives the same three tables as a workbook."""
    board = queries.board(g.user)
    if request.args.get("format") == "xlsx":
        head = ["排名", "单位", "代码", "诉求数", "按期办结率(%)", "答复率(%)", "重办率(%)", "平均评价", "超期在办"]

        def rows(items):
            return [[r["rank"] or "", r["name"], r["code"], r["orders"], round(r["on_time_rate"] * 100, 1),
                     round(r["reply_rate"] * 100, 1), round(r["reopen_rate"] * 100, 1),
                     round(r["avg_rating"], 2) if r["avg_rating"] else "", r["overdue_open"]] for r in items]
        return workbook_response("督办排名.xlsx", [("村（社区）", head, rows(board["villages"])),
                                              ("镇（街道）", head, rows(board["towns"])),
                                              ("市级部门", head, rows(board["departments"]))])
    return render_template("feedback/board.html", board=board)


@bp.route("/polls", methods=["GET", "POST"])
@roles_required(*STAFF_ROLES)
def polls():
    """Polls and deliberation topics in my scope with their results; editors open new ones."""
    error, status = None, 200
    if request.method == "POST":
        f = request.form
        try:
            closes = parse_ts(f.get("closes_at"), "closes_at")
            if closes is None:
                raise ApiError(400, "bad_request", "请填写截止时间", field="closes_at")
            options = [o for o in f.get("options", "").splitlines() if o.strip()]
            poll = ops.open_poll(g.user, f.get("title", ""), options,
                                 f.get("region_code") or g.user.region.code, closes,
                                 f.get("kind", "poll"), f.get("description", ""))
            session.commit()
            flash(f"已发起：{poll.title}")
            return redirect(url_for("feedback_staff.polls"))
        except ApiError as e:
            session.rollback()
            error, status = e.message, e.status
    rows = [(p, queries.poll_results(p), queries.poll_is_open(p)) for p in queries.polls_in_scope(g.user)]
    default_close = clock.fmt(utcnow() + dt.timedelta(days=7), "%Y-%m-%d %H:%M")
    return render_template("feedback/polls.html", rows=rows, error=error, now=utcnow(),
                           default_close=default_close), status
