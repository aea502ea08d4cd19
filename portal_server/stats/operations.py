"""Writes of the figures: the TV beacon line and the daily aggregation.

TV use is counted without Python in the boxes' path: ``tv.js`` asks for ``/tv/beacon?p=<page>``
after each page is shown; in production nginx answers it with 204 and writes one line per view
to ``tv-beacon-<UTC date>.log`` (``$msec $cookie_ctv_sn $arg_p``); in development the app writes
the same line. The aggregation reads the lines of a city day, resolves each serial to its
region, and keeps only counts (no personal data beyond the serial, which is not stored).
"""
from __future__ import annotations

import datetime as dt
import logging
import re
import time
from collections import defaultdict
from pathlib import Path

from flask import current_app
from sqlalchemy import delete, insert, select

from device_fleet import queries as fleet_queries
from portal_server.affairs import queries as affairs_queries
from portal_server.alerts import queries as alerts_queries
from portal_server.care import queries as care_queries
from portal_server.cases import queries as cases_queries
from portal_server.core import clock
from portal_server.core.db import session
from portal_server.core.regions import Region
from portal_server.feedback import queries as feedback_queries
from portal_server.meetings import queries as meetings_queries

from .models import DailyFigure

log = logging.getLogger(__name__)

#: Sections of the portal (INTERFACES §6) and the feature pages that belong to each.
SECTIONS = ("party", "services", "affairs", "safety", "elderly", "live", "interaction", "meetings")
_FEATURE_SECTION = {"services": "services", "care": "elderly", "feedback": "interaction", "polls": "interaction",
                    "meetings": "meetings", "guide": "live", "live": "live", "play": "live", "affairs": "affairs",
                    "party": "party", "safety": "safety", "cases": "services", "channels": "live"}
_SERIAL = re.compile(r"^[A-Z0-9-]{3,32}$")
_PAGE = re.compile(r"^/tv/[A-Za-z0-9/_.-]{0,200}$")

#: Every source of daily figures: ``daily_figures(day, start_utc, end_utc)`` → {region path: {metric: n}}.
SOURCES = (fleet_queries.daily_figures, feedback_queries.daily_figures, care_queries.daily_figures,
           alerts_queries.daily_figures, meetings_queries.daily_figures, affairs_queries.daily_figures,
           cases_queries.daily_figures)


def beacon_dir() -> Path:
    return current_app.config["SETTINGS"].log_dir


def beacon_file(day_utc: dt.date) -> Path:
    """The beacon log of one UTC date (the name nginx's access_log writes)."""
    return beacon_dir() / f"tv-beacon-{day_utc.isoformat()}.log"


def record_beacon(serial: str | None, page: str | None, at: float | None = None) -> bool:
    """Append one view (the development server's stand-in for nginx's access_log line)."""
    if not serial or not page or not _SERIAL.match(serial) or not _PAGE.match(page):
        return False
    at = at if at is not None else time.time()
    day = dt.datetime.fromtimestamp(at, clock.UTC).date()
    with open(beacon_file(day), "a", encoding="utf-8") as fh:
        fh.write(f"{at:.3f} {serial} {page}\n")
    return True


def section_of(page: str) -> str | None:
    """The portal section a page belongs to: ``/tv/v/<code>/s-services.html`` → services,
    ``/tv/care/...`` → elderly; item pages count for the section shown in their ``sec`` hint."""
    parts = page.split("?")[0].strip("/").split("/")
    if len(parts) >= 3 and parts[1] == "v":
        name = parts[-1]
        m = re.match(r"^s-([a-z]+)\.html$", name)
        if m and m.group(1) in SECTIONS:
            return m.group(1)
        return None
    if len(parts) >= 2:
        return _FEATURE_SECTION.get(parts[1])
    return None


def _views_of_day(day: dt.date):
    """(serial, page) of every beacon line inside the city day ``day``."""
    start, end = clock.day_bounds(day)
    t0, t1 = start.timestamp(), end.timestamp()
    for d in {start.date(), (end - dt.timedelta(seconds=1)).date()}:
        f = beacon_file(d)
        if not f.exists():
            continue
        with open(f, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                bits = line.split()
                if len(bits) < 3:
                    continue
                try:
                    ts = float(bits[0])
                except ValueError:
                    continue
                if t0 <= ts < t1 and _SERIAL.match(bits[1]):
                    yield bits[1], bits[2]


def tv_figures(day: dt.date) -> dict[str, dict[str, float]]:
    """Page views (all and by section) and distinct active boxes of the day, by box region."""
    views: dict[str, list[str]] = defaultdict(list)
    for serial, page in _views_of_day(day):
        views[serial].append(page)
    paths = fleet_queries.region_paths_of(list(views))
    out: dict[str, dict[str, float]] = {}
    for serial, pages in views.items():
        path = paths.get(serial)
        if path is None:
            continue
        f = out.setdefault(path, {})
        f["tv.active_boxes"] = f.get("tv.active_boxes", 0) + 1
        f["tv.page_views"] = f.get("tv.page_views", 0) + len(pages)
        for p in pages:
            sec = section_of(p)
            if sec:
                key = f"tv.section.{sec}"
                f[key] = f.get(key, 0) + 1
    return out


def aggregate(day: dt.date | None = None) -> int:
    """Recompute every figure of the city day ``day`` (today by default); idempotent. Returns
    the number of rows written. The caller commits."""
    day = day or clock.today()
    start, end = clock.day_bounds(day)
    merged: dict[str, dict[str, float]] = defaultdict(dict)
    for source in SOURCES + (lambda d, s, e: tv_figures(d),):
        for path, figures in source(day, start, end).items():
            if not path:
                continue
            for metric, value in figures.items():
                merged[path][metric] = merged[path].get(metric, 0) + float(value or 0)
    # Every figure counts for its own region and each region above it (village → town → city).
    rolled: dict[str, dict[str, float]] = defaultdict(dict)
    paths: dict[str, str] = {}
    for path, figures in merged.items():
        codes = [c for c in path.split("/") if c]
        for i, code in enumerate(codes):
            paths[code] = "".join(c + "/" for c in codes[:i + 1])
            f = rolled[code]
            for metric, value in figures.items():
                f[metric] = f.get(metric, 0) + value
    session.execute(delete(DailyFigure).where(DailyFigure.day == day))
    rows = [{"day": day, "region_code": code, "region_path": paths[code], "metric": metric, "value": value}
            for code, figures in rolled.items() for metric, value in figures.items()]
    if rows:
        session.execute(insert(DailyFigure), rows)
    rows = len(rows)
    session.flush()
    log.info("stats: %s aggregated (%d figures, %d regions)", day, rows, len(merged))
    return rows


def prune_beacons(keep_days: int = 35) -> int:
    """Remove beacon logs older than ``keep_days`` (their counts live on in the aggregates)."""
    cutoff = clock.now().date() - dt.timedelta(days=keep_days)
    n = 0
    for f in beacon_dir().glob("tv-beacon-*.log"):
        try:
            d = dt.date.fromisoformat(f.stem.removeprefix("tv-beacon-"))
        except ValueError:
            continue
        if d < cutoff:
            f.unlink(missing_ok=True)
            n += 1
    return n


def regions_exist() -> bool:
    return session.scalar(select(Region.id).limit(1)) is not None
