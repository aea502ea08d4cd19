"""xlsx exports of any list (openpyxl): one helper for every feature's "导出 Excel" button."""
from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from urllib.parse import quote

from flask import Response
from openpyxl import Workbook
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter

XLSX_MIME = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def workbook(sheets: Sequence[tuple[str, Sequence[str], Iterable[Sequence]]]) -> bytes:
    """An xlsx file from ``(title, headers, rows)`` per sheet; headers bold, columns sized."""
    wb = Workbook()
    wb.remove(wb.active)
    for title, headers, rows in sheets:
        ws = wb.create_sheet(title[:31])
        ws.append(list(headers))
        for cell in ws[1]:
            cell.font = Font(bold=True)
        widths = [max(6, len(str(h)) * 2) for h in headers]
        for row in rows:
            row = ["" if v is None else v for v in row]
            ws.append(row)
            for i, v in enumerate(row[:len(widths)]):
                widths[i] = min(60, max(widths[i], len(str(v)) + 2))
        for i, w in enumerate(widths, start=1):
            ws.column_dimensions[get_column_letter(i)].width = w
        ws.freeze_panes = "A2"
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def xlsx_response(filename: str, sheets) -> Response:
    """A download of ``workbook(sheets)`` named ``filename`` (Chinese names kept, RFC 5987)."""
    data = workbook(sheets)
    resp = Response(data, mimetype=XLSX_MIME)
    resp.headers["Content-Disposition"] = f"attachment; filename=export.xlsx; filename*=UTF-8''{quote(filename)}"
    return resp
