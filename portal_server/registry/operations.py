"""Every write of the registry: households, residents, houses, imports, staff accounts, box
pairing, the data comparison. validate → change → flush → audit; the handler commits once.
"""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from sqlalchemy import delete, func, insert, select

from device_fleet import operations as fleet_ops
from portal_server.core import audit, crypto, imports, scope
from portal_server.core.accounts import (
    ROLES,
    User,
    UserRole,
    create_user,
    user_by_username,
)
from portal_server.core.api import ApiError
from portal_server.core.db import session, utcnow
from portal_server.core.households import TAG_NAMES, Household
from portal_server.core.regions import Region, region_by_code
from portal_server.core.terminals import Terminal

from .models import Finding, House, HouseholdHouse, Person

#: Roles that may change base data (admins hold every role).
WRITE_ROLES = ("clerk",)
#: Roles that may read it.
READ_ROLES = ("clerk", "grid_worker", "handler", "analyst", "noc")

_NAME_TO_CODE = {v: k for k, v in TAG_NAMES.items()}
_SPLIT = re.compile(r"[、,，;；\s]+")
_MOBILE = re.compile(r"^1[3-9]\d{9}$")
_LANDLINE = re.compile(r"^0\d{2,3}-?\d{7,8}$")
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


class RegistryError(ApiError):
    """400 in Chinese naming the field."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(400, "bad_request", message, **({"field": field} if field else {}))


# Checks --------------------------------------------------------------------------------------

def parse_tags(value, field: str = "tags") -> list[str]:
    """Tags as codes from a list or a 、/,-separated string of codes or Chinese names."""
    if value is None:
        return []
    items = value if isinstance(value, (list, tuple, set)) else _SPLIT.split(str(value))
    out = []
    for raw in items:
        t = str(raw).strip()
        if not t:
            continue
        code = t if t in TAG_NAMES else _NAME_TO_CODE.get(t)
        if code is None:
            known = "、".join(f"{n}（{c}）" for c, n in TAG_NAMES.items())
            raise RegistryError(f"未知标签：{t}。可用标签：{known}", field)
        if code not in out:
            out.append(code)
    return out


def id_number_problem(idn: str) -> str | None:
    """Why ``idn`` is not a valid 18-digit GB 11643 citizen ID number (Chinese), or None."""
    if not re.fullmatch(r"\d{17}[\dX]", idn):
        return "身份证号应为 18 位（前 17 位数字，最后一位数字或 X）"
    try:
        dt.date(int(idn[6:10]), int(idn[10:12]), int(idn[12:14]))
    except ValueError:
        return "身份证号中的出生日期无效"
    check = "10X98765432"[sum(int(a) * w for a, w in zip(idn[:17], _ID_WEIGHTS)) % 11]
    if idn[17] != check:
        return "身份证号校验位不正确（GB 11643），请核对"
    return None


def check_id_number(value, field: str = "id_number") -> str | None:
    """A normalised, valid ID number (or None when empty); 400 otherwise."""
    idn = re.sub(r"\s", "", str(value or "")).upper()
    if not idn:
        return None
    why = id_number_problem(idn)
    if why:
        raise RegistryError(why, field)
    return idn


def birth_date_of(idn: str | None) -> dt.date | None:
    if not idn:
        return None
    return dt.date(int(idn[6:10]), int(idn[10:12]), int(idn[12:14]))


def check_phone(value, field: str = "phone") -> str | None:
    """A mobile (11 digits, 1[3-9]…) or landline (0xx-xxxxxxx) number, or None when empty."""
    phone = re.sub(r"[\s()（）]", "", str(value or ""))
    phone = phone.removeprefix("+86")
    if not phone:
        return None
    if _MOBILE.match(phone.replace("-", "")):
        return phone.replace("-", "")
    if _LANDLINE.match(phone):
        return phone
    raise RegistryError(f"电话号码格式不正确：{value}（手机号为 11 位，座机如 0991-1234567）", field)


def _text(value, field: str, label: str, max_len: int, required: bool = True) -> str:
    s = str(value or "").strip()
    if required and not s:
        raise RegistryError(f"请填写{label}", field)
    if len(s) > max_len:
        raise RegistryError(f"{label}不能超过 {max_len} 个字", field)
    return s


def _parse_date(value, field: str) -> dt.date | None:
    if value in (None, ""):
        return None
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value).strip()[:10])
    except ValueError:
        raise RegistryError(f"日期格式不正确：{value}（应为 YYYY-MM-DD）", field) from None


def village(user, code, field: str = "region_code") -> Region:
    """The village ``code`` inside the user's scope (403 naming it) — households live in villages."""
    if not code:
        raise RegistryError("请填写村代码", field)
    r = region_by_code(str(code).strip())
    if r is None:
        raise RegistryError(f"村代码不存在：{code}", field)
    if r.level != "village":
        raise RegistryError(f"{code}（{r.name}）不是村/社区代码", field)
    return scope.require(user, r, "住户")


