"""API conventions of INTERFACES §4: JSON errors, pagination, validation, OpenAPI generation.

Handlers declare their request body as a pydantic model with ``@body(Model)``; the OpenAPI
document is generated from the URL map, the view docstrings and those models, so it is never
written twice.
"""
from __future__ import annotations

import datetime as dt
import functools
import inspect
import re
from typing import Any

from flask import Blueprint, current_app, jsonify, render_template, request
from pydantic import BaseModel, ValidationError
from werkzeug.exceptions import HTTPException, default_exceptions

from . import clock, i18n

API_PREFIX = "/api/v1"


class ApiError(Exception):
    """An error answered as ``{"error": {"code", "message"}}`` with ``status``."""

    def __init__(self, status: int, code: str, message: str, **extra):
        super().__init__(message)
        self.status, self.code, self.message, self.extra = status, code, message, extra


def bad_request(message: str, field: str | None = None) -> ApiError:
    return ApiError(400, "bad_request", message, **({"field": field} if field else {}))


def not_found(what: str) -> ApiError:
    return ApiError(404, "not_found", f"{what} not found")


def forbidden(message: str) -> ApiError:
    return ApiError(403, "forbidden", message)


def conflict(message: str, **extra) -> ApiError:
    return ApiError(409, "conflict", message, **extra)


def error_response(status: int, code: str, message: str, **extra):
    """The JSON error; the message in the client's language (Chinese unless it asks for English,
    ``core.i18n``), the English original kept in ``detail`` when it had to be replaced."""
    message, detail = i18n.translate(message, status)
    if detail is not None:
        extra.setdefault("detail", detail)
    body = {"error": {"code": code, "message": message, **extra}}
    return jsonify(body), status


def is_api_request() -> bool:
    return request.path.startswith(API_PREFIX) or request.path.startswith("/open311/")


def wants_html() -> bool:
    """A browser opening a page (not the API, not a script asking for JSON)."""
    return (not is_api_request() and "/api/" not in request.path
            and request.accept_mimetypes.best_match(["application/json", "text/html"]) == "text/html")


def html_error_page(status: int, message: str = ""):
    """The staff web's and phone pages' error page: the status said in Chinese, the message (from
    the catalogue, ``core.i18n``) under it, a way back."""
    title = i18n.BY_STATUS.get(status) or ("服务暂时不可用，请稍后再试" if status >= 500 else "请求有误")
    shown = i18n.translate(message, status)[0] if message else ""
    home = "/admin/" if request.path.startswith("/admin") else "/m/" if request.path.startswith("/m/") else "/"
    return render_template("errors/http.html", status=status, title=title, message=shown, home=home), status


def register_error_handlers(app) -> None:
    """JSON errors under /api/; Chinese error pages for browsers elsewhere; never a 500 for bad input."""

    def page(err: HTTPException):
        # Features with their own error screens (the TV portal) register (path prefix, renderer).
        for prefix, render in current_app.extensions.get("html_error_pages", ()):
            if request.path.startswith(prefix):
                return render(err)
        # werkzeug's own page is English: say it in Chinese (its default sentence is dropped),
        # keeping its headers (Allow of a 405, WWW-Authenticate…).
        custom = err.description if err.description != type(err).description else ""
        body, status = html_error_page(err.code, custom or "")
        resp = current_app.make_response((body, status))
        for k, v in err.get_headers():
            if k.lower() != "content-type":
                resp.headers[k] = v
        return resp

    @app.errorhandler(ApiError)
    def _api_error(err: ApiError):
        if wants_html() and err.status in default_exceptions:
            return page(default_exceptions[err.status](description=err.message))
        return error_response(err.status, err.code, err.message, **err.extra)

    @app.errorhandler(HTTPException)
    def _http_error(err: HTTPException):
        if is_api_request():
            code = re.sub(r"[^a-z]+", "_", (err.name or "error").lower()).strip("_")
            # werkzeug's default descriptions are English sentences: say the status's name instead.
            default = type(err).description
            text = err.name if err.description == default else (err.description or err.name)
            return error_response(err.code or 500, code, text)
        if err.code is None or err.code < 400 or err.response is not None:
            return err
        return page(err)


