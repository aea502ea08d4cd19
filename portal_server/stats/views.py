"""The leaders' cockpit (/admin/cockpit) and the TV usage beacon (/tv/beacon)."""
from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Response, abort, current_app, g, jsonify, render_template, request, url_for

from device_fleet import queries as fleet_queries
from portal_server.core import clock, scope
from portal_server.core.api import ApiError
from portal_server.core.auth import request_terminal, roles_required
from portal_server.core.exports import workbook_response
from portal_server.core.regions import Region, Scope

from . import geo, operations, params, queries
from .sheets import overview_rows, overview_sheets

bp = Blueprint("stats", __name__, url_prefix="/admin/cockpit", template_folder="templates",
               static_folder="static")
beacon_bp = Blueprint("stats_beacon", __name__)

TREND_METRICS = ("tv.active_boxes", "tv.page_views", "feedback.received", "cases.received", "checkins.done",
                 "terminals.online")


def _region():
    try:
        return params.region_arg(g.user, request.args.get("region"))
    except ApiError as err:
        abort(err.status, err.message)


def _city_of(region: Region) -> Region:
    return region.chain()[0]


@bp.get("/")
@roles_required(*params.ROLES)
def cockpit():
    """Headline figures with change, trends, rankings and the map of a region; ``?screen=1``
    lays it out for a 1920×1080 wall screen that refreshes itself."""
    region = _region()
    crumbs = [r for r in region.chain() if scope.covers(g.user, r)]
    screen = request.args.get("screen") == "1"
    try:
        start, end = params.period_args(request.args)
        period_error = None
    except ApiError as err:   # the fields keep what was typed; the message says what is wrong
        start = end = None
        period_error = err.message
    presets = [{"label": label, "from": a.isoformat(), "to": b.isoformat(), "current": (a, b) == (start, end),
                "url": url_for("stats.cockpit", region=region.code, screen=1 if screen else None,
                               **{"from": a.isoformat(), "to": b.isoformat()})}
               for label, a, b in params.presets(clock.today())]
    return render_template("stats/cockpit.html", region=region, crumbs=crumbs, screen=screen,
                           presets=presets, period_error=period_error,
                           period_from=start.isoformat() if start else request.args.get("from", ""),
                           period_to=end.isoformat() if end else request.args.get("to", ""),
                           data_url=url_for("stats.data", region=region.code),
                           map_url=url_for("stats.map_data", region=region.code),
                           xlsx_url=url_for("stats_api.overview", region=region.code, format="xlsx"),
                           page_xlsx_url=url_for("stats.xlsx", region=region.code))


@bp.get("/data.json")
@roles_required(*params.ROLES)
def data():
    """Everything the cockpit draws, in one request."""
    region = _region()
    try:
        start, end = params.period_args(request.args)
    except ApiError as err:
        return jsonify({"error": {"code": err.code, "message": err.message}}), err.status
    p0, p1 = params.previous(start, end)
    trend_start = end.fromordinal(end.toordinal() - 29)
    prev_start, prev_end = params.previous(trend_start, end)
    now = queries.many_series(region, TREND_METRICS, trend_start, end)
    before = queries.many_series(region, TREND_METRICS, prev_start, prev_end)
    return jsonify({
        "region": {"code": region.code, "name": region.name, "level": region.level},
        "from": start.isoformat(), "to": end.isoformat(),
        "now": queries.overview(region, start, end),
        "before": queries.overview(region, p0, p1),
        "children": queries.by_child(region, start, end),
        "trends": {m: {"name": queries.METRICS[m], "points": now[m], "previous": before[m]}
                   for m in TREND_METRICS},
        "sections": queries.SECTION_NAMES,
    })


@bp.get("/export.xlsx")
@roles_required(*params.ROLES)
def xlsx():
    """The cockpit's figures and its ranking table as a workbook (same as the API's xlsx)."""
    region = _region()
    start, end = params.period_args(request.args)
    body = {"region": {"code": region.code, "name": region.name, "level": region.level},
            "from": start.isoformat(), "to": end.isoformat(), **queries.overview(region, start, end)}
    return workbook_response(f"驾驶舱-{region.name}-{start}-{end}.xlsx",
                         overview_sheets(body, queries.by_child(region, start, end)))


def _towns_with_villages(city: Region) -> list[dict]:
    return [{"code": t.code, "name": t.name,
             "villages": [{"code": v.code, "name": v.name} for v in queries.children_of(t)]}
            for t in queries.children_of(city)]


@bp.get("/map.json")
@roles_required(*params.MAP_ROLES)
def map_data():
    """Shapes of the region's children (towns of the city, villages of a town), village halls
    and boxes as points with their online state."""
    region = _region()
    city = _city_of(region)
    real = current_app.config["SETTINGS"].map_geojson
    shapes = geo.shapes({"code": city.code, "name": city.name}, _towns_with_villages(city),
                        Path(real) if real else None)
    want = "town" if region.level == "city" else "village"
    parent = region.code if region.level != "village" else region.parent.code
    feats = [f for f in shapes["features"] if f["properties"]["level"] == want
             and (region.level == "city" or f["properties"]["parent"] == parent)
             and (region.level != "village" or f["properties"]["code"] == region.code)]
    centers = {f["properties"]["code"]: f["properties"]["center"] for f in shapes["features"]}
    points = []
    for t in fleet_queries.terminal_states(Scope.of(region)):
        c = centers.get(t["region_code"])
        if c is None:
            continue
        kind = t["kind"]
        if region.level == "city" and kind == "household":
            continue  # 3,000+ boxes at city level say less than the online rate per town
        pos = c if kind != "household" else geo.scatter_around(c, t["serial"])
        points.append({"serial": t["serial"], "kind": kind, "online": t["online"], "value": pos,
                       "region": t["region_code"]})
    return jsonify({"type": "FeatureCollection", "features": feats, "points": points})


@beacon_bp.get("/tv/beacon")
def beacon():
    """A page view from a box (development stand-in for nginx's beacon access_log): 204, always.
    The serial comes from the ``ctv_sn`` cookie, set with the portal cookies."""
    serial = request.cookies.get("ctv_sn")
    if not serial:
        term = request_terminal()
        serial = term.serial if term is not None else None
    operations.record_beacon(serial, request.args.get("p"))
    resp = Response(status=204)
    resp.headers["Cache-Control"] = "no-store"
    return resp


def overview_table(o: dict):
    """(label, value) rows for the template's figure list."""
    return overview_rows(o)