def require_household(user, hh: Household) -> Household:
    scope.require(user, hh.region, "住户")
    return hh


# Households ------------------------------------------------------------------------------------

def _next_number(region: Region) -> str:
    prefix = f"H{region.code}-"
    taken = set(session.scalars(select(Household.number).where(Household.number.startswith(prefix))))
    n = len(taken) + 1
    while f"{prefix}{n:03d}" in taken:
        n += 1
    return f"{prefix}{n:03d}"


def _code_of(hh: Household) -> str:
    return hh.region_path.rstrip("/").rsplit("/", 1)[-1]


def _member_values(m: dict, i: int | None) -> dict:
    f = f"members[{i}]." if i is not None else ""
    idn = check_id_number(m.get("id_number"), f + "id_number")
    return {"name": _text(m.get("name"), f + "name", "成员姓名", 32),
            "idn": idn,
            "relation": _text(m.get("relation") or "其他", f + "relation", "与户主关系", 16),
            "birth_date": _parse_date(m.get("birth_date"), f + "birth_date") or birth_date_of(idn),
            "tags": parse_tags(m.get("tags"), f + "tags")}


def _check_id_free(idn: str | None, field: str, except_person: int | None = None) -> None:
    if not idn:
        return
    h = crypto.lookup_hash(idn)
    q = select(Person).where(Person.id_number_hash == h, Person.status == "active")
    if except_person:
        q = q.where(Person.id != except_person)
    other = session.scalar(q)
    if other is not None:
        raise RegistryError(f"身份证号 {crypto.mask_id_number(idn)} 已登记在户 {other.household.number}"
                            f"（{other.name}），请先办理迁出", field)


def _new_person(hh: Household, name: str, idn: str | None, relation: str, birth_date, tags) -> Person:
    p = Person(household_id=hh.id, region_path=hh.region_path, name=name,
               id_number_enc=crypto.encrypt(idn), id_number_hash=crypto.lookup_hash(idn),
               relation=relation, birth_date=birth_date, tags=" ".join(tags), status="active")
    session.add(p)
    return p


def _recount(hh: Household) -> None:
    session.flush()
    hh.size = session.scalar(select(func.count(Person.id)).where(Person.household_id == hh.id,
                                                                  Person.status == "active")) or 0


def create_household(user, data: dict) -> Household:
    """A new household in a village of the user's scope, with its members (the head included)."""
    region = village(user, data.get("region_code"))
    head = _text(data.get("head_name"), "head_name", "户主姓名", 32)
    address = _text(data.get("address"), "address", "地址", 128)
    phone = check_phone(data.get("phone"))
    tags = parse_tags(data.get("tags"))
    members = [_member_values(m, i) for i, m in enumerate(data.get("members") or [])
               if isinstance(m, dict)]
    seen = set()
    for i, m in enumerate(members):
        if m["idn"]:
            if m["idn"] in seen:
                raise RegistryError("成员中有重复的身份证号", f"members[{i}].id_number")
            seen.add(m["idn"])
            _check_id_free(m["idn"], f"members[{i}].id_number")
    head_idn = next((m["idn"] for m in members if m["relation"] == "户主"), None)
    hh = Household(number=_next_number(region), head_name=head, region_id=region.id, region_path=region.path,
                   address=address, size=0, tags=" ".join(tags), phone_enc=crypto.encrypt(phone),
                   id_number_enc=crypto.encrypt(head_idn), status="active")
    session.add(hh)
    session.flush()
    if not any(m["relation"] == "户主" for m in members):
        members.insert(0, {"name": head, "idn": None, "relation": "户主", "birth_date": None, "tags": []})
    for m in members:
        _new_person(hh, m["name"], m["idn"], m["relation"], m["birth_date"], m["tags"])
    _recount(hh)
    audit.record("household.create", "household", hh.id, region.code, number=hh.number, tags=tags,
                 members=len(members))
    return hh


