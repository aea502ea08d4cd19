"""The stats as workbook sheets (same figures as the JSON, Chinese headers)."""
from __future__ import annotations

from .queries import METRICS, SECTION_NAMES


def _pct(v):
    return None if v is None else round(v * 100, 1)


def overview_rows(o: dict) -> list[tuple[str, object]]:
    """(label, value) of every overview figure, in the order the cockpit shows them."""
    rows = [
        ("终端总数", o["terminals"]["total"]), ("在线终端", o["terminals"]["online"]),
        ("日均活跃机顶盒", o["tv"]["active_boxes"]), ("页面浏览量", o["tv"]["page_views"]),
    ]
    rows += [(f"浏览量·{SECTION_NAMES.get(k, k)}", v) for k, v in o["tv"]["by_section"].items()]
    rows += [
        ("收到诉求", o["feedback"]["received"]), ("办结诉求", o["feedback"]["closed"]),
        ("诉求按期办结率(%)", _pct(o["feedback"]["on_time_rate"])), ("满意度(1-5)", o["feedback"]["satisfaction"]),
        ("受理办件", o["cases"]["received"]), ("办结办件", o["cases"]["completed"]),
        ("办件按期办结率(%)", _pct(o["cases"]["on_time_rate"])),
        ("应报平安", o["checkins"]["expected"]), ("已报平安", o["checkins"]["done"]),
        ("发布预警", o["alerts"]["sent"]), ("预警触达率(%)", _pct(o["alerts"]["reach_rate"])),
        ("召开会议", o["meetings"]["held"]), ("参会户次", o["meetings"]["attendance"]),
        ("村务公开逾期村数", o["affairs"]["late_villages"]),
    ]
    return rows


def overview_sheets(body: dict, children: list[dict]):
    head = [("区域", f'{body["region"]["name"]}（{body["region"]["code"]}）'),
            ("统计区间", f'{body["from"]} 至 {body["to"]}')]
    sheets = [("概览", ["指标", "数值"], head + overview_rows(body))]
    if children:
        labels = [label for label, _v in overview_rows(children[0])]
        sheets.append(("下级区域", ["代码", "名称"] + labels,
                       [[c["code"], c["name"]] + [v for _l, v in overview_rows(c)] for c in children]))
    return sheets


def timeseries_sheets(body: dict):
    name = METRICS.get(body["metric"], body["metric"])
    return [("趋势", ["日期", name], [[p["t"], p["v"]] for p in body["points"]])]
