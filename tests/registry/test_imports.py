"""core.imports and core.exports on their own: encodings, headers, row numbers, all or nothing."""
import io

import pytest
from openpyxl import Workbook, load_workbook

from portal_server.core import exports, imports

HEADERS = {"村代码": "code", "户主姓名": "name", "联系电话": "phone"}
TEXT = "村代码,户主姓名,联系电话\n990101001001,张三,13800000000\n\n990101001001,李四,13900000000\n"


@pytest.mark.parametrize("data", [TEXT.encode("gbk"), TEXT.encode("utf-8"), ("\ufeff" + TEXT).encode("utf-8"),
                                  TEXT.replace(",", ";").encode("gbk"), TEXT.encode("utf-16")])
def test_csv_in_any_encoding_staff_have_reads_the_same(data):
    rows = imports.read_table(data, "a.csv", HEADERS, ("code", "name"))
    assert [(r.number, r.values["name"]) for r in rows] == [(2, "张三"), (4, "李四")]  # blank row 3 keeps its number


def test_xlsx_numbers_and_headers():
    wb = Workbook()
    wb.active.append(["户主姓名", "联系电话", "备注", "村代码"])
    wb.active.append(["王五", 13812345678, "x", 990101001001])
    buf = io.BytesIO()
    wb.save(buf)
    rows = imports.read_table(buf.getvalue(), "a.xlsx", HEADERS, ("code",))
    assert rows[0].values == {"name": "王五", "phone": "13812345678", "code": "990101001001"}


@pytest.mark.parametrize("data,name,words", [
    (b"", "a.csv", "空"),
    ("姓名,电话\n张三,1\n".encode("gbk"), "a.csv", "村代码"),
    (b"\xd0\xcf\x11\xe0rest", "a.xls", ".xls"),
    (b"PK\x03\x04broken", "a.xlsx", "xlsx"),
    (b"\x81\x30\xff\xfe\x00\xd8\xff", "a.csv", "编码"),
])
def test_unreadable_files_say_why_in_chinese(data, name, words):
    with pytest.raises(imports.ImportFileError) as exc:
        imports.read_table(data, name, HEADERS, ("code",))
    assert exc.value.status == 400 and words in exc.value.message


def test_plan_sorts_rows_and_apply_is_all_or_nothing():
    rows = imports.read_table(TEXT.encode(), "a.csv", HEADERS, ("code",))

    def check(row, state):
        if row.values["name"] == "李四":
            raise imports.RowProblem("电话号码格式不正确")
        return imports.Planned(row.number, "new", row.values["name"])

    plan = imports.plan(rows, check)
    assert plan.counts() == {"new": 1, "updated": 0, "unchanged": 0, "bad": 1}
    written = []
    with pytest.raises(imports.ImportRejected) as exc:
        imports.apply(plan, written.append)
    assert written == [] and exc.value.extra["rows"] == [{"row": 4, "message": "电话号码格式不正确"}]


def test_a_csv_row_longer_than_its_header_is_a_bad_row_named_as_such():
    """An unquoted comma in a cell shifts the columns after it: the row is refused, not silently cut."""
    text = "村代码,户主姓名,联系电话\n990101001001,张三,13800000000\n990101001001,李,四,13900000000\n"
    rows = imports.read_table(text.encode("gbk"), "a.csv", HEADERS, ("code",))
    plan = imports.plan(rows, lambda row, state: imports.Planned(row.number, "new", row.values["name"]))
    assert plan.counts() == {"new": 1, "updated": 0, "unchanged": 0, "bad": 1}
    assert plan.bad[0].row == 3 and "列数多于表头" in plan.bad[0].message and "13900000000" in plan.bad[0].message


def test_xlsx_export_round_trips_chinese_and_lists():
    data = exports.xlsx_bytes(["户主", "标签"], [["张三", ["独居老人", "低保户"]]], "住户")
    ws = load_workbook(io.BytesIO(data)).active
    assert [c.value for c in ws[2]] == ["张三", "独居老人、低保户"]
