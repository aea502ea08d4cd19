"""Every write of the service catalogue: items, the catalogue import (core.imports), slots, bookings.

validate → change → flush → signal → audit. The caller commits. Errors are core ``ApiError``s
(400 bad input, 403 scope, 404, 409 state) so the API, the staff web and the TV show the same text.
"""
from __future__ import annotations

import datetime as dt
import json
import re

from sqlalchemy import select, update

from portal_server.core import audit, clock, i18n, imports, scope
from portal_server.core.accounts import Department
from portal_server.core.api import ApiError, bad_request, conflict, forbidden, not_found
from portal_server.core.db import session, utcnow
from portal_server.core.regions import Region
from portal_server.core.terminals import Terminal

from . import queries
from .models import (
    HANDLE_LEVEL_NAMES,
    ITEM_TYPES,
    MAX_CATEGORY_DEPTH,
    Booking,
    BookingSlot,
    ServiceAdmission,
    ServiceCategory,
    ServiceItem,
)

#: Material forms accepted (原件 / 复印件 / both).
FORMS = ("原件", "复印件", "原件和复印件")
#: Daily windows (city time) of the booking calendar; weekdays only.
SLOT_WINDOWS = (("09:00", "10:30"), ("10:30", "12:00"), ("14:00", "15:30"), ("15:30", "17:00"))
#: Capacity per window: a village hall has one clerk, a town centre several counters.
CAPACITY = {"village": 4, "town": 10}
#: Columns of a catalogue table (each must be in the header row; Chinese names in IMPORT_HEADERS).
CSV_COLUMNS = ("code", "name", "type", "category", "department", "implementer", "basis", "conditions",
               "materials", "steps", "statutory_days", "promised_days", "fee", "fee_basis", "location",
               "hours", "visits", "phone", "local")
#: Optional columns (older files lack them): where a case is handled, TV application, subsidy.
CSV_OPTIONAL = ("handle_level", "department_code", "tv_apply", "subsidy")
#: Header texts of a catalogue table → field names: the Chinese headers of the shipped catalogue
#: (data/catalogue.csv) and of county spreadsheets, and the English column names (older files).
IMPORT_HEADERS = {"事项编码": "code", "事项名称": "name", "事项类型": "type", "所属类别": "category",
                  "主管部门": "department", "实施主体": "implementer", "设定依据": "basis",
                  "受理条件": "conditions", "申请材料": "materials", "办理流程": "steps",
                  "法定时限": "statutory_days", "承诺时限": "promised_days", "收费标准": "fee",
                  "收费依据": "fee_basis", "办理地点": "location", "办理时间": "hours", "跑动次数": "visits",
                  "咨询电话": "phone", "村级可办": "local", "办理层级": "handle_level", "部门代码": "department_code",
                  "电视申请": "tv_apply", "补贴事项": "subsidy",
                  **{c: c for c in CSV_COLUMNS + CSV_OPTIONAL}}
#: Item fields compared one to one between a row and the stored item (the preview's "updated").
ITEM_FIELDS = ("department", "implementer", "basis", "conditions", "statutory_days", "promised_days",
               "fee", "fee_basis", "location", "hours", "visits", "phone", "local", "handle_level",
               "department_code", "tv_apply", "subsidy")
#: 办理层级 as written in the file.
LEVEL_WORDS = {"village": "village", "town": "town", "department": "department", "村级": "village",
               "村": "village", "镇级": "town", "镇": "town", "部门": "department", "市直部门": "department",
               "部门级": "department"}


# Categories --------------------------------------------------------------------------------

