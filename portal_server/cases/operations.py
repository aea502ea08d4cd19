"""Every write of one-stop handling: apply (a box or a clerk at the counter) and the actions of
INTERFACES §4.2. validate → change → flush → audit → outbox (notice to the household's boxes).
The caller commits once. Errors are core ``ApiError``s: 400 bad input, 403 scope, 404, 409 state.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from types import SimpleNamespace

from sqlalchemy import bindparam, insert, select, update

from portal_server.core import audit, clock, crypto, db, outbox, protocol, scope
from portal_server.core.accounts import Department, User, user_by_username
from portal_server.core.api import ApiError, bad_request, conflict, forbidden, not_found
from portal_server.core.db import session
from portal_server.core.households import Household
from portal_server.core.regions import Region, region_by_code
from portal_server.core.terminals import BoxIdentity, Terminal
from portal_server.registry import queries as registry_queries
from portal_server.services import operations as service_ops
from portal_server.services import queries as service_queries

from . import queries as case_queries
from .models import CHANNELS, OPEN, STATUS_NAMES, Case, CaseEvent

#: action → (statuses it is allowed in, status after it; None keeps the status).
TRANSITIONS = {
    "accept": (("submitted",), "accepted"),
    "return": (("submitted", "accepted"), "returned"),
    "forward": (("submitted", "accepted"), None),
    "suspend": (("accepted",), "suspended"),
    "resume": (("suspended",), "accepted"),
    "complete": (("accepted",), "completed"),
    "supervise": (OPEN, None),
    "follow_up": (("completed",), "followed_up"),
    "evaluate": (("completed", "followed_up"), "evaluated"),
    "archive": (("returned", "followed_up", "evaluated"), "archived"),
}
ACTION_NAMES = {"submit": "提交申请", "accept": "受理", "return": "退回", "forward": "转办", "suspend": "挂起",
                "resume": "恢复办理", "complete": "办结", "supervise": "督办", "follow_up": "回访",
                "evaluate": "评价", "archive": "归档", "materials": "核对材料"}
#: Actions that need a note (the reason is told to the resident).
NOTE_REQUIRED = ("return", "suspend")
#: Actions of the desk holding the case (the clerk must hold the desk).
DESK_ACTIONS = ("accept", "return", "forward", "suspend", "resume", "complete")
STAFF_ROLES = ("clerk", "handler")
#: A case notice is stale after a week (the case page keeps the whole timeline).
NOTICE_TTL_S = 7 * 24 * 3600
LEADER_ROLES = ("analyst",)


# Helpers ---------------------------------------------------------------------------------------

def applicant_key(id_number: str | None) -> str | None:
    """Keyed hash of an ID number (the registry's ``crypto.lookup_hash``): equal for the same
    person in cases and in the population register, useless to anyone without the key."""
    return crypto.lookup_hash(id_number.strip().upper()) if id_number else None


def _desk_of(user: User) -> tuple[str, str, str]:
    """(level, code, path) of the desk a staff member sits at."""
    if user.department_code:
        return "department", user.department_code, user.region.path
    return user.region.level, user.region.code, user.region.path


def _actor_level(who) -> str:
    if isinstance(who, Terminal):
        return "household"
    return "department" if who.department_code else who.region.level


def _actor_name(who) -> str:
    return f"terminal:{who.serial}" if isinstance(who, Terminal) else who.username


def _event(case: Case, action: str, who, note: str = "") -> CaseEvent:
    ev = CaseEvent(action=action, actor=_actor_name(who), level=_actor_level(who), status=case.status,
                   desk_code=case.desk_code, note=note or "", at=clock.now())
    case.events.append(ev)
    case.updated_at = ev.at
    return ev


def _notify(case: Case, action: str) -> None:
    """After commit: MQTT notice to the household's village (``_notice``)."""
    _notice(case.household.region.code, case.id, case.household_id, action)


def _notice(village_code: str, case_id: int, household_id: int, action: str) -> None:
    """After commit: MQTT notice to the village's boxes (the box shows 我的办件) — no personal
    data in the payload: boxes of the village share the topic; each box asks /tv/cases/ for its own.
    It expires after ``NOTICE_TTL_S``: ``expires`` in the payload, and the broker drops it from the
    queue of a box that has been off that long (boxes keep their session: clean_start=False)."""
    now = int(clock.now().timestamp())
    outbox.mqtt(protocol.region_notice_topic(village_code),
                protocol.notice_payload("case", case_id, f"您的办件有新进度：{ACTION_NAMES.get(action, action)}",
                                        "/tv/cases/", ts=now, household_id=household_id,
                                        expires=now + NOTICE_TTL_S),
                expiry_s=NOTICE_TTL_S)


def _audit(case: Case, action: str, actor: str, **detail) -> None:
    audit.record(f"cases.{action}", "case", case.id, case.household.region.code, actor=actor,
                 number=case.number, status=case.status, desk=case.desk_code, **detail)


# Intake comparison -------------------------------------------------------------------------------

#: Another household's case for the same subsidy and the same person, in any status but returned
#: (a plain comparison, not an IN list the statement would expand at every execution).
_SAME_SUBSIDY = (select(Case.__table__.c.id)
                 .where(Case.__table__.c.applicant_key == bindparam("key"),
                        Case.__table__.c.service_code == bindparam("code"),
                        Case.__table__.c.household_id != bindparam("household_id"),
                        Case.__table__.c.id != bindparam("exclude"),
                        Case.__table__.c.status != "returned")
                 .limit(1))


def intake_flags(item, household: Household, key: str | None, exclude_case_id: int | None = None) -> list[dict]:
    """What the clerk must look at before accepting (the seed's 数据比对): the applicant's household is
    marked deceased, or the same subsidy is already active/completed for the same ID number in another
    household, or the population register (registry) lists the applicant as deceased."""
    return _flags(item, household.id, household.tag_list, key, exclude_case_id)


def _flags(item, household_id: int, tags: list[str], key: str | None,
           exclude_case_id: int | None = None) -> list[dict]:
    """``intake_flags`` from plain values (``item`` a ``ServiceItem`` or its row)."""
    flags: list[dict] = []
    if "deceased" in tags:
        flags.append({"code": "deceased", "message": "户内标记为“已故”，请核实申请人是否在世"})
    dead = registry_queries.deceased_name(key)
    if dead is not None and "deceased" not in tags:
        flags.append({"code": "deceased", "message": f"人口库中申请人{dead}已登记为已故，请核实后再受理"})
    if item.subsidy and key:
        other_id = session.connection().execute(_SAME_SUBSIDY, {"key": key, "code": item.code,
                                                                "household_id": household_id,
                                                                "exclude": exclude_case_id or 0}).scalar()
        if other_id is not None:
            other = session.get(Case, other_id)
            flags.append({"code": "duplicate", "message": f"同一身份证号已在其他户（{other.household.number}）"
                          f"申请或享受“{item.name}”（办件 {other.number}，{STATUS_NAMES[other.status]}），请核实是否重复享受"})
    return flags


# Apply -----------------------------------------------------------------------------------------
# Every box's 我要办理 is this path, and fifty boxes may press it at once: the reads and writes are
# Core statements on the session's connection (no ORM objects to build, no unit of work), the
# checks run before the write lock is taken, and the write is four INSERT/UPDATE statements.

_CASES, _EVENTS = Case.__table__, CaseEvent.__table__
_BY_KEY = select(_CASES.c.id).where(_CASES.c.idempotency_key == bindparam("key"))
#: The number of a case just inserted (it holds the case's id), built once.
_SET_NUMBER = update(_CASES).where(_CASES.c.id == bindparam("case_id")).values(number=bindparam("number"))
_INSERT_EVENT = insert(_EVENTS)
_H, _VILLAGE = Household.__table__, Region.__table__.alias("village")
_TOWN = Region.__table__.alias("town")
#: A box's household with its village and town, in one row.
_HOUSEHOLD = (select(_H.c.id, _H.c.head_name, _H.c.id_number_enc, _H.c.tags, _H.c.region_path,
                     _VILLAGE.c.id.label("village_id"), _VILLAGE.c.code.label("village_code"),
                     _VILLAGE.c.path.label("village_path"), _VILLAGE.c.level.label("village_level"),
                     _VILLAGE.c.parent_id.label("town_id"), _TOWN.c.code.label("town_code"),
                     _TOWN.c.path.label("town_path"))
              .select_from(_H.join(_VILLAGE, _VILLAGE.c.id == _H.c.region_id)
                           .outerjoin(_TOWN, _TOWN.c.id == _VILLAGE.c.parent_id))
              .where(_H.c.id == bindparam("household_id")))


@dataclass
class Application:
    """An application checked and ready to file: ``row`` holds the new case's columns; a retry
    with the same idempotency key carries the earlier ``case`` instead (and no row)."""

    row: dict | None
    actor: str            # "terminal:<serial>" or a username
    level: str            # household, village, town or department (the first step's level)
    village_code: str     # the household's village: its boxes get the notice
    case: Case | None = None

    @property
    def retry(self) -> bool:
        return self.case is not None


def _checked(channel: str, note: str | None, idempotency_key: str | None) -> str:
    """The checks every application shares; → the note, stripped."""
    if channel not in CHANNELS:
        raise bad_request(f"channel 应为 {'、'.join(CHANNELS)} 之一", field="channel")
    note = (note or "").strip()
    if len(note) > 1000:
        raise bad_request("备注最多 1000 字", field="note")
    if idempotency_key is not None and not (0 < len(idempotency_key) <= 64):
        raise bad_request("idempotency_key 应为 1–64 个字符", field="idempotency_key")
    return note


def _earlier(full_key: str | None) -> Case | None:
    """The case an earlier try with the same (owner-qualified) idempotency key filed."""
    if not full_key:
        return None
    case_id = session.connection().execute(_BY_KEY, {"key": full_key}).scalar()
    return session.get(Case, case_id) if case_id is not None else None


def _item(service_code: str):
    item = service_queries.item_row(service_code)
    if item is None:
        raise not_found(f"事项 {service_code}")
    return item


def _case_row(item, *, household_id: int, region_path: str, applicant_name: str, key: str | None,
              flags: list[dict], channel: str, desk: tuple[str, str, str], note: str, full_key: str | None,
              actor: str) -> dict:
    """Every column of a new case: submitted now, due ``promised_days`` working days from now."""
    now = clock.now()
    level, code, path = desk
    return {"number": None, "service_code": item.code, "service_name": item.name, "household_id": household_id,
            "region_path": region_path, "applicant_name": applicant_name.strip(), "applicant_key": key,
            "channel": channel, "status": "submitted", "desk_level": level, "desk_code": code, "desk_path": path,
            "deadline": clock.add_working_days(now, max(item.promised_days, 1)), "note": note,
            "materials_json": json.dumps([dict(m, received=False) for m in json.loads(item.materials_json or "[]")],
                                         ensure_ascii=False),
            "flags_json": json.dumps(flags, ensure_ascii=False), "supervised": 0, "score": None,
            "idempotency_key": full_key, "created_by": actor, "created_at": now, "updated_at": now,
            "suspended_at": None, "completed_at": None}


def prepare_box_application(box: BoxIdentity, service_code: str, channel: str, *, note: str | None = None,
                            idempotency_key: str | None = None) -> Application:
    """Every check and read of a box's application, writing nothing (the API runs it before it
    takes the database's write lock; ``file_application`` then writes): the box's household
    applies; its village hall receives the item when it is on the town's admission list, else
    the town centre; an item that must be handled in person → 409 saying where to go."""
    note = _checked(channel, note, idempotency_key)
    if box.household_id is None:
        raise forbidden("只有入户机顶盒可以申请办件")
    full_key = f"hh{box.household_id}:{idempotency_key}" if idempotency_key else None
    actor = f"terminal:{box.serial}"
    hh = session.connection().execute(_HOUSEHOLD, {"household_id": box.household_id}).first()
    earlier = _earlier(full_key)
    if earlier is not None:
        return Application(None, actor, "household", hh.village_code, earlier)
    item = _item(service_code)
    if not item.tv_apply:
        raise conflict(f"「{item.name}」需要本人到现场办理，不能在电视上申请。"
                       + service_ops.where_to_go(item, session.get(Region, hh.village_id)))
    if hh.village_level == "village" and item.local and service_queries.admitted(hh.town_id, item.code):
        desk = ("village", hh.village_code, hh.village_path)
    else:
        desk = ("town", hh.town_code, hh.town_path)
    key = applicant_key(crypto.decrypt(hh.id_number_enc))
    row = _case_row(item, household_id=hh.id, region_path=hh.region_path, applicant_name=hh.head_name, key=key,
                    flags=_flags(item, hh.id, hh.tags.split(), key), channel=channel, desk=desk, note=note,
                    full_key=full_key, actor=actor)
    return Application(row, actor, "household", hh.village_code)


def prepare_application(service_code: str, channel: str, *, user: User | None = None,
                        household_id: int | None = None, note: str | None = None,
                        idempotency_key: str | None = None, applicant_name: str | None = None,
                        id_number: str | None = None) -> Application:
    """A clerk at the counter applies for ``household_id`` (代办): their own desk receives it (a
    village hall only admitted items → 409 saying where to go; a city account, which has no
    counter, hands it to the household's town centre). Checks and reads only, as for a box."""
    note = _checked(channel, note, idempotency_key)
    if user is None or not user.has_role(*STAFF_ROLES):
        raise forbidden("只有办事员可以代为申请办件")
    if not household_id:
        raise bad_request("缺少 household_id", field="household_id")
    household = session.get(Household, household_id)
    if household is None:
        raise not_found(f"household {household_id}")
    scope.require(user, household.region, "该户")
    village: Region = household.region
    full_key = f"{user.username}:{idempotency_key}" if idempotency_key else None
    earlier = _earlier(full_key)
    if earlier is not None:
        return Application(None, user.username, _actor_level(user), village.code, earlier)
    item = _item(service_code)
    desk = _desk_of(user)
    if desk[0] == "village":
        service_ops.require_receivable(item, user.region)
    elif desk[0] == "city":
        # A city account (the 12345 hotline) has no counter: the household's town centre receives it.
        town = village.parent
        desk = ("town", town.code, town.path)
    if applicant_name is not None and not (0 < len(applicant_name.strip()) <= 32):
        raise bad_request("申请人姓名应为 1–32 个字", field="applicant_name")
    key = applicant_key(id_number) if id_number else applicant_key(crypto.decrypt(household.id_number_enc))
    row = _case_row(item, household_id=household.id, region_path=household.region_path,
                    applicant_name=applicant_name or household.head_name, key=key,
                    flags=intake_flags(item, household, key), channel=channel, desk=desk, note=note,
                    full_key=full_key, actor=user.username)
    return Application(row, user.username, _actor_level(user), village.code)


def file_application(application: Application) -> tuple[Case, bool]:
    """Write a prepared application: the case, its number, its first step, the audit row and the
    notice (after commit). A concurrent retry with the same key may have won the race since the
    check (the unique key settles it): then its case is answered. → (case, created): a new case
    comes back as a read-only view of its row and first step (the attributes of a ``Case``,
    nothing to load; ``apply`` loads the ``Case`` itself for callers that act on it)."""
    if application.retry:
        return application.case, False
    row = application.row
    conn = session.connection()
    got = conn.execute(db.insert_statement(_CASES, _CASES.c.id, "idempotency_key" if row["idempotency_key"] else None),
                       row).first()
    if got is None:
        return session.get(Case, conn.execute(_BY_KEY, {"key": row["idempotency_key"]}).scalar()), False
    case_id = got[0]
    number = f"BJ{clock.local(row['created_at']):%Y%m%d}{case_id:06d}"
    conn.execute(_SET_NUMBER, {"case_id": case_id, "number": number})
    first = {"case_id": case_id, "action": "submit", "actor": application.actor, "level": application.level,
             "status": "submitted", "desk_code": row["desk_code"], "note": row["note"], "at": row["created_at"]}
    conn.execute(_INSERT_EVENT, first)
    audit.append("cases.submit", "case", case_id, application.village_code, actor=application.actor,
                 number=number, status="submitted", desk=row["desk_code"], service=row["service_code"],
                 channel=row["channel"], flags=len(json.loads(row["flags_json"])))
    _notice(application.village_code, case_id, row["household_id"], "submit")
    # The answer is read from what was written: plain attributes, as ``queries.to_dict`` reads a
    # Case (building ORM objects for it cost a box's application more than two of its INSERTs).
    case = SimpleNamespace(**dict(row, id=case_id, number=number), flags=json.loads(row["flags_json"]),
                           materials=json.loads(row["materials_json"]), events=[SimpleNamespace(**first)])
    return case, True


def apply(service_code: str, channel: str, **kw) -> tuple[Case, bool]:
    """A clerk's application (``prepare_application`` then ``file_application`` in one
    transaction), as a case loaded in the session; a retry with the same ``idempotency_key``
    returns the same case. → (case, created)"""
    case, created = file_application(prepare_application(service_code, channel, **kw))
    return (session.get(Case, case.id) if created else case), created


# Actions ---------------------------------------------------------------------------------------

def _holds_desk(user: User, case: Case) -> bool:
    if user.has_role("admin") and scope.covers(user, region_by_code(case.desk_code) or case.desk_code):
        return True
    if case.desk_level == "department":
        return user.department_code == case.desk_code or (user.has_role("admin") and user.region.level == "city")
    if user.department_code:
        return False
    return user.scope.path and case.desk_path.startswith(user.scope.path)


def _desk_label(case: Case) -> str:
    return case_queries.desk_labels([case]).get(case.desk_code, case.desk_code)


def desk_label(case: Case) -> str:
    """The desk holding the case in words, e.g. 东河村便民服务站, 青石镇便民服务中心, 市民政局."""
    return _desk_label(case)


def _forward_target(case: Case, to: str | None) -> tuple[str, str, str]:
    """(level, code, path) of a forward target: the case's village hall, its town centre, or a city
    department; ``to`` is a region code, a department code or a staff username."""
    to = (to or "").strip()
    if not to:
        raise bad_request("转办需要 to（村/镇区域代码、部门代码或办事员账号）", field="to")
    u = user_by_username(to)
    if u is not None and u.active:
        to = u.department_code or u.region.code
    dept = session.scalar(select(Department).where(Department.code == to))
    if dept is not None:
        return "department", dept.code, dept.region.path
    region = region_by_code(to)
    if region is None:
        raise bad_request(f"转办目标 {to} 不存在", field="to")
    village = case.household.region
    if region.id not in (village.id, village.parent_id):
        raise bad_request(f"只能转给申请户所在的{village.name}便民服务站、{village.parent.name}便民服务中心或市直部门",
                          field="to")
    if region.level == "village":
        item = service_queries.item_by_code(case.service_code, include_withdrawn=True)
        if item is not None:
            service_ops.require_receivable(item, region)
    return region.level, region.code, region.path


def act(case: Case, action: str, who, note: str | None = None, to: str | None = None,
        score: int | None = None) -> Case:
    """One action of INTERFACES §4.2 on ``case`` by a staff ``User`` or the household's ``Terminal``.
    409 naming the status when the action is not allowed now; 400 for a missing note/score/target;
    403 outside the actor's scope or role."""
    if action not in TRANSITIONS:
        raise bad_request(f"未知操作 {action}；可用：{'、'.join(TRANSITIONS)}", field="action")
    allowed, after = TRANSITIONS[action]
    note = (note or "").strip()
    if len(note) > 1000:
        raise bad_request("说明最多 1000 字", field="note")
    # Who may do it.
    if isinstance(who, Terminal):
        if who.household_id != case.household_id:
            raise forbidden("这不是本户的办件")
        if action != "evaluate":
            raise forbidden("机顶盒只能评价本户已办结的办件")
    else:
        village = case.household.region
        if action in DESK_ACTIONS:
            if not who.has_role(*STAFF_ROLES):
                raise forbidden("只有办事员可以办理办件")
            if not _holds_desk(who, case):
                raise forbidden(f"办件 {case.number} 在{_desk_label(case)}，不在您的办理范围内")
        elif action == "supervise":
            if not who.has_role(*LEADER_ROLES):
                raise forbidden("只有领导（分析员）可以督办")
            scope.require(who, village, "办件")
        else:  # follow_up, evaluate (recorded after the call), archive
            if not who.has_role(*STAFF_ROLES):
                raise forbidden("只有办事员可以回访、记录评价和归档")
            if not (scope.covers(who, village) or _holds_desk(who, case)):
                raise scope.OutOfScope(village, "办件")
    if case.status not in allowed:
        raise conflict(f"办件当前状态为“{STATUS_NAMES[case.status]}”（{case.status}），不能{ACTION_NAMES[action]}",
                       current_status=case.status)
    if action in NOTE_REQUIRED and not note:
        raise bad_request(f"{ACTION_NAMES[action]}必须填写说明（note），告诉群众原因", field="note")
    now = clock.now()
    detail: dict = {}
    if action == "forward":
        level, code, path = _forward_target(case, to)
        if code == case.desk_code:
            raise bad_request("办件已在该办理点", field="to")
        detail["from"] = case.desk_code
        case.desk_level, case.desk_code, case.desk_path = level, code, path
        detail["to"] = code
        note = note or f"转至{_desk_label(case)}"
    elif action == "evaluate":
        if isinstance(score, bool) or not isinstance(score, int) or not 1 <= score <= 5:
            raise bad_request("评价需要 score（1–5 分）", field="score")
        case.score = score
        detail["score"] = score
    elif action == "suspend":
        case.suspended_at = now
    elif action == "resume":
        # The clock stops while the case waits on the applicant: the deadline moves by the pause.
        if case.suspended_at is not None:
            case.deadline = clock.aware(case.deadline) + (now - clock.aware(case.suspended_at))
        case.suspended_at = None
    elif action == "complete":
        case.completed_at = now
    elif action == "supervise":
        case.supervised += 1
    if after is not None:
        case.status = after
    _event(case, action, who, note)
    session.flush()
    _audit(case, action, _actor_name(who), note=note[:200], **detail)
    _notify(case, action)
    return case


def check_materials(case: Case, user: User, received: list[int]) -> Case:
    """Tick the materials received at the counter (the checklist on the case page)."""
    if not user.has_role(*STAFF_ROLES) or not _holds_desk(user, case):
        raise forbidden(f"办件 {case.number} 不在您的办理范围内")
    if case.status not in OPEN:
        raise conflict(f"办件当前状态为“{STATUS_NAMES[case.status]}”，不能再核对材料", current_status=case.status)
    mats = case.materials
    for i, m in enumerate(mats):
        m["received"] = i in received
    case.materials_json = json.dumps(mats, ensure_ascii=False)
    got = sum(1 for m in mats if m["received"])
    _event(case, "materials", user, f"已收材料 {got}/{len(mats)} 项")
    session.flush()
    _audit(case, "materials", user.username, received=got, total=len(mats))
    return case


__all__ = ["TRANSITIONS", "ApiError", "Application", "act", "apply", "check_materials", "file_application",
           "intake_flags", "prepare_application", "prepare_box_application"]
