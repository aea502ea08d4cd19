"""下沉服务: the government service catalogue (national catalogue elements, three-level categories,
CSV import), booking slots at village halls and town service centres, and bookings from the TV.
"""
from portal_server import admin
from portal_server.core.jobs import PeriodicJob, register_periodic


def init_app(app):
    from . import api, tv, views

    app.register_blueprint(api.bp)
    app.register_blueprint(views.bp)
    app.register_blueprint(tv.bp)
    app.register_blueprint(tv.phone_bp)
    tv.register_tv_hooks(app)
    register_periodic(PeriodicJob("services-slots", "portal_server.services.tasks:refresh_slots",
                                  every_s=3600))
    admin.add_nav(app, "services_staff.catalogue", "下沉服务", ("editor", "handler", "grid_worker", "reviewer", "analyst"))
    admin.add_nav(app, "services_staff.admissions", "准入清单", ("clerk",))
    admin.add_home_card(app, views.home_card)
