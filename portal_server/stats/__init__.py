"""Figures for leaders (INTERFACES §4.4): daily aggregates per region filled by a periodic job
from every feature's ``queries.daily_figures``, the TV usage beacon, the stats API and the
leaders' cockpit with charts and an offline map.
"""
from portal_server import admin
from portal_server.core.jobs import PeriodicJob, register_periodic


def init_app(app):
    from . import api, views

    app.register_blueprint(api.bp)
    app.register_blueprint(views.bp)
    app.register_blueprint(views.beacon_bp)
    register_periodic(PeriodicJob("stats-aggregate", "portal_server.stats.tasks:aggregate_recent",
                                  every_s=600, timeout_s=600))
    admin.add_nav(app, "stats.cockpit", "领导驾驶舱", ("analyst", "admin"))
