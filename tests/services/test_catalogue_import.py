"""The service catalogue import on core.imports, as a city editor uses it: an .xlsx workbook or a
GBK CSV with Chinese headers; a preview of new / updated / unchanged / bad rows before anything is
written; every bad row listed with its number and a Chinese reason; 确认导入 writes through the
shared background job; a department's editor still only imports its own department's items."""
from __future__ import annotations

import csv
import io
import re

from click.testing import CliRunner
from openpyxl import Workbook, load_workbook
from sqlalchemy import func, select

from portal_server.core.accounts import create_user
from portal_server.core.db import session
from portal_server.core.regions import region_by_code
from portal_server.services import queries
from portal_server.services.demo import CATALOGUE
from portal_server.services.models import ServiceItem
from tests.conftest import AuthActions, csrf_from


def _rows() -> list[list[str]]:
    """The shipped catalogue: header row first (UTF-8, Chinese headers)."""
    with open(CATALOGUE, encoding="utf-8") as fh:
        return list(csv.reader(fh))


def _new_rows(n: int, prefix: str = "N") -> list[list[str]]:
    """The header and ``n`` items not in the catalogue (copies of shipped rows with new codes and names)."""
    rows = _rows()
    out = [rows[0]]
    for i in range(1, n + 1):
        r = list(rows[i])
        r[0], r[1] = f"{prefix}-{i:03d}", f"导入测试事项{prefix}{i}"
        out.append(r)
    return out


def _csv(rows: list[list[str]], encoding: str = "utf-8") -> bytes:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    return buf.getvalue().encode(encoding)


def _xlsx(rows: list[list[str]]) -> bytes:
    wb = Workbook()
    ws = wb.active
    for r in rows:  # numbers typed as numbers, the way a clerk's workbook has them
        ws.append([int(c) if c.isdigit() and len(c) < 4 else c for c in r])
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def _count() -> int:
    return session.scalar(select(func.count(ServiceItem.id)))


def _upload(client, data: bytes, name: str):
    page = client.get("/admin/services/").get_data(as_text=True)
    return client.post("/admin/services/import", data={"csrf_token": csrf_from(page), "file": (io.BytesIO(data), name)},
                       content_type="multipart/form-data")


def _counts(html: str) -> dict[str, int]:
    return {k: int(v) for k, v in re.findall(r'data-count="(\w+)">(\d+)<', html)}


def _confirm(client, preview: str) -> dict:
    token = re.search(r'name="token" value="(\w+)"', preview).group(1)
    r = client.post("/admin/services/import", data={"csrf_token": csrf_from(preview), "token": token})
    assert r.status_code == 303, r.get_data(as_text=True)
    assert 'id="import-job"' in client.get(r.headers["Location"]).get_data(as_text=True)
    job = re.search(r"job=([\w-]+)", r.headers["Location"]).group(1)
    return client.get(f"/admin/imports/{job}").get_json()


def test_an_xlsx_catalogue_is_previewed_then_imported(app, client, auth):
    auth.login("city-editor")
    before = _count()
    r = _upload(client, _xlsx(_new_rows(3)), "事项目录.xlsx")
    page = r.get_data(as_text=True)
    assert r.status_code == 200 and _counts(page) == {"new": 3, "updated": 0, "unchanged": 0, "bad": 0}
    assert "确认导入" in page and "导入测试事项N2" in page
    session.remove()
    assert _count() == before  # the preview wrote nothing
    st = _confirm(client, page)
    assert st["status"] == "done" and st["result"] == {"new": 3, "updated": 0, "unchanged": 0}
    session.remove()
    item = queries.item_by_code("N-002")
    assert item.name == "导入测试事项N2" and item.promised_days == int(_rows()[2][11])
    assert _count() == before + 3


def test_a_gbk_csv_with_chinese_headers_imports_from_the_cli(app, tmp_path, monkeypatch):
    from portal_server import cli
    monkeypatch.setattr(cli, "make_app", lambda: app)
    f = tmp_path / "县里的表.csv"
    f.write_bytes(_csv(_new_rows(2, "G"), "gbk"))
    r = CliRunner().invoke(cli.main, ["services", "import", str(f)])
    assert r.exit_code == 0 and "新增 2 项" in r.output, r.output
    session.remove()
    assert queries.item_by_code("G-001").name == "导入测试事项G1"
    assert queries.item_by_code("G-001").category.path_names() == _rows()[1][3].split("/")


