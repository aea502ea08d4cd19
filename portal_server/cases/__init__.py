"""一站式办理 / 全市通办: cases (办件) for the service catalogue's items, applied for from the TV or
at a village hall, forwarded between village hall, town centre and city department, tracked to
the end with deadlines, supervision (督办), follow-up and the resident's evaluation."""
from portal_server import admin, registry


def init_app(app):
    from . import api, queries, tv, views

    app.register_blueprint(api.bp)
    app.register_blueprint(views.bp)
    app.register_blueprint(tv.bp)
    app.register_blueprint(tv.phone_bp)
    tv.register_tv_hooks(app)
    registry.add_household_panel(app, queries.household_panel)
    registry.add_comparison_check(app, queries.deceased_with_open_cases)
    admin.add_nav(app, "cases_staff.desk", "一站式办理", ("clerk", "handler", "analyst"))
