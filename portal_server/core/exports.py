"""Exports of any list staff work with: .xlsx (openpyxl, write-only for big lists) and CSV.

``xlsx_response("住户名单", ["户号", "户主"], rows)`` answers a download; the file name is the
Chinese title plus the city date, sent with RFC 5987 encoding so browsers keep the characters.
"""
from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from urllib.parse import quote

from flask import Response

from . import clock

XLSX_MIME = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def xlsx_bytes(headers: Sequence[str], rows: Iterable[Sequence], sheet_title: str = "Sheet1") -> bytes:
    """A workbook with one sheet: a bold header row, then ``rows`` (values as given)."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font

    wb = Workbook(write_only=True)
    ws = wb.create_sheet(title=sheet_title[:31] or "Sheet1")
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


def _plain(v):
    if v is None:
        return ""
    if isinstance(v, (list, tuple, set)):
        return "、".join(str(x) for x in v)
    if hasattr(v, "tzinfo") and hasattr(v, "hour"):
        return clock.fmt(v)
    return v


def csv_bytes(headers: Sequence[str], rows: Iterable[Sequence]) -> bytes:
    """UTF-8 with BOM, which Chinese Excel opens without garbling."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(headers)
    for r in rows:
        w.writerow([_plain(v) for v in r])
    return ("\ufeff" + buf.getvalue()).encode("utf-8")


def _disposition(title: str, ext: str) -> str:
    name = f"{title}-{clock.today().isoformat()}.{ext}"
    return f"attachment; filename=\"export.{ext}\"; filename*=UTF-8''{quote(name)}"


def xlsx_response(title: str, headers: Sequence[str], rows: Iterable[Sequence]) -> Response:
    """A download of the list as .xlsx."""
    return Response(xlsx_bytes(headers, rows, title), mimetype=XLSX_MIME,
                    headers={"Content-Disposition": _disposition(title, "xlsx")})


def csv_response(title: str, headers: Sequence[str], rows: Iterable[Sequence]) -> Response:
    """A download of the list as CSV (UTF-8 with BOM)."""
    return Response(csv_bytes(headers, rows), mimetype="text/csv; charset=utf-8",
                    headers={"Content-Disposition": _disposition(title, "csv")})
