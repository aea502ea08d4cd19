"""The staff web's household import runs as a background job (core.imports): the page shows a real
progress bar ("已写入 n / N 户") while the rows are written, then the counts; a failure writes
nothing and says why in Chinese; only the user who started an import may read its progress."""
from __future__ import annotations

import io
import re
import time

from playwright.sync_api import expect
from sqlalchemy import func, select

from portal_server.core import imports, jobs
from portal_server.core.db import session
from portal_server.core.households import Household
from tests.conftest import csrf_from

V001 = "990101001001"
ROWS = 300


def _count() -> int:
    session.remove()
    n = session.scalar(select(func.count(Household.id)))
    session.remove()
    return n


def _csv(rows: int, start: int = 1, bad_last: bool = False) -> bytes:
    lines = ["村代码,地址,户主姓名,联系电话,标签"]
    for i in range(start, start + rows):
        lines.append(f"{V001},进度{i}号,进度户{i},139{i:08d},独居老人")
    if bad_last:
        lines[-1] = f"{V001},进度坏号,进度坏户,12345,"
    return "\n".join(lines).encode("gbk")


#: Records what the page shows while it polls (the test's eyes: the bar's value, its max, the text).
WATCH = """() => { window.__seen = []; setInterval(function () {
  var b = document.getElementById('import-bar'), p = document.getElementById('import-phase');
  window.__seen.push([b.value, b.max, p.textContent]); }, 20); }"""


def test_the_page_shows_real_progress_while_the_rows_are_written_then_the_counts(
        app, staff_page, live_server, monkeypatch):
    settings = app.config["SETTINGS"]
    settings.jobs_inline = False  # as in production: the confirm queues a job, a worker runs it
    # A few hundred rows take well under a second: slow each row a little so that a person (and
    # the test) can watch the bar move. The worker's forked work horse inherits the patch.
    real = imports.Progress.__call__

    def slow(self, n=1):
        time.sleep(0.004)
        real(self, n)
    monkeypatch.setattr(imports.Progress, "__call__", slow)
    before = _count()
    page = staff_page("v001-clerk")
    page.goto(live_server + "/admin/households/import")
    page.set_input_files("input[name=file]", files=[{"name": "进度.csv", "mimeType": "text/csv",
                                                      "buffer": _csv(ROWS)}])
    page.click("#upload-form button[type=submit]")
    page.wait_for_selector("#confirm-form")
    assert page.inner_text('[data-count="new"]') == str(ROWS)
    page.click("#confirm-form button[type=submit]")
    page.wait_for_selector("#import-job")
    assert "排队" in page.inner_text("#import-phase")
    page.evaluate(WATCH)
    assert _count() == before  # queued, nothing written yet
    session.remove()
    jobs.work(app, burst=True)  # a real RQ worker runs the queued import, then returns
    page.wait_for_selector("#import-done", timeout=20000)
    seen = page.evaluate("window.__seen")
    writing = [(v, m, t) for v, m, t in seen if t.startswith("已写入")]
    assert any(0 < v < m == ROWS for v, m, _t in writing), seen[-20:]
    assert any(re.fullmatch(rf"已写入 \d+ / {ROWS} 户", t) for _v, _m, t in writing)
    assert any(t.startswith("正在检查") for _v, _m, t in seen)  # the re-check has its own bar
    assert page.inner_text('#import-done [data-count="new"]') == str(ROWS)
    assert page.inner_text('#import-done [data-count="unchanged"]') == "0"
    assert _count() == before + ROWS
    page.click("#import-next a")
    expect(page.locator("body")).to_contain_text("住户名单")  # the list page once it has loaded


def test_a_failure_while_writing_writes_nothing_and_the_page_says_why(app, client, auth, monkeypatch):
    """The file was fine at preview, but a household of the same file got registered elsewhere before
    the confirm: the job's re-check finds it, rolls back, and the page shows the row and reason."""
    auth.login("v001-clerk")
    before = _count()
    form = client.get("/admin/households/import").get_data(as_text=True)
    data = _csv(50, start=1000)
    r = client.post("/admin/households/import", data={"csrf_token": csrf_from(form),
                                                      "file": (io.BytesIO(data), "a.csv")},
                    content_type="multipart/form-data")
    prev = r.get_data(as_text=True)
    token = re.search(r'name="token" value="([0-9a-f]+)"', prev).group(1)
    # Meanwhile the write itself breaks down half-way (the database refuses a row).
    from portal_server.registry import operations as ops
    real = ops._insert_new

    def broken(pending, next_number):
        real(pending, next_number)
        raise ops.RegistryError("数据库拒绝写入：测试中模拟的故障")
    monkeypatch.setattr(ops, "_insert_new", broken)
    r = client.post("/admin/households/import", data={"csrf_token": csrf_from(prev), "token": token})
    assert r.status_code == 303
    job = re.search(r"job=([\w-]+)", r.headers["Location"]).group(1)
    st = client.get(f"/admin/imports/{job}").get_json()
    assert st["status"] == "failed" and "测试中模拟的故障" in st["message"]
    assert _count() == before  # one transaction: the rows inserted before the failure are gone too


