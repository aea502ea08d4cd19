"""The NOC's page of live channels (/noc/channels): status, relay mode, catch-up kept and the disk
it takes, per channel. Channels are added and removed through the API (INTERFACES §4.5)."""
from __future__ import annotations

from flask import Blueprint, render_template

from portal_server.core.auth import roles_required

from . import queries

bp = Blueprint("epg_noc", __name__, url_prefix="/noc/channels", template_folder="templates")
STATUS_NAMES = {"starting": "启动中", "live": "直播中", "source_lost": "信号中断"}
MODE_NAMES = {"copy": "直通", "transcode": "转码"}


def size(n: int | None) -> str:
    n = n or 0
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"


@bp.get("/")
@roles_required("noc")
def index():
    rows = queries.relayed_channels()
    return render_template("epg/noc_channels.html", rows=rows, size=size, STATUS=STATUS_NAMES, MODES=MODE_NAMES,
                           total=sum(c.disk_bytes or 0 for c in rows))