def update_household(user, hh: Household, data: dict) -> Household:
    """PATCH: ``address``, ``phone``, ``tags``, ``head_name``, ``members`` (each with ``id`` to change
    a member, without to add one)."""
    require_household(user, hh)
    if hh.status != "active":
        raise RegistryError("该户已迁出，不能修改", "status")
    changed = []
    if "address" in data:
        hh.address = _text(data["address"], "address", "地址", 128)
        changed.append("address")
    if "head_name" in data:
        hh.head_name = _text(data["head_name"], "head_name", "户主姓名", 32)
        changed.append("head_name")
    if "phone" in data:
        hh.phone_enc = crypto.encrypt(check_phone(data["phone"]))
        changed.append("phone")
    if "tags" in data:
        hh.tags = " ".join(parse_tags(data["tags"]))
        changed.append("tags")
    if "members" in data:
        if not isinstance(data["members"], list):
            raise RegistryError("members 应为列表", "members")
        for i, m in enumerate(data["members"]):
            if not isinstance(m, dict):
                raise RegistryError("members 的每一项应为对象", f"members[{i}]")
            if m.get("id"):
                p = session.get(Person, int(m["id"]))
                if p is None or p.household_id != hh.id:
                    raise RegistryError(f"成员 {m['id']} 不属于该户", f"members[{i}].id")
                update_person(user, p, m, audit_it=False)
            else:
                v = _member_values(m, i)
                _check_id_free(v["idn"], f"members[{i}].id_number")
                _new_person(hh, v["name"], v["idn"], v["relation"], v["birth_date"], v["tags"])
        _recount(hh)
        changed.append("members")
    session.flush()
    audit.record("household.update", "household", hh.id, _code_of(hh), fields=changed)
    return hh


def move_out_household(user, hh: Household, note: str = "") -> Household:
    """The household left the village: it leaves lists, the map and check-ins; its rows stay.

    Its box stays in the house for the next family, so it is released at once: unbound, back on the
    pairing screen, its token version moved on (an old portal URL no longer opens this household's
    names, cases and care). The audit row names the released box (the household page shows it)."""
    require_household(user, hh)
    if hh.status != "active":
        raise RegistryError("该户已迁出", "status")
    hh.status, hh.moved_out_at = "moved_out", utcnow()
    for p in session.scalars(select(Person).where(Person.household_id == hh.id, Person.status == "active")):
        p.status = "moved_out"
    released = []
    for term in session.scalars(select(Terminal).where(Terminal.household_id == hh.id)):
        fleet_ops.unbind_terminal(term, user, reason=f"住户 {hh.number} 整户迁出")
        released.append(term.serial)
    session.flush()
    audit.record("household.move_out", "household", hh.id, _code_of(hh), note=note, released_boxes=released)
    return hh


# People ---------------------------------------------------------------------------------------

def add_person(user, hh: Household, data: dict) -> Person:
    require_household(user, hh)
    if hh.status != "active":
        raise RegistryError("该户已迁出，不能添加成员", "household_id")
    v = _member_values(data, None)
    _check_id_free(v["idn"], "id_number")
    p = _new_person(hh, v["name"], v["idn"], v["relation"], v["birth_date"], v["tags"])
    _recount(hh)
    audit.record("person.create", "person", p.id, _code_of(hh), household_id=hh.id)
    return p


