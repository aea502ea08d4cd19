"""Staff login, logout and home."""
from __future__ import annotations

from urllib.parse import urlparse

from flask import Blueprint, current_app, g, redirect, render_template, request, url_for

from portal_server.core import audit
from portal_server.core.accounts import ROLE_NAMES
from portal_server.core.auth import authenticate, load_web_user, login, login_required, logout
from portal_server.core.db import session

bp = Blueprint("admin", __name__, url_prefix="/admin", template_folder="templates")


def inject_nav():
    """Menu entries the current user may use (for templates/admin/base.html)."""
    user = getattr(g, "user", None)
    items = []
    if user is not None:
        for endpoint, label, roles in current_app.extensions.get("staff_nav", []):
            if not roles or user.has_role(*roles):
                items.append((endpoint, label))
    return {"staff_nav": items, "ROLE_NAMES": ROLE_NAMES}


def _safe_next(target: str | None) -> str:
    if target and target.startswith("/") and not target.startswith("//") and not urlparse(target).netloc:
        return target
    return url_for("admin.home")


@bp.route("/login", methods=["GET", "POST"], endpoint="login")
def login_page():
    """The staff login form (Chinese); wrong passwords say so, the fifth try in a minute is throttled."""
    error = None
    status = 200
    if request.method == "POST":
        username = (request.form.get("username") or "").strip()
        password = request.form.get("password") or ""
        if not username or not password:
            error, status = "请输入用户名和密码。", 400
        else:
            user, why = authenticate(username, password, current_app.config["SETTINGS"].login_max_failures)
            if why == "throttled":
                error, status = "登录失败次数过多，请一分钟后再试。", 429
            elif user is None:
                error, status = "用户名或密码错误。", 401
            else:
                login(user)
                audit.record("auth.login", "user", user.id, user.region.code, actor=user.username)
                session.commit()
                return redirect(_safe_next(request.args.get("next")))
    return render_template("admin/login.html", error=error), status


@bp.post("/logout")
def logout_page():
    user = load_web_user()
    if user is not None:
        audit.record("auth.logout", "user", user.id, user.region.code, actor=user.username)
        session.commit()
    logout()
    return redirect(url_for("admin.login"))


@bp.get("/")
@login_required
def home():
    """Who I am, my scope, and the cards features contribute (e.g. the review queue count)."""
    cards = []
    for fn in current_app.extensions.get("staff_home_cards", []):
        card = fn(g.user)
        if card:
            cards.append(card)
    chain = g.user.region.chain()
    return render_template("admin/home.html", user=g.user, chain=chain, cards=cards)
