"""Service catalogue (下沉服务): categories, items with the national catalogue's elements,
booking slots at village halls and town service centres, and bookings."""
from __future__ import annotations

import datetime as dt
import json

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

#: Item types of the national catalogue (事项类型).
ITEM_TYPES = ("行政许可", "行政给付", "行政确认", "公共服务", "其他行政权力")
BOOKING_STATUSES = ("booked", "cancelled", "served")
BOOKING_STATUS_NAMES = {"booked": "已预约", "cancelled": "已取消", "served": "已办结"}
#: Where a case of the item is received and handled (办理层级).
HANDLE_LEVELS = ("village", "town", "department")
HANDLE_LEVEL_NAMES = {"village": "村便民服务站", "town": "镇便民服务中心", "department": "市直部门"}
MAX_CATEGORY_DEPTH = 3


class ServiceCategory(Base):
    """A node of the catalogue tree (at most three levels)."""

    __tablename__ = "service_categories"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: Stable code, e.g. "shebao" or "shebao.yanglao".
    code: Mapped[str] = mapped_column(String(64), unique=True)
    #: Display name, e.g. 社会保障.
    name: Mapped[str] = mapped_column(String(64))
    #: Parent category (None at the top level).
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("service_categories.id"), index=True)
    #: 1, 2 or 3.
    level: Mapped[int] = mapped_column(Integer, default=1)
    #: Order among siblings.
    sort: Mapped[int] = mapped_column(Integer, default=0)

    parent: Mapped[ServiceCategory | None] = relationship(remote_side="ServiceCategory.id")

    def path_names(self) -> list[str]:
        """Names from the top level down to this category."""
        out, node = [], self
        while node is not None:
            out.append(node.name)
            node = node.parent
        return out[::-1]


class ServiceItem(Base):
    """One government service item with the elements of the national catalogue."""

    __tablename__ = "service_items"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: Item code (事项编码), unique in the city.
    code: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    #: Item name (事项名称), e.g. 居民养老保险参保登记.
    name: Mapped[str] = mapped_column(String(128))
    #: Item type (事项类型), one of ITEM_TYPES.
    item_type: Mapped[str] = mapped_column(String(16))
    #: The category (a leaf or inner node of the tree).
    category_id: Mapped[int] = mapped_column(ForeignKey("service_categories.id"), index=True)
    #: Competent department (主管部门).
    department: Mapped[str] = mapped_column(String(64))
    #: Implementing body (实施主体).
    implementer: Mapped[str] = mapped_column(String(64))
    #: Legal basis (设定依据).
    basis: Mapped[str] = mapped_column(Text, default="")
    #: Eligibility (受理条件).
    conditions: Mapped[str] = mapped_column(Text, default="")
    #: JSON list of {"name", "quantity", "form": "原件"|"复印件"|"原件和复印件"}.
    materials_json: Mapped[str] = mapped_column(Text, default="[]")
    #: JSON list of procedure steps (办理流程).
    steps_json: Mapped[str] = mapped_column(Text, default="[]")
    #: Statutory time limit in working days (法定办结时限).
    statutory_days: Mapped[int] = mapped_column(Integer, default=0)
    #: Promised time limit in working days (承诺办结时限); 0 = on the spot.
    promised_days: Mapped[int] = mapped_column(Integer, default=0)
    #: Fee (收费标准), e.g. 不收费.
    fee: Mapped[str] = mapped_column(String(128), default="不收费")
    #: Basis of the fee (收费依据).
    fee_basis: Mapped[str] = mapped_column(String(255), default="")
    #: Where to go (办理地点).
    location: Mapped[str] = mapped_column(String(255), default="")
    #: When (办理时间).
    hours: Mapped[str] = mapped_column(String(128), default="")
    #: Number of visits needed (到办事现场次数).
    visits: Mapped[int] = mapped_column(Integer, default=1)
    #: Enquiry phone (咨询电话).
    phone: Mapped[str] = mapped_column(String(32), default="")
    #: Can be done at any village hall (全市通办, 村级代办).
    local: Mapped[bool] = mapped_column(Boolean, default=False)
    #: Where a case is handled: village (村便民服务站), town (镇便民服务中心) or department (市直部门).
    handle_level: Mapped[str] = mapped_column(String(16), default="town")
    #: Code of the city department that decides a department-level case, e.g. civil-affairs.
    department_code: Mapped[str | None] = mapped_column(String(32))
    #: A resident may start a case of this item from the TV (我要办理).
    tv_apply: Mapped[bool] = mapped_column(Boolean, default=False)
    #: A subsidy or benefit (补贴/救助/津贴): compared at intake against deaths and double receipt.
    subsidy: Mapped[bool] = mapped_column(Boolean, default=False)
    #: Withdrawn items stay for old bookings but are not listed.
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    category: Mapped[ServiceCategory] = relationship()

    @property
    def materials(self) -> list[dict]:
        return json.loads(self.materials_json or "[]")

    @property
    def steps(self) -> list[str]:
        return json.loads(self.steps_json or "[]")


