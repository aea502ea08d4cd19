"""Rate limits (Flask-Limiter, counted in Redis) on what anybody can reach without a staff account:
box and phone writes, logins, pairing-code lookups and Open311.

One table of limits, applied centrally by request kind (no decorator on each view): a box is
counted by its token (a village's boxes may share one address behind NAT), everyone else by the
client address that ProxyFix takes from nginx. Over the limit → 429 with a Chinese message.
Redis down → requests pass (``swallow_errors``): a limiter must not take the portal down.
"""
from __future__ import annotations

import hashlib
import time

from flask import current_app, request, session as web_session
from flask_limiter import Limit, Limiter

#: Limits per request kind (limits library notation); ``app.config["RATE_LIMITS"]`` may override.
DEFAULT_LIMITS = {
    # One box filing orders, bookings, check-ins... (per endpoint): a family never needs more.
    "box_write": "20 per minute",
    # Phone pages and other anonymous writes, per client address.
    "public_write": "30 per minute",
    # Logins (form and API), per address; wrong passwords are throttled per account+address too.
    "login": "30 per minute",
    # Looking up a pairing code (installer's phone, the TV pairing screen), per address.
    "pairing": "30 per minute",
    # The 12345 centre's Open311 endpoints, per API key (or address).
    "open311": "120 per minute",
}

MESSAGE = "操作太频繁，请稍后再试"

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
LOGIN_PATHS = ("/api/v1/auth/token", "/admin/login")
PAIRING_PATHS = ("/tv/pair", "/m/pair")
#: Server-to-server callbacks from nginx-rtmp on loopback: never limited.
EXEMPT_PREFIXES = ("/api/v1/streams/",)


def _box_token() -> str | None:
    from .auth import TERMINAL_COOKIE

    return (request.headers.get("X-Terminal-Token") or request.args.get("token")
            or request.cookies.get(TERMINAL_COOKIE))


def request_kind() -> str | None:
    """Which limit applies to this request (None: not limited)."""
    if "ctv.limit_kind" in request.environ:
        return request.environ["ctv.limit_kind"]
    path, method = request.path, request.method
    kind = None
    if path.startswith(EXEMPT_PREFIXES):
        kind = None
    elif path.startswith("/open311"):
        kind = "open311"
    elif path in PAIRING_PATHS and request.values.get("code"):
        kind = "pairing"
    elif method == "POST" and path in LOGIN_PATHS:
        kind = "login"
    elif method not in SAFE_METHODS and not request.headers.get("Authorization") \
            and not web_session.get("uid"):
        kind = "box_write" if _box_token() else "public_write"
    request.environ["ctv.limit_kind"] = kind
    return kind


def client_key() -> str:
    """A box by (a hash of) its token, anybody else by address (the real one: ProxyFix)."""
    if request_kind() == "box_write":
        return "box:" + hashlib.sha256(_box_token().encode()).hexdigest()[:24]
    if request_kind() == "open311":
        key = request.values.get("api_key") or request.headers.get("X-Api-Key")
        if key:
            return "key:" + hashlib.sha256(key.encode()).hexdigest()[:24]
    return "ip:" + (request.remote_addr or "unknown")


def _current_limit() -> str:
    """The limit of this request's kind ("" when it has none: nothing to count)."""
    kind = request_kind()
    if kind is None:
        return ""
    return {**DEFAULT_LIMITS, **current_app.config.get("RATE_LIMITS", {})}[kind]


def _kind_scope(_endpoint: str) -> str:
    return request_kind() or ""


def _default_limit() -> Limit:
    """One default limit whose rate and scope follow the request's kind: each request parses and
    counts the one limit that applies to it, not five limits of which four are exempt (a new
    object per app: the limiter binds it)."""
    return Limit(_current_limit, key_function=client_key, scope=_kind_scope, error_message=MESSAGE)


def _retry_after(limiter: Limiter) -> int:
    """Seconds until the breached limit lets the next request through (60 when Redis cannot say)."""
    try:
        hit = limiter.current_limit
        return max(1, int(hit.reset_at - time.time())) if hit is not None else 60
    except Exception:  # noqa: BLE001 - Redis away: a plain minute
        return 60


def init_app(app) -> Limiter:
    """Install the limiter with Redis storage (the app's Redis) and the Chinese 429."""
    from .api import error_response, is_api_request

    settings = app.config["SETTINGS"]
    app.config.setdefault("RATELIMIT_STORAGE_URI", settings.redis_url)
    app.config.setdefault("RATELIMIT_KEY_PREFIX", "ctv:limit")
    # No X-RateLimit-* headers on every answer: each costs a second Redis round trip (the window's
    # stats) on every limited request, a box's application included. Only the 429 says when to
    # try again (Retry-After, below).
    limiter = Limiter(client_key, app=app, default_limits=[_default_limit()],
                      strategy="moving-window", headers_enabled=False, swallow_errors=True)

    @app.errorhandler(429)
    def _too_many(err):
        if is_api_request() or request.path.startswith("/tv/") or request.accept_mimetypes.best == "application/json":
            resp, status = error_response(429, "too_many_requests", MESSAGE)
        else:
            from flask import make_response
            resp, status = make_response(f"<!doctype html><meta charset=utf-8><title>{MESSAGE}</title>"
                                         f"<p style='font-size:20px'>{MESSAGE}</p>"), 429
        resp.headers["Retry-After"] = str(_retry_after(limiter))
        return resp, status

    app.extensions["ctv_limiter"] = limiter
    return limiter
