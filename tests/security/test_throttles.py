"""The real client address behind nginx (ProxyFix, one hop), login throttles that never lock an
account for everyone, and rate limits (429 in Chinese) on what anybody can reach."""
from sqlalchemy import select

from portal_server.core.audit import AuditEvent
from portal_server.core.db import session

A = {"X-Forwarded-For": "203.0.113.7"}
B = {"X-Forwarded-For": "198.51.100.9"}


def _login(client, password, headers, user="v001-editor"):
    return client.post("/api/v1/auth/token", json={"username": user, "password": password},
                       headers=headers)


def test_wrong_passwords_from_one_address_do_not_lock_the_account_for_another(client, app):
    good = app.config["SETTINGS"].demo_password
    for _ in range(6):
        _login(client, "wrong-password", A)
    r = _login(client, good, A)
    assert r.status_code == 429, r.get_data(as_text=True)
    assert any("\u4e00" <= ch <= "\u9fff" for ch in r.get_json()["error"]["message"])
    assert _login(client, good, B).status_code == 200


def test_one_address_guessing_many_accounts_is_throttled_but_not_the_others(client, app):
    good = app.config["SETTINGS"].demo_password
    users = ["v001-editor", "v002-editor", "town01-editor", "city-editor", "v001-handler",
             "v002-handler", "noc"]
    for u in users:
        for _ in range(3):   # under the per-account limit each time
            _login(client, "wrong-password", A, user=u)
    assert _login(client, good, A, user="v001-reviewer").status_code == 429
    assert _login(client, good, B, user="v001-reviewer").status_code == 200


def test_audit_sees_the_real_client_address(client, auth, app):
    r = client.post("/api/v1/contents", headers={**auth.headers("v001-editor"), **A},
                    json={"section": "party", "title": "地址测试", "body": "<p>x</p>",
                          "target_regions": ["990101001001"]})
    assert r.status_code in (200, 201), r.get_data(as_text=True)
    ev = session.scalars(select(AuditEvent).order_by(AuditEvent.id.desc())).first()
    assert ev.ip == "203.0.113.7"


def test_a_box_filing_40_orders_in_seconds_gets_429(client, box):
    h = box("CTV-HH-000002")
    codes = [client.post("/api/v1/feedback", json={"category": "roads", "content": f"第{i}条"},
                         headers=h).status_code for i in range(40)]
    assert codes.count(201) >= 10 and 429 in codes, codes
    first = codes.index(429)
    assert all(c == 429 for c in codes[first:])
    r = client.post("/api/v1/feedback", json={"category": "roads"}, headers=h)
    assert r.status_code == 429 and r.get_json()["error"]["message"] == "操作太频繁，请稍后再试"
    assert 1 <= int(r.headers["Retry-After"]) <= 60   # seconds until the minute's window frees a slot
    # Another box (same address behind the village's NAT) is not affected.
    assert client.post("/api/v1/feedback", json={"category": "roads"},
                       headers=box("CTV-HH-000003")).status_code == 201


def test_pairing_code_lookups_are_limited(client):
    codes = [client.get(f"/tv/pair?code=ZZ{i:04d}", headers=A).status_code for i in range(40)]
    assert 429 in codes and codes[0] == 200
    assert client.get("/tv/pair?code=ZZ0001", headers=B).status_code == 200


def test_open311_is_limited(client, app):
    app.config["RATE_LIMITS"] = {"open311": "5 per minute"}
    codes = [client.get("/open311/v2/services.json", headers=A).status_code for _ in range(8)]
    assert codes[-1] == 429, codes
