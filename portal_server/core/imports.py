"""One import helper for every table staff bring in (households, terminals, service items, finance).

Staff have their tables as Excel workbooks (.xlsx) or as CSV saved by Chinese Excel, which writes
GBK. ``read_table`` takes the uploaded bytes, finds out which of the two it is (and which text
encoding), matches the Chinese header row to field names and yields each data row with its row
number as the clerk sees it in Excel (the header is row 1). ``plan`` checks every row with the
feature's ``check`` function and sorts them into new / updated / unchanged / bad: the preview the
staff web shows before anything is written. ``apply`` refuses a plan with a bad row (all or
nothing) and otherwise runs the feature's write for each row in the caller's transaction, with a
progress callback for the CLI's bar and the web page.

The staff web runs the confirmed import as a background job (``start`` → the RQ job ``run_job``):
the feature's runner checks and writes the rows in one transaction while a ``Progress`` puts
"phase, done, total" in Redis under a random import id; the page polls ``status`` (only the user
who started it may read it: GET /admin/imports/<id>) and shows a real bar, then the counts — or
the reason in Chinese when nothing was written.
"""
from __future__ import annotations

import csv
import io
import json
import logging
import secrets
import time
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from flask import current_app

from . import jobs
from . import redis as core_redis
from .accounts import user_by_username
from .api import ApiError
from .db import session

log = logging.getLogger(__name__)

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
    #: What is wrong with the row whatever the feature's rules (a CSV row longer than its header):
    #: ``plan`` reports it as a bad row without asking the feature.
    problem: str = ""


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
               required: Iterable[str] = (), labels: dict[str, str] | None = None) -> list[Row]:
    """The data rows of an uploaded .xlsx or .csv.

    ``headers`` maps each accepted header text (Chinese, or an English alias) to a field name;
    ``required`` lists the field names whose column must be there. Blank rows are skipped but
    keep their numbers counted, so "第 N 行" is the row the clerk sees in Excel. ``labels``, when
    given, is filled with each field's header text as the file writes it (a row's reason can then
    name the column the way the clerk's own table does: 支出, or expense).
    """
    if not data:
        raise ImportFileError("文件是空的")
    name = (filename or "").lower()
    if name.endswith(".xls") and data[:4] == b"\xd0\xcf\x11\xe0":
        raise ImportFileError("不支持旧版 .xls 文件：请在 Excel 中另存为 .xlsx 或 CSV")
    csv_file = not is_xlsx(data, name)
    rows_iter = _csv_rows(data) if csv_file else _xlsx_rows(data)
    norm = {k.strip().lower(): v for k, v in headers.items()}
    columns: list[str | None] | None = None
    out: list[Row] = []
    for number, values in enumerate(rows_iter, start=1):
        if columns is None:
            if not any(values):
                raise ImportFileError("第 1 行应为表头（例如：" + "、".join(list(headers)[:5]) + "）")
            columns = [norm.get(v.strip().lstrip("\ufeff").lower()) for v in values]
            if labels is not None:
                for col, v in zip(columns, values):
                    if col is not None and col not in labels:
                        labels[col] = v.strip().lstrip("\ufeff")
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
        extra = [v for v in values[len(columns):] if v.strip()] if csv_file else []
        problem = (f"列数多于表头：多出 {len(extra)} 列（{'、'.join(extra[:3])}），"
                   "可能是某一格里有未加引号的逗号") if extra else ""
        out.append(Row(number, rec, problem))
    if columns is None:
        raise ImportFileError("文件是空的")
    return out


def read_upload(data: bytes | str, filename: str, headers: dict[str, str], required: Iterable[str] = (),
                empty: str = "文件中没有数据行") -> tuple[list[Row], dict[str, str]]:
    """``read_table`` for an upload answered row by row ("第 N 行：…（整个文件未导入）", code
    ``bad_csv``): a wrong header row is row 1, a file without data rows says ``empty`` at row 2.
    Returns the rows and each field's header text as the file writes it (the field name when the
    file has no such column)."""
    if isinstance(data, str):
        data = data.lstrip("\ufeff").encode("utf-8")
    labels: dict[str, str] = {}
    try:
        rows = read_table(data, filename or "", headers, required, labels=labels)
    except ImportFileError as exc:
        if exc.message.startswith(("表头", "第 1 行")):  # the header row itself is wrong: row 1
            raise ApiError(400, "bad_csv", f"第 1 行：{exc.message}（整个文件未导入）", row=1) from None
        raise
    if not rows:
        raise ApiError(400, "bad_csv", f"第 2 行：{empty}（整个文件未导入）", row=2)
    for f in set(headers.values()):
        labels.setdefault(f, f)
    return rows, labels


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


