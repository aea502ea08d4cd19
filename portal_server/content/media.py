"""Files of content items: images (Pillow: TV 1280 / phone 720, EXIF stripped), videos (HLS by a
worker job), attachments. Stored under ``media_dir/content/<item>/``, served at ``/media/content/``
(nginx in production, the system feature's file routes in development).
"""
from __future__ import annotations

import io
import json
import logging
import secrets
from pathlib import Path

from flask import current_app
from PIL import Image, ImageOps, UnidentifiedImageError

from portal_server.core import audit, outbox
from portal_server.core.accounts import User
from portal_server.core.api import ApiError, bad_request, forbidden
from portal_server.core.db import session

from . import operations as ops
from .models import MEDIA_KINDS, Content, ContentMedia

log = logging.getLogger(__name__)

TV_MAX = 1280
PHONE_MAX = 720
MAX_IMAGE_BYTES = 15 * 1024 * 1024
MAX_VIDEO_BYTES = 60 * 1024 * 1024
MAX_ATTACHMENT_BYTES = 20 * 1024 * 1024
MAX_PIXELS = 40_000_000  # decompression bombs are refused before decoding
VIDEO_EXT = {".mp4", ".mov", ".m4v", ".webm", ".mkv", ".avi", ".ts", ".flv", ".mpg", ".mpeg"}
ATTACHMENT_EXT = {".pdf", ".doc", ".docx", ".xls", ".xlsx", ".ppt", ".pptx", ".txt", ".csv", ".jpg",
                  ".jpeg", ".png", ".zip"}


def _dir(content_id: int) -> tuple[Path, str]:
    rel = f"content/{content_id}"
    d = current_app.config["SETTINGS"].media_dir / rel
    d.mkdir(parents=True, exist_ok=True)
    return d, rel


def _read(file, limit: int, what: str) -> bytes:
    data = file.read(limit + 1)
    if len(data) > limit:
        raise bad_request(f"invalid field file: the {what} is larger than {limit // (1024 * 1024)} MB "
                          f"(文件过大)", field="file")
    if not data:
        raise bad_request("invalid field file: the file is empty (文件为空)", field="file")
    return data


def process_image(data: bytes) -> tuple[bytes, bytes]:
    """(TV JPEG ≤1280, phone JPEG ≤720) without EXIF, upright; 400 naming ``file`` if not an image."""
    try:
        with Image.open(io.BytesIO(data)) as probe:
            if probe.width * probe.height > MAX_PIXELS:
                raise bad_request("invalid field file: the image has too many pixels", field="file")
            probe.verify()
        img = Image.open(io.BytesIO(data))
        img.load()
    except ApiError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        raise bad_request("invalid field file: not an image (JPEG, PNG, GIF or WebP) (不是图片文件)",
                          field="file") from None
    img = ImageOps.exif_transpose(img)
    if img.mode not in ("RGB", "L"):
        bg = Image.new("RGB", img.size, (255, 255, 255))
        rgba = img.convert("RGBA")
        bg.paste(rgba, mask=rgba.split()[-1])
        img = bg
    out = []
    for side in (TV_MAX, PHONE_MAX):
        copy = img.copy()
        copy.thumbnail((side, side), Image.Resampling.LANCZOS)
        buf = io.BytesIO()
        # A fresh image and no exif= argument: nothing of the camera's metadata survives.
        copy.convert("RGB").save(buf, "JPEG", quality=85, optimize=True, progressive=True)
        out.append(buf.getvalue())
    return out[0], out[1]


