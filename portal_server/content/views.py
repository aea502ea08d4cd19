"""Staff web of the content feature (/admin/content/…)."""
from __future__ import annotations

from flask import Blueprint, g, render_template, url_for

from portal_server.core.auth import roles_required

from . import queries

bp = Blueprint("content_staff", __name__, url_prefix="/admin/content", template_folder="templates")


def home_card(user):
    """Home card: items waiting for this reviewer's decision."""
    if not user.has_role("reviewer"):
        return None
    n = len(queries.review_queue(user))
    return {"title": "待审核信息", "value": n, "url": url_for("content_staff.review"),
            "tone": "warn" if n else ""}


@bp.get("/")
@roles_required("editor", "reviewer")
def index():
    return "content"


@bp.get("/review")
@roles_required("reviewer")
def review():
    return "review"
