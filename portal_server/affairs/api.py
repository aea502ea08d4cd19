"""JSON API of village affairs, safe community and party study."""
from __future__ import annotations

from flask import g, request
from pydantic import BaseModel, Field

from portal_server.core import scope
from portal_server.core.api import (
    bad_request,
    make_blueprint,
    not_found,
    paginate,
    parse,
)
from portal_server.core.auth import (
    api_user_required,
    terminal_required,
    user_or_terminal,
)
from portal_server.core.db import session
from portal_server.core.regions import region_by_code

from . import operations as ops
from . import queries
from .models import KINDS

bp = make_blueprint("affairs_api", __name__)


class TextDisclosureIn(BaseModel):
    region_code: str
    kind: str = Field(description="project or decision")
    period: str = Field(description="YYYYQn")
    title: str = Field(min_length=1, max_length=128)
    body: str = Field(min_length=1, max_length=20000)


class StudyIn(BaseModel):
    material_id: int


def _kind():
    kind = request.args.get("kind")
    if kind and kind not in KINDS:
        raise bad_request(f"kind must be one of {', '.join(KINDS)}", field="kind")
    return kind


@bp.get("/affairs/disclosures")
@user_or_terminal
def listing():
    """Disclosures: a box gets its village's published ones; staff those in scope (``?kind=&status=``)."""
    if g.terminal is not None:
        if g.terminal.region is None or g.terminal.region.level != "village":
            return {"items": [], "total": 0, "page": 1, "per_page": 0}
        items = [queries.to_dict(d) for d in queries.published_for(g.terminal.region, _kind())]
        return {"items": items, "total": len(items), "page": 1, "per_page": len(items)}
    return paginate(queries.in_scope(g.user.scope, _kind(), request.args.get("status")), queries.to_dict, session)


@bp.get("/affairs/disclosures/<int:disclosure_id>")
@user_or_terminal
def show(disclosure_id: int):
    """One disclosure with its table (finance, subsidy: names masked)."""
    d = queries.get(disclosure_id)
    if d is None:
        raise not_found(f"disclosure {disclosure_id}")
    if g.terminal is not None:
        if d.status != "published" or d.region_id != g.terminal.region_id:
            raise not_found(f"disclosure {disclosure_id}")
    elif not g.user.scope.covers(d.region):
        raise not_found(f"disclosure {disclosure_id}")
    return queries.to_dict(d)


def _upload() -> tuple[bytes, str]:
    """The uploaded table (multipart field ``file``, or the request body) and its file name."""
    f = request.files.get("file")
    data = f.read() if f else request.get_data()
    if not data:
        raise bad_request("请上传表格文件（.xlsx 或 CSV）：请求体或 multipart 字段 file", field="file")
    return data, (f.filename or "") if f else ""


@bp.post("/affairs/finance/import")
@api_user_required("editor")
def finance_import():
    """Import a month's finance table for ``?region=`` → a draft awaiting review: .xlsx or CSV
    (UTF-8 or GBK), headers ``月份,收支项目,收入,支出`` or ``month,item,income,expense``.

    Bad rows → 400 naming the first (``row``) and listing all (``rows``); nothing imported."""
    data, filename = _upload()
    d = ops.import_finance(region_by_code(request.args.get("region", "")), data, g.user,
                           request.args.get("title"), filename)
    session.commit()
    return queries.to_dict(d), 201


@bp.post("/affairs/subsidy/import")
@api_user_required("editor")
def subsidy_import():
    """Import a subsidy list (``姓名,补贴项目,金额[,备注]`` or ``name,subsidy,amount[,note]``; .xlsx or
    CSV) for ``?region=&period=YYYYQn&title=`` → a draft; bad rows as for the finance import."""
    data, filename = _upload()
    d = ops.import_subsidy(region_by_code(request.args.get("region", "")), request.args.get("period", ""),
                           data, g.user, request.args.get("title", ""), filename)
    session.commit()
    return queries.to_dict(d), 201


@bp.post("/affairs/disclosures")
@api_user_required("editor")
def create():
    """A project or decision disclosure (draft)."""
    data = parse(TextDisclosureIn)
    d = ops.create_text(region_by_code(data.region_code), data.kind, data.period, data.title, data.body, g.user)
    session.commit()
    return queries.to_dict(d), 201


create.__openapi_body__ = TextDisclosureIn


@bp.post("/affairs/disclosures/<int:disclosure_id>/publish")
@api_user_required("reviewer")
def publish(disclosure_id: int):
    """A reviewer approves: the disclosure is public (publication date shown on TV)."""
    d = queries.get(disclosure_id)
    if d is None or not g.user.scope.covers(d.region):
        raise not_found(f"disclosure {disclosure_id}")
    ops.publish(d, g.user)
    session.commit()
    return queries.to_dict(d)


@bp.post("/affairs/disclosures/<int:disclosure_id>/withdraw")
@api_user_required("reviewer", "editor")
def withdraw(disclosure_id: int):
    d = queries.get(disclosure_id)
    if d is None or not g.user.scope.covers(d.region):
        raise not_found(f"disclosure {disclosure_id}")
    ops.withdraw(d, g.user)
    session.commit()
    return queries.to_dict(d)


@bp.get("/affairs/board")
@api_user_required()
def board():
    """Supervision board: villages in scope late with their disclosures (finance monthly, others quarterly)."""
    return queries.board(g.user.scope)


@bp.get("/safety/contacts")
@user_or_terminal
def contacts():
    """Police officer, mediators and others of a village (the box's own, or ``?region=``)."""
    village = g.terminal.region if g.terminal is not None else region_by_code(request.args.get("region", ""))
    if village is None:
        raise bad_request("give ?region= (a village code)", field="region")
    if g.terminal is None:
        scope.require(g.user, village)
    items = [queries.contact_to_dict(c) for c in queries.contacts_for(village)]
    return {"items": items, "total": len(items), "page": 1, "per_page": len(items),
            "alerts": queries.alert_history(village)}


@bp.get("/party/materials")
@terminal_required
def materials():
    """This month's (``?month=``) study materials for the box's village, with what it has studied."""
    studied = queries.studied_ids(g.terminal.household_id)
    items = [queries.material_to_dict(m, studied) for m in queries.materials_for(g.terminal.region,
                                                                                  request.args.get("month"))]
    return {"items": items, "total": len(items), "page": 1, "per_page": len(items)}


@bp.post("/party/study")
@terminal_required
def study():
    """Confirm with OK that this household's party member studied a material (once)."""
    data = parse(StudyIn)
    m = queries.material_get(data.material_id)
    if m is None:
        raise not_found(f"material {data.material_id}")
    rec, created = ops.confirm_study(g.terminal, m)
    session.commit()
    return {"material_id": m.id, "confirmed_at": queries.iso(rec.confirmed_at), "created": created}, 201 if created else 200


study.__openapi_body__ = StudyIn


@bp.get("/party/records")
@api_user_required("editor", "reviewer", "handler", "grid_worker")
def records():
    """Study records of households in scope (for branch secretaries), ``?month=``."""
    items = queries.records_in(g.user.scope, request.args.get("month"))
    return {"items": items, "total": len(items), "page": 1, "per_page": len(items)}
