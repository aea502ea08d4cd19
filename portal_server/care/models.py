"""Elderly care (养老助老): daily check-ins, care tasks for grid workers, elderly services.
The read-aloud speech clips are core's (``portal_server.core.speech``)."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    Date,
    DateTime,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal_server.core.db import Base, utcnow
from portal_server.core.households import Household
from portal_server.core.regions import Region

TASK_KINDS = ("missed_checkin", "help")
TASK_KIND_NAMES = {"missed_checkin": "未报平安", "help": "一键求助"}
#: open (grid worker), escalated (also the village head), done.
TASK_STATUSES = ("open", "escalated", "done")
TASK_STATUS_NAMES = {"open": "待处理", "escalated": "已升级到村负责人", "done": "已处理"}
SERVICE_KINDS = ("meal", "health_check", "home_visit", "activity")
SERVICE_KIND_NAMES = {"meal": "老年助餐点", "health_check": "健康体检", "home_visit": "上门探访",
                      "activity": "文体活动"}


class CheckIn(Base):
    """A household's 报平安 of one day (city date); at most one per household and day."""

    __tablename__ = "care_checkins"
    __table_args__ = (UniqueConstraint("household_id", "day", name="uq_care_checkins_household_day"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    household_id: Mapped[int] = mapped_column(ForeignKey("households.id"), index=True)
    #: The day in city time.
    day: Mapped[dt.date] = mapped_column(Date, index=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    #: The box the OK was pressed on.
    terminal_serial: Mapped[str | None] = mapped_column(String(32))


class CareTask(Base):
    """Something a grid worker must do for a household: visit after a missed check-in, answer a help call."""

    __tablename__ = "care_tasks"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: missed_checkin or help.
    kind: Mapped[str] = mapped_column(String(16), index=True)
    household_id: Mapped[int] = mapped_column(ForeignKey("households.id"), index=True)
    #: Copy of the household's village path for scoped queries.
    region_path: Mapped[str] = mapped_column(String(255), index=True)
    region_id: Mapped[int] = mapped_column(ForeignKey("regions.id"))
    #: The city day the task belongs to.
    day: Mapped[dt.date] = mapped_column(Date, index=True)
    #: open, escalated or done.
    status: Mapped[str] = mapped_column(String(16), default="open", index=True)
    #: "missed_checkin:<household>:<day>" — one missed-check-in task per household and day.
    dedupe_key: Mapped[str | None] = mapped_column(String(64), unique=True)
    #: The feedback work order filed for a help call (when the feedback feature took it).
    work_order_id: Mapped[int | None] = mapped_column(Integer)
    work_order_code: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    escalated_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    closed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    #: Username, or "checkin" when the household checked in itself.
    closed_by: Mapped[str | None] = mapped_column(String(64))
    #: What the grid worker found.
    note: Mapped[str | None] = mapped_column(Text)

    household: Mapped[Household] = relationship()
    region: Mapped[Region] = relationship()


class ElderlyService(Base):
    """A service for old people in a village: meal point, health-check day, home visits."""

    __tablename__ = "elderly_services"

    id: Mapped[int] = mapped_column(primary_key=True)
    region_id: Mapped[int] = mapped_column(ForeignKey("regions.id"), index=True)
    region_path: Mapped[str] = mapped_column(String(255), index=True)
    #: One of SERVICE_KINDS.
    kind: Mapped[str] = mapped_column(String(16))
    title: Mapped[str] = mapped_column(String(128))
    #: Where.
    place: Mapped[str] = mapped_column(String(255), default="")
    #: When, in words (每周一至周五 11:00-12:30).
    schedule: Mapped[str] = mapped_column(String(255), default="")
    phone: Mapped[str] = mapped_column(String(32), default="")
    details: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    region: Mapped[Region] = relationship()
