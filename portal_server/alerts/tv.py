"""Alerts on the TV portal page itself (boxes with only a browser): every change of an alert is pushed,
after the commit, to the portal pages of the targeted regions through stb_app's push channel."""
from __future__ import annotations

from portal_server.core import outbox

from . import queries


def push_message(alert_id: int, state: str | None) -> dict:
    """What a page needs to act at once (stb_app/push.py): the alert to show, or the id to clear."""
    if state == "active":
        row = queries.tv_alert(alert_id)
        if row is not None:
            return {"type": "alert", "op": "show", "alert": row}
    return {"type": "alert", "op": "clear", "id": alert_id}


def on_alert_changed(sender, region_codes=(), state=None, **_kw) -> None:
    """Receiver of ``alert-changed`` (sender: the alert id): the push follows the commit, or nothing."""
    outbox.call("stb_app.push:publish", list(region_codes), push_message(sender, state))
