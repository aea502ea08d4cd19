"""The set-top-box portal (/tv/): home screen, the eight sections, item pages, the player,
the pairing and error screens, the ES5 remote-control engine and the per-village snapshots.

Other features put their own TV pages into the portal through two hooks:

* ``add_section_action(app, section, label, url)`` — a tile on a section page
  (e.g. feedback adds 我要反映 to 政民互动);
* ``add_state_provider(app, name, fn)`` — ``fn(terminal) -> dict`` of personal facts that the
  home screen fetches as JSON (``/tv/api/me``); a dict may carry
  ``"notices": [{"text", "url"}]`` shown in the home screen's notice area.

What the pages list is handed in the same way, so that the portal never imports a feature:

* ``set_item_source(app, items, item)`` — the published items (the content feature);
* ``set_alert_source(app, fn)`` — the live alerts of a region chain (the alerts feature).

Without a source the pages show no items / no alert (a trimmed install). The staff preview of content renders
the real item page with ``render_item_page``.
"""
from __future__ import annotations

from portal_server.core.jobs import PeriodicJob, register_periodic

from .sections import SECTIONS, SECTION_KEYS  # noqa: F401


def _registry(app) -> dict:
    return app.extensions.setdefault("stb_app", {"actions": {}, "state": {}, "sources": {}})


def add_section_action(app, section: str, label: str, url: str) -> None:
    """A tile labelled ``label`` on the page of ``section`` leading to ``url``."""
    if section not in SECTION_KEYS:
        raise ValueError(f"unknown TV section {section!r}")
    actions = _registry(app)["actions"].setdefault(section, [])
    if (label, url) not in actions:
        actions.append((label, url))


def add_state_provider(app, name: str, fn) -> None:
    """``fn(terminal) -> dict``: personal facts for the home screen under ``name``."""
    _registry(app)["state"][name] = fn


def set_item_source(app, items, item) -> None:
    """What the home and section pages list: ``items(code, section=None, tags=None, limit=None)
    -> [dict]`` (the items every box of region ``code`` sees; with ``tags``, those meant for a
    household with these tags) and ``item(content_id, code, tags=None) -> dict | None``."""
    _registry(app)["sources"].update(items=items, item=item)


def set_alert_source(app, fn) -> None:
    """``fn(region_codes) -> [dict]``: the live alerts a box with this chain of region codes (city,
    town, village) must show, newest first (the rows of ``alert.json``)."""
    _registry(app)["sources"]["alerts"] = fn


def render_item_page(item: dict, village_name: str) -> str:
    """The real TV detail page of a content item (used by the staff preview)."""
    from .snapshots import render_item

    return render_item(item, {"code": "", "name": village_name}, preview=True)


def init_app(app):
    from . import push, snapshots, views

    _registry(app)
    app.add_template_filter(views.tv_date, "tv_date")
    app.register_blueprint(views.bp)
    app.register_blueprint(views.static_bp)
    app.register_blueprint(views.m_bp)
    app.extensions.setdefault("html_error_pages", []).append(("/tv/", views.tv_error))
    snapshots.connect_signals()
    push.connect_signals()
    register_periodic(PeriodicJob("tv-warm", "stb_app.snapshots:warm_homes", every_s=30))