def ensure_category_path(names: list[str]) -> ServiceCategory:
    """The category at the end of ``names`` (top level first), creating missing nodes."""
    names = [n.strip() for n in names if n and n.strip()]
    if not names:
        raise bad_request("category is required", field="category")
    if len(names) > MAX_CATEGORY_DEPTH:
        raise bad_request(f"category has {len(names)} levels; at most {MAX_CATEGORY_DEPTH} are allowed",
                          field="category")
    parent = None
    for level, name in enumerate(names, start=1):
        if len(name) > 64:
            raise bad_request("category name is too long (at most 64 characters)", field="category")
        q = select(ServiceCategory).where(ServiceCategory.name == name, ServiceCategory.level == level)
        q = q.where(ServiceCategory.parent_id == parent.id) if parent else q.where(ServiceCategory.parent_id.is_(None))
        node = session.scalar(q)
        if node is None:
            code = (parent.code + "." if parent else "") + name
            sort = session.query(ServiceCategory).filter(ServiceCategory.parent_id == (parent.id if parent else None)).count()
            node = ServiceCategory(code=code, name=name, parent=parent, level=level, sort=sort)
            session.add(node)
            session.flush()
        parent = node
    return parent


# Items ------------------------------------------------------------------------------------

def parse_materials(text: str) -> list[dict]:
    """``身份证:1:原件;户口簿:1:原件和复印件`` → [{"name","quantity","form"}]."""
    out = []
    for i, part in enumerate([p.strip() for p in (text or "").replace("；", ";").split(";") if p.strip()], 1):
        bits = [b.strip() for b in part.replace("：", ":").split(":")]
        if len(bits) != 3:
            raise bad_request(f"第 {i} 项材料（{part}）格式应为 名称:份数:形式", field="materials")
        name, qty, form = bits
        if not name:
            raise bad_request(f"第 {i} 项材料缺少名称", field="materials")
        try:
            q = int(qty)
        except ValueError:
            raise bad_request(f"第 {i} 项材料（{name}）的份数 {qty} 不是数字", field="materials") from None
        if q < 1 or q > 99:
            raise bad_request(f"第 {i} 项材料（{name}）的份数应为 1–99", field="materials")
        if form not in FORMS:
            raise bad_request(f"第 {i} 项材料（{name}）的形式必须是：{'/'.join(FORMS)}", field="materials")
        out.append({"name": name, "quantity": q, "form": form, "original": form != "复印件",
                    "copy": form != "原件"})
    return out


def format_materials(materials: list[dict]) -> str:
    return ";".join(f"{m['name']}:{m['quantity']}:{m['form']}" for m in materials)


def _int(value, field: str, lo: int = 0, hi: int = 3650) -> int:
    try:
        v = int(str(value).strip() or 0)
    except (TypeError, ValueError):
        raise bad_request(f"{field} must be a whole number", field=field) from None
    if not lo <= v <= hi:
        raise bad_request(f"{field} must be between {lo} and {hi}", field=field)
    return v


def _bool(value, field: str) -> bool:
    if isinstance(value, bool):
        return value
    s = str(value or "").strip().lower()
    if s in ("1", "true", "yes", "y", "是", "可", "on"):
        return True
    if s in ("", "0", "false", "no", "n", "否"):
        return False
    raise bad_request(f"{field} 应填写“是”或“否”", field=field)


