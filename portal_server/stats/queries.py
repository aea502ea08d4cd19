"""Reads of the daily figures: overview, time series and rankings of a region's children, always
inside the caller's scope (the API checks it before calling)."""
from __future__ import annotations

import datetime as dt
from collections import defaultdict

from sqlalchemy import select

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


def _rows(codes: list[str], start: dt.date, end: dt.date, metrics=None):
    """(metric, day, region code, value) of the regions ``codes`` (each row sums its subtree)."""
    q = (select(DailyFigure.metric, DailyFigure.day, DailyFigure.region_code, DailyFigure.value)
         .where(DailyFigure.region_code.in_(codes), DailyFigure.day >= start, DailyFigure.day <= end))
    if metrics is not None:
        q = q.where(DailyFigure.metric.in_(list(metrics)))
    return session.execute(q).all()


def _fold(rows) -> dict[str, float]:
    """Per-day sums → period figures: events summed, states from the last day, daily distinct
    counts (active boxes) averaged over the days that were aggregated."""
    per_day: dict[str, dict[dt.date, float]] = defaultdict(dict)
    days: set[dt.date] = set()
    for metric, day, _code, value in rows:
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
    return shape(_fold(_rows([region.code], start, end)))


def timeseries(region: Region, metric: str, start: dt.date, end: dt.date) -> list[dict]:
    """One point per city day (0 where nothing was counted)."""
    return many_series(region, [metric], start, end)[metric]


def many_series(region: Region, metrics, start: dt.date, end: dt.date) -> dict[str, list[dict]]:
    """Several daily series of one region in one read."""
    values: dict[str, dict[dt.date, float]] = {m: defaultdict(float) for m in metrics}
    for metric, day, _code, value in _rows([region.code], start, end, metrics=metrics):
        values[metric][day] += value or 0
    out = {}
    for m in metrics:
        pts, d = [], start
        while d <= end:
            pts.append({"t": d.isoformat(), "v": values[m].get(d, 0)})
            d += dt.timedelta(days=1)
        out[m] = pts
    return out


def children_of(region: Region) -> list[Region]:
    return list(session.scalars(select(Region).where(Region.parent_id == region.id).order_by(Region.code)))


def by_child(region: Region, start: dt.date, end: dt.date) -> list[dict]:
    """The overview of each child region (towns of a city, villages of a town), for rankings and
    the map; a village has no children and gives itself."""
    kids = children_of(region) or [region]
    buckets: dict[str, list] = defaultdict(list)
    for row in _rows([k.code for k in kids], start, end):
        buckets[row[2]].append(row)
    return [{"code": k.code, "name": k.name, "level": k.level, **shape(_fold(buckets.get(k.code, [])))}
            for k in kids]
