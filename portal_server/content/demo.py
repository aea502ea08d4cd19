"""Demo content: believable items for all eight sections at city, town 01 and villages 001/002,
some pinned, some with posters drawn by Pillow, a few for elderly households living alone.
Idempotent: nothing is added when any item exists.
"""
from __future__ import annotations

import io

from sqlalchemy import func, select
from werkzeug.datastructures import FileStorage

from portal_server.core.db import session

from . import media, operations as ops
from .models import Content

CITY, TOWN01, V001, V002 = "990100000000", "990101001000", "990101001001", "990101001002"

# (editor, reviewer, targets, section, title, body, pinned, tags, poster colour or None)
ITEMS = [
    ("city-editor", "city-reviewer", [CITY], "party", "学习贯彻党的二十届三中全会精神宣讲提纲",
     "<p>一、全会的主要精神。</p><p>二、结合乡村振兴抓好落实：各村党支部本月开展一次集中学习。</p>", True, [], (178, 34, 34)),
    ("city-editor", "city-reviewer", [CITY], "services", "医保参保缴费开始啦：2027年度城乡居民医保",
     "<p>缴费时间：即日起至12月31日。</p><p>个人缴费标准每人每年380元，可到村便民服务站或用手机缴纳。</p>", True, [], (25, 118, 210)),
    ("city-editor", "city-reviewer", [CITY], "safety", "冬季防范一氧化碳中毒提示",
     "<p>烧煤取暖务必开窗通风，安装风斗；老人独居家庭请亲属多打电话问候。</p>", False, [], (230, 120, 20)),
    ("city-editor", "city-reviewer", [CITY], "elderly", "高龄津贴发放通知",
     "<p>80周岁以上老人高龄津贴已于本月15日发放到社保卡，请注意查收。</p>", False, [], None),
    ("city-editor", "city-reviewer", [CITY], "live", "青山市新闻联播每晚七点半直播",
     "<p>按遥控器“视频直播”即可收看本地新闻。</p>", False, [], None),
    ("city-editor", "city-reviewer", [CITY], "interaction", "“我为乡村振兴献一策”意见征集",
     "<p>欢迎通过电视“政民互动”或扫码在手机上提出您的建议，征集截止到本月底。</p>", False, [], None),
    ("city-editor", "city-reviewer", [CITY], "elderly", "独居老人冬季关爱：免费上门体检预约",
     "<p>市民政局为独居老人提供免费上门体检，请按“预约”或告知网格员。</p>", True, ["elderly_alone"], (46, 125, 50)),
    ("town01-editor", "town01-reviewer", [TOWN01], "services", "青石镇便民服务中心办事时间调整",
     "<p>自下月起，周六上午9:00—12:00照常办理社保、医保、户籍业务。</p>", False, [], None),
    ("town01-editor", "town01-reviewer", [TOWN01], "affairs", "青石镇2026年乡村振兴项目公示",
     "<p>本镇今年实施道路硬化、饮水提升、垃圾分类三类项目，共计12个，详情见公示栏。</p>", True, [], (94, 53, 177)),
    ("town01-editor", "town01-reviewer", [TOWN01], "safety", "森林防火期禁止野外用火",
     "<p>11月1日至次年4月30日为森林防火期，严禁上坟烧纸、烧荒、野炊。举报电话：12119。</p>", True, [], (198, 40, 40)),
    ("town01-editor", "town01-reviewer", [TOWN01], "meetings", "青石镇村民代表会议下周三召开",
     "<p>会议将通过电视直播，各村村民可在“社区会议”收看并用彩色键投票。</p>", False, [], None),
    ("town01-editor", "town01-reviewer", [TOWN01], "party", "青石镇党员冬训安排",
     "<p>党员冬训分三批进行，每批两天，请各支部提前通知流动党员。</p>", False, [], None),
    ("town01-editor", "town01-reviewer", [TOWN01], "elderly", "助餐点开放：独居老人每餐只需3元",
     "<p>镇养老服务中心助餐点已开放，独居老人凭老年证用餐，行动不便的可送餐上门。</p>", False, ["elderly_alone"], None),
    ("v001-editor", "v001-reviewer", [V001], "affairs", "东河村十一月村务财务公开",
     "<p>本月收入：集体土地租金 48,000 元；支出：道路维修 12,600 元、保洁员工资 3,000 元。</p>", True, [], (0, 121, 107)),
    ("v001-editor", "v001-reviewer", [V001], "party", "东河村党支部主题党日活动",
     "<p>本周五下午两点在村委会二楼开展主题党日，内容为集中学习和志愿服务。</p>", False, [], None),
    ("v001-editor", "v001-reviewer", [V001], "services", "东河村卫生室周二、周四开展免费量血压",
     "<p>村医王医生每周二、周四上午在卫生室为村民免费量血压、测血糖。</p>", False, [], None),
    ("v001-editor", "v001-reviewer", [V001], "safety", "东河村停水通知",
     "<p>因自来水管道维修，本周六8:00—14:00全村停水，请提前储水。</p>", False, [], None),
    ("v001-editor", "v001-reviewer", [V001], "interaction", "村文化广场改造方案征求意见",
     "<p>广场改造有两个方案，请在“政民互动”里投票或到村委会留言。</p>", False, [], None),
    ("v002-editor", "town01-reviewer", [V002], "affairs", "东岭村低保评议结果公示",
     "<p>经村民代表评议，拟新增低保户2户，公示期7天，有异议请向村委会反映。</p>", True, [], (69, 90, 100)),
    ("v002-editor", "town01-reviewer", [V002], "services", "东岭村代办员上门服务",
     "<p>行动不便的村民可请村代办员上门代办社保认证、医保报销等事项。</p>", False, [], None),
    ("v002-editor", "town01-reviewer", [V002], "elderly", "东岭村重阳节敬老活动回顾",
     "<p>重阳节当天，村里为70岁以上老人送去了慰问品，并举办了长寿宴。</p>", False, [], (255, 143, 0)),
]


def seed(ctx) -> None:
    """Add the demo items through the real workflow (create → submit → approve), once."""
    if session.scalar(select(func.count()).select_from(Content)):
        return
    ops.NOTIFY["enabled"] = False  # no MQTT notices for demo content
    try:
        for editor, reviewer, targets, section, title, body, pinned, tags, colour in ITEMS:
            ed, rv = ctx.users[editor], ctx.users[reviewer]
            c = ops.create(ed, {"section": section, "title": title, "body": body,
                                "target_regions": targets, "target_tags": tags, "pinned": pinned})
            if colour is not None:
                png = media.poster_png(title[:14], colour, c.author_region.name)
                media.add(ed, c, FileStorage(io.BytesIO(png), filename="poster.png"), "image", title)
            ops.submit(ed, c)
            ops.approve(rv, c)
            ctx.count("content items")
        session.commit()
    finally:
        ops.NOTIFY["enabled"] = True