def json_body() -> dict:
    """The request's JSON object, or 400 when it is missing or malformed."""
    data = request.get_json(silent=True)
    if data is None:
        raise bad_request("request body must be a JSON object (Content-Type: application/json)")
    if not isinstance(data, dict):
        raise bad_request("request body must be a JSON object")
    return data


def parse(model: type[BaseModel], data: dict | None = None) -> BaseModel:
    """Validate ``data`` (default: the JSON body) with ``model``; 400 naming the first bad field."""
    data = json_body() if data is None else data
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first.get("loc", ())) or "body"
        msg = first.get("msg", "invalid")
        if first.get("type") == "missing":
            msg = f"missing field: {field}"
        else:
            msg = f"invalid field {field}: {msg}"
        raise bad_request(msg, field=field) from None


def body(model: type[BaseModel]):
    """Declare (for OpenAPI) and validate the JSON body; the handler gets it as ``data=``."""

    def deco(fn):
        @functools.wraps(fn)
        def wrapper(*a, **kw):
            kw["data"] = parse(model)
            return fn(*a, **kw)

        wrapper.__openapi_body__ = model
        return wrapper

    return deco


def page_args(max_per_page: int = 200) -> tuple[int, int]:
    """``?page=&per_page=`` with bounds; 400 on nonsense."""
    try:
        page = int(request.args.get("page", 1))
        per_page = int(request.args.get("per_page", 50))
    except ValueError:
        raise bad_request("page and per_page must be integers", field="page") from None
    if page < 1 or per_page < 1:
        raise bad_request("page and per_page must be positive", field="page")
    return page, min(per_page, max_per_page)


def paginate(query, to_dict, session) -> dict:
    """Run a select() with pagination → the list shape of INTERFACES §4."""
    from sqlalchemy import func, select

    page, per_page = page_args()
    total = session.scalar(select(func.count()).select_from(query.order_by(None).subquery()))
    rows = session.scalars(query.limit(per_page).offset((page - 1) * per_page)).all()
    return {"items": [to_dict(r) for r in rows], "total": total, "page": page, "per_page": per_page}


def iso(ts: dt.datetime | None) -> str | None:
    """ISO 8601 with the city's offset (+08:00)."""
    if ts is None:
        return None
    return clock.local(ts).isoformat(timespec="seconds")


def parse_ts(value: Any, field: str) -> dt.datetime | None:
    """An ISO 8601 timestamp (naive = city time) → aware datetime; 400 naming ``field``."""
    if value in (None, ""):
        return None
    if isinstance(value, dt.datetime):
        ts = value
    else:
        try:
            ts = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            raise bad_request(f"invalid field {field}: not an ISO 8601 timestamp", field=field) from None
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=clock.city_tz())
    return ts


# OpenAPI ------------------------------------------------------------------------------------

_CONVERTER = re.compile(r"<(?:(\w+):)?(\w+)>")


def responds(media_type: str):
    """Declare (for OpenAPI) that a view answers something other than JSON (``application/cap+xml``...).
    Put it right under the route decorator."""

    def deco(fn):
        fn.__openapi_media_type__ = media_type
        return fn

    return deco


def _success_responses(view) -> dict:
    """The 2XX of an operation: the media type declared with :func:`responds`; else, read from the view's
    source, 204 without a body, the list envelope when it paginates or builds ``{"items": ...}``, a JSON object."""
    media_type = getattr(view, "__openapi_media_type__", None)
    if media_type:
        return {"2XX": {"description": "OK", "content": {media_type: {}}}}
    try:
        source = inspect.getsource(view)
    except (OSError, TypeError):
        source = ""
    if '"", 204' in source:
        return {"204": {"description": "done, no body"}}
    is_list = "paginate(" in source or '"items":' in source
    schema = {"$ref": "#/components/schemas/List"} if is_list else {"type": "object"}
    return {"2XX": {"description": "OK", "content": {"application/json": {"schema": schema}}}}


