"""The ffmpeg HLS job of a live meeting.

ffmpeg pulls the admitted stream back from nginx-rtmp (play is allowed from 127.0.0.1 only) and
writes one HLS recording: 2 s segments, ``EXT-X-PROGRAM-DATE-TIME`` on every segment, an EVENT
playlist that keeps every segment (``record.m3u8``). The live sliding playlist (``live.m3u8``,
the last ``LIVE_WINDOW`` segments) is derived from it by the supervisor, so the stream is encoded
once however many playlists there are. When the encoder stops, the recording becomes a VOD
playlist (``replay.m3u8`` with ``EXT-X-ENDLIST``) and a thumbnail (``thumb.jpg``).

Meetings cut 1 s segments (``MEETING_SEGMENT_S``; channels keep 2 s) so that the boxes' hls.js,
which plays two target durations behind the live edge, stays under 3 s of latency. That needs a
keyframe every second from the encoder (the staff page asks for it); an encoder that fits the
boxes but sends one every 2 s is still copied, into 2 s segments (about 4 s of latency, no
encoding on the server: ``meeting_segment_s``); anything else is transcoded with 1 s keyframes.

A lower rendition for weak lines (``low_output``, the same for meetings and channels): 480p25
H.264 Main + AAC at ~0.9 Mbit/s encoded by the same ffmpeg, its own HLS beside the main one, and a
master playlist (``write_master``) naming both, from which players pick by bandwidth. A meeting's
low rendition sits in the meeting's own folder (``low_record.m3u8`` → ``low.m3u8``,
``low_NNNNN.ts``) so that the one folder signature (core.signing) covers every file of it.

The command is built with ffmpeg-python. H.264/AAC input that fits the boxes (≤1280×720,
≤30 fps, H.264 High ≤ level 4.1, keyframes at least every segment so that segments keep their
length) is copied; anything else is transcoded to 720p30 H.264 High 4.1 + AAC.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import ffmpeg

SEGMENT_S = 2
LIVE_WINDOW = 6
#: A meeting's segments (s): its live latency is about two of them (the player's hold-back).
MEETING_SEGMENT_S = 1
#: Segments of a meeting's live playlist (hls.js starts 2 from the end, VLC and native HLS 3).
MEETING_LIVE_WINDOW = 8
#: The lower rendition: height, and the bandwidths the master playlist announces.
LOW_HEIGHT = 480
LOW_BANDWIDTH = 1_000_000
MAIN_BANDWIDTH = 3_000_000
MAX_W, MAX_H, MAX_FPS, MAX_LEVEL = 1280, 720, 30.0, 41
H264_PROFILES = ("Constrained Baseline", "Baseline", "Main", "High")
RW_TIMEOUT_US = 5_000_000


@dataclass
class InputInfo:
    """What the probe found out about the incoming stream."""

    video_codec: str | None = None
    profile: str | None = None
    level: int | None = None
    width: int = 0
    height: int = 0
    fps: float = 0.0
    audio_codec: str | None = None
    max_keyframe_gap_s: float | None = None

    def fits_boxes(self, segment_s: float = SEGMENT_S) -> bool:
        """True when the stream can be copied as it is into ``segment_s`` segments (a keyframe at
        least every segment, a quarter of a 2 s segment tolerated as before)."""
        gap = segment_s * 1.25 if segment_s >= 2 else segment_s
        return (self.video_codec == "h264" and self.profile in H264_PROFILES
                and (self.level or 99) <= MAX_LEVEL and 0 < self.width <= MAX_W and 0 < self.height <= MAX_H
                and 0 < self.fps <= MAX_FPS + 0.01 and self.audio_codec in ("aac", None)
                and self.max_keyframe_gap_s is not None and self.max_keyframe_gap_s <= gap * 1.01)


def _fps(value: str | None) -> float:
    try:
        f = Fraction(value or "0/1")
        return float(f) if f.denominator else 0.0
    except (ValueError, ZeroDivisionError):
        return 0.0


def parse_probe(doc: dict) -> InputInfo:
    """ffprobe's JSON (streams + packets) → InputInfo."""
    info = InputInfo()
    vindex = None
    for s in doc.get("streams", []):
        if s.get("codec_type") == "video" and info.video_codec is None:
            vindex = s.get("index")
            info.video_codec, info.profile = s.get("codec_name"), s.get("profile")
            info.level = s.get("level") if isinstance(s.get("level"), int) else None
            info.width, info.height = int(s.get("width") or 0), int(s.get("height") or 0)
            info.fps = _fps(s.get("avg_frame_rate")) or _fps(s.get("r_frame_rate"))
        elif s.get("codec_type") == "audio" and info.audio_codec is None:
            info.audio_codec = s.get("codec_name")
    keys = sorted(float(p["pts_time"]) for p in doc.get("packets", [])
                  if p.get("stream_index") == vindex and "K" in (p.get("flags") or "") and p.get("pts_time") not in (None, "N/A"))
    if len(keys) >= 2:
        info.max_keyframe_gap_s = max(b - a for a, b in zip(keys, keys[1:]))
    return info