class BookingSlot(Base):
    """A time window at a village hall or a town service centre with a capacity."""

    __tablename__ = "booking_slots"
    __table_args__ = (UniqueConstraint("region_id", "starts_at", name="uq_booking_slots_place_start"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    #: The place: a village (its hall) or a town (its service centre).
    region_id: Mapped[int] = mapped_column(ForeignKey("regions.id"), index=True)
    #: Copy of the region path for scoped queries.
    region_path: Mapped[str] = mapped_column(String(255), index=True)
    starts_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), index=True)
    ends_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    #: How many bookings the slot takes.
    capacity: Mapped[int] = mapped_column(Integer, default=5)
    #: Bookings currently holding a place (kept by conditional UPDATEs: no overbooking).
    booked: Mapped[int] = mapped_column(Integer, default=0)
    #: Closed by staff (holiday, staff away): no new bookings.
    closed: Mapped[bool] = mapped_column(Boolean, default=False)

    region: Mapped[Region] = relationship()


class Booking(Base):
    """A household's booking of one slot for one service item."""

    __tablename__ = "bookings"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: Short code shown on the TV and read out at the counter, e.g. YY20261122-000012.
    code: Mapped[str] = mapped_column(String(32), unique=True)
    slot_id: Mapped[int] = mapped_column(ForeignKey("booking_slots.id"), index=True)
    service_code: Mapped[str] = mapped_column(String(64), index=True)
    household_id: Mapped[int | None] = mapped_column(ForeignKey("households.id"), index=True)
    #: The box that booked.
    terminal_serial: Mapped[str | None] = mapped_column(String(32))
    #: booked, cancelled or served.
    status: Mapped[str] = mapped_column(String(16), default="booked")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    cancelled_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    served_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    #: Username of the staff member who served it.
    served_by: Mapped[str | None] = mapped_column(String(64))

    slot: Mapped[BookingSlot] = relationship()


class ServiceAdmission(Base):
    """事项准入: a town admits an item for its village halls (准入清单). A village hall receives
    only admitted items; the others go to the town centre or the department."""

    __tablename__ = "service_admissions"
    __table_args__ = (UniqueConstraint("town_id", "service_code", name="uq_service_admissions_town_item"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    #: The town whose villages may take the item.
    town_id: Mapped[int] = mapped_column(ForeignKey("regions.id"), index=True)
    #: Copy of the town's path for scoped queries.
    town_path: Mapped[str] = mapped_column(String(255), index=True)
    #: The admitted item (事项编码).
    service_code: Mapped[str] = mapped_column(String(64), index=True)
    #: Username of the town clerk or admin who admitted it.
    admitted_by: Mapped[str] = mapped_column(String(64))
    admitted_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    town: Mapped[Region] = relationship()
