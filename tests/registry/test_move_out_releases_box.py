"""A household that moves out gives its box back: the next family in the house must not see the old
household's portal. The clerk confirms the release in the form; the box is unbound (pairing screen,
new pairing code), its old portal URL and token stop working, the fleet lists it as unpaired, the
audit trail records it, and the household page and the 电子装户图 say so."""
from __future__ import annotations

import json
from urllib.parse import parse_qs, urlparse

from sqlalchemy import select

from portal_server.core import terminals
from portal_server.core.audit import AuditEvent
from portal_server.core.db import session
from portal_server.core.households import Household
from tests.conftest import csrf_from

SERIAL = "CTV-HH-000001"


def test_moving_out_releases_the_box_and_its_old_portal_stops_working(app, client, auth, box):
    term = terminals.terminal_by_serial(SERIAL)
    hid, village = term.household_id, term.region.code
    hh = session.get(Household, hid)
    head = hh.head_name
    old_url = terminals.portal_url(term)
    old_headers = box(SERIAL)
    query = urlparse(old_url).query
    session.remove()
    assert client.get("/tv/?" + query).status_code == 302  # the portal opens before
    assert client.get("/tv/?" + query).headers["Location"] != "/tv/"

    auth.login("v001-clerk")
    page = client.get(f"/admin/households/{hid}").get_data(as_text=True)
    assert "该户的机顶盒将解除绑定" in page and 'name="release_box"' in page
    # Without ticking the confirmation nothing happens.
    r = client.post(f"/admin/households/{hid}/move_out", data={"csrf_token": csrf_from(page), "note": "迁往县城"},
                    follow_redirects=True)
    assert "请勾选确认" in r.get_data(as_text=True)
    session.remove()
    assert session.get(Household, hid).status == "active"
    assert terminals.terminal_by_serial(SERIAL).household_id == hid
    session.remove()
    r = client.post(f"/admin/households/{hid}/move_out",
                    data={"csrf_token": csrf_from(page), "note": "迁往县城", "release_box": "1"}, follow_redirects=True)
    page = r.get_data(as_text=True)
    assert f"机顶盒 {SERIAL} 已解除绑定" in page
    assert "无机顶盒" in page and f"机顶盒 {SERIAL} 已于" in page and "随整户迁出解除绑定" in page

    session.remove()
    term = terminals.terminal_by_serial(SERIAL)
    assert not term.paired and term.household_id is None and term.pairing_code
    # The old portal URL and token no longer open this household's portal: the pairing screen.
    r = client.get("/tv/?" + query)
    tv = r.get_data(as_text=True)
    assert r.status_code == 200 and head not in tv and "本机的登录信息已失效，需要重新绑定" in tv
    assert terminals.check_portal_link({k: v[0] for k, v in parse_qs(query).items()}) == "revoked"
    assert terminals.terminal_for_token(parse_qs(query)["token"][0]) is None
    r = client.post("/api/v1/feedback", headers=old_headers, json={"category": "water", "content": "停水了"})
    assert r.status_code == 401
    # The fleet lists it as unpaired.
    session.remove()
    item = client.get(f"/api/v1/terminals/{SERIAL}", headers=auth.headers("admin")).get_json()
    assert item["paired"] is False and item["household_id"] is None and item["region_code"] is None
    listed = client.get("/api/v1/terminals?per_page=1000", headers=auth.headers("admin")).get_json()["items"]
    assert [t["paired"] for t in listed if t["serial"] == SERIAL] == [False]
    auth.login("admin")
    page = client.get(f"/noc/terminals/{SERIAL}").get_data(as_text=True)
    assert "未绑定，配对码" in page and hh_number(hid) not in page
    auth.login("v001-clerk")
    # Audited: the unbinding (by whom, which household) and the move-out naming the released box.
    ev = session.scalar(select(AuditEvent).where(AuditEvent.action == "terminal.unbind",
                                                 AuditEvent.object_id == SERIAL))
    assert ev.actor == "v001-clerk" and json.loads(ev.detail)["household_id"] == hid
    ev = session.scalar(select(AuditEvent).where(AuditEvent.action == "household.move_out",
                                                 AuditEvent.object_id == str(hid)))
    assert json.loads(ev.detail)["released_boxes"] == [SERIAL]
    session.remove()
    # The household map: the house says the household moved out and that it has no box.
    html = client.get(f"/admin/households/map?village={village}").get_data(as_text=True)
    plot = _plot_of(html, hh_number(hid))
    assert plot is not None and "无机顶盒" in plot and "已迁出" in plot


def hh_number(hid: int) -> str:
    n = session.get(Household, hid).number
    session.remove()
    return n


def _plot_of(html: str, number: str) -> str | None:
    for chunk in html.split('<a class="plot')[1:]:
        chunk = chunk.split("</a>")[0]
        if number in chunk:
            return chunk
    return None


def test_the_api_move_out_releases_the_box_too(app, client, auth):
    term = terminals.terminal_by_serial(SERIAL)
    hid = term.household_id
    session.remove()
    r = client.post(f"/api/v1/households/{hid}/move-out", headers=auth.headers("v001-clerk"), json={"note": "x"})
    assert r.status_code == 200
    session.remove()
    assert not terminals.terminal_by_serial(SERIAL).paired


def test_the_clerk_confirms_the_release_in_the_browser(app, staff_page, live_server):
    term = terminals.terminal_by_serial(SERIAL)
    hid = term.household_id
    session.remove()
    page = staff_page("v001-clerk", 390, 844)
    page.goto(f"{live_server}/admin/households/{hid}")
    page.click("text=整户迁出")
    form = page.locator("#move-out-form")
    assert "该户的机顶盒将解除绑定" in form.inner_text() and SERIAL in form.inner_text()
    asked = []

    def answer(dialog):
        asked.append(dialog.message)
        dialog.accept()
    page.on("dialog", answer)
    form.locator("button[type=submit]").click()  # the checkbox is required: the browser stops here
    assert page.url.endswith(f"/admin/households/{hid}") and asked == []
    form.locator("input[name=release_box]").check()
    form.locator("button[type=submit]").click()
    page.wait_for_selector("text=已解除绑定，回到配对界面")
    assert asked and f"该户的机顶盒 {SERIAL} 将解除绑定" in asked[0]
    assert "无机顶盒" in page.inner_text("#box") and "随整户迁出解除绑定" in page.inner_text("#box")
