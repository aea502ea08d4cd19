"""Village affairs disclosure (村务公开), safe-community contacts and party study records."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    Boolean,
    DateTime,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal_server.core.db import Base, utcnow
from portal_server.core.regions import Region

#: finance is due monthly, the others quarterly.
KINDS = ("finance", "project", "subsidy", "decision")
KIND_NAMES = {"finance": "财务收支", "project": "项目建设", "subsidy": "惠民补贴", "decision": "村民（代表）会议决议"}
STATUSES = ("draft", "published", "withdrawn")
STATUS_NAMES = {"draft": "待审核", "published": "已公开", "withdrawn": "已撤回"}
CONTACT_ROLES = ("police", "mediator", "grid", "fire")
CONTACT_ROLE_NAMES = {"police": "驻村民警", "mediator": "人民调解员", "grid": "网格员", "fire": "消防安全员"}


class Disclosure(Base):
    """One disclosure of a village for a period: a month (finance) or a quarter (the others)."""

    __tablename__ = "affairs_disclosures"

    id: Mapped[int] = mapped_column(primary_key=True)
    region_id: Mapped[int] = mapped_column(ForeignKey("regions.id"), index=True)
    #: Copy of the village path for scoped queries.
    region_path: Mapped[str] = mapped_column(String(255), index=True)
    #: One of KINDS.
    kind: Mapped[str] = mapped_column(String(16), index=True)
    #: "2026-10" for finance, "2026Q4" for the others.
    period: Mapped[str] = mapped_column(String(8), index=True)
    title: Mapped[str] = mapped_column(String(128))
    #: Free text (projects, decisions) or a note under a table.
    body: Mapped[str] = mapped_column(Text, default="")
    #: draft (waiting for a reviewer), published, withdrawn.
    status: Mapped[str] = mapped_column(String(16), default="draft", index=True)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    #: Who approved it for publication.
    published_by: Mapped[str | None] = mapped_column(String(64))
    #: Shown on the TV as the publication date.
    published_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))

    region: Mapped[Region] = relationship()
    finance_rows: Mapped[list[FinanceEntry]] = relationship(cascade="all, delete-orphan",
                                                              order_by="FinanceEntry.line")
    subsidy_rows: Mapped[list[SubsidyEntry]] = relationship(cascade="all, delete-orphan",
                                                              order_by="SubsidyEntry.line")


class FinanceEntry(Base):
    """A line of a finance disclosure: amounts in fen (1/100 yuan)."""

    __tablename__ = "affairs_finance_entries"

    id: Mapped[int] = mapped_column(primary_key=True)
    disclosure_id: Mapped[int] = mapped_column(ForeignKey("affairs_disclosures.id", ondelete="CASCADE"), index=True)
    #: Position in the imported file.
    line: Mapped[int] = mapped_column(Integer)
    #: "2026-10".
    month: Mapped[str] = mapped_column(String(7))
    item: Mapped[str] = mapped_column(String(128))
    income_fen: Mapped[int] = mapped_column(Integer, default=0)
    expense_fen: Mapped[int] = mapped_column(Integer, default=0)


class SubsidyEntry(Base):
    """A line of a subsidy list; only the masked name is ever shown."""

    __tablename__ = "affairs_subsidy_entries"

    id: Mapped[int] = mapped_column(primary_key=True)
    disclosure_id: Mapped[int] = mapped_column(ForeignKey("affairs_disclosures.id", ondelete="CASCADE"), index=True)
    line: Mapped[int] = mapped_column(Integer)
    #: 张*明 (core.crypto.mask_name).
    name_masked: Mapped[str] = mapped_column(String(32))
    #: Fernet-encrypted full name (for staff checks; never published).
    name_enc: Mapped[str | None] = mapped_column(Text)
    #: Kind of subsidy, e.g. 高龄津贴.
    subsidy: Mapped[str] = mapped_column(String(64))
    amount_fen: Mapped[int] = mapped_column(Integer, default=0)
    note: Mapped[str] = mapped_column(String(128), default="")


class SafetyContact(Base):
    """Village police officer, mediators and others residents can call."""

    __tablename__ = "safety_contacts"

    id: Mapped[int] = mapped_column(primary_key=True)
    region_id: Mapped[int] = mapped_column(ForeignKey("regions.id"), index=True)
    region_path: Mapped[str] = mapped_column(String(255), index=True)
    #: One of CONTACT_ROLES.
    role: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(32))
    #: Public duty phone (an office or duty number, published on purpose).
    phone: Mapped[str] = mapped_column(String(32))
    #: What they help with / when.
    duty: Mapped[str] = mapped_column(String(255), default="")

    region: Mapped[Region] = relationship()


class StudyMaterial(Base):
    """Party study material of a month (article or video) for the branches in a region."""

    __tablename__ = "party_study_materials"

    id: Mapped[int] = mapped_column(primary_key=True)
    region_id: Mapped[int] = mapped_column(ForeignKey("regions.id"), index=True)
    region_path: Mapped[str] = mapped_column(String(255), index=True)
    #: "2026-11".
    month: Mapped[str] = mapped_column(String(7), index=True)
    title: Mapped[str] = mapped_column(String(128))
    #: article or video.
    kind: Mapped[str] = mapped_column(String(8), default="article")
    summary: Mapped[str] = mapped_column(Text, default="")
    #: Video URL (HLS/MP4) for kind video.
    media_url: Mapped[str | None] = mapped_column(String(255))
    #: Party affairs disclosure (党务公开) rather than study.
    is_disclosure: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    region: Mapped[Region] = relationship()


class StudyRecord(Base):
    """A household's confirmation (OK on the remote) that a party member studied a material."""

    __tablename__ = "party_study_records"
    __table_args__ = (UniqueConstraint("material_id", "household_id", name="uq_party_study_records_material"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    material_id: Mapped[int] = mapped_column(ForeignKey("party_study_materials.id", ondelete="CASCADE"), index=True)
    household_id: Mapped[int] = mapped_column(ForeignKey("households.id"), index=True)
    region_path: Mapped[str] = mapped_column(String(255), index=True)
    terminal_serial: Mapped[str | None] = mapped_column(String(32))
    confirmed_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    material: Mapped[StudyMaterial] = relationship()