def validate_item(raw: dict) -> dict:
    """Check one item's fields (a CSV row or a staff form) → clean values; 400 naming the field."""
    v = {k: (raw.get(k) if not isinstance(raw.get(k), str) else raw.get(k).strip()) for k in CSV_COLUMNS}
    code = v["code"] or ""
    if not code or len(code) > 64 or any(c.isspace() for c in code):
        raise bad_request("code is required (no spaces, at most 64 characters)", field="code")
    if not v["name"] or len(v["name"]) > 128:
        raise bad_request("name is required (at most 128 characters)", field="name")
    if v["type"] not in ITEM_TYPES:
        raise bad_request(f"type 必须是以下之一：{'/'.join(ITEM_TYPES)}", field="type")
    for f in ("department", "implementer"):
        if not v[f]:
            raise bad_request(f"{f} is required", field=f)
    cat = [c for c in str(v["category"] or "").replace("＞", "/").replace(">", "/").split("/") if c.strip()]
    if not cat:
        raise bad_request("category is required (levels separated by /)", field="category")
    if len(cat) > MAX_CATEGORY_DEPTH:
        raise bad_request(f"category has {len(cat)} levels; at most {MAX_CATEGORY_DEPTH} are allowed", field="category")
    materials = v["materials"] if isinstance(v["materials"], list) else parse_materials(v["materials"] or "")
    steps = v["steps"] if isinstance(v["steps"], list) else [s.strip() for s in str(v["steps"] or "").split("|") if s.strip()]
    if not steps:
        raise bad_request("steps are required (separated by |)", field="steps")
    level_raw = str(raw.get("handle_level") or "").strip()
    level = LEVEL_WORDS.get(level_raw) if level_raw else "town"
    if level is None:
        raise bad_request(f"办理层级 {level_raw} 无效，应为 村级/镇级/部门", field="handle_level")
    statutory = _int(v["statutory_days"], "statutory_days")
    promised = _int(v["promised_days"], "promised_days")
    if statutory and promised > statutory:
        raise bad_request("promised_days cannot exceed statutory_days", field="promised_days")
    return {"code": code, "name": v["name"], "item_type": v["type"], "category": cat,
            "department": v["department"], "implementer": v["implementer"], "basis": v["basis"] or "",
            "conditions": v["conditions"] or "", "materials": materials, "steps": steps,
            "statutory_days": statutory, "promised_days": promised, "fee": v["fee"] or "不收费",
            "fee_basis": v["fee_basis"] or "", "location": v["location"] or "", "hours": v["hours"] or "",
            "visits": _int(v["visits"] if v["visits"] not in (None, "") else 1, "visits", 0, 9),
            "phone": v["phone"] or "", "local": _bool(v["local"], "local"), "handle_level": level,
            "department_code": (str(raw.get("department_code") or "").strip() or None),
            "tv_apply": _bool(raw.get("tv_apply"), "tv_apply"), "subsidy": _bool(raw.get("subsidy"), "subsidy")}


def _apply(item: ServiceItem, clean: dict) -> None:
    item.name, item.item_type = clean["name"], clean["item_type"]
    item.category = ensure_category_path(clean["category"])
    for f in ITEM_FIELDS:
        setattr(item, f, clean[f])
    item.materials_json = json.dumps(clean["materials"], ensure_ascii=False)
    item.steps_json = json.dumps(clean["steps"], ensure_ascii=False)
    item.active = True
    item.updated_at = utcnow()


def require_catalogue_owner(user, departments=()) -> None:
    """403 unless ``user`` owns the city's catalogue: an admin, city-level staff, or a city
    department's staff for items of their own department (``departments``: the competent
    departments of the items touched, before and after the change). A village or town editor
    never rewrites the city's catalogue."""
    if user is None or "admin" in user.roles:
        return
    if user.region.level != "city":
        raise forbidden(f"服务事项目录由市级部门维护，{user.region.name}的账号不能修改")
    if user.department_code:
        dept = session.scalar(select(Department).where(Department.code == user.department_code))
        mine = {user.department_code, dept.name if dept else user.department_code}
        bad = sorted({d for d in departments if d and d not in mine})
        if bad:
            raise forbidden(f"只能修改本部门（{dept.name if dept else user.department_code}）主管的事项，"
                            f"不能修改{'、'.join(bad)}的事项")


def save_item(raw: dict, actor: str, user=None) -> tuple[ServiceItem, bool]:
    """Create or update (by code) one item. Returns (item, created). ``user``: the staff member
    writing (checked by ``require_catalogue_owner``); None for the system (demo seed)."""
    clean = validate_item(raw)
    item = session.scalar(select(ServiceItem).where(ServiceItem.code == clean["code"]))
    require_catalogue_owner(user, [clean.get("department"), item.department if item else None])
    created = item is None
    if created:
        item = ServiceItem(code=clean["code"])
    _apply(item, clean)
    session.add(item)
    session.flush()
    audit.record("services.item_saved", "service_item", item.code, None, actor=actor,
                 name=item.name, created=created)
    return item, created


# Catalogue import (core.imports: .xlsx or UTF-8/GBK CSV, preview, all or nothing) --------------

