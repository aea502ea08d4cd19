"""Per-region TV pages rendered once per change and served as files (DESIGN §2).

A box in village V sees the same home, section and item pages as every other box in V, so they
are rendered into ``$DATA_DIR/tv/<V>/`` and served by nginx without Python. Access is limited
to boxes of V by nginx's secure_link module: ``/tv/`` gives a box (after checking its terminal
token) the cookie ``ctv_vk`` = base64url(md5("<V> <link secret>")), and nginx recomputes it for
the code in the URL. The app serves the same URLs itself in development and as nginx's
fallback when a file is missing (rendered then, written atomically, served).

Invalidation is cheap (the content signals name the affected villages): the village's folder
is emptied and a generation counter bumped, so a render that started from older data never
writes a file after the change. A periodic job re-renders missing home pages, so a power cut
that brings every box back at once finds them ready.
"""
from __future__ import annotations

import logging
import os
import re
import tempfile
from pathlib import Path

from flask import current_app, render_template
from sqlalchemy import select

from portal_server.core import outbox, signals, terminals
from portal_server.core import redis as core_redis
from portal_server.core.db import session
from portal_server.core.regions import Region

from .sections import BY_KEY, SECTIONS

log = logging.getLogger(__name__)

#: File names a village folder may hold (anything else is a 404, never a path outside it).
FILE_RE = re.compile(r"^(home|alert|s-[a-z]+|i-\d{1,10})\.(html|json)$")
CODE_RE = re.compile(r"^\d{12}$")
#: Items on a section page (the page itself pages them: 8 a screen, 5 in simple mode).
SECTION_MAX_ITEMS = 96
HOME_LATEST = 2


def village_key(code: str, link_secret: str | None = None) -> str:
    """The ``ctv_vk`` cookie for region ``code`` (core.terminals.village_key)."""
    return terminals.village_key(code, link_secret)


def root() -> Path:
    return current_app.config["SETTINGS"].snapshot_dir


def region_by_code(code: str) -> Region | None:
    return session.scalar(select(Region).where(Region.code == code))


def _chain_names(region: Region) -> list[str]:
    codes = [c for c in region.path.split("/") if c]
    names = dict(session.execute(select(Region.code, Region.name).where(Region.code.in_(codes))).all())
    return [names.get(c, c) for c in codes]


def _region_ctx(region: Region) -> dict:
    return {"code": region.code, "name": region.name, "level": region.level,
            "chain": " · ".join(_chain_names(region))}


# What the pages show -------------------------------------------------------------------------

def _source(name: str):
    """What a feature handed the portal (``set_item_source`` / ``set_alert_source``), or None."""
    return current_app.extensions["stb_app"]["sources"].get(name)


def items_for(code: str, section: str | None = None, limit: int | None = None,
              tags: list[str] | None = None) -> list[dict]:
    """Published content every box of region ``code`` sees (untagged items), or with ``tags`` the
    items meant for a household with these tags."""
    items = _source("items")
    return items(code, section=section, tags=tags, limit=limit) if items is not None else []


def item_for(content_id: int, code: str, tags: list[str] | None = None) -> dict | None:
    """One published item a box of region ``code`` (household ``tags``) may see, or None."""
    item = _source("item")
    return item(content_id, code, tags) if item is not None else None


def section_actions(section: str) -> list[tuple[str, str]]:
    return list(current_app.extensions["stb_app"]["actions"].get(section, []))


# Rendering -----------------------------------------------------------------------------------

def render_home(region: Region) -> str:
    latest = items_for(region.code, limit=HOME_LATEST)
    return render_template("tv/home.html", region=_region_ctx(region), sections=SECTIONS, latest=latest,
                           page_kind="home")


def render_section(region: Region, key: str) -> str:
    sec = BY_KEY[key]
    return render_template("tv/section.html", region=_region_ctx(region), section=sec,
                           actions=section_actions(key), items=items_for(region.code, key, SECTION_MAX_ITEMS),
                           page_kind="section")


def render_item(item: dict, region: dict, preview: bool = False) -> str:
    from .views import item_qr

    sec = BY_KEY.get(item["section"])
    return render_template("tv/item.html", region=region, section=sec, item=item,
                           qr=item_qr(item["id"], region["code"]), preview=preview, page_kind="item")


