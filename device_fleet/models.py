"""Fleet tables: commands and their per-box results, firmware, rollouts, alarms.

Presence and heartbeat history live in Redis (see presence.py); nothing here is written per heartbeat.
"""
from __future__ import annotations

import datetime as dt
import json

from sqlalchemy import DateTime, Float, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from portal_server.core.db import Base, utcnow

COMMAND_TYPES = ("reboot", "reload", "tune", "message", "upgrade")
COMMAND_STATUSES = ("sent", "acked", "failed", "expired")


class CommandBatch(Base):
    """One operator action aimed at many boxes (by region, model or firmware)."""

    __tablename__ = "fleet_command_batches"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: reboot, reload, tune, message or upgrade.
    type: Mapped[str] = mapped_column(String(16))
    #: JSON of the command's args.
    args_json: Mapped[str] = mapped_column(Text, default="{}")
    #: JSON of the selector the operator used ({"region","model","firmware","kind"}).
    selector_json: Mapped[str] = mapped_column(Text, default="{}")
    #: How many boxes it was sent to.
    total: Mapped[int] = mapped_column(Integer, default=0)
    #: Username of the operator.
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    #: After this the unacked commands of the batch count as expired.
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))

    @property
    def selector(self) -> dict:
        return json.loads(self.selector_json or "{}")


class Command(Base):
    """A command to one box and its result (the box's ack)."""

    __tablename__ = "fleet_commands"

    #: Opaque id sent to the box in the cmd payload and returned in its ack.
    id: Mapped[str] = mapped_column(String(24), primary_key=True)
    #: The bulk action this belongs to, if any.
    batch_id: Mapped[int | None] = mapped_column(ForeignKey("fleet_command_batches.id"), index=True)
    #: The rollout this upgrade belongs to, if any.
    rollout_id: Mapped[int | None] = mapped_column(ForeignKey("fleet_rollouts.id"), index=True)
    terminal_id: Mapped[int] = mapped_column(ForeignKey("terminals.id"), index=True)
    #: Copy of the terminal's serial (the ack names the box by serial).
    serial: Mapped[str] = mapped_column(String(32), index=True)
    type: Mapped[str] = mapped_column(String(16))
    #: JSON of the command's args.
    args_json: Mapped[str] = mapped_column(Text, default="{}")
    #: sent, acked (ok), failed (ack not ok) or expired (no ack before expires_at).
    status: Mapped[str] = mapped_column(String(16), default="sent", index=True)
    #: The box's detail from its ack, or why it expired.
    detail: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), index=True)
    #: When the box's ack arrived.
    acked_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))

    @property
    def args(self) -> dict:
        return json.loads(self.args_json or "{}")


class Firmware(Base):
    """An uploaded firmware image."""

    __tablename__ = "fleet_firmware"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: Version string the box reports in hello/hb once installed.
    version: Mapped[str] = mapped_column(String(32), unique=True)
    #: Box model it is for (None: every model).
    model: Mapped[str | None] = mapped_column(String(32))
    #: Hex SHA-256 of the image; the box checks it before installing.
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer, default=0)
    #: File name under $DATA_DIR/media/firmware/.
    filename: Mapped[str] = mapped_column(String(128))
    notes: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


ROLLOUT_STATUSES = ("running", "paused", "completed", "rolled_back")


class Rollout(Base):
    """A firmware rollout in waves with thresholds."""

    __tablename__ = "fleet_rollouts"

    id: Mapped[int] = mapped_column(primary_key=True)
    firmware_id: Mapped[int] = mapped_column(ForeignKey("fleet_firmware.id"), index=True)
    #: Version to go back to on rollback.
    previous_version: Mapped[str | None] = mapped_column(String(32))
    #: JSON list of cumulative percentages, e.g. [5, 15, 80, 100].
    waves_json: Mapped[str] = mapped_column(String(64), default="[5, 15, 80, 100]")
    #: Index of the wave currently being rolled out.
    wave: Mapped[int] = mapped_column(Integer, default=0)
    #: Share of the sent boxes that must succeed before the next wave starts.
    success_threshold: Mapped[float] = mapped_column(Float, default=0.9)
    #: Share of the sent boxes failing that pauses the rollout by itself.
    error_threshold: Mapped[float] = mapped_column(Float, default=0.1)
    #: running, paused, completed or rolled_back.
    status: Mapped[str] = mapped_column(String(16), default="running", index=True)
    #: Why it paused (operator or the error threshold).
    pause_reason: Mapped[str | None] = mapped_column(String(255))
    #: JSON of the selector of target boxes ({"region","model","firmware"}).
    selector_json: Mapped[str] = mapped_column(Text, default="{}")
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    @property
    def waves(self) -> list[int]:
        return json.loads(self.waves_json)


class RolloutTarget(Base):
    """One box of a rollout, in the wave that will upgrade it."""

    __tablename__ = "fleet_rollout_targets"

    id: Mapped[int] = mapped_column(primary_key=True)
    rollout_id: Mapped[int] = mapped_column(ForeignKey("fleet_rollouts.id"), index=True)
    terminal_id: Mapped[int] = mapped_column(ForeignKey("terminals.id"))
    serial: Mapped[str] = mapped_column(String(32), index=True)
    #: Position in the rollout's (shuffled) order; the wave is derived from it.
    position: Mapped[int] = mapped_column(Integer)
    #: pending, sent, succeeded, failed, rolled_back.
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    #: The upgrade command sent to it.
    command_id: Mapped[str | None] = mapped_column(String(24))


class Alarm(Base):
    """A NOC alarm; it clears itself when its cause goes away."""

    __tablename__ = "fleet_alarms"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: institutional_offline, area_outage or channel_source_lost.
    kind: Mapped[str] = mapped_column(String(32), index=True)
    #: The terminal (institutional_offline) or None (area_outage).
    serial: Mapped[str | None] = mapped_column(String(32), index=True)
    #: The village (area outage) or the terminal's region.
    region_code: Mapped[str | None] = mapped_column(String(12))
    region_path: Mapped[str | None] = mapped_column(String(255), index=True)
    #: What else the alarm is about, e.g. a channel's XMLTV id (channel_source_lost).
    subject: Mapped[str | None] = mapped_column(String(64), index=True)
    #: Chinese one-line description for the NOC.
    message: Mapped[str] = mapped_column(String(255))
    raised_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    #: Set when the cause went away (None: active).
    cleared_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), index=True)
