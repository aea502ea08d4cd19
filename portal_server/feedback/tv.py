"""TV pages of the 政民互动 section (/tv/feedback/...): 我要反映, 我的反映, 民意调查.

Works with the remote alone (arrows, OK, Back, digits). The pages are personal (a household's
orders) and light; writes go through the JSON API with XMLHttpRequest (ES5).
"""
from __future__ import annotations

from flask import Blueprint, abort, render_template, request, url_for

from portal_server.core.auth import keep_terminal_cookie, page_terminal
from portal_server.core.qr import qr_svg
from stb_app import add_section_action, add_state_provider

from . import phone, queries
from .models import CATEGORIES, CATEGORY_NAMES, STATUS_NAMES

bp = Blueprint("feedback_tv", __name__, url_prefix="/tv/feedback", template_folder="templates")
bp.after_request(keep_terminal_cookie)

#: Preset phrases per category (optional second step on the TV).
PHRASES = {
    "water": ["停水了", "水质浑浊有异味", "水管漏水", "水井水泵坏了"],
    "roads": ["道路坑洼难走", "路灯不亮", "桥梁有安全隐患", "道路被占用"],
    "electricity": ["停电了", "电压不稳", "电线老化有隐患", "电表有问题"],
    "sanitation": ["垃圾没有及时清运", "污水横流", "厕所需要维修", "河道有垃圾"],
    "security": ["发现可疑人员", "有安全隐患", "噪音扰民", "消防通道被堵"],
    "disputes": ["邻里纠纷", "土地纠纷", "家庭矛盾", "劳务工资纠纷"],
    "assistance": ["咨询低保政策", "申请临时救助", "医疗救助咨询", "残疾人补贴咨询"],
    "elderly": ["需要上门照料", "申请老年助餐", "养老金咨询", "独居老人需要关注"],
    "party": ["党员组织关系", "党费缴纳咨询", "参加组织生活", "入党申请咨询"],
    "other": ["意见建议", "政策咨询", "表扬感谢", "其他问题"],
}
ICONS = {"water": "水", "roads": "路", "electricity": "电", "sanitation": "洁", "security": "安",
         "disputes": "和", "assistance": "助", "elderly": "老", "party": "党", "other": "他"}


def _render(template: str, **kw):
    return render_template(template, CATEGORY_NAMES=CATEGORY_NAMES, STATUS_NAMES=STATUS_NAMES,
                           ICONS=ICONS, **kw)


@bp.get("/")
def index():
    """The three entries of feedback (also placed as tiles on the interaction section page)."""
    term = page_terminal()
    orders = queries.household_orders(term.household_id, term.serial, limit=50)
    unrated = sum(1 for o in orders if o.status in ("replied", "closed") and o.rating is None)
    polls = queries.polls_for_terminal(term)
    return _render("feedback/tv_index.html", unrated=unrated, polls=len(polls))


@bp.get("/new")
def new():
    """Step 1: the category grid. Step 2 (?c=): preset phrases. Step 3 (?c=&p=): confirm."""
    page_terminal()
    cat = request.args.get("c")
    if cat is None:
        return _render("feedback/tv_new.html", step=1, categories=CATEGORIES)
    if cat not in CATEGORIES:
        abort(400)
    phrase_i = request.args.get("p")
    if phrase_i is None:
        return _render("feedback/tv_new.html", step=2, cat=cat, phrases=PHRASES[cat])
    try:
        i = int(phrase_i)
    except ValueError:
        abort(400)
    phrase = PHRASES[cat][i] if 0 <= i < len(PHRASES[cat]) else ""
    return _render("feedback/tv_new.html", step=3, cat=cat, phrase=phrase, phrase_i=i)


@bp.get("/orders")
def orders():
    """我的反映: this household's orders, newest first."""
    term = page_terminal()
    rows = queries.household_orders(term.household_id, term.serial, limit=30)
    return _render("feedback/tv_orders.html", orders=rows)


@bp.get("/orders/<int:order_id>")
def order(order_id: int):
    """One order: status, the reply in large text, rating with digit keys; QR to add on a phone."""
    term = page_terminal()
    o = queries.get(order_id)
    if o is None or not queries.terminal_may_read(term, o):
        abort(404)
    return _render("feedback/tv_order.html", o=o, new=request.args.get("new") == "1",
                   qr=qr_svg(phone.order_link(o), 240) if o.status != "closed" else None,
                   can_rate=o.status in ("replied", "closed") and o.rating is None)


@bp.get("/polls")
def polls():
    term = page_terminal()
    rows = [queries.poll_to_dict(p, term.household_id) for p in queries.polls_for_terminal(term)]
    return _render("feedback/tv_polls.html", polls=rows)


@bp.get("/polls/<int:poll_id>")
def poll(poll_id: int):
    """Vote with the digit keys; the results show once this household has voted."""
    term = page_terminal()
    p = queries.poll_get(poll_id)
    if p is None or not (term.region_path or "").startswith(p.region_path):
        abort(404)
    return _render("feedback/tv_poll.html", poll=queries.poll_to_dict(p, term.household_id))


def state(terminal) -> dict:
    """Personal bits for the portal: how many replies wait for this household's rating."""
    rows = queries.household_orders(terminal.household_id, terminal.serial, limit=50)
    unrated = sum(1 for o in rows if o.status in ("replied", "closed") and o.rating is None)
    polls = queries.polls_for_terminal(terminal)
    open_polls = [p for p in polls if queries.household_vote(p, terminal.household_id) is None]
    notices = []
    if unrated:
        notices.append({"text": f"您的反映有 {unrated} 条答复，请查看并评价", "url": "/tv/feedback/orders"})
    if open_polls:
        notices.append({"text": f"民意调查：{open_polls[0].title}", "url": f"/tv/feedback/polls/{open_polls[0].id}"})
    return {"unrated_replies": unrated, "open_orders": sum(1 for o in rows if o.status not in ("closed",)),
            "open_polls": len(polls), "notices": notices}


def register_tv_hooks(app) -> None:
    """Our tiles on the portal's section pages and our personal facts on its home screen."""
    add_section_action(app, "interaction", "我要反映", "/tv/feedback/new")
    add_section_action(app, "interaction", "我的反映", "/tv/feedback/orders")
    add_section_action(app, "interaction", "民意调查", "/tv/feedback/polls")
    add_state_provider(app, "feedback", state)


__all__ = ["bp", "url_for"]
