"""epg: the programme guide — channels (city, village halls, relayed county channels),
programmes (meetings included), XMLTV and M3U for IPTV clients, now/next."""


def init_app(app):
    from portal_server import admin
    from portal_server.core import signals

    from . import api, tv, views

    app.register_blueprint(api.bp)
    app.register_blueprint(api.api_bp)
    app.register_blueprint(api.channels_bp)
    app.register_blueprint(tv.bp)
    app.register_blueprint(tv.channels_bp)
    app.register_blueprint(views.bp)
    admin.add_nav(app, "epg_noc.index", "直播频道", ("noc",))
    tv.register_tv_hooks(app)
    signals.meeting_state_changed.connect(_meeting_channel, weak=False)


def _meeting_channel(meeting_id, region_code=None, state=None, **_kw):
    """A meeting scheduled in a village without a hall channel yet gets one."""
    if state == "scheduled" and region_code:
        from .operations import ensure_village_channel
        ensure_village_channel(region_code)
