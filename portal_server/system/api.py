"""/healthz, /metrics, /api/v1/openapi.json, /api/v1/auth/token, /api/v1/regions/<code>."""
from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify, request
from pydantic import BaseModel, Field
from sqlalchemy import text

from portal_server.core import audit, mqtt as core_mqtt, redis as core_redis
from portal_server.core.accounts import issue_token, revoke_token
from portal_server.core.api import ApiError, body, iso, make_blueprint, not_found, openapi_document
from portal_server.core.auth import authenticate, bearer_user
from portal_server.core.db import session
from portal_server.core.regions import region_by_code, region_to_dict

from . import metrics

bp = make_blueprint("system", __name__)
root = Blueprint("root", __name__)


@root.get("/healthz")
def healthz():
    """Database, Redis and MQTT checks: 200 when all hold, 503 naming the failing ones."""
    checks = {}
    try:
        session.execute(text("SELECT 1"))
        checks["db"] = "ok"
    except Exception as exc:  # any failure is the answer
        checks["db"] = f"error: {type(exc).__name__}"
    finally:
        session.rollback()
    try:
        core_redis.client().ping()
        checks["redis"] = "ok"
    except Exception as exc:
        checks["redis"] = f"error: {type(exc).__name__}"
    try:
        checks["mqtt"] = "ok" if core_mqtt.ping(current_app.config["SETTINGS"].mqtt_server_url) else "error: not connected"
    except Exception as exc:
        checks["mqtt"] = f"error: {type(exc).__name__}"
    failing = [k for k, v in checks.items() if v != "ok"]
    body_ = {"status": "ok" if not failing else "error", "checks": checks}
    if failing:
        body_["failing"] = failing
    return jsonify(body_), (200 if not failing else 503)


@root.get("/metrics")
def metrics_view():
    """Prometheus text format."""
    return Response(metrics.render(), mimetype="text/plain; version=0.0.4")


@bp.get("/openapi.json")
def openapi():
    """The OpenAPI 3.1 document of this API, generated from the code."""
    return jsonify(openapi_document(current_app))


class TokenRequest(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)


@bp.post("/auth/token")
@body(TokenRequest)
def auth_token(data: TokenRequest):
    """Exchange a username and password for a bearer token."""
    settings = current_app.config["SETTINGS"]
    user, why = authenticate(data.username, data.password, settings.login_max_failures)
    if why == "throttled":
        raise ApiError(429, "throttled", "登录失败次数过多，请一分钟后再试")
    if user is None:
        raise ApiError(401, "unauthorized", "wrong username or password")
    token, expires = issue_token(user, settings.token_ttl_s)
    audit.record("auth.token", "user", user.id, user.region.code, actor=user.username)
    session.commit()
    return jsonify({"token": token, "expires_at": iso(expires), "username": user.username,
                    "roles": sorted(user.roles), "scope": user.region.code})


@bp.delete("/auth/token")
def revoke_auth_token():
    """Revoke the bearer token sent with this request (log out of the API); 204."""
    user = bearer_user()
    if user is None or not revoke_token(request.headers["Authorization"][7:].strip()):
        raise ApiError(401, "unauthorized", "登录令牌无效、已过期或已撤销")
    audit.record("auth.token_revoke", "user", user.id, user.region.code, actor=user.username)
    session.commit()
    return "", 204


@bp.get("/regions/<code>")
def region(code: str):
    """A region with its children (public: region names are not secret)."""
    r = region_by_code(code)
    if r is None:
        raise not_found(f"region {code}")
    return jsonify(region_to_dict(r))
