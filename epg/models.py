"""The programme guide: channels (city channel, village hall channels, relayed county channels)
and programmes. Meetings are not copied here: the guide reads them as programmes of their
village hall's channel when it is built (so it can never disagree with the meeting)."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, Boolean, DateTime, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship
from sqlalchemy.sql.expression import false as sa_false

from portal_server.core.db import Base

KINDS = ("city", "village", "relay")


class Channel(Base):
    """A channel of the guide and of the M3U list."""

    __tablename__ = "epg_channels"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: XMLTV channel id (= M3U tvg-id), e.g. "city.qingshan" or "vh990101001001.qingshan".
    xmltv_id: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    #: Channel number on the box (M3U tvg-chno).
    number: Mapped[int] = mapped_column(Integer, index=True)
    #: Display name, e.g. 青山市综合频道, 东河村村务厅.
    name: Mapped[str] = mapped_column(String(64))
    #: city, village (a village hall) or relay (a county channel relayed by URL).
    kind: Mapped[str] = mapped_column(String(8))
    #: Region the channel belongs to (the village for a village hall channel).
    region_code: Mapped[str | None] = mapped_column(String(12), index=True)
    #: Stream URL for city and relay channels: a path ("/hls/...") for our own head-end, resolved
    #: against COMMUNITV_PUBLIC_URL when listed; village hall channels follow their live meeting.
    stream_url: Mapped[str] = mapped_column(String(512), default="")
    #: Head-end source relayed by ffmpeg into our HLS (udp/rtp/rtsp/srt/http(s)); "" = no relay.
    source_url: Mapped[str] = mapped_column(String(512), default="", server_default="")
    #: Relay status: starting, live, source_lost ("" for channels without a relay).
    status: Mapped[str] = mapped_column(String(16), default="", server_default="")
    #: When the status last changed (UTC).
    status_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    #: Hours of segments kept for catch-up (回看) and timeshift.
    catchup_hours: Mapped[int] = mapped_column(Integer, default=72, server_default="72")
    #: Process id of the relay's running ffmpeg (None when stopped).
    relay_pid: Mapped[int | None] = mapped_column(Integer)
    #: copy or transcode (how the relay handles the source's codecs).
    relay_mode: Mapped[str | None] = mapped_column(String(12))
    #: Also a 480p rendition (transcoded) beside the relayed one, in a master playlist (index.m3u8).
    low_rendition: Mapped[bool] = mapped_column(Boolean, default=False, server_default=sa_false())
    #: Bytes of HLS segments on disk (measured by the catch-up cleanup job).
    disk_bytes: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")


class Programme(Base):
    """A scheduled programme on a channel (meetings are added when the guide is built)."""

    __tablename__ = "epg_programmes"

    id: Mapped[int] = mapped_column(primary_key=True)
    channel_id: Mapped[int] = mapped_column(ForeignKey("epg_channels.id"), index=True)
    title: Mapped[str] = mapped_column(String(200))
    #: Description (XMLTV desc).
    description: Mapped[str] = mapped_column(Text, default="")
    #: XMLTV category, e.g. 新闻, 政务.
    category: Mapped[str] = mapped_column(String(32), default="")
    starts_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), index=True)
    ends_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), index=True)

    channel: Mapped[Channel] = relationship()
