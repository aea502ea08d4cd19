"""Who is asking: staff by web session or bearer token, boxes by terminal token.

Decorators: ``login_required`` / ``roles_required`` (staff web), ``api_user_required``
(bearer), ``terminal_required`` (box). Login throttling lives here too.
"""
from __future__ import annotations

import functools

from flask import g, redirect, request, session as web_session, url_for

from . import redis as core_redis
from .accounts import User, revoke_session, session_revoked, user_for_token
from .api import ApiError
from .db import session
from .terminals import BoxIdentity, Terminal, identity_for_token, terminal_for_token

TERMINAL_COOKIE = "ctv_terminal"


# Loading -------------------------------------------------------------------------------------

def load_web_user() -> User | None:
    uid = web_session.get("uid")
    if not uid:
        return None
    user = session.get(User, uid)
    if user is None or not user.active or web_session.get("pwv") != user.password_hash[-12:]:
        return None
    if session_revoked(web_session.get("sid")):  # logged out: the cookie is dead server-side
        return None
    return user


def bearer_user() -> User | None:
    header = request.headers.get("Authorization", "")
    if not header.startswith("Bearer "):
        return None
    # Looked up once per request (the credentials check and the view both ask); kept in the
    # request's environ, not in g, which may outlive a request (tests share an app context).
    if "ctv.bearer" not in request.environ:
        request.environ["ctv.bearer"] = user_for_token(header[7:].strip())
    return request.environ["ctv.bearer"]


def reject_bad_credentials():
    """``before_request``: credentials that are presented must be good, on every endpoint, public
    ones included (INTERFACES §4): a wrong, expired or revoked bearer or terminal token → 401
    instead of being silently ignored."""
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer ") and bearer_user() is None:
        raise ApiError(401, "unauthorized", "登录令牌无效、已过期或已撤销，请重新登录")
    token = request.headers.get("X-Terminal-Token")
    if token and _identity_for(token) is None:   # one Core SELECT: the view loads more if it needs it
        raise ApiError(401, "unauthorized", "终端令牌无效或已撤销")


def init_app(app) -> None:
    app.before_request(reject_bad_credentials)


SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


def _origin_of(url: str | None) -> str | None:
    from urllib.parse import urlsplit

    if not url:
        return None
    u = urlsplit(url)
    if not u.scheme or not u.netloc:
        return None
    return f"{u.scheme}://{u.netloc}".lower()


def same_origin() -> bool:
    """True when the browser says this request comes from one of our own pages: its ``Origin``
    (or, from browsers that send none, its ``Referer``) is the public URL or the host asked."""
    from flask import current_app

    seen = _origin_of(request.headers.get("Origin")) or _origin_of(request.headers.get("Referer"))
    if seen is None:
        return False
    ours = {_origin_of(current_app.config["SETTINGS"].public_url), _origin_of(request.host_url)}
    return seen in ours


def _request_token() -> str | None:
    """The box token of this request: X-Terminal-Token header, ``?token=``, else the cookie.

    A write (POST...) carried by the cookie alone must come from one of our pages: old STB
    browsers ignore SameSite, so another site could otherwise make a box check in, call for help
    or file orders. Such a cross-site write gets 403."""
    token = request.headers.get("X-Terminal-Token") or request.args.get("token")
    if not token:
        token = request.cookies.get(TERMINAL_COOKIE)
        if token and request.method not in SAFE_METHODS and not same_origin():
            raise ApiError(403, "cross_site", "跨站请求已拒绝：请在本机的电视页面上操作")
    return token


def request_terminal() -> Terminal | None:
    """The box making this request (``_request_token``: header, ``?token=`` or cookie), loaded
    with its household and regions."""
    return _terminal_for(_request_token())


def request_box() -> BoxIdentity | None:
    """The box making this request as plain ids (``terminals.identity_for_token``): for hot
    writes that need no more than whose box it is."""
    return _identity_for(_request_token())


def _terminal_for(token: str | None) -> Terminal | None:
    """``terminal_for_token``, looked up once per request (the credentials check and the view both
    ask; kept in the request's environ like the bearer user)."""
    cached = request.environ.get("ctv.terminal")
    if cached is None or cached[0] != token:
        cached = request.environ["ctv.terminal"] = (token, terminal_for_token(token))
    return cached[1]


def _identity_for(token: str | None) -> BoxIdentity | None:
    """``identity_for_token``, once per request (the credentials check and the view both ask)."""
    cached = request.environ.get("ctv.box")
    if cached is None or cached[0] != token:
        cached = request.environ["ctv.box"] = (token, identity_for_token(token))
    return cached[1]


def page_terminal() -> Terminal:
    """TV pages: the asking box (also put in ``g.terminal``), or 401, which the portal answers
    with its pairing screen."""
    term = request_terminal()
    if term is None:
        from flask import abort
        abort(401)
    g.terminal = term
    return term


def cookie_secure() -> bool:
    """Cookies get the Secure flag when the public URL is https."""
    from flask import current_app

    return current_app.config["SETTINGS"].public_url.lower().startswith("https://")


def keep_terminal_cookie(resp):
    """``after_request`` of TV page blueprints: a page opened with ``?token=`` keeps the box's
    identity in the portal cookie (the portal's own entry, /tv/, does the same)."""
    token = request.args.get("token")
    if token and g.get("terminal") is not None:
        resp.set_cookie(TERMINAL_COOKIE, token, httponly=True, samesite="Lax", max_age=365 * 86400,
                        secure=cookie_secure())
    return resp


