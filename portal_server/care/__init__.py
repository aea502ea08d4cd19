"""养老助老: daily check-ins of old people living alone, care tasks for grid workers (escalated
to the village head in the evening), one-key help, elderly services, and read-aloud speech.
"""
from portal_server import admin
from portal_server.core.jobs import PeriodicJob, register_periodic


def init_app(app):
    from . import api, tv, views

    app.register_blueprint(api.bp)
    app.register_blueprint(views.bp)
    app.register_blueprint(tv.bp)
    tv.register_tv_hooks(app)
    register_periodic(PeriodicJob("care-checkins", "portal_server.care.tasks:check_missed_checkins",
                                  every_s=300))
    admin.add_nav(app, "care_staff.tasks", "养老关爱", ("grid_worker", "handler"))
    admin.add_home_card(app, views.home_card)
