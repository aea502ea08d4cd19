"""HTTP of the TV portal.

``/tv/`` is where a box's config sends it (``?token=``): the token is checked once, kept in the
``ctv_terminal`` cookie with the village key ``ctv_vk``, and the box goes on to its region's
static pages ``/tv/v/<code>/...`` (nginx serves them; the app renders what is missing). Without a
valid token the portal shows the pairing screen, never anybody's content.
"""
from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from urllib.parse import urlparse
from zoneinfo import ZoneInfo

from flask import (Blueprint, abort, current_app, g, jsonify, make_response, redirect, render_template,
                   request, send_from_directory)
from itsdangerous import BadSignature, URLSafeSerializer
from markupsafe import Markup
from sqlalchemy import select

from portal_server.core import clock
from portal_server.core.auth import TERMINAL_COOKIE, cookie_secure, page_terminal, request_terminal
from portal_server.core.db import session
from portal_server.core.qr import qr_svg
from portal_server.core.terminals import Terminal, check_portal_link, mark_token_live, terminal_for_token
from portal_server.core.households import TAGS

from . import push, snapshots
from .sections import BY_KEY, SECTIONS

STATIC = Path(__file__).resolve().parent / "static"
bp = Blueprint("tv", __name__, url_prefix="/tv", template_folder="templates")
static_bp = Blueprint("tv_static", __name__)
m_bp = Blueprint("tv_phone", __name__, url_prefix="/m", template_folder="templates")

VK_COOKIE = "ctv_vk"
SERIAL_COOKIE = "ctv_sn"
YEAR = 365 * 86400


@static_bp.get("/tv/static/<path:filename>")
def static(filename: str):
    """The portal's CSS, ES5 scripts and images (nginx serves the same folder in production)."""
    resp = send_from_directory(STATIC, filename, max_age=7 * 86400)
    return resp


def asset_version() -> str:
    """Changes when a static file changes: appended to asset URLs so boxes never run stale scripts."""
    ver = current_app.extensions.get("tv_asset_version")
    if ver is None:
        import hashlib

        h = hashlib.sha1()
        for p in sorted(STATIC.rglob("*")):
            if p.is_file():
                h.update(p.name.encode())
                h.update(str(p.stat().st_mtime_ns).encode())
        ver = current_app.extensions["tv_asset_version"] = h.hexdigest()[:8]
    return ver


