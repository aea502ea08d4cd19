"""Every write of village affairs: disclosures (finance CSV, subsidy CSV, projects, decisions),
their review and publication, safety contacts, party study records.

Publication is one review step under the content workflow's rule (``content.operations.
reviewer_problem``: the reviewer role, a scope covering the village, never the disclosure's
author), audited like every other transition: draft → published (or withdrawn). The caller commits.
"""
from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal, InvalidOperation

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from portal_server.content.operations import reviewer_problem
from portal_server.core import audit, clock, crypto, imports, scope
from portal_server.core.api import ApiError, bad_request, conflict, forbidden
from portal_server.core.db import session, utcnow
from portal_server.core.regions import Region
from portal_server.core.terminals import Terminal

from .models import (
    CONTACT_ROLES,
    KINDS,
    Disclosure,
    FinanceEntry,
    SafetyContact,
    StudyMaterial,
    StudyRecord,
    SubsidyEntry,
)

MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
QUARTER = re.compile(r"^(\d{4})Q([1-4])$")
#: A period's disclosure is due by this day of the following month (monthly) or quarter's first month.
DUE_DAY = 10
MAX_ROWS = 2000


class ImportRejected(ApiError):
    """400: a bad row (or rows) in a finance or subsidy table; nothing of the file was imported.

    ``message`` names the first bad row ("第 N 行：<reason>（整个文件未导入）"), ``row`` is its
    number and ``rows`` lists every bad row [{row, message}] (the same list the preview shows)."""

    def __init__(self, bad: list[imports.RowError]):
        first = bad[0]
        super().__init__(400, "bad_csv", f"第 {first.row} 行：{first.message}（整个文件未导入）", row=first.row,
                         rows=[b.to_dict() for b in bad])
        self.bad = bad


#: Header texts of a finance table (Chinese as village accountants write them, English kept).
FINANCE_HEADERS = {"月份": "month", "年月": "month", "month": "month",
                   "收支项目": "item", "项目": "item", "摘要": "item", "item": "item",
                   "收入": "income", "收入（元）": "income", "收入(元)": "income", "收入金额": "income", "income": "income",
                   "支出": "expense", "支出（元）": "expense", "支出(元)": "expense", "支出金额": "expense",
                   "expense": "expense"}
FINANCE_REQUIRED = ("month", "item", "income", "expense")
#: Header texts of a subsidy list.
SUBSIDY_HEADERS = {"姓名": "name", "name": "name",
                   "补贴项目": "subsidy", "补贴类别": "subsidy", "补贴名称": "subsidy", "subsidy": "subsidy",
                   "金额": "amount", "金额（元）": "amount", "金额(元)": "amount", "发放金额": "amount", "amount": "amount",
                   "备注": "note", "note": "note"}
SUBSIDY_REQUIRED = ("name", "subsidy", "amount")


def _village(region: Region | None, user) -> Region:
    if region is None or region.level != "village":
        raise bad_request("disclosures belong to a village: give a village code", field="region_code")
    scope.require(user, region)
    return region


def _named(label: str, text: str) -> str:
    """"expense 不能为负数" / "支出不能为负数": the column as the file names it, then the reason."""
    return f"{label} {text}" if label.isascii() else f"{label}{text}"


def _fen(value: str, label: str) -> int:
    """An amount in yuan (≤ 2 decimals, not negative) → fen; RowProblem (Chinese) otherwise."""
    s = (value or "").strip().replace(",", "").replace("，", "").removeprefix("¥").removeprefix("￥")
    if s == "":
        return 0
    try:
        d = Decimal(s)
    except InvalidOperation:
        raise imports.RowProblem(_named(label, f"“{value}”不是有效金额")) from None
    if not d.is_finite():
        raise imports.RowProblem(_named(label, f"“{value}”不是有效金额"))
    if d < 0:
        raise imports.RowProblem(_named(label, "不能为负数"))
    cents = d.quantize(Decimal("0.01"))
    if abs(d - cents) < Decimal("1e-9"):  # an Excel formula's 12.300000000000001 is 12.30
        d = cents
    else:
        raise imports.RowProblem(_named(label, "最多两位小数（单位：元）"))
    if d > Decimal(100000000):
        raise imports.RowProblem(_named(label, "金额过大，请核对（单位：元）"))
    return int(d * 100)


