"""Signed, expiring URLs for HLS video (meetings now, live channels next).

nginx checks them without Python (``secure_link`` in the config written by
``portal_server.stack.write_nginx``); the app's development route ``/hls/`` checks the same.
The signature sits in the path, not the query, so the segments a playlist names by relative
URL inherit it: ``/hls/s/<md5>/<expires>/meetings/12/live.m3u8`` → ``.../meetings/12/seg-00001.ts``.
It covers the expiry and the folder (``meetings/12``), so one signature plays one stream's
playlist and segments until it expires.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time

from flask import current_app

#: Default lifetime of a signed video URL: a long meeting, or an evening of replays.
HLS_TTL_S = 6 * 3600
#: URL prefix of signed HLS paths (nginx's ``location`` matches the same shape).
SIGNED_PREFIX = "/hls/s/"
#: Folders under /hls/ that are served only with a signature.
PROTECTED = ("meetings/",)

_SIGNED = re.compile(r"^(?P<sig>[A-Za-z0-9_-]{22})/(?P<exp>[0-9]{1,12})/(?P<dir>[A-Za-z0-9_.-]+(?:/[A-Za-z0-9_.-]+)*)/(?P<file>[A-Za-z0-9_.-]+)$")


def _secret(secret: str | None) -> str:
    return secret if secret is not None else current_app.config["SETTINGS"].hls_link_secret


def _md5(expires: int, folder: str, secret: str) -> str:
    # nginx: secure_link_md5 "$hexp/$hdir <secret>" → base64url(md5) without padding.
    digest = hashlib.md5(f"{expires}/{folder} {secret}".encode()).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def sign_hls_url(path: str, ttl: int | None = None, secret: str | None = None,
                 now: float | None = None) -> str:
    """``/hls/<folder>/<file>`` → ``/hls/s/<md5>/<expires>/<folder>/<file>``, valid for ``ttl``
    seconds (``HLS_TTL_S`` by default). Channels sign ``/hls/channels/<id>/index.m3u8`` the same way."""
    rel = path.split("/hls/", 1)[1] if "/hls/" in path else path.lstrip("/")
    folder, _, _name = rel.rpartition("/")
    if not folder:
        raise ValueError(f"an HLS path needs a folder: {path!r}")
    expires = int((now if now is not None else time.time()) + (ttl if ttl is not None else HLS_TTL_S))
    return f"{SIGNED_PREFIX}{_md5(expires, folder, _secret(secret))}/{expires}/{rel}"


def check_signed(rest: str, secret: str | None = None, now: float | None = None) -> str | None:
    """The file path under /hls/ that a signed path (after ``/hls/s/``) grants, or None when the
    signature is wrong or expired."""
    m = _SIGNED.match(rest)
    if not m or ".." in rest.split("/"):
        return None
    expires = int(m["exp"])
    if expires < (now if now is not None else time.time()):
        return None
    if not hmac.compare_digest(m["sig"], _md5(expires, m["dir"], _secret(secret))):
        return None
    return f"{m['dir']}/{m['file']}"


def is_protected(rel: str) -> bool:
    """True for /hls/ files that are never served without a signature."""
    return rel.startswith(PROTECTED)
