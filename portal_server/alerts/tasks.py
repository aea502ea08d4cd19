"""Jobs of emergency alerts (take ids, not objects)."""
from __future__ import annotations


def sweep() -> dict:
    """Periodic: expire alerts past their expiry (retained messages cleared) and persist the acks of
    live alerts from Redis in one batch per alert."""
    from . import operations as ops
    expired = ops.expire_due()
    persisted = ops.persist_live_acks()
    ops.commit()
    return {"expired": expired, "acks_persisted": persisted}


def speak(alert_id: int) -> str:
    """The spoken version of an alert (care's espeak-ng → AAC synthesis); republished with audio_url."""
    from portal_server.core.db import session

    from . import operations as ops
    from .models import Alert
    alert = session.get(Alert, alert_id)
    if alert is None:
        return "missing"
    return ops.attach_speech(alert)
