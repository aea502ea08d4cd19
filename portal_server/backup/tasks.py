"""The nightly backup (a periodic job, on when ``COMMUNITV_BACKUP_DIR`` is set) and its retention."""
from __future__ import annotations

import datetime as dt
import logging
import re
from pathlib import Path

from flask import current_app

from portal_server.core import clock

from . import archive

log = logging.getLogger(__name__)

#: City time after which the day's archive is made (the quietest hour on village TVs).
NIGHTLY_AT = dt.time(2, 0)
#: Archives kept: the newest DAILY, plus the newest of each of the WEEKLY ISO weeks before them.
DAILY, WEEKLY = 7, 4
NAME = re.compile(r"^communitv-(\d{8})\.tar\.gz$")


def archive_name(day: dt.date) -> str:
    """The nightly archive's file name for a city day."""
    return f"communitv-{day:%Y%m%d}.tar.gz"


def nightly(now: dt.datetime | None = None) -> str | None:
    """Make today's archive in the backup folder once it is past NIGHTLY_AT (city time) and it
    does not exist yet, then prune old ones. Idempotent: the hourly tick calls it freely."""
    settings = current_app.config["SETTINGS"]
    if not settings.backup_dir:
        return None
    local = clock.local(now or clock.now())
    folder = Path(settings.backup_dir)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / archive_name(local.date())
    made = None
    if local.time() >= NIGHTLY_AT and not target.exists():
        res = archive.create(settings, target)
        log.info("nightly backup %s: %d files, %.1f MB in %.1f s", target, res.files, res.bytes / 1e6, res.seconds)
        made = str(target)
    removed = prune(folder)
    if removed:
        log.info("nightly backup: removed old archives %s", ", ".join(removed))
    return made


def keep(days: list[dt.date], daily: int = DAILY, weekly: int = WEEKLY) -> set[dt.date]:
    """Which archive days to keep: the ``daily`` newest, then the newest of each older ISO week
    until ``weekly`` weeks are covered."""
    days = sorted(set(days), reverse=True)
    kept = set(days[:daily])
    weeks: list[tuple[int, int]] = []
    for d in days[daily:]:
        week = d.isocalendar()[:2]
        if week in weeks:
            continue
        if len(weeks) == weekly:
            break
        weeks.append(week)
        kept.add(d)
    return kept


def prune(folder: Path, daily: int = DAILY, weekly: int = WEEKLY) -> list[str]:
    """Delete the archives of ``folder`` that ``keep`` does not keep; returns their names."""
    found = {}
    for p in folder.iterdir():
        m = NAME.match(p.name)
        if m:
            found[dt.datetime.strptime(m.group(1), "%Y%m%d").date()] = p
    kept = keep(list(found), daily, weekly)
    removed = []
    for day, p in sorted(found.items()):
        if day not in kept:
            p.unlink(missing_ok=True)
            removed.append(p.name)
    return removed
