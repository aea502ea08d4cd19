"""Who works a household in the field.

A feature that divides villages among field workers (grids) registers a rule with
``add_household_rule(app, rule)``; features that hand out field work (care tasks, the door-knock
lists of unacked alerts) ask ``household_filter(user, Model.household_id)`` so that a household in
a grid goes to that grid's worker and not to every worker of the village. With no rule registered
the filter keeps everything (the village-wide behaviour before grids).
"""
from __future__ import annotations

from flask import current_app, has_app_context
from sqlalchemy import and_, true


def add_household_rule(app, rule) -> None:
    """``rule(user, household_id_column)`` returns a SQL condition, or None when it does not apply."""
    app.extensions.setdefault("fieldwork_household_rules", []).append(rule)


def household_filter(user, household_id_column):
    """A SQL condition keeping the households ``user`` works in the field (true() for non-workers)."""
    if user is None or not has_app_context():
        return true()
    conds = []
    for rule in current_app.extensions.get("fieldwork_household_rules", ()):
        c = rule(user, household_id_column)
        if c is not None:
            conds.append(c)
    return and_(*conds) if conds else true()
