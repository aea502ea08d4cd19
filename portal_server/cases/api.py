"""JSON API of one-stop handling (INTERFACES §4.2)."""
from __future__ import annotations

from flask import g, request
from pydantic import BaseModel, Field

from portal_server.core import db
from portal_server.core.api import bad_request, make_blueprint, paginate, parse
from portal_server.core.auth import user_or_box, user_or_terminal
from portal_server.core.db import session

from . import operations as ops
from . import queries

bp = make_blueprint("cases_api", __name__)


class CaseIn(BaseModel):
    service_code: str = Field(min_length=1, max_length=64)
    channel: str = Field(default="tv", max_length=12)
    note: str | None = Field(default=None, max_length=1000)
    idempotency_key: str | None = Field(default=None, max_length=64)
    household_id: int | None = None
    applicant_name: str | None = Field(default=None, max_length=32)
    id_number: str | None = Field(default=None, max_length=18)


class ActionIn(BaseModel):
    action: str = Field(min_length=1, max_length=16)
    note: str | None = Field(default=None, max_length=1000)
    to: str | None = Field(default=None, max_length=64)
    score: int | None = None


def _who():
    return g.terminal if g.get("terminal") is not None else g.user


@bp.post("/cases")
@db.reads_first
def create():
    """Apply for an item: from a box (its household) or a clerk at the counter (``household_id``).

    A retry with the same ``idempotency_key`` returns the same case (200 instead of 201). Checks and
    look-ups run before the write lock is taken; the write is a few INSERTs (SQLite has one writer:
    50 boxes applying at once queue on it). A box is known by its id alone (``user_or_box``):
    its application reads and writes plain rows, nothing is loaded that it does not need."""
    user, box = user_or_box()
    data = parse(CaseIn)
    if box is not None:
        application = ops.prepare_box_application(box, data.service_code, data.channel, note=data.note,
                                                  idempotency_key=data.idempotency_key)
    else:
        g.user, g.terminal = user, None
        application = ops.prepare_application(data.service_code, data.channel, user=user,
                                              household_id=data.household_id, note=data.note,
                                              idempotency_key=data.idempotency_key,
                                              applicant_name=data.applicant_name, id_number=data.id_number)
    if application.retry:
        return queries.to_dict(application.case), 200
    with db.write_phase():
        case, created = ops.file_application(application)
        session.commit()
    return queries.to_dict(case), 201 if created else 200


create.__openapi_body__ = CaseIn


@bp.get("/cases")
@user_or_terminal
def listing():
    """A box: its household's cases. Staff: cases in scope (``?status=&region=&q=&service=``)."""
    if g.get("terminal") is not None:
        if g.terminal.household_id is None:
            return {"items": [], "total": 0, "page": 1, "per_page": 0}
        rows = queries.household_cases(g.terminal.household_id)
        return {"items": [queries.to_dict(c, events=False) for c in rows], "total": len(rows), "page": 1,
                "per_page": len(rows)}
    query = queries.search(g.user, request.args.get("status"), request.args.get("region"),
                           request.args.get("q"), request.args.get("service"))
    return paginate(query, lambda c: queries.to_dict(c, events=False), session)


@bp.get("/cases/<int:case_id>")
@user_or_terminal
def show(case_id: int):
    """One case with its timeline (a box reads only its household's own: 403 otherwise)."""
    return queries.to_dict(queries.load(case_id, _who()))


@bp.post("/cases/<int:case_id>/actions")
@user_or_terminal
def action(case_id: int):
    """accept | return | forward (``to``) | complete | suspend | resume | supervise | follow_up |
    evaluate (``score``) | archive; return/suspend need ``note`` (400); 409 names the status."""
    data = parse(ActionIn)
    case = queries.load(case_id, _who())
    if data.action not in ops.TRANSITIONS:
        raise bad_request(f"未知操作 {data.action}", field="action")
    ops.act(case, data.action, _who(), note=data.note, to=data.to, score=data.score)
    session.commit()
    return queries.to_dict(case)


action.__openapi_body__ = ActionIn