def _yuan(fen: int) -> str:
    return f"{fen / 100:,.2f}"


def _month(value: str) -> str | None:
    """'2026-10', '2026/10', '2026-1', '2026年10月', or an Excel date cell '2026-10-01' → '2026-10'."""
    m = re.match(r"^(\d{4})\s*[-/.年]\s*(\d{1,2})\s*(?:月|[-/.]\s*\d{1,2}\s*日?)?$", (value or "").strip())
    if m is None or not 1 <= int(m[2]) <= 12:
        return None
    return f"{m[1]}-{int(m[2]):02d}"


def _table(data: bytes | str, filename: str, headers: dict[str, str],
           required: tuple[str, ...]) -> tuple[list[imports.Row], dict[str, str]]:
    """The rows of an uploaded finance/subsidy table (core.imports: .xlsx, UTF-8 or GBK CSV,
    Chinese or English headers) and each field's header text as the file writes it."""
    rows, labels = imports.read_upload(data, filename, headers, required)
    if len(rows) > MAX_ROWS:
        n = rows[MAX_ROWS].number
        raise ApiError(400, "bad_csv", f"第 {n} 行：超过 {MAX_ROWS} 行，请分成几个文件导入（整个文件未导入）", row=n)
    return rows, labels


def plan_finance(region: Region | None, data: bytes | str, user, filename: str = "") -> imports.Plan:
    """Check a finance table ``月份,收支项目,收入,支出`` (or ``month,item,income,expense``) of one
    month, nothing written: every row to import and every bad row with its reason (the preview)."""
    _village(region, user)
    rows, label = _table(data, filename, FINANCE_HEADERS, FINANCE_REQUIRED)

    def check(row: imports.Row, state: dict) -> imports.Planned:
        v = row.values
        m = _month(v.get("month", ""))
        if m is None:
            raise imports.RowProblem(f"月份“{v.get('month', '')}”应写作 YYYY-MM（如 2026-10）")
        if "month" not in state:
            state["month"] = (m, row.number)
        elif m != state["month"][0]:
            month, first = state["month"]
            raise imports.RowProblem(f"月份 {m} 与第 {first} 行的 {month} 不同：一个文件只能是一个月")
        item = v.get("item", "")
        if not item or len(item) > 128:
            raise imports.RowProblem("收支项目不能为空（不超过 128 字）")
        inc, exp = _fen(v.get("income", ""), label["income"]), _fen(v.get("expense", ""), label["expense"])
        if inc == 0 and exp == 0:
            raise imports.RowProblem("收入和支出不能都为空")
        text = f"{m} {item}" + (f" 收入 {_yuan(inc)} 元" if inc else "") + (f" 支出 {_yuan(exp)} 元" if exp else "")
        return imports.Planned(row.number, "new", text, (m, item, inc, exp))

    return imports.plan(rows, check)


def plan_subsidy(region: Region | None, period: str, data: bytes | str, user,
                 filename: str = "") -> imports.Plan:
    """Check a subsidy list ``姓名,补贴项目,金额[,备注]`` (or ``name,subsidy,amount[,note]``),
    nothing written; the preview labels show names masked."""
    _village(region, user)
    _check_period("subsidy", period)
    rows, label = _table(data, filename, SUBSIDY_HEADERS, SUBSIDY_REQUIRED)

    def check(row: imports.Row, state: dict) -> imports.Planned:
        v = row.values
        name, subsidy = v.get("name", ""), v.get("subsidy", "")
        if not name or len(name) > 32:
            raise imports.RowProblem("姓名不能为空（不超过 32 字）")
        if not subsidy or len(subsidy) > 64:
            raise imports.RowProblem("补贴项目不能为空（不超过 64 字）")
        amt = _fen(v.get("amount", ""), label["amount"])
        text = f"{crypto.mask_name(name)} {subsidy} {_yuan(amt)} 元"
        return imports.Planned(row.number, "new", text, (name, subsidy, amt, v.get("note", "")[:128]))

    return imports.plan(rows, check)


def _lines(plan: imports.Plan) -> list[tuple]:
    """The checked rows' payloads, all or nothing (ImportRejected naming every bad row)."""
    if plan.bad:
        raise ImportRejected(plan.bad)
    out: list[tuple] = []
    imports.apply(plan, lambda p: out.append(p.payload))
    return out


