"""Staff login, logout and home."""
from __future__ import annotations

from urllib.parse import urlparse

from flask import Blueprint, current_app, flash, g, jsonify, redirect, render_template, request, url_for

from portal_server.core import audit, imports
from portal_server.core.accounts import ROLE_NAMES, revoke_all_tokens
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
    logout()
    session.commit()
    return redirect(url_for("admin.login"))


@bp.route("/password", methods=["GET", "POST"])
@login_required
def password_page():
    """Change one's own password: the current one, the new one twice (at least 10 characters).
    Every other session and every API token of the user stop working."""
    error, status = None, 200
    if request.method == "POST":
        current = request.form.get("current") or ""
        new = request.form.get("new") or ""
        if not g.user.check_password(current):
            error, status = "当前密码不正确。", 400
        elif len(new) < 10:
            error, status = "新密码至少需要 10 个字符。", 400
        elif new != (request.form.get("confirm") or ""):
            error, status = "两次输入的新密码不一致。", 400
        elif new == current:
            error, status = "新密码不能与当前密码相同。", 400
        else:
            g.user.set_password(new)
            revoke_all_tokens(g.user)
            logout()  # this session too: the new password logs in again
            login(g.user)
            audit.record("auth.password_change", "user", g.user.id, g.user.region.code, actor=g.user.username)
            session.commit()
            flash("密码已修改，其他设备上的登录和接口令牌已失效。", "ok")
            return redirect(url_for("admin.home"))
    return render_template("admin/password.html", error=error), status


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


@bp.get("/imports/<import_id>")
@login_required
def import_status(import_id: str):
    """How far a background import of the staff web is (core.imports): phase, done, total, then the
    counts or the reason it failed. Only the user who started it may read it (404 for anyone else)."""
    st = imports.status(import_id, g.user)
    if st is None:
        return jsonify({"error": {"code": "not_found", "message": "找不到该导入任务（已过期或不是您发起的）"}}), 404
    resp = jsonify(st)
    resp.headers["Cache-Control"] = "no-store"
    return resp
