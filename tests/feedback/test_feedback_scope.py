"""Scope matrix: handlers of different villages, towns and departments, and other roles."""
import pytest

USERS = ("v001-handler", "v002-handler", "town01-handler", "dept-civil", "admin", "grid-v001",
         "v001-editor", "hotline")
# order: (who may read, who may act)
EXPECT = {
    "A": ({"v001-handler", "town01-handler", "admin", "grid-v001", "v001-editor", "hotline"},
          {"v001-handler", "town01-handler", "admin", "hotline"}),
    "B": ({"v001-handler", "town01-handler", "admin", "grid-v001", "v001-editor", "hotline"},
          {"town01-handler", "admin", "hotline"}),
    "C": ({"v001-handler", "town01-handler", "dept-civil", "admin", "grid-v001", "v001-editor", "hotline"},
          {"dept-civil", "admin"}),
    "D": ({"v002-handler", "town01-handler", "admin", "hotline"},
          {"v002-handler", "town01-handler", "admin", "hotline"}),
    "E": ({"admin", "hotline"}, {"admin", "hotline"}),
}


@pytest.fixture
def orders(file_order, act):
    a = file_order("CTV-HH-000001", "water")["id"]
    b = file_order("CTV-HH-000002", "roads")["id"]
    for step in ("accept", "escalate"):
        assert act("v001-handler", b, step).status_code == 200
    c = file_order("CTV-HH-000003", "assistance")["id"]
    for who, step in (("v001-handler", "accept"), ("v001-handler", "escalate"),
                      ("town01-handler", "accept"), ("town01-handler", "escalate")):
        assert act(who, c, step).status_code == 200
    d = file_order("CTV-HH-010001", "sanitation")["id"]
    e = file_order("CTV-HH-070001", "security")["id"]
    return {"A": a, "B": b, "C": c, "D": d, "E": e}


def test_read_and_act_matrix(client, auth, act, orders):
    got_read, got_act = {}, {}
    for name, oid in orders.items():
        got_read[name] = {u for u in USERS
                          if client.get(f"/api/v1/feedback/{oid}", headers=auth.headers(u)).status_code == 200}
        # "accept" is allowed in every one of these states: only role and scope can refuse it.
        codes = {u: act(u, oid, "accept").status_code for u in USERS if u != "admin"}
        assert set(codes.values()) <= {200, 403, 409}, codes
        got_act[name] = {u for u, c in codes.items() if c != 403} | {"admin"}
    assert got_read == {k: v[0] for k, v in EXPECT.items()}
    assert got_act == {k: v[1] for k, v in EXPECT.items()}


def test_inbox_and_listing_stay_in_scope(client, auth, orders):
    def ids(user, **params):
        r = client.get("/api/v1/feedback", query_string={"per_page": 200, **params}, headers=auth.headers(user))
        assert r.status_code == 200
        return {x["id"] for x in r.get_json()["items"]}

    mine = {v: k for k, v in orders.items()}
    assert {mine[i] for i in ids("town01-handler", box="inbox") if i in mine} == {"A", "B", "D"}
    assert {mine[i] for i in ids("dept-civil", box="inbox") if i in mine} == {"C"}
    assert {mine[i] for i in ids("v002-handler") if i in mine} == {"D"}
    assert {mine[i] for i in ids("v001-handler") if i in mine} == {"A", "B", "C"}
    # A box lists its own household's orders only.
    from tests.conftest import terminal_token
    r = client.get("/api/v1/feedback", headers={"X-Terminal-Token": terminal_token("CTV-HH-000002")})
    assert {mine[i["id"]] for i in r.get_json()["items"] if i["id"] in mine} == {"B"}


def test_assign_outside_scope_is_403(act, orders):
    assert act("v001-handler", orders["A"], "assign", to="990101001002").status_code == 403
    r = act("town01-handler", orders["A"], "assign", to="990101001002")
    assert r.status_code == 200 and r.get_json()["handler"]["code"] == "990101001002"
    r = act("town01-handler", orders["D"], "assign", to="990101999999")
    assert r.status_code == 400 and r.get_json()["error"]["field"] == "to"
