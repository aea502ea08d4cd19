"""Fixtures of the feedback tests."""
import pytest


@pytest.fixture
def file_order(client, box):
    """File an order from a box; returns the JSON answer."""
    def _file(serial="CTV-HH-000001", category="water", **kw):
        r = client.post("/api/v1/feedback", json={"category": category, **kw}, headers=box(serial))
        assert r.status_code in (200, 201), r.get_data(as_text=True)
        return r.get_json()
    return _file


@pytest.fixture
def act(client, auth, box):
    """POST an action as a user (username) or a box (serial starting with CTV-)."""
    def _act(who, order_id, action, **kw):
        headers = box(who) if who.startswith("CTV-") else auth.headers(who)
        return client.post(f"/api/v1/feedback/{order_id}/actions", json={"action": action, **kw},
                           headers=headers)
    return _act


@pytest.fixture
def staff_login(auth):
    """Log in through the form. Test requests share the test's app context (and so ``g``):
    Flask-WTF caches the CSRF token in ``g`` while the login cleared it from the session, so drop
    the cached one to get a fresh token into the new session."""
    from flask import g

    def _login(username):
        g.pop("csrf_token", None)
        r = auth.login(username)
        assert r.status_code == 302, r.get_data(as_text=True)
        g.pop("csrf_token", None)
        return r
    return _login
