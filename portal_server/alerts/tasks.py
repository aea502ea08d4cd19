"""Jobs of emergency alerts (take ids, not objects)."""
from __future__ import annotations

from portal_server.core.db import session


def sweep() -> dict:
    """Periodic: expire alerts past their expiry (retained messages cleared) and persist the acks of
    live alerts from Redis in one batch per alert."""
    from . import operations as ops
    expired = ops.expire_due()
    persisted = ops.persist_live_acks()
    session.commit()
    redelivered = ops.reconcile()
    return {"expired": expired, "acks_persisted": persisted, "redelivered": redelivered}


def deliver(codes: list[str]) -> list[str]:
    """Bring these regions' retained alert topics up to date; raises (and RQ retries) until Mosquitto
    confirms every message."""
    from . import operations as ops
    ops.refresh_topics(list(codes))
    return list(codes)


def speak(alert_id: int) -> str:
    """The spoken version of an alert (core.speech: espeak-ng → AAC); republished with audio_url."""
    from . import operations as ops
    from .models import Alert
    alert = session.get(Alert, alert_id)
    if alert is None:
        return "missing"
    status = ops.attach_speech(alert)
    session.commit()
    return status
