"""Every write of the content workflow: validate → change → flush → signal → audit.

draft → submitted → approved (published at ``publish_at``) | rejected (with reason) → withdrawn /
expired. Editing a published (or approved) item opens a new version; the live one stays on TV
until the new one is approved. The caller commits; errors are core ``ApiError``s (400 bad input
naming the field, 403 role/scope naming the region, 409 state).
"""
from __future__ import annotations

import datetime as dt
import html
import json
import logging
import re

import nh3
from sqlalchemy import select

from portal_server.core import audit, clock, outbox, protocol, scope, signals
from portal_server.core.accounts import User
from portal_server.core.api import bad_request, conflict, forbidden, parse_ts
from portal_server.core.db import session, utcnow
from portal_server.core.households import TAGS
from portal_server.core.regions import Region, region_by_code, villages_under

from .models import (SECTIONS, STATUS_NAMES, Content, ContentMedia, ContentTarget, ContentVersion)

log = logging.getLogger(__name__)

MAX_TITLE = 120
MAX_BODY = 200_000
SUMMARY_LEN = 80

# The sanitiser's allow-list: text structure, links, images and simple tables; never scripts,
# frames, forms, event handlers, style attributes or javascript: URLs.
ALLOWED_TAGS = {"p", "br", "strong", "b", "em", "i", "u", "s", "ul", "ol", "li", "h2", "h3", "h4",
                "blockquote", "a", "img", "table", "thead", "tbody", "tr", "th", "td", "hr", "span",
                "div", "sub", "sup"}
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "img": {"src", "alt", "width", "height"},
                      "td": {"colspan", "rowspan"}, "th": {"colspan", "rowspan"}}
URL_SCHEMES = {"http", "https", "mailto", "tel"}


def paragraphs(text: str) -> str:
    """Plain text as most village editors type it: a blank line starts a paragraph, a line break
    stays a line break. Text that already has markup is left as it is."""
    if re.search(r"<[a-zA-Z/][^>]*>", text or ""):
        return text
    blocks = [b.strip() for b in re.split(r"\n\s*\n", (text or "").replace("\r\n", "\n")) if b.strip()]
    return "".join("<p>" + html.escape(b).replace("\n", "<br>") + "</p>" for b in blocks)


def sanitize_body(body: str) -> str:
    """Rich text made safe for every TV and browser: nh3 (ammonia) with our allow-list; plain
    text becomes paragraphs first."""
    return nh3.clean(paragraphs(body), tags=ALLOWED_TAGS, attributes=ALLOWED_ATTRIBUTES,
                     url_schemes=URL_SCHEMES, link_rel="noopener noreferrer",
                     clean_content_tags={"script", "style"}, strip_comments=True)


def summary_of(body: str, limit: int = SUMMARY_LEN) -> str:
    """Plain text of ``body`` for tiles and notices: at most ``limit`` characters."""
    text = nh3.clean(re.sub(r"<(br|/p|/li|/h\d|/div|/tr)\b[^>]*>", " ", body or "", flags=re.I),
                     tags=set(), clean_content_tags={"script", "style"})
    text = re.sub(r"\s+", " ", html.unescape(text)).strip()
    return text if len(text) <= limit else text[:limit - 1] + "…"


# Permissions ------------------------------------------------------------------------------

def _in(path: str | None, user: User) -> bool:
    return bool(path) and path.startswith(user.region.path)


def target_paths(version: ContentVersion) -> list[str]:
    rows = session.scalars(select(Region.path).where(Region.code.in_(version.target_codes))).all()
    return list(rows)


def can_read(user: User, c: Content) -> bool:
    """Staff read items written in their scope or aimed at a region inside it."""
    if "admin" in user.roles or _in(c.author_region_path, user):
        return True
    if any(_in(t.region_path, user) for t in c.targets):
        return True
    work = c.work_version
    return work is not None and any(_in(p, user) for p in target_paths(work))


def can_edit(user: User, c: Content) -> bool:
    """Editors change items written in their scope whose every target is in their scope."""
    if not user.has_role("editor") or not _in(c.author_region_path, user):
        return False
    return all(_in(p, user) for p in target_paths(c.current))