def probe(url: str, seconds: float = 4.5, timeout: float = 15.0) -> InputInfo:
    """Probe the live stream: codecs, size, rate and the keyframe interval over ``seconds``.
    (ffmpeg-python's ``probe`` would turn a ``timeout`` into ffprobe's -timeout, which for RTMP
    means *listen*; so ffprobe runs here under a real subprocess timeout.)"""
    argv = ["ffprobe", "-v", "error", "-rw_timeout", str(RW_TIMEOUT_US), "-read_intervals", f"%+{seconds}",
            "-show_streams", "-show_packets", "-show_entries", "packet=stream_index,pts_time,flags", "-of", "json", url]
    out = subprocess.run(argv, capture_output=True, timeout=timeout, check=True)
    return parse_probe(json.loads(out.stdout or b"{}"))


def meeting_segment_s(info: InputInfo | None) -> int:
    """A meeting's segment length: 2 s for a stream copied as it comes with 2 s keyframes, else 1 s."""
    if info is not None and not info.fits_boxes(MEETING_SEGMENT_S) and info.fits_boxes(SEGMENT_S):
        return SEGMENT_S
    return MEETING_SEGMENT_S


def encode_args(src, info: InputInfo | None, segment_s: float = SEGMENT_S) -> tuple[list, dict, str]:
    """The output streams, the codec options and the mode: copy when ``info`` fits the boxes,
    else 720p30 H.264 High 4.1 + AAC with a keyframe every segment (meetings and channels)."""
    if info is not None and info.fits_boxes(segment_s):
        return [src["v:0"], src["a:0?"]], {"c": "copy"}, "copy"
    height = min(MAX_H, info.height) if info is not None and info.height else MAX_H
    v = src["v:0"].filter("scale", w=-2, h=height - height % 2).filter("fps", fps=30)
    opts = dict(vcodec="libx264", preset="veryfast", tune="zerolatency", level="4.1", pix_fmt="yuv420p",
                force_key_frames=f"expr:gte(t,n_forced*{segment_s})", sc_threshold=0,
                maxrate="2800k", bufsize="5000k", acodec="aac", ar=48000, ac=2,
                **{"b:v": "2500k", "profile:v": "high", "b:a": "128k"})
    return [v, src["a:0?"]], opts, "transcode"


def low_output(src, playlist: Path, hls_opts: dict, segment_s: float = SEGMENT_S):
    """The 480p rendition of ``src`` (ffmpeg-python output node): H.264 Main, a keyframe every
    segment (so that both renditions cut alike), zero latency like the main transcode, AAC."""
    v = src["v:0"].filter("scale", w=-2, h=LOW_HEIGHT).filter("fps", fps=25)
    return ffmpeg.output(v, src["a:0?"], str(playlist), vcodec="libx264", preset="veryfast", tune="zerolatency",
                         pix_fmt="yuv420p", force_key_frames=f"expr:gte(t,n_forced*{segment_s})", sc_threshold=0,
                         maxrate="900k", bufsize="1800k", acodec="aac", ar=48000, ac=2,
                         **{"b:v": "800k", "profile:v": "main", "b:a": "96k"}, **hls_opts)


