"""Work orders (residents' feedback), their timeline, photos, and polls."""
from __future__ import annotations

import datetime as dt
import json

from sqlalchemy import (
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal_server.core.db import Base, utcnow
from portal_server.core.regions import Region

CATEGORIES = ("water", "roads", "electricity", "sanitation", "security", "disputes", "assistance",
              "elderly", "party", "other")
CATEGORY_NAMES = {"water": "供水用水", "roads": "道路交通", "electricity": "电力供应",
                  "sanitation": "环境卫生", "security": "社会治安", "disputes": "矛盾纠纷",
                  "assistance": "社会救助", "elderly": "养老服务", "party": "党建党务",
                  "other": "其他事项"}
CHANNELS = ("tv", "phone", "hotline", "open311", "staff", "grid")
CHANNEL_NAMES = {"tv": "电视", "phone": "手机", "hotline": "12345热线", "open311": "Open311",
                 "staff": "工作人员代录", "grid": "网格员上报"}

#: Statuses. "Pending" ones wait for the current desk to accept (签收).
STATUSES = ("submitted", "accepted", "assigned", "escalated", "returned", "replied", "closed",
            "reopened")
PENDING = ("submitted", "assigned", "escalated", "returned", "reopened")
OPEN = PENDING + ("accepted",)
STATUS_NAMES = {"submitted": "已提交", "accepted": "已受理", "assigned": "已转办",
                "escalated": "已上报", "returned": "已退回", "replied": "已答复",
                "closed": "已办结", "reopened": "重新办理"}
LEVEL_NAMES = {"village": "村（社区）", "town": "镇（街道）", "city": "市级", "department": "市级部门"}
ACTION_NAMES = {"submit": "提交诉求", "accept": "受理", "assign": "转办", "escalate": "上报",
                "return": "退回", "reply": "答复", "close": "办结", "reopen": "重新办理",
                "rate": "评价", "supplement": "补充材料", "overdue": "超期提醒",
                "supervise": "列为督办件", "follow_up": "回访",
                "urgent": "标为紧急"}


class WorkOrder(Base):
    """One resident's report and where it stands (the 12345 closed loop)."""

    __tablename__ = "work_orders"
    __table_args__ = (UniqueConstraint("idem_owner", "idempotency_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    #: Shown to the resident and on the phone, e.g. FK20261122000123.
    code: Mapped[str] = mapped_column(String(32), unique=True)
    #: One of CATEGORIES.
    category: Mapped[str] = mapped_column(String(16), index=True)
    #: Free text from the resident (TV preset phrase, phone text, hotline transcript).
    content: Mapped[str] = mapped_column(Text, default="")
    #: The resident asked to be called back.
    callback: Mapped[bool] = mapped_column(Boolean, default=False)
    #: Urgent (紧急件): due the same day at every desk; first in the inbox. Set by care's one-key
    #: help, by the hotline/staff when filing, or by a handler later (action "urgent").
    urgent: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    #: tv, phone, hotline, open311, staff or grid (a grid worker's event, portal_server.grids).
    channel: Mapped[str] = mapped_column(String(16))
    #: The filing household (boxes and QR phones); None for hotline/Open311 callers.
    household_id: Mapped[int | None] = mapped_column(ForeignKey("households.id"), index=True)
    #: Serial of the filing box (only that box may rate).
    terminal_serial: Mapped[str | None] = mapped_column(String(32))
    #: Who filed it: "terminal:<serial>", a username, or "phone".
    submitted_by: Mapped[str] = mapped_column(String(80))
    #: Whose idempotency keys these are ("hh:<id>", "user:<id>", "term:<serial>", "phone").
    idem_owner: Mapped[str] = mapped_column(String(48))
    #: The client's retry key; unique per owner (NULL means none given).
    idempotency_key: Mapped[str | None] = mapped_column(String(80))
    #: Encrypted phone of a hotline caller (Fernet), if any.
    contact_enc: Mapped[str | None] = mapped_column(Text)
    #: The village the report is about.
    region_id: Mapped[int] = mapped_column(ForeignKey("regions.id"))
    #: Copy of the village's path (scope prefix queries).
    region_path: Mapped[str] = mapped_column(String(255), index=True)
    #: Optional location from a phone.
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)
    address: Mapped[str | None] = mapped_column(String(200))
    #: Current desk: village, town, city (a region) or department.
    handler_level: Mapped[str] = mapped_column(String(12))
    #: Region code or department code of the current desk.
    handler_code: Mapped[str] = mapped_column(String(32), index=True)
    #: Region path of the current desk (None for a department): scope prefix queries.
    handler_path: Mapped[str | None] = mapped_column(String(255), index=True)
    status: Mapped[str] = mapped_column(String(12), index=True, default="submitted")
    #: When the current deadline's clock started (yellow at 75 % of start→deadline).
    clock_started_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    #: The current desk's deadline.
    deadline_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), index=True)
    #: When the overdue reminder for the current deadline went out (once per deadline).
    overdue_noted_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    #: First acceptance by any desk (a reply needs one).
    accepted_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    #: The latest reply shown to the resident.
    reply: Mapped[str | None] = mapped_column(Text)
    replied_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    #: Desk that gave the latest reply (level:code), for the department ranking.
    replied_by_desk: Mapped[str | None] = mapped_column(String(48))
    #: The latest reply came before the deadline.
    replied_on_time: Mapped[bool | None] = mapped_column(Boolean)
    #: The resident's latest score 1–5 (None: not rated since the latest reply).
    rating: Mapped[int | None] = mapped_column(Integer)
    rated_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    #: Times passed on (assign/escalate/return) since the last reply.
    pass_count: Mapped[int] = mapped_column(Integer, default=0)
    #: Reopened this many times (by rating 1–2 or by staff).
    reopen_count: Mapped[int] = mapped_column(Integer, default=0)
    #: Supervised "problem order" (督办件) and the region code supervising it.
    problem: Mapped[bool] = mapped_column(Boolean, default=False)
    supervisor_code: Mapped[str | None] = mapped_column(String(32))
    closed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    #: Follow-up visit (回访) by the village's grid worker: None, "due" or "done".
    follow_up: Mapped[str | None] = mapped_column(String(8), index=True)
    follow_up_note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    region: Mapped[Region] = relationship()
    events: Mapped[list[WorkOrderEvent]] = relationship(
        back_populates="order", order_by="WorkOrderEvent.id", cascade="all, delete-orphan")
    photos: Mapped[list[WorkOrderPhoto]] = relationship(
        order_by="WorkOrderPhoto.id", cascade="all, delete-orphan")


