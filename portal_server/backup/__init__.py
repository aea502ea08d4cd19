"""Backup and restore (INTERFACES §1): `communitv backup FILE`, `communitv restore FILE` and, when
``COMMUNITV_BACKUP_DIR`` is set, a nightly archive kept 7 days + 4 weeks (``tasks.nightly``).

No tables of its own: ``archive`` reads the database through SQLite's backup API or pg_dump.
"""
from __future__ import annotations

from portal_server.core.jobs import PeriodicJob, register_periodic


def init_app(app) -> None:
    """Register the nightly backup when a backup folder is configured (off otherwise)."""
    if app.config["SETTINGS"].backup_dir:
        # Hourly tick; the job itself makes at most one archive per city day, after NIGHTLY_AT.
        register_periodic(PeriodicJob("backup-nightly", "portal_server.backup.tasks:nightly", every_s=3600,
                                      queue="media", timeout_s=3600))