def tv_tz_offset() -> int:
    """The city's UTC offset now, in minutes (the page's clock adds it to the server's UTC time)."""
    off = dt.datetime.now(ZoneInfo(current_app.config["SETTINGS"].timezone)).utcoffset()
    return int(off.total_seconds() // 60) if off is not None else 0


def tv_push_path(code: str) -> str:
    """The push URL of the pages of region ``code`` (stb_app.push)."""
    region = snapshots.region_by_code(code)
    return push.subscribe_path(code, region.chain_codes()) if region is not None else ""


@bp.app_context_processor
def _tv_globals():
    return {"tv_asset": lambda name: f"/tv/static/{name}?v={asset_version()}", "TV_SECTIONS": SECTIONS,
            "tv_tz": current_app.config["SETTINGS"].timezone, "tv_tz_offset": tv_tz_offset,
            "tv_push_path": tv_push_path}


WEEKDAYS = "一二三四五六日"


def tv_date(ts, with_year: bool = False) -> str:
    """A date as residents read it, in the city's timezone: 11月23日 (2026年11月23日)."""
    if ts is None:
        return ""
    if isinstance(ts, str):
        ts = dt.datetime.fromisoformat(ts)
    local = clock.local(ts)
    return (f"{local.year}年" if with_year else "") + f"{local.month}月{local.day}日"


def _terminal_or_none():
    term = request_terminal()
    g.terminal = term
    return term


def _home_url(term) -> str:
    return f"/tv/v/{term.region.code}/home.html"


def _with_box_cookies(resp, term, token: str | None):
    if token:
        resp.set_cookie(TERMINAL_COOKIE, token, httponly=True, samesite="Lax", max_age=YEAR,
                        secure=cookie_secure())
    resp.set_cookie(VK_COOKIE, snapshots.village_key(term.region.code), httponly=True, samesite="Lax",
                    max_age=YEAR, path="/tv/v/", secure=cookie_secure())
    # The serial (not a secret) names the box in the page-view beacon nginx logs for the figures.
    resp.set_cookie(SERIAL_COOKIE, term.serial, samesite="Lax", max_age=YEAR, path="/tv/", secure=cookie_secure())
    return resp


@bp.get("/")
def entry():
    """The box's start URL: its village's home screen, or the pairing screen."""
    token = request.args.get("token")
    if token and request.args.get("sig") is not None and check_portal_link(request.args) == "forged":
        abort(403)  # as nginx refuses it (stack.nginx_portal_entry); expired/revoked fall through
    term = terminal_for_token(token) if token else _terminal_or_none()
    if term is None or term.region is None:
        return pairing_screen(bad_token=bool(token))
    if token:
        mark_token_live(term)  # nginx admits this box's URL by itself next time
    return _with_box_cookies(redirect(_home_url(term)), term, token)


def pairing_screen(bad_token: bool = False, code: str | None = None):
    """What an unknown, unbound or revoked box shows: how to pair it (and its code when known)."""
    pending = code and session.scalar(select(Terminal.id).where(Terminal.pairing_code == code,
                                                                Terminal.region_id.is_(None)))
    link = current_app.config["SETTINGS"].public_url.rstrip("/") + "/m/pair" + (f"?code={code}" if pending else "")
    resp = make_response(render_template("tv/pair.html", code=code if pending else None, qr=qr_svg(link, 260),
                                         bad_token=bad_token, page_kind="pair"))
    resp.headers["Cache-Control"] = "no-store"
    if bad_token:  # a forged or revoked token must not keep opening pages
        resp.delete_cookie(TERMINAL_COOKIE)
        resp.delete_cookie(VK_COOKIE, path="/tv/v/")
    return resp


@bp.get("/pair")
def pair():
    """The pairing screen of a box that knows its pairing code (from its MQTT config)."""
    code = (request.args.get("code") or "").strip().upper()
    return pairing_screen(code=code if re.fullmatch(r"[A-Z0-9]{4,8}", code) else None)


@bp.get("/v/<code>/<name>")
def village_file(code: str, name: str):
    """A page of region ``code`` for boxes holding its key (what nginx does without Python)."""
    if not (snapshots.CODE_RE.match(code) and snapshots.FILE_RE.match(name)):
        abort(404)
    if request.cookies.get(VK_COOKIE) != snapshots.village_key(code):
        return redirect("/tv/")
    path = snapshots.root() / code / name
    if path.exists():
        resp = send_from_directory(path.parent, name, max_age=0)
        resp.headers["Cache-Control"] = "no-cache"
        return resp
    region = snapshots.region_by_code(code)
    if region is None:
        abort(404)
    out = snapshots.materialise(region, name)
    if out is None:
        abort(404)
    resp = make_response(out[0])
    resp.mimetype = out[1]
    resp.headers["Cache-Control"] = "no-cache"
    return resp


@bp.get("/section/<key>")
def section(key: str):
    """A stable link to a section of the asking box's region (used by notices and feature pages)."""
    if key not in BY_KEY:
        abort(404)
    term = page_terminal()
    return _with_box_cookies(redirect(f"/tv/v/{term.region.code}/s-{key}.html"), term, None)


@bp.get("/item/<int:item_id>")
def item(item_id: int):
    """A content item for the asking box: the village's static page, or the personal page of an
    item meant for its household's tags."""
    term = page_terminal()
    tags = _tags(term)
    if snapshots.item_for(item_id, term.region.code) is not None:
        return _with_box_cookies(redirect(f"/tv/v/{term.region.code}/i-{item_id}.html"), term, None)
    it = snapshots.item_for(item_id, term.region.code, tags) if tags else None
    if it is None:
        abort(404)
    region = snapshots._region_ctx(term.region)
    resp = make_response(snapshots.render_item(it, region))
    resp.headers["Cache-Control"] = "no-store"
    return resp


def _tags(term) -> list[str]:
    return term.household.tag_list if term.household is not None else []


@bp.get("/api/me")
def me():
    """Personal facts of this box for the home screen: feature states, notices, items for its tags."""
    term = _terminal_or_none()
    if term is None or term.region is None:
        return jsonify({"error": {"code": "unauthorized", "message": "本机尚未绑定"}}), 401
    state, notices = {}, []
    for name, fn in current_app.extensions["stb_app"]["state"].items():
        try:
            data = fn(term) or {}
        except Exception:  # one feature's trouble must not blank the home screen
            current_app.logger.exception("TV state provider %s failed", name)
            continue
        notices.extend(data.get("notices", []))
        state[name] = data
    personal = []
    tags = _tags(term)
    if tags:
        for it in snapshots.items_for(term.region.code, tags=tags, limit=6):
            personal.append({"id": it["id"], "title": it["title"], "section": it["section"],
                             "url": f"/tv/item/{it['id']}"})
    resp = jsonify({"region": term.region.code, "household": term.household_id is not None,
                    "state": state, "notices": notices, "personal": personal})
    resp.headers["Cache-Control"] = "no-store"
    return resp


@bp.get("/api/token")
def token():
    """This box's token, for tv.js to send in X-Terminal-Token on writes. A GET answered only to
    our own pages (browsers never let another site read it); the cookie stays HttpOnly."""
    term = _terminal_or_none()
    tok = request.cookies.get(TERMINAL_COOKIE)
    if term is None or term.region is None or not tok:
        return jsonify({"error": {"code": "unauthorized", "message": "本机尚未绑定"}}), 401
    resp = jsonify({"token": tok})
    resp.headers["Cache-Control"] = "no-store"
    return resp


def _safe_src(src: str) -> str | None:
    """Only our own HLS (or an http(s) relay) may be played; never javascript: or data: URLs."""
    if not src:
        return None
    u = urlparse(src)
    if u.scheme in ("http", "https") and u.netloc:
        return src
    if not u.scheme and not u.netloc and src.startswith("/"):
        return src
    return None


@bp.get("/play")
def play():
    """The video page: plays an HLS URL; OK pauses/plays, Back leaves."""
    page_terminal()
    src = _safe_src(request.args.get("src", ""))
    if src is None:
        abort(404)
    back = request.args.get("back", "")
    back = back if back.startswith("/tv/") else "/tv/"
    return render_template("tv/play.html", src=src, title=request.args.get("title", "")[:60], back=back,
                           page_kind="play")


# QR codes and the phone page of an item --------------------------------------------------------

def _item_signer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt="ctv-item-phone")


