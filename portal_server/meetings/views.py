"""Staff web of 社区会议 (/admin/meetings): schedule, the meeting page for OBS (RTMP server, stream
key, QR code), live status, motions with live results, minutes afterwards."""
from __future__ import annotations

import datetime as dt
import re

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
from markupsafe import Markup
from sqlalchemy import select

from portal_server.core import clock
from portal_server.core.api import ApiError
from portal_server.core.auth import roles_required
from portal_server.core.db import session, utcnow
from portal_server.core.regions import Region

from . import operations as ops
from . import queries
from .models import CHOICE_NAMES, STATUS_NAMES, Motion

bp = Blueprint("meetings_staff", __name__, url_prefix="/admin/meetings", template_folder="templates")

STAFF = ("editor", "handler", "reviewer", "analyst")
MANAGE = ("editor", "handler")


def local(ts, fmt="%Y-%m-%d %H:%M") -> str:
    return clock.fmt(ts, fmt)


def qr_svg(data: str, size: int = 200) -> Markup:
    import qrcode
    import qrcode.image.svg

    svg = qrcode.make(data, image_factory=qrcode.image.svg.SvgPathImage, box_size=10, border=2).to_string(encoding="unicode")
    return Markup(re.sub(r'width="[^"]+" height="[^"]+"', f'width="{size}" height="{size}"', svg, count=1))


def home_card(user):
    if not user.has_role(*STAFF):
        return None
    n = len(session.scalars(queries.in_scope(user.scope, "live")).all())
    return {"title": "正在直播的会议", "value": n, "url": url_for("meetings_staff.index")}


def _meeting(meeting_id: int):
    m = queries.meeting_by_id(meeting_id)
    if m is None or not g.user.scope.covers(m.region):
        abort(404)
    return m


def _regions():
    """Villages and towns the user may schedule for."""
    return session.scalars(select(Region).where(g.user.scope.region_filter(Region.path),
                                                Region.level.in_(("village", "town"))).order_by(Region.code)).all()


def _parse_local(value: str, field: str) -> dt.datetime:
    try:
        return clock.parse(value) if value else None
    except ValueError:
        raise ApiError(400, "bad_request", f"{field} 时间格式不正确", field=field) from None


@bp.get("/")
@roles_required(*STAFF)
def index():
    """Meetings in scope: live first, then upcoming, then past."""
    rows = session.scalars(queries.in_scope(g.user.scope)).all()
    order = {"live": 0, "scheduled": 1, "ended": 2, "cancelled": 3}
    rows = sorted(rows, key=lambda m: order.get(m.status, 9))
    return render_template("meetings/index.html", rows=rows, local=local, STATUS=STATUS_NAMES)


@bp.route("/new", methods=["GET", "POST"])
@roles_required(*MANAGE)
def new():
    """Schedule: title, agenda, region in scope, start, end."""
    form = {"title": "", "agenda": "", "region_code": "", "starts_at": "", "ends_at": ""}
    error = None
    if request.method == "POST":
        form = {k: request.form.get(k, "").strip() for k in form}
        try:
            m = ops.schedule(g.user, form["title"], form["region_code"], _parse_local(form["starts_at"], "starts_at"),
                             _parse_local(form["ends_at"], "ends_at"), form["agenda"])
            session.commit()
            flash(f"已安排会议「{m.title}」", "ok")
            return redirect(url_for("meetings_staff.show", meeting_id=m.id))
        except ApiError as e:
            session.rollback()
            error = ERRORS_ZH.get(e.message, e.message)
    else:
        start = (clock.local(utcnow()) + dt.timedelta(hours=1)).replace(minute=0, second=0, microsecond=0)
        form.update(starts_at=start.strftime("%Y-%m-%d %H:%M"),
                    ends_at=(start + dt.timedelta(hours=1, minutes=30)).strftime("%Y-%m-%d %H:%M"))
    return render_template("meetings/new.html", form=form, regions=_regions(), error=error), (400 if error else 200)