class CatalogueImportError(imports.ImportRejected):
    """400: bad rows in a catalogue table; nothing of the file was imported. ``message`` names the
    first bad row ("第 N 行：<reason>（整个文件未导入）"), ``row`` is its number and ``rows`` lists
    every bad row [{row, message}] (the same list the preview shows)."""

    def __init__(self, bad: list[imports.RowError]):
        first = bad[0]
        more = f"（共 {len(bad)} 行有错误）" if len(bad) > 1 else ""
        ApiError.__init__(self, 400, "bad_csv", f"第 {first.row} 行：{first.message}{more}（整个文件未导入）",
                          row=first.row, rows=[b.to_dict() for b in bad])
        self.rows = bad


def _named(message: str, field: str | None, labels: dict[str, str]) -> str:
    """A row's reason in Chinese, naming the column the way the file does: "type must be one of …"
    → "事项类型必须是以下之一：…" for a file with Chinese headers (English headers keep "type")."""
    text = i18n.chinese(message)
    label = labels.get(field or "", "")
    if not field or not label or label == field:
        return text
    word = re.compile(rf"(?<![A-Za-z_]){re.escape(field)}(?![A-Za-z_]) ?")
    if word.search(text):
        return word.sub(label, text)
    return text if label in text else f"{label}：{text}"


def _changes(item: ServiceItem, clean: dict) -> list[str]:
    """The fields (their Chinese headers) an import row would change on an existing item."""
    names = {v: k for k, v in IMPORT_HEADERS.items() if not k.isascii()}
    now = {"name": item.name, "type": item.item_type, "category": item.category.path_names(),
           "materials": item.materials, "steps": item.steps,
           **{f: getattr(item, f) for f in ITEM_FIELDS}}
    new = {"name": clean["name"], "type": clean["item_type"],
           "category": [c.strip() for c in clean["category"]], "materials": clean["materials"],
           "steps": clean["steps"], **{f: clean[f] for f in ITEM_FIELDS}}
    out = [names.get(f, f) for f in new if new[f] != now[f]]
    if not item.active:
        out.append("重新启用（已撤下的事项）")
    return out


def plan_catalogue(data: bytes | str, user=None, filename: str = "", progress=None) -> imports.Plan:
    """Check a catalogue table without writing: every row sorted into new / updated (naming the
    fields that change) / unchanged / bad (its number and the reason in Chinese). 403 when ``user``
    may not change the catalogue, or the items of these departments (``require_catalogue_owner``,
    on every good row's department before and after); 400 when the file itself is unreadable."""
    require_catalogue_owner(user)
    rows, labels = imports.read_upload(data, filename, IMPORT_HEADERS, CSV_COLUMNS, empty="文件中没有事项")
    have = {i.code: i for i in session.scalars(select(ServiceItem).where(
        ServiceItem.code.in_({r.values.get("code", "").strip() for r in rows})))}

    def check(row: imports.Row, state: dict) -> imports.Planned:
        try:
            clean = validate_item(row.values)
        except ApiError as e:
            raise imports.RowProblem(_named(e.message, e.extra.get("field"), labels)) from None
        seen = state.setdefault("codes", {})
        if clean["code"] in seen:
            raise imports.RowProblem(f"{labels.get('code', '事项编码')} {clean['code']} 与第 {seen[clean['code']]} 行重复")
        seen[clean["code"]] = row.number
        item = have.get(clean["code"])
        label = f"{clean['code']} {clean['name']}"
        if item is None:
            return imports.Planned(row.number, "new", f"{label}（{clean['department']}）", clean)
        changed = _changes(item, clean)
        if not changed:
            return imports.Planned(row.number, "unchanged", label, clean)
        return imports.Planned(row.number, "updated", f"{label}（改动：{'、'.join(changed)}）", clean)

    plan = imports.plan(rows, check, progress)
    require_catalogue_owner(user, [p.payload["department"] for p in plan.items]
                            + [have[p.payload["code"]].department for p in plan.items if p.payload["code"] in have])
    return plan


