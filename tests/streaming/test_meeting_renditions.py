"""The 480p rendition of a meeting is for watching live: the reaper removes it (and the master
playlist naming it) ten minutes after the meeting ended; the replay and the running meetings'
renditions stay."""
from __future__ import annotations

import datetime as dt

from portal_server.core.db import session, utcnow
from portal_server.meetings.models import Meeting
from streaming import tasks
from tests.meetings.conftest import make_meeting


def _files(folder, low=True):
    folder.mkdir(parents=True, exist_ok=True)
    names = ["record.m3u8", "replay.m3u8", "live.m3u8", "seg_00000.ts"]
    names += ["index.m3u8", "low_record.m3u8", "low.m3u8", "low_00000.ts"] if low else []
    for name in names:
        (folder / name).write_text("x")


def test_the_reaper_drops_the_480p_rendition_after_the_meeting(app, client, auth):
    root = app.config["SETTINGS"].hls_dir / "meetings"
    old, recent, live = (make_meeting(client, auth, start_in=dt.timedelta(minutes=-30))["id"] for _ in range(3))
    for mid, status, ended in ((old, "ended", 11), (recent, "ended", 2), (live, "live", None)):
        m = session.get(Meeting, mid)
        m.status, m.replay_ready = status, status == "ended"
        m.ended_at = utcnow() - dt.timedelta(minutes=ended) if ended else None
        _files(root / str(mid))
    session.commit()
    _files(root / "999999")  # a deleted meeting's folder
    assert tasks.reap()["low_dropped"] == 2
    assert sorted(p.name for p in (root / str(old)).iterdir()) == ["live.m3u8", "record.m3u8", "replay.m3u8",
                                                                   "seg_00000.ts"]
    assert not (root / "999999" / "low_00000.ts").exists()
    for mid in (recent, live):
        assert (root / str(mid) / "low_00000.ts").exists() and (root / str(mid) / "index.m3u8").exists()
