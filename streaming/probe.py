"""Playback probe: does libVLC (the player of the boxes' native firmware) play a stream?

``plays(url)`` opens the URL with dummy video/audio outputs and reports whether the media time
advanced; used by the tests on live and replay playlists, and usable by operators on any HLS URL.
"""
from __future__ import annotations

import time


def plays(url: str, seconds: float = 6.0, need_ms: int = 1500) -> dict:
    """{"ok", "state", "time_ms", "advanced_ms"?}: ok once the media time advanced ``need_ms``
    while playing, within ``seconds`` (+10 s to open)."""
    import vlc

    inst = vlc.Instance("--vout=dummy", "--aout=dummy", "--no-video-title-show", "--quiet")
    player = inst.media_player_new()
    player.set_media(inst.media_new(url))
    player.play()
    first = None
    deadline = time.monotonic() + seconds + 10
    out = {"ok": False, "state": None, "time_ms": 0}
    try:
        while time.monotonic() < deadline:
            state, t = player.get_state(), player.get_time()
            out.update(state=str(state), time_ms=t)
            if state == vlc.State.Error:
                break
            if state == vlc.State.Playing and t > 0:
                if first is None:
                    first = t
                elif t - first >= need_ms:
                    out.update(ok=True, advanced_ms=t - first)
                    break
            time.sleep(0.2)
    finally:
        player.stop()
        player.release()
        inst.release()
    return out
