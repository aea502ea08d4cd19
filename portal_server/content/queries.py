"""Reads of the content feature: what a box sees (the TV contract) and staff listings (scoped)."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import or_, select

from portal_server.core import clock
from portal_server.core.accounts import User
from portal_server.core.api import iso
from portal_server.core.db import session, utcnow
from portal_server.core.regions import Region, region_by_code

from .models import Content, ContentMedia, ContentTarget, ContentVersion
from .operations import summary_of


def _visible_query(village: Region, tags: list[str] | None, now: dt.datetime):
    chain = village.chain_codes()
    in_village = select(ContentTarget.content_id).where(ContentTarget.region_code.in_(chain))
    q = select(Content).where(Content.status == "published", Content.publish_at <= now,
                              or_(Content.expire_at.is_(None), Content.expire_at > now),
                              Content.id.in_(in_village))
    if tags is None:
        q = q.where(Content.target_tags == "")
    else:
        wanted = [t for t in tags if t]
        if not wanted:
            return None
        q = q.where(Content.target_tags != "",
                    or_(*[Content.target_tags.contains(f" {t} ") for t in wanted]))
    return q


def tv_items(village_code: str, section: str | None = None, tags: list[str] | None = None,
             limit: int | None = None) -> list[dict]:
    """What a box in ``village_code`` sees now: untagged items (``tags`` None, the static pages)
    or the items for these household tags (``tags`` a list); pinned first, newest first."""
    village = region_by_code(village_code)
    if village is None:
        return []
    q = _visible_query(village, tags, utcnow())
    if q is None:
        return []
    if section:
        q = q.where(Content.section == section)
    q = q.order_by(Content.pinned.desc(), Content.published_at.desc(), Content.id.desc())
    if limit:
        q = q.limit(limit)
    return _to_tv_dicts(list(session.scalars(q)))


def _to_tv_dicts(rows: list[Content]) -> list[dict]:
    """TV dicts of many items in four queries, whatever their number (no N+1)."""
    if not rows:
        return []
    versions = {v.id: v for v in session.scalars(select(ContentVersion).where(
        ContentVersion.id.in_([c.live_version_id for c in rows])))}
    media_ids = {i for v in versions.values() for i in v.media_ids}
    media = ({m.id: m for m in session.scalars(select(ContentMedia).where(ContentMedia.id.in_(media_ids)))}
             if media_ids else {})
    regions = {r.id: r for r in session.scalars(select(Region).where(
        Region.id.in_({c.author_region_id for c in rows})))}
    out = []
    for c in rows:
        v = versions[c.live_version_id]
        out.append(version_to_tv_dict(c, v, [media[i] for i in v.media_ids if i in media],
                                      regions[c.author_region_id].name))
    return out


def tv_item(content_id: int, village_code: str, tags: list[str] | None = None) -> dict | None:
    """One published item if a box of this village (with these household tags) may see it."""
    village = region_by_code(village_code)
    if village is None:
        return None
    now = utcnow()
    q = _visible_query(village, None, now)
    c = session.scalar(q.where(Content.id == content_id))
    if c is None and tags:
        q = _visible_query(village, tags, now)
        c = session.scalar(q.where(Content.id == content_id)) if q is not None else None
    return item_to_dict(c) if c is not None else None


def _media_url(rel: str | None) -> str | None:
    return f"/media/{rel}" if rel else None


def media_of(version: ContentVersion) -> list[ContentMedia]:
    ids = version.media_ids
    if not ids:
        return []
    rows = {m.id: m for m in session.scalars(select(ContentMedia).where(ContentMedia.id.in_(ids)))}
    return [rows[i] for i in ids if i in rows]


def version_to_tv_dict(c: Content, v: ContentVersion, media: list[ContentMedia] | None = None,
                       source: str | None = None) -> dict:
    """The TV shape of one version of ``c`` (also used by the staff preview of a pending version)."""
    media = media_of(v) if media is None else media
    images = [{"tv": _media_url(m.path), "phone": _media_url(m.phone_path or m.path), "alt": m.alt or m.name}
              for m in media if m.kind == "image"]
    video = None
    for m in media:
        if m.kind == "video" and m.state == "ready" and m.hls_path:
            video = {"hls_url": f"/hls/{m.hls_path}", "poster": _media_url(m.poster_path)}
            break
    attachments = [{"name": m.name, "url": _media_url(m.path)} for m in media if m.kind == "attachment"]
    return {"id": c.id, "section": v.section, "title": v.title, "summary": summary_of(v.body),
            "body": v.body, "images": images, "video": video, "attachments": attachments,
            "pinned": bool(v.pinned),
            "published_at": clock.aware(c.published_at or v.publish_at or utcnow()),
            "expire_at": clock.aware(v.expire_at), "source": source or c.author_region.name,
            "tags": v.tag_list, "version": v.number}


def item_to_dict(c: Content) -> dict:
    """The TV contract's dict of a published item (its live version)."""
    return version_to_tv_dict(c, c.live_version)


