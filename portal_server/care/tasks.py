"""Jobs of elderly care (take ids, not objects)."""
from __future__ import annotations


def check_missed_checkins() -> dict:
    """Periodic: open tasks for missed check-ins, escalate unanswered ones in the evening."""
    from portal_server.core.db import session

    from . import operations as ops
    result = ops.check_missed()
    session.commit()
    return result


def synthesise_speech(clip_id: int) -> str:
    """Make the audio file of one speech clip; returns its status."""
    from portal_server.core.db import session

    from . import operations as ops
    from .models import SpeechClip
    clip = session.get(SpeechClip, clip_id)
    if clip is None or clip.status == "ready":
        return clip.status if clip else "missing"
    ops.synthesise(clip)
    session.commit()
    return clip.status
