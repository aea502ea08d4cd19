"""JSON API of the registry (INTERFACES §4.1): households, people, the household import, users,
the data comparison. Thin: parse, call operations/queries, commit once."""
from __future__ import annotations

from flask import g, request
from sqlalchemy import func, select

from portal_server.core import scope
from portal_server.core.accounts import User, user_by_username
from portal_server.core.api import (
    ApiError,
    json_body,
    make_blueprint,
    not_found,
    page_args,
)
from portal_server.core.auth import api_user_required
from portal_server.core.db import session
from portal_server.core.regions import Region, region_by_code

from . import operations as ops
from . import queries, tasks

bp = make_blueprint("registry_api", __name__)


def _region_arg():
    code = request.args.get("region")
    if not code:
        return None
    return scope.require(g.user, code)


def _tag_arg(name: str = "tag"):
    raw = request.args.get(name)
    if not raw:
        return None
    return ops.parse_tags(raw, name)[0]


def _household(household_id: int):
    hh = queries.household_get(household_id)
    if hh is None:
        raise not_found(f"household {household_id}")
    return ops.require_household(g.user, hh)


@bp.get("/households")
@api_user_required(*ops.READ_ROLES)
def households_list():
    """Households in the caller's scope: ?region=&tag=&q=&status=&page=&per_page=."""
    page_no, per_page = page_args()
    args = (g.user, _region_arg(), _tag_arg(), request.args.get("q"), request.args.get("status", "active"))
    rows, total = queries.page(queries.households_query(*args), page_no, per_page, queries.households_count(*args))
    return {"items": [queries.household_to_dict(hh, s) for hh, s in rows], "total": total,
            "page": page_no, "per_page": per_page}


@bp.post("/households")
@api_user_required(*ops.WRITE_ROLES)
def households_create():
    """A new household (clerk, admin; in scope) with optional members."""
    hh = ops.create_household(g.user, json_body())
    session.commit()
    return queries.household_detail(hh), 201


@bp.get("/households/<int:household_id>")
@api_user_required(*ops.READ_ROLES)
def households_get(household_id: int):
    """One household with its members (masked)."""
    return queries.household_detail(_household(household_id))


@bp.patch("/households/<int:household_id>")
@api_user_required(*ops.WRITE_ROLES)
def households_patch(household_id: int):
    """Change address, head_name, phone, tags, members."""
    hh = ops.update_household(g.user, _household(household_id), json_body())
    session.commit()
    return queries.household_detail(hh)


@bp.post("/households/<int:household_id>/move-out")
@api_user_required(*ops.WRITE_ROLES)
def households_move_out(household_id: int):
    """The household moved away (kept for history, gone from lists)."""
    hh = ops.move_out_household(g.user, _household(household_id), (request.get_json(silent=True) or {}).get("note", ""))
    session.commit()
    return queries.household_detail(hh)


@bp.post("/households/<int:household_id>/unmask")
@api_user_required(*ops.WRITE_ROLES)
def households_unmask(household_id: int):
    """The clear phone number (audited): {"reason"}."""
    hh = _household(household_id)
    phone = ops.unmask(g.user, hh, "phone", (request.get_json(silent=True) or {}).get("reason", ""))
    session.commit()
    return {"id": hh.id, "phone": phone}


@bp.post("/households/import")
@api_user_required(*ops.WRITE_ROLES)
def households_import():
    """Multipart ``file``: .xlsx or .csv (UTF-8/GBK) with 村代码, 地址, 户主姓名, 联系电话, 标签.
    Any bad row → 400 with error.rows and nothing imported. ``?preview=1`` only checks."""
    f = request.files.get("file")
    if f is None:
        raise ApiError(400, "bad_request", "请上传文件（multipart 字段 file）", field="file")
    plan = ops.plan_household_import(g.user, f.read(), f.filename or "")
    if request.args.get("preview"):
        return plan.preview()
    try:
        ops.import_households(g.user, plan, source=f.filename or "upload")
        session.commit()
    except Exception:
        session.rollback()
        raise
    c = plan.counts()
    return {"imported": c["new"] + c["updated"], "new": c["new"], "updated": c["updated"],
            "unchanged": c["unchanged"]}


