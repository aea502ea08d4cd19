"""Presence of boxes, kept in Redis by the ingest service.

- ``ctv:fleet:lastseen`` — sorted set serial → epoch seconds of the last message.
- ``ctv:fleet:hb:<serial>`` — hash of the latest heartbeat fields.
- ``ctv:fleet:hist:<serial>`` — downsampled heartbeat history (one per 5 × heartbeat_s, 288 kept).
- ``ctv:fleet:offline`` — set of serials whose Last Will said offline (cleared on the next message).
- ``ctv:fleet:portal_exp`` — sorted set serial → expiry (epoch s) of the portal URL in the box's
  retained config, as the ingest sees the broker hold it (refreshed before it runs out).

Online = seen within 2.5 × heartbeat_s and no Last Will since.
"""
from __future__ import annotations

import json
import time

from flask import current_app

from portal_server.core import redis as core_redis

LASTSEEN = "ctv:fleet:lastseen"
OFFLINE = "ctv:fleet:offline"
HB = "ctv:fleet:hb:"
PORTAL_EXPIRY = "ctv:fleet:portal_exp"
#: ``ctv:fleet:hist:<serial>`` — list of downsampled heartbeats (JSON), newest last, capped.
HIST = "ctv:fleet:hist:"
HIST_LEN = 288
#: A silent box's history goes after a week (retention; a retired box leaves nothing behind).
HIST_TTL_S = 7 * 86400


def offline_after_s() -> float:
    return 2.5 * current_app.config["SETTINGS"].heartbeat_s


def presence(serials: list[str]) -> dict[str, tuple[bool, float | None, dict | None]]:
    """serial → (online, last_seen epoch or None, latest heartbeat or None)."""
    r = core_redis.client()
    now = time.time()
    limit = offline_after_s()
    pipe = r.pipeline()
    for s in serials:
        pipe.zscore(LASTSEEN, s)
        pipe.sismember(OFFLINE, s)
        pipe.get(HB + s)
    res = pipe.execute()
    out = {}
    for i, s in enumerate(serials):
        seen, willed, hb = res[3 * i], res[3 * i + 1], res[3 * i + 2]
        online = seen is not None and not willed and now - float(seen) <= limit
        out[s] = (online, float(seen) if seen is not None else None, json.loads(hb) if hb else None)
    return out


def online_serials(now: float | None = None) -> set[str]:
    """Every serial seen within the offline limit and not marked offline by its Last Will."""
    r = core_redis.client()
    now = now or time.time()
    seen = {m.decode() for m in r.zrangebyscore(LASTSEEN, now - offline_after_s(), "+inf")}
    return seen - {m.decode() for m in r.smembers(OFFLINE)}


def last_seen_all() -> dict[str, float]:
    """serial → last-seen epoch of every box ever seen."""
    return {m.decode(): float(s) for m, s in core_redis.client().zrange(LASTSEEN, 0, -1, withscores=True)}


def history(serial: str) -> list[dict]:
    """The box's downsampled heartbeat history, oldest first."""
    return [json.loads(x) for x in core_redis.client().lrange(HIST + serial, 0, -1)]


def history_step_s() -> float:
    """One history sample per 5 heartbeats (5 minutes at the default 60 s)."""
    return 5 * current_app.config["SETTINGS"].heartbeat_s


def note_portal_expiries(redis, expiries: dict[str, float | None]) -> None:
    """Keep each box's retained portal URL expiry (None: the config has none, e.g. unpaired) on
    ``redis`` (a client or a pipeline), so the refresh job finds the URLs about to expire."""
    dated = {s: e for s, e in expiries.items() if e is not None}
    if dated:
        redis.zadd(PORTAL_EXPIRY, dated)
    undated = [s for s, e in expiries.items() if e is None]
    if undated:
        redis.zrem(PORTAL_EXPIRY, *undated)


def portal_urls_expiring(before: float) -> list[str]:
    """Serials whose retained portal URL expires before ``before`` (epoch s), soonest first."""
    return [m.decode() for m in core_redis.client().zrangebyscore(PORTAL_EXPIRY, "-inf", before)]
