"""streaming: RTMP ingest authorisation (nginx-rtmp callbacks), the ffmpeg HLS job, recordings
→ VOD replays with thumbnails, relayed live channels with catch-up, the one ffmpeg supervisor,
the demo head-end, and the VLC playback probe."""


def init_app(app):
    from portal_server.core.jobs import PeriodicJob, register_periodic

    from . import api, catchup

    app.register_blueprint(api.bp)
    app.register_blueprint(catchup.bp)
    register_periodic(PeriodicJob("streaming-reap", "streaming.tasks:reap", every_s=60, queue="media"))
    register_periodic(PeriodicJob("channels-cleanup", "streaming.tasks:cleanup_channels", every_s=300, queue="media"))