def plan(rows: list[Row], check: Check, progress: Callable[[int], Any] | None = None) -> Plan:
    """Run ``check(row, state)`` on every row. ``state`` is one dict shared across rows (for
    duplicate checks within the file); a RowProblem becomes a bad row with its message."""
    result = Plan()
    state: dict = {}
    for row in rows:
        if row.problem:
            result.bad.append(RowError(row.number, row.problem))
            if progress is not None:
                progress(1)
            continue
        try:
            result.items.append(check(row, state))
        except RowProblem as exc:
            result.bad.append(RowError(row.number, str(exc)))
        if progress is not None:
            progress(1)
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


# Keeping a previewed upload until the clerk confirms it -------------------------------------------

_STASH = "ctv:import:stash:{}"


def stash(user, data: bytes, filename: str, **meta) -> str:
    """Keep an uploaded file (and what the form said with it: ``meta``, plain JSON values) for the
    confirm step after its preview; in Redis for DATA_TTL_S, readable only by ``user``. Returns the
    token the preview page's confirm form sends back."""
    token = secrets.token_hex(16)
    key = _STASH.format(token)
    with _redis().pipeline() as pipe:
        pipe.hset(key, mapping={"user": user.username, "filename": filename or "",
                                "meta": json.dumps(meta, ensure_ascii=False), "data": data})
        pipe.expire(key, DATA_TTL_S)
        pipe.execute()
    return token


def unstash(token: str, user) -> tuple[bytes, str, dict] | None:
    """The stashed (data, filename, meta) of ``token``, taken out once: None when it expired, was
    already confirmed (a second click imports nothing twice) or was stashed by someone else."""
    if not token or len(token) > 64:
        return None
    r = _redis()
    key = _STASH.format(token)
    raw = r.hgetall(key)
    if not raw or raw.get(b"user", b"").decode() != user.username:
        return None
    if not r.delete(key):  # another request took it first
        return None
    return raw[b"data"], raw.get(b"filename", b"").decode(), json.loads(raw.get(b"meta", b"{}").decode() or "{}")


def start_stashed(token: str, user, runner: str, what: str = "") -> str | None:
    """确认导入 of a previewed upload: the file stashed for ``user`` (taken once) queued for
    ``runner`` as ``start`` does, which checks it again; None when it expired or was used."""
    stashed = unstash(token, user)
    if stashed is None:
        return None
    data, filename, _meta = stashed
    return start(user, runner, data, filename, what=what)


# Running a confirmed import in the background, with progress the web page polls ------------------

#: Redis keys of one import: its state (a hash) and the uploaded bytes (any worker host reads them).
_STATE = "ctv:import:{}"
_DATA = "ctv:import:{}:data"
#: How long the state (and so the result page) and the uploaded bytes are kept.
STATE_TTL_S = 24 * 3600
DATA_TTL_S = 3600
#: A running import whose progress has not moved for this long is reported as stopped (the worker
#: died: its transaction never committed, so nothing was written).
STALL_S = 300
#: Phases of an import as the page names them.
PHASES = {"queued": "排队等待", "check": "正在检查", "write": "已写入", "commit": "正在保存"}


def _redis():
    return core_redis.client()


class Progress:
    """The progress callback of a background import: ``phase(name, total)`` then ``progress(n)``
    per row; written to Redis at most every ``every_s`` seconds (and at each phase's end)."""

    def __init__(self, import_id: str, every_s: float = 0.2):
        self.key, self.every_s = _STATE.format(import_id), every_s
        self.name, self.done, self.total, self._last = "queued", 0, 0, 0.0

    def phase(self, name: str, total: int = 0) -> None:
        self.name, self.done, self.total = name, 0, total
        self._write()

    def __call__(self, n: int = 1) -> None:
        self.done += n
        now = time.monotonic()
        if now - self._last >= self.every_s or self.done >= self.total:
            self._write(now)

    def _write(self, now: float | None = None) -> None:
        self._last = now if now is not None else time.monotonic()
        _redis().hset(self.key, mapping={"phase": self.name, "done": self.done, "total": self.total,
                                         "updated_at": time.time()})


