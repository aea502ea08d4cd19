"""One import helper for every table staff bring in (households, terminals, service items, finance).

Staff have their tables as Excel workbooks (.xlsx) or as CSV saved by Chinese Excel, which writes
GBK. ``read_table`` takes the uploaded bytes, finds out which of the two it is (and which text
encoding), matches the Chinese header row to field names and yields each data row with its row
number as the clerk sees it in Excel (the header is row 1). ``plan`` checks every row with the
feature's ``check`` function and sorts them into new / updated / unchanged / bad: the preview the
staff web shows before anything is written. ``apply`` refuses a plan with a bad row (all or
nothing) and otherwise runs the feature's write for each row in the caller's transaction, with a
progress callback for the CLI's bar and the web page.
"""
from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from .api import ApiError

#: Most rows shown per group in a preview page (the counts are always complete).
PREVIEW_LIMIT = 200

KIND_NAMES = {"new": "新增", "updated": "更新", "unchanged": "无变化", "bad": "有错误"}


class ImportFileError(ApiError):
    """400: the file itself cannot be read (format, encoding, header row). Message in Chinese."""

    def __init__(self, message: str):
        super().__init__(400, "bad_file", message)


class RowProblem(ValueError):
    """Raised by a feature's row check: the message (Chinese) says what is wrong with the row."""


@dataclass
class RowError:
    row: int
    message: str

    def to_dict(self) -> dict:
        return {"row": self.row, "message": self.message}


class ImportRejected(ApiError):
    """400 with ``error.rows`` [{row, message}]: at least one bad row, nothing was written."""

    def __init__(self, rows: list[RowError]):
        first = rows[0]
        more = f"等 {len(rows)} 行" if len(rows) > 1 else ""
        super().__init__(400, "bad_rows", f"第 {first.row} 行{more}有错误，未导入任何数据：{first.message}",
                         rows=[r.to_dict() for r in rows])
        self.rows = rows


@dataclass
class Row:
    """One data row: its number in the sheet (header = 1) and its values by field name."""

    number: int
    values: dict[str, str]


# Reading -------------------------------------------------------------------------------------

def decode_text(data: bytes) -> str:
    """CSV bytes → text: UTF-8 (with or without BOM) or GBK/GB18030, whichever the bytes are.

    GBK text is practically never valid UTF-8 (its two-byte sequences break UTF-8's continuation
    rules), so trying strict UTF-8 first and GB18030 (a superset of GBK) second tells them apart.
    """
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    elif data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            raise ImportFileError("文件编码无法识别：请另存为 UTF-8 或 GBK 编码的 CSV，或 .xlsx 工作簿") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("gb18030")
    except UnicodeDecodeError:
        raise ImportFileError("文件编码无法识别：既不是 UTF-8 也不是 GBK。请在 Excel 中另存为 CSV（UTF-8 或 GBK）"
                              "或 .xlsx 工作簿") from None


def _cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float) and v.is_integer():
        v = int(v)  # Excel keeps numbers typed into a cell (phone numbers) as floats
    if hasattr(v, "strftime"):
        return v.strftime("%Y-%m-%d")
    return str(v).strip()


def _xlsx_rows(data: bytes) -> Iterable[list[str]]:
    from openpyxl import load_workbook

    try:
        wb = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception:  # noqa: BLE001 - openpyxl raises many kinds for a damaged or foreign workbook
        raise ImportFileError("无法打开 .xlsx 工作簿：文件已损坏或不是 Excel 2007 及以上格式（.xls 请另存为 .xlsx）") from None
    ws = wb.worksheets[0]
    for values in ws.iter_rows(values_only=True):
        yield [_cell(v) for v in values]
    wb.close()


def _csv_rows(data: bytes) -> Iterable[list[str]]:
    text = decode_text(data)
    # The delimiter is the one the header row uses most (Chinese Excel may write ; or tabs);
    # judging by the header alone keeps a stray ; inside a data cell from misleading us.
    header = text.split("\n", 1)[0]
    delimiter = max((",", "\t", ";"), key=header.count)
    for values in csv.reader(io.StringIO(text), delimiter=delimiter if header.count(delimiter) else ","):
        yield [_cell(v) for v in values]


def is_xlsx(data: bytes, filename: str = "") -> bool:
    """A workbook is a zip file (starts with PK); the name alone is not trusted."""
    return data[:4] == b"PK\x03\x04" and (filename.lower().endswith((".xlsx", ".xlsm")) or _looks_like_xlsx(data))


