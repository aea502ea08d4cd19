"""JSON API of INTERFACES §4: /api/v1/contents… and /api/v1/terminal/contents (thin handlers)."""
from __future__ import annotations

from flask import g, jsonify, request
from pydantic import BaseModel, Field

from portal_server.core import scope
from portal_server.core.api import (ApiError, bad_request, body, iso, make_blueprint,
                                    not_found, paginate)
from portal_server.core.auth import api_user_required, terminal_required
from portal_server.core.db import session
from portal_server.core.regions import region_by_code

from . import media as content_media
from . import operations as ops
from . import queries
from .models import SECTIONS, STATUSES, Content

bp = make_blueprint("content_api", __name__)


class ContentIn(BaseModel):
    section: str = Field(description="one of " + ", ".join(SECTIONS))
    title: str = Field(description="at most 120 characters")
    body: str = Field("", description="rich text (HTML); sanitised at save")
    target_regions: list[str] = Field(description="region codes inside the author's scope")
    target_tags: list[str] | None = Field(None, description="household tags; none = every household")
    publish_at: str | None = Field(None, description="ISO 8601; none = when approved")
    expire_at: str | None = Field(None, description="ISO 8601, after publish_at; none = never")
    pinned: bool = False


class ContentPatch(BaseModel):
    section: str | None = None
    title: str | None = None
    body: str | None = None
    target_regions: list[str] | None = None
    target_tags: list[str] | None = None
    publish_at: str | None = None
    expire_at: str | None = None
    pinned: bool | None = None
    media_ids: list[int] | None = None


class ReasonIn(BaseModel):
    reason: str | None = Field(None, max_length=2000)


def _load(content_id: int) -> Content:
    c = queries.get(content_id)
    if c is None:
        raise not_found(f"content {content_id}")
    if not ops.can_read(g.user, c):
        raise scope.OutOfScope(c.author_region, "内容")
    return c


def _answer(c: Content, status: int = 200):
    return jsonify(queries.content_to_dict(c, g.user)), status


@bp.post("/contents")
@api_user_required("editor")
@body(ContentIn)
def create(data: ContentIn):
    """Create a draft (editors; targets inside the editor's scope, else 403 naming the region)."""
    c = ops.create(g.user, data.model_dump())
    session.commit()
    return _answer(c, 201)


@bp.get("/contents")
@api_user_required()
def listing():
    """Items in the caller's scope: ?section=&status=&region=&q=&page=&per_page=."""
    section, status = request.args.get("section") or None, request.args.get("status") or None
    if section and section not in SECTIONS:
        raise bad_request(f"section must be one of {', '.join(SECTIONS)}", field="section")
    if status and status not in STATUSES:
        raise bad_request(f"status must be one of {', '.join(STATUSES)}", field="status")
    region = request.args.get("region") or None
    if region:
        r = region_by_code(region)
        if r is None:
            raise bad_request(f"unknown region {region}", field="region")
        if "admin" not in g.user.roles and not r.path.startswith(g.user.region.path):
            raise scope.OutOfScope(r)
    q = queries.listing(g.user, section, status, region, request.args.get("q") or None)
    return jsonify(paginate(q, lambda c: queries.content_to_dict(c, g.user), session))


@bp.get("/contents/<int:content_id>")
@api_user_required()
def show(content_id: int):
    """One item with its live and pending versions and the actions the caller may take."""
    return _answer(_load(content_id))


@bp.patch("/contents/<int:content_id>")
@api_user_required("editor")
@body(ContentPatch)
def edit(content_id: int, data: ContentPatch):
    """Edit: in place while a draft; once approved, a new version that needs review."""
    c = _load(content_id)
    ops.update(g.user, c, data.model_dump(exclude_unset=True))
    session.commit()
    return _answer(c)


@bp.get("/contents/<int:content_id>/versions")
@api_user_required()
def version_list(content_id: int):
    """Every version of an item, oldest first."""
    c = _load(content_id)
    return jsonify({"items": [{"number": v.number, "status": v.status, "title": v.title, "body": v.body,
                               "target_regions": v.target_codes, "created_by": v.created_by,
                               "created_at": iso(v.created_at), "reviewed_by": v.reviewed_by,
                               "reviewed_at": iso(v.reviewed_at), "reject_reason": v.reject_reason}
                              for v in queries.versions(c)]})


def _action(content_id: int, fn, *args):
    c = _load(content_id)
    fn(g.user, c, *args)
    session.commit()
    return _answer(c)


@bp.post("/contents/<int:content_id>/submit")
@api_user_required("editor")
def submit(content_id: int):
    """Send the pending version for review."""
    return _action(content_id, ops.submit)


@bp.post("/contents/<int:content_id>/approve")
@api_user_required("reviewer")
def approve(content_id: int):
    """Approve: published at publish_at (now if absent); the reviewer must cover every target."""
    return _action(content_id, ops.approve)


@bp.post("/contents/<int:content_id>/reject")
@api_user_required("reviewer")
def reject(content_id: int):
    """Send back to the editor with {"reason"}."""
    data = request.get_json(silent=True) or {}
    reason = data.get("reason") if isinstance(data, dict) else None
    if reason is not None and not isinstance(reason, str):
        raise bad_request("invalid field reason: text", field="reason")
    return _action(content_id, ops.reject, reason)


@bp.post("/contents/<int:content_id>/withdraw")
@api_user_required("editor", "reviewer")
def withdraw(content_id: int):
    """Take the item off every TV (or out of review or schedule) for good."""
    data = request.get_json(silent=True) or {}
    reason = data.get("reason") if isinstance(data, dict) else None
    return _action(content_id, ops.withdraw, reason if isinstance(reason, str) else None)


@bp.post("/contents/<int:content_id>/media")
@api_user_required("editor")
def upload(content_id: int):
    """Add a file (multipart ``file``, ``kind`` image|video|attachment, optional ``alt``) to the item.

    Images are resized for TV (1280) and phone (720) with EXIF stripped; videos are transcoded to
    HLS by a worker job. The file joins the pending version (a new one if the item is live).
    """
    c = _load(content_id)
    content_media.add(g.user, c, request.files.get("file"), request.form.get("kind", "image"),
                      request.form.get("alt", ""))
    session.commit()
    return _answer(c, 201)


# Boxes ------------------------------------------------------------------------------------

@bp.get("/terminal/contents")
@terminal_required
def terminal_contents():
    """What this box shows (X-Terminal-Token): untagged items plus its household's tagged ones."""
    section = request.args.get("section") or None
    if section and section not in SECTIONS:
        raise bad_request(f"section must be one of {', '.join(SECTIONS)}", field="section")
    term = g.terminal
    code = term.region.code
    items = queries.tv_items(code, section)
    tags = term.household.tag_list if term.household is not None else []
    if tags:
        items += queries.tv_items(code, section, tags=tags)
        items.sort(key=lambda i: (not i["pinned"], -i["published_at"].timestamp(), -i["id"]))
    out = [{**i, "published_at": iso(i["published_at"]), "expire_at": iso(i["expire_at"])} for i in items]
    return jsonify({"items": out, "total": len(out), "page": 1, "per_page": len(out)})


__all__ = ["bp", "ApiError"]
