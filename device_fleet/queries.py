"""Fleet reads, always within the caller's scope."""
from __future__ import annotations

from sqlalchemy import func, select

from portal_server.core.db import session
from portal_server.core.regions import Region, Scope, region_by_code
from portal_server.core.terminals import Terminal

from . import presence
from .models import Alarm, Command, CommandBatch, Firmware, Rollout, RolloutTarget


def presence_of(serials: list[str]) -> dict[str, tuple[bool, float | None, dict | None]]:
    """For other features: serial → (online, last seen epoch or None, latest heartbeat or None),
    read from Redis (the ingest keeps it; no database row per heartbeat)."""
    return presence.presence(serials)


def terminals_query(scope: Scope, region: str | None = None, model: str | None = None,
                    firmware: str | None = None, kind: str | list[str] | None = None, q: str | None = None,
                    include_unbound: bool = False):
    """select() of the terminals in ``scope`` matching the filters (region code, model, firmware, kind)."""
    stmt = select(Terminal).order_by(Terminal.serial)
    cond = scope.region_filter(Terminal.region_path)
    if include_unbound and scope.level == "city":
        cond = cond | Terminal.region_path.is_(None)
    stmt = stmt.where(cond)
    if region:
        r = region_by_code(region)
        if r is None or not scope.covers(r):
            return stmt.where(False)
        stmt = stmt.where(Terminal.region_path.startswith(r.path))
    if model:
        stmt = stmt.where(Terminal.model == model)
    if firmware:
        stmt = stmt.where(Terminal.firmware == firmware)
    if kind:
        kinds = kind.split(",") if isinstance(kind, str) else list(kind)
        stmt = stmt.where(Terminal.kind.in_(kinds))
    if q:
        stmt = stmt.where(Terminal.serial.contains(q.strip(), autoescape=True))
    return stmt


def select_terminals(scope: Scope, **filters) -> list[Terminal]:
    filters = {k: v for k, v in filters.items() if k in ("region", "model", "firmware", "kind") and v}
    return list(session.scalars(terminals_query(scope, **filters)))


def online_rates(scope: Scope) -> dict:
    """Online counts per town and per village inside ``scope``: {code: (online, total)} plus the whole."""
    online = presence.online_serials()
    rows = session.execute(select(Terminal.serial, Terminal.region_path)
                           .where(scope.region_filter(Terminal.region_path))).all()
    per: dict[str, list[int]] = {}
    total = [0, 0]
    for serial, path in rows:
        codes = [c for c in path.split("/") if c]
        is_on = serial in online
        total[0] += is_on
        total[1] += 1
        for c in codes[1:]:
            per.setdefault(c, [0, 0])
            per[c][0] += is_on
            per[c][1] += 1
    return {"total": tuple(total), "regions": {k: tuple(v) for k, v in per.items()}}


def online_serials() -> set[str]:
    """Serials of the boxes online now (presence in Redis): for other features' maps and lists."""
    return presence.online_serials()


def regions_in(scope: Scope, level: str) -> list[Region]:
    return list(session.scalars(select(Region).where(Region.level == level, scope.region_filter(Region.path))
                                .order_by(Region.code)))


def alarms(scope: Scope, active: bool | None = True, serial: str | None = None, limit: int = 200) -> list[Alarm]:
    stmt = select(Alarm).where(scope.region_filter(Alarm.region_path)).order_by(Alarm.raised_at.desc()).limit(limit)
    if active is True:
        stmt = stmt.where(Alarm.cleared_at.is_(None))
    elif active is False:
        stmt = stmt.where(Alarm.cleared_at.is_not(None))
    if serial:
        stmt = stmt.where(Alarm.serial == serial)
    return list(session.scalars(stmt))


def command(cmd_id: str, scope: Scope) -> Command | None:
    c = session.get(Command, cmd_id)
    if c is None:
        return None
    t = session.get(Terminal, c.terminal_id)
    if t is None or not (t.region_path and t.region_path.startswith(scope.path)
                         or t.region_path is None and scope.level == "city"):
        return None
    return c


def commands_for(serial: str, limit: int = 50) -> list[Command]:
    return list(session.scalars(select(Command).where(Command.serial == serial)
                                .order_by(Command.created_at.desc()).limit(limit)))


def recent_batches(limit: int = 30) -> list[CommandBatch]:
    return list(session.scalars(select(CommandBatch).order_by(CommandBatch.id.desc()).limit(limit)))


def batch_counts(batch_id: int) -> dict[str, int]:
    rows = session.execute(select(Command.status, func.count()).where(Command.batch_id == batch_id)
                           .group_by(Command.status)).all()
    return {s: n for s, n in rows}


def firmware_list() -> list[Firmware]:
    return list(session.scalars(select(Firmware).order_by(Firmware.id.desc())))


