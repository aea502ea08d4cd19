"""`communitv households import FILE` (xlsx or UTF-8/GBK CSV, progress bar) and
`communitv registry compare [--region CODE]`."""
from __future__ import annotations

import sys

import click

from portal_server.core import imports
from portal_server.core.accounts import user_by_username
from portal_server.core.db import session


def run_import(app, path: str, username: str, preview: bool = False) -> tuple[int, str]:
    """Import a household table as ``username`` (its scope applies) → (exit code, message)."""

    from . import operations as ops

    with app.app_context():
        try:
            with open(path, "rb") as fh:
                data = fh.read()
        except OSError as exc:
            return 2, f"无法读取 {path}: {exc}"
        user = user_by_username(username)
        if user is None:
            return 2, f"账号不存在：{username}"
        try:
            plan = ops.plan_household_import(user, data, path)
            c = plan.counts()
            if plan.bad:
                lines = "\n".join(f"  第 {b.row} 行：{b.message}" for b in plan.bad[:50])
                more = f"\n  …共 {len(plan.bad)} 行有错误" if len(plan.bad) > 50 else ""
                return 1, f"导入失败，未导入任何数据：\n{lines}{more}"
            if preview:
                return 0, f"预览：新增 {c['new']} 户，更新 {c['updated']} 户，无变化 {c['unchanged']} 户（未写入）"
            with click.progressbar(length=len(plan.items), label="导入住户") as bar:
                ops.import_households(user, plan, progress=bar.update, source=path)
                session.commit()
        except imports.ImportFileError as exc:
            session.rollback()
            return 1, f"导入失败，未导入任何数据：{exc.message}"
        except Exception:
            session.rollback()
            raise
        finally:
            session.remove()
    return 0, f"已导入：新增 {c['new']} 户，更新 {c['updated']} 户，无变化 {c['unchanged']} 户"


def register(main: click.Group, make_app) -> None:
    @main.group("households")
    def households():
        """Households of the registry."""

    @households.command("import")
    @click.argument("path", type=click.Path(exists=True, dir_okay=False))
    @click.option("--as", "username", default="admin", show_default=True,
                  help="the account whose scope the import is checked against")
    @click.option("--preview", is_flag=True, help="check every row and show what would change; write nothing")
    def households_import(path, username, preview):
        """Import households from .xlsx or .csv (UTF-8 or GBK) with the headers
        村代码, 地址, 户主姓名, 联系电话, 标签 (optional 户主身份证号). All rows or none."""

        code, msg = run_import(make_app(), path, username, preview)
        click.echo(msg, err=code != 0)
        sys.exit(code)

    @main.group("registry")
    def registry():
        """Base-data checks."""

    @registry.command("compare")
    @click.option("--region", default=None, help="region code (default: every town)")
    def compare(region):
        """Run the data comparison (数据比对) now."""

        from . import tasks

        app = make_app()
        with app.app_context():
            n = tasks.compare_code(region) if region else tasks.compare_all(force=True)
            session.remove()
        click.echo(f"比对完成：发现 {n} 条问题")
