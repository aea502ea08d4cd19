"""Tables of the base-data registry: residents (people), houses (plots on the village plan) and
the findings of the nightly data comparison. Households themselves are ``core.households``."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    Date,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal_server.core import crypto
from portal_server.core.db import Base, utcnow
from portal_server.core.households import Household

#: Person states.
PERSON_STATUSES = ("active", "moved_out", "deceased")
STATUS_NAMES = {"active": "在册", "moved_out": "已迁出", "deceased": "已故"}
#: Common relations to the head of household (free text is accepted too).
RELATIONS = ("户主", "配偶", "子女", "父母", "孙子女", "兄弟姐妹", "其他")
#: Kinds of data-comparison findings.
FINDING_KINDS = {"two_households": "同一人登记在两户", "deceased_subsidy": "已故人员仍享受补贴",
                 "deceased_case": "已故人员仍有在办事项", "bad_id_number": "身份证号校验不通过",
                 "elderly_no_checkin": "独居老人户无报平安记录"}


class Person(Base):
    """A resident registered in a household."""

    __tablename__ = "registry_people"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: The household the person is registered in.
    household_id: Mapped[int] = mapped_column(ForeignKey("households.id"), index=True)
    #: Copy of the household's village path, for scoped prefix queries without a join.
    region_path: Mapped[str] = mapped_column(String(255), index=True)
    #: Full name.
    name: Mapped[str] = mapped_column(String(32))
    #: Fernet-encrypted ID number (GB 11643); shown masked, unmasking is audited.
    id_number_enc: Mapped[str | None] = mapped_column(Text)
    #: Keyed hash of the ID number: lookup and duplicate detection without decrypting.
    id_number_hash: Mapped[str | None] = mapped_column(String(64), index=True)
    #: Relation to the head of household (户主, 配偶, 子女, ...).
    relation: Mapped[str] = mapped_column(String(16), default="户主")
    #: Date of birth (from the ID number when not given).
    birth_date: Mapped[dt.date | None] = mapped_column(Date)
    #: Space-separated tags (elderly_alone, low_income, disabled, party_member, deceased, ...).
    tags: Mapped[str] = mapped_column(String(128), default="")
    #: active, moved_out or deceased.
    status: Mapped[str] = mapped_column(String(16), default="active", index=True)
    #: Day of death when deceased.
    died_on: Mapped[dt.date | None] = mapped_column(Date)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)

    household: Mapped[Household] = relationship()

    @property
    def tag_list(self) -> list[str]:
        return [t for t in self.tags.split() if t]

    @property
    def id_number_masked(self) -> str:
        return crypto.mask_id_number(crypto.decrypt(self.id_number_enc))


class House(Base):
    """A house plot on a village's plan (电子装户图): lane/row and position, coordinates when known."""

    __tablename__ = "registry_houses"
    __table_args__ = (UniqueConstraint("region_id", "number", name="uq_registry_houses_region_number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    #: The village.
    region_id: Mapped[int] = mapped_column(ForeignKey("regions.id"), index=True)
    #: Copy of the village's path (scoped queries).
    region_path: Mapped[str] = mapped_column(String(255), index=True)
    #: House number as painted on the door, e.g. 3组12号.
    number: Mapped[str] = mapped_column(String(32))
    #: Lane or group the house stands on (one row of plots on the plan), e.g. 3组.
    lane: Mapped[str] = mapped_column(String(32))
    #: Row of the lane on the plan (0 = top).
    row: Mapped[int] = mapped_column(Integer, default=0)
    #: Position along the lane (0 = left).
    col: Mapped[int] = mapped_column(Integer, default=0)
    #: WGS-84 coordinates when surveyed.
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)


class HouseholdHouse(Base):
    """Which house a household lives in (several households may share a house)."""

    __tablename__ = "registry_household_houses"

    #: The household (one house each).
    household_id: Mapped[int] = mapped_column(ForeignKey("households.id"), primary_key=True)
    #: The house.
    house_id: Mapped[int] = mapped_column(ForeignKey("registry_houses.id"), index=True)


class Finding(Base):
    """One row of a region's data-comparison report (replaced by every run for that region)."""

    __tablename__ = "registry_findings"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: Village path of the record the finding is about (scoped reads).
    region_path: Mapped[str] = mapped_column(String(255), index=True)
    #: One of FINDING_KINDS.
    kind: Mapped[str] = mapped_column(String(32), index=True)
    #: household or person.
    object_type: Mapped[str] = mapped_column(String(16))
    #: The household the record belongs to (the link opens it).
    household_id: Mapped[int | None] = mapped_column(Integer)
    #: The person, for person findings.
    person_id: Mapped[int | None] = mapped_column(Integer)
    #: What was found, in Chinese.
    detail: Mapped[str] = mapped_column(Text)
    #: When the comparison ran.
    found_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
