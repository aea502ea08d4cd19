"""Emergency alerts (应急广播): the alert as CAP values, its target regions and persisted acks.

Acks live in Redis while an alert is live (one hash per alert: serial → first ack time) and are
copied here in batches and at the end, so the NOC and the grid workers keep the figures.
"""
from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, DateTime, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal_server.core.db import Base, utcnow

CATEGORIES = ("Geo", "Met", "Safety", "Security", "Rescue", "Fire", "Health", "Env", "Transport", "Infra",
              "CBRNE", "Other")
SEVERITIES = ("Extreme", "Severe", "Moderate", "Minor", "Unknown")
URGENCIES = ("Immediate", "Expected", "Future", "Past", "Unknown")
CERTAINTIES = ("Observed", "Likely", "Possible", "Unlikely", "Unknown")
#: pending_approval → active → cancelled | expired | superseded (by an Update); rejected.
STATUSES = ("pending_approval", "active", "cancelled", "expired", "superseded", "rejected")
#: Severities that need a second person (before, or after when the sender marked them Immediate).
TWO_PERSON = ("Extreme", "Severe")

SEVERITY_NAMES = {"Extreme": "特别严重", "Severe": "严重", "Moderate": "较重", "Minor": "一般", "Unknown": "未知"}
URGENCY_NAMES = {"Immediate": "立即", "Expected": "即将", "Future": "未来", "Past": "已过去", "Unknown": "未知"}
CERTAINTY_NAMES = {"Observed": "已发生", "Likely": "很可能", "Possible": "可能", "Unlikely": "不太可能",
                   "Unknown": "未知"}
CATEGORY_NAMES = {"Geo": "地质", "Met": "气象", "Safety": "安全", "Security": "治安", "Rescue": "救援", "Fire": "火灾",
                  "Health": "卫生", "Env": "环境", "Transport": "交通", "Infra": "基础设施", "CBRNE": "危化品",
                  "Other": "其他"}
STATUS_NAMES = {"pending_approval": "待审批", "active": "播发中", "cancelled": "已撤销", "expired": "已过期",
                "superseded": "已更新", "rejected": "已驳回"}
#: Severity colours (the TV overlay and the NOC use the same ones: red, orange, yellow, blue).
SEVERITY_COLOURS = {"Extreme": "#c92a2a", "Severe": "#e8590c", "Moderate": "#f2c200", "Minor": "#1c7ed6",
                    "Unknown": "#868e96"}


class Alert(Base):
    """One CAP message of type Alert or Update (an Update replaces the alert it references)."""

    __tablename__ = "alerts"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: CAP msgType: Alert or Update (a cancel is recorded on the alert itself, see cancelled_at).
    msg_type: Mapped[str] = mapped_column(String(8), default="Alert")
    #: For an Update: the alert it replaces.
    references_id: Mapped[int | None] = mapped_column(ForeignKey("alerts.id"), index=True)
    #: One of STATUSES.
    status: Mapped[str] = mapped_column(String(20), index=True)
    #: CAP category (CATEGORIES).
    category: Mapped[str] = mapped_column(String(12))
    #: CAP event, in words (山洪灾害预警).
    event: Mapped[str] = mapped_column(String(128))
    #: CAP severity, urgency, certainty.
    severity: Mapped[str] = mapped_column(String(10))
    urgency: Mapped[str] = mapped_column(String(10))
    certainty: Mapped[str] = mapped_column(String(10))
    headline: Mapped[str] = mapped_column(String(160))
    description: Mapped[str] = mapped_column(Text, default="")
    instruction: Mapped[str] = mapped_column(Text, default="")
    #: fullscreen (Severe/Extreme/Immediate) or banner.
    display: Mapped[str] = mapped_column(String(10), default="fullscreen")
    #: When the message was sent (became active); the creation time until then.
    sent_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), index=True)
    #: Username of the sender ("cli" from the command line).
    created_by: Mapped[str] = mapped_column(String(64))
    #: Scope root of the sender (for scoped listings of who may see the alert).
    sender_region_path: Mapped[str] = mapped_column(String(255), default="")
    #: "<creator>:<key>" of the client's idempotency key: a repeated POST returns the same alert.
    idem_key: Mapped[str | None] = mapped_column(String(160), unique=True)
    #: The second person: approved a pending alert, or confirmed an Immediate one afterwards.
    approved_by: Mapped[str | None] = mapped_column(String(64))
    approved_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    #: True while an Immediate Severe/Extreme alert sent at once still waits for its second person.
    needs_confirmation: Mapped[bool] = mapped_column(Boolean, default=False)
    cancelled_by: Mapped[str | None] = mapped_column(String(64))
    cancelled_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    #: When it stopped being live (cancel, expiry, update); acks were persisted at that time.
    ended_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    #: The spoken version (core.speech.SpeechClip id), made by a worker job.
    speech_clip_id: Mapped[int | None] = mapped_column(Integer)
    #: Terminals targeted when the alert went out (the live figure is computed from the fleet).
    targeted_at_send: Mapped[int] = mapped_column(Integer, default=0)

    regions: Mapped[list["AlertRegion"]] = relationship(cascade="all, delete-orphan", lazy="selectin",
                                                        order_by="AlertRegion.code")

    @property
    def region_codes(self) -> list[str]:
        return [r.code for r in self.regions]

    @property
    def live(self) -> bool:
        return self.status == "active"


class AlertRegion(Base):
    """A region an alert targets (city, town or village); boxes below it show the alert."""

    __tablename__ = "alert_regions"
    __table_args__ = (UniqueConstraint("alert_id", "region_id", name="uq_alert_regions_alert_region"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id", ondelete="CASCADE"), index=True)
    region_id: Mapped[int] = mapped_column(ForeignKey("regions.id"))
    #: Copy of the region's code (topic name, history lookups by code).
    code: Mapped[str] = mapped_column(String(12), index=True)
    #: Copy of the region's path: targeted terminals are those whose path starts with it.
    path: Mapped[str] = mapped_column(String(255))


class AlertAck(Base):
    """A box's acknowledgement of an alert, persisted from Redis in batches."""

    __tablename__ = "alert_acks"
    __table_args__ = (UniqueConstraint("alert_id", "serial", name="uq_alert_acks_alert_serial"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id", ondelete="CASCADE"), index=True)
    serial: Mapped[str] = mapped_column(String(32))
    #: When the box acked (first ack).
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
