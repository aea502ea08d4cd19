"""Staff web and phone pages of the registry: accounts, the audit trail, the CLI import, and in a
real browser the onboarding of a box (its portal shows 报平安) and the 390 px phone layout."""
import io
import re

import pytest
from openpyxl import load_workbook
from sqlalchemy import func, select

from portal_server.core.db import session
from portal_server.core.households import Household
from portal_server.registry.cli import run_import
from tests.conftest import csrf_from

V001 = "990101001001"


def _count() -> int:
    n = session.scalar(select(func.count(Household.id)))
    session.remove()
    return n


def test_admin_manages_accounts_in_the_web_and_deactivation_ends_the_session(app, client, auth):
    from flask import g
    auth.login("admin")
    page = client.get("/admin/users").get_data(as_text=True)
    r = client.post("/admin/users", data={"csrf_token": csrf_from(page), "username": "town02-clerk",
                                          "password": "first-pass-1", "roles": ["clerk"],
                                          "region_code": "990101002000", "display_name": "二镇办事员"})
    assert r.status_code == 302
    page = client.get("/admin/users/town02-clerk").get_data(as_text=True)
    assert "二镇办事员" in page or "town02-clerk" in page
    # The new account logs in (second browser), sees its households.
    other = app.test_client()
    g.pop("csrf_token", None)  # tests share one app context (see AuthActions.login)
    form = other.get("/admin/login").get_data(as_text=True)
    g.pop("csrf_token", None)
    r = other.post("/admin/login", data={"username": "town02-clerk", "password": "first-pass-1",
                                         "csrf_token": csrf_from(form)})
    assert r.status_code == 302
    g.pop("csrf_token", None)
    assert other.get("/admin/households").status_code == 200
    # The admin deactivates it: its open session ends at once.
    g.pop("csrf_token", None)
    page = client.get("/admin/users/town02-clerk").get_data(as_text=True)
    r = client.post("/admin/users/town02-clerk", data={"csrf_token": csrf_from(page), "what": "deactivate"})
    assert r.status_code == 302
    r = other.get("/admin/households")
    assert r.status_code == 302 and "/admin/login" in r.headers["Location"]
    # The audit trail shows it, filtered and exported.
    page = client.get("/admin/audit?what=user.&who=admin").get_data(as_text=True)
    assert "user.create" in page and "user.update" in page
    r = client.get("/admin/audit?what=user.&format=xlsx")
    rows = list(load_workbook(io.BytesIO(r.data)).active.iter_rows(values_only=True))
    assert rows[0][:4] == ("序号", "时间", "操作人", "操作") and any(row[3] == "user.update" for row in rows[1:])
    r = client.get("/admin/audit?what=user.&format=csv")
    assert r.data.startswith("\ufeff序号".encode()) and b"user.create" in r.data


def test_a_clerk_cannot_open_another_villages_household_page_or_the_accounts(app, client, auth):
    hh = session.scalar(select(Household).where(Household.region_path.endswith("990101001002/")))
    hid = hh.id
    session.remove()
    auth.login("v001-clerk")
    assert client.get(f"/admin/households/{hid}").status_code == 403
    assert client.get("/admin/users").status_code == 403


