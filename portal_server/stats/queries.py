"""Reads of the daily figures: overview, time series and rankings of a region's children, always
inside the caller's scope (the API checks it before calling)."""
from __future__ import annotations

import datetime as dt
from collections import defaultdict

from sqlalchemy import func, select

from portal_server.core.db import session
from portal_server.core.regions import Region

from .models import DailyFigure

#: Figures that describe a state (the last day of the period counts), not events (summed).
SNAPSHOT = ("terminals.total", "terminals.online", "affairs.late_villages", "checkins.expected_hh")

#: Time-series metrics (INTERFACES §4.4) and their Chinese names (chart legends).
METRICS = {
    "tv.active_boxes": "活跃机顶盒",
    "tv.page_views": "页面浏览量",
    "terminals.online": "在线终端",
    "terminals.total": "终端总数",
    "feedback.received": "收到诉求",
    "feedback.closed": "办结诉求",
    "cases.received": "受理办件",
    "cases.completed": "办结办件",
    "checkins.expected": "应报平安",
    "checkins.done": "已报平安",
    "alerts.sent": "发布预警",
    "alerts.acked": "预警确认",
    "meetings.held": "召开会议",
    "meetings.attendance": "参会户次",
}
SECTION_NAMES = {"party": "社区党建", "services": "下沉服务", "affairs": "社区管理", "safety": "平安社区",
                 "elderly": "养老助老", "live": "视频直播", "interaction": "政民互动", "meetings": "社区会议"}


def _rows(region: Region, start: dt.date, end: dt.date, metrics=None, by_path: bool = False):
    cols = [DailyFigure.metric, DailyFigure.day] + ([DailyFigure.region_path] if by_path else [])
    q = (select(*cols, func.sum(DailyFigure.value))
         .where(DailyFigure.region_path.startswith(region.path, autoescape=True),
                DailyFigure.day >= start, DailyFigure.day <= end)
         .group_by(*cols))
    if metrics is not None:
        q = q.where(DailyFigure.metric.in_(list(metrics)))
    return session.execute(q).all()


def _fold(rows) -> dict[str, float]:
    """Per-day sums → period figures: events summed, states from the last day, daily distinct
    counts (active boxes) averaged over the days that were aggregated."""
    per_day: dict[str, dict[dt.date, float]] = defaultdict(dict)
    days: set[dt.date] = set()
    for metric, day, value in rows:
        per_day[metric][day] = per_day[metric].get(day, 0) + (value or 0)
        days.add(day)
    out: dict[str, float] = {}
    last = max(days) if days else None
    for metric, series in per_day.items():
        if metric in SNAPSHOT:
            out[metric] = series.get(last, 0)
        elif metric == "tv.active_boxes":
            out[metric] = round(sum(series.values()) / max(1, len(days)), 1)
        else:
            out[metric] = sum(series.values())
    return out


def _rate(num: float, den: float) -> float | None:
    return round(num / den, 4) if den else None


def shape(f: dict[str, float]) -> dict:
    """The overview's JSON shape (INTERFACES §4.4) from folded figures."""
    g = lambda k: int(f.get(k, 0))  # noqa: E731 - a local shorthand
    by_section = {k.removeprefix("tv.section."): int(v) for k, v in sorted(f.items()) if k.startswith("tv.section.")}
    return {
        "terminals": {"total": g("terminals.total"), "online": g("terminals.online")},
        "tv": {"active_boxes": f.get("tv.active_boxes", 0), "page_views": g("tv.page_views"),
               "by_section": by_section},
        "feedback": {"received": g("feedback.received"), "closed": g("feedback.closed"),
                     "on_time_rate": _rate(f.get("feedback.closed_on_time", 0), f.get("feedback.closed", 0)),
                     "satisfaction": (round(f["feedback.rating_sum"] / f["feedback.rated"], 2)
                                      if f.get("feedback.rated") else None)},
        "cases": {"received": g("cases.received"), "completed": g("cases.completed"),
                  "on_time_rate": _rate(f.get("cases.completed_on_time", 0), f.get("cases.completed", 0))},
        "checkins": {"expected": g("checkins.expected"), "done": g("checkins.done")},
        "alerts": {"sent": g("alerts.sent"), "reach_rate": _rate(f.get("alerts.acked", 0), f.get("alerts.targeted", 0))},
        "meetings": {"held": g("meetings.held"), "attendance": g("meetings.attendance")},
        "affairs": {"late_villages": g("affairs.late_villages")},
    }


def overview(region: Region, start: dt.date, end: dt.date) -> dict:
    """Every figure of ``region`` and its subtree over the city days [start, end]."""
    return shape(_fold(_rows(region, start, end)))


def timeseries(region: Region, metric: str, start: dt.date, end: dt.date) -> list[dict]:
    """One point per city day (0 where nothing was counted)."""
    values: dict[dt.date, float] = defaultdict(float)
    for _m, day, value in _rows(region, start, end, metrics=[metric]):
        values[day] += value or 0
    out = []
    d = start
    while d <= end:
        out.append({"t": d.isoformat(), "v": values.get(d, 0)})
        d += dt.timedelta(days=1)
    return out


def children_of(region: Region) -> list[Region]:
    return list(session.scalars(select(Region).where(Region.parent_id == region.id).order_by(Region.code)))


def by_child(region: Region, start: dt.date, end: dt.date) -> list[dict]:
    """The overview of each child region (towns of a city, villages of a town), for rankings and
    the map; a village has no children and gives itself."""
    kids = children_of(region) or [region]
    rows = _rows(region, start, end, by_path=True)
    buckets: dict[str, list] = defaultdict(list)
    for metric, day, path, value in rows:
        for k in kids:
            if path.startswith(k.path):
                buckets[k.code].append((metric, day, value))
                break
    out = []
    for k in kids:
        ov = shape(_fold(buckets.get(k.code, [])))
        out.append({"code": k.code, "name": k.name, "level": k.level, **ov})
    return out
