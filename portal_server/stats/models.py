"""Daily figures per region: one row per (city day, region, metric)."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import Date, Float, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from portal_server.core.db import Base


class DailyFigure(Base):
    """A figure of one city day for one region and everything under it: the aggregation adds what
    belongs to a village (its households, boxes, orders) to the village, its town and the city, so
    a leader's overview is an indexed read of one region's rows, never a sum over its subtree."""

    __tablename__ = "stats_daily"
    __table_args__ = (UniqueConstraint("day", "region_code", "metric", name="uq_stats_daily_day_region_metric"),
                      Index("ix_stats_daily_region_day", "region_code", "day"))

    id: Mapped[int] = mapped_column(primary_key=True)
    #: The day in city time (Asia/Shanghai) the figure counts.
    day: Mapped[dt.date] = mapped_column(Date, index=True)
    #: 12-digit code of the region whose subtree the figure sums.
    region_code: Mapped[str] = mapped_column(String(12))
    #: Materialised path of that region (prefix queries give a subtree).
    region_path: Mapped[str] = mapped_column(String(255), index=True)
    #: Metric name, e.g. ``feedback.received`` or ``tv.section.services``.
    metric: Mapped[str] = mapped_column(String(48), index=True)
    #: The value (a count; rates are computed from two counts when read).
    value: Mapped[float] = mapped_column(Float, default=0)
