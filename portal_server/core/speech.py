"""Mandarin speech of a text (espeak-ng → WAV → ffmpeg → AAC in ``.m4a``), made once per distinct
text and served from ``media_dir/speech/``.

Plumbing shared by the features that read aloud: care's 朗读 button (``/api/v1/speech``) and the
spoken version of an emergency alert. A clip is written by ``clip_for`` (pending) and made by the
job ``make`` — enqueue it through the outbox (``outbox.job(MAKE_JOB, clip.id, ...)``) so that a
rollback drops it.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import subprocess
import tempfile
import time
from pathlib import Path

from flask import current_app
from sqlalchemy import DateTime, String, Text, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from .api import bad_request
from .db import Base, session, utcnow

log = logging.getLogger(__name__)

#: The job that makes a pending clip (queue "media": espeak-ng and ffmpeg take a second or two).
MAKE_JOB = "portal_server.core.speech:make"
#: Longest text read aloud (characters); the rest is cut.
MAX_CHARS = 3000


class SpeechClip(Base):
    """Mandarin speech of a text (a content item, a service item, an alert, ...), made by a job."""

    __tablename__ = "speech_clips"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: What was read: "service:<code>", "content:<id>", "affairs:<id>", "alert:<id>", ...
    ref: Mapped[str] = mapped_column(String(96), index=True)
    #: SHA-256 of the text: the same text is synthesised once.
    text_sha: Mapped[str] = mapped_column(String(64), unique=True)
    #: The text read (at most MAX_CHARS characters).
    text: Mapped[str] = mapped_column(Text)
    #: pending, ready or failed.
    status: Mapped[str] = mapped_column(String(16), default="pending")
    #: File name under media_dir/speech/.
    filename: Mapped[str | None] = mapped_column(String(96))
    #: Length of the audio (ffprobe), None when unknown.
    duration_s: Mapped[float | None] = mapped_column()
    #: Why making it failed (espeak-ng's or ffmpeg's message).
    error: Mapped[str | None] = mapped_column(Text)
    #: When the clip was first asked for (UTC).
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


def text_sha(text: str) -> str:
    """The key of a text's clip (what ``clip_for`` stores for the same text)."""
    return hashlib.sha256((text or "").strip()[:MAX_CHARS].encode()).hexdigest()


def find(text: str) -> SpeechClip | None:
    """The clip of ``text`` if one was ever asked for, without making it."""
    return session.scalar(select(SpeechClip).where(SpeechClip.text_sha == text_sha(text)))


def clip_for(ref: str, text: str) -> SpeechClip:
    """The clip for ``text`` (made once per distinct text), flushed; pending ones need the job
    ``make``. A ready clip whose file is gone, or a failed one, is pending again."""
    text = (text or "").strip()
    if not text:
        raise bad_request("nothing to read aloud", field="ref")
    text = text[:MAX_CHARS]
    sha = text_sha(text)
    clip = session.scalar(select(SpeechClip).where(SpeechClip.text_sha == sha))
    if clip is not None:
        if clip.status == "ready" and not (speech_dir() / (clip.filename or "-")).exists():
            clip.status = "pending"  # media wiped: make it again
        if clip.status == "failed":
            clip.status, clip.error = "pending", None
        session.flush()
        return clip
    clip = SpeechClip(ref=ref[:96], text_sha=sha, text=text, status="pending")
    try:
        with session.begin_nested():
            session.add(clip)
            session.flush()
    except IntegrityError:  # another request made the same text at the same moment
        clip = session.scalar(select(SpeechClip).where(SpeechClip.text_sha == sha))
    return clip


def speech_dir() -> Path:
    """``media_dir/speech/`` (created on first use)."""
    d = current_app.config["SETTINGS"].media_dir / "speech"
    d.mkdir(parents=True, exist_ok=True)
    return d


def path_url(clip: SpeechClip) -> str | None:
    """The clip's URL path (``/media/speech/<file>``) once it is ready, else None."""
    return f"/media/speech/{clip.filename}" if clip.status == "ready" and clip.filename else None


def synthesise(clip: SpeechClip, timeout_s: int = 120) -> SpeechClip:
    """espeak-ng (Mandarin) → WAV → ffmpeg → AAC in .m4a under media_dir/speech/; flushes the
    clip as ready or failed. Hard time limits on both programs."""
    out_dir = speech_dir()
    name = f"{clip.text_sha[:32]}.m4a"
    started = time.monotonic()
    with tempfile.TemporaryDirectory(dir=out_dir) as tmp:
        wav = os.path.join(tmp, "speech.wav")
        txt = os.path.join(tmp, "speech.txt")
        with open(txt, "w", encoding="utf-8") as fh:
            fh.write(clip.text)
        try:
            subprocess.run(["espeak-ng", "-v", "cmn", "-s", "150", "-f", txt, "-w", wav], check=True,
                           timeout=timeout_s, capture_output=True)
            part = os.path.join(tmp, "speech.m4a")
            subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-i", wav, "-ac", "1",
                            "-ar", "22050", "-c:a", "aac", "-b:a", "48k", "-movflags", "+faststart", part],
                           check=True, timeout=timeout_s, capture_output=True)
            os.replace(part, out_dir / name)
        except (subprocess.SubprocessError, OSError) as e:
            detail = getattr(e, "stderr", b"") or b""
            clip.status, clip.error = "failed", f"{e}: {detail.decode(errors='replace')[:500]}"
            session.flush()
            log.warning("speech clip %s failed: %s", clip.id, clip.error)
            return clip
    clip.status, clip.filename, clip.error = "ready", name, None
    clip.duration_s = _probe_duration(out_dir / name)
    session.flush()
    log.info("speech clip %s ready (%s, %.1fs to make)", clip.id, name, time.monotonic() - started)
    return clip


def _probe_duration(path) -> float | None:
    try:
        out = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "json",
                              str(path)], capture_output=True, timeout=30, check=True).stdout
        return float(json.loads(out)["format"]["duration"])
    except (subprocess.SubprocessError, OSError, ValueError, KeyError, TypeError):
        return None  # the clip plays without a known length


def make(clip_id: int) -> str:
    """The job: make the audio file of one pending clip and commit; → its status."""
    clip = session.get(SpeechClip, clip_id)
    if clip is None or clip.status == "ready":
        return clip.status if clip else "missing"
    synthesise(clip)
    session.commit()
    return clip.status
