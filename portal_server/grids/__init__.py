"""网格化: villages divided into grids with their workers; visits, patrols and events from the grid
worker's phone (/m/grid/, an installable PWA with an offline queue) that feed the feedback loop;
care tasks and alert door-knock lists routed to the grid's worker (core.fieldwork); assessment with
points, yellow/red cards and the Monday weekly report.
"""
from portal_server import admin, registry
from portal_server.core import fieldwork
from portal_server.core.jobs import PeriodicJob, register_periodic


def init_app(app):
    from . import api, phone, queries, views

    app.register_blueprint(api.bp)
    app.register_blueprint(views.bp)
    app.register_blueprint(phone.bp)
    fieldwork.add_household_rule(app, queries.household_rule)
    registry.add_map_layer(app, views.map_layer)  # each house's grid on the 电子装户图, assigned there
    # Hourly: on Monday the first tick stores last week's report; later ticks find it and stop.
    register_periodic(PeriodicJob("grids-weekly-report", "portal_server.grids.tasks:weekly_report",
                                  every_s=3600))
    admin.add_nav(app, "grids_staff.index", "网格管理", ("admin", "clerk"))
    admin.add_nav(app, "grids_staff.ranking", "网格考核", ("analyst", "admin", "clerk", "handler"))
    admin.add_nav(app, "grids_staff.rules", "考核规则", ("admin",))
