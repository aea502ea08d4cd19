"""Withdrawn content disappears from every level's TV pages: village, town and city terminals."""
import pytest

from tests.conftest import terminal_token

TOWN01 = "990101001000"
CITY = "990100000000"


def _publish(client, auth, target, editor, reviewer, title):
    h = auth.headers(editor)
    r = client.post("/api/v1/contents", headers=h, json={"section": "party", "title": title,
                                                          "body": "<p>请相互转告。</p>", "target_regions": [target]})
    assert r.status_code == 201, r.get_data(as_text=True)
    cid = r.get_json()["id"]
    assert client.post(f"/api/v1/contents/{cid}/submit", headers=h).status_code == 200
    r = client.post(f"/api/v1/contents/{cid}/approve", headers=auth.headers(reviewer))
    assert r.status_code == 200, r.get_data(as_text=True)
    return cid


def _pages(app, serial):
    """The section page and home page a terminal shows (rendered once, then served as files)."""
    c = app.test_client()
    r = c.get("/tv/?token=" + terminal_token(serial))
    assert r.status_code == 302
    home = r.headers["Location"]
    section = home.replace("home.html", "s-party.html")
    return c.get(section).get_data(as_text=True) + c.get(home).get_data(as_text=True)


@pytest.mark.parametrize("target,editor,reviewer,serials", [
    (TOWN01, "town01-editor", "city-reviewer", ["CTV-TOWN-01", "CTV-VIL-001", "CTV-HH-000001"]),
    (CITY, "city-editor", "city-reviewer", ["CTV-CITY-01", "CTV-TOWN-01", "CTV-VIL-001"]),
])
def test_a_withdrawn_item_disappears_from_every_terminal_it_reached(app, client, auth, target, editor,
                                                                     reviewer, serials):
    title = "全镇停水通知" if target == TOWN01 else "全市防汛通知"
    cid = _publish(client, auth, target, editor, reviewer, title)
    for serial in serials:
        assert title in _pages(app, serial), serial   # rendered (and kept as files) while live
    r = client.post(f"/api/v1/contents/{cid}/withdraw", headers=auth.headers(reviewer), json={"reason": "发错了"})
    assert r.status_code == 200, r.get_data(as_text=True)
    for serial in serials:
        assert title not in _pages(app, serial), serial
