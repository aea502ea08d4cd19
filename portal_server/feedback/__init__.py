"""Resident feedback (诉求办理): the closed loop of work orders, the hotline and Open311 intake,
the staff inbox and supervision board, polls, and the phone and TV pages.
"""
from portal_server import admin
from portal_server.core.jobs import PeriodicJob, register_periodic


def init_app(app):
    from . import api, open311, phone, tv, views

    app.register_blueprint(api.bp)
    app.register_blueprint(open311.bp)
    app.register_blueprint(views.bp)
    app.register_blueprint(phone.bp)
    app.register_blueprint(tv.bp)
    tv.register_tv_hooks(app)
    register_periodic(PeriodicJob("feedback-deadlines", "portal_server.feedback.tasks:check_deadlines",
                                  every_s=300))
    admin.add_nav(app, "feedback_staff.inbox", "诉求办理", ("handler", "grid_worker", "editor", "analyst"))
    admin.add_home_card(app, views.home_card)
