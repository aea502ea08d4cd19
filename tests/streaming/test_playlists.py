"""RFC 8216 §6.2.2 on the live playlists: a segment's discontinuity number (DISCONTINUITY-SEQUENCE
plus the DISCONTINUITY tags up to it) never changes from one reload to the next, whether the
tag is still in the window, on its first segment (shown without it) or gone."""
from __future__ import annotations

from pathlib import Path

from streaming import hls
from streaming.channels import LiveWindow


def _numbers(text: str) -> dict[str, int]:
    """segment URI → its discontinuity number in this playlist."""
    seq, out = 0, {}
    for line in text.splitlines():
        if line.startswith("#EXT-X-DISCONTINUITY-SEQUENCE:"):
            seq = int(line.split(":", 1)[1])
        elif line == "#EXT-X-DISCONTINUITY":
            seq += 1
        elif line and not line.startswith("#"):
            out[line] = seq
    return out


def _entry(i: int, disc: bool) -> str:
    return ("#EXT-X-DISCONTINUITY\n" if disc else "") + \
        f"#EXTINF:2.000000,\n#EXT-X-PROGRAM-DATE-TIME:2026-12-01T12:00:{2 * i:02d}.000+0000\nseg_{i:05d}.ts\n"


def _check(playlists: list[str]) -> None:
    seen: dict[str, int] = {}
    for text in playlists:
        for uri, n in _numbers(text).items():
            assert seen.setdefault(uri, n) == n, (uri, n, seen[uri], text)


def test_meeting_live_playlist_advances_the_discontinuity_sequence(tmp_path: Path):
    disc_at = {5, 9}  # encoder reconnects: ffmpeg appended after a DISCONTINUITY
    playlists = []
    for n in range(1, 16):
        body = "".join(_entry(i, i in disc_at) for i in range(n))
        (tmp_path / "record.m3u8").write_text("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n"
                                              "#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-PLAYLIST-TYPE:EVENT\n" + body)
        hls.write_live_playlist(tmp_path, window=3)
        playlists.append((tmp_path / "live.m3u8").read_text())
    _check(playlists)
    # The reload where segment 5 (with the tag) is first in the window: tag dropped, sequence advanced.
    first5 = next(p for p in playlists if p.split("#EXTINF", 1)[1].splitlines()[2] == "seg_00005.ts")
    assert "#EXT-X-DISCONTINUITY-SEQUENCE:1" in first5 and "\n#EXT-X-DISCONTINUITY\n" not in first5
    assert "#EXT-X-DISCONTINUITY-SEQUENCE:2" in playlists[-1]


def test_channel_live_window_keeps_numbers_across_restarts():
    w = LiveWindow(size=3, first_seq=100)
    playlists = []
    for i in range(15):
        lines = _entry(i, False).strip().splitlines()
        w.add(lines, discontinuity=i in (4, 5, 10))
        playlists.append(w.render())
    _check(playlists)
    assert "#EXT-X-MEDIA-SEQUENCE:112" in playlists[-1] and "#EXT-X-DISCONTINUITY-SEQUENCE:3" in playlists[-1]


def test_a_meetings_segments_follow_the_encoders_keyframes():
    """1 s segments (latency under 3 s on hls.js) when the encoder sends a keyframe every second;
    a box-ready stream with 2 s keyframes is still copied, into 2 s segments (no server encoding);
    anything else is transcoded with a keyframe every second. The target duration follows."""
    def info(gap, fps=30.0):
        return hls.InputInfo("h264", "High", 31, 1280, 720, fps, "aac", gap)
    assert hls.meeting_segment_s(info(1.0)) == 1 and info(1.0).fits_boxes(1)
    assert hls.meeting_segment_s(info(2.0)) == 2 and not info(2.0).fits_boxes(1) and info(2.0).fits_boxes(2)
    assert hls.meeting_segment_s(info(1.0, fps=50.0)) == 1 and not info(1.0, fps=50.0).fits_boxes(1)
    assert hls.meeting_segment_s(None) == 1
    argv, mode = hls.build_command("rtmp://127.0.0.1/live/k", Path("/tmp/x"), info(2.0, fps=50.0), low=True)
    assert mode == "transcode" and argv.count("expr:gte(t,n_forced*1)") == 2 and "/tmp/x/low_record.m3u8" in argv
    argv, mode = hls.build_command("rtmp://127.0.0.1/live/k", Path("/tmp/x"), info(2.0), low=True, segment_s=2)
    assert mode == "copy" and argv.count("expr:gte(t,n_forced*2)") == 1  # only the 480p rendition is encoded


def test_live_playlist_target_duration_fits_one_second_segments(tmp_path: Path):
    body = "".join(f"#EXTINF:1.000000,\n#EXT-X-PROGRAM-DATE-TIME:2026-12-01T12:00:{i:02d}.000+0000\nseg_{i:05d}.ts\n"
                   for i in range(12))
    (tmp_path / "low_record.m3u8").write_text("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:1\n"
                                              "#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-PLAYLIST-TYPE:EVENT\n" + body)
    assert hls.write_live_playlist(tmp_path, record="low_record.m3u8", live="low.m3u8") == 12
    text = (tmp_path / "low.m3u8").read_text()
    assert "#EXT-X-TARGETDURATION:1\n" in text and "#EXT-X-MEDIA-SEQUENCE:4\n" in text and text.count("#EXTINF") == 8