def import_catalogue(plan: imports.Plan, actor: str, progress=None, source: str = "") -> dict:
    """Write a checked plan: new items are created, updated ones rewritten, unchanged ones left
    alone; all or nothing (CatalogueImportError when a row is bad). The caller commits."""
    if plan.bad:
        raise CatalogueImportError(plan.bad)

    def write(p: imports.Planned) -> None:
        clean = p.payload
        item = session.scalar(select(ServiceItem).where(ServiceItem.code == clean["code"]))
        if item is None:
            item = ServiceItem(code=clean["code"])
        _apply(item, clean)
        session.add(item)

    with session.begin_nested():
        written = imports.apply(plan, write, progress)
        session.flush()
    counts = plan.counts()
    if written:
        audit.record("services.csv_import", "service_catalogue", source or "upload", None, actor=actor,
                     created=counts["new"], updated=counts["updated"], unchanged=counts["unchanged"])
    return {"created": counts["new"], "updated": counts["updated"], "unchanged": counts["unchanged"]}


def import_table(data: bytes | str, actor: str, user=None, filename: str = "") -> dict:
    """The API's import: check (``plan_catalogue``) and write in the caller's transaction."""
    return import_catalogue(plan_catalogue(data, user, filename), actor, source=filename)


def run_catalogue_import(user, data: bytes, filename: str, progress) -> dict:
    """The staff web's confirmed import as a background job (``core.imports.start``): the upload is
    checked again (the catalogue may have changed since the preview), then written; the job commits."""
    progress.phase("check", 0)
    plan = plan_catalogue(data, user, filename)
    progress.phase("write", len(plan.items))
    res = import_catalogue(plan, user.username, progress, source=filename)
    return {"new": res["created"], "updated": res["updated"], "unchanged": res["unchanged"]}


def import_file(path, actor: str = "cli") -> dict:
    """``communitv services import FILE`` and the demo seed: the catalogue (.xlsx or CSV) at ``path``."""
    with open(path, "rb") as fh:
        return import_table(fh.read(), actor, filename=str(path))


# 事项准入 (admission lists) ----------------------------------------------------------------

def _town_of(region: Region) -> Region:
    return region if region.level == "town" else region.parent


def admit(user, town: Region, codes: list[str], admitted: bool, actor: str | None = None) -> int:
    """A town clerk (or admin) admits items for the town's village halls, or takes them off the
    list. Only items a village hall can take (``local``) are admitted. Returns rows changed."""
    if town.level != "town":
        raise bad_request("准入清单按镇（街道）设置", field="town")
    if user is not None:
        if not user.has_role("clerk", "admin"):
            raise forbidden("只有办事员或管理员可以设置准入清单")
        if not user.scope.covers(town) or user.region.level == "village":
            raise forbidden(f"{town.name} 的准入清单不在您的管辖范围内")
    actor = actor or (user.username if user is not None else "system")
    have = {a.service_code: a for a in session.scalars(
        select(ServiceAdmission).where(ServiceAdmission.town_id == town.id))}
    changed = 0
    for code in dict.fromkeys(codes):
        item = session.scalar(select(ServiceItem).where(ServiceItem.code == code))
        if item is None:
            raise not_found(f"事项 {code}")
        if admitted and code not in have:
            if not item.local:
                raise conflict(f"「{item.name}」不能在村便民服务站办理，不能列入准入清单")
            session.add(ServiceAdmission(town_id=town.id, town_path=town.path, service_code=code,
                                         admitted_by=actor))
            changed += 1
        elif not admitted and code in have:
            session.delete(have[code])
            changed += 1
    session.flush()
    if changed:
        audit.record("services.admission_" + ("granted" if admitted else "revoked"), "service_admission",
                     town.code, town.code, actor=actor, codes=list(codes)[:200], changed=changed)
    return changed


def where_to_go(item: ServiceItem, village: Region | None = None) -> str:
    """Where a resident goes for an item their village hall cannot take (the 409's advice)."""
    town = _town_of(village) if village is not None and village.level != "city" else None
    if item.handle_level == "department":
        return f"请到市政务服务中心（{item.implementer}）办理" + (f"，或到{town.name}便民服务中心咨询" if town else "")
    return f"请到{town.name}便民服务中心办理" if town else "请到镇（街道）便民服务中心办理"