def import_finance(region: Region, data: bytes | str, user, title: str | None = None,
                   filename: str = "") -> Disclosure:
    """A finance disclosure (draft, awaiting review) from a table of one month (see plan_finance).
    Any bad row → 400 naming it (and listing every bad row); nothing imported."""
    lines = _lines(plan_finance(region, data, user, filename))
    month = lines[0][0]
    y, mo = month.split("-")
    d = Disclosure(region_id=region.id, region_path=region.path, kind="finance", period=month,
                   title=(title or f"{region.name}{y}年{int(mo)}月财务收支公开").strip()[:128], body="",
                   status="draft", created_by=user.username)
    d.finance_rows = [FinanceEntry(line=i, month=m, item=item, income_fen=inc, expense_fen=exp)
                      for i, (m, item, inc, exp) in enumerate(lines, 1)]
    session.add(d)
    session.flush()
    audit.record("affairs.finance_imported", "disclosure", d.id, region.code, actor=user.username,
                 period=month, rows=len(lines))
    return d


def import_subsidy(region: Region, period: str, data: bytes | str, user, title: str,
                   filename: str = "") -> Disclosure:
    """A subsidy list (draft, awaiting review) from a table (see plan_subsidy); names are stored
    masked (and encrypted for staff), never published in full. All rows or none."""
    lines = _lines(plan_subsidy(region, period, data, user, filename))
    d = Disclosure(region_id=region.id, region_path=region.path, kind="subsidy", period=period,
                   title=(title or f"{region.name}惠民补贴发放名单").strip()[:128], status="draft",
                   created_by=user.username)
    d.subsidy_rows = [SubsidyEntry(line=i, name_masked=crypto.mask_name(n), name_enc=crypto.encrypt(n),
                                   subsidy=s, amount_fen=a, note=note)
                      for i, (n, s, a, note) in enumerate(lines, 1)]
    session.add(d)
    session.flush()
    audit.record("affairs.subsidy_imported", "disclosure", d.id, region.code, actor=user.username,
                 period=period, rows=len(lines))
    return d


def _check_period(kind: str, period: str) -> None:
    ok = MONTH.match(period or "") if kind == "finance" else QUARTER.match(period or "")
    if not ok:
        raise bad_request("period must be YYYY-MM for finance, YYYYQn for the others", field="period")


def create_text(region: Region, kind: str, period: str, title: str, body: str, user) -> Disclosure:
    """A project or decision disclosure (draft)."""
    region = _village(region, user)
    if kind not in ("project", "decision"):
        raise bad_request("kind must be project or decision (finance and subsidy come from CSV)", field="kind")
    _check_period(kind, period)
    if not (title or "").strip():
        raise bad_request("title is required", field="title")
    if not (body or "").strip():
        raise bad_request("body is required", field="body")
    d = Disclosure(region_id=region.id, region_path=region.path, kind=kind, period=period,
                   title=title.strip()[:128], body=body.strip()[:20000], status="draft", created_by=user.username)
    session.add(d)
    session.flush()
    audit.record("affairs.created", "disclosure", d.id, region.code, actor=user.username, kind=kind, period=period)
    return d


def review_problem(d: Disclosure, user) -> str | None:
    """None when ``user`` may approve ``d`` for publication, else why not (content's rule)."""
    return reviewer_problem(user, [d.created_by], [(d.region.code, d.region.path)])


def publish(d: Disclosure, user, now: dt.datetime | None = None) -> Disclosure:
    """A reviewer whose scope covers the village, never its author, approves: the disclosure is
    public from now on."""
    problem = review_problem(d, user)
    if problem:
        raise forbidden(problem)
    if d.status != "draft":
        raise conflict(f"disclosure is {d.status}; only drafts can be published")
    d.status, d.published_at, d.published_by = "published", (now or utcnow()).astimezone(dt.UTC), user.username
    session.flush()
    audit.record("affairs.published", "disclosure", d.id, d.region.code, actor=user.username,
                 kind=d.kind, period=d.period, author=d.created_by)
    return d