def test_two_bad_rows_are_both_listed_and_nothing_is_written(app, client, auth, tmp_path, monkeypatch):
    rows = _new_rows(4, "B")
    rows[2][2] = "不存在的类型"        # row 3
    rows[4][0] = "B-001"               # row 5: the same 事项编码 as row 2
    data = _csv(rows, "gbk")
    auth.login("city-editor")
    before = _count()
    r = _upload(client, data, "bad.csv")
    page = r.get_data(as_text=True)
    assert r.status_code == 200 and _counts(page)["bad"] == 2
    assert "导入失败" in page and 'id="confirm-form"' not in page
    bad = dict(re.findall(r'<tr data-row="(\d+)"><td>第 \d+ 行</td><td>([^<]+)</td>',
                          page.split('id="bad-rows"')[1].split("</table>")[0]))
    assert set(bad) == {"3", "5"}
    assert bad["3"].startswith("事项类型必须是以下之一：行政许可"), bad
    assert "B-001" in bad["5"] and "第 2 行" in bad["5"] and "重复" in bad["5"]
    # The CLI prints every bad row, not only the first, and writes nothing either.
    from portal_server import cli
    monkeypatch.setattr(cli, "make_app", lambda: app)
    f = tmp_path / "bad.csv"
    f.write_bytes(data)
    out = CliRunner().invoke(cli.main, ["services", "import", str(f)])
    assert out.exit_code != 0 and "第 3 行" in out.stderr and "第 5 行" in out.stderr, out.stderr
    session.remove()
    assert _count() == before and queries.item_by_code("B-002") is None


def test_reimporting_the_shipped_catalogue_previews_all_unchanged(app, client, auth):
    auth.login("city-editor")
    page = _upload(client, CATALOGUE.read_bytes(), "catalogue.csv").get_data(as_text=True)
    assert _counts(page) == {"new": 0, "updated": 0, "unchanged": 126, "bad": 0}
    st = _confirm(client, page)
    assert st["status"] == "done" and st["result"] == {"new": 0, "updated": 0, "unchanged": 126}


def test_an_edited_item_shows_as_updated_with_the_field_that_changes(app, client, auth):
    rows = _rows()
    code, promised = rows[6][0], int(rows[6][11])
    rows[6][11] = str(promised - 1 if promised > 0 else 0)
    rows[6][17] = "0791-88888888"
    auth.login("city-editor")
    page = _upload(client, _xlsx(rows), "catalogue.xlsx").get_data(as_text=True)
    assert _counts(page) == {"new": 0, "updated": 1, "unchanged": 125, "bad": 0}
    updated = page.split('id="rows-updated"')[1].split("</table>")[0]
    assert code in updated and "咨询电话" in updated and 'data-row="7"' in updated
    assert _confirm(client, page)["result"] == {"new": 0, "updated": 1, "unchanged": 125}
    session.remove()
    assert queries.item_by_code(code).phone == "0791-88888888"


def test_a_department_imports_only_its_own_items(app, client):
    create_user("dept-civil-editor", "pw-dept-civil-1", ["editor"], region_by_code("990100000000"),
                department_code="civil-affairs")
    session.commit()
    a = AuthActions(client, "pw-dept-civil-1")
    rows = _new_rows(2, "D")
    dept = rows[0].index("主管部门")
    rows[1][dept] = "市民政局"
    rows[2][dept] = "市人力资源和社会保障局"
    r = client.post("/api/v1/services/import", data=_csv(rows), headers={**a.headers("dept-civil-editor"),
                                                                        "Content-Type": "text/csv"})
    assert r.status_code == 403 and "本部门" in r.get_json()["error"]["message"]
    a.login("dept-civil-editor")
    r = _upload(client, _xlsx(rows), "d.xlsx")
    assert r.status_code == 403 and "本部门" in r.get_data(as_text=True)
    own = [rows[0], rows[1]]
    page = _upload(client, _xlsx(own), "d.xlsx").get_data(as_text=True)
    assert _counts(page)["new"] == 1
    session.remove()
    assert queries.item_by_code("D-001") is None and queries.item_by_code("D-002") is None


