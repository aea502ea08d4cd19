"""The application factory: the only place that knows every package (DESIGN §1)."""
from __future__ import annotations

import datetime as dt
import importlib
import importlib.util
import logging

from flask import Flask, request
from flask_wtf.csrf import CSRFProtect
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.routing import IntegerConverter

from portal_server.core import api as core_api
from portal_server.core import auth as core_auth, db, i18n, jobs, limits, outbox, redis as core_redis
from portal_server.core.config import Settings
from portal_server.features import FEATURES
from portal_server.models import load_all_models

csrf = CSRFProtect()


class DbIntConverter(IntegerConverter):
    """``<int:id>`` bounded to a signed 64-bit integer."""

    def __init__(self, map, *args, **kwargs):  # noqa: A002 - werkzeug's name
        kwargs.setdefault("max", 2 ** 63 - 1)
        super().__init__(map, *args, **kwargs)


#: Pages of people (staff web, NOC, phone pages) that must never be framed by another site.
FRAME_PROTECTED = ("/admin", "/noc", "/m/")
STAFF_CSP = ("default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
             "img-src 'self' data: blob:; media-src 'self' blob: data:; connect-src 'self'; "
             "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'")


def security_headers(app: Flask, settings: Settings) -> None:
    """Cookies marked Secure when we are served over https; staff and phone pages with a CSP that
    forbids framing (clickjacking) and X-Frame-Options for browsers without CSP."""
    secure = settings.public_url.lower().startswith("https://")
    app.config["SESSION_COOKIE_SECURE"] = secure

    @app.after_request
    def _headers(resp):
        resp.headers.setdefault("X-Content-Type-Options", "nosniff")
        if request.path.startswith(FRAME_PROTECTED):
            resp.headers.setdefault("Content-Security-Policy", STAFF_CSP)
            resp.headers.setdefault("X-Frame-Options", "DENY")
            resp.headers.setdefault("Referrer-Policy", "same-origin")
        return resp


def create_app(settings: Settings | None = None) -> Flask:
    """Build the app from ``settings`` (default: the ``COMMUNITV_*`` environment)."""
    settings = settings or Settings.from_env()
    app = Flask("portal_server", template_folder="templates", static_folder="static")
    app.config.update(
        SETTINGS=settings,
        SECRET_KEY=settings.secret_key,
        TESTING=settings.testing,
        JSON_AS_ASCII=False,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_NAME="ctv_session",
        PERMANENT_SESSION_LIFETIME=dt.timedelta(hours=12),
        MAX_CONTENT_LENGTH=64 * 1024 * 1024,
        WTF_CSRF_TIME_LIMIT=None,
        **settings.extra,
    )
    app.json.ensure_ascii = False
    # <int:...> in URLs only matches what a database integer holds: a longer number is a 404,
    # not an OverflowError deep in the driver (found by fuzzing the OpenAPI document).
    app.url_map.converters["int"] = DbIntConverter
    # One trusted hop: nginx sets X-Forwarded-For/-Proto (gunicorn listens on loopback only), so
    # throttles, rate limits and the audit trail see the real client, not 127.0.0.1.
    app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for d in (settings.data_dir, settings.media_dir, settings.hls_dir, settings.snapshot_dir,
              settings.log_dir):
        d.mkdir(parents=True, exist_ok=True)

    load_all_models()
    db.init_app(app)
    outbox.install()
    jobs.set_app_factory(create_app)
    core_redis.init_app(app)
    csrf.init_app(app)
    app.extensions["csrf"] = csrf
    core_api.register_error_handlers(app)
    i18n.init_app(app)
    limits.init_app(app)
    core_auth.init_app(app)
    security_headers(app, settings)

    for name in FEATURES:
        try:
            found = importlib.util.find_spec(name) is not None
        except ModuleNotFoundError:
            found = False
        if not found:
            continue
        module = importlib.import_module(name)
        init = getattr(module, "init_app", None)
        if init is not None:
            init(app)
    # Token-authenticated API and server-to-server callbacks carry no cookies: no CSRF there.
    for bp_name, bp in app.blueprints.items():
        if bp.url_prefix and (bp.url_prefix.startswith(core_api.API_PREFIX) or bp.url_prefix.startswith("/open311")):
            csrf.exempt(bp)
    return app
