"""GET /api/v1/stats/overview and /timeseries (INTERFACES §4.4); ``?format=xlsx`` on each."""
from __future__ import annotations

from flask import g, jsonify, request

from portal_server.core.api import bad_request, make_blueprint
from portal_server.core.auth import api_user_required
from portal_server.core.exports import workbook_response

from . import params, queries
from .sheets import overview_sheets, timeseries_sheets

bp = make_blueprint("stats_api", __name__, "/stats")


def _format() -> str:
    fmt = request.args.get("format", "json")
    if fmt not in ("json", "xlsx"):
        raise bad_request(f"不支持的格式 {fmt}（可用 json、xlsx）", field="format")
    return fmt


@bp.get("/overview")
@api_user_required(*params.ROLES)
def overview():
    """Figures of a region (default: the caller's) over a period of city days (default: the last
    7). ``region`` outside the caller's scope → 403; ``from`` after ``to`` or over two years → 400."""
    fmt = _format()
    region = params.region_arg(g.user, request.args.get("region"))
    start, end = params.period_args(request.args)
    body = {"region": {"code": region.code, "name": region.name, "level": region.level},
            "from": start.isoformat(), "to": end.isoformat(), **queries.overview(region, start, end)}
    if fmt == "xlsx":
        children = queries.by_child(region, start, end)
        return workbook_response(f"统计概览-{region.name}-{start}-{end}.xlsx", overview_sheets(body, children))
    return jsonify(body)


@bp.get("/timeseries")
@api_user_required(*params.ROLES)
def timeseries():
    """One metric of a region per city day: ``{"metric","points":[{"t","v"}]}``; an unknown
    metric → 400 listing the valid ones."""
    fmt = _format()
    metric = params.metric_arg(request.args.get("metric"))
    interval = request.args.get("interval", "day")
    if interval != "day":
        raise bad_request("interval 目前只支持 day（按日）", field="interval")
    region = params.region_arg(g.user, request.args.get("region"))
    start, end = params.period_args(request.args, default_days=30)
    body = {"metric": metric, "region": region.code, "interval": "day",
            "points": queries.timeseries(region, metric, start, end)}
    if fmt == "xlsx":
        return workbook_response(f"趋势-{metric}-{region.name}.xlsx", timeseries_sheets(body))
    return jsonify(body)
