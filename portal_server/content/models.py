"""Editors' content for the eight TV sections: items, their versions, targets and media.

An item (``Content``) is what residents see; each edit is a ``ContentVersion`` that goes through
review. ``Content.live_version_id`` names the version the TV shows; a newer version under review
never replaces it until it is approved. ``ContentTarget`` rows are the live version's target
regions (one indexed row per region, so "what does village V see" is one query).
"""
from __future__ import annotations

import datetime as dt
import json

from sqlalchemy import Boolean, DateTime, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal_server.core.accounts import User
from portal_server.core.db import Base, session, utcnow
from portal_server.core.regions import Region

#: The ``data-section`` values of the TV home screen (INTERFACES §6).
SECTIONS = ("party", "services", "affairs", "safety", "elderly", "live", "interaction", "meetings")
SECTION_NAMES = {"party": "社区党建", "services": "下沉服务", "affairs": "社区管理", "safety": "平安社区",
                 "elderly": "养老助老", "live": "视频直播", "interaction": "政民互动", "meetings": "社区会议"}
#: Item statuses (INTERFACES §4).
STATUSES = ("draft", "submitted", "approved", "published", "rejected", "withdrawn", "expired")
STATUS_NAMES = {"draft": "草稿", "submitted": "待审核", "approved": "已通过待发布", "published": "已发布",
                "rejected": "已退回", "withdrawn": "已撤回", "expired": "已过期"}
#: Version statuses: a version is worked on, reviewed, and then live or replaced.
VERSION_STATUSES = ("draft", "submitted", "approved", "rejected", "superseded")
MEDIA_KINDS = ("image", "video", "attachment")


class Content(Base):
    """One item as residents know it; its fields mirror the live version (or the first draft)."""

    __tablename__ = "contents"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: One of STATUSES.
    status: Mapped[str] = mapped_column(String(12), index=True, default="draft")
    #: One of SECTIONS (of the live version, or of the working version before the first approval).
    section: Mapped[str] = mapped_column(String(16), index=True)
    #: Title of the live version (or of the working version before the first approval).
    title: Mapped[str] = mapped_column(String(120))
    #: Who created the item; never its approver.
    author_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    #: The author's scope root when the item was created: the "source" shown on TV.
    author_region_id: Mapped[int] = mapped_column(ForeignKey("regions.id"))
    #: Copy of the author region's path: scoped prefix queries without a join.
    author_region_path: Mapped[str] = mapped_column(String(255), index=True)
    #: When the item becomes visible (UTC); set to the approval time when none was given.
    publish_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), index=True)
    #: When the item disappears (UTC); None = never.
    expire_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), index=True)
    #: Pinned items come first in their section.
    pinned: Mapped[bool] = mapped_column(Boolean, default=False)
    #: Household tags the live version targets, space-padded (" elderly_alone veteran "); "" = everyone.
    target_tags: Mapped[str] = mapped_column(String(128), default="")
    #: When it first became visible on TV.
    published_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    #: The version the TV shows (None until the first approval).
    #: (A plain id, not a foreign key: contents ↔ versions would be a cycle for SQLite's ALTER.)
    live_version_id: Mapped[int | None] = mapped_column(Integer)
    #: The version being edited or reviewed (None when nothing is pending).
    work_version_id: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    author: Mapped[User] = relationship(foreign_keys=[author_id])
    author_region: Mapped[Region] = relationship()
    targets: Mapped[list["ContentTarget"]] = relationship(cascade="all, delete-orphan",
                                                          order_by="ContentTarget.region_code")

    @property
    def tag_list(self) -> list[str]:
        return [t for t in self.target_tags.split() if t]

    @property
    def live_version(self) -> "ContentVersion | None":
        return session.get(ContentVersion, self.live_version_id) if self.live_version_id else None

    @property
    def work_version(self) -> "ContentVersion | None":
        return session.get(ContentVersion, self.work_version_id) if self.work_version_id else None

    @property
    def current(self) -> "ContentVersion":
        """The version staff work on: the pending one, else the live one."""
        return self.work_version or self.live_version


