"""社区管理 (村务公开: finances, projects, subsidy lists, assembly decisions, with the legal cadence
tracked on the town's supervision board), 平安社区 (police and mediators, alert history) and
社区党建 (study materials by month, study records for branch secretaries).
"""
from portal_server import admin


def init_app(app):
    from . import api, tv, views

    app.register_blueprint(api.bp)
    app.register_blueprint(views.bp)
    app.register_blueprint(tv.bp)
    tv.register_tv_hooks(app)
    admin.add_nav(app, "affairs_staff.index", "村务公开", ("editor", "reviewer", "handler", "grid_worker", "analyst"))
    admin.add_home_card(app, views.home_card)
