"""Content (信息发布): editors at every level write for the eight TV sections; reviewers whose scope
covers every target approve; items reach exactly the boxes of the targeted regions (and household
tags) between ``publish_at`` and ``expire_at``.

The TV portal is handed ``queries.tv_items`` / ``queries.tv_item`` (``set_item_source``) and listens to the signals
``content_published`` / ``content_unpublished`` (portal_server.core.signals).
"""
from portal_server import admin
from portal_server.core.jobs import PeriodicJob, register_periodic
from stb_app import set_item_source


def init_app(app):
    from . import api, queries, views

    app.register_blueprint(api.bp)
    app.register_blueprint(views.bp)
    set_item_source(app, queries.tv_items, queries.tv_item)
    register_periodic(PeriodicJob("content-schedule", "portal_server.content.tasks:run_schedule", every_s=30))
    admin.add_nav(app, "content_staff.index", "信息发布", ("editor", "reviewer"))
    admin.add_home_card(app, views.home_card)
