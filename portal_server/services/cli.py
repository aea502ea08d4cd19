"""`communitv services import FILE`: load a service catalogue (.xlsx, or CSV in UTF-8 or GBK; Chinese headers)."""
from __future__ import annotations

import click

from portal_server.core.api import ApiError
from portal_server.core.db import session


def register(main: click.Group, make_app) -> None:
    @main.group("services")
    def services():
        """The service catalogue (全市通办)."""

    @services.command("import")
    @click.argument("file", type=click.Path(exists=True, dir_okay=False))
    def import_(file):
        """Import FILE: all rows or none; rows update existing items by 事项编码 (safe to run twice)."""

        from . import operations as ops

        app = make_app()
        with app.app_context():
            try:
                result = ops.import_file(file, "cli")
                session.commit()
            except ApiError as e:
                session.rollback()
                for bad in e.extra.get("rows") or []:  # every bad row, not only the first
                    click.echo(f"第 {bad['row']} 行：{bad['message']}", err=True)
                raise click.ClickException(e.message) from None
        click.echo(f"导入完成：新增 {result['created']} 项，更新 {result['updated']} 项，"
                   f"无变化 {result['unchanged']} 项")