def test_cli_import_gbk_bad_row_writes_nothing_then_xlsx_with_progress(app, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_bytes(("村代码,地址,户主姓名,联系电话,标签\n"
                     f"{V001},12组1号,甲,13800000001,独居老人\n"
                     f"{V001},12组2号,乙,13800000002,不存在的标签\n").encode("gbk"))
    before = _count()
    code, msg = run_import(app, str(bad), "v001-clerk")
    assert code == 1 and "第 3 行" in msg and "未知标签" in msg
    assert _count() == before
    good = tmp_path / "good.csv"
    good.write_bytes(("村代码,地址,户主姓名,联系电话,标签\n"
                      f"{V001},12组1号,甲,13800000001,独居老人\n").encode("gbk"))
    code, msg = run_import(app, str(good), "v001-clerk")
    assert code == 0 and "新增 1 户" in msg and _count() == before + 1


def _new_household(client, auth, name):
    return client.post("/api/v1/households", headers=auth.headers("v001-clerk"), json={
        "region_code": V001, "address": "13组1号", "head_name": name, "phone": "13800002222",
        "tags": "独居老人"}).get_json()["id"]


@pytest.mark.browser
def test_installer_pairs_ctv_new_0003_and_its_portal_shows_checkin(app, client, auth, live_server, browser):
    from device_fleet import operations as fleet_ops
    from portal_server.core.terminals import portal_url, terminal_by_serial

    hid = _new_household(client, auth, "林桂兰")
    term = terminal_by_serial("CTV-NEW-0003")
    fleet_ops.ensure_pairing_code(term)  # the box said hello and shows this code
    session.commit()  # the ingest commits after the operation (operations only flush)
    code = term.pairing_code
    session.remove()
    # The installer's phone: log in, open the household, type the code.
    phone = browser.new_context(viewport={"width": 390, "height": 844}, locale="zh-CN")
    p = phone.new_page()
    p.goto(f"{live_server}/admin/login?next=/m/households/{hid}")
    p.fill("input[name=username]", "v001-clerk")
    p.fill("input[name=password]", app.config["SETTINGS"].demo_password)
    p.click("button[type=submit]")
    p.wait_for_selector("#pair-form")
    assert p.evaluate("document.scrollingElement.scrollWidth") <= 390
    p.fill("#code", code)
    p.click("#pair-form button[type=submit]")
    p.wait_for_selector("#paired")
    phone.close()
    term = terminal_by_serial("CTV-NEW-0003")
    url = portal_url(term)
    session.remove()
    # The box follows its new portal URL: the home screen offers 报平安.
    tv = browser.new_context(viewport={"width": 1280, "height": 720}, locale="zh-CN")
    page = tv.new_page()
    page.goto(url)
    page.wait_for_selector('[data-action="checkin"]', state="visible", timeout=10000)
    tv.close()


@pytest.mark.browser
def test_household_list_and_page_fit_a_390px_phone(app, client, auth, live_server, browser):
    ctx = browser.new_context(viewport={"width": 390, "height": 844}, locale="zh-CN")
    p = ctx.new_page()
    p.goto(f"{live_server}/admin/login?next=/admin/households")
    p.fill("input[name=username]", "v001-clerk")
    p.fill("input[name=password]", app.config["SETTINGS"].demo_password)
    p.click("button[type=submit]")
    p.wait_for_selector("#households")
    for path in ("/admin/households", "/admin/households/map", "/admin/households/import"):
        p.goto(live_server + path)
        assert p.evaluate("document.scrollingElement.scrollWidth") <= 390, path
    href = p.goto(live_server + "/admin/households") and p.locator("#households a").first.get_attribute("href")
    p.goto(live_server + href)
    assert p.evaluate("document.scrollingElement.scrollWidth") <= 390
    assert re.search(r"\d{3}\*{4}\d{4}", p.inner_text("#summary"))
    p.screenshot(path="/tmp/registry-household-390.png", full_page=True)
    p.set_viewport_size({"width": 1280, "height": 800})
    p.goto(live_server + "/admin/households/map")
    p.screenshot(path="/tmp/registry-map.png", full_page=True)
    ctx.close()


def test_household_page_shows_its_feedback_and_box(app, client, auth, box):
    from portal_server.core.terminals import terminal_by_serial
    hid = terminal_by_serial("CTV-HH-000001").household_id
    session.remove()
    r = client.post("/api/v1/feedback", headers=box("CTV-HH-000001"), json={"category": "water", "content": "停水了"})
    code = r.get_json()["code"]
    auth.login("v001-clerk")
    page = client.get(f"/admin/households/{hid}").get_data(as_text=True)
    assert code in page and "供水" in page and "CTV-HH-000001" in page