def login(user: User) -> None:
    import secrets

    web_session.clear()
    web_session["uid"] = user.id
    # Changing the password invalidates every session of the user.
    web_session["pwv"] = user.password_hash[-12:]
    # Logout revokes this id server-side (a copied cookie dies with the session).
    web_session["sid"] = secrets.token_urlsafe(32)
    web_session.permanent = True


def logout() -> None:
    """End the session for good: its id is revoked in the database (caller commits)."""
    from flask import current_app

    sid = web_session.get("sid")
    if sid:
        revoke_session(sid, current_app.permanent_session_lifetime)
    web_session.clear()


# Decorators ----------------------------------------------------------------------------------

def login_required(fn):
    """Staff web pages: redirect to the login page when nobody is logged in."""

    @functools.wraps(fn)
    def wrapper(*a, **kw):
        g.user = load_web_user()
        if g.user is None:
            return redirect(url_for("admin.login", next=request.full_path.rstrip("?")))
        return fn(*a, **kw)

    return wrapper


def roles_required(*roles: str):
    """Staff web pages limited to ``roles`` (admins pass every check): 403 otherwise."""

    def deco(fn):
        @functools.wraps(fn)
        @login_required
        def wrapper(*a, **kw):
            if not g.user.has_role(*roles):
                from flask import abort
                abort(403)
            return fn(*a, **kw)

        return wrapper

    return deco


def api_user_required(*roles: str):
    """API: a valid bearer token (401) holding one of ``roles`` when given (403)."""

    def deco(fn):
        @functools.wraps(fn)
        def wrapper(*a, **kw):
            user = bearer_user()
            if user is None:
                raise ApiError(401, "unauthorized", "missing, wrong or expired bearer token")
            g.user = user
            if roles and not user.has_role(*roles):
                raise ApiError(403, "forbidden", f"this needs one of the roles: {', '.join(roles)}")
            return fn(*a, **kw)

        wrapper.__openapi_security__ = "bearer"
        return wrapper

    return deco


def terminal_required(fn):
    """API for boxes: a valid terminal token (401)."""

    @functools.wraps(fn)
    def wrapper(*a, **kw):
        term = request_terminal()
        if term is None:
            raise ApiError(401, "unauthorized", "missing, forged or revoked terminal token")
        g.terminal = term
        return fn(*a, **kw)

    return wrapper


NO_CREDENTIALS = "a bearer token or a terminal token is required"


def user_or_terminal(fn):
    """API callable by staff (bearer) or a box (terminal token): sets g.user or g.terminal."""

    @functools.wraps(fn)
    def wrapper(*a, **kw):
        g.user = bearer_user()
        g.terminal = None if g.user else request_terminal()
        if g.user is None and g.terminal is None:
            raise ApiError(401, "unauthorized", NO_CREDENTIALS)
        return fn(*a, **kw)

    return wrapper


def user_or_box() -> tuple[User | None, BoxIdentity | None]:
    """``user_or_terminal`` for a hot write: (staff by bearer, None) or (None, the box as plain
    ids: ``request_box``); 401 when neither."""
    user = bearer_user()
    box = None if user else request_box()
    if user is None and box is None:
        raise ApiError(401, "unauthorized", NO_CREDENTIALS)
    return user, box


# Throttling ----------------------------------------------------------------------------------
# Wrong passwords are counted per account+address and per address, never per account alone:
# someone guessing from one address must not lock the account for its owner elsewhere.
# The address is the real client's (ProxyFix in create_app), not nginx's 127.0.0.1.

#: Wrong passwords per address (over all accounts) per minute, as a multiple of the per-account limit.
ADDRESS_FACTOR = 5


def _throttle_keys(username: str) -> tuple[str, str]:
    addr = request.remote_addr or "unknown"
    return f"ctv:loginfail:{username.lower()}:{addr}", f"ctv:loginfail-addr:{addr}"


def login_throttled(username: str, max_failures: int) -> bool:
    """True when ``max_failures`` wrong tries for this account were made from this address in the
    last minute, or ``ADDRESS_FACTOR`` times as many from this address over all accounts."""
    try:
        n_account, n_addr = core_redis.client().mget(list(_throttle_keys(username)))
    except Exception:  # Redis down: fail closed would lock everybody out; log in slowly instead
        return False
    return (n_account is not None and int(n_account) >= max_failures
            or n_addr is not None and int(n_addr) >= max_failures * ADDRESS_FACTOR)


def note_login_failure(username: str) -> None:
    try:
        r = core_redis.client()
        pipe = r.pipeline()
        for key in _throttle_keys(username):
            pipe.incr(key)
            pipe.expire(key, 60, nx=True)
        pipe.execute()
    except Exception:
        pass


def clear_login_failures(username: str) -> None:
    try:
        core_redis.client().delete(_throttle_keys(username)[0])
    except Exception:
        pass


def authenticate(username: str, password: str, max_failures: int) -> tuple[User | None, str | None]:
    """(user, None) on success, (None, reason) otherwise; reasons are 'throttled' or 'wrong'."""
    from .accounts import user_by_username

    if login_throttled(username, max_failures):
        return None, "throttled"
    user = user_by_username(username)
    if user is None or not user.active or not user.check_password(password):
        note_login_failure(username)
        return None, "wrong"
    clear_login_failures(username)
    return user, None
