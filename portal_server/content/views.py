"""Staff web of the content feature (/admin/content/…): my drafts, all items in scope with search
and filters, the review queue, the editor form with the region tree, the item page with its
workflow buttons, side-by-side version diff and the TV preview.
"""
from __future__ import annotations

import difflib

from flask import (Blueprint, abort, flash, g, redirect, render_template, request,
                   url_for)
from markupsafe import Markup
from sqlalchemy import select

from portal_server.core import clock
from portal_server.core.api import ApiError
from portal_server.core.audit import events_for
from portal_server.core.auth import roles_required
from portal_server.core.db import session
from portal_server.core.households import TAG_NAMES, TAGS
from portal_server.core.regions import Region
from stb_app import render_item_page

from . import media as content_media
from . import operations as ops
from . import queries
from .models import SECTION_NAMES, SECTIONS, STATUS_NAMES, STATUSES, Content, ContentVersion

bp = Blueprint("content_staff", __name__, url_prefix="/admin/content", template_folder="templates")

ROLES = ("editor", "reviewer")
PER_PAGE = 30
ACTION_NAMES = {"submit": "提交审核", "approve": "审核通过", "reject": "退回修改", "withdraw": "撤回下线",
                "edit": "编辑"}
AUDIT_NAMES = {"content.create": "新建草稿", "content.edit": "修改", "content.submit": "提交审核",
               "content.approve": "审核通过", "content.reject": "退回修改", "content.publish": "发布到电视",
               "content.withdraw": "撤回下线", "content.expire": "到期下线", "content.media_add": "上传文件"}
VERSION_STATUS_NAMES = {"draft": "草稿", "submitted": "待审核", "approved": "已通过", "rejected": "已退回",
                        "superseded": "已被新版本取代"}


@bp.context_processor
def _names():
    return {"SECTION_NAMES": SECTION_NAMES, "SECTIONS": SECTIONS, "STATUS_NAMES": STATUS_NAMES,
            "STATUSES": STATUSES, "TAG_NAMES": TAG_NAMES, "TAGS": TAGS, "ACTION_NAMES": ACTION_NAMES,
            "VERSION_STATUS_NAMES": VERSION_STATUS_NAMES, "AUDIT_NAMES": AUDIT_NAMES, "local": clock.fmt}


def home_card(user):
    """Home card: items waiting for this reviewer's decision (editors: their items sent back)."""
    if user.has_role("reviewer"):
        n = len(queries.review_queue(user))
        return {"title": "待审核信息", "value": n, "url": url_for("content_staff.review"),
                "tone": "warn" if n else ""}
    if user.has_role("editor"):
        n = len(_my_work(user))
        return {"title": "我的草稿与退回", "value": n, "url": url_for("content_staff.index")}
    return None


def _my_work(user) -> list[Content]:
    rows = session.scalars(queries.listing(user, author_id=user.id)).all()
    return [c for c in rows if c.work_version is not None and c.work_version.status in ("draft", "rejected")
            and c.status not in ("withdrawn", "expired")]


def _load(content_id: int) -> Content:
    c = queries.get(content_id)
    if c is None:
        abort(404)
    if not ops.can_read(g.user, c):
        abort(403)
    return c


