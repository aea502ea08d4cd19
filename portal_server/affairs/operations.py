"""Every write of village affairs: disclosures (finance CSV, subsidy CSV, projects, decisions),
their review and publication, safety contacts, party study records.

Publication is one review step under the content workflow's rule (``content.operations.
reviewer_problem``: the reviewer role, a scope covering the village, never the disclosure's
author), audited like every other transition: draft → published (or withdrawn). The caller commits.
"""
from __future__ import annotations

import csv
import datetime as dt
import io
import re
from decimal import Decimal, InvalidOperation

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from portal_server.content.operations import reviewer_problem
from portal_server.core import audit, clock, crypto, scope
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


class CsvRowError(ApiError):
    """A bad CSV row: nothing of the file was imported."""

    def __init__(self, row: int, message: str, field: str | None = None):
        super().__init__(400, "bad_csv", f"第 {row} 行：{message}（整个文件未导入）", row=row,
                         **({"field": field} if field else {}))


def _village(region: Region | None, user) -> Region:
    if region is None or region.level != "village":
        raise bad_request("disclosures belong to a village: give a village code", field="region_code")
    scope.require(user, region)
    return region


def money_fen(value: str, field: str) -> int:
    """'1234.5' → 123450; 400 on nonsense, negatives or more than two decimals."""
    s = (value or "").strip().replace(",", "").replace("，", "")
    if s == "":
        return 0
    try:
        d = Decimal(s)
    except InvalidOperation:
        raise bad_request(f"{field} {value!r} is not an amount", field=field) from None
    if d < 0:
        raise bad_request(f"{field} cannot be negative", field=field)
    if d != d.quantize(Decimal("0.01")):
        raise bad_request(f"{field} has more than two decimals", field=field)
    if d > Decimal(100000000):
        raise bad_request(f"{field} is implausibly large", field=field)
    return int(d * 100)


def _rows(data: bytes | str, columns: tuple[str, ...]):
    text = data.decode("utf-8-sig") if isinstance(data, bytes) else data.lstrip("\ufeff")
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in columns if c not in (reader.fieldnames or [])]
    if missing:
        raise CsvRowError(1, f"表头缺少列 {', '.join(missing)}")
    for rowno, row in enumerate(reader, start=2):
        if rowno > MAX_ROWS + 1:
            raise CsvRowError(rowno, f"超过 {MAX_ROWS} 行")
        if None in row:
            raise CsvRowError(rowno, "列数多于表头")
        if not any((v or "").strip() for v in row.values()):
            continue
        yield rowno, {k: (v or "").strip() for k, v in row.items()}


def import_finance(region: Region, data: bytes | str, user, title: str | None = None) -> Disclosure:
    """A finance disclosure (draft) from a CSV ``month,item,income,expense`` of one month.
    Any bad row → 400 naming the row; nothing imported."""
    region = _village(region, user)
    lines, month = [], None
    for rowno, row in _rows(data, ("month", "item", "income", "expense")):
        m = row["month"].replace("/", "-")
        if re.match(r"^\d{4}-\d$", m):
            m = m[:5] + "0" + m[5:]
        if not MONTH.match(m):
            raise CsvRowError(rowno, f"月份 {row['month']!r} 应写作 YYYY-MM", "month")
        if month is None:
            month = m
        elif m != month:
            raise CsvRowError(rowno, f"月份 {m} 与第 2 行的 {month} 不同：一个文件只能是一个月", "month")
        if not row["item"] or len(row["item"]) > 128:
            raise CsvRowError(rowno, "收支项目不能为空（不超过 128 字）", "item")
        try:
            inc, exp = money_fen(row["income"], "income"), money_fen(row["expense"], "expense")
        except ApiError as e:
            raise CsvRowError(rowno, e.message, e.extra.get("field")) from None
        if inc == 0 and exp == 0:
            raise CsvRowError(rowno, "收入和支出不能都为空", "income")
        lines.append((m, row["item"], inc, exp))
    if not lines:
        raise CsvRowError(2, "文件中没有数据行")
    y, mo = month.split("-")
    d = Disclosure(region_id=region.id, region_path=region.path, kind="finance", period=month,
                   title=title or f"{region.name}{y}年{int(mo)}月财务收支公开", body="", status="draft",
                   created_by=user.username)
    d.finance_rows = [FinanceEntry(line=i, month=m, item=item, income_fen=inc, expense_fen=exp)
                      for i, (m, item, inc, exp) in enumerate(lines, 1)]
    session.add(d)
    session.flush()
    audit.record("affairs.finance_imported", "disclosure", d.id, region.code, actor=user.username,
                 period=month, rows=len(lines))
    return d


def import_subsidy(region: Region, period: str, data: bytes | str, user, title: str) -> Disclosure:
    """A subsidy list (draft) from a CSV ``name,subsidy,amount[,note]``; names are stored masked
    (and encrypted for staff), never published in full."""
    region = _village(region, user)
    _check_period("subsidy", period)
    lines = []
    for rowno, row in _rows(data, ("name", "subsidy", "amount")):
        if not row["name"] or len(row["name"]) > 32:
            raise CsvRowError(rowno, "姓名不能为空（不超过 32 字）", "name")
        if not row["subsidy"]:
            raise CsvRowError(rowno, "补贴项目不能为空", "subsidy")
        try:
            amt = money_fen(row["amount"], "amount")
        except ApiError as e:
            raise CsvRowError(rowno, e.message, "amount") from None
        lines.append((row["name"], row["subsidy"], amt, row.get("note", "")[:128]))
    if not lines:
        raise CsvRowError(2, "文件中没有数据行")
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
