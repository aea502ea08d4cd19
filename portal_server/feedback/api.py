"""JSON API of INTERFACES §4: /api/v1/feedback…, plus /api/v1/polls… (thin: parse → operation → commit)."""
from __future__ import annotations

from flask import g, jsonify, request
from pydantic import BaseModel, Field

from portal_server.core import scope
from portal_server.core.api import (
    ApiError,
    bad_request,
    body,
    forbidden,
    make_blueprint,
    not_found,
    paginate,
    parse_ts,
)
from portal_server.core.auth import user_or_terminal
from portal_server.core.db import session
from portal_server.core.regions import region_by_code

from . import operations as ops
from . import queries
from .models import STATUSES, WorkOrder

bp = make_blueprint("feedback_api", __name__)


class FeedbackIn(BaseModel):
    category: str = Field(description="water, roads, electricity, sanitation, security, disputes, "
                                      "assistance, elderly, party or other")
    content: str | None = Field(None, max_length=2000)
    callback: bool = False
    idempotency_key: str | None = Field(None, max_length=80)
    channel: str | None = Field(None, description='"hotline" for the 12345 centre; boxes may omit it')
    region_code: str | None = Field(None, description="village code (required for hotline/staff filings)")
    contact_phone: str | None = Field(None, max_length=20, description="caller's phone (stored encrypted)")
    urgent: bool = Field(False, description="staff/hotline only: due the same day (紧急件)")


class ActionIn(BaseModel):
    action: str
    to: str | None = None
    message: str | None = Field(None, max_length=2000)
    reason: str | None = Field(None, max_length=2000)
    score: int | None = None


def actor() -> ops.Actor:
    return ops.Actor(user=g.get("user"), terminal=g.get("terminal"))


def submit_from_request(data: FeedbackIn) -> tuple[WorkOrder, bool]:
    """Shared by the API and the TV pages: who is filing decides region, channel and key owner."""
    if g.get("user") is not None:
        user = g.user
        channel = data.channel or "hotline"
        if channel not in ("hotline", "staff"):
            raise bad_request("staff accounts file with channel hotline or staff", field="channel")
        if not user.has_role("handler"):
            raise forbidden("filing for a resident needs the handler role (e.g. the hotline account)")
        region = region_by_code(data.region_code or "")
        if region is None or region.level != "village":
            raise bad_request("region_code must name a village", field="region_code")
        scope.require(user, region)
        return ops.submit(data.category, data.content, data.callback, channel=channel, actor=actor(),
                          region=region, idem_owner=f"user:{user.id}",
                          idempotency_key=data.idempotency_key, contact=data.contact_phone,
                          urgent=data.urgent)
    term = g.terminal
    if data.urgent:
        # A box's urgent call is the one-key 求助 of elderly care, which files its own order.
        raise forbidden("only staff and the hotline mark an order urgent")
    if data.channel not in (None, "tv"):
        raise bad_request("a box files with channel tv", field="channel")
    region = term.region
    if region is None or region.level != "village":
        raise bad_request("this box is not in a village; give region_code", field="region_code")
    owner = f"hh:{term.household_id}" if term.household_id else f"term:{term.serial}"
    return ops.submit(data.category, data.content, data.callback, channel="tv", actor=actor(),
                      region=region, household_id=term.household_id, idem_owner=owner,
                      idempotency_key=data.idempotency_key)


@bp.post("/feedback")
@user_or_terminal
@body(FeedbackIn)
def create(data: FeedbackIn):
    """File a resident's feedback (box, or the 12345 hotline account with channel "hotline").

    A retried submission with the same idempotency_key returns the same order (200 instead of 201).
    """
    order, created = submit_from_request(data)
    session.commit()  # committed before the resident is told "received"
    return jsonify({"id": order.id, "code": order.code, "status": order.status,
                    "deadline": queries.order_to_dict(order, with_events=False)["deadline"]}), (201 if created else 200)


def _load(order_id: int) -> WorkOrder:
    order = queries.get(order_id)
    if order is None:
        raise not_found(f"work order {order_id}")
    return order


def _check_read(order: WorkOrder) -> None:
    if g.get("user") is not None:
        if not ops.can_view(g.user, order):
            raise scope.OutOfScope(order.region, "工单")
    elif not queries.terminal_may_read(g.terminal, order):
        raise forbidden("a box may read its own household's orders only")


@bp.get("/feedback/<int:order_id>")
@user_or_terminal
def show(order_id: int):
    """One work order with its timeline (a box may read its own household's)."""
    order = _load(order_id)
    _check_read(order)
    return jsonify(queries.order_to_dict(order, resident=g.get("user") is None))