def update_person(user, p: Person, data: dict, audit_it: bool = True) -> Person:
    require_household(user, p.household)
    changed = []
    if "name" in data:
        p.name = _text(data["name"], "name", "姓名", 32)
        changed.append("name")
    if "id_number" in data:
        idn = check_id_number(data["id_number"])
        _check_id_free(idn, "id_number", except_person=p.id)
        p.id_number_enc, p.id_number_hash = crypto.encrypt(idn), crypto.lookup_hash(idn)
        changed.append("id_number")
    if "relation" in data:
        p.relation = _text(data["relation"], "relation", "与户主关系", 16)
        changed.append("relation")
    if "birth_date" in data:
        p.birth_date = _parse_date(data["birth_date"], "birth_date")
        changed.append("birth_date")
    if "tags" in data:
        tags = parse_tags(data["tags"])
        if p.status == "deceased" and "deceased" not in tags:
            tags.append("deceased")
        p.tags = " ".join(tags)
        changed.append("tags")
    session.flush()
    if audit_it:
        audit.record("person.update", "person", p.id, _code_of(p.household), fields=changed)
    return p


def mark_deceased(user, p: Person, died_on: dt.date | None = None) -> Person:
    """The person died: status and tag 已故; the household's member count drops."""
    require_household(user, p.household)
    p.status, p.died_on = "deceased", died_on or dt.date.today()
    if "deceased" not in p.tag_list:
        p.tags = " ".join(p.tag_list + ["deceased"])
    _recount(p.household)
    audit.record("person.deceased", "person", p.id, _code_of(p.household), died_on=p.died_on)
    return p


def move_out_person(user, p: Person) -> Person:
    require_household(user, p.household)
    p.status = "moved_out"
    _recount(p.household)
    audit.record("person.move_out", "person", p.id, _code_of(p.household))
    return p


def unmask(user, obj, field: str, reason: str) -> str | None:
    """The clear phone or ID number of a household or person; written to the audit trail."""
    hh = obj if isinstance(obj, Household) else obj.household
    require_household(user, hh)
    token = getattr(obj, f"{field}_enc")
    audit.record("pii.unmask", "household" if isinstance(obj, Household) else "person", obj.id, _code_of(hh),
                 field=field, reason=reason or "")
    return crypto.decrypt(token)


# Import ---------------------------------------------------------------------------------------

#: Header texts accepted for the household import (Chinese as staff have them; English aliases).
HOUSEHOLD_HEADERS = {"村代码": "region_code", "村（社区）代码": "region_code", "region_code": "region_code",
                     "地址": "address", "住址": "address", "address": "address",
                     "户主姓名": "head_name", "户主": "head_name", "head_name": "head_name",
                     "联系电话": "phone", "电话": "phone", "手机号": "phone", "phone": "phone",
                     "标签": "tags", "tags": "tags",
                     "户主身份证号": "id_number", "身份证号": "id_number", "id_number": "id_number"}
HOUSEHOLD_REQUIRED = ("region_code", "address", "head_name", "phone")


@dataclass
class _HouseholdRow:
    region: Region
    head_name: str
    address: str
    phone: str | None
    tags: list[str]
    idn: str | None
    existing_id: int | None


