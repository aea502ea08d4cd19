"""Content (信息发布): editors at every level write for the eight TV sections; reviewers whose scope
covers every target approve; items reach exactly the boxes of the targeted regions (and household
tags) between ``publish_at`` and ``expire_at``.

The TV portal reads ``queries.tv_items`` / ``queries.tv_item`` and listens to the signals
``content_published`` / ``content_unpublished`` (portal_server.core.signals).
"""


def init_app(app):
    from portal_server import admin
    from portal_server.core.jobs import PeriodicJob, register_periodic

    from . import api, views

    app.register_blueprint(api.bp)
    app.register_blueprint(views.bp)
    register_periodic(PeriodicJob("content-schedule", "portal_server.content.tasks:run_schedule", every_s=30))
    admin.add_nav(app, "content_staff.index", "信息发布", ("editor", "reviewer"))
    admin.add_home_card(app, views.home_card)