def test_the_template_workbook_has_the_chinese_headers_and_imports(app, client, auth):
    auth.login("city-editor")
    r = client.get("/admin/services/import/template.xlsx")
    assert r.status_code == 200
    ws = load_workbook(io.BytesIO(r.data)).active
    header = [c.value for c in ws[1]]
    assert header[:4] == ["事项编码", "事项名称", "事项类型", "所属类别"] and "村级可办" in header
    page = _upload(client, r.data, "模板.xlsx").get_data(as_text=True)
    assert _counts(page) == {"new": 1, "updated": 0, "unchanged": 0, "bad": 0}, page[:3000]


def _no_sideways_scroll(page) -> None:
    assert page.evaluate("document.documentElement.scrollWidth") <= 390


def test_on_a_phone_the_preview_then_the_progress_and_the_counts(staff_page, live_server):
    rows = _rows()
    code = rows[9][0]
    rows[9][14] = "镇（街道）便民服务中心二楼3号窗口"
    page = staff_page("city-editor", 390, 844)
    page.goto(live_server + "/admin/services/")
    _no_sideways_scroll(page)
    page.set_input_files("#import-form input[name=file]",
                         files=[{"name": "事项目录.xlsx", "buffer": _xlsx(rows),
                                 "mimeType": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}])
    page.click("#import-form button[type=submit]")
    page.wait_for_selector("#confirm-form")
    assert page.inner_text('[data-count="updated"]') == "1" and page.inner_text('[data-count="unchanged"]') == "125"
    updated = page.inner_text("#rows-updated")
    assert "第 10 行" in updated and code in updated and "办理地点" in updated
    _no_sideways_scroll(page)
    page.click("#confirm-form button[type=submit]")
    page.wait_for_selector('#import-job[data-status="done"]', timeout=20000)
    done = page.inner_text("#import-done")
    assert "更新 1 项" in done and "无变化 125 项" in done, done
    _no_sideways_scroll(page)
    session.remove()
    assert queries.item_by_code(code).location == "镇（街道）便民服务中心二楼3号窗口"


def test_the_api_previews_and_lists_every_bad_row(client, auth):
    h = {**auth.headers("city-editor"), "Content-Type": "text/csv"}
    rows = _new_rows(3, "A")
    r = client.post("/api/v1/services/import?preview=1", data=_csv(rows, "gbk"), headers=h)
    assert r.status_code == 200 and r.get_json()["counts"] == {"new": 3, "updated": 0, "unchanged": 0, "bad": 0}
    assert client.get("/api/v1/services/A-001").status_code == 404  # a preview writes nothing
    rows[1][10], rows[3][11] = "十天", "abc"  # 法定时限 of row 2, 承诺时限 of row 4
    r = client.post("/api/v1/services/import", data=_csv(rows), headers=h)
    err = r.get_json()["error"]
    assert r.status_code == 400 and err["row"] == 2 and "第 2 行" in err["message"]
    assert [b["row"] for b in err["rows"]] == [2, 4] and "法定时限" in err["rows"][0]["message"]
    assert client.get("/api/v1/services/A-002").status_code == 404
    r = client.post("/api/v1/services/import", data=_xlsx(_new_rows(3, "A")), headers=h)
    assert r.status_code == 200 and r.get_json() == {"created": 3, "updated": 0, "unchanged": 0}


def test_a_second_demo_seed_leaves_the_catalogue_alone(app):
    from portal_server.core.audit import AuditEvent
    from portal_server.demo import SeedContext
    from portal_server.services import demo
    item = queries.item_by_code(_rows()[1][0])
    item.phone = "0791-00000000"  # a staff edit survives a re-seed
    session.commit()
    imports_before = session.scalar(select(func.count(AuditEvent.id)).where(AuditEvent.action == "services.csv_import"))
    ctx = SeedContext(city=None, towns=[], villages=[], users={})
    demo.seed(ctx)
    session.commit()
    assert ctx.created.get("service_items", 0) == 0
    assert session.scalar(select(func.count(AuditEvent.id)).where(
        AuditEvent.action == "services.csv_import")) == imports_before
    assert queries.item_by_code(_rows()[1][0]).phone == "0791-00000000"