def _responses(rule: str, view) -> dict:
    """Success and error answers of one operation. Open311 (GeoReport v2) keeps its own standard shapes:
    a JSON array or object (XML for ``.xml``) and errors as ``[{"code","description"}]``."""
    if rule.startswith("/open311"):
        media = ("text/xml", {}) if rule.endswith(".xml") else ("application/json", {"schema": {"type": ["array", "object"]}})
        return {"2XX": {"description": "OK", "content": {media[0]: media[1]}},
                "4XX": {"description": "GeoReport v2 errors", "content": {"application/json": {
                    "schema": {"$ref": "#/components/schemas/Open311Errors"}}}}}
    return {**_success_responses(view),
            "4XX": {"description": "error", "content": {"application/json": {
                "schema": {"$ref": "#/components/schemas/Error"}}}}}


def openapi_document(app) -> dict:
    """OpenAPI 3.1 from the URL map: every /api/v1 and /open311 rule, its docstring and body model."""
    paths: dict[str, dict] = {}
    schemas: dict[str, Any] = {}
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if not (rule.rule.startswith(API_PREFIX) or rule.rule.startswith("/open311")):
            continue
        view = app.view_functions[rule.endpoint]
        path = _CONVERTER.sub(r"{\2}", rule.rule)
        params = [{"name": name, "in": "path", "required": True,
                   "schema": {"type": "integer" if conv == "int" else "string"}}
                  for conv, name in _CONVERTER.findall(rule.rule)]
        doc = (view.__doc__ or "").strip()
        summary = doc.splitlines()[0] if doc else rule.endpoint
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            op: dict[str, Any] = {"operationId": f"{rule.endpoint}.{method.lower()}",
                                  "summary": summary, "tags": [rule.endpoint.split(".")[0]],
                                  "responses": _responses(rule.rule, view)}
            if doc and "\n" in doc:
                op["description"] = doc
            if params:
                op["parameters"] = params
            model = getattr(view, "__openapi_body__", None)
            if model is not None and method in ("POST", "PUT", "PATCH"):
                schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
                for name, sub in schema.pop("$defs", {}).items():
                    schemas[name] = sub
                schemas[model.__name__] = schema
                op["requestBody"] = {"required": True, "content": {"application/json": {
                    "schema": {"$ref": f"#/components/schemas/{model.__name__}"}}}}
            paths.setdefault(path, {})[method.lower()] = op
    schemas["List"] = {"type": "object", "required": ["items", "total", "page", "per_page"], "properties": {
        "items": {"type": "array", "items": {"type": "object"}}, "total": {"type": "integer", "minimum": 0},
        "page": {"type": "integer", "minimum": 1}, "per_page": {"type": "integer", "minimum": 0}}}
    schemas["Open311Errors"] = {"type": "array", "minItems": 1, "items": {
        "type": "object", "required": ["code", "description"],
        "properties": {"code": {"type": "integer"}, "description": {"type": "string"}}}}
    schemas["Error"] = {"type": "object", "required": ["error"], "properties": {"error": {"type": "object", "properties": {
        "code": {"type": "string"}, "message": {"type": "string"}}, "required": ["code", "message"]}}}
    return {"openapi": "3.1.0",
            "info": {"title": "CommuniTV API", "version": "1"},
            "servers": [{"url": app.config["SETTINGS"].public_url}],
            "components": {"schemas": schemas, "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "terminal": {"type": "apiKey", "in": "header", "name": "X-Terminal-Token"}}},
            "security": [{"bearer": []}, {"terminal": []}],
            "paths": paths}


def make_blueprint(name: str, import_name: str, url_prefix: str = "") -> Blueprint:
    """A blueprint mounted under /api/v1 (CSRF-exempt: bearer/terminal tokens, no cookies)."""
    return Blueprint(name, import_name, url_prefix=API_PREFIX + url_prefix)