def render_file(region: Region, name: str) -> tuple[str, str] | None:
    """(body, mimetype) of snapshot file ``name`` of ``region``, or None when there is no such page."""
    stem, _, ext = name.partition(".")
    if stem == "home" and ext == "html":
        return render_home(region), "text/html"
    if stem == "alert" and ext == "json":
        return alert_json(region), "application/json"
    if stem.startswith("s-") and ext == "html":
        key = stem[2:]
        if key not in BY_KEY:
            return None
        return render_section(region, key), "text/html"
    if stem.startswith("i-") and ext == "html":
        item = item_for(int(stem[2:]), region.code)
        if item is None:
            return None
        return render_item(item, _region_ctx(region)), "text/html"
    return None


def alert_json(region: Region) -> str:
    """The active alerts a box of ``region`` must show (polled as a file by the portal)."""
    import json

    source = _source("alerts")
    rows = source(region.path.strip("/").split("/")) if source is not None else []
    return json.dumps({"alerts": rows}, ensure_ascii=False, default=str)


# Files ---------------------------------------------------------------------------------------

def _redis():
    return core_redis.client()


def generation(code: str) -> int:
    try:
        return int(_redis().get(f"ctv:tvgen:{code}") or 0)
    except Exception:  # Redis away: serve without caching rather than fail
        return -1


def write_atomic(path: Path, body: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(body)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def materialise(region: Region, name: str) -> tuple[str, str] | None:
    """Render ``name`` for ``region`` and keep it as a file unless the region changed meanwhile."""
    gen = generation(region.code)
    out = render_file(region, name)
    if out is None:
        return None
    if gen >= 0:
        folder = root() / region.code
        if not (folder / ".path").exists():
            write_atomic(folder / ".path", region.path)
        path = folder / name
        write_atomic(path, out[0])
        if generation(region.code) != gen:  # changed while we rendered: the file may be stale
            path.unlink(missing_ok=True)
    return out


def invalidate(paths, files: str = "*", ancestors: bool = False) -> int:
    """Forget the pages of the regions at ``paths`` and of every region under them (no database
    access: it also runs after a commit); returns how many region folders were touched.
    ``ancestors``: the regions above them too (a town's or the city's terminal shows content
    aimed at the town or the city, which reaches its villages: their pages change together)."""
    base = root()
    if not base.exists() or not paths:
        return 0
    done = 0
    for d in base.iterdir():
        if not (d.is_dir() and CODE_RE.match(d.name)):
            continue
        try:
            own = (d / ".path").read_text()
        except OSError:
            own = ""
        if own and not any(own.startswith(p) or (ancestors and p.startswith(own)) for p in paths):
            continue
        try:
            _redis().incr(f"ctv:tvgen:{d.name}")
        except Exception:
            log.warning("redis unavailable while invalidating TV pages of %s", d.name)
        for f in d.glob(files):
            f.unlink(missing_ok=True)
        done += 1
    return done


def warm_homes() -> int:
    """Periodic: render the home page of every region folder that lost it (after a change)."""
    base = root()
    n = 0
    if not base.exists():
        return 0
    for d in base.iterdir():
        if d.is_dir() and CODE_RE.match(d.name) and not (d / "home.html").exists():
            region = region_by_code(d.name)
            if region is not None:
                materialise(region, "home.html")
                n += 1
    return n


# Signals -------------------------------------------------------------------------------------

def _stale(codes, files: str, ancestors: bool = False) -> None:
    """Invalidate now, and once more after the sender's transaction commits (through the outbox;
    a rollback drops it): a page rendered in between from the not-yet-committed state would
    otherwise stay. ``ancestors``: the town and city folders above them too."""
    paths = [r.path for r in session.scalars(select(Region).where(Region.code.in_(list(codes))))]
    invalidate(paths, files, ancestors)
    outbox.call("stb_app.snapshots:invalidate", paths, files, ancestors)


def _on_content(sender, region_codes=(), **_kw):
    # Content signals name the villages an item reaches; the town and city pages above them
    # show the items aimed at the town or the city, so every level goes stale together.
    _stale(region_codes, "[hsi]*.html", ancestors=True)


def _on_alert(sender, region_codes=(), **_kw):
    _stale(region_codes, "alert.json")


def _on_village_stale(sender, **_kw):
    _stale([sender], "*")


_connected = False


def connect_signals() -> None:
    global _connected
    if _connected:
        return
    _connected = True
    signals.content_published.connect(_on_content, weak=False)
    signals.content_unpublished.connect(_on_content, weak=False)
    signals.alert_changed.connect(_on_alert, weak=False)
    signals.village_pages_stale.connect(_on_village_stale, weak=False)
