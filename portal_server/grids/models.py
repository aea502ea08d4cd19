"""Grids (网格): a village divided into grids, each with its worker; the households of a grid;
the worker's visits, patrols and events; the assessment rule table and the weekly reports."""
from __future__ import annotations

import datetime as dt
import json

from sqlalchemy import (
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal_server.core.accounts import User
from portal_server.core.db import Base, utcnow
from portal_server.core.households import Household
from portal_server.core.regions import Region

VISIT_KINDS = ("visit", "patrol", "event")
VISIT_KIND_NAMES = {"visit": "走访", "patrol": "巡查", "event": "事件上报"}
LEVELS = ("worker", "grid", "village")
LEVEL_NAMES = {"worker": "网格员", "grid": "网格", "village": "村（社区）"}
CARD_NAMES = {"none": "无", "yellow": "黄牌", "red": "红牌"}

#: The assessment rule table (积分规则): key → (label, default value). Admins edit the values.
RULES = {
    "points_visit": ("每次走访得分", 1.0),
    "points_event": ("每件事件上报得分", 2.0),
    "points_patrol": ("每次巡查得分", 1.0),
    "points_on_time": ("按时办结率满分（乘以按时率）", 10.0),
    "yellow_points_week": ("周积分低于此值亮黄牌", 10.0),
    "red_points_week": ("周积分低于此值亮红牌", 5.0),
    "yellow_on_time": ("按时率低于此值亮黄牌（0–1）", 0.8),
    "red_on_time": ("按时率低于此值亮红牌（0–1）", 0.6),
}


class Grid(Base):
    """A part of a village looked after by one grid worker."""

    __tablename__ = "grids"
    __table_args__ = (UniqueConstraint("region_id", "name", name="uq_grids_region_name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    #: The village the grid lies in.
    region_id: Mapped[int] = mapped_column(ForeignKey("regions.id"), index=True)
    #: Copy of the village's path for scoped prefix queries.
    region_path: Mapped[str] = mapped_column(String(255), index=True)
    #: Shown to staff, e.g. 东河村第一网格; unique within the village.
    name: Mapped[str] = mapped_column(String(64))
    #: The grid worker (a user with the grid_worker role in the same village).
    worker_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    #: Username of who created it.
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    region: Mapped[Region] = relationship()
    worker: Mapped[User] = relationship()


class GridHousehold(Base):
    """A household's grid: the primary key on the household keeps it in one grid at a time."""

    __tablename__ = "grid_households"

    #: The household (one row per household).
    household_id: Mapped[int] = mapped_column(ForeignKey("households.id"), primary_key=True)
    grid_id: Mapped[int] = mapped_column(ForeignKey("grids.id"), index=True)
    #: Username of who assigned it.
    assigned_by: Mapped[str] = mapped_column(String(64))
    assigned_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    household: Mapped[Household] = relationship()
    grid: Mapped[Grid] = relationship()


class Visit(Base):
    """One entry of a grid worker's 民情日志: a home visit, a patrol note or an event filed for a resident."""

    __tablename__ = "grid_visits"
    __table_args__ = (UniqueConstraint("worker_id", "client_key", name="uq_grid_visits_worker_key"),
                      # Covers the assessment's GROUP BY of a period (an index-only scan).
                      Index("ix_grid_visits_period", "recorded_at", "region_id", "worker_id", "grid_id", "kind",
                            "feedback_id"))

    id: Mapped[int] = mapped_column(primary_key=True)
    worker_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    #: The household's grid when the visit was made (None if it had none).
    grid_id: Mapped[int | None] = mapped_column(ForeignKey("grids.id"), index=True)
    #: The household visited (None for a patrol note not about one household).
    household_id: Mapped[int | None] = mapped_column(ForeignKey("households.id"), index=True)
    #: The village of the household (or of the worker for a patrol note).
    region_id: Mapped[int] = mapped_column(ForeignKey("regions.id"), index=True)
    #: Copy of the village's path for scoped queries.
    region_path: Mapped[str] = mapped_column(String(255), index=True)
    #: visit, patrol or event.
    kind: Mapped[str] = mapped_column(String(8), index=True)
    #: What the worker wrote.
    note: Mapped[str] = mapped_column(Text, default="")
    #: Feedback category of an event (None for visits).
    category: Mapped[str | None] = mapped_column(String(16))
    #: The work order an event filed (feedback loop, channel grid).
    feedback_id: Mapped[int | None] = mapped_column(Integer, index=True)
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)
    #: Photo under media_dir (re-encoded JPEG without EXIF), if any.
    photo_path: Mapped[str | None] = mapped_column(String(128))
    #: The phone's idempotency key: an offline replay of the same entry is stored once.
    client_key: Mapped[str | None] = mapped_column(String(80))
    #: When the worker recorded it on the phone (may be earlier than created_at when sent offline).
    recorded_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    worker: Mapped[User] = relationship()
    household: Mapped[Household | None] = relationship()
    region: Mapped[Region] = relationship()


class Patrol(Base):
    """A patrol walk (巡查) with its track of points."""

    __tablename__ = "grid_patrols"

    id: Mapped[int] = mapped_column(primary_key=True)
    worker_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    #: The worker's village path (scope of the patrol).
    region_path: Mapped[str] = mapped_column(String(255), index=True)
    started_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    #: None while the patrol is under way.
    ended_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    #: JSON list of [lat, lon, epoch seconds].
    track_json: Mapped[str] = mapped_column(Text, default="[]")
    #: Length of the track in metres (computed when it stops).
    distance_m: Mapped[float] = mapped_column(Float, default=0.0)

    worker: Mapped[User] = relationship()

    @property
    def track(self) -> list[list[float]]:
        return json.loads(self.track_json or "[]")


class AssessmentRule(Base):
    """One value of the assessment rule table (points per visit, card thresholds)."""

    __tablename__ = "grid_assessment_rules"

    #: One of RULES.
    key: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[float] = mapped_column(Float)
    #: Username of the admin who last changed it.
    updated_by: Mapped[str] = mapped_column(String(64), default="system")
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class WeeklyReport(Base):
    """The 周报告 of one week (Monday to Sunday, city time), computed on the following Monday."""

    __tablename__ = "grid_weekly_reports"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: Monday of the week reported on; one report per week.
    week_start: Mapped[dt.date] = mapped_column(Date, unique=True)
    generated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    #: JSON {"worker": [...], "grid": [...], "village": [...]} of assessment items with region paths.
    data_json: Mapped[str] = mapped_column(Text)

    @property
    def data(self) -> dict:
        return json.loads(self.data_json)