def start(user, runner: str, data: bytes, filename: str, what: str = "") -> str:
    """Queue the import of ``data`` by ``runner`` ("package.module:function", called in the job as
    ``runner(user, data, filename, progress)``; it re-checks every row in the user's scope, writes
    them, and returns the counts to show, e.g. {"new": 3, "updated": 1, "unchanged": 0}). The job
    commits once; a failure writes nothing. Returns the import id the page polls."""
    import_id = secrets.token_urlsafe(16)
    r = _redis()
    with r.pipeline() as pipe:
        pipe.hset(_STATE.format(import_id), mapping={
            "user": user.username, "runner": runner, "filename": filename or "", "what": what,
            "status": "queued", "phase": "queued", "done": 0, "total": 0, "message": "", "result": "",
            "rows": "", "started_at": time.time(), "updated_at": time.time()})
        pipe.expire(_STATE.format(import_id), STATE_TTL_S)
        pipe.set(_DATA.format(import_id), data, ex=DATA_TTL_S)
        pipe.execute()
    try:
        jobs.enqueue("portal_server.core.imports:run_job", import_id, timeout_s=1800)
    except Exception:  # run inline (jobs_inline) and failed: its state already says why
        if current_app.config["SETTINGS"].jobs_inline:
            log.exception("import %s failed inline", import_id)
        else:
            _finish(import_id, status="failed", message="无法提交导入任务（后台服务不可用），未导入任何数据，请稍后重试")
    return import_id


def _finish(import_id: str, **fields) -> None:
    r = _redis()
    fields["updated_at"] = time.time()
    r.hset(_STATE.format(import_id), mapping={k: v if isinstance(v, (str, int, float)) else json.dumps(
        v, ensure_ascii=False) for k, v in fields.items()})
    r.delete(_DATA.format(import_id))


def run_job(import_id: str) -> dict | None:
    """The RQ job: run the import's runner in one transaction, keeping its progress in Redis."""
    r = _redis()
    state = {k.decode(): v.decode() for k, v in r.hgetall(_STATE.format(import_id)).items()}
    if not state or state.get("status") != "queued":
        return None  # unknown, expired, or already run (a retried job never writes twice)
    r.hset(_STATE.format(import_id), mapping={"status": "running", "updated_at": time.time()})
    user = user_by_username(state["user"])
    data = r.get(_DATA.format(import_id))
    if user is None or not user.active:
        _finish(import_id, status="failed", message="账号已停用，未导入任何数据")
        return None
    if data is None:
        _finish(import_id, status="failed", message="上传的文件已过期，请重新上传，未导入任何数据")
        return None
    progress = Progress(import_id)
    try:
        result = jobs.resolve(state["runner"])(user, data, state.get("filename", ""), progress)
        progress.phase("commit")
        session.commit()
    except ApiError as exc:
        session.rollback()
        _finish(import_id, status="failed", message=exc.message, rows=exc.extra.get("rows") or [])
        return None
    except Exception:
        session.rollback()
        _finish(import_id, status="failed", message="导入失败：服务器处理出错，未导入任何数据。请稍后重试或联系管理员")
        log.exception("import %s (%s) failed", import_id, state.get("runner"))
        raise
    _finish(import_id, status="done", result=result or {})
    return result


def status(import_id: str, user) -> dict | None:
    """The import's state for the page that polls it, or None (unknown, expired, or started by
    someone else: nobody reads another user's import)."""
    if not import_id or len(import_id) > 64:
        return None
    raw = _redis().hgetall(_STATE.format(import_id))
    state = {k.decode(): v.decode() for k, v in raw.items()}
    if not state or state.get("user") != user.username:
        return None
    out = {"id": import_id, "status": state["status"], "phase": state.get("phase", ""),
           "phase_name": PHASES.get(state.get("phase", ""), ""), "done": int(state.get("done") or 0),
           "total": int(state.get("total") or 0), "filename": state.get("filename", ""),
           "what": state.get("what", ""), "message": state.get("message", ""),
           "result": json.loads(state["result"]) if state.get("result") else None,
           "rows": json.loads(state["rows"])[:PREVIEW_LIMIT] if state.get("rows") else [],
           "waited_s": int(time.time() - float(state.get("started_at") or time.time()))}
    if out["status"] == "running" and time.time() - float(state.get("updated_at") or 0) > STALL_S:
        out["status"] = "failed"
        out["message"] = "导入已中断（处理进程停止），未导入任何数据，请重新导入"
    return out