def reviewer_problem(user: User, authors, targets) -> str | None:
    """The review rule of everything published to villages (content items here, village affairs
    disclosures in ``portal_server.affairs``): None when ``user`` may approve, else why not.

    ``authors``: usernames who wrote it (an author never approves); ``targets``: (code, path) of
    each region it goes to (every one must lie in the reviewer's scope)."""
    if not user.has_role("reviewer"):
        return "approving needs the reviewer role"
    if user.username in {a for a in authors if a}:
        return "an author never approves their own item"
    for code, path in targets:
        if not _in(path, user):
            return f"发布区域 {code} 不在您的管辖范围内"
    return None


def review_problem(user: User, c: Content) -> str | None:
    """None when ``user`` may approve/reject the pending version, else why not."""
    work = c.work_version
    authors = [user.username] if user.id == c.author_id else []
    if work is not None:
        authors.append(work.created_by)
    return reviewer_problem(user, authors, _review_targets(work) if work is not None else ())


def _review_targets(version: ContentVersion):
    # A generator: the regions are looked up only once role and authorship have passed.
    yield from zip(*_codes_paths(version))


def _codes_paths(version: ContentVersion) -> tuple[list[str], list[str]]:
    rows = {r.code: r.path for r in session.scalars(select(Region).where(Region.code.in_(version.target_codes)))}
    codes = [c for c in version.target_codes if c in rows]
    return codes, [rows[c] for c in codes]


def can_withdraw(user: User, c: Content) -> bool:
    """The editors of the item's scope, and reviewers who cover every live target."""
    if can_edit(user, c):
        return True
    if not user.has_role("reviewer"):
        return False
    paths = [t.region_path for t in c.targets] or target_paths(c.current)
    return bool(paths) and all(_in(p, user) for p in paths)


def allowed_actions(user: User, c: Content) -> list[str]:
    """The buttons this user gets on the item page."""
    out = []
    work = c.work_version
    if can_edit(user, c) and c.status not in ("withdrawn", "expired"):
        if work is None or work.status in ("draft", "rejected"):
            out.append("edit")
        if work is not None and work.status in ("draft", "rejected"):
            out.append("submit")
    if work is not None and work.status == "submitted" and review_problem(user, c) is None:
        out += ["approve", "reject"]
    if c.status in ("submitted", "approved", "published") and can_withdraw(user, c):
        out.append("withdraw")
    return out


# Validation -------------------------------------------------------------------------------

def _validate(user: User, data: dict, partial_of: ContentVersion | None = None) -> dict:
    """Checked, normalised fields; nothing is written before all of them pass."""
    base = {} if partial_of is None else {
        "section": partial_of.section, "title": partial_of.title, "body": partial_of.body,
        "target_regions": partial_of.target_codes, "target_tags": partial_of.tag_list,
        "publish_at": clock.aware(partial_of.publish_at), "expire_at": clock.aware(partial_of.expire_at),
        "pinned": partial_of.pinned, "media_ids": partial_of.media_ids}
    merged = {**base, **{k: v for k, v in data.items() if k in (
        "section", "title", "body", "target_regions", "target_tags", "publish_at", "expire_at",
        "pinned", "media_ids")}}
    section = merged.get("section")
    if section not in SECTIONS:
        raise bad_request(f"invalid field section: must be one of {', '.join(SECTIONS)}", field="section")
    title = merged.get("title")
    if not isinstance(title, str) or not title.strip():
        raise bad_request("missing field: title (标题不能为空)", field="title")
    title = title.strip()
    if len(title) > MAX_TITLE:
        raise bad_request(f"invalid field title: at most {MAX_TITLE} characters", field="title")
    body = merged.get("body") or ""
    if not isinstance(body, str) or len(body) > MAX_BODY:
        raise bad_request(f"invalid field body: text of at most {MAX_BODY} characters", field="body")
    codes = merged.get("target_regions")
    if isinstance(codes, str):
        codes = [c for c in re.split(r"[\s,]+", codes) if c]
    if not isinstance(codes, list) or not codes or not all(isinstance(c, str) for c in codes):
        raise bad_request("missing field: target_regions (at least one region code)", field="target_regions")
    codes = sorted(set(codes))
    for code in codes:
        region = region_by_code(code)
        if region is None:
            raise bad_request(f"invalid field target_regions: unknown region {code}", field="target_regions")
        if not region.path.startswith(user.region.path):
            raise scope.OutOfScope(region, "发布目标")
    tags = merged.get("target_tags") or []
    if isinstance(tags, str):
        tags = tags.split()
    if not isinstance(tags, list) or any(t not in TAGS for t in tags):
        raise bad_request(f"invalid field target_tags: tags are {', '.join(TAGS)}", field="target_tags")
    publish_at = parse_ts(merged.get("publish_at"), "publish_at")
    expire_at = parse_ts(merged.get("expire_at"), "expire_at")
    if publish_at and expire_at and expire_at <= publish_at:
        raise bad_request("invalid field expire_at: must be after publish_at (下线时间须晚于发布时间)",
                          field="expire_at")
    if expire_at and expire_at <= utcnow() and partial_of is None:
        raise bad_request("invalid field expire_at: already in the past", field="expire_at")
    pinned = merged.get("pinned", False)
    if not isinstance(pinned, bool):
        raise bad_request("invalid field pinned: true or false", field="pinned")
    media_ids = merged.get("media_ids") or []
    if not isinstance(media_ids, list) or not all(isinstance(i, int) for i in media_ids):
        raise bad_request("invalid field media_ids: a list of ids", field="media_ids")
    return {"section": section, "title": title, "body": sanitize_body(body), "codes": codes,
            "tags": sorted(set(tags), key=TAGS.index), "publish_at": publish_at, "expire_at": expire_at,
            "pinned": pinned, "media_ids": media_ids}


