"""One-stop handling (一站式办理): a case (办件) is one application for one catalogue item, held by
a desk (a village hall, a town centre or a city department) and moved through the seed's states."""
from __future__ import annotations

import datetime as dt
import json

from sqlalchemy import DateTime, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal_server.core.db import Base, utcnow
from portal_server.core.households import Household

STATUSES = ("submitted", "accepted", "returned", "suspended", "completed", "followed_up", "evaluated", "archived")
STATUS_NAMES = {"submitted": "已提交", "accepted": "已受理", "returned": "已退回", "suspended": "已挂起",
                "completed": "已办结", "followed_up": "已回访", "evaluated": "已评价", "archived": "已归档"}
#: States in which the case is still being worked on (deadline runs, 督办 allowed).
OPEN = ("submitted", "accepted", "suspended")
CHANNELS = ("tv", "phone", "counter", "hotline")
CHANNEL_NAMES = {"tv": "电视申请", "phone": "手机申请", "counter": "窗口代办", "hotline": "热线受理"}
DESK_LEVELS = ("village", "town", "department")


class Case(Base):
    """An application (办件) for one service item by one household."""

    __tablename__ = "cases"
    __table_args__ = (
        Index("ix_cases_desk_open", "desk_code", "status", "deadline"),
        Index("ix_cases_region_status", "region_path", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    #: Case number read out at the counter, e.g. BJ20261201000012 (date + id).
    number: Mapped[str | None] = mapped_column(String(24), unique=True)
    #: Catalogue item code (事项编码).
    service_code: Mapped[str] = mapped_column(String(64), index=True)
    #: Item name at the time of application (the catalogue may rename it later).
    service_name: Mapped[str] = mapped_column(String(128))
    #: The applying household.
    household_id: Mapped[int] = mapped_column(ForeignKey("households.id"), index=True)
    #: Copy of the household's village path: scope of readers (prefix query, no join).
    region_path: Mapped[str] = mapped_column(String(255))
    #: Applicant's name (the head of household unless a clerk names a member).
    applicant_name: Mapped[str] = mapped_column(String(32))
    #: Keyed SHA-256 of the applicant's ID number: finds the same person across households, reveals nothing.
    applicant_key: Mapped[str | None] = mapped_column(String(64), index=True)
    #: tv, phone, counter or hotline.
    channel: Mapped[str] = mapped_column(String(12))
    #: One of STATUSES.
    status: Mapped[str] = mapped_column(String(16), default="submitted")
    #: Level of the desk holding it: village, town or department.
    desk_level: Mapped[str] = mapped_column(String(12))
    #: Region code (village hall / town centre) or department code of the desk holding it.
    desk_code: Mapped[str] = mapped_column(String(32))
    #: Region path of the desk (the city's for a department): who may act on it.
    desk_path: Mapped[str] = mapped_column(String(255), index=True)
    #: Promised completion: the item's time limit in working days from submission (extended by suspensions).
    deadline: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    #: The resident's note with the application.
    note: Mapped[str] = mapped_column(Text, default="")
    #: JSON list of {"name","quantity","form","received"}: the materials checklist.
    materials_json: Mapped[str] = mapped_column(Text, default="[]")
    #: JSON list of {"code","message"}: intake comparison findings shown to the clerk.
    flags_json: Mapped[str] = mapped_column(Text, default="[]")
    #: Number of 督办 (supervision) orders given.
    supervised: Mapped[int] = mapped_column(Integer, default=0)
    #: Satisfaction 1–5 (评价), from the box or recorded by staff after the follow-up call.
    score: Mapped[int | None] = mapped_column(Integer)
    #: "<household id>:<key>" or "<username>:<key>": a retried application returns the same case.
    idempotency_key: Mapped[str | None] = mapped_column(String(120), unique=True)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    suspended_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    completed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))

    household: Mapped[Household] = relationship()
    events: Mapped[list[CaseEvent]] = relationship(order_by="CaseEvent.id", back_populates="case",
                                                     cascade="all, delete-orphan")

    @property
    def materials(self) -> list[dict]:
        return json.loads(self.materials_json or "[]")

    @property
    def flags(self) -> list[dict]:
        return json.loads(self.flags_json or "[]")


class CaseEvent(Base):
    """One step of a case's timeline (also written to the audit trail)."""

    __tablename__ = "case_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    #: submit, accept, return, forward, suspend, resume, complete, supervise, follow_up, evaluate, archive, materials.
    action: Mapped[str] = mapped_column(String(16))
    #: Username or "terminal:<serial>".
    actor: Mapped[str] = mapped_column(String(64))
    #: Level of the actor's desk (village, town, department, city, household).
    level: Mapped[str] = mapped_column(String(12))
    #: Status after the step.
    status: Mapped[str] = mapped_column(String(16))
    #: Desk holding the case after the step.
    desk_code: Mapped[str] = mapped_column(String(32))
    note: Mapped[str] = mapped_column(Text, default="")
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    case: Mapped[Case] = relationship(back_populates="events")
