"""Base data (基础数据): households, residents, houses and the village household map (电子装户图),
imports and exports of household tables, staff accounts and the audit trail page, box onboarding
from the installer's phone, and the nightly data comparison (数据比对)."""


def init_app(app):
    from portal_server import admin
    from portal_server.core.jobs import PeriodicJob, register_periodic

    from . import api, views

    app.register_blueprint(api.bp)
    app.register_blueprint(views.bp)
    app.register_blueprint(views.m_bp)
    register_periodic(PeriodicJob("registry-compare", "portal_server.registry.tasks:compare_all", every_s=3600,
                                  timeout_s=1800))
    admin.add_nav(app, "registry.households", "住户", ("clerk", "grid_worker", "handler", "analyst"))
    admin.add_nav(app, "registry.users", "账号", ("admin",))
    admin.add_nav(app, "registry.audit_page", "操作日志", ("admin",))
