"""The staff web shell: login, logout, the staff home, the navigation other features join.

Features add a menu entry with ``add_nav(app, endpoint, label, roles)`` and a home-page
card with ``add_home_card(app, fn)`` where ``fn(user)`` returns ``{"title","value","url"}`` or None.
"""


def add_nav(app, endpoint: str, label: str, roles: tuple[str, ...] = ()) -> None:
    app.extensions.setdefault("staff_nav", []).append((endpoint, label, roles))


def add_home_card(app, fn) -> None:
    app.extensions.setdefault("staff_home_cards", []).append(fn)


def init_app(app):
    from . import views

    app.register_blueprint(views.bp)
    app.context_processor(views.inject_nav)
