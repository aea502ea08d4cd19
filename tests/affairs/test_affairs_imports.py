"""Village finance and subsidy tables come in as staff really have them (core.imports): .xlsx, or CSV
saved by Chinese Excel (GBK) with Chinese headers; every bad row is named with its reason, and
nothing is written; the staff web previews the rows before 确认导入 creates the draft."""
from __future__ import annotations

import datetime as dt
import io

from openpyxl import Workbook
from sqlalchemy import func, select

from portal_server.affairs.models import Disclosure, FinanceEntry, SubsidyEntry
from portal_server.core import crypto
from portal_server.core.db import session
from tests.conftest import csrf_from

V1 = "990101001001"
GBK_FINANCE = ("月份,收支项目,收入（元）,支出（元）\n"
               "2026年10月,村集体光伏电站发电收入,\"1,200.50\",\n"
               "2026/10,农村人居环境整治保洁费,,800\n").encode("gbk")
#: Two bad rows (3: a negative amount, 5: neither income nor expense) around a good one.
TWO_BAD = ("月份,项目,收入,支出\n"
           "2026-10,上级转移支付,35000,\n"
           "2026-10,村干部误工补贴,,-14200\n"
           "2026-10,路灯电费,,1320.40\n"
           "2026-10,公开栏维护,,\n").encode("gbk")


def _count(model=Disclosure) -> int:
    session.remove()
    n = session.scalar(select(func.count(model.id)))
    session.remove()
    return n


def _post(client, auth, path, data: bytes, filename: str | None = None, user="v001-editor"):
    if filename:  # as a browser or a script uploads a file: multipart
        return client.post(path, data={"file": (io.BytesIO(data), filename)}, headers=auth.headers(user),
                           content_type="multipart/form-data")
    return client.post(path, data=data, headers={**auth.headers(user), "Content-Type": "text/csv"})


def test_a_gbk_csv_with_chinese_headers_imports(client, auth):
    r = _post(client, auth, f"/api/v1/affairs/finance/import?region={V1}", GBK_FINANCE)
    assert r.status_code == 201, r.get_data(as_text=True)
    d = r.get_json()
    assert d["status"] == "draft" and d["period"] == "2026-10"
    assert [(x["item"], x["income"], x["expense"]) for x in d["table"]["rows"]] == [
        ("村集体光伏电站发电收入", "1,200.50", "0.00"), ("农村人居环境整治保洁费", "0.00", "800.00")]
    subsidy = "姓名,补贴项目,金额,备注\n欧阳秀英,高龄津贴,300,80周岁以上\n李明,临时救助,1500.00,\n".encode("gbk")
    r = _post(client, auth, f"/api/v1/affairs/subsidy/import?region={V1}&period=2026Q3&title=补贴名单", subsidy,
              "补贴.csv")
    assert r.status_code == 201, r.get_data(as_text=True)
    t = r.get_json()["table"]
    assert t["total"] == "1,800.00" and "欧阳秀英" not in str(t) and t["rows"][0]["note"] == "80周岁以上"
    # Stored masked for the public, encrypted in full for staff.
    row = session.scalar(select(SubsidyEntry).where(SubsidyEntry.disclosure_id == r.get_json()["id"],
                                                    SubsidyEntry.line == 1))
    assert row.name_masked == t["rows"][0]["name"] and crypto.decrypt(row.name_enc) == "欧阳秀英"


def test_an_xlsx_workbook_imports(client, auth):
    wb = Workbook()
    ws = wb.active
    ws.append(["月份", "收支项目", "收入", "支出"])
    # Excel turns a typed "2026-10" into a date and keeps amounts as numbers.
    ws.append([dt.datetime(2026, 10, 1), "村集体鱼塘承包费", 8000, None])
    ws.append([dt.datetime(2026, 10, 1), "村内道路路灯电费", None, 1320.4])
    ws.append([dt.datetime(2026, 10, 1), "保洁费（公式算出）", None, 0.1 + 0.2])  # 0.30000000000000004
    buf = io.BytesIO()
    wb.save(buf)
    r = _post(client, auth, f"/api/v1/affairs/finance/import?region={V1}", buf.getvalue(), "财务收支.xlsx")
    assert r.status_code == 201, r.get_data(as_text=True)
    d = r.get_json()
    assert d["period"] == "2026-10" and d["table"]["total_income"] == "8,000.00"
    assert d["table"]["total_expense"] == "1,320.70" and d["status"] == "draft"


