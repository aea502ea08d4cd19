"""TV pages of 社区会议 (/tv/meetings/...): the list (live, upcoming, past with replays), the live
page (video with the vote overlay; green 赞成, red 反对, yellow 弃权) and the replay page.

Video plays through the portal's hls.js (ES5 build in stb_app/static/vendor).
"""
from __future__ import annotations

from flask import Blueprint, abort, render_template

from portal_server.core import clock
from portal_server.core.auth import keep_terminal_cookie, page_terminal

from . import queries
from .models import CHOICE_NAMES, STATUS_NAMES

bp = Blueprint("meetings_tv", __name__, url_prefix="/tv/meetings", template_folder="templates",
               static_folder="static", static_url_path="/static")
bp.after_request(keep_terminal_cookie)

WEEKDAYS = "一二三四五六日"


def when(ts) -> str:
    local = clock.local(ts)
    return f"{local.month}月{local.day}日 周{WEEKDAYS[local.weekday()]} {local:%H:%M}"


@bp.get("/")
def index():
    """直播中 / 即将开始 / 往期回放 of the box's village and town."""
    term = page_terminal()
    secs = queries.box_sections(term.region_path)
    return render_template("meetings/tv_index.html", secs=secs, when=when,
                           STATUS=STATUS_NAMES, signed=queries.signed_path)


def _meeting(meeting_id: int):
    term = page_terminal()
    m = queries.meeting_by_id(meeting_id)
    if m is None or not queries.visible_to_box(m, term):
        abort(404)
    return term, m


@bp.get("/<int:meeting_id>/live")
def live(meeting_id: int):
    """The live video full screen; a motion shows over it with the colour keys."""
    _term, m = _meeting(meeting_id)
    return render_template("meetings/tv_player.html", m=m, mode="live",
                           src=queries.live_signed_path(m.id), CHOICES=CHOICE_NAMES, when=when)


@bp.get("/<int:meeting_id>/replay")
def replay(meeting_id: int):
    """The replay (VOD) with the results of its motions."""
    _term, m = _meeting(meeting_id)
    if not m.replay_ready:
        abort(404)
    motions = [queries.motion_to_dict(x) for x in m.motions]
    return render_template("meetings/tv_player.html", m=m, mode="replay",
                           src=queries.signed_path(m.id, "replay.m3u8"), motions=motions, CHOICES=CHOICE_NAMES,
                           when=when)


def live_notices(terminal) -> dict:
    """State for the TV portal: a notice per live meeting of the box's village."""
    if terminal is None or not terminal.region_path:
        return {}
    notices = [{"text": f"{m.region.name} {m.title} 正在直播", "url": f"/tv/meetings/{m.id}/live",
                "meeting_id": m.id} for m in queries.live_for_box(terminal.region_path)]
    return {"notices": notices} if notices else {}


def register_tv_hooks(app) -> None:
    """Our tiles on the portal's section pages and our personal facts on its home screen."""
    from stb_app import add_section_action, add_state_provider
    add_section_action(app, "meetings", "社区会议", "/tv/meetings/")
    add_section_action(app, "live", "会议直播", "/tv/meetings/")
    add_state_provider(app, "meetings", live_notices)
