"""Chinese alert texts for the common cases: the NOC form and `communitv alerts send --template` start
from these (every field can still be edited). ``expires_h``: default lifetime in hours."""
from __future__ import annotations

TEMPLATES: dict[str, dict] = {
    "flood": {
        "name": "山洪/洪水", "category": "Met", "event": "山洪灾害预警", "severity": "Severe",
        "urgency": "Immediate", "certainty": "Likely", "expires_h": 6,
        "headline": "山洪灾害预警：请立即向高处转移",
        "description": "受持续强降雨影响，上游河道水位快速上涨，沿河、低洼地带及山脚附近可能发生山洪。",
        "instruction": "请沿河、低洼地带居民立即向高处或村指定避险点转移，不要涉水过河，不要在河边停留；"
                       "照顾好家中老人和孩子，听从村干部和网格员指挥。",
    },
    "typhoon": {
        "name": "台风", "category": "Met", "event": "台风预警", "severity": "Severe",
        "urgency": "Expected", "certainty": "Likely", "expires_h": 24,
        "headline": "台风预警：请做好防风防雨准备",
        "description": "台风将于未来24小时内影响本地，届时将有大风和强降雨。",
        "instruction": "请收好晾晒物品和室外杂物，加固门窗；危旧房屋居民请转移到村避险点；"
                       "台风影响期间不要外出，远离大树、电线杆和广告牌。",
    },
    "fire": {
        "name": "火灾", "category": "Fire", "event": "火灾预警", "severity": "Severe",
        "urgency": "Immediate", "certainty": "Observed", "expires_h": 3,
        "headline": "火灾警报：请远离火场，注意安全",
        "description": "附近发生火情，消防人员正在处置。",
        "instruction": "请不要靠近火场围观，关好门窗，保持道路畅通让消防车通过；如有烟雾进入室内，"
                       "请用湿毛巾捂住口鼻，弯腰沿安全出口撤离；发现火情请拨打119。",
    },
    "power_cut": {
        "name": "停电", "category": "Infra", "event": "计划停电通知", "severity": "Minor",
        "urgency": "Expected", "certainty": "Likely", "expires_h": 12,
        "headline": "停电通知：线路检修，请提前做好准备",
        "description": "因供电线路检修，本区域将临时停电，具体时间以供电所通知为准。",
        "instruction": "请提前为手机、照明设备充电，冰箱内食品尽量少开门；使用蜡烛时注意防火；"
                       "家中有用氧、透析等医疗设备的请联系村委会。",
    },
    "water_cut": {
        "name": "停水", "category": "Infra", "event": "停水通知", "severity": "Minor",
        "urgency": "Expected", "certainty": "Likely", "expires_h": 12,
        "headline": "停水通知：管网维修，请提前储水",
        "description": "因供水管网维修，本区域将临时停水，恢复供水后水质可能短时浑浊。",
        "instruction": "请提前储备生活用水；恢复供水后先放水几分钟再使用；独居老人如需送水请联系网格员。",
    },
    "security": {
        "name": "治安警示", "category": "Security", "event": "治安警示", "severity": "Moderate",
        "urgency": "Expected", "certainty": "Likely", "expires_h": 48,
        "headline": "治安警示：谨防电信诈骗和上门推销",
        "description": "近期有人冒充公检法、医保、银行工作人员实施诈骗，或以免费体检、赠送礼品为名上门推销。",
        "instruction": "凡是要求转账、汇款、提供验证码的一律不信；陌生人上门请不要开门，发现可疑人员请拨打110"
                       "或告诉网格员。",
    },
    "epidemic": {
        "name": "疫情/传染病", "category": "Health", "event": "传染病防控提示", "severity": "Moderate",
        "urgency": "Expected", "certainty": "Likely", "expires_h": 72,
        "headline": "防疫提示：近期传染病高发，请做好个人防护",
        "description": "近期本地呼吸道传染病病例增多。",
        "instruction": "请勤洗手、常通风，外出佩戴口罩，少去人员密集场所；出现发热、咳嗽等症状请及时到村卫生室"
                       "或乡镇卫生院就诊；老人和儿童请按时接种疫苗。",
    },
}


def template(key: str) -> dict | None:
    """The template ``key`` (a copy), or None."""
    t = TEMPLATES.get(key)
    return dict(t) if t else None
