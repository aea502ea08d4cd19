"""The broadcaster's NOC: MQTT protocol, provisioning, ingest, presence, commands, OTA, NOC web."""
from portal_server import admin
from portal_server.core.jobs import PeriodicJob, register_periodic


def init_app(app):
    # Here, not at the top: the box agent (device_fleet.agent) imports this package and has no
    # use for prometheus_client (a tenth of a second at every start).
    from portal_server.core import metrics as core_metrics

    from . import api, queries, views

    core_metrics.add_collector(queries.metric_families)
    app.register_blueprint(api.bp)
    app.register_blueprint(views.bp)
    app.register_blueprint(views.pair_bp)
    admin.add_nav(app, "noc.overview", "网管中心", ("noc",))
    admin.add_home_card(app, _home_card)
    # Portal URLs in retained configs are re-issued a week before they expire (device_fleet.tasks).
    register_periodic(PeriodicJob("fleet-refresh-configs", "device_fleet.tasks:refresh_configs", every_s=3600))


def _home_card(user):
    if not user.has_role("noc"):
        return None
    from flask import url_for

    from . import queries
    on, total = queries.online_rates(user.scope)["total"]
    return {"title": "终端在线", "value": f"{on}/{total}", "url": url_for("noc.overview")}
