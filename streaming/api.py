"""nginx-rtmp callbacks (INTERFACES §4): ``on_publish`` admits a meeting's stream key inside its
window (2xx) or refuses (403); ``on_publish_done`` ends the meeting. Form-encoded; ``name`` is the
stream key, ``clientid`` nginx's connection id. Only nginx on this machine or on an edge host
(``COMMUNITV_EDGE_HOSTS``) may call them."""
from __future__ import annotations

import logging

from flask import current_app, request

from portal_server.core.api import ApiError, make_blueprint
from portal_server.core.db import session
from portal_server.meetings import operations as meeting_ops

from . import tasks

log = logging.getLogger(__name__)

bp = make_blueprint("streams_api", __name__, "/streams")
#: /hls/ in development (nginx serves it in `make run`).


def trusted_callers(edge_hosts: str) -> list:
    """Loopback plus the edge hosts of ``COMMUNITV_EDGE_HOSTS`` (addresses, CIDRs or names)."""
    import ipaddress
    import socket
    nets = [ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128")]
    for item in filter(None, (x.strip() for x in edge_hosts.split(","))):
        try:
            nets.append(ipaddress.ip_network(item, strict=False))
        except ValueError:           # a host name (docker compose service): its current addresses
            try:
                nets += [ipaddress.ip_network(ai[4][0]) for ai in socket.getaddrinfo(item, None)]
            except OSError:
                log.warning("COMMUNITV_EDGE_HOSTS: cannot resolve %s", item)
    return nets


def _edge_only() -> None:
    # nginx-rtmp calls the app directly (on separate hosts through the edge's internal proxy,
    # which adds no header); anything through the public HTTP proxy carries X-Forwarded-For.
    import ipaddress
    settings = current_app.config["SETTINGS"]
    try:
        addr = ipaddress.ip_address(request.remote_addr or "")
    except ValueError:
        addr = None
    if addr is None or request.headers.get("X-Forwarded-For") or \
            not any(addr in n for n in trusted_callers(settings.edge_hosts) if n.version == addr.version):
        raise ApiError(403, "forbidden", "RTMP回调只接受本机或边缘节点的nginx / RTMP callbacks come from "
                       "the local nginx or an edge host (COMMUNITV_EDGE_HOSTS) only")


@bp.post("/on_publish")
def on_publish():
    """nginx-rtmp ``on_publish``: 2xx admits the encoder (the meeting goes live and the HLS job
    starts); 403 for an unknown key, a key outside its window, or a second publisher."""
    _edge_only()
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
    _edge_only()
    m = meeting_ops.publish_done(request.form.get("name", ""), request.form.get("clientid"))
    session.commit()
    return {"ok": True, "meeting_id": m.id if m else None}