def household_import_checker(user):
    """The row check of ``imports.plan`` for households: new, updated (same village, head and
    address, other phone or tags) or unchanged; a bad row's message says why in Chinese."""
    regions: dict[str, Region | None] = {}
    existing: dict[tuple[int, str, str], Household] = {}
    loaded: set[int] = set()

    def region_of(code: str) -> Region:
        if code not in regions:
            regions[code] = region_by_code(code)
        r = regions[code]
        if r is None:
            raise imports.RowProblem(f"村代码不存在：{code}")
        if r.level != "village":
            raise imports.RowProblem(f"{code}（{r.name}）不是村/社区代码")
        if not scope.covers(user, r):
            raise imports.RowProblem(f"村 {code}（{r.name}）不在您的管辖范围内")
        if r.id not in loaded:
            loaded.add(r.id)
            for h in session.scalars(select(Household).where(Household.region_id == r.id,
                                                             Household.status == "active")):
                existing[(r.id, h.head_name, h.address)] = h
        return r

    def check(row: imports.Row, state: dict) -> imports.Planned:
        v = row.values
        try:
            region = region_of(v.get("region_code", "").strip())
            head = _text(v.get("head_name"), "head_name", "户主姓名", 32)
            address = _text(v.get("address"), "address", "地址", 128)
            phone = check_phone(v.get("phone"))
            if phone is None:
                raise RegistryError("请填写联系电话")
            tags = parse_tags(v.get("tags"))
            idn = check_id_number(v.get("id_number"))
        except RegistryError as exc:
            raise imports.RowProblem(exc.message) from None
        key = (region.id, head, address)
        first = state.setdefault("keys", {}).get(key)
        if first:
            raise imports.RowProblem(f"与第 {first} 行重复（同一村、户主和地址）")
        state["keys"][key] = row.number
        if idn:
            seen = state.setdefault("ids", {})
            if idn in seen:
                raise imports.RowProblem(f"身份证号与第 {seen[idn]} 行重复")
            seen[idn] = row.number
        old = existing.get(key)
        label = f"{region.name} {address} {head}"
        data = _HouseholdRow(region, head, address, phone, tags, idn, old.id if old else None)
        if old is None:
            if idn and session.scalar(select(Person.id).where(Person.id_number_hash == crypto.lookup_hash(idn),
                                                              Person.status == "active")):
                raise imports.RowProblem(f"身份证号 {crypto.mask_id_number(idn)} 已登记在其他户")
            return imports.Planned(row.number, "new", label, data)
        same = crypto.decrypt(old.phone_enc) == phone and sorted(old.tag_list) == sorted(tags)
        return imports.Planned(row.number, "unchanged" if same else "updated", label, data)

    return check


def plan_household_import(user, data: bytes, filename: str) -> imports.Plan:
    """Read and check an uploaded household table: the preview (nothing written)."""
    rows = imports.read_table(data, filename, HOUSEHOLD_HEADERS, HOUSEHOLD_REQUIRED)
    if not rows:
        raise imports.ImportFileError("表中没有数据行")
    return imports.plan(rows, household_import_checker(user))


def run_household_import(user, data: bytes, filename: str, progress) -> dict:
    """The staff web's confirmed import, run as a background job (``imports.start``): the upload is
    checked again in the user's scope (rows may have changed since the preview), then written;
    ``progress`` (an ``imports.Progress``) tells the page how far. Any bad row → ImportRejected,
    nothing written. The job commits."""
    rows = imports.read_table(data, filename, HOUSEHOLD_HEADERS, HOUSEHOLD_REQUIRED)
    if not rows:
        raise imports.ImportFileError("表中没有数据行")
    progress.phase("check", len(rows))
    plan = imports.plan(rows, household_import_checker(user), progress)
    if plan.bad:
        raise imports.ImportRejected(plan.bad)
    progress.phase("write", len(plan.items))
    written = import_households(user, plan, progress, source=filename)
    counts = plan.counts()
    return {"new": counts["new"], "updated": counts["updated"], "unchanged": counts["unchanged"],
            "written": written}


def import_households(user, plan: imports.Plan, progress=None, source: str = "") -> int:
    """Write a checked plan (all or nothing: ImportRejected when a row is bad); caller commits.

    New households and their heads go in as multi-row INSERTs of 2,000 (a county's 20,000 rows in
    seconds, not one ORM object at a time)."""
    numbers: dict[int, int] = {}
    pending: list[_HouseholdRow] = []

    def next_number(region: Region) -> str:
        if region.id not in numbers:
            prefix = f"H{region.code}-"
            taken = session.scalars(select(Household.number).where(Household.number.startswith(prefix))).all()
            numbers[region.id] = max([int(t.rsplit("-", 1)[1]) for t in taken if t.rsplit("-", 1)[1].isdigit()],
                                     default=0)
        numbers[region.id] += 1
        return f"H{region.code}-{numbers[region.id]:03d}"

    def write(p: imports.Planned) -> None:
        d: _HouseholdRow = p.payload
        if d.existing_id is None:
            pending.append(d)
            if len(pending) >= 2000:
                _insert_new(pending, next_number)
        else:
            hh = session.get(Household, d.existing_id)
            hh.phone_enc, hh.tags = crypto.encrypt(d.phone), " ".join(d.tags)

    n = imports.apply(plan, write, progress)
    _insert_new(pending, next_number)
    counts = plan.counts()
    audit.record("household.import", "import", source or "upload", user.region.code,
                 new=counts["new"], updated=counts["updated"], unchanged=counts["unchanged"])
    return n