def test_a_bad_row_found_at_confirm_names_the_row(app, client, auth):
    auth.login("v001-clerk")
    job = imports.start(_user("v001-clerk"), "portal_server.registry.operations:run_household_import",
                        _csv(5, start=2000, bad_last=True), "b.csv", what="户")
    st = client.get(f"/admin/imports/{job}").get_json()
    assert st["status"] == "failed" and "未导入任何数据" in st["message"]
    assert st["rows"] == [{"row": 6, "message": st["rows"][0]["message"]}] and "电话" in st["rows"][0]["message"]


def test_only_the_user_who_started_an_import_may_read_it(app, client, auth):
    job = imports.start(_user("v001-clerk"), "portal_server.registry.operations:run_household_import",
                        _csv(3, start=3000), "c.csv", what="户")
    session.commit()
    auth.login("v002-clerk")
    r = client.get(f"/admin/imports/{job}")
    assert r.status_code == 404 and "找不到" in r.get_json()["error"]["message"]
    assert "找不到该导入任务" in client.get(f"/admin/households/import?job={job}",
                                        follow_redirects=True).get_data(as_text=True)
    auth.login("v001-clerk")
    assert client.get(f"/admin/imports/{job}").get_json()["result"]["new"] == 3


def _user(username):
    from portal_server.core.accounts import user_by_username
    return user_by_username(username)


def test_the_service_catalogue_import_uses_the_same_background_import(app, client, auth):
    """One mechanism in core: the catalogue's web import (services) is previewed, then written by
    the same job once confirmed, and its page follows the same progress."""
    auth.login("city-editor")
    page = client.get("/admin/services/").get_data(as_text=True)
    csv_text = ("code,name,type,category,department,implementer,basis,conditions,materials,steps,statutory_days,"
                "promised_days,fee,fee_basis,location,hours,visits,phone,local\n"
                + "".join(f"P-{i},进度事项{i},公共服务,民政/养老,市民政局,市民政局,,,,申请|受理,5,3,,,便民服务中心,,1,,否\n"
                          for i in range(1, 21)))
    r = client.post("/admin/services/import", data={"csrf_token": csrf_from(page),
                                                    "file": (io.BytesIO(csv_text.encode()), "c.csv")},
                    content_type="multipart/form-data")
    preview = r.get_data(as_text=True)  # the preview first: nothing is written before 确认导入
    assert r.status_code == 200 and 'data-count="new">20<' in preview
    token = re.search(r'name="token" value="(\w+)"', preview).group(1)
    r = client.post("/admin/services/import", data={"csrf_token": csrf_from(preview), "token": token})
    assert r.status_code == 303, r.get_data(as_text=True)
    job = re.search(r"job=([\w-]+)", r.headers["Location"]).group(1)
    assert 'id="import-job"' in client.get(r.headers["Location"]).get_data(as_text=True)
    st = client.get(f"/admin/imports/{job}").get_json()
    assert st["status"] == "done" and st["result"]["new"] == 20 and st["what"] == "项"
    assert "进度事项7" in client.get("/admin/services/").get_data(as_text=True)


def test_an_unexpected_error_writes_nothing_and_the_page_says_so(app, client, auth, monkeypatch):
    from portal_server.registry import operations as ops

    def boom(*a, **k):
        raise RuntimeError("disk full")
    monkeypatch.setattr(ops, "_insert_new", boom)
    before = _count()
    auth.login("v001-clerk")
    job = imports.start(_user("v001-clerk"), "portal_server.registry.operations:run_household_import",
                        _csv(4, start=4000), "d.csv", what="户")
    st = client.get(f"/admin/imports/{job}").get_json()
    assert st["status"] == "failed" and "服务器处理出错，未导入任何数据" in st["message"] and "disk" not in st["message"]
    assert _count() == before