def _fill(v: ContentVersion, f: dict) -> None:
    v.section, v.title, v.body = f["section"], f["title"], f["body"]
    v.target_codes_json = json.dumps(f["codes"])
    v.target_tags = " ".join(f["tags"])
    v.publish_at = f["publish_at"].astimezone(dt.timezone.utc) if f["publish_at"] else None
    v.expire_at = f["expire_at"].astimezone(dt.timezone.utc) if f["expire_at"] else None
    v.pinned = f["pinned"]
    v.media_ids_json = json.dumps(f["media_ids"])


def _set_targets(c: Content, codes: list[str]) -> None:
    keep = {t.region_code: t for t in c.targets if t.region_code in codes}
    for t in list(c.targets):
        if t.region_code not in keep:
            c.targets.remove(t)
    session.flush()  # deletes before inserts: (content, region) is unique
    for r in session.scalars(select(Region).where(Region.code.in_(codes))):
        if r.code not in keep:
            c.targets.append(ContentTarget(region_code=r.code, region_path=r.path))


def _mirror(c: Content, v: ContentVersion) -> None:
    """Copy the fields the TV queries filter on from ``v`` onto the item."""
    c.section, c.title, c.pinned = v.section, v.title, v.pinned
    c.publish_at, c.expire_at = v.publish_at, v.expire_at
    c.target_tags = (" " + v.target_tags + " ") if v.target_tags else ""
    _set_targets(c, v.target_codes)


def _check_media(c: Content, ids: list[int]) -> None:
    if not ids:
        return
    found = set(session.scalars(select(ContentMedia.id).where(ContentMedia.content_id == c.id,
                                                              ContentMedia.id.in_(ids))))
    missing = [i for i in ids if i not in found]
    if missing:
        raise bad_request(f"invalid field media_ids: {missing[0]} is not a file of this item", field="media_ids")


def _audit(action: str, c: Content, user: User | None = None, **detail) -> None:
    audit.record(f"content.{action}", "content", c.id, c.author_region.code,
                 actor=user.username if user is not None else None, **detail)


# The workflow -----------------------------------------------------------------------------

def create(user: User, data: dict) -> Content:
    """A new draft (version 1) by an editor; targets must lie inside the editor's scope."""
    if not user.has_role("editor"):
        raise forbidden("creating content needs the editor role")
    f = _validate(user, data)
    if f["media_ids"]:
        raise bad_request("invalid field media_ids: upload files to the item after creating it", field="media_ids")
    now = utcnow()
    c = Content(status="draft", section=f["section"], title=f["title"], author_id=user.id,
                author_region_id=user.region_id, author_region_path=user.region.path,
                created_at=now, updated_at=now)
    session.add(c)
    session.flush()
    v = ContentVersion(content_id=c.id, number=1, status="draft", created_by=user.username, created_at=now)
    _fill(v, f)
    session.add(v)
    session.flush()
    c.work_version_id = v.id
    _mirror(c, v)
    session.flush()
    _audit("create", c, user, version=1, section=v.section, title=v.title, targets=v.target_codes,
           tags=v.tag_list)
    return c