def write_master(out_dir: Path, width: int, height: int, main: str = "live.m3u8", low: str = "low.m3u8") -> None:
    """``index.m3u8``: the main rendition and the 480p one (URIs relative to it); players pick
    by bandwidth."""
    # As ffmpeg's scale=-2:480 rounds it (to the nearest even width).
    low_w = round(width * LOW_HEIGHT / height / 2) * 2 if width and height else 854
    text = ("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-INDEPENDENT-SEGMENTS\n"
            f"#EXT-X-STREAM-INF:BANDWIDTH={MAIN_BANDWIDTH},RESOLUTION={width or 1280}x{height or 720}\n{main}\n"
            f"#EXT-X-STREAM-INF:BANDWIDTH={LOW_BANDWIDTH},RESOLUTION={low_w}x{LOW_HEIGHT}\n{low}\n")
    _write_atomic(out_dir / "index.m3u8", text)


def finish(out) -> list[str]:
    """argv of an ffmpeg-python output: info without stats (the headers once, then warnings)."""
    return out.global_args("-hide_banner", "-nostdin", "-nostats", "-loglevel", "info").overwrite_output().compile()


def build_command(input_url: str, out_dir: Path, info: InputInfo | None, append: bool = False,
                  low: bool = False, segment_s: float = MEETING_SEGMENT_S) -> tuple[list[str], str]:
    """The ffmpeg command (argv) and the mode ("copy" or "transcode") of a meeting's recording;
    with ``low`` also the 480p rendition's recording (``low_record.m3u8``)."""
    src = ffmpeg.input(input_url, rw_timeout=RW_TIMEOUT_US, fflags="+genpts")
    flags = "program_date_time+independent_segments+temp_file"
    if append:
        # A restarted ffmpeg continues the same recording after a discontinuity.
        flags += "+append_list+discont_start"

    def hls(prefix: str) -> dict:
        return dict(f="hls", hls_time=segment_s, hls_list_size=0, hls_playlist_type="event",
                    hls_flags=flags, hls_segment_filename=str(out_dir / f"{prefix}_%05d.ts"), start_number=0)
    streams, opts, mode = encode_args(src, info, segment_s)
    out = ffmpeg.output(*streams, str(out_dir / "record.m3u8"), **opts, **hls("seg"))
    if low:
        out = ffmpeg.merge_outputs(out, low_output(src, out_dir / "low_record.m3u8", hls("low"), segment_s))
    return finish(out), mode


# Playlists ---------------------------------------------------------------------------------

_URI = re.compile(r"^[^#\s].*$")


