"""社区会议: meetings streamed live from village halls, motions voted on with the remote,
attendance from heartbeats, replays and minutes. Ingest and HLS live in ``streaming``; the guide
in ``epg``."""


def init_app(app):
    from portal_server import admin
    from portal_server.core import signals
    from portal_server.core.jobs import PeriodicJob, register_periodic

    from . import api, tv, views

    app.register_blueprint(api.bp)
    app.register_blueprint(views.bp)
    app.register_blueprint(tv.bp)
    tv.register_tv_hooks(app)
    signals.meeting_state_changed.connect(_pages_stale, weak=False)
    register_periodic(PeriodicJob("meetings-attendance", "portal_server.meetings.tasks:collect_attendance",
                                  every_s=30))
    admin.add_nav(app, "meetings_staff.index", "社区会议", ("editor", "handler", "reviewer", "analyst"))
    admin.add_home_card(app, views.home_card)


def _pages_stale(meeting_id, region_code=None, state=None, **_kw):
    """Live / ended meetings change the TV pages of the villages that watch them."""
    if state not in ("live", "ended", "scheduled", "cancelled") or not region_code:
        return
    from portal_server.core import signals
    from portal_server.core.regions import region_by_code, villages_under

    region = region_by_code(region_code)
    if region is None:
        return
    for v in villages_under(region):
        signals.village_pages_stale.send(v.code)