ERRORS_ZH = {
    "title is required": "请填写会议名称",
    "ends_at must be after starts_at": "结束时间必须晚于开始时间",
    "ends_at is in the past": "结束时间已过",
    "a meeting lasts at most 12 hours": "会议时长不能超过 12 小时",
    "starts_at is required": "请填写开始时间",
    "ends_at is required": "请填写结束时间",
    "a meeting belongs to a village or a town": "会议须属于某个村或镇",
    "motions can only be opened while the meeting is live": "会议直播中才能发起表决",
    "close the open motion first": "请先结束当前表决",
    "the motion is already closed": "该表决已结束",
    "minutes are attached after the meeting has ended": "会议结束后才能上传纪要",
    "the file is empty": "文件为空",
}


@bp.get("/<int:meeting_id>")
@roles_required(*STAFF)
def show(meeting_id: int):
    """The meeting page: OBS settings with QR, live status, motions with live results, minutes."""
    m = _meeting(meeting_id)
    d = queries.meeting_to_dict(m, staff=True)
    return render_template("meetings/show.html", m=m, d=d, local=local, STATUS=STATUS_NAMES,
                           CHOICES=CHOICE_NAMES, qr=qr_svg(d["publish_url"]),
                           can_manage=g.user.has_role(*MANAGE))


@bp.get("/<int:meeting_id>/status.json")
@roles_required(*STAFF)
def status_json(meeting_id: int):
    """Polled by the meeting page for live status and results."""
    return queries.meeting_to_dict(_meeting(meeting_id), staff=True)


def _act(m, do, done: str):
    """Run one staff action on meeting ``m``: commit and say ``done``, or roll back and say why
    (in Chinese); back to the meeting page either way."""
    try:
        do()
        session.commit()
        flash(done, "ok")
    except ApiError as e:
        session.rollback()
        flash(ERRORS_ZH.get(e.message, e.message), "error")
    return redirect(url_for("meetings_staff.show", meeting_id=m.id))


@bp.post("/<int:meeting_id>/motions")
@roles_required(*MANAGE)
def open_motion(meeting_id: int):
    m = _meeting(meeting_id)
    return _act(m, lambda: ops.open_motion(g.user, m, request.form.get("title", "")),
                "已发起表决，各户电视上将显示表决事项")


@bp.post("/<int:meeting_id>/motions/<int:motion_id>/close")
@roles_required(*MANAGE)
def close_motion(meeting_id: int, motion_id: int):
    m = _meeting(meeting_id)
    motion = session.get(Motion, motion_id)
    if motion is None or motion.meeting_id != m.id:
        abort(404)
    return _act(m, lambda: ops.close_motion(g.user, motion), "表决已结束")


@bp.post("/<int:meeting_id>/minutes")
@roles_required(*MANAGE)
def minutes(meeting_id: int):
    m = _meeting(meeting_id)
    f = request.files.get("file")
    return _act(m, lambda: ops.attach_minutes(g.user, m, f.filename if f else "", f.read() if f else b""),
                "会议纪要已上传")


@bp.post("/<int:meeting_id>/cancel")
@roles_required(*MANAGE)
def cancel(meeting_id: int):
    m = _meeting(meeting_id)
    return _act(m, lambda: ops.cancel(g.user, m), "会议已取消")


@bp.post("/<int:meeting_id>/finish")
@roles_required(*MANAGE)
def finish(meeting_id: int):
    m = _meeting(meeting_id)
    return _act(m, lambda: ops.finish(g.user, m), "会议已结束，推流码已作废")


@bp.post("/<int:meeting_id>/rotate-key")
@roles_required(*MANAGE)
def rotate_key(meeting_id: int):
    m = _meeting(meeting_id)
    return _act(m, lambda: ops.rotate_key(g.user, m), "已更换推流密钥，请在 OBS 中更新")
