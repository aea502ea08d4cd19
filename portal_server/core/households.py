"""Households: the residents a box belongs to. Phones and ID numbers are stored encrypted."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import DateTime, ForeignKey, Index, Integer, String, Text, select
from sqlalchemy.orm import Mapped, mapped_column, relationship

from . import crypto
from .db import Base, session, utcnow
from .regions import Region

TAGS = ("elderly_alone", "low_income", "disabled", "left_behind_child", "veteran")
TAG_NAMES = {"elderly_alone": "独居老人", "low_income": "低保户", "disabled": "残疾人",
             "left_behind_child": "留守儿童", "veteran": "退役军人",
             # person tags of INTERFACES §4.1 (the registry sets them)
             "party_member": "党员", "deceased": "已故"}
#: Household states (the registry moves households out; their rows stay for history).
STATUSES = ("active", "moved_out")


class Household(Base):
    __tablename__ = "households"
    #: The household list of a town reads a path range and the status from this index alone.
    __table_args__ = (Index("ix_households_path_status", "region_path", "status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    #: Household number within the city, e.g. H990101001001-012.
    number: Mapped[str] = mapped_column(String(32), unique=True)
    #: Head of household's name.
    head_name: Mapped[str] = mapped_column(String(32))
    #: Village the household lives in.
    region_id: Mapped[int] = mapped_column(ForeignKey("regions.id"), index=True)
    #: Copy of the village's path for scoped prefix queries without a join.
    region_path: Mapped[str] = mapped_column(String(255), index=True)
    address: Mapped[str] = mapped_column(String(128))
    size: Mapped[int] = mapped_column(Integer, default=1)
    #: Space-separated tags from TAGS.
    tags: Mapped[str] = mapped_column(String(128), default="")
    #: Fernet-encrypted phone; shown masked, unmasking is audited.
    phone_enc: Mapped[str | None] = mapped_column(Text)
    #: Fernet-encrypted ID number of the head of household.
    id_number_enc: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    #: active or moved_out (moved-out households leave lists, check-ins and the map).
    status: Mapped[str] = mapped_column(String(16), default="active", server_default="active")
    #: When the household moved out (UTC).
    moved_out_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))

    region: Mapped[Region] = relationship()

    @property
    def tag_list(self) -> list[str]:
        return [t for t in self.tags.split() if t]

    @property
    def phone_masked(self) -> str:
        return crypto.mask_phone(crypto.decrypt(self.phone_enc))

    @property
    def id_number_masked(self) -> str:
        return crypto.mask_id_number(crypto.decrypt(self.id_number_enc))

    def to_dict(self) -> dict:
        """The masked view every listing uses."""
        return {"id": self.id, "number": self.number, "head_name": self.head_name,
                "region_code": self.region.code, "address": self.address, "size": self.size,
                "tags": self.tag_list, "phone": self.phone_masked,
                "id_number": self.id_number_masked}


def households_in(scope, tag: str | None = None) -> list[Household]:
    """Households inside ``scope`` (optionally with a tag)."""
    q = select(Household).where(scope.region_filter(Household.region_path))
    if tag:
        q = q.where(Household.tags.contains(tag))
    return list(session.scalars(q.order_by(Household.number)))


def unmask_phone(household: Household, reason: str) -> str | None:
    """The clear phone number; the access is written to the audit trail."""
    from . import audit

    audit.record("pii.unmask", "household", household.id, household.region.code,
                 field="phone", reason=reason)
    return crypto.decrypt(household.phone_enc)
