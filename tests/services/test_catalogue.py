"""The 全市通办 catalogue: at least 115 complete items shipped as a Chinese-header CSV, imported
idempotently by the demo seed and by `communitv services import` (UTF-8 or GBK); the first 17 codes stay."""
from __future__ import annotations

from click.testing import CliRunner

from portal_server.core.db import session
from portal_server.services import operations as ops
from portal_server.services.demo import CATALOGUE

FIRST_17 = [f"11360100MB000{c}" for c in ("1-001", "1-002", "1-003", "2-001", "2-002", "2-003", "3-001", "3-002",
                                          "3-003", "4-001", "4-002", "5-001", "6-001", "6-002", "7-001", "7-002",
                                          "8-001")]


def test_at_least_115_complete_items(client):
    body = client.get("/api/v1/services?per_page=200").get_json()
    items = body["items"]
    assert body["total"] >= 115 and len(items) == body["total"]
    for it in items:
        for key in ("name", "department", "basis", "conditions", "location", "hours", "phone"):
            assert it[key], (it["code"], key)
        assert it["materials"] and it["steps"], it["code"]
        assert isinstance(it["time_limit_days"], int) and it["time_limit_days"] <= it["statutory_days"] or not it["statutory_days"]
        assert it["handle_level"] in ("village", "town", "department") and isinstance(it["tv_apply"], bool)
    names = {it["name"] for it in items}
    for must in ("最低生活保障申请", "残疾人两项补贴申请", "城乡居民养老保险参保登记", "高龄津贴申领", "特困人员救助供养申请",
                 "居民身份证换领", "耕地地力保护补贴申报", "农村危房改造申请", "惠民殡葬补贴申领"):
        assert must in names, must
    codes = {it["code"] for it in items}
    assert set(FIRST_17) <= codes
    assert sum(it["tv_apply"] for it in items) >= 60 and sum(it["local"] for it in items) >= 60


def test_import_is_idempotent_and_reads_gbk(app):
    again = ops.import_file(CATALOGUE, "test")
    # Rows equal to the stored items are left alone (a re-import writes nothing).
    assert again["created"] == 0 and again["updated"] == 0 and again["unchanged"] >= 115
    text = CATALOGUE.read_text(encoding="utf-8").replace("高龄津贴申领", "高龄津贴申领（八十周岁以上）", 1)
    res = ops.import_table(text.encode("gb18030"), "test", filename="catalogue.csv")
    assert res["created"] == 0 and res["updated"] == 1
    from portal_server.services import queries
    assert queries.item_by_code("11360100MB0004-001").name == "高龄津贴申领（八十周岁以上）"
    session.rollback()


def test_cli_imports_a_file_and_names_a_bad_row(app, tmp_path, monkeypatch):
    from portal_server import cli
    monkeypatch.setattr(cli, "make_app", lambda: app)
    good = tmp_path / "catalogue.csv"
    good.write_bytes(CATALOGUE.read_bytes())
    r = CliRunner().invoke(cli.main, ["services", "import", str(good)])
    assert r.exit_code == 0 and "新增 0 项" in r.output, r.output
    lines = CATALOGUE.read_text(encoding="utf-8").splitlines()
    cells = lines[5].split(",")
    cells[2] = "不存在的类型"
    bad = tmp_path / "bad.csv"
    bad.write_text("\n".join(lines[:5] + [",".join(cells)] + lines[6:]), encoding="utf-8")
    r = CliRunner().invoke(cli.main, ["services", "import", str(bad)])
    assert r.exit_code != 0 and "第 6 行" in r.output, r.output
