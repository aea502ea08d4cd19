"""Box tokens: only admin and noc read them; a write carried by the box cookie alone must come
from our own pages (old STB browsers ignore SameSite)."""
import pytest

from tests.conftest import terminal_token

SERIAL = "CTV-HH-000001"


@pytest.mark.parametrize("user", ["v001-handler", "city-editor", "town01-editor", "city-leader"])
def test_a_handler_or_editor_gets_no_box_token(client, auth, user):
    r = client.get("/api/v1/terminals?per_page=1000", headers=auth.headers(user))
    assert r.status_code == 200
    items = r.get_json()["items"]
    assert not any("portal_url" in t for t in items)
    assert "token=" not in r.get_data(as_text=True)
    one = client.get(f"/api/v1/terminals/{SERIAL}", headers=auth.headers(user))
    if one.status_code == 200:
        assert "portal_url" not in one.get_json() and "token=" not in one.get_data(as_text=True)


@pytest.mark.parametrize("user", ["admin", "noc"])
def test_admin_and_noc_read_the_portal_url(client, auth, user):
    one = client.get(f"/api/v1/terminals/{SERIAL}", headers=auth.headers(user)).get_json()
    assert "/tv/?token=" in one["portal_url"]
    items = client.get("/api/v1/terminals?kind=household", headers=auth.headers(user)).get_json()["items"]
    assert all("/tv/?token=" in t["portal_url"] for t in items if t["paired"])


def _box_browser(app):
    """A test client holding only the box's portal cookie (as a box after /tv/?token=)."""
    c = app.test_client()
    tok = terminal_token(SERIAL)
    assert c.get(f"/tv/?token={tok}").status_code == 302
    return c, tok


def test_cross_site_post_with_only_the_box_cookie_is_refused(app):
    c, tok = _box_browser(app)
    body = {"category": "roads", "content": "路灯坏了"}
    r = c.post("/api/v1/feedback", json=body, headers={"Origin": "https://evil.example"})
    assert r.status_code == 403 and r.get_json()["error"]["code"] == "cross_site"
    assert "跨站" in r.get_json()["error"]["message"]
    r = c.post("/api/v1/feedback", json=body, headers={"Referer": "https://evil.example/x.html"})
    assert r.status_code == 403
    r = c.post("/api/v1/feedback", json=body)   # neither Origin nor Referer: not provably ours
    assert r.status_code == 403
    r = c.post("/api/v1/checkins", headers={"Origin": "https://evil.example"})
    assert r.status_code == 403
    r = c.post("/api/v1/care/help", headers={"Origin": "https://evil.example"})
    assert r.status_code == 403


def test_our_pages_still_write_with_the_header_or_same_origin(app):
    c, tok = _box_browser(app)
    body = {"category": "roads", "content": "路灯坏了"}
    r = c.post("/api/v1/feedback", json=body, headers={"Origin": app.config["SETTINGS"].public_url})
    assert r.status_code == 201, r.get_data(as_text=True)
    r = c.post("/api/v1/feedback", json=body, headers={"Referer": "http://localhost/tv/v/x/home.html"})
    assert r.status_code == 201, r.get_data(as_text=True)
    # tv.js reads the token from /tv/api/token (same-origin only) and sends it as a header.
    got = c.get("/tv/api/token")
    assert got.status_code == 200 and got.get_json()["token"] == tok
    assert got.headers["Cache-Control"] == "no-store"
    r = c.post("/api/v1/feedback", json=body, headers={"X-Terminal-Token": tok, "Origin": "https://evil.example"})
    assert r.status_code == 201
    assert app.test_client().get("/tv/api/token").status_code == 401


def test_the_tv_portal_sends_the_token_header_on_writes(app, live_server, tv_page):
    """tv.js (ES5 XHR) reads the token once from /tv/api/token and sends X-Terminal-Token on POSTs."""
    seen = []
    tv_page.on("request", lambda req: seen.append((req.method, req.url, req.headers.get("x-terminal-token"))))
    tok = terminal_token(SERIAL)
    tv_page.goto(live_server + f"/tv/?token={tok}")
    tv_page.wait_for_load_state("load")
    tv_page.wait_for_function("() => !!(window.TV && window.TV.request)")
    tv_page.evaluate("""() => new Promise(function (done) {
        TV.request('POST', '/api/v1/feedback', {category: 'roads', content: '电视上提交'}, function (s) { done(s); });
    })""")
    posts = [h for m, u, h in seen if m == "POST" and u.endswith("/api/v1/feedback")]
    assert posts == [tok]
