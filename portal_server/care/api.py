"""JSON API of elderly care: check-ins, help, care tasks, elderly services, read-aloud speech."""
from __future__ import annotations

from flask import g, request
from pydantic import BaseModel, Field

from portal_server.affairs import queries as aq
from portal_server.content import queries as cq
from portal_server.core import scope
from portal_server.core.api import (
    ApiError,
    bad_request,
    iso,
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
from portal_server.core.speech import find
from portal_server.services import queries as sq

from . import operations as ops
from . import queries

bp = make_blueprint("care_api", __name__)

TASK_ROLES = ("grid_worker", "handler")


class CheckInIn(BaseModel):
    household_id: int | None = None


class CloseIn(BaseModel):
    note: str = Field(min_length=1, max_length=2000)


class SpeechIn(BaseModel):
    ref: str = Field(min_length=3, max_length=96, description='"service:<code>", "content:<id>", "affairs:<id>", "elderly:services"')


@bp.post("/checkins")
@terminal_required
def checkin():
    """Today's 报平安 of the box's household (idempotent per day: 201 first, 200 after).

    A ``household_id`` other than the box's own → 403."""
    data = parse(CheckInIn, request.get_json(silent=True) or {})
    ci, created = ops.check_in(g.terminal, data.household_id)
    session.commit()
    return ({"household_id": ci.household_id, "day": ci.day.isoformat(),
             "at": iso(ci.at), "created": created},
            201 if created else 200)


checkin.__openapi_body__ = CheckInIn


@bp.get("/checkins/today")
@terminal_required
def checkin_today():
    """The box's check-in state: required, done_today."""
    return queries.checkin_state(g.terminal)


@bp.post("/care/help")
@terminal_required
def help_call():
    """One-key 求助 from a box: a work order (feedback loop) and a task for the grid worker."""
    task, created = ops.request_help(g.terminal)
    session.commit()
    return {"task_id": task.id, "work_order": {"id": task.work_order_id, "code": task.work_order_code}
            if task.work_order_id else None, "created": created}, 201 if created else 200


@bp.get("/care-tasks")
@api_user_required(*TASK_ROLES)
def tasks():
    """Care tasks in the caller's scope: ``?status=open`` (default; open and escalated), ``done``, ``all``.

    Each with the household's name, address and masked phone."""
    status = request.args.get("status", "open")
    if status not in ("open", "done", "escalated", "all"):
        raise bad_request("status must be open, escalated, done or all", field="status")
    return paginate(queries.tasks_query(g.user, status), queries.task_to_dict, session)


def _task(task_id: int):
    t = queries.task_get(task_id)
    if t is None or not g.user.scope.covers(t.region):
        raise not_found(f"care task {task_id}")
    return t


@bp.post("/care-tasks/<int:task_id>/unmask")
@api_user_required(*TASK_ROLES)
def unmask(task_id: int):
    """The household's clear phone number (written to the audit trail)."""
    phone = ops.reveal_phone(_task(task_id), g.user)
    session.commit()
    return {"phone": phone}


@bp.post("/care-tasks/<int:task_id>/close")
@api_user_required(*TASK_ROLES)
def close(task_id: int):
    """Close a task with what was found (``note``)."""
    data = parse(CloseIn)
    t = ops.close_task(_task(task_id), g.user, data.note)
    session.commit()
    return queries.task_to_dict(t)


close.__openapi_body__ = CloseIn


@bp.get("/elderly-services")
@user_or_terminal
def services():
    """Elderly services (meal points, health checks, home visits) of a village: the box's own, or ``?region=``."""
    if g.terminal is not None:
        region = g.terminal.region
    else:
        region = region_by_code(request.args.get("region", ""))
        if region is None:
            raise bad_request("give ?region= (a village code)", field="region")
        if not g.user.scope.covers(region) and not region.path.startswith(g.user.scope.path) \
                and not g.user.scope.path.startswith(region.path):
            raise scope.OutOfScope(region)
    items = [queries.service_to_dict(s) for s in queries.services_for(region)] if region else []
    return {"items": items, "total": len(items), "page": 1, "per_page": len(items)}


# Speech -----------------------------------------------------------------------------------

def speech_text(ref: str) -> str:
    """The text to read for ``ref`` as the caller sees it; 404 for what they may not see."""
    kind, _, key = ref.partition(":")
    village = g.terminal.region if g.get("terminal") is not None else None
    if kind == "service":
        it = sq.item_by_code(key)
        if it is None:
            raise not_found(f"service {key}")
        mats = "；".join(f"{m['name']}{m['quantity']}份，{m['form']}" for m in it.materials)
        return (f"{it.name}。办理地点：{it.location}。办理时间：{it.hours}。要带的材料：{mats}。"
                f"谁可以办：{it.conditions}。咨询电话：{it.phone}。")
    if kind == "content":
        try:
            content_id = int(key)
        except ValueError:
            raise bad_request("content ref must be content:<id>", field="ref") from None
        hh = g.terminal.household if village is not None else None
        item = cq.tv_item(content_id, village.code, hh.tag_list if hh else None) if village is not None else None
        if item is None:
            raise not_found(f"content {key}")
        return f"{item['title']}。{queries.plain(item['body'])}"
    if kind == "affairs":
        d = aq.disclosure_for_speech(village, key)
        if d is None:
            raise not_found(f"disclosure {key}")
        return d
    if kind == "elderly" and key == "services" and village is not None:
        rows = queries.services_for(village)
        return "。".join(f"{s.title}，地点{s.place}，时间{s.schedule}" for s in rows) or "暂无养老服务信息"
    raise bad_request(f"unknown ref {ref!r}", field="ref")


@bp.post("/speech")
@user_or_terminal
def speech_make():
    """Read aloud: the audio of ``ref`` (Mandarin, espeak-ng → AAC). 200 with ``url`` when ready,
    202 while the worker makes it (poll ``GET /api/v1/speech?ref=``)."""
    data = parse(SpeechIn)
    clip = ops.read_aloud(data.ref, speech_text(data.ref))
    session.commit()  # the outbox hands the speech job over (a worker; inline in tests)
    if clip.status == "pending":
        session.refresh(clip)  # made already when the job ran inline
    if clip.status == "failed":
        raise ApiError(503, "speech_failed", "朗读生成失败，请稍后再试", detail=(clip.error or "")[:200])
    return queries.clip_to_dict(clip), 200 if clip.status == "ready" else 202


speech_make.__openapi_body__ = SpeechIn


@bp.get("/speech")
@user_or_terminal
def speech_get():
    """The speech clip of ``?ref=`` (status and url), without making it."""
    ref = request.args.get("ref", "")
    if not ref:
        raise bad_request("give ?ref=", field="ref")
    clip = find(speech_text(ref))
    if clip is None:
        raise not_found(f"speech of {ref}")
    return queries.clip_to_dict(clip)


__all__ = ["ApiError", "bp"]