def _work_version_for_edit(user: User, c: Content) -> tuple[ContentVersion, bool]:
    """The version an edit goes into: the pending draft/rejected one, or a new copy of the live one."""
    if not can_edit(user, c):
        raise forbidden(f"内容 {c.id} 不在您的管辖范围内，或您没有编辑角色")
    if c.status in ("withdrawn", "expired"):
        raise conflict(f"内容 {c.id} {STATUS_NAMES[c.status]}，不能再编辑")
    work = c.work_version
    if work is not None:
        if work.status == "submitted":
            raise conflict(f"version {work.number} is under review（待审核）: wait for the review")
        return work, False
    live = c.live_version
    number = (session.scalar(select(ContentVersion.number).where(ContentVersion.content_id == c.id)
                             .order_by(ContentVersion.number.desc()).limit(1)) or 0) + 1
    v = ContentVersion(content_id=c.id, number=number, status="draft", created_by=user.username,
                       section=live.section, title=live.title, body=live.body,
                       target_codes_json=live.target_codes_json, target_tags=live.target_tags,
                       publish_at=live.publish_at, expire_at=live.expire_at, pinned=live.pinned,
                       media_ids_json=live.media_ids_json)
    session.add(v)
    session.flush()
    c.work_version_id = v.id
    return v, True


def update(user: User, c: Content, data: dict) -> ContentVersion:
    """Edit the item: in place while it is a draft (or rejected), as a new version once approved."""
    if not can_edit(user, c):
        raise forbidden(f"内容 {c.id} 不在您的管辖范围内，或您没有编辑角色")
    base = c.work_version if c.work_version is not None else c.live_version
    f = _validate(user, data, partial_of=base)
    _check_media(c, f["media_ids"])
    v, new = _work_version_for_edit(user, c)
    _fill(v, f)
    v.status = "draft"
    v.reject_reason = None
    if c.live_version_id is None:
        c.status = "draft"
        _mirror(c, v)
    c.updated_at = utcnow()
    session.flush()
    _audit("edit", c, user, version=v.number, new_version=new, title=v.title, targets=v.target_codes)
    return v


def submit(user: User, c: Content) -> ContentVersion:
    """Send the pending version for review."""
    if not can_edit(user, c):
        raise forbidden(f"内容 {c.id} 不在您的管辖范围内，或您没有编辑角色")
    v = c.work_version
    if v is None or v.status not in ("draft", "rejected"):
        state = v.status if v is not None else c.status
        raise conflict(f"内容 {c.id} 没有可提交审核的草稿（当前：{STATUS_NAMES.get(state, state)}）")
    if c.status in ("withdrawn", "expired"):
        raise conflict(f"内容 {c.id} {STATUS_NAMES[c.status]}，不能进行此操作")
    v.status, v.submitted_at = "submitted", utcnow()
    if c.live_version_id is None:
        c.status = "submitted"
    c.updated_at = utcnow()
    session.flush()
    _audit("submit", c, user, version=v.number)
    return v


def approve(user: User, c: Content) -> ContentVersion:
    """Approve the pending version: it becomes the live one (published now or at ``publish_at``)."""
    v = c.work_version
    problem = review_problem(user, c)
    if problem:
        raise forbidden(problem)
    if v is None or v.status != "submitted":
        raise conflict(f"内容 {c.id} 没有待审核的版本（当前：{STATUS_NAMES[c.status]}）")
    if c.status in ("withdrawn", "expired"):
        raise conflict(f"内容 {c.id} {STATUS_NAMES[c.status]}，不能进行此操作")
    now = utcnow()
    old = c.live_version
    if old is not None:
        old.status = "superseded"
    v.status, v.reviewed_by, v.reviewed_at = "approved", user.username, now
    if v.publish_at is None:
        v.publish_at = now
    old_villages = _village_codes(c) if c.status == "published" else []
    c.live_version_id, c.work_version_id = v.id, None
    _mirror(c, v)
    c.updated_at = now
    was_published = c.status == "published"
    session.flush()
    _audit("approve", c, user, version=v.number, publish_at=v.publish_at.isoformat())
    if was_published or clock.aware(v.publish_at) <= now:
        if not was_published:
            c.published_at = now
        c.status = "published"
        session.flush()
        gone = sorted(set(old_villages) - set(_village_codes(c)))
        if gone:  # a new version may aim at fewer villages: those pages lose it
            signals.content_unpublished.send(c.id, region_codes=gone, reason="withdrawn")
        _published(c, user, version=v.number)
    else:
        c.status = "approved"
        session.flush()
    return v