def _insert_new(pending: list[_HouseholdRow], next_number) -> None:
    """Insert the pending new households, then their heads as first members."""
    if not pending:
        return
    now = utcnow()
    rows = []
    for d in pending:
        rows.append({"number": next_number(d.region), "head_name": d.head_name, "region_id": d.region.id,
                     "region_path": d.region.path, "address": d.address, "size": 1, "tags": " ".join(d.tags),
                     "phone_enc": crypto.encrypt(d.phone), "id_number_enc": crypto.encrypt(d.idn),
                     "status": "active", "created_at": now})
    session.flush()
    ids = list(session.scalars(insert(Household).returning(Household.id, sort_by_parameter_order=True), rows))
    session.execute(insert(Person), [
        {"household_id": hid, "region_path": d.region.path, "name": d.head_name, "id_number_enc": r["id_number_enc"],
         "id_number_hash": crypto.lookup_hash(d.idn), "relation": "户主", "birth_date": birth_date_of(d.idn),
         "tags": "", "status": "active", "created_at": now, "updated_at": now}
        for hid, d, r in zip(ids, pending, rows)])
    pending.clear()


# Staff accounts -------------------------------------------------------------------------------

def _require_admin_over(admin: User, region: Region) -> None:
    scope.require(admin, region, "账号")


def _roles(value) -> list[str]:
    roles = value if isinstance(value, list) else _SPLIT.split(str(value or ""))
    roles = [r.strip() for r in roles if r and r.strip()]
    if not roles:
        raise RegistryError("请至少选择一个角色", "roles")
    bad = [r for r in roles if r not in ROLES]
    if bad:
        raise RegistryError(f"未知角色：{'、'.join(bad)}（可用：{'、'.join(ROLES)}）", "roles")
    return roles


def _password(value) -> str:
    pw = str(value or "")
    if len(pw) < 8:
        raise RegistryError("密码至少 8 位", "password")
    return pw


def create_account(admin: User, data: dict) -> User:
    """A staff account inside the admin's scope."""
    username = _text(data.get("username"), "username", "用户名", 64)
    if not re.fullmatch(r"[A-Za-z0-9_.-]{2,64}", username):
        raise RegistryError("用户名只能包含字母、数字、点、下划线和连字符", "username")
    if user_by_username(username):
        raise ApiError(409, "conflict", f"用户名已存在：{username}", field="username")
    region = region_by_code(str(data.get("region_code") or admin.region.code))
    if region is None:
        raise RegistryError(f"区域不存在：{data.get('region_code')}", "region_code")
    _require_admin_over(admin, region)
    roles = _roles(data.get("roles"))
    dept = (data.get("department") or None)
    user = create_user(username, _password(data.get("password")), roles, region,
                       display_name=(data.get("display_name") or username), department_code=dept)
    audit.record("user.create", "user", username, region.code, roles=roles, department=dept)
    return user


def update_account(admin: User, user: User, data: dict) -> User:
    """Roles, scope, department, display name, password reset, (de)activation. Deactivating or
    resetting the password stops the user's tokens and sessions at once (both are checked on
    every request)."""
    _require_admin_over(admin, user.region)
    changed = []
    if "region_code" in data:
        region = region_by_code(str(data["region_code"]))
        if region is None:
            raise RegistryError(f"区域不存在：{data['region_code']}", "region_code")
        _require_admin_over(admin, region)
        user.region = region
        changed.append("region_code")
    if "roles" in data:
        roles = _roles(data["roles"])
        session.execute(delete(UserRole).where(UserRole.user_id == user.id))
        session.expire(user, ["role_rows"])
        session.add_all([UserRole(user_id=user.id, role=r) for r in roles])
        changed.append("roles")
    if "department" in data:
        user.department_code = data["department"] or None
        changed.append("department")
    if "display_name" in data:
        user.display_name = _text(data["display_name"], "display_name", "姓名", 64)
        changed.append("display_name")
    if "password" in data:
        user.set_password(_password(data["password"]))
        changed.append("password")
    if "active" in data:
        if user.id == admin.id and not data["active"]:
            raise RegistryError("不能停用自己的账号", "active")
        user.active = bool(data["active"])
        changed.append("active")
    session.flush()
    session.expire(user, ["role_rows"])
    audit.record("user.update", "user", user.username, user.region.code, fields=changed,
                 active=user.active)
    return user


