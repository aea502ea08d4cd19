"""TV pages of the 政民互动 section (/tv/feedback/...)."""
from __future__ import annotations

from flask import Blueprint

bp = Blueprint("feedback_tv", __name__, url_prefix="/tv/feedback", template_folder="templates")


def register_tv_hooks(app) -> None:
    """Put our tiles on the interaction section page (when the TV portal offers the hook)."""