def rollouts(user=None) -> list[Rollout]:
    """Rollouts, newest first; with ``user``, only those whose every target is in their scope."""
    rows = list(session.scalars(select(Rollout).order_by(Rollout.id.desc())))
    if user is None:
        return rows
    return [r for r in rows if rollout_in_scope(r, user)]


def firmware_versions(scope: Scope) -> list[tuple[str, int]]:
    return [(v or "?", n) for v, n in session.execute(
        select(Terminal.firmware, func.count()).where(scope.region_filter(Terminal.region_path))
        .group_by(Terminal.firmware).order_by(Terminal.firmware))]


def models(scope: Scope) -> list[str]:
    return [m for m in session.scalars(select(Terminal.model).where(scope.region_filter(Terminal.region_path))
                                       .distinct().order_by(Terminal.model)) if m]


def daily_figures(day, start, end) -> dict[str, dict[str, float]]:
    """Figures for the stats of a city day [start, end) (UTC), by terminal region path: boxes in
    the inventory and boxes online now (taken when the day is aggregated; the periodic job runs
    through the day, so the last run of a day keeps its closing state)."""
    online = presence.online_serials()
    out: dict[str, dict[str, float]] = {}
    for serial, path in session.execute(select(Terminal.serial, Terminal.region_path)
                                        .where(Terminal.region_path.is_not(None))):
        f = out.setdefault(path, {"terminals.total": 0, "terminals.online": 0})
        f["terminals.total"] += 1
        f["terminals.online"] += serial in online
    return out


def region_paths_of(serials: list[str]) -> dict[str, str]:
    """serial → region path of the terminal (for figures keyed by box)."""
    out: dict[str, str] = {}
    for i in range(0, len(serials), 500):
        chunk = serials[i:i + 500]
        out.update(session.execute(select(Terminal.serial, Terminal.region_path)
                                   .where(Terminal.serial.in_(chunk), Terminal.region_path.is_not(None))).all())
    return out


def terminal_states(scope: Scope, limit: int = 5000) -> list[dict]:
    """Terminals inside ``scope`` with their online state, for maps: serial, kind, region code."""
    rows = session.execute(select(Terminal.serial, Terminal.kind, Terminal.region_path)
                           .where(scope.region_filter(Terminal.region_path))
                           .order_by(Terminal.serial).limit(limit)).all()
    online = presence.online_serials()
    return [{"serial": s, "kind": k, "region_code": [c for c in p.split("/") if c][-1], "online": s in online}
            for s, k, p in rows]


def metric_families():
    """Scrape-time gauges for /metrics: boxes online and in inventory by town, boxes by firmware."""
    from prometheus_client.core import GaugeMetricFamily

    online = presence.online_serials()
    towns = dict(session.execute(select(Region.code, Region.name).where(Region.level == "town")).all())
    per_town: dict[str, list[int]] = {}
    firmware: dict[str, int] = {}
    for serial, path, fw in session.execute(select(Terminal.serial, Terminal.region_path, Terminal.firmware)
                                            .where(Terminal.region_path.is_not(None))):
        codes = [c for c in path.split("/") if c]
        town = codes[1] if len(codes) > 1 else codes[0]
        pt = per_town.setdefault(town, [0, 0])
        pt[0] += serial in online
        pt[1] += 1
        firmware[fw or "unknown"] = firmware.get(fw or "unknown", 0) + 1
    on = GaugeMetricFamily("ctv_boxes_online", "Terminals online now", labels=["town", "town_name"])
    tot = GaugeMetricFamily("ctv_boxes_total", "Terminals in the inventory", labels=["town", "town_name"])
    for code, (n_on, n) in sorted(per_town.items()):
        on.add_metric([code, towns.get(code, "")], n_on)
        tot.add_metric([code, towns.get(code, "")], n)
    fwm = GaugeMetricFamily("ctv_boxes_firmware", "Terminals by firmware version", labels=["version"])
    for version, n in sorted(firmware.items()):
        fwm.add_metric([version], n)
    return [on, tot, fwm]


def rollout_in_scope(ro: Rollout, user) -> bool:
    """True when every box a rollout targets lies in ``user``'s scope (unbound inventory counts
    as the city's): a town's NOC operator never pauses or rolls back the whole city's upgrade."""
    if "admin" in user.roles:
        return True
    outside = RolloutTarget.rollout_id == ro.id
    in_scope = user.scope.region_filter(Terminal.region_path)
    if user.region.level == "city":
        in_scope = Terminal.region_path.is_(None) | in_scope
    n = session.scalar(select(func.count()).select_from(RolloutTarget)
                       .join(Terminal, Terminal.id == RolloutTarget.terminal_id)
                       .where(outside, ~in_scope))
    return not n
