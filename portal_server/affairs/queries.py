"""Reads of village affairs, safe community and party study (always scoped)."""
from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy import func, select

from portal_server.alerts.queries import history_for_region
from portal_server.core.api import iso
from portal_server.core.crypto import mask_name
from portal_server.core.db import session, utcnow
from portal_server.core.households import Household
from portal_server.core.regions import Region, Scope

from . import operations as ops
from .models import (
    CONTACT_ROLE_NAMES,
    KIND_NAMES,
    STATUS_NAMES,
    Disclosure,
    SafetyContact,
    StudyMaterial,
    StudyRecord,
)

log = logging.getLogger(__name__)


def yuan(fen: int) -> str:
    """123450 → '1,234.50'."""
    return f"{fen / 100:,.2f}"


def get(disclosure_id: int) -> Disclosure | None:
    return session.get(Disclosure, disclosure_id)


def published_for(village: Region, kind: str | None = None, limit: int = 50) -> list[Disclosure]:
    """What the village's boxes show: published disclosures of that village, newest first."""
    q = select(Disclosure).where(Disclosure.region_id == village.id, Disclosure.status == "published")
    if kind:
        q = q.where(Disclosure.kind == kind)
    return list(session.scalars(q.order_by(Disclosure.published_at.desc(), Disclosure.id.desc()).limit(limit)))


def in_scope(scope: Scope, kind: str | None = None, status: str | None = None):
    q = select(Disclosure).where(scope.region_filter(Disclosure.region_path))
    if kind:
        q = q.where(Disclosure.kind == kind)
    if status:
        q = q.where(Disclosure.status == status)
    return q.order_by(Disclosure.created_at.desc(), Disclosure.id.desc())


def awaiting_review(user, limit: int = 300) -> list[Disclosure]:
    """Drafts in the user's scope that this reviewer may approve (never their own: content's rule)."""
    if not user.has_role("reviewer"):
        return []
    rows = session.scalars(in_scope(user.scope, status="draft").where(Disclosure.created_by != user.username)
                           .limit(limit))
    return list(rows)


def period_name(kind: str, period: str) -> str:
    if kind == "finance":
        y, m = period.split("-")
        return f"{y}年{int(m)}月"
    return f"{period[:4]}年第{period[-1]}季度"


def finance_table(d: Disclosure) -> dict:
    rows = [{"month": r.month, "item": r.item, "income": yuan(r.income_fen), "expense": yuan(r.expense_fen),
             "income_fen": r.income_fen, "expense_fen": r.expense_fen} for r in d.finance_rows]
    inc, exp = sum(r.income_fen for r in d.finance_rows), sum(r.expense_fen for r in d.finance_rows)
    return {"columns": ["月份", "收支项目", "收入（元）", "支出（元）"], "rows": rows,
            "total_income": yuan(inc), "total_expense": yuan(exp), "balance": yuan(inc - exp)}


def subsidy_table(d: Disclosure) -> dict:
    rows = [{"name": r.name_masked, "subsidy": r.subsidy, "amount": yuan(r.amount_fen), "note": r.note}
            for r in d.subsidy_rows]
    return {"columns": ["姓名", "补贴项目", "金额（元）", "备注"], "rows": rows,
            "total": yuan(sum(r.amount_fen for r in d.subsidy_rows))}


def to_dict(d: Disclosure) -> dict:
    out = {"id": d.id, "region_code": d.region.code, "village": d.region.name, "kind": d.kind,
           "kind_name": KIND_NAMES[d.kind], "period": d.period, "period_name": period_name(d.kind, d.period),
           "title": d.title, "body": d.body, "status": d.status, "status_name": STATUS_NAMES[d.status],
           "created_by": d.created_by, "created_at": iso(d.created_at), "published_at": iso(d.published_at),
           "published_by": d.published_by}
    if d.kind == "finance":
        out["table"] = finance_table(d)
    elif d.kind == "subsidy":
        out["table"] = subsidy_table(d)
    return out


def disclosure_for_speech(village: Region | None, key: str) -> str | None:
    """Plain text of a published disclosure of ``village`` to read aloud."""
    try:
        d = get(int(key))
    except ValueError:
        return None
    if d is None or d.status != "published" or village is None or d.region_id != village.id:
        return None
    parts = [d.title, f"公开日期{iso(d.published_at)[:10]}"]
    if d.kind == "finance":
        t = finance_table(d)
        parts += [f"{r['item']}，收入{r['income']}元，支出{r['expense']}元" for r in t["rows"]]
        parts.append(f"合计收入{t['total_income']}元，支出{t['total_expense']}元")
    elif d.kind == "subsidy":
        parts.append(f"共{len(d.subsidy_rows)}人，合计{subsidy_table(d)['total']}元")
    else:
        parts.append(d.body)
    return "。".join(parts)


