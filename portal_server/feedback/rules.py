"""Pure rules of the work-order loop: deadlines in working days, routing defaults, traffic lights.

Configurable through Flask config (``Settings.extra``):
``FEEDBACK_DEADLINE_DAYS`` ({kind: working days}), ``FEEDBACK_CATEGORY_KIND`` ({category: kind}),
``FEEDBACK_ESCALATION_DEPARTMENT`` ({category: department code}), ``FEEDBACK_MIN_RANK_ORDERS``.
"""
from __future__ import annotations

import datetime as dt

from flask import current_app

from portal_server.core import clock

#: Working days per kind of request (local 12345 style): 0 = the same day.
DEADLINE_DAYS = {"urgent": 0, "enquiry": 3, "help": 5, "complaint": 10}
KIND_NAMES = {"urgent": "紧急类", "enquiry": "咨询类", "help": "求助类", "complaint": "投诉类"}
CATEGORY_KIND = {"water": "urgent", "electricity": "urgent", "security": "urgent",
                 "party": "enquiry", "other": "enquiry",
                 "assistance": "help", "elderly": "help",
                 "roads": "complaint", "sanitation": "complaint", "disputes": "complaint"}
#: Which city department takes an order escalated from a town.
ESCALATION_DEPARTMENT = {"assistance": "civil-affairs", "elderly": "civil-affairs"}
DEFAULT_DEPARTMENT = "service-center"
#: Orders passed on this many times without a reply become supervised problem orders.
PROBLEM_AFTER_PASSES = 3
#: A unit needs this many orders before the supervision board ranks it.
MIN_RANK_ORDERS = 3
YELLOW_AT = 0.75


def _cfg(name: str, default):
    try:
        return current_app.config.get(name, default)
    except RuntimeError:  # no app context (pure unit use)
        return default


def category_kind(category: str) -> str:
    return _cfg("FEEDBACK_CATEGORY_KIND", CATEGORY_KIND).get(category, "enquiry")


def deadline_days(category: str) -> int:
    return int(_cfg("FEEDBACK_DEADLINE_DAYS", DEADLINE_DAYS)[category_kind(category)])


def escalation_department(category: str) -> str:
    return _cfg("FEEDBACK_ESCALATION_DEPARTMENT", ESCALATION_DEPARTMENT).get(category, DEFAULT_DEPARTMENT)


def min_rank_orders() -> int:
    return int(_cfg("FEEDBACK_MIN_RANK_ORDERS", MIN_RANK_ORDERS))


def add_working_days(start: dt.datetime, days: int, zone=None) -> dt.datetime:
    """The end (23:59:59 city time) of the ``days``-th working day after ``start``'s day.

    0 days = the end of the same day. Saturdays and Sundays do not count.
    """
    return clock.add_working_days(start, days, at=dt.time(23, 59, 59), zone=zone)


def deadline_for(category: str, start: dt.datetime, urgent: bool = False) -> dt.datetime:
    """The deadline of a desk's clock started at ``start``: urgent orders get the "urgent" kind's
    days (the same day by default) whatever their category."""
    if urgent:
        return add_working_days(start, int(_cfg("FEEDBACK_DEADLINE_DAYS", DEADLINE_DAYS)["urgent"]))
    return add_working_days(start, deadline_days(category))


def light(started: dt.datetime, deadline: dt.datetime, now: dt.datetime, done: bool = False) -> str:
    """green, yellow (≥75 % of the time used) or red (overdue); done orders are green."""
    if done:
        return "green"
    started, deadline, now = clock.aware(started), clock.aware(deadline), clock.aware(now)
    if now > deadline:
        return "red"
    total = (deadline - started).total_seconds()
    if total <= 0 or (now - started).total_seconds() >= YELLOW_AT * total:
        return "yellow"
    return "green"
