"""`communitv stats aggregate [--date YYYY-MM-DD]`: fill the daily figures of a city day."""
from __future__ import annotations

import datetime as dt

import click

from portal_server.core import clock
from portal_server.core.db import session


def register(main: click.Group, make_app) -> None:
    @main.group("stats")
    def stats():
        """Figures for leaders (daily aggregates)."""

    @stats.command("aggregate")
    @click.option("--date", "day", help="city day YYYY-MM-DD (default: today)")
    @click.option("--days", type=int, default=1, show_default=True, help="this many days ending at --date")
    def aggregate(day: str | None, days: int):
        """Recompute the figures of one or more city days (idempotent; the periodic job does the same)."""

        from . import operations

        app = make_app()
        with app.app_context():
            try:
                end = dt.date.fromisoformat(day) if day else clock.today()
            except ValueError:
                raise click.BadParameter(f"日期格式应为 YYYY-MM-DD：{day}", param_hint="--date") from None
            with click.progressbar(range(days), label="汇总统计") as bar:
                total = 0
                for i in bar:
                    total += operations.aggregate(end - dt.timedelta(days=days - 1 - i))
                    session.commit()
            click.echo(f"{days} 天，{total} 项统计")
