"""The grid worker's phone app at /m/grid/: an installable PWA (manifest + service worker) whose
page is a static shell; data comes from the JSON API with the worker's bearer token, and visits
wait in the phone's offline queue until the signal returns (each with its idempotency key)."""
from __future__ import annotations

from pathlib import Path

from flask import Blueprint, send_from_directory

bp = Blueprint("grids_phone", __name__, url_prefix="/m/grid")

STATIC = Path(__file__).parent / "static"
#: Bump when app.js / app.css / the shell change: the service worker then drops its old cache.
VERSION = "1"
TYPES = {"app.js": "text/javascript", "app.css": "text/css", "sw.js": "text/javascript",
         "manifest.webmanifest": "application/manifest+json", "icon.svg": "image/svg+xml"}


@bp.get("/")
def app_shell():
    """The app's one page (no data in it: it works offline from the service worker's cache)."""
    resp = send_from_directory(STATIC, "index.html", mimetype="text/html", max_age=0)
    resp.headers["Cache-Control"] = "no-cache"
    return resp


@bp.get("/<any('app.js', 'app.css', 'sw.js', 'manifest.webmanifest', 'icon.svg'):name>")
def asset(name: str):
    resp = send_from_directory(STATIC, name, mimetype=TYPES[name], max_age=0)
    resp.headers["Cache-Control"] = "no-cache"
    if name == "sw.js":
        resp.headers["Service-Worker-Allowed"] = "/m/grid/"
    return resp


