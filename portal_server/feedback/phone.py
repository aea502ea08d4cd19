"""Phone pages (/m/feedback): reached from the TV's QR (adds to that order) or a village poster.

The link carries a signed token: ``{"o": order_id}`` from the TV, ``{"v": village_code}`` from a
poster. Text, up to 3 photos (resized, EXIF stripped) and an optional location; everything is
validated before anything is stored.
"""
from __future__ import annotations

import uuid

from flask import Blueprint, current_app, g, render_template, request
from itsdangerous import BadSignature, URLSafeTimedSerializer

from portal_server.core.api import ApiError
from portal_server.core.db import session
from portal_server.core.regions import region_by_code

from . import operations as ops
from . import queries
from .models import CATEGORIES, CATEGORY_NAMES

bp = Blueprint("feedback_phone", __name__, url_prefix="/m/feedback", template_folder="templates")

LINK_MAX_AGE_S = 30 * 86400
#: The largest phone post: photos together up to 10 MB (what the form says) plus the text fields.
#: Bigger bodies are refused (413) before they are read, with the form's own page saying why.
PHOTOS_MAX_MB = 10
POST_MAX_BYTES = PHOTOS_MAX_MB * 1024 * 1024 + 256 * 1024


@bp.url_value_preprocessor
def _limit_body(_endpoint, _values):
    """Before any before_request reads the form (CSRF does): this page's own body limit."""
    request.max_content_length = POST_MAX_BYTES


def _signer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="ctv-feedback-phone")


def order_link(order) -> str:
    """The absolute phone URL shown as a QR on the TV after filing ``order``."""
    return (current_app.config["SETTINGS"].public_url.rstrip("/") + "/m/feedback?t="
            + _signer().dumps({"o": order.id}))


def poster_link(village_code: str) -> str:
    """The phone URL printed on a village's poster (files a new order for that village)."""
    return (current_app.config["SETTINGS"].public_url.rstrip("/") + "/m/feedback?t="
            + _signer().dumps({"v": village_code}))


def _target(token: str | None):
    """(order, village) named by the link, or 400."""
    if not token:
        return None, None
    try:
        data = _signer().loads(token, max_age=LINK_MAX_AGE_S)
    except BadSignature:
        return None, None
    if "o" in data:
        order = queries.get(int(data["o"]))
        return order, order.region if order else None
    return None, region_by_code(str(data.get("v", "")))


def _float(name: str):
    raw = (request.form.get(name) or "").strip()
    if not raw:
        return None
    try:
        v = float(raw)
    except ValueError:
        raise ApiError(400, "bad_request", f"invalid {name}", field=name) from None
    lim = 90 if name == "lat" else 180
    if not -lim <= v <= lim:
        raise ApiError(400, "bad_request", f"invalid {name}", field=name)
    return v


@bp.route("", methods=["GET", "POST"])
def form():
    """The phone form: adds to the TV's order, or files a new one from a poster."""
    token = request.values.get("t")
    order, village = _target(token)
    if village is None:
        return render_template("feedback/phone.html", invalid=True, categories=CATEGORIES,
                               CATEGORY_NAMES=CATEGORY_NAMES), 400
    if request.method == "GET":
        return render_template("feedback/phone.html", order=order, village=village, token=token,
                               categories=CATEGORIES, CATEGORY_NAMES=CATEGORY_NAMES,
                               key=uuid.uuid4().hex)
    g.actor = "phone"
    actor = ops.Actor(name_override="phone")
    f = request.form
    photos = [(fs.read(ops.MAX_PHOTO_BYTES + 1), fs.filename or "") for fs in request.files.getlist("photos")
              if fs and fs.filename]
    stored: list[str] = []
    try:
        lat, lon = _float("lat"), _float("lon")
        if order is None:
            content = (f.get("content") or "").strip()
            if not content:
                raise ApiError(400, "bad_request", "请填写反映内容", field="content")
            prepared = ops.prepare_photos(photos)  # validate before the order exists
            order, created = ops.submit(f.get("category", ""), content, bool(f.get("callback")),
                                        channel="phone", actor=actor, region=village,
                                        idem_owner="phone", idempotency_key=f.get("key") or None,
                                        lat=lat, lon=lon, address=(f.get("address") or "").strip() or None)
            if created and prepared:
                stored = ops._store_photos(order, prepared)
                ops._after(order, actor, "supplement", None, photos=stored)
        else:
            before = {p.path for p in order.photos}
            ops.supplement(order, actor, f.get("content"), photos, lat, lon,
                           (f.get("address") or "").strip() or None)
            stored = [p.path for p in order.photos if p.path not in before]
        session.commit()
    except ApiError as e:
        session.rollback()
        ops.discard_files(stored)
        return render_template("feedback/phone.html", order=order, village=village, token=token,
                               categories=CATEGORIES, CATEGORY_NAMES=CATEGORY_NAMES,
                               key=f.get("key") or uuid.uuid4().hex, error=e.message,
                               error_field=e.extra.get("field"), form=f), e.status
    except Exception:
        session.rollback()
        ops.discard_files(stored)
        raise
    return render_template("feedback/phone_done.html", order=order)


@bp.errorhandler(413)
def _too_large(_e):
    """This page's own 413 (elsewhere the app's: JSON for the API, the staff layout for forms)."""
    return render_template("feedback/phone.html", too_large=True, max_mb=PHOTOS_MAX_MB), 413