def test_a_file_with_two_bad_rows_lists_both_and_writes_nothing(client, auth):
    before, lines = _count(), _count(FinanceEntry)
    r = _post(client, auth, f"/api/v1/affairs/finance/import?region={V1}", TWO_BAD, "财务.csv")
    assert r.status_code == 400
    err = r.get_json()["error"]
    assert err["row"] == 3 and err["message"] == "第 3 行：支出不能为负数（整个文件未导入）", err
    assert err["rows"] == [{"row": 3, "message": "支出不能为负数"}, {"row": 5, "message": "收入和支出不能都为空"}]
    assert _count() == before and _count(FinanceEntry) == lines
    # Subsidy lists the same way: every bad row, in Chinese.
    bad = "姓名,补贴项目,金额\n,高龄津贴,300\n王秀英,高龄津贴,三百\n".encode()
    r = _post(client, auth, f"/api/v1/affairs/subsidy/import?region={V1}&period=2026Q3", bad)
    rows = r.get_json()["error"]["rows"]
    assert r.status_code == 400 and [x["row"] for x in rows] == [2, 3]
    assert "姓名不能为空" in rows[0]["message"] and "不是有效金额" in rows[1]["message"]
    assert _count() == before


def test_the_web_preview_is_checked_by_the_same_rules_and_a_token_imports_once(client, auth):
    auth.login("v001-editor")
    page = client.get("/admin/affairs/").get_data(as_text=True)
    before = _count()
    r = client.post("/admin/affairs/import/finance", data={
        "csrf_token": csrf_from(page), "region_code": V1, "file": (io.BytesIO(GBK_FINANCE), "财务.csv")},
        content_type="multipart/form-data")
    html = r.get_data(as_text=True)
    assert r.status_code == 200 and 'data-count="new">2<' in html and "村集体光伏电站发电收入" in html
    assert _count() == before  # a preview writes nothing
    token = html.split('name="token" value="')[1].split('"')[0]
    form = {"csrf_token": csrf_from(html), "token": token}
    r = client.post("/admin/affairs/import/finance/confirm", data=form)
    assert r.status_code == 303 and "/admin/affairs/d/" in r.headers["Location"]
    assert _count() == before + 1
    r = client.post("/admin/affairs/import/finance/confirm", data=form, follow_redirects=True)  # a second click
    assert "已经导入过" in r.get_data(as_text=True) and _count() == before + 1
    # Outside the editor's village: refused at the preview, in Chinese, nothing kept.
    r = client.post("/admin/affairs/import/finance", data={
        "csrf_token": csrf_from(html), "region_code": "990101001002", "file": (io.BytesIO(GBK_FINANCE), "财务.csv")},
        content_type="multipart/form-data", follow_redirects=True)
    assert "导入失败" in r.get_data(as_text=True) and 'id="confirm-form"' not in r.get_data(as_text=True)


def _no_sideways_scroll(page) -> None:
    assert page.evaluate("document.documentElement.scrollWidth") <= 390


def test_staff_preview_on_a_phone_shows_rows_and_bad_rows_before_writing(staff_page, live_server):
    before = _count()
    page = staff_page("v001-editor", 390, 844)
    page.goto(live_server + "/admin/affairs/")
    # A file with two bad rows: both named with their reasons, no confirm button, nothing written.
    page.set_input_files("#import-finance input[name=file]",
                         files=[{"name": "财务.csv", "mimeType": "text/csv", "buffer": TWO_BAD}])
    page.click("#import-finance button[type=submit]")
    page.wait_for_selector("#bad-rows")
    bad = page.inner_text("#bad-rows")
    assert "第 3 行" in bad and "支出不能为负数" in bad and "第 5 行" in bad and "收入和支出不能都为空" in bad
    assert page.query_selector("#confirm-form") is None and page.inner_text('[data-count="bad"]') == "2"
    _no_sideways_scroll(page)
    assert _count() == before
    # A good GBK file: the rows to import, then 确认导入 → the draft awaiting review.
    page.click("#preview a.button")  # 重新上传
    page.set_input_files("#import-finance input[name=file]",
                         files=[{"name": "财务.csv", "mimeType": "text/csv", "buffer": GBK_FINANCE}])
    page.click("#import-finance button[type=submit]")
    page.wait_for_selector("#confirm-form")
    rows = page.inner_text("#rows-new")
    assert "第 2 行" in rows and "村集体光伏电站发电收入" in rows and "1,200.50" in rows and "第 3 行" in rows
    assert page.inner_text('[data-count="new"]') == "2"
    _no_sideways_scroll(page)
    assert _count() == before
    page.click("#confirm-form button[type=submit]")
    page.wait_for_url(lambda u: "/admin/affairs/d/" in u)
    body = page.inner_text("main")
    assert "已导入" in body and "待审核" in body and "村集体光伏电站发电收入" in body
    _no_sideways_scroll(page)
    assert _count() == before + 1


def test_a_previewed_upload_is_kept_for_its_uploader_only_and_taken_once(app):
    from portal_server.core import imports
    from portal_server.core.accounts import user_by_username

    clerk, other = user_by_username("v001-editor"), user_by_username("town01-editor")
    token = imports.stash(clerk, GBK_FINANCE, "财务.csv", kind="finance", region_code=V1)
    assert imports.unstash(token, other) is None  # someone else's token: nothing, and it stays
    assert imports.unstash(token, clerk) == (GBK_FINANCE, "财务.csv", {"kind": "finance", "region_code": V1})
    assert imports.unstash(token, clerk) is None  # confirmed once only