@bp.get("/")
@roles_required(*ROLES)
def index():
    """My drafts and items sent back, then every item in my scope with search and filters."""
    a = request.args
    section = a.get("section") if a.get("section") in SECTIONS else None
    status = a.get("status") if a.get("status") in STATUSES else None
    region = a.get("region") or None
    if region and not any(r.code == region for r in _scope_regions()):
        region = None
    try:
        page = max(1, int(a.get("page", 1)))
    except ValueError:
        page = 1
    q = queries.listing(g.user, section, status, region, (a.get("q") or "").strip() or None)
    from sqlalchemy import func
    total = session.scalar(select(func.count()).select_from(q.order_by(None).subquery()))
    rows = session.scalars(q.limit(PER_PAGE).offset((page - 1) * PER_PAGE)).all()
    return render_template("content/index.html", mine=_my_work(g.user) if g.user.has_role("editor") else [],
                           rows=rows, total=total, page=page, pages=max(1, -(-total // PER_PAGE)),
                           regions=_scope_regions(), args=a)


@bp.get("/review")
@roles_required("reviewer")
def review():
    """The review queue: pending versions this reviewer may decide (every target in scope)."""
    return render_template("content/review.html", rows=queries.review_queue(g.user))


# The editor form ----------------------------------------------------------------------------

def _scope_regions() -> list[Region]:
    """The user's region and everything under it, in tree order."""
    return list(session.scalars(select(Region).where(Region.path.startswith(g.user.region.path, autoescape=True))
                                .order_by(Region.path)))


def _tree(regions: list[Region]) -> list[dict]:
    """Nested nodes for the checkbox tree: {region, children}."""
    nodes = {r.id: {"region": r, "children": [], "codes": [r.code]} for r in regions}
    roots = []
    for r in regions:  # tree order: parents come before their children
        parent = nodes.get(r.parent_id)
        (parent["children"] if parent else roots).append(nodes[r.id])
    for r in reversed(regions):
        parent = nodes.get(r.parent_id)
        if parent:
            parent["codes"] += nodes[r.id]["codes"]
    return roots


def _form_values(v: ContentVersion | None) -> dict:
    if v is None:
        return {"section": request.args.get("section", "affairs"), "title": "", "body": "",
                "target_regions": [g.user.region.code], "target_tags": [], "publish_at": "",
                "expire_at": "", "pinned": False}
    return {"section": v.section, "title": v.title, "body": v.body, "target_regions": v.target_codes,
            "target_tags": v.tag_list, "publish_at": clock.fmt(v.publish_at, "%Y-%m-%d %H:%M"),
            "expire_at": clock.fmt(v.expire_at, "%Y-%m-%d %H:%M"), "pinned": v.pinned}


def _from_form() -> dict:
    f = request.form
    return {"section": f.get("section", ""), "title": f.get("title", ""), "body": f.get("body", ""),
            "target_regions": f.getlist("target_regions"), "target_tags": f.getlist("target_tags"),
            "publish_at": f.get("publish_at") or None, "expire_at": f.get("expire_at") or None,
            "pinned": f.get("pinned") == "on"}


FIELD_NAMES = {"section": "栏目", "title": "标题", "body": "正文", "target_regions": "发布范围",
               "target_tags": "面向人群", "publish_at": "发布时间", "expire_at": "下线时间",
               "reason": "退回理由", "file": "文件", "kind": "类型", "media_ids": "附件"}


def _message(e: ApiError) -> str:
    field = e.extra.get("field")
    return f"{FIELD_NAMES.get(field, field)}：{e.message}" if field else e.message


def _render_form(c: Content | None, values: dict, error: str | None = None, status: int = 200):
    return render_template("content/form.html", item=c, values=values, error=error,
                           tree=_tree(_scope_regions())), status


@bp.route("/new", methods=["GET", "POST"])
@roles_required("editor")
def new():
    if request.method == "GET":
        return _render_form(None, _form_values(None))
    data = _from_form()
    try:
        c = ops.create(g.user, data)
        if request.form.get("then") == "submit":
            ops.submit(g.user, c)
        session.commit()
    except ApiError as e:
        session.rollback()
        return _render_form(None, data, _message(e), e.status)
    flash(f"已保存：{c.title}" + ("，已提交审核" if c.status == "submitted" else ""))
    return redirect(url_for("content_staff.item", content_id=c.id))


@bp.route("/<int:content_id>/edit", methods=["GET", "POST"])
@roles_required("editor")
def edit(content_id: int):
    c = _load(content_id)
    if not ops.can_edit(g.user, c):
        abort(403)
    if request.method == "GET":
        return _render_form(c, _form_values(c.current))
    data = _from_form()
    try:
        ops.update(g.user, c, data)
        if request.form.get("then") == "submit":
            ops.submit(g.user, c)
        session.commit()
    except ApiError as e:
        session.rollback()
        return _render_form(c, data, _message(e), e.status)
    flash("已保存" + ("并提交审核" if c.work_version and c.work_version.status == "submitted" else ""))
    return redirect(url_for("content_staff.item", content_id=c.id))


# The item page ------------------------------------------------------------------------------

def _item_page(c: Content, error: str | None = None, status: int = 200):
    versions = queries.versions(c)
    names = {r.code: r.name for r in session.scalars(select(Region).where(
        Region.code.in_(c.current.target_codes)))}
    return render_template("content/item.html", item=c, cur=c.current, versions=versions,
                           actions=ops.allowed_actions(g.user, c), target_names=names,
                           media=queries.media_of(c.current), trail=events_for("content", c.id),
                           error=error), status


@bp.get("/<int:content_id>")
@roles_required(*ROLES)
def item(content_id: int):
    return _item_page(_load(content_id))


@bp.post("/<int:content_id>/action")
@roles_required(*ROLES)
def action(content_id: int):
    c = _load(content_id)
    name = request.form.get("action", "")
    fn = {"submit": lambda: ops.submit(g.user, c), "approve": lambda: ops.approve(g.user, c),
          "reject": lambda: ops.reject(g.user, c, request.form.get("reason")),
          "withdraw": lambda: ops.withdraw(g.user, c, request.form.get("reason"))}.get(name)
    if fn is None:
        abort(400)
    try:
        fn()
        session.commit()
    except ApiError as e:
        session.rollback()
        return _item_page(c, _message(e), e.status)
    flash(f"已{ACTION_NAMES[name]}：{c.title}（{STATUS_NAMES[c.status]}）")
    return redirect(url_for("content_staff.item", content_id=c.id))


@bp.post("/<int:content_id>/media")
@roles_required("editor")
def upload(content_id: int):
    c = _load(content_id)
    try:
        m = content_media.add(g.user, c, request.files.get("file"), request.form.get("kind", "image"),
                              request.form.get("alt", ""))
        session.commit()
    except ApiError as e:
        session.rollback()
        return _item_page(c, _message(e), e.status)
    flash(f"已上传：{m.name}" + ("（视频转码中）" if m.kind == "video" and m.state == "pending" else ""))
    return redirect(url_for("content_staff.item", content_id=c.id))


# Diff and preview ---------------------------------------------------------------------------

def _version(c: Content, number: int | None) -> ContentVersion:
    vs = queries.versions(c)
    if number is None:
        return c.current
    for v in vs:
        if v.number == number:
            return v
    abort(404)


def _diff_lines(v: ContentVersion) -> list[str]:
    names = {r.code: r.name for r in session.scalars(select(Region).where(Region.code.in_(v.target_codes)))}
    lines = [f"栏目：{SECTION_NAMES[v.section]}", f"标题：{v.title}",
             "范围：" + "、".join(names.get(code, code) for code in v.target_codes),
             "人群：" + ("、".join(TAG_NAMES[t] for t in v.tag_list) or "全部住户"),
             f"发布：{clock.fmt(v.publish_at) or '审核通过后立即'}", f"下线：{clock.fmt(v.expire_at) or '不自动下线'}",
             f"置顶：{'是' if v.pinned else '否'}", f"文件：{len(v.media_ids)} 个", "正文："]
    body = v.body.replace("</p>", "</p>\n").replace("<br>", "<br>\n").replace("</li>", "</li>\n")
    return lines + [line for line in body.splitlines() if line.strip()]


@bp.get("/<int:content_id>/diff")
@roles_required(*ROLES)
def diff(content_id: int):
    """Two versions side by side (default: the live one and the pending one)."""
    c = _load(content_id)
    vs = queries.versions(c)
    try:
        a = int(request.args["a"]) if request.args.get("a") else None
        b = int(request.args["b"]) if request.args.get("b") else None
    except ValueError:
        abort(400)
    if a is None:
        a = (c.live_version.number if c.live_version_id else vs[0].number)
    if b is None:
        b = c.current.number if c.current.number != a else vs[-1].number
    va, vb = _version(c, a), _version(c, b)
    table = difflib.HtmlDiff(wrapcolumn=60).make_table(
        _diff_lines(va), _diff_lines(vb), f"第 {va.number} 版（{VERSION_STATUS_NAMES[va.status]}）",
        f"第 {vb.number} 版（{VERSION_STATUS_NAMES[vb.status]}）", context=False)
    return render_template("content/diff.html", item=c, versions=vs, a=va, b=vb, table=Markup(table))


@bp.get("/<int:content_id>/preview")
@roles_required(*ROLES)
def preview(content_id: int):
    """The TV page of a version at 1280×720, scaled down (default: the version being worked on)."""
    c = _load(content_id)
    v = _version(c, request.args.get("version", type=int))
    return render_template("content/preview.html", item=c, v=v, versions=queries.versions(c))


@bp.get("/<int:content_id>/preview/frame")
@roles_required(*ROLES)
def preview_frame(content_id: int):
    c = _load(content_id)
    v = _version(c, request.args.get("version", type=int))
    item = queries.version_to_tv_dict(c, v)
    targets = v.target_codes
    first = session.scalar(select(Region).where(Region.code.in_(targets)).order_by(Region.path)) if targets else None
    village_name = first.name if first is not None else c.author_region.name
    return render_item_page(item, village_name)