# Staff ------------------------------------------------------------------------------------

def get(content_id: int) -> Content | None:
    return session.get(Content, content_id)


def scoped(user: User):
    """Items this user may read: written in their scope or aimed at a region inside it."""
    q = select(Content)
    if "admin" in user.roles:
        return q
    path = user.region.path
    aimed = select(ContentTarget.content_id).where(ContentTarget.region_path.startswith(path, autoescape=True))
    return q.where(or_(Content.author_region_path.startswith(path, autoescape=True), Content.id.in_(aimed)))


def listing(user: User, section: str | None = None, status: str | None = None,
            region: str | None = None, q: str | None = None, author_id: int | None = None):
    """The select() behind the API listing and the staff pages (newest change first)."""
    query = scoped(user)
    if section:
        query = query.where(Content.section == section)
    if status == "submitted":
        pending = select(ContentVersion.content_id).where(ContentVersion.status == "submitted")
        query = query.where(Content.status.not_in(("withdrawn", "expired")), Content.id.in_(pending))
    elif status:
        query = query.where(Content.status == status)
    if region:
        r = region_by_code(region)
        path = r.path if r is not None else "-"
        sub = select(ContentTarget.content_id).where(ContentTarget.region_path.startswith(path, autoescape=True))
        query = query.where(or_(Content.author_region_path.startswith(path, autoescape=True), Content.id.in_(sub)))
    if q:
        query = query.where(Content.title.contains(q, autoescape=True))
    if author_id:
        query = query.where(Content.author_id == author_id)
    return query.order_by(Content.updated_at.desc(), Content.id.desc())


def review_queue(user: User) -> list[Content]:
    """Items with a version waiting for review that this reviewer may decide."""
    from .operations import review_problem

    if not user.has_role("reviewer"):
        return []
    rows = session.scalars(listing(user, status="submitted")).all()
    return [c for c in rows if review_problem(user, c) is None]


def versions(c: Content) -> list[ContentVersion]:
    return list(session.scalars(select(ContentVersion).where(ContentVersion.content_id == c.id)
                                .order_by(ContentVersion.number)))


def content_to_dict(c: Content, user: User | None = None) -> dict:
    """The API shape for staff: the item, its live and pending versions."""
    from .operations import allowed_actions

    cur = c.current
    work = c.work_version
    out = {"id": c.id, "status": c.status, "section": cur.section, "title": cur.title, "body": cur.body,
           "summary": summary_of(cur.body), "target_regions": cur.target_codes, "target_tags": cur.tag_list,
           "publish_at": iso(cur.publish_at), "expire_at": iso(cur.expire_at), "pinned": cur.pinned,
           "published_at": iso(c.published_at), "author": c.author.username,
           "source": c.author_region.name, "author_region": c.author_region.code,
           "version": cur.number, "live_version": c.live_version.number if c.live_version_id else None,
           "pending_version": ({"number": work.number, "status": work.status,
                                "reject_reason": work.reject_reason} if work is not None else None),
           "media": [{"id": m.id, "kind": m.kind, "name": m.name, "alt": m.alt, "state": m.state,
                      "url": _media_url(m.path)} for m in media_of(cur)],
           "created_at": iso(c.created_at), "updated_at": iso(c.updated_at)}
    if user is not None:
        out["actions"] = allowed_actions(user, c)
    return out