def add(user: User, c: Content, file, kind: str, alt: str = "") -> ContentMedia:
    """Store a file for ``c`` and add it to the item's pending version (all checks first)."""
    if kind not in MEDIA_KINDS:
        raise bad_request(f"invalid field kind: one of {', '.join(MEDIA_KINDS)}", field="kind")
    if file is None or not getattr(file, "filename", ""):
        raise bad_request("missing field: file", field="file")
    if not ops.can_edit(user, c):
        raise forbidden(f"内容 {c.id} 不在您的管辖范围内，或您没有编辑角色")
    # State first (409 for an item under review, withdrawn or expired): no file is written in vain.
    version, _new = ops._work_version_for_edit(user, c)
    name = Path(file.filename).name[:200] or "file"
    ext = Path(name).suffix.lower()
    token = secrets.token_hex(8)
    writes: list[tuple[Path, bytes]] = []
    d, rel = _dir(c.id)
    phone_rel = None
    state = "ready"
    if kind == "image":
        tv, phone = process_image(_read(file, MAX_IMAGE_BYTES, "image"))
        path_rel, phone_rel = f"{rel}/{token}-tv.jpg", f"{rel}/{token}-phone.jpg"
        writes = [(d / f"{token}-tv.jpg", tv), (d / f"{token}-phone.jpg", phone)]
        size = len(tv)
    elif kind == "video":
        if ext not in VIDEO_EXT:
            raise bad_request(f"invalid field file: not a video ({', '.join(sorted(VIDEO_EXT))})", field="file")
        data = _read(file, MAX_VIDEO_BYTES, "video")
        path_rel = f"{rel}/{token}-source{ext}"
        writes = [(d / f"{token}-source{ext}", data)]
        size, state = len(data), "pending"
    else:
        if ext not in ATTACHMENT_EXT:
            raise bad_request(f"invalid field file: attachments may be {', '.join(sorted(ATTACHMENT_EXT))}",
                              field="file")
        data = _read(file, MAX_ATTACHMENT_BYTES, "attachment")
        path_rel = f"{rel}/{token}{ext}"
        writes = [(d / f"{token}{ext}", data)]
        size = len(data)
    for p, b in writes:
        p.write_bytes(b)
    if kind == "video" and not _has_video_stream(d / f"{token}-source{ext}"):
        (d / f"{token}-source{ext}").unlink(missing_ok=True)
        raise bad_request("invalid field file: no video stream in this file (不是视频文件)", field="file")
    m = ContentMedia(content_id=c.id, kind=kind, name=name, alt=(alt or "")[:200], path=path_rel,
                     phone_path=phone_rel, state=state, size_bytes=size, created_by=user.username)
    session.add(m)
    session.flush()
    version.media_ids_json = json.dumps(version.media_ids + [m.id])
    version.status = "draft"
    if c.live_version_id is None:
        c.status = "draft"
    session.flush()
    audit.record("content.media_add", "content", c.id, c.author_region.code, media_id=m.id, kind=kind,
                 name=name, version=version.number)
    if kind == "video":  # transcoded once the row is committed (the worker reads it)
        outbox.job("portal_server.content.tasks:transcode_video", m.id, queue="media", timeout_s=1000)
    return m


#: Container formats an uploaded video may have. Playlists (hls, concat...) are refused: a
#: playlist named .mp4 would make ffprobe and ffmpeg follow its file:// or http:// links.
UPLOAD_FORMATS = "mov,mp4,m4a,3gp,3g2,mj2,matroska,webm,avi,flv,mpegts,mpeg,asf"
#: ffprobe of an upload never runs longer (it holds no database transaction, but a worker).
PROBE_TIMEOUT_S = 30


def _has_video_stream(path: Path) -> bool:
    import subprocess

    import ffmpeg
    try:
        info = ffmpeg.probe(str(path), timeout=PROBE_TIMEOUT_S, format_whitelist=UPLOAD_FORMATS,
                            protocol_whitelist="file")
    except (ffmpeg.Error, subprocess.TimeoutExpired):
        return False
    return any(s.get("codec_type") == "video" for s in info.get("streams", []))


def poster_png(title: str, color: tuple[int, int, int], subtitle: str = "", size=(1280, 720)) -> bytes:
    """A simple coloured poster with a title (demo images)."""
    from PIL import ImageDraw, ImageFont

    img = Image.new("RGB", size, color)
    draw = ImageDraw.Draw(img)
    font_path = next((p for p in ("/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc",
                                  "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc")
                      if Path(p).exists()), None)
    big = ImageFont.truetype(font_path, 72) if font_path else ImageFont.load_default()
    small = ImageFont.truetype(font_path, 40) if font_path else ImageFont.load_default()
    draw.rectangle([0, size[1] - 120, size[0], size[1]], fill=tuple(max(0, x - 40) for x in color))
    draw.text((80, 220), title, font=big, fill=(255, 255, 255))
    if subtitle:
        draw.text((80, size[1] - 95), subtitle, font=small, fill=(255, 245, 220))
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()