def item_phone_url(item_id: int, region_code: str) -> str:
    """A signed link to item ``item_id`` as boxes of ``region_code`` see it (the TV's QR code)."""
    sig = _item_signer().dumps([item_id, region_code])
    return current_app.config["SETTINGS"].public_url.rstrip("/") + f"/m/item/{sig}"


def item_qr(item_id: int, region_code: str) -> Markup:
    return qr_svg(item_phone_url(item_id, region_code), 200)


@m_bp.get("/item/<sig>")
def phone_item(sig: str):
    """The same item on a phone (from the TV's QR code): selectable text, images, attachments."""
    try:
        item_id, region_code = _item_signer().loads(sig)
        item_id = int(item_id)
    except (BadSignature, ValueError, TypeError):
        abort(404)

    # Exactly what that region's boxes may see now (an expired item is gone at once); the link was
    # only shown to a household there, so items for any household tag of the region count.
    it = snapshots.item_for(item_id, region_code, list(TAGS))
    if it is None:
        return render_template("tv/phone_item.html", item=None), 404
    return render_template("tv/phone_item.html", item=it)


# Errors --------------------------------------------------------------------------------------

def tv_error(err):
    """A TV page that fails shows a friendly screen with focus on 返回首页, never a stack trace."""
    status = getattr(err, "code", 500) or 500
    if status == 401:
        resp = pairing_screen()
        resp.status_code = 401
        return resp
    msg = {404: "没有找到这个页面，内容可能已经下线。", 400: "请求有误。"}.get(status, "服务暂时不可用，请稍后再试。")
    resp = make_response(render_template("tv/error.html", message=msg, status=status, page_kind="error"), status)
    resp.headers["Cache-Control"] = "no-store"
    return resp
