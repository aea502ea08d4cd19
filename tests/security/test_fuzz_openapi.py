"""Fuzzing the API from its own OpenAPI document (schemathesis): bad input is a 4xx, never a 5xx, and every
answer matches what the document says of it (status code, content type, body schema)."""
import collections

import pytest
from hypothesis import HealthCheck, Phase, given, settings

schemathesis = pytest.importorskip("schemathesis")

#: Operations that start real work outside the request (encoders, broker callbacks) are left out.
SKIP = ("/api/v1/streams/",)

#: Operations whose answers are not yet described well enough for the conformance checks (only "no 5xx" is checked).
#: Keys are "METHOD /path"; each names its reason.
NOT_CONFORMANT: dict[str, str] = {}


def test_no_server_errors_over_every_operation(app, auth):
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        response_schema_conformance,
        status_code_conformance,
    )

    from portal_server.core.db import session
    conformance = [status_code_conformance, content_type_conformance, response_schema_conformance]
    headers = auth.headers("admin")
    app.config["RATE_LIMITS"] = {k: "100000 per minute" for k in
                                 ("box_write", "public_write", "login", "pairing", "open311")}
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    failures = collections.defaultdict(set)
    ops = 0
    for result in schema.get_all_operations():
        op = result.ok()
        if op.path.startswith(SKIP) or op.method.upper() == "DELETE" and op.path.endswith("/auth/token"):
            continue
        ops += 1

        @given(case=op.as_strategy())
        @settings(max_examples=3, deadline=None, database=None, phases=[Phase.generate],
                  suppress_health_check=list(HealthCheck))
        def run(case):
            name = f"{op.method.upper()} {op.path}"
            # schemathesis fills the documented security schemes with random tokens: that only tests the 401,
            # so the operations are called as the admin instead.
            case.headers = {k: v for k, v in (case.headers or {}).items()
                            if k.lower() not in ("authorization", "x-terminal-token")}
            try:
                resp = case.call(headers=headers)
            except Exception as exc:  # TESTING propagates what production answers with 500
                failures[name].add(f"{type(exc).__name__}: {str(exc)[:120]}")
                session.rollback()
                return
            finally:
                session.remove()
            if resp.status_code >= 500:
                failures[name].add(resp.status_code)
                return
            checks = [not_a_server_error] + ([] if name in NOT_CONFORMANT else conformance)
            try:
                case.validate_response(resp, checks=checks, headers=headers)
            except (AssertionError, BaseExceptionGroup) as exc:  # a Failure, or a FailureGroup of them
                for failure in getattr(exc, "exceptions", (exc,)):
                    text = " ".join(str(getattr(failure, "message", failure)).split())
                    failures[name].add(f"{resp.status_code} {getattr(failure, 'title', '')}: {text[:200]}")

        run()
    assert ops > 40
    assert not failures, "\n".join(f"{name}: {sorted(map(str, found))}" for name, found in sorted(failures.items()))


def test_openapi_describes_success_and_error_bodies(client):
    doc = client.get("/api/v1/openapi.json").get_json()
    ok = lambda path, method="get": doc["paths"][path][method]["responses"]
    assert ok("/api/v1/alerts")["2XX"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/List"}
    assert set(doc["components"]["schemas"]["List"]["required"]) == {"items", "total", "page", "per_page"}
    assert ok("/api/v1/alerts")["4XX"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
    assert doc["components"]["schemas"]["Error"]["properties"]["error"]["required"] == ["code", "message"]
    assert "application/cap+xml" in ok("/api/v1/alerts/{alert_id}.cap")["2XX"]["content"]
    assert "content" not in ok("/api/v1/auth/token", "delete")["204"]
    # Open311 keeps GeoReport v2's own error list.
    assert ok("/open311/v2/services.json")["4XX"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Open311Errors"}