def _entries(text: str) -> tuple[list[str], list[list[str]]]:
    """Split a media playlist into its header lines and per-segment line groups."""
    header, entries, current = [], [], []
    seen_segment = False
    for line in text.splitlines():
        line = line.strip()
        if not line or line == "#EXT-X-ENDLIST":
            continue
        if _URI.match(line):
            current.append(line)
            entries.append(current)
            current, seen_segment = [], True
        elif line.startswith(("#EXTINF", "#EXT-X-PROGRAM-DATE-TIME", "#EXT-X-DISCONTINUITY", "#EXT-X-BYTERANGE")) \
                and not line.startswith("#EXT-X-DISCONTINUITY-SEQUENCE"):
            current.append(line)
        elif not seen_segment and not current:
            header.append(line)
    return header, entries


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name("." + path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def write_live_playlist(out_dir: Path, window: int = MEETING_LIVE_WINDOW, ended: bool = False,
                        record: str = "record.m3u8", live: str = "live.m3u8",
                        segment_s: float = MEETING_SEGMENT_S) -> int:
    """Derive ``live`` (the newest ``window`` segments) from the recording ``record``; returns how
    many segments the recording has (0: nothing written yet)."""
    rec = out_dir / record
    try:
        text = rec.read_text()
    except FileNotFoundError:
        return 0
    header, entries = _entries(text)
    if not entries:
        return 0
    first = max(0, len(entries) - window)
    start_seq = 0
    for line in header:
        if line.startswith("#EXT-X-MEDIA-SEQUENCE:"):
            start_seq = int(line.split(":", 1)[1])
    # RFC 8216 §6.2.2: a DISCONTINUITY tag that leaves the playlist advances the sequence. The
    # first segment of the window is shown without its tag, so its tag counts as gone too
    # (otherwise the sequence lags one behind until the segment slides out, and a player that saw
    # the tag on the previous reload numbers the following segments differently).
    disc = sum(1 for e in entries[:first + 1] if "#EXT-X-DISCONTINUITY" in e)
    target = _target(entries, segment_s)
    lines = ["#EXTM3U", "#EXT-X-VERSION:3", f"#EXT-X-TARGETDURATION:{target}",
             f"#EXT-X-MEDIA-SEQUENCE:{start_seq + first}", f"#EXT-X-DISCONTINUITY-SEQUENCE:{disc}",
             "#EXT-X-INDEPENDENT-SEGMENTS"]
    for e in entries[first:]:
        lines += [l for l in e if not (l == "#EXT-X-DISCONTINUITY" and e is entries[first])]
    if ended:
        lines.append("#EXT-X-ENDLIST")
    _write_atomic(out_dir / live, "\n".join(lines) + "\n")
    return len(entries)


def _target(entries: list[list[str]], segment_s: float) -> int:
    """EXT-X-TARGETDURATION: every EXTINF rounded to the nearest integer fits (RFC 8216 §4.3.3.1)."""
    return max([int(segment_s + 0.5)] + [int(float(l.split(":", 1)[1].split(",")[0]) + 0.5)
                                         for e in entries for l in e if l.startswith("#EXTINF:")])


def write_replay(out_dir: Path) -> int:
    """Close the recording: ``replay.m3u8`` is a VOD playlist of every segment with ENDLIST.
    Returns the number of segments (0: nothing was recorded)."""
    rec = out_dir / "record.m3u8"
    if not rec.exists():
        return 0
    header, entries = _entries(rec.read_text())
    entries = [e for e in entries if (out_dir / e[-1]).exists()]
    if not entries:
        return 0
    target = _target(entries, SEGMENT_S)
    lines = ["#EXTM3U", "#EXT-X-VERSION:3", f"#EXT-X-TARGETDURATION:{target}", "#EXT-X-MEDIA-SEQUENCE:0",
             "#EXT-X-PLAYLIST-TYPE:VOD", "#EXT-X-INDEPENDENT-SEGMENTS"]
    for i, e in enumerate(entries):
        lines += [l for l in e if not (i == 0 and l == "#EXT-X-DISCONTINUITY")]
    lines.append("#EXT-X-ENDLIST")
    _write_atomic(out_dir / "replay.m3u8", "\n".join(lines) + "\n")
    return len(entries)


def make_thumbnail(out_dir: Path, timeout: float = 30.0) -> bool:
    """``thumb.jpg`` (480 px wide) from the middle segment of the replay."""
    _h, entries = _entries((out_dir / "replay.m3u8").read_text())
    if not entries:
        return False
    seg = out_dir / entries[len(entries) // 2][-1]
    argv = (ffmpeg.input(str(seg)).filter("scale", 480, -2)
            .output(str(out_dir / ".thumb.jpg"), vframes=1, f="image2", q=4)
            .global_args("-hide_banner", "-nostdin", "-loglevel", "error").overwrite_output().compile())
    try:
        subprocess.run(argv, timeout=timeout, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    except (subprocess.SubprocessError, OSError):
        return False
    os.replace(out_dir / ".thumb.jpg", out_dir / "thumb.jpg")
    return True


def playlist_summary(path: Path) -> dict:
    """For logs and tests: segments, ENDLIST, first/last program date-time."""
    text = path.read_text()
    _h, entries = _entries(text)
    pdt = [l.split(":", 1)[1] for e in entries for l in e if l.startswith("#EXT-X-PROGRAM-DATE-TIME:")]
    return {"segments": len(entries), "endlist": "#EXT-X-ENDLIST" in text,
            "first_pdt": pdt[0] if pdt else None, "last_pdt": pdt[-1] if pdt else None}


def dumps_command(argv: list[str]) -> str:
    return json.dumps(argv)
