"""Health, metrics, the OpenAPI document, API tokens and regions."""


def init_app(app):
    from . import api, metrics

    metrics.init_app(app)
    app.register_blueprint(api.bp)
    app.register_blueprint(api.root)