@bp.get("/people")
@api_user_required(*ops.READ_ROLES)
def people_list():
    """Residents in the caller's scope: ?region=&tag=&q=&status=."""
    page_no, per_page = page_args()
    stmt = queries.people_query(g.user, _region_arg(), _tag_arg(), request.args.get("q"),
                                request.args.get("status", "active"))
    total = session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery()))
    rows = session.scalars(stmt.limit(per_page).offset((page_no - 1) * per_page)).all()
    return {"items": [queries.person_to_dict(p) for p in rows], "total": total, "page": page_no,
            "per_page": per_page}


@bp.post("/people")
@api_user_required(*ops.WRITE_ROLES)
def people_create():
    """A resident added to a household: household_id, name, id_number, relation, birth_date, tags."""
    data = json_body()
    try:
        hid = int(data.get("household_id"))
    except (TypeError, ValueError):
        raise ApiError(400, "bad_request", "请填写 household_id", field="household_id") from None
    p = ops.add_person(g.user, _household(hid), data)
    session.commit()
    return queries.person_to_dict(p), 201


def _person(person_id: int):
    p = queries.person_get(person_id)
    if p is None:
        raise not_found(f"person {person_id}")
    ops.require_household(g.user, p.household)
    return p


@bp.get("/people/<int:person_id>")
@api_user_required(*ops.READ_ROLES)
def people_get(person_id: int):
    """One resident (masked)."""
    return queries.person_to_dict(_person(person_id))


@bp.patch("/people/<int:person_id>")
@api_user_required(*ops.WRITE_ROLES)
def people_patch(person_id: int):
    """Change name, id_number, relation, birth_date, tags; ``status: "deceased"`` (with
    ``died_on``) or ``"moved_out"``."""
    p = _person(person_id)
    data = json_body()
    ops.update_person(g.user, p, {k: v for k, v in data.items() if k != "status"})
    if data.get("status") == "deceased":
        ops.mark_deceased(g.user, p, ops._parse_date(data.get("died_on"), "died_on"))
    elif data.get("status") == "moved_out":
        ops.move_out_person(g.user, p)
    session.commit()
    return queries.person_to_dict(p)


# Users ------------------------------------------------------------------------------------------

def user_to_dict(u: User) -> dict:
    return {"username": u.username, "display_name": u.display_name, "roles": sorted(u.roles),
            "region_code": u.region.code, "department": u.department_code, "active": u.active}


@bp.get("/users")
@api_user_required("admin")
def users_list():
    """Staff accounts inside the admin's scope."""
    page_no, per_page = page_args()
    stmt = (select(User).join(Region, Region.id == User.region_id)
            .where(scope.filter(g.user, Region.path)).order_by(User.username))
    q = request.args.get("q")
    if q:
        stmt = stmt.where(User.username.contains(q, autoescape=True) | User.display_name.contains(q, autoescape=True))
    total = len(session.scalars(stmt).all())
    rows = session.scalars(stmt.limit(per_page).offset((page_no - 1) * per_page)).all()
    return {"items": [user_to_dict(u) for u in rows], "total": total, "page": page_no, "per_page": per_page}


@bp.post("/users")
@api_user_required("admin")
def users_create():
    """A staff account: username, password, roles, region_code, department, display_name."""
    u = ops.create_account(g.user, json_body())
    session.commit()
    return user_to_dict(u), 201


@bp.patch("/users/<username>")
@api_user_required("admin")
def users_patch(username: str):
    """roles, region_code, department, display_name, password (reset), active (false stops its
    tokens and sessions at once)."""
    u = user_by_username(username)
    if u is None:
        raise not_found(f"user {username}")
    ops.update_account(g.user, u, json_body())
    session.commit()
    return user_to_dict(u)


# Data comparison ------------------------------------------------------------------------------------

@bp.get("/registry/comparison")
@api_user_required(*ops.READ_ROLES)
def comparison():
    """The data-comparison report of ?region= (default: the caller's scope); ?run=1 runs it now."""
    region = _region_arg() or g.user.region
    if request.args.get("run"):
        tasks.compare_region(region)
        session.commit()
    rows = queries.findings(g.user, region, request.args.get("kind"))
    return {"items": [queries.finding_to_dict(f) for f in rows], "total": len(rows), "page": 1,
            "per_page": len(rows)}


@bp.get("/registry/villages/<code>/plan")
@api_user_required(*ops.READ_ROLES)
def village_plan(code: str):
    """The 电子装户图 of a village as data."""
    region = region_by_code(code)
    if region is None or region.level != "village":
        raise not_found(f"village {code}")
    return queries.village_plan(g.user, region, tasks.online_serials())