class ContentVersion(Base):
    """One revision of an item, with everything an editor can change; reviewed as a whole."""

    __tablename__ = "content_versions"
    __table_args__ = (UniqueConstraint("content_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    content_id: Mapped[int] = mapped_column(ForeignKey("contents.id", ondelete="CASCADE"), index=True)
    #: 1, 2, … per item.
    number: Mapped[int] = mapped_column(Integer)
    #: One of VERSION_STATUSES.
    status: Mapped[str] = mapped_column(String(12), default="draft")
    section: Mapped[str] = mapped_column(String(16))
    title: Mapped[str] = mapped_column(String(120))
    #: Sanitised HTML (nh3 at save): safe to render as it is.
    body: Mapped[str] = mapped_column(Text, default="")
    #: JSON list of target region codes.
    target_codes_json: Mapped[str] = mapped_column(Text, default="[]")
    #: Space-separated household tags ("" = every household).
    target_tags: Mapped[str] = mapped_column(String(128), default="")
    publish_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    expire_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    pinned: Mapped[bool] = mapped_column(Boolean, default=False)
    #: JSON list of ContentMedia ids in display order.
    media_ids_json: Mapped[str] = mapped_column(Text, default="[]")
    #: Username of the editor who wrote this version.
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    submitted_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    #: Username of the reviewer who approved or rejected it.
    reviewed_by: Mapped[str | None] = mapped_column(String(64))
    reviewed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    #: Why it was rejected.
    reject_reason: Mapped[str | None] = mapped_column(Text)

    @property
    def target_codes(self) -> list[str]:
        return json.loads(self.target_codes_json or "[]")

    @property
    def tag_list(self) -> list[str]:
        return [t for t in self.target_tags.split() if t]

    @property
    def media_ids(self) -> list[int]:
        return json.loads(self.media_ids_json or "[]")


class ContentTarget(Base):
    """A target region of an item's live version (its working version's before first approval)."""

    __tablename__ = "content_targets"
    __table_args__ = (UniqueConstraint("content_id", "region_code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    content_id: Mapped[int] = mapped_column(ForeignKey("contents.id", ondelete="CASCADE"), index=True)
    #: 12-digit code of a city, town or village.
    region_code: Mapped[str] = mapped_column(String(12), index=True)
    #: Copy of the region's path (scope checks without a join).
    region_path: Mapped[str] = mapped_column(String(255), index=True)


class ContentMedia(Base):
    """An image, video or attachment uploaded for an item (files under media_dir/content/<item>/)."""

    __tablename__ = "content_media"

    id: Mapped[int] = mapped_column(primary_key=True)
    content_id: Mapped[int] = mapped_column(ForeignKey("contents.id", ondelete="CASCADE"), index=True)
    #: image, video or attachment.
    kind: Mapped[str] = mapped_column(String(12))
    #: Original file name (attachments show it).
    name: Mapped[str] = mapped_column(String(200))
    #: Alt text of an image (read aloud, shown when it cannot load).
    alt: Mapped[str] = mapped_column(String(200), default="")
    #: Path relative to media_dir: the TV-size image, the video source, or the attachment.
    path: Mapped[str] = mapped_column(String(255))
    #: Path relative to media_dir of the phone-size image (images only).
    phone_path: Mapped[str | None] = mapped_column(String(255))
    #: Videos: pending, ready or failed; images and attachments are ready at once.
    state: Mapped[str] = mapped_column(String(12), default="ready")
    #: Videos: path relative to hls_dir of the VOD playlist once transcoded.
    hls_path: Mapped[str | None] = mapped_column(String(255))
    #: Videos: path relative to media_dir of the poster frame.
    poster_path: Mapped[str | None] = mapped_column(String(255))
    #: Videos: why transcoding failed.
    error: Mapped[str | None] = mapped_column(Text)
    size_bytes: Mapped[int] = mapped_column(Integer, default=0)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
