"""HTTP basics of the foundation: regions, tokens, errors, OpenAPI, terminals count."""
import datetime as dt

from sqlalchemy import update


def test_city_lists_fourteen_towns(client):
    r = client.get("/api/v1/regions/990100000000")
    assert r.status_code == 200
    body = r.get_json()
    assert body["name"] == "青山市" and body["level"] == "city" and body["parent"] is None
    assert len(body["children"]) == 14
    assert body["children"][0]["code"] == "990101001000"


def test_town_one_has_seven_villages_and_others_six(client):
    assert len(client.get("/api/v1/regions/990101001000").get_json()["children"]) == 7
    t14 = client.get("/api/v1/regions/990101014000").get_json()
    assert [c["code"] for c in t14["children"]] == [f"990101014{v:03d}" for v in range(1, 7)]
    v = client.get("/api/v1/regions/990101001001").get_json()
    assert v["level"] == "village" and v["parent"] == "990101001000" and v["children"] == []


def test_unknown_region_is_404_json(client):
    r = client.get("/api/v1/regions/123456789012")
    assert r.status_code == 404
    assert r.get_json()["error"]["code"] == "not_found"
    assert "123456789012" in r.get_json()["error"]["message"]


def test_token_for_demo_admin_and_wrong_password(client, app):
    pw = app.config["SETTINGS"].demo_password
    r = client.post("/api/v1/auth/token", json={"username": "admin", "password": pw})
    assert r.status_code == 200
    body = r.get_json()
    assert len(body["token"]) > 20 and "+08:00" in body["expires_at"]
    bad = client.post("/api/v1/auth/token", json={"username": "admin", "password": "nope"})
    assert bad.status_code == 401 and bad.get_json()["error"]["code"] == "unauthorized"


def test_malformed_json_and_missing_field_are_400_naming_the_field(client):
    r = client.post("/api/v1/auth/token", data="{not json", content_type="application/json")
    assert r.status_code == 400 and "JSON" in r.get_json()["error"]["message"]
    r = client.post("/api/v1/auth/token", json={"username": "admin"})
    assert r.status_code == 400
    assert r.get_json()["error"]["field"] == "password"
    assert "password" in r.get_json()["error"]["message"]


def test_wrong_and_expired_tokens_are_401(client, auth, app):
    assert client.get("/api/v1/terminals").status_code == 401
    assert client.get("/api/v1/terminals", headers={"Authorization": "Bearer forged"}).status_code == 401
    headers = auth.headers("noc")
    assert client.get("/api/v1/terminals", headers=headers).status_code == 200
    from portal_server.core.accounts import ApiToken
    from portal_server.core.db import session
    session.execute(update(ApiToken).values(expires_at=dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=1)))
    session.commit()
    r = client.get("/api/v1/terminals", headers=headers)
    assert r.status_code == 401 and "过期" in r.get_json()["error"]["message"]


def test_terminals_api_counts_101_institutional_terminals(client, auth):
    h = auth.headers("admin")
    r = client.get("/api/v1/terminals?kind=department,town,village&per_page=500", headers=h)
    assert r.status_code == 200
    body = r.get_json()
    assert body["total"] == 101
    serials = {t["serial"] for t in body["items"]}
    assert {"CTV-CITY-01", "CTV-TOWN-14", "CTV-VIL-001", "CTV-VIL-085"} <= serials
    vil85 = client.get("/api/v1/terminals/CTV-VIL-085", headers=h).get_json()
    assert vil85["region_code"] == "990101014006" and vil85["kind"] == "village"
    assert client.get("/api/v1/terminals?kind=toaster", headers=h).status_code == 400


def test_terminal_listing_is_scoped(client, auth):
    h = auth.headers("v001-editor")
    body = client.get("/api/v1/terminals?per_page=500", headers=h).get_json()
    assert body["total"] > 0
    assert {t["region_code"] for t in body["items"]} == {"990101001001"}
    r = client.get("/api/v1/terminals?region=990101001002", headers=h)
    assert r.status_code == 403
    assert client.get("/api/v1/terminals/CTV-VIL-002", headers=h).status_code == 404


def test_openapi_is_generated_from_the_routes(client, app):
    doc = client.get("/api/v1/openapi.json").get_json()
    assert doc["openapi"].startswith("3.1")
    rules = {r.rule for r in app.url_map.iter_rules() if r.rule.startswith("/api/v1")}
    assert "/api/v1/regions/{code}" in doc["paths"]
    token = doc["paths"]["/api/v1/auth/token"]["post"]
    schema_name = token["requestBody"]["content"]["application/json"]["schema"]["$ref"].split("/")[-1]
    assert set(doc["components"]["schemas"][schema_name]["required"]) == {"username", "password"}
    # Every API rule of the URL map is documented.
    import re
    documented = set(doc["paths"])
    for rule in rules:
        assert re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule) in documented


def test_metrics_exposes_prometheus_text(client):
    client.get("/api/v1/regions/990100000000")
    text = client.get("/metrics").get_data(as_text=True)
    assert "ctv_http_requests_total" in text and 'endpoint="system.region"' in text