class WorkOrderEvent(Base):
    """One step in an order's timeline."""

    __tablename__ = "work_order_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("work_orders.id", ondelete="CASCADE"), index=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    #: submit, accept, assign, escalate, return, reply, close, reopen, rate, supplement, overdue, supervise, follow_up.
    action: Mapped[str] = mapped_column(String(16))
    #: Username, "terminal:<serial>", "phone" or "system".
    actor: Mapped[str] = mapped_column(String(80))
    #: Level of the acting desk (village/town/city/department/resident/system).
    level: Mapped[str] = mapped_column(String(12))
    #: Desk code after the step (where the order is now).
    code: Mapped[str] = mapped_column(String(32))
    #: Status after the step.
    status: Mapped[str] = mapped_column(String(12))
    #: The deadline in force after the step.
    deadline_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    #: Reason, reply text, rating comment, etc.
    note: Mapped[str | None] = mapped_column(Text)
    #: JSON of extra facts (to, from, score, photos).
    detail: Mapped[str] = mapped_column(Text, default="{}")

    order: Mapped[WorkOrder] = relationship(back_populates="events")

    @property
    def detail_dict(self) -> dict:
        try:
            return json.loads(self.detail or "{}")
        except ValueError:
            return {}


class WorkOrderPhoto(Base):
    """A photo added from a phone (resized, EXIF stripped) under settings.media_dir."""

    __tablename__ = "work_order_photos"

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("work_orders.id", ondelete="CASCADE"), index=True)
    #: Path relative to media_dir, e.g. feedback/12/3f9c....jpg.
    path: Mapped[str] = mapped_column(String(200))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Poll(Base):
    """A poll (民意调查) or deliberation topic (居民议事) for the households in a region."""

    __tablename__ = "polls"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: poll or topic.
    kind: Mapped[str] = mapped_column(String(8), default="poll")
    title: Mapped[str] = mapped_column(String(120))
    description: Mapped[str] = mapped_column(Text, default="")
    #: JSON list of 2–6 option labels.
    options_json: Mapped[str] = mapped_column(Text)
    region_id: Mapped[int] = mapped_column(ForeignKey("regions.id"))
    #: Copy of the region's path: a box sees polls whose path is a prefix of its own.
    region_path: Mapped[str] = mapped_column(String(255), index=True)
    opens_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    closes_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    region: Mapped[Region] = relationship()

    @property
    def options(self) -> list[str]:
        return json.loads(self.options_json)


class PollVote(Base):
    """One household's vote (one per household per poll)."""

    __tablename__ = "poll_votes"
    __table_args__ = (UniqueConstraint("poll_id", "household_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    poll_id: Mapped[int] = mapped_column(ForeignKey("polls.id", ondelete="CASCADE"), index=True)
    household_id: Mapped[int] = mapped_column(ForeignKey("households.id"))
    #: 0-based index into the poll's options.
    option: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
