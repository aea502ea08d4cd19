"""Uploads: images resized for TV and phone with EXIF stripped, videos to HLS by the job,
attachments; bad files are refused naming the field, and nothing is half-saved."""
import io
import subprocess

import m3u8
from PIL import Image

from portal_server.content import queries
from portal_server.content.models import ContentMedia
from portal_server.core.db import session

from .conftest import V001


def _jpeg_with_exif(w=3000, h=2000) -> bytes:
    img = Image.new("RGB", (w, h), (200, 30, 30))
    exif = Image.Exif()
    exif[0x010F] = "CameraMaker"          # Make
    exif[0x8825] = {2: (30.0, 15.0, 0.0)}  # GPS latitude: must not survive
    exif[0x0112] = 6                      # Orientation: rotate 90° when shown
    buf = io.BytesIO()
    img.save(buf, "JPEG", exif=exif)
    return buf.getvalue()


def _upload(client, auth, cid, data, name, kind="image", user="v001-editor", alt=""):
    return client.post(f"/api/v1/contents/{cid}/media", headers=auth.headers(user),
                       data={"kind": kind, "alt": alt, "file": (io.BytesIO(data), name)},
                       content_type="multipart/form-data")


def test_image_is_resized_upright_and_stripped(app, client, auth, api, draft):
    cid = draft()["id"]
    r = _upload(client, auth, cid, _jpeg_with_exif(), "photo.jpg", alt="村委会新址")
    assert r.status_code == 201, r.get_data(as_text=True)
    m = r.get_json()["media"][0]
    assert m["kind"] == "image" and m["alt"] == "村委会新址"
    api("v001-editor", "post", f"/contents/{cid}/submit")
    api("v001-reviewer", "post", f"/contents/{cid}/approve")
    image = queries.tv_item(cid, V001)["images"][0]
    sizes = {}
    for key in ("tv", "phone"):
        resp = client.get(image[key])
        assert resp.status_code == 200 and resp.mimetype == "image/jpeg"
        got = Image.open(io.BytesIO(resp.data))
        sizes[key] = got.size
        assert not got.getexif(), "EXIF must be stripped"
        resp.close()
    # 3000×2000 with orientation 6 is a 2000×3000 portrait once upright.
    assert sizes == {"tv": (853, 1280), "phone": (480, 720)}
    assert image["alt"] == "村委会新址"


def test_bad_uploads_name_the_field_and_save_nothing(client, auth, draft):
    cid = draft()["id"]
    before = session.query(ContentMedia).count()
    cases = [(b"not an image at all", "x.jpg", "image", "file"),
             (b"%PDF-1.4 fake", "x.png", "image", "file"),
             (b"\0" * 16 * 1024 * 1024, "big.jpg", "image", "file"),
             (b"hello", "x.mp4", "video", "file"),
             (b"MZ\x90\0", "tool.exe", "attachment", "file"),
             (b"", "empty.pdf", "attachment", "file"),
             (b"x", "x.jpg", "sound", "kind")]
    for data, name, kind, field in cases:
        r = _upload(client, auth, cid, data, name, kind)
        assert r.status_code == 400, (name, r.get_data(as_text=True))
        assert r.get_json()["error"]["field"] == field, name
    assert _upload(client, auth, cid, b"x", "x.pdf", user="v002-editor").status_code == 403
    assert session.query(ContentMedia).count() == before


def test_attachment_and_video_reach_the_tv_dict(app, client, auth, api, draft, tmp_path):
    cid = draft(section="party")["id"]
    r = _upload(client, auth, cid, b"%PDF-1.4\n%%EOF\n", "学习材料.pdf", "attachment")
    assert r.status_code == 201
    src = tmp_path / "clip.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc=size=640x360:rate=25",
                    "-f", "lavfi", "-i", "sine=frequency=440", "-t", "3", "-pix_fmt", "yuv420p",
                    "-c:v", "libx264", "-c:a", "aac", "-shortest", str(src)], check=True, timeout=60)
    r = _upload(client, auth, cid, src.read_bytes(), "党课.mp4", "video")
    assert r.status_code == 201, r.get_data(as_text=True)
    video = [m for m in r.get_json()["media"] if m["kind"] == "video"][0]
    # Tests run jobs inline: the transcode has finished when the upload answers.
    assert session.get(ContentMedia, video["id"]).state == "ready"
    api("v001-editor", "post", f"/contents/{cid}/submit")
    api("v001-reviewer", "post", f"/contents/{cid}/approve")
    item = queries.tv_item(cid, V001)
    assert item["attachments"] == [{"name": "学习材料.pdf", "url": item["attachments"][0]["url"]}]
    assert client.get(item["attachments"][0]["url"]).data.startswith(b"%PDF")
    playlist = client.get(item["video"]["hls_url"])
    assert playlist.status_code == 200
    pl = m3u8.loads(playlist.get_data(as_text=True))
    assert pl.is_endlist and pl.playlist_type == "vod" and len(pl.segments) >= 1
    assert 2.5 <= sum(s.duration for s in pl.segments) <= 3.5
    seg = client.get(item["video"]["hls_url"].rsplit("/", 1)[0] + "/" + pl.segments[0].uri)
    assert seg.status_code == 200 and seg.data[:1] == b"G"  # MPEG-TS sync byte
    assert client.get(item["video"]["poster"]).status_code == 200


def test_a_live_item_gets_its_new_image_only_after_review(client, auth, api, publish):
    cid = publish()
    png = io.BytesIO()
    Image.new("RGB", (100, 60), (0, 0, 255)).save(png, "PNG")
    r = _upload(client, auth, cid, png.getvalue(), "blue.png")
    assert r.status_code == 201 and r.get_json()["pending_version"]["number"] == 2
    assert queries.tv_item(cid, V001)["images"] == []
    api("v001-editor", "post", f"/contents/{cid}/submit")
    api("v001-reviewer", "post", f"/contents/{cid}/approve")
    assert len(queries.tv_item(cid, V001)["images"]) == 1
