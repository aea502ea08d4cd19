"""The broadcaster's NOC: MQTT protocol, provisioning, ingest, presence, commands, OTA, NOC web."""


def init_app(app):
    from . import api

    app.register_blueprint(api.bp)