def board(scope: Scope, now: dt.datetime | None = None) -> dict:
    """The supervision board: every village in scope with its latest published period per kind
    and whether it is late against the legal cadence (finance monthly, the others quarterly)."""
    due = ops.due_periods(now)
    villages = list(session.scalars(select(Region).where(Region.level == "village", scope.region_filter(Region.path))
                                    .order_by(Region.code)))
    latest = {}
    for rid, kind, period, at in session.execute(
            select(Disclosure.region_id, Disclosure.kind, func.max(Disclosure.period), func.max(Disclosure.published_at))
            .where(Disclosure.status == "published", scope.region_filter(Disclosure.region_path))
            .group_by(Disclosure.region_id, Disclosure.kind)):
        latest[(rid, kind)] = (period, at)
    rows = []
    for v in villages:
        kinds = {}
        late = []
        for kind in ("finance", "project", "subsidy", "decision"):
            period, at = latest.get((v.id, kind), (None, None))
            ok = period is not None and period >= due[kind]
            kinds[kind] = {"latest": period, "published_at": iso(at), "due": due[kind], "late": not ok}
            if not ok:
                late.append(kind)
        rows.append({"code": v.code, "name": v.name, "town": v.parent.name if v.parent else "",
                     "kinds": kinds, "late": late})
    rows.sort(key=lambda r: (-len(r["late"]), r["code"]))
    return {"due": due, "villages": rows, "late_count": sum(1 for r in rows if r["late"]),
            "total": len(rows)}


# Safe community ---------------------------------------------------------------------------

def contacts_for(village: Region) -> list[SafetyContact]:
    return list(session.scalars(select(SafetyContact).where(SafetyContact.region_id == village.id)
                                .order_by(SafetyContact.role, SafetyContact.id)))


def contact_to_dict(c: SafetyContact) -> dict:
    return {"id": c.id, "role": c.role, "role_name": CONTACT_ROLE_NAMES.get(c.role, c.role), "name": c.name,
            "phone": c.phone, "duty": c.duty, "region_code": c.region.code}


def alert_history(village: Region, limit: int = 20) -> list[dict]:
    """The village's alerts (its own and those of the town and city above it), newest first."""
    return [{"headline": a["headline"], "severity": a["severity"], "event": a["event"], "status": a["status"],
             "sent_at": a["sent_at"]} for a in history_for_region(village.code, limit=limit)]


# Party study ------------------------------------------------------------------------------

def materials_for(village: Region, month: str | None = None) -> list[StudyMaterial]:
    """Materials for a village's branch (set at the village, town or city), newest month first."""
    codes = village.chain_codes()
    q = select(StudyMaterial).join(Region, Region.id == StudyMaterial.region_id).where(Region.code.in_(codes))
    if month:
        q = q.where(StudyMaterial.month == month)
    return list(session.scalars(q.order_by(StudyMaterial.month.desc(), StudyMaterial.id)))


def material_get(material_id: int) -> StudyMaterial | None:
    return session.get(StudyMaterial, material_id)


def studied_ids(household_id: int | None) -> set[int]:
    if household_id is None:
        return set()
    return set(session.scalars(select(StudyRecord.material_id).where(StudyRecord.household_id == household_id)))


def records_in(scope: Scope, month: str | None = None) -> list[dict]:
    """For branch secretaries: who confirmed which material (household head's name, masked)."""
    q = (select(StudyRecord, StudyMaterial, Household).join(StudyMaterial, StudyMaterial.id == StudyRecord.material_id)
         .join(Household, Household.id == StudyRecord.household_id)
         .where(scope.region_filter(StudyRecord.region_path)))
    if month:
        q = q.where(StudyMaterial.month == month)
    out = []
    for rec, mat, hh in session.execute(q.order_by(StudyRecord.confirmed_at.desc()).limit(1000)):
        out.append({"material_id": mat.id, "title": mat.title, "month": mat.month, "household": hh.number,
                    "name": hh.head_name, "name_masked": mask_name(hh.head_name), "address": hh.address,
                    "confirmed_at": iso(rec.confirmed_at)})
    return out


def material_to_dict(m: StudyMaterial, studied: set[int] | None = None) -> dict:
    return {"id": m.id, "month": m.month, "title": m.title, "kind": m.kind, "summary": m.summary,
            "media_url": m.media_url, "is_disclosure": m.is_disclosure, "region_code": m.region.code,
            "studied": (m.id in studied) if studied is not None else None}


__all__ = ["utcnow"]


def daily_figures(day, start, end) -> dict[str, dict[str, float]]:
    """Villages late with a legally due disclosure at the end of the day (1 per late village)."""
    city = session.scalar(select(Region).where(Region.parent_id.is_(None)))
    if city is None:
        return {}
    b = board(Scope.of(city), now=end)
    out: dict[str, dict[str, float]] = {}
    paths = dict(session.execute(select(Region.code, Region.path).where(Region.level == "village")).all())
    for v in b["villages"]:
        out[paths[v["code"]]] = {"affairs.late_villages": 1 if v["late"] else 0}
    return out
