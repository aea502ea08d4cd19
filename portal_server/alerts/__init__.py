"""应急广播: emergency alerts as CAP 1.2, one retained MQTT message per targeted region, acks counted in
Redis, the NOC page with who has not seen it, and the spoken version for the box agent and the TV."""
from portal_server import admin
from portal_server.core import signals
from portal_server.core.jobs import PeriodicJob, register_periodic
from stb_app import set_alert_source


def init_app(app):
    from . import api, operations, queries, tv, views

    app.register_blueprint(api.bp)
    app.register_blueprint(views.bp)
    # A module-level function: connecting it again for another app is a no-op in blinker.
    signals.box_acked.connect(operations.on_box_acked)
    signals.alert_changed.connect(tv.on_alert_changed)
    set_alert_source(app, queries.active_for_region_chain)
    register_periodic(PeriodicJob("alerts-sweep", "portal_server.alerts.tasks:sweep", every_s=10, queue="high"))
    admin.add_nav(app, "alerts_noc.index", "应急广播", ("noc", "reviewer"))
    admin.add_home_card(app, views.home_card)
