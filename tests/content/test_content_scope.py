"""Scope matrix: editors and reviewers of the city, town 01, village 001 and village 002 against
every action and listing. No cross-scope read or write."""
import pytest

from .conftest import CITY, TOWN01, V001, V002

EDITORS = ("city-editor", "town01-editor", "v001-editor", "v002-editor")
REVIEWERS = ("city-reviewer", "town01-reviewer", "v001-reviewer", "v002-reviewer")
USERS = EDITORS + REVIEWERS

# name: (author, targets)
ITEMS = {"A": ("v001-editor", [V001]), "B": ("v002-editor", [V002]), "C": ("town01-editor", [TOWN01]),
         "D": ("city-editor", [CITY]), "E": ("town01-editor", [V001])}
CITY_STAFF = {"city-editor", "city-reviewer"}
TOWN_STAFF = CITY_STAFF | {"town01-editor", "town01-reviewer"}
READ = {"A": TOWN_STAFF | {"v001-editor", "v001-reviewer"},
        "B": TOWN_STAFF | {"v002-editor", "v002-reviewer"},
        "C": TOWN_STAFF, "D": CITY_STAFF,
        "E": TOWN_STAFF | {"v001-editor", "v001-reviewer"}}
EDIT = {"A": {"city-editor", "town01-editor", "v001-editor"},
        "B": {"city-editor", "town01-editor", "v002-editor"},
        "C": {"city-editor", "town01-editor"}, "D": {"city-editor"},
        "E": {"city-editor", "town01-editor"}}
REVIEW = {"A": {"city-reviewer", "town01-reviewer", "v001-reviewer"},
          "B": {"city-reviewer", "town01-reviewer", "v002-reviewer"},
          "C": {"city-reviewer", "town01-reviewer"}, "D": {"city-reviewer"},
          "E": {"city-reviewer", "town01-reviewer", "v001-reviewer"}}


@pytest.fixture
def v002_reviewer(app):
    """The demo city has no reviewer in village 002: add one for the matrix."""
    from portal_server.core.accounts import create_user
    from portal_server.core.db import session
    from portal_server.core.regions import region_by_code

    create_user("v002-reviewer", app.config["SETTINGS"].demo_password, ["reviewer"], region_by_code(V002))
    session.commit()


def test_every_action_and_listing(api, draft, v002_reviewer):
    items = {name: draft(author, targets, title=f"矩阵{name}")["id"] for name, (author, targets) in ITEMS.items()}

    def who(expect_ok, probe):
        got = {}
        for u in USERS:
            r = probe(u)
            assert r.status_code in expect_ok + (403,), (u, r.status_code, r.get_data(as_text=True))
            got[u] = r.status_code != 403
        return {u for u, ok in got.items() if ok}

    for name, cid in items.items():
        # Read.
        assert who((200,), lambda u: api(u, "get", f"/contents/{cid}")) == READ[name], name
        # Edit (a draft is edited in place: harmless to repeat).
        assert who((200,), lambda u: api(u, "patch", f"/contents/{cid}", json={"pinned": False})) == EDIT[name], name
        # Withdraw a draft: 409 (nothing to withdraw) for those allowed, 403 for the others.
        allowed_withdraw = who((409,), lambda u: api(u, "post", f"/contents/{cid}/withdraw"))
        assert EDIT[name] <= allowed_withdraw and allowed_withdraw <= EDIT[name] | REVIEW[name], name
        # Submit: the author submits; for everyone else it is then 409 (allowed) or 403.
        author = ITEMS[name][0]
        assert api(author, "post", f"/contents/{cid}/submit").status_code == 200
        assert who((409,), lambda u: api(u, "post", f"/contents/{cid}/submit")) == EDIT[name], name
        # Review: rejecting without a reason is 400 for a reviewer who may decide, 403 otherwise.
        assert who((400,), lambda u: api(u, "post", f"/contents/{cid}/reject", json={})) == REVIEW[name], name

    # Listings: each user lists exactly what they may read.
    for u in USERS:
        r = api(u, "get", "/contents", query_string={"per_page": 200})
        assert r.status_code == 200
        listed = {i["id"] for i in r.get_json()["items"]}
        expect = {items[n] for n in ITEMS if u in READ[n]}
        assert listed & set(items.values()) == expect, u
        queue = api(u, "get", "/contents", query_string={"status": "submitted", "per_page": 200}).get_json()
        assert {i["id"] for i in queue["items"]} & set(items.values()) == expect, u

    # Approval by each allowed reviewer, and the others refused (on fresh copies).
    for name, (author, targets) in ITEMS.items():
        for u in REVIEWERS:
            cid = draft(author, targets, title=f"审批{name}{u}")["id"]
            api(author, "post", f"/contents/{cid}/submit")
            code = api(u, "post", f"/contents/{cid}/approve").status_code
            assert code == (200 if u in REVIEW[name] else 403), (name, u, code)


def test_listing_filters_stay_in_scope(api, draft, publish):
    a = draft("v001-editor", [V001], section="party")["id"]
    b = publish("v002-editor", "town01-reviewer", [V002], section="party")
    r = api("v001-editor", "get", "/contents", query_string={"region": V002})
    assert r.status_code == 403 and V002 in r.get_json()["error"]["message"]
    r = api("town01-editor", "get", "/contents", query_string={"region": V002, "section": "party", "per_page": 200})
    assert {i["id"] for i in r.get_json()["items"]} >= {b} and a not in {i["id"] for i in r.get_json()["items"]}
    r = api("town01-editor", "get", "/contents", query_string={"status": "draft", "per_page": 200})
    got = {i["id"] for i in r.get_json()["items"]}
    assert a in got and b not in got
    r = api("town01-editor", "get", "/contents", query_string={"status": "published", "per_page": 2, "page": 1})
    body = r.get_json()
    assert body["per_page"] == 2 and len(body["items"]) == 2 and body["total"] >= 3 and body["page"] == 1
    for bad in ({"status": "live"}, {"section": "news"}, {"region": "x"}, {"page": "zero"}):
        r = api("city-editor", "get", "/contents", query_string=bad)
        assert r.status_code == 400, bad
    # Other roles and no token.
    assert api("v001-handler", "post", "/contents", json={}).status_code == 403
    from flask import current_app
    client = current_app.test_client()
    assert client.get("/api/v1/contents").status_code == 401
    assert client.get("/api/v1/terminal/contents").status_code == 401
