"""Demo village affairs: disclosures for the first villages of 青石镇 (the rest are late on the
supervision board), safety contacts for every village, party study materials for the city."""
from __future__ import annotations

from sqlalchemy import select

from portal_server.core import clock
from portal_server.core.db import session, utcnow

from . import operations as ops
from .models import Disclosure, SafetyContact, StudyMaterial

FINANCE = """month,item,income,expense
{m},上级转移支付（村级组织运转经费）,35000.00,
{m},村集体光伏电站发电收入,12860.50,
{m},村集体鱼塘承包费,8000.00,
{m},村干部误工补贴,,14200.00
{m},村内道路路灯电费,,1320.40
{m},农村人居环境整治保洁费,,6500.00
{m},村民小组会议与公开栏维护,,860.00
"""
SUBSIDY = """name,subsidy,amount,note
王秀英,高龄津贴,300.00,80周岁以上
李建国,高龄津贴,300.00,80周岁以上
张桂兰,困难残疾人生活补贴,110.00,
刘德胜,耕地地力保护补贴,1236.80,12.4亩
陈淑芬,临时救助,1500.00,因病
"""
SURNAMES = "王李张刘陈杨黄赵吴周"


def seed(ctx) -> None:
    admin = ctx.users["admin"]
    # Entered by the admin, approved by somebody else: an author never approves (content's rule).
    reviewer = ctx.users["city-reviewer"]
    due = ops.due_periods()
    made = 0
    have = set(session.scalars(select(Disclosure.region_id)))
    for v in ctx.villages[:4]:
        if v.id in have:
            continue
        ds = [ops.import_finance(v, FINANCE.format(m=due["finance"]), admin),
              ops.import_subsidy(v, due["subsidy"], SUBSIDY, admin, f"{v.name}{due['subsidy'][:4]}年第{due['subsidy'][-1]}季度惠民补贴发放名单"),
              ops.create_text(v, "project", due["project"], f"{v.name}通组道路硬化项目进展公开",
                              "项目内容：硬化通组道路1.2公里，宽3.5米。\n资金来源：衔接推进乡村振兴补助资金38万元。\n"
                              "施工单位：青山市路桥建设有限公司。\n进度：已完成路基，预计下月底完工，欢迎村民监督。", admin),
              ops.create_text(v, "decision", due["decision"], f"{v.name}村民代表会议决议",
                              "会议时间：本季度第二个月15日。应到村民代表25人，实到23人。\n"
                              "决议一：同意村集体鱼塘继续对外承包三年，承包费每年9.6万元（22票同意，1票弃权）。\n"
                              "决议二：同意从村集体收入中安排2万元用于独居老人助餐点运营（23票同意）。", admin)]
        if v is not ctx.villages[3]:  # the fourth village forgets its decision: late on the board
            for d in ds:
                ops.publish(d, reviewer)
        else:
            ops.publish(ds[0], reviewer)
        made += len(ds)
    ctx.count("disclosures", made)

    have = set(session.scalars(select(SafetyContact.region_id)))
    for i, v in enumerate(ctx.villages):
        if v.id in have:
            continue
        town_no = int(v.code[6:9])
        session.add_all([
            SafetyContact(region_id=v.id, region_path=v.path, role="police", name=f"{SURNAMES[i % 10]}警官",
                          phone=f"0791-8611{town_no:02d}10", duty=f"{v.parent.name}派出所驻村民警：治安、反诈、户籍咨询"),
            SafetyContact(region_id=v.id, region_path=v.path, role="mediator", name=f"{SURNAMES[(i + 3) % 10]}调解员",
                          phone=f"0791-8622{i:03d}", duty="邻里纠纷、土地纠纷、家庭矛盾调解（每周二、周五在村委会）"),
        ])
    session.flush()

    if session.scalar(select(StudyMaterial.id).limit(1)) is None:
        month = clock.fmt(utcnow(), "%Y-%m")
        y, m = int(month[:4]), int(month[5:])
        prev = f"{y - 1}-12" if m == 1 else f"{y}-{m - 1:02d}"
        city = ctx.city
        for mo, title, kind, summary, disc in [
            (month, "学习新修订的《中国共产党农村基层组织工作条例》", "article", "重点学习村党组织的职责任务和工作机制。", False),
            (month, "专题党课：强化农村电信网络诈骗防范", "video", "市委党校专家讲解，时长25分钟。", False),
            (month, "本月党费收缴情况公开", "article", "全市农村党员本月党费应缴已缴情况，详见村务公开栏。", True),
            (prev, "学习《关于学习运用“千万工程”经验的意见》", "article", "结合本村人居环境整治谈体会。", False),
        ]:
            session.add(StudyMaterial(region_id=city.id, region_path=city.path, month=mo, title=title, kind=kind,
                                      summary=summary, is_disclosure=disc))
    session.flush()
