"""The Redis client (one connection pool per process)."""
from __future__ import annotations

import os

import redis as redis_lib
from flask import current_app

_clients: dict[tuple[int, str], redis_lib.Redis] = {}


def client(url: str | None = None) -> redis_lib.Redis:
    """A Redis client for ``url`` (default: the app's), safe across fork."""
    url = url or current_app.config["SETTINGS"].redis_url
    key = (os.getpid(), url)
    if key not in _clients:
        _clients[key] = redis_lib.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=2,
                                                 health_check_interval=30)
    return _clients[key]


def init_app(app) -> None:
    app.extensions["redis_url"] = app.config["SETTINGS"].redis_url
