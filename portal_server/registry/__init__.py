"""Base data (基础数据): households, residents, houses and the village household map (电子装户图),
imports and exports of household tables, staff accounts and the audit trail page, box onboarding
from the installer's phone, and the nightly data comparison (数据比对)."""
from portal_server import admin
from portal_server.core.jobs import PeriodicJob, register_periodic


def add_household_panel(app, fn) -> None:
    """Another feature's history on the household page: ``fn(household_id)`` returns
    ``{"title", "headers", "rows": [[cell, ...]], "links": [url or None per row], "empty"}`` or None."""
    app.extensions.setdefault("registry_household_panels", []).append(fn)


def add_comparison_check(app, fn) -> None:
    """Another feature's data-comparison check: ``fn(region)`` returns
    ``[(kind, household_id, person_id or None, detail)]`` (kinds of ``models.FINDING_KINDS``)."""
    app.extensions.setdefault("registry_comparison_checks", []).append(fn)


def add_map_layer(app, fn) -> None:
    """Another feature's layer on the 电子装户图: ``fn(user, village)`` returns None or
    ``{"title", "groups": [{"id", "label", "short" (on the house), "color", "count"}], "by_household": {household_id: group id},
    "none_label", "assign": None or {"url", "label", "group_field", "hint"}}``. Houses are outlined in
    their group's colour with its label; with ``assign`` the user picks a group, taps houses (or a
    whole lane) and POSTs ``household_ids`` (several), ``group_field`` and ``next`` (the map URL,
    to return to) with the CSRF token to ``url`` — the feature's own view does the write."""
    app.extensions.setdefault("registry_map_layers", []).append(fn)


def init_app(app):
    from . import api, views

    app.register_blueprint(api.bp)
    app.register_blueprint(views.bp)
    app.register_blueprint(views.m_bp)
    register_periodic(PeriodicJob("registry-compare", "portal_server.registry.tasks:compare_all", every_s=3600,
                                  timeout_s=1800))
    admin.add_nav(app, "registry.households", "住户", ("clerk", "grid_worker", "handler", "analyst"))
    admin.add_nav(app, "registry.users", "账号", ("admin",))
    admin.add_nav(app, "registry.audit_page", "操作日志", ("admin",))