def withdraw(d: Disclosure, user) -> Disclosure:
    if not user.has_role("reviewer", "editor"):
        raise forbidden("撤回公开需要审核或编辑角色")
    scope.require(user, d.region, "公开事项")
    if d.status == "withdrawn":
        raise conflict("already withdrawn")
    d.status = "withdrawn"
    session.flush()
    audit.record("affairs.withdrawn", "disclosure", d.id, d.region.code, actor=user.username)
    return d


# Cadence ----------------------------------------------------------------------------------

def due_periods(now: dt.datetime | None = None) -> dict[str, str]:
    """The latest period each kind must already be disclosed for: finance monthly (month M by
    the 10th of M+1), the others quarterly (quarter Q by the 10th of the next quarter's first month)."""
    local = clock.local(now or utcnow())
    y, m = local.year, local.month
    # Months whose deadline has passed: M where 10th of M+1 <= today.
    back = 1 if local.day > DUE_DAY else 2
    fy, fm = y, m - back
    while fm < 1:
        fm += 12
        fy -= 1
    q = (m - 1) // 3 + 1
    first_month_of_q = (q - 1) * 3 + 1
    qback = 1 if (m > first_month_of_q or local.day > DUE_DAY) else 2
    qy, qq = y, q - qback
    while qq < 1:
        qq += 4
        qy -= 1
    return {"finance": f"{fy}-{fm:02d}", "project": f"{qy}Q{qq}", "subsidy": f"{qy}Q{qq}",
            "decision": f"{qy}Q{qq}"}


# Safe community ---------------------------------------------------------------------------

def add_contact(region: Region, role: str, name: str, phone: str, duty: str, user) -> SafetyContact:
    region = _village(region, user)
    if role not in CONTACT_ROLES:
        raise bad_request(f"role must be one of {', '.join(CONTACT_ROLES)}", field="role")
    if not (name or "").strip() or not (phone or "").strip():
        raise bad_request("name and phone are required", field="name")
    c = SafetyContact(region_id=region.id, region_path=region.path, role=role, name=name.strip()[:32],
                      phone=phone.strip()[:32], duty=(duty or "")[:255])
    session.add(c)
    session.flush()
    audit.record("safety.contact_added", "safety_contact", c.id, region.code, actor=user.username, role=role)
    return c


# Party study ------------------------------------------------------------------------------

def confirm_study(terminal: Terminal, material: StudyMaterial) -> tuple[StudyRecord, bool]:
    """The household confirms with OK that it studied ``material`` (once per material)."""
    if terminal.household_id is None:
        raise forbidden("this box belongs to no household")
    if not (terminal.region_path or "").startswith(material.region_path):
        raise forbidden("this material is not for your village")
    existing = session.scalar(select(StudyRecord).where(StudyRecord.material_id == material.id,
                                                        StudyRecord.household_id == terminal.household_id))
    if existing is not None:
        return existing, False
    rec = StudyRecord(material_id=material.id, household_id=terminal.household_id,
                      region_path=terminal.region_path, terminal_serial=terminal.serial)
    try:
        with session.begin_nested():
            session.add(rec)
            session.flush()
    except IntegrityError:
        return session.scalar(select(StudyRecord).where(StudyRecord.material_id == material.id,
                                                        StudyRecord.household_id == terminal.household_id)), False
    audit.record("party.study_confirmed", "study_material", material.id, terminal.region.code,
                 actor=f"terminal:{terminal.serial}")
    return rec, True


def add_material(region: Region, month: str, title: str, kind: str, summary: str, media_url: str | None,
                 user, is_disclosure: bool = False) -> StudyMaterial:
    scope.require(user, region)
    if not MONTH.match(month or ""):
        raise bad_request("month must be YYYY-MM", field="month")
    if kind not in ("article", "video"):
        raise bad_request("kind must be article or video", field="kind")
    if not (title or "").strip():
        raise bad_request("title is required", field="title")
    m = StudyMaterial(region_id=region.id, region_path=region.path, month=month, title=title.strip()[:128],
                      kind=kind, summary=summary or "", media_url=media_url or None, is_disclosure=is_disclosure)
    session.add(m)
    session.flush()
    audit.record("party.material_added", "study_material", m.id, region.code, actor=user.username)
    return m


__all__ = ["KINDS"]
