"""RQ jobs of the content feature: notices to the boxes, the publish/expire sweep, video HLS."""
from __future__ import annotations

import logging
import shutil
import subprocess
from pathlib import Path

from flask import current_app

from portal_server.core import mqtt, protocol
from portal_server.core.db import session

log = logging.getLogger(__name__)

#: Hard limit on one ffmpeg transcode (seconds): a stuck encoder must not hold the media queue.
TRANSCODE_TIMEOUT_S = 900


def send_notices(content_id: int) -> int:
    """MQTT ``notice`` to each target region topic of a published item; never raises."""
    from .models import Content

    c = session.get(Content, content_id)
    if c is None or c.status != "published":
        return 0
    payload = protocol.notice_payload("content", c.id, c.title, f"/tv/item/{c.id}")
    sent = 0
    try:
        pub = mqtt.publisher()
        if not pub.wait_connected(1.0):
            log.warning("content %s: MQTT broker down, %d notices not sent", c.id, len(c.targets))
            return 0
        for t in c.targets:
            pub.publish(protocol.region_notice_topic(t.region_code), payload, qos=1, timeout=2.0)
            sent += 1
    except Exception:  # the item is published; boxes pick it up on their next page load
        log.exception("content %s: notice publishing failed after %d of %d", c.id, sent, len(c.targets))
    return sent


def run_schedule() -> dict:
    """Periodic: publish approved items whose time has come and expire the ones past expire_at."""
    from . import operations

    published = operations.publish_due()
    expired = operations.expire_due()
    session.commit()
    if published or expired:
        log.info("content schedule: %d published, %d expired", published, expired)
    return {"published": published, "expired": expired}


def transcode_video(media_id: int) -> bool:
    """Uploaded video → HLS VOD (H.264/AAC, 6 s segments) plus a poster frame, under a hard limit."""
    import ffmpeg

    from .models import ContentMedia

    m = session.get(ContentMedia, media_id)
    if m is None or m.kind != "video":
        return False
    settings = current_app.config["SETTINGS"]
    src = settings.media_dir / m.path
    out_dir = settings.hls_dir / "content" / str(m.id)
    shutil.rmtree(out_dir, ignore_errors=True)
    out_dir.mkdir(parents=True, exist_ok=True)
    playlist = out_dir / "index.m3u8"
    poster_rel = str(Path(m.path).with_name(f"poster-{m.id}.jpg"))
    hls = (ffmpeg.input(str(src))
           .output(str(playlist), vcodec="libx264", preset="veryfast", crf=23, acodec="aac",
                   audio_bitrate="96k", ac=2, vf="scale='min(1280,iw)':-2", pix_fmt="yuv420p",
                   f="hls", hls_time=6, hls_playlist_type="vod",
                   hls_segment_filename=str(out_dir / "seg%05d.ts"))
           .overwrite_output())
    poster = (ffmpeg.input(str(src), ss=1).output(str(settings.media_dir / poster_rel), vframes=1,
                                                   vf="scale='min(1280,iw)':-2")
              .overwrite_output())
    try:
        subprocess.run(hls.compile(), check=True, capture_output=True, timeout=TRANSCODE_TIMEOUT_S)
        r = subprocess.run(poster.compile(), capture_output=True, timeout=60)
        if r.returncode != 0 or not (settings.media_dir / poster_rel).exists():
            # Shorter than a second: take the first frame.
            subprocess.run(ffmpeg.input(str(src)).output(str(settings.media_dir / poster_rel), vframes=1)
                           .overwrite_output().compile(), capture_output=True, timeout=60)
    except subprocess.TimeoutExpired:
        m.state, m.error = "failed", f"转码超时（{TRANSCODE_TIMEOUT_S} 秒）"
        session.commit()
        log.error("content media %s: ffmpeg timed out after %ss", m.id, TRANSCODE_TIMEOUT_S)
        return False
    except subprocess.CalledProcessError as e:
        tail = (e.stderr or b"").decode(errors="replace").strip().splitlines()[-3:]
        m.state, m.error = "failed", "转码失败：" + " / ".join(tail)[:500]
        session.commit()
        log.error("content media %s: ffmpeg failed: %s", m.id, tail)
        return False
    m.state, m.error = "ready", None
    m.hls_path = f"content/{m.id}/index.m3u8"
    m.poster_path = poster_rel if (settings.media_dir / poster_rel).exists() else None
    session.commit()
    log.info("content media %s: HLS ready", m.id)
    return True
