"""/media/ and /hls/ when the app serves them itself (development, tests). In production nginx
serves the same folders (see portal_server/stack.py) and these routes are never reached."""
from __future__ import annotations

from flask import Blueprint, abort, current_app, send_from_directory

from portal_server.core import signing

bp = Blueprint("files", __name__)


@bp.get("/media/<path:path>")
def media(path: str):
    """Uploaded and generated files: content images and attachments, speech, meeting minutes."""
    return send_from_directory(current_app.config["SETTINGS"].media_dir, path, conditional=True)


@bp.get("/hls/<path:path>")
def hls(path: str):
    """HLS playlists and segments (live meetings, replays, content videos). Meetings only through
    a signed, unexpired URL (``core.signing``), exactly as nginx's secure_link decides."""
    if path.startswith("s/"):
        path = signing.check_signed(path[2:])
        if path is None:
            abort(403)
    elif signing.is_protected(path):
        abort(403)
    resp = send_from_directory(current_app.config["SETTINGS"].hls_dir, path, max_age=0)
    resp.headers["Cache-Control"] = "no-cache"
    resp.headers["Access-Control-Allow-Origin"] = "*"
    if path.endswith(".m3u8"):
        resp.headers["Content-Type"] = "application/vnd.apple.mpegurl"
    return resp
