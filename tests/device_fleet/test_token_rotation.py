"""Rotating a box's portal token from the NOC web page (the API and nginx side: tests/stb_app/test_push.py)."""
from portal_server.core.db import session
from portal_server.core.terminals import portal_token, terminal_by_serial, terminal_for_token
from tests.conftest import csrf_from

BOX = "CTV-HH-000001"


def test_noc_rotates_a_boxs_portal_url_and_the_old_token_stops_working(client, auth):
    term = terminal_by_serial(BOX)
    old_version, old_token = term.token_version, portal_token(term)
    session.remove()
    auth.login("noc")
    page = client.get(f"/noc/terminals/{BOX}").get_data(as_text=True)
    assert "更换门户地址" in page
    r = client.post(f"/noc/terminals/{BOX}", data={"action": "rotate_token", "reason": "盒子转手",
                                                   "csrf_token": csrf_from(page)}, follow_redirects=True)
    assert "已更换门户地址" in r.get_data(as_text=True)
    session.remove()
    assert terminal_by_serial(BOX).token_version == old_version + 1
    assert terminal_for_token(old_token) is None
    assert terminal_for_token(portal_token(terminal_by_serial(BOX))).serial == BOX
