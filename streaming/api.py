"""nginx-rtmp callbacks (INTERFACES §4): ``on_publish`` admits a meeting's stream key inside its
window (2xx) or refuses (403); ``on_publish_done`` ends the meeting. Form-encoded; ``name`` is the
stream key, ``clientid`` nginx's connection id. Only nginx on this machine may call them."""
from __future__ import annotations

import logging

from flask import request

from portal_server.core.api import ApiError, make_blueprint
from portal_server.core.db import session
from portal_server.meetings import operations as meeting_ops

from . import tasks

log = logging.getLogger(__name__)

bp = make_blueprint("streams_api", __name__, "/streams")
#: /hls/ in development (nginx serves it in `make run`).


def _local_only() -> None:
    # nginx-rtmp calls the app directly; anything through the HTTP proxy carries X-Forwarded-For.
    if request.remote_addr not in ("127.0.0.1", "::1") or request.headers.get("X-Forwarded-For"):
        raise ApiError(403, "forbidden", "RTMP callbacks come from the local nginx only")


@bp.post("/on_publish")
def on_publish():
    """nginx-rtmp ``on_publish``: 2xx admits the encoder (the meeting goes live and the HLS job
    starts); 403 for an unknown key, a key outside its window, or a second publisher."""
    _local_only()
    key, client = request.form.get("name", ""), request.form.get("clientid", "")
    if request.form.get("app", "live") != "live":
        raise ApiError(403, "forbidden", "unknown application")
    try:
        m = meeting_ops.admit_publish(key, client)
    except ApiError as e:
        session.rollback()
        log.warning("on_publish refused key %s…: %s", key[:4], e.message)
        raise
    session.commit()
    tasks.start_live(m.id)
    return {"ok": True, "meeting_id": m.id}


@bp.post("/on_publish_done")
def on_publish_done():
    """nginx-rtmp ``on_publish_done``: the encoder stopped; the meeting ends and its recording is
    closed by the HLS job."""
    _local_only()
    m = meeting_ops.publish_done(request.form.get("name", ""), request.form.get("clientid"))
    session.commit()
    return {"ok": True, "meeting_id": m.id if m else None}