def require_receivable(item: ServiceItem, desk: Region) -> None:
    """409 when ``desk`` (a village hall) may not receive ``item``: not a village-level item, or not
    on its town's admission list (准入清单). Town centres receive every item (全市通办)."""
    if desk.level != "village":
        return
    ok = item.local and queries.admitted(desk.parent_id, item.code)
    if not ok:
        raise conflict(f"「{item.name}」未列入{desk.parent.name}村级准入清单，{desk.name}便民服务站不能受理。"
                       + where_to_go(item, desk), where=HANDLE_LEVEL_NAMES[item.handle_level],
                       handle_level=item.handle_level)


def withdraw_item(item: ServiceItem, actor: str) -> None:
    item.active = False
    item.updated_at = utcnow()
    session.flush()
    audit.record("services.item_withdrawn", "service_item", item.code, None, actor=actor)


# Slots ------------------------------------------------------------------------------------

def ensure_slots(regions: list[Region], days: int = 7, today: dt.date | None = None) -> int:
    """Weekday slots for the next ``days`` days at each place (village hall / town centre)."""
    zone = clock.city_tz()
    today = today or clock.today()
    made = 0
    for region in regions:
        if region.level not in CAPACITY:
            continue
        first = dt.datetime.combine(today, dt.time(0), zone).astimezone(dt.UTC)
        have = {clock.local(s) for s in session.scalars(
            select(BookingSlot.starts_at).where(BookingSlot.region_id == region.id,
                                                BookingSlot.starts_at >= first))}
        for d in range(days):
            day = today + dt.timedelta(days=d)
            if day.weekday() >= 5:
                continue
            for start, end in SLOT_WINDOWS:
                s = dt.datetime.combine(day, dt.time.fromisoformat(start), zone)
                if s in have:
                    continue
                e = dt.datetime.combine(day, dt.time.fromisoformat(end), zone)
                # Stored in UTC: SQLite keeps no offset, and clock.aware() reads naive values as UTC.
                session.add(BookingSlot(region_id=region.id, region_path=region.path,
                                        starts_at=s.astimezone(dt.UTC),
                                        ends_at=e.astimezone(dt.UTC), capacity=CAPACITY[region.level]))
                made += 1
    session.flush()
    return made


def add_slot(region: Region, starts_at: dt.datetime, ends_at: dt.datetime, capacity: int, actor: str) -> BookingSlot:
    """A staff-made slot (e.g. an extra Saturday morning)."""
    if region.level not in CAPACITY:
        raise bad_request("slots are at a village hall or a town service centre", field="region_code")
    if ends_at <= starts_at:
        raise bad_request("ends_at must be after starts_at", field="ends_at")
    if not 1 <= capacity <= 200:
        raise bad_request("capacity must be 1–200", field="capacity")
    # Stored in UTC: SQLite keeps no offset, and clock.aware() reads naive values as UTC.
    slot = BookingSlot(region_id=region.id, region_path=region.path, starts_at=clock.utc(starts_at),
                       ends_at=clock.utc(ends_at), capacity=capacity)
    session.add(slot)
    session.flush()
    audit.record("services.slot_added", "booking_slot", slot.id, region.code, actor=actor,
                 starts_at=starts_at.isoformat(), capacity=capacity)
    return slot


def set_slot_closed(slot: BookingSlot, closed: bool, actor: str) -> None:
    slot.closed = closed
    session.flush()
    audit.record("services.slot_closed" if closed else "services.slot_opened", "booking_slot", slot.id,
                 slot.region.code, actor=actor)


# Bookings ---------------------------------------------------------------------------------

def places_for(terminal: Terminal, item: ServiceItem) -> list[Region]:
    """Where this box's household may book the item: its village hall when the item is local
    (全市通办 at village level), and always its town's service centre."""
    village = terminal.region
    if village is None:
        return []
    if village.level != "village":
        return [village] if village.level == "town" else []
    out = [village] if item.local else []
    if village.parent is not None:
        out.append(village.parent)
    return out