@bp.get("/feedback")
@user_or_terminal
def listing():
    """Orders: a box gets its household's; staff get their scope (?box=inbox for their desks, ?status=)."""
    if g.get("user") is None:
        rows = queries.household_orders(g.terminal.household_id, g.terminal.serial, limit=50)
        return jsonify({"items": [queries.order_to_dict(o, with_events=False, resident=True) for o in rows],
                        "total": len(rows), "page": 1, "per_page": 50})
    from sqlalchemy import select

    from .models import WorkOrder as WO
    q = queries.visible_query(g.user)
    inbox = request.args.get("box") == "inbox"
    if inbox:
        q = select(WO).where(queries._desk_condition(g.user))
    status = request.args.get("status")
    if status:
        if status not in STATUSES:
            raise bad_request(f"unknown status {status!r}", field="status")
        q = q.where(WO.status == status)
    # The inbox puts urgent orders first, as the staff web does.
    q = q.order_by(*((WO.urgent.desc(),) if inbox else ()), WO.deadline_at, WO.id)
    return jsonify(paginate(q, lambda o: queries.order_to_dict(o, with_events=False), session))


@bp.post("/feedback/<int:order_id>/actions")
@user_or_terminal
@body(ActionIn)
def action(order_id: int, data: ActionIn):
    """accept | assign (to) | escalate | return (reason) | reply (message) | close | reopen | rate (score) | follow_up | urgent.

    403 when the role or scope does not allow it, 409 (naming the state) when the state does not.
    """
    order = _load(order_id)
    if g.get("terminal") is not None and not queries.terminal_may_read(g.terminal, order):
        raise forbidden("only the household that filed the order may act on it")
    if g.get("user") is not None and not ops.can_view(g.user, order) and data.action != "follow_up":
        raise scope.OutOfScope(order.region, "工单")
    ops.act(order, actor(), data.action, to=data.to, message=data.message, reason=data.reason,
            score=data.score)
    session.commit()
    return jsonify(queries.order_to_dict(order, resident=g.get("user") is None))


@bp.get("/feedback/board")
@user_or_terminal
def board():
    """Supervision board: villages, towns and departments ranked by on-time closure (staff only)."""
    if g.get("user") is None:
        raise forbidden("the supervision board is for staff")
    return jsonify(queries.board(g.user))


# Polls ------------------------------------------------------------------------------------

class PollIn(BaseModel):
    title: str = Field(max_length=120)
    options: list[str]
    region_code: str
    closes_at: str
    kind: str = "poll"
    description: str = ""


class VoteIn(BaseModel):
    option: int = Field(description="0-based option index")


@bp.post("/polls")
@user_or_terminal
@body(PollIn)
def poll_create(data: PollIn):
    """An editor opens a poll (2–6 options) for a region in their scope."""
    if g.get("user") is None:
        raise forbidden("boxes cannot open polls")
    closes = parse_ts(data.closes_at, "closes_at")
    poll = ops.open_poll(g.user, data.title, data.options, data.region_code, closes, data.kind,
                         data.description)
    session.commit()
    return jsonify(queries.poll_to_dict(poll, with_results=True)), 201


@bp.get("/polls")
@user_or_terminal
def poll_list():
    """Open polls for a box's village chain, or the polls in a staff user's scope."""
    if g.get("user") is None:
        rows = queries.polls_for_terminal(g.terminal)
        hh = g.terminal.household_id
        items = [queries.poll_to_dict(p, hh) for p in rows]
    else:
        items = [queries.poll_to_dict(p, with_results=True) for p in queries.polls_in_scope(g.user)]
    return jsonify({"items": items, "total": len(items), "page": 1, "per_page": len(items) or 1})


def _poll(poll_id: int):
    poll = queries.poll_get(poll_id)
    if poll is None:
        raise not_found(f"poll {poll_id}")
    return poll


@bp.get("/polls/<int:poll_id>")
@user_or_terminal
def poll_show(poll_id: int):
    """A poll; results for staff and for households that have voted."""
    poll = _poll(poll_id)
    if g.get("user") is not None:
        # The same polls as the staff listing: in the user's scope or above it; others 403.
        user_path = g.user.region.path
        if not (poll.region_path.startswith(user_path) or user_path.startswith(poll.region_path)):
            raise scope.OutOfScope(poll.region_path.rstrip("/").rsplit("/", 1)[-1], "调查")
        return jsonify(queries.poll_to_dict(poll, with_results=True))
    if not (g.terminal.region_path or "").startswith(poll.region_path):
        raise forbidden("this poll is not for your village")
    return jsonify(queries.poll_to_dict(poll, g.terminal.household_id))


@bp.post("/polls/<int:poll_id>/votes")
@user_or_terminal
@body(VoteIn)
def poll_vote(poll_id: int, data: VoteIn):
    """A household's vote from its box (one per household); answers with the results."""
    poll = _poll(poll_id)
    if g.get("terminal") is None:
        raise forbidden("votes come from household boxes")
    ops.vote(poll, g.terminal, data.option)
    session.commit()
    return jsonify(queries.poll_to_dict(poll, g.terminal.household_id, with_results=True)), 201


__all__ = ["ApiError", "bp"]
