"""Exports of any list staff work with: .xlsx (openpyxl, write-only for big lists) and CSV.

``xlsx_response("住户名单", ["户号", "户主"], rows)`` answers a download of one sheet;
``workbook_response("统计概览.xlsx", [(title, headers, rows), ...])`` one of several sheets. File
names keep their Chinese characters (RFC 5987).
"""
from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from urllib.parse import quote

from flask import Response
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter

from . import clock

XLSX_MIME = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _plain(v):
    if v is None:
        return ""
    if isinstance(v, (list, tuple, set)):
        return "、".join(str(x) for x in v)
    if hasattr(v, "tzinfo") and hasattr(v, "hour"):
        return clock.fmt(v)
    return v


def workbook(sheets: Sequence[tuple[str, Sequence[str], Iterable[Sequence]]]) -> bytes:
    """An xlsx file from ``(title, headers, rows)`` per sheet: bold headers, columns sized to them."""
    wb = Workbook(write_only=True)
    for title, headers, rows in sheets:
        ws = wb.create_sheet(title=(title or "Sheet1")[:31])
        for i, h in enumerate(headers, start=1):
            ws.column_dimensions[get_column_letter(i)].width = max(8, min(40, len(str(h)) * 2 + 4))
        ws.freeze_panes = "A2"
        head = []
        for h in headers:
            c = WriteOnlyCell(ws, value=h)
            c.font = Font(bold=True)
            head.append(c)
        ws.append(head)
        for r in rows:
            ws.append([_plain(v) for v in r])
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def xlsx_bytes(headers: Sequence[str], rows: Iterable[Sequence], sheet_title: str = "Sheet1") -> bytes:
    """A workbook with one sheet: a bold header row, then ``rows`` (values as given)."""
    return workbook([(sheet_title, headers, rows)])


def csv_bytes(headers: Sequence[str], rows: Iterable[Sequence]) -> bytes:
    """UTF-8 with BOM, which Chinese Excel opens without garbling."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(headers)
    for r in rows:
        w.writerow([_plain(v) for v in r])
    return ("\ufeff" + buf.getvalue()).encode("utf-8")


def _disposition(name: str, ext: str) -> str:
    return f"attachment; filename=\"export.{ext}\"; filename*=UTF-8''{quote(name)}"


def xlsx_response(title: str, headers: Sequence[str], rows: Iterable[Sequence]) -> Response:
    """A download of the list as .xlsx, named after ``title`` and the city date."""
    return Response(xlsx_bytes(headers, rows, title), mimetype=XLSX_MIME,
                    headers={"Content-Disposition": _disposition(f"{title}-{clock.today().isoformat()}.xlsx", "xlsx")})


def workbook_response(filename: str, sheets) -> Response:
    """A download of ``workbook(sheets)`` named ``filename``."""
    return Response(workbook(sheets), mimetype=XLSX_MIME, headers={"Content-Disposition": _disposition(filename, "xlsx")})


def csv_response(title: str, headers: Sequence[str], rows: Iterable[Sequence]) -> Response:
    """A download of the list as CSV (UTF-8 with BOM)."""
    return Response(csv_bytes(headers, rows), mimetype="text/csv; charset=utf-8",
                    headers={"Content-Disposition": _disposition(f"{title}-{clock.today().isoformat()}.csv", "csv")})
