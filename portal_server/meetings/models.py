"""Community meetings (社区会议): the meeting with its stream key, motions voted on with the
remote, votes (one per household) and attendance (boxes that watched)."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import DateTime, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal_server.core.db import Base, utcnow
from portal_server.core.regions import Region

STATUSES = ("scheduled", "live", "ended", "cancelled")
STATUS_NAMES = {"scheduled": "未开始", "live": "直播中", "ended": "已结束", "cancelled": "已取消"}
CHOICES = ("yes", "no", "abstain")
CHOICE_NAMES = {"yes": "赞成", "no": "反对", "abstain": "弃权"}
#: The remote's colour keys (green = 赞成, red = 反对, yellow = 弃权).
CHOICE_KEYS = {"green": "yes", "red": "no", "yellow": "abstain"}
MOTION_STATUSES = ("open", "closed")


class Meeting(Base):
    """A village (or town) meeting streamed from its hall: scheduled → live → ended."""

    __tablename__ = "meetings"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: Title, e.g. 东河村 村民议事会.
    title: Mapped[str] = mapped_column(String(128))
    #: Agenda (议程), plain text, one item per line.
    agenda: Mapped[str] = mapped_column(Text, default="")
    #: The region whose households watch and vote (a village or town).
    region_id: Mapped[int] = mapped_column(ForeignKey("regions.id"), index=True)
    #: Materialised path of the region (scope prefix queries).
    region_path: Mapped[str] = mapped_column(String(255), index=True)
    #: Planned start (UTC).
    starts_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), index=True)
    #: Planned end (UTC).
    ends_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    #: Secret RTMP stream key pasted into OBS; the name nginx-rtmp sends to on_publish.
    stream_key: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    #: scheduled, live, ended or cancelled.
    status: Mapped[str] = mapped_column(String(12), default="scheduled", index=True)
    #: nginx-rtmp client id of the admitted publisher (a second publisher is refused).
    publisher_id: Mapped[str | None] = mapped_column(String(32))
    #: When the encoder started / stopped publishing.
    live_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    #: pid of the ffmpeg process making HLS (while live), for supervision and reaping.
    ffmpeg_pid: Mapped[int | None] = mapped_column(Integer)
    #: "copy" (input fits the boxes) or "transcode" (to 720p).
    hls_mode: Mapped[str | None] = mapped_column(String(12))
    #: How many times ffmpeg was restarted while the encoder kept publishing.
    ffmpeg_restarts: Mapped[int] = mapped_column(Integer, default=0)
    #: True once the recording is a VOD playlist with a thumbnail.
    replay_ready: Mapped[bool] = mapped_column(default=False)
    #: Minutes (会议纪要) attached afterwards: stored file name under media/meetings/ and the upload's name.
    minutes_file: Mapped[str | None] = mapped_column(String(255))
    minutes_name: Mapped[str | None] = mapped_column(String(255))
    #: Who scheduled it.
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    region: Mapped[Region] = relationship()
    motions: Mapped[list[Motion]] = relationship(back_populates="meeting", order_by="Motion.id")


class Motion(Base):
    """A question put to the vote during a live meeting (表决事项)."""

    __tablename__ = "meeting_motions"

    id: Mapped[int] = mapped_column(primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meetings.id"), index=True)
    #: The question shown over the video, e.g. 是否同意硬化村东道路.
    title: Mapped[str] = mapped_column(String(200))
    #: open (boxes may vote and change their vote) or closed.
    status: Mapped[str] = mapped_column(String(8), default="open")
    opened_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    closed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))

    meeting: Mapped[Meeting] = relationship(back_populates="motions")


class Vote(Base):
    """One household's vote on a motion (changeable while the motion is open)."""

    __tablename__ = "meeting_votes"
    __table_args__ = (UniqueConstraint("motion_id", "household_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    motion_id: Mapped[int] = mapped_column(ForeignKey("meeting_motions.id"), index=True)
    #: The voting household (one vote per household, whichever of its boxes votes).
    household_id: Mapped[int] = mapped_column(ForeignKey("households.id"))
    #: The box that cast (or last changed) the vote.
    serial: Mapped[str] = mapped_column(String(32))
    #: yes, no or abstain.
    choice: Mapped[str] = mapped_column(String(8))
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Attendance(Base):
    """A box that watched the meeting (from its heartbeats' ``playing`` or the TV live page)."""

    __tablename__ = "meeting_attendance"
    __table_args__ = (UniqueConstraint("meeting_id", "serial"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meetings.id"), index=True)
    serial: Mapped[str] = mapped_column(String(32))
    #: The box's household (None for a village hall terminal).
    household_id: Mapped[int | None] = mapped_column(Integer)
    #: "heartbeat" or "tv" (how we first knew).
    source: Mapped[str] = mapped_column(String(12))
    first_seen: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_seen: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
