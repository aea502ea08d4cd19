"""`communitv backup FILE` and `communitv restore FILE` (INTERFACES §1)."""
from __future__ import annotations

import sys

import click

from portal_server.core.config import Settings

from . import archive


def _bar(label: str):
    """A click progress bar fed by (done, total) callbacks."""
    state = {}

    def update(done: int, total: int) -> None:
        if "bar" not in state:
            state["bar"] = click.progressbar(length=max(total, 1), label=label, file=sys.stderr)
            state["bar"].__enter__()
            state["done"] = 0
        state["bar"].update(done - state["done"])
        state["done"] = done

    def close() -> None:
        if "bar" in state:
            state["bar"].__exit__(None, None, None)
    return update, close


def register(main: click.Group, make_app) -> None:
    @main.command("backup")
    @click.argument("file", type=click.Path(dir_okay=False))
    def backup(file):
        """Write one consistent archive (database, media, recordings, secret key, broker accounts)
        to FILE while everything runs. Written to a temporary file and renamed when complete."""
        where = Settings.from_env(secret_key="placeholder-only-to-find-the-data-dir").data_dir
        if not where.is_dir():     # do not create a data folder (and a new secret key) by backing it up
            click.echo(f"备份失败 / backup failed: 数据目录不存在 / no data folder at {where} "
                       f"(set COMMUNITV_DATA_DIR)", err=True)
            sys.exit(1)
        settings = Settings.from_env()
        update, close = _bar("备份 backup")
        try:
            res = archive.create(settings, file, progress=update)
        except archive.BackupError as exc:
            close()
            click.echo(f"备份失败 / backup failed: {exc}", err=True)
            sys.exit(1)
        close()
        click.echo(f"backup written: {res.path} ({res.database}, {res.files} files, "
                   f"{res.bytes / 1e6:.1f} MB of data, {res.seconds:.1f} s)")

    @main.command("restore")
    @click.argument("file", type=click.Path(dir_okay=False))
    def restore(file):
        """Restore FILE onto an empty data folder and database. The whole archive is checked
        (manifest and sha256 of every file) before anything is written."""
        # A placeholder key: reading the settings must not create a new secret_key in the target.
        settings = Settings.from_env(secret_key="restore-placeholder-never-used-to-sign-anything")
        update, close = _bar("恢复 restore")
        try:
            manifest = archive.restore(settings, file, progress=update)
        except archive.BackupError as exc:
            close()
            click.echo(f"恢复失败 / restore refused: {exc}", err=True)
            sys.exit(1)
        close()
        click.echo(f"restored {len(manifest['files'])} files and the {manifest['database']} database from "
                   f"{file} (taken {manifest['created_at']}) into {settings.data_dir}. "
                   f"Next: `make run` (migrates if the code is newer), then `communitv audit verify`.")
