"""The ffmpeg HLS job of a live meeting.

ffmpeg pulls the admitted stream back from nginx-rtmp (play is allowed from 127.0.0.1 only) and
writes one HLS recording: 2 s segments, ``EXT-X-PROGRAM-DATE-TIME`` on every segment, an EVENT
playlist that keeps every segment (``record.m3u8``). The live sliding playlist (``live.m3u8``,
the last ``LIVE_WINDOW`` segments) is derived from it by the supervisor, so the stream is encoded
once however many playlists there are. When the encoder stops, the recording becomes a VOD
playlist (``replay.m3u8`` with ``EXT-X-ENDLIST``) and a thumbnail (``thumb.jpg``).

The command is built with ffmpeg-python. H.264/AAC input that fits the boxes (≤1280×720,
≤30 fps, H.264 High ≤ level 4.1, keyframes at least every 2.5 s so that segments stay ~2 s) is
copied; anything else is transcoded to 720p30 H.264 High 4.1 + AAC.
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

    def fits_boxes(self) -> bool:
        """True when the stream can be copied as it is."""
        return (self.video_codec == "h264" and self.profile in H264_PROFILES
                and (self.level or 99) <= MAX_LEVEL and 0 < self.width <= MAX_W and 0 < self.height <= MAX_H
                and 0 < self.fps <= MAX_FPS + 0.01 and self.audio_codec in ("aac", None)
                and self.max_keyframe_gap_s is not None and self.max_keyframe_gap_s <= 2.5 * 1.01)


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


def encode_args(src, info: InputInfo | None) -> tuple[list, dict, str]:
    """The output streams, the codec options and the mode: copy when ``info`` fits the boxes,
    else 720p30 H.264 High 4.1 + AAC with a keyframe every segment (meetings and channels)."""
    if info is not None and info.fits_boxes():
        return [src["v:0"], src["a:0?"]], {"c": "copy"}, "copy"
    height = min(MAX_H, info.height) if info is not None and info.height else MAX_H
    v = src["v:0"].filter("scale", w=-2, h=height - height % 2).filter("fps", fps=30)
    opts = dict(vcodec="libx264", preset="veryfast", tune="zerolatency", level="4.1", pix_fmt="yuv420p",
                force_key_frames=f"expr:gte(t,n_forced*{SEGMENT_S})", sc_threshold=0,
                maxrate="2800k", bufsize="5000k", acodec="aac", ar=48000, ac=2,
                **{"b:v": "2500k", "profile:v": "high", "b:a": "128k"})
    return [v, src["a:0?"]], opts, "transcode"


def finish(out) -> list[str]:
    """argv of an ffmpeg-python output: info without stats (the headers once, then warnings)."""
    return out.global_args("-hide_banner", "-nostdin", "-nostats", "-loglevel", "info").overwrite_output().compile()


def build_command(input_url: str, out_dir: Path, info: InputInfo | None, append: bool = False) -> tuple[list[str], str]:
    """The ffmpeg command (argv) and the mode ("copy" or "transcode")."""
    src = ffmpeg.input(input_url, rw_timeout=RW_TIMEOUT_US, fflags="+genpts")
    flags = "program_date_time+independent_segments+temp_file"
    if append:
        # A restarted ffmpeg continues the same recording after a discontinuity.
        flags += "+append_list+discont_start"
    hls = dict(f="hls", hls_time=SEGMENT_S, hls_list_size=0, hls_playlist_type="event",
               hls_flags=flags, hls_segment_filename=str(out_dir / "seg_%05d.ts"),
               start_number=0)
    streams, opts, mode = encode_args(src, info)
    out = ffmpeg.output(*streams, str(out_dir / "record.m3u8"), **opts, **hls)
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


def write_live_playlist(out_dir: Path, window: int = LIVE_WINDOW, ended: bool = False) -> int:
    """Derive ``live.m3u8`` (the newest ``window`` segments) from ``record.m3u8``; returns how many
    segments the recording has (0: nothing written yet)."""
    rec = out_dir / "record.m3u8"
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
    target = max([SEGMENT_S] + [int(float(l.split(":", 1)[1].split(",")[0]) + 0.999)
                                for e in entries for l in e if l.startswith("#EXTINF:")])
    lines = ["#EXTM3U", "#EXT-X-VERSION:3", f"#EXT-X-TARGETDURATION:{target}",
             f"#EXT-X-MEDIA-SEQUENCE:{start_seq + first}", f"#EXT-X-DISCONTINUITY-SEQUENCE:{disc}",
             "#EXT-X-INDEPENDENT-SEGMENTS"]
    for e in entries[first:]:
        lines += [l for l in e if not (l == "#EXT-X-DISCONTINUITY" and e is entries[first])]
    if ended:
        lines.append("#EXT-X-ENDLIST")
    _write_atomic(out_dir / "live.m3u8", "\n".join(lines) + "\n")
    return len(entries)


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
    target = max([SEGMENT_S] + [int(float(l.split(":", 1)[1].split(",")[0]) + 0.999)
                                for e in entries for l in e if l.startswith("#EXTINF:")])
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
