"""Health, metrics, the OpenAPI document, API tokens and regions; /media/ and /hls/ in development."""


def init_app(app):
    from . import api, files, metrics

    metrics.init_app(app)
    app.register_blueprint(api.bp)
    app.register_blueprint(api.root)
    app.register_blueprint(files.bp)