def _looks_like_xlsx(data: bytes) -> bool:
    try:
        return "xl/workbook.xml" in zipfile.ZipFile(io.BytesIO(data)).namelist()
    except zipfile.BadZipFile:
        return False


def read_table(data: bytes, filename: str, headers: dict[str, str],
               required: Iterable[str] = ()) -> list[Row]:
    """The data rows of an uploaded .xlsx or .csv.

    ``headers`` maps each accepted header text (Chinese, or an English alias) to a field name;
    ``required`` lists the field names whose column must be there. Blank rows are skipped but
    keep their numbers counted, so "第 N 行" is the row the clerk sees in Excel.
    """
    if not data:
        raise ImportFileError("文件是空的")
    name = (filename or "").lower()
    if name.endswith(".xls") and data[:4] == b"\xd0\xcf\x11\xe0":
        raise ImportFileError("不支持旧版 .xls 文件：请在 Excel 中另存为 .xlsx 或 CSV")
    rows_iter = _xlsx_rows(data) if is_xlsx(data, name) else _csv_rows(data)
    norm = {k.strip().lower(): v for k, v in headers.items()}
    columns: list[str | None] | None = None
    out: list[Row] = []
    for number, values in enumerate(rows_iter, start=1):
        if columns is None:
            if not any(values):
                raise ImportFileError("第 1 行应为表头（例如：" + "、".join(list(headers)[:5]) + "）")
            columns = [norm.get(v.strip().lstrip("\ufeff").lower()) for v in values]
            missing = [h for h, f in headers.items() if f in set(required) and f not in columns]
            # one name per missing field (the first header text mapping to it)
            seen, names = set(), []
            for h in missing:
                f = headers[h]
                if f not in seen:
                    seen.add(f)
                    names.append(h)
            if names:
                found = "、".join(v for v in values if v) or "（空）"
                raise ImportFileError(f"表头缺少列：{'、'.join(names)}。第 1 行是：{found}")
            continue
        if not any(values):
            continue
        rec = {}
        for col, v in zip(columns, values):
            if col is not None and col not in rec:
                rec[col] = v
        out.append(Row(number, rec))
    if columns is None:
        raise ImportFileError("文件是空的")
    return out


# Planning and applying -------------------------------------------------------------------------

@dataclass
class Planned:
    """A checked row: what will happen to it (``kind``), a label for the preview, and what the
    feature's write needs (``payload``)."""

    row: int
    kind: str  # new | updated | unchanged
    label: str
    payload: Any = None


@dataclass
class Plan:
    items: list[Planned] = field(default_factory=list)
    bad: list[RowError] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.bad

    def of(self, kind: str) -> list[Planned]:
        return [p for p in self.items if p.kind == kind]

    def counts(self) -> dict[str, int]:
        c = {"new": 0, "updated": 0, "unchanged": 0, "bad": len(self.bad)}
        for p in self.items:
            c[p.kind] += 1
        return c

    def preview(self) -> dict:
        """The preview as plain data (for the staff web page and the API)."""
        return {"counts": self.counts(),
                **{k: [{"row": p.row, "label": p.label} for p in self.of(k)[:PREVIEW_LIMIT]]
                   for k in ("new", "updated", "unchanged")},
                "bad": [b.to_dict() for b in self.bad[:PREVIEW_LIMIT]]}


Check = Callable[[Row, dict], "Planned"]


def plan(rows: list[Row], check: Check) -> Plan:
    """Run ``check(row, state)`` on every row. ``state`` is one dict shared across rows (for
    duplicate checks within the file); a RowProblem becomes a bad row with its message."""
    result = Plan()
    state: dict = {}
    for row in rows:
        try:
            result.items.append(check(row, state))
        except RowProblem as exc:
            result.bad.append(RowError(row.number, str(exc)))
    return result


def apply(result: Plan, write: Callable[[Planned], Any],
          progress: Callable[[int], Any] | None = None) -> int:
    """Write every new/updated row with ``write`` in the caller's transaction (which commits once);
    nothing at all when the plan has a bad row (ImportRejected). Returns the rows written."""
    if result.bad:
        raise ImportRejected(result.bad)
    n = 0
    for p in result.items:
        if p.kind != "unchanged":
            write(p)
            n += 1
        if progress is not None:
            progress(1)
    return n