def reject(user: User, c: Content, reason: str | None) -> ContentVersion:
    """Send the pending version back to its editor with a reason."""
    problem = review_problem(user, c)
    if problem:
        raise forbidden(problem)
    v = c.work_version
    if v is None or v.status != "submitted":
        raise conflict(f"内容 {c.id} 没有待审核的版本（当前：{STATUS_NAMES[c.status]}）")
    reason = (reason or "").strip()
    if not reason:
        raise bad_request("missing field: reason (请填写退回理由)", field="reason")
    v.status, v.reviewed_by, v.reviewed_at, v.reject_reason = "rejected", user.username, utcnow(), reason[:2000]
    if c.live_version_id is None:
        c.status = "rejected"
    c.updated_at = utcnow()
    session.flush()
    _audit("reject", c, user, version=v.number, reason=v.reject_reason)
    return v


def withdraw(user: User, c: Content, reason: str | None = None) -> Content:
    """Take the item off every TV (or out of review/schedule) for good."""
    if not can_withdraw(user, c):
        raise forbidden(f"内容 {c.id} 不在您的管辖范围内，或您没有编辑或审核角色")
    if c.status not in ("submitted", "approved", "published"):
        raise conflict(f"内容 {c.id} {STATUS_NAMES[c.status]}，没有可撤回的内容")
    was_published = c.status == "published"
    villages = _village_codes(c)
    c.status = "withdrawn"
    work = c.work_version
    if work is not None and work.status == "submitted":
        work.status = "draft"
    c.updated_at = utcnow()
    session.flush()
    if was_published:
        signals.content_unpublished.send(c.id, region_codes=villages, reason="withdrawn", targets=_target_codes(c))
    _audit("withdraw", c, user, reason=(reason or "")[:500], was_published=was_published)
    return c


def publish_due(now: dt.datetime | None = None) -> int:
    """Periodic: approved items whose ``publish_at`` has come become published (idempotent)."""
    now = now or utcnow()
    rows = list(session.scalars(select(Content).where(Content.status == "approved",
                                                      Content.publish_at <= now)))
    for c in rows:
        c.status, c.published_at, c.updated_at = "published", now, now
        session.flush()
        _published(c, None, scheduled=True)
    return len(rows)


def expire_due(now: dt.datetime | None = None) -> int:
    """Periodic: published or approved items past ``expire_at`` become expired (idempotent)."""
    now = now or utcnow()
    rows = list(session.scalars(select(Content).where(Content.status.in_(("published", "approved")),
                                                      Content.expire_at.is_not(None),
                                                      Content.expire_at <= now)))
    for c in rows:
        was_published = c.status == "published"
        c.status, c.updated_at = "expired", now
        session.flush()
        if was_published:
            signals.content_unpublished.send(c.id, region_codes=_village_codes(c), reason="expired",
                                             targets=_target_codes(c))
        audit.record("content.expire", "content", c.id, c.author_region.code, actor="system",
                     was_published=was_published)
    return len(rows)


# Reaching the boxes -----------------------------------------------------------------------

def _village_codes(c: Content) -> list[str]:
    """Every village under any live target of ``c``."""
    out: set[str] = set()
    for t in c.targets:
        region = region_by_code(t.region_code)
        if region is not None:
            out.update(r.code for r in villages_under(region))
    return sorted(out)


def _target_codes(c: Content) -> list[str]:
    """The regions ``c`` is aimed at (a box's pages listen to their region and the two above it,
    so these reach exactly the terminals that show the item: a town's villages and its town hall)."""
    return sorted({t.region_code for t in c.targets})


#: Set False by the demo seed: no notices to boxes for demo content.
NOTIFY = {"enabled": True}


def _published(c: Content, user: User | None, **detail) -> None:
    villages = _village_codes(c)
    signals.content_published.send(c.id, region_codes=villages, section=c.section, targets=_target_codes(c),
                                   notice=protocol.notice_payload("content", c.id, c.title, f"/tv/item/{c.id}"))
    audit.record("content.publish", "content", c.id, c.author_region.code,
                 actor=user.username if user is not None else "system", villages=len(villages), **detail)
    if NOTIFY["enabled"]:  # after commit (it was queued before: a rollback still notified the boxes)
        outbox.job("portal_server.content.tasks:send_notices", c.id, queue="high")
