"""Staff web: the clerk's desk (overdue first), the case page (timeline, materials checklist,
actions), search, the ledger as xlsx, the leaders' supervision list, the town's admission list,
and the desk on a 390 px phone."""
from __future__ import annotations

import io
import os

import pytest
import time_machine
from openpyxl import load_workbook

from portal_server.core.db import session
from tests.conftest import csrf_from

from .conftest import LOW_INCOME

BOX = "CTV-HH-000001"
ELDERLY = "11360100MB0004-001"   # 高龄津贴申领


def _apply(client, box, code=LOW_INCOME, key=None):
    r = client.post("/api/v1/cases", json={"service_code": code, "channel": "tv", "idempotency_key": key}, headers=box(BOX))
    assert r.status_code == 201, r.get_data(as_text=True)
    return r.get_json()


@time_machine.travel("2026-12-01 09:00:00+08:00", tick=True)
def test_desk_case_page_actions_search_ledger(client, auth, box):
    late = _apply(client, box, ELDERLY, "a")
    fresh = _apply(client, box, LOW_INCOME, "b")
    from portal_server.cases.models import Case
    # One case is overdue: it comes first on the desk, marked red.
    c = session.get(Case, late["id"])
    import datetime as dt
    c.deadline = c.created_at - dt.timedelta(days=1)
    session.commit()
    auth.login("v001-clerk")
    html = client.get("/admin/cases/").get_data(as_text=True)
    assert html.index(late["number"]) < html.index(fresh["number"])
    assert f'data-number="{late["number"]}" data-light="red"' in html
    # The case page: timeline, materials checklist, actions.
    page = client.get(f"/admin/cases/{fresh['id']}").get_data(as_text=True)
    assert "家庭经济状况核对授权书" in page and 'data-action="submit"' in page and 'data-action="accept"' in page
    token = csrf_from(page)
    r = client.post(f"/admin/cases/{fresh['id']}/materials", data={"csrf_token": token, "received": ["0", "1"]})
    assert r.status_code == 302
    r = client.post(f"/admin/cases/{fresh['id']}/action", data={"csrf_token": token, "action": "suspend", "note": ""},
                    follow_redirects=True)
    assert "不能挂起" in r.get_data(as_text=True)                      # 409 in words: it is not accepted yet
    client.post(f"/admin/cases/{fresh['id']}/action", data={"csrf_token": token, "action": "accept"})
    r = client.post(f"/admin/cases/{fresh['id']}/action", data={"csrf_token": token, "action": "suspend", "note": ""},
                    follow_redirects=True)
    assert "必须填写说明" in r.get_data(as_text=True)
    r = client.post(f"/admin/cases/{fresh['id']}/action",
                    data={"csrf_token": token, "action": "forward", "to": "990101001000"}, follow_redirects=True)
    page = r.get_data(as_text=True)
    assert "青石镇便民服务中心" in page and "已收材料 2/4 项" in page
    # Search by number, by applicant name, by item.
    assert late["number"] in client.get("/admin/cases/", query_string={"q": "高龄津贴"}).get_data(as_text=True)
    assert fresh["number"] in client.get("/admin/cases/", query_string={"q": fresh["number"]}).get_data(as_text=True)
    # The ledger opens in a spreadsheet.
    r = client.get("/admin/cases/ledger.xlsx")
    assert r.status_code == 200 and r.mimetype.endswith("spreadsheetml.sheet")
    ws = load_workbook(io.BytesIO(r.data)).active
    rows = list(ws.values)
    assert rows[0][:3] == ("办件号", "事项编码", "事项名称")
    assert {late["number"], fresh["number"]} <= {row[0] for row in rows[1:]}
    assert any(row[12] == "已超时" for row in rows[1:])
    by_number = {row[0]: row for row in rows[1:]}
    assert by_number[fresh["number"]][8] == "青石镇便民服务中心"   # the desk in words, as on the case page
    assert ws.freeze_panes == "A2"   # the header row stays while scrolling, as in every export
    # Another village's clerk sees neither.
    auth.login("v002-clerk")
    assert late["number"] not in client.get("/admin/cases/", query_string={"q": "高龄津贴"}).get_data(as_text=True)
    assert client.get(f"/admin/cases/{late['id']}").status_code == 403
    # The town's leader: the supervision list holds the overdue case.
    auth.login("town01-leader")
    assert late["number"] in client.get("/admin/cases/supervision").get_data(as_text=True)


def test_town_clerk_sets_the_admission_list(client, auth):
    auth.login("town01-clerk")
    # The demo city's forwarded case waits on the town's desk.
    assert "残疾人两项补贴申请" in client.get("/admin/cases/").get_data(as_text=True)
    page = client.get("/admin/services/admissions").get_data(as_text=True)
    assert f'value="{LOW_INCOME}" id' in page and "checked" in page
    codes = [c for c in __import__("re").findall(r'name="code" value="([^"]+)" id="[^"]+" checked', page)]
    keep = [c for c in codes if c != LOW_INCOME]
    r = client.post("/admin/services/admissions", data={"csrf_token": csrf_from(page), "code": keep},
                    follow_redirects=True)
    assert f"{len(keep)} 项" in r.get_data(as_text=True)
    from portal_server.core.regions import region_by_code
    from portal_server.services import queries
    assert LOW_INCOME not in queries.admitted_codes(region_by_code("990101001000").id)
    # A village clerk may not change it.
    auth.login("v001-clerk")
    assert client.get("/admin/services/admissions").status_code in (302, 403)


@pytest.mark.browser
def test_desk_and_case_page_on_a_phone(live_server, browser, app, client, box):
    case = _apply(client, box)
    ctx = browser.new_context(viewport={"width": 390, "height": 844}, locale="zh-CN")
    p = ctx.new_page()
    p.goto(f"{live_server}/admin/login")
    p.fill("input[name=username]", "v001-clerk")
    p.fill("input[name=password]", app.config["SETTINGS"].demo_password)
    p.click("button[type=submit]")
    os.makedirs("/tmp/cases-shots", exist_ok=True)
    for name, url in (("desk", "/admin/cases/"), ("case", f"/admin/cases/{case['id']}")):
        p.goto(live_server + url)
        p.screenshot(path=f"/tmp/cases-shots/staff-{name}-390.png", full_page=True)
        assert p.evaluate("document.documentElement.scrollWidth") <= 390, name
    p.click("form[data-action=accept] button")
    assert p.locator("[data-status=accepted]").count() == 1
    ctx.close()