# Houses and the household map --------------------------------------------------------------------

def ensure_house(region: Region, number: str, lane: str, row: int, col: int) -> House:
    h = session.scalar(select(House).where(House.region_id == region.id, House.number == number))
    if h is None:
        h = House(region_id=region.id, region_path=region.path, number=number, lane=lane, row=row, col=col)
        session.add(h)
        session.flush()
    return h


def place_household(user, hh: Household, house: House) -> None:
    require_household(user, hh)
    link = session.get(HouseholdHouse, hh.id)
    if link is None:
        session.add(HouseholdHouse(household_id=hh.id, house_id=house.id))
    else:
        link.house_id = house.id
    session.flush()


# Pairing a box to a household (the installer's phone) ------------------------------------------

def box_for_code(code: str) -> Terminal | None:
    """The unbound box showing ``code`` on its pairing screen (or its serial typed in)."""
    code = (code or "").strip().upper()
    if not code:
        return None
    t = session.scalar(select(Terminal).where(Terminal.pairing_code == code))
    if t is None:
        t = session.scalar(select(Terminal).where(Terminal.serial == code))
    return t


# Data comparison ---------------------------------------------------------------------------------

SUBSIDY_TAGS = ("low_income", "disabled")


def run_comparison(region: Region, extra_checks=()) -> int:
    """Replace ``region``'s findings with a fresh comparison; returns how many were found.

    ``extra_checks`` are callables (region → [(kind, household_id, person_id, detail)]) other
    features' queries contribute (open cases of deceased people, check-in history)."""
    path = region.path
    session.execute(delete(Finding).where(Finding.region_path.startswith(path, autoescape=True)))
    found: list[Finding] = []
    people = session.execute(select(Person, Household).join(Household, Household.id == Person.household_id)
                             .where(Person.region_path.startswith(path, autoescape=True))).all()
    by_hash: dict[str, list[tuple[Person, Household]]] = {}
    for p, hh in people:
        if p.status == "active" and p.id_number_hash:
            by_hash.setdefault(p.id_number_hash, []).append((p, hh))
        idn = crypto.decrypt(p.id_number_enc)
        if idn and id_number_problem(idn):
            found.append(Finding(region_path=p.region_path, kind="bad_id_number", object_type="person",
                                 household_id=hh.id, person_id=p.id,
                                 detail=f"{p.name}（{hh.number}）：{id_number_problem(idn)}"))
        if p.status == "deceased":
            subsidy = [TAG_NAMES[t] for t in SUBSIDY_TAGS if t in p.tag_list
                       or (t in hh.tag_list and hh.size == 0)]
            if subsidy:
                found.append(Finding(region_path=p.region_path, kind="deceased_subsidy", object_type="person",
                                     household_id=hh.id, person_id=p.id,
                                     detail=f"{p.name}（{hh.number}）已故，仍在{'、'.join(subsidy)}名单上"))
    for rows in by_hash.values():
        hhs = {hh.id for _p, hh in rows}
        if len(hhs) > 1:
            names = "、".join(sorted({hh.number for _p, hh in rows}))
            for p, hh in rows:
                found.append(Finding(region_path=p.region_path, kind="two_households", object_type="person",
                                     household_id=hh.id, person_id=p.id,
                                     detail=f"{p.name} 同时登记在 {names}"))
    for check in extra_checks:
        for kind, hid, pid, detail in check(region):
            hh = session.get(Household, hid)
            if hh is not None:
                found.append(Finding(region_path=hh.region_path, kind=kind, object_type="person" if pid else "household",
                                     household_id=hid, person_id=pid, detail=detail))
    session.add_all(found)
    session.flush()
    audit.record("registry.compare", "region", region.code, region.code, actor="system", findings=len(found))
    return len(found)