def book(terminal: Terminal, service_code: str, slot_id: int, now: dt.datetime | None = None) -> Booking:
    """Book ``slot_id`` for ``service_code`` from a box. 404 unknown, 400 wrong place,
    409 full / past / closed / already booked."""
    now = (now or utcnow()).astimezone(dt.UTC)
    item = session.scalar(select(ServiceItem).where(ServiceItem.code == service_code, ServiceItem.active.is_(True)))
    if item is None:
        raise not_found(f"service {service_code}")
    slot = session.get(BookingSlot, slot_id)
    if slot is None:
        raise not_found(f"slot {slot_id}")
    if slot.region_id not in [r.id for r in places_for(terminal, item)]:
        if slot.region.level == "village" and not item.local:
            raise bad_request(f"「{item.name}」不能在村便民服务站办理，请预约镇便民服务中心", field="slot_id")
        raise bad_request("这个时段不在您所在村或镇的办理点", field="slot_id")
    if slot.closed:
        raise conflict("该时段已停止预约（办理点关闭），请选择其他时段", reason="closed")
    if clock.aware(slot.starts_at) <= now:
        raise conflict("该时段已经过去，请选择以后的时段", reason="past")
    dup = session.scalar(select(Booking).where(Booking.household_id == terminal.household_id,
                                               Booking.slot_id == slot.id,
                                               Booking.service_code == item.code,
                                               Booking.status == "booked")) if terminal.household_id else None
    if dup is not None:
        raise conflict(f"您已预约该时段，预约码 {dup.code}", reason="duplicate", booking_id=dup.id)
    # One conditional UPDATE takes a place: two boxes racing for the last place cannot both win.
    taken = session.execute(update(BookingSlot).where(BookingSlot.id == slot.id,
                                                       BookingSlot.booked < BookingSlot.capacity,
                                                       BookingSlot.closed.is_(False))
                            .values(booked=BookingSlot.booked + 1)).rowcount
    if not taken:
        raise conflict("该时段已约满，请选择其他时段", reason="full")
    session.refresh(slot)
    b = Booking(code="tmp", slot_id=slot.id, service_code=item.code, household_id=terminal.household_id,
                terminal_serial=terminal.serial, status="booked", created_at=now)
    session.add(b)
    session.flush()
    local_day = clock.local(slot.starts_at)
    b.code = f"YY{local_day:%m%d}{b.id:05d}"
    session.flush()
    audit.record("services.booked", "booking", b.id, slot.region.code, actor=f"terminal:{terminal.serial}",
                 code=b.code, service=item.code, slot=slot.id)
    return b


def cancel(booking: Booking, actor: str) -> Booking:
    """Cancel a booking (frees its place). 409 when it is no longer booked or its time has passed."""
    if booking.status != "booked":
        raise conflict(f"预约 {booking.code} 已{'取消' if booking.status == 'cancelled' else '办结'}，不能再取消")
    if clock.aware(booking.slot.starts_at) <= utcnow():
        raise conflict(f"预约 {booking.code} 的时段已经开始，不能取消")
    booking.status = "cancelled"
    booking.cancelled_at = utcnow()
    session.execute(update(BookingSlot).where(BookingSlot.id == booking.slot_id, BookingSlot.booked > 0)
                    .values(booked=BookingSlot.booked - 1))
    session.flush()
    audit.record("services.booking_cancelled", "booking", booking.id, booking.slot.region.code, actor=actor,
                 code=booking.code)
    return booking


def serve(booking: Booking, user) -> Booking:
    """Staff mark a booking as served at the counter."""
    scope.require(user, booking.slot.region, "预约")
    if booking.status != "booked":
        raise conflict(f"预约 {booking.code} 当前状态不能办结")
    booking.status = "served"
    booking.served_at = utcnow()
    booking.served_by = user.username
    session.flush()
    audit.record("services.booking_served", "booking", booking.id, booking.slot.region.code,
                 actor=user.username, code=booking.code)
    return booking
