"""The demo city of INTERFACES §3: 青山市, 14 towns, 85 villages, 101 institutional terminals,
households with boxes, demo accounts; then each feature's ``demo.seed(ctx)``.

Idempotent: rows are looked up by their natural keys and only missing ones are created; box
secrets are derived from the secret key so the CSV is the same on every run.
"""
from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
import random
from dataclasses import dataclass, field

import click
from flask import current_app
from sqlalchemy import func, select

from portal_server.core import audit, crypto
from portal_server.core.accounts import Department, User, create_user
from portal_server.core.db import session
from portal_server.core.households import TAGS, Household
from portal_server.core.regions import Region, make_path
from portal_server.core.terminals import Terminal, factory_secret, hash_secret
from portal_server.features import FEATURES

CITY_CODE = "990100000000"
CITY_NAME = "青山市"
TOWN_NAMES = ["青石镇", "柳河镇", "桃源镇", "白沙镇", "松岭镇", "龙泉街道", "凤凰镇",
              "金溪镇", "梅山镇", "石桥镇", "双河镇", "云台镇", "杏花镇", "东湖街道"]
_V1 = "东西南北上下前后新大小高"
_V2 = ["河村", "岭村", "沟村", "湾村", "坪村", "庄村", "营村", "塘村", "桥村", "山村"]
DEPARTMENTS = [("civil-affairs", "市民政局"), ("service-center", "市政务服务中心")]
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
GIVEN = "秀英桂兰玉珍凤华建国明军志强永福春梅淑芬德胜文清海燕红霞金花长青振华国庆树林宝山丽娟荣光"


def town_code(n: int) -> str:
    return f"990101{n:03d}000"


def village_codes() -> list[str]:
    """The 85 village codes in order."""
    codes = []
    for t in range(1, 15):
        for v in range(1, (7 if t == 1 else 6) + 1):
            codes.append(f"990101{t:03d}{v:03d}")
    return codes


def village_name(index: int) -> str:
    """Village ``index`` (0-based) of the 85: 东河村, 东岭村, ..."""
    return _V1[index // len(_V2)] + _V2[index % len(_V2)]


ACCOUNTS = [
    # username, roles, region code, department, display name
    ("admin", ("admin",), CITY_CODE, None, "系统管理员"),
    ("city-editor", ("editor",), CITY_CODE, None, "市级编辑"),
    ("city-reviewer", ("reviewer",), CITY_CODE, None, "市级审核员"),
    ("town01-editor", ("editor",), town_code(1), None, "青石镇编辑"),
    ("town01-reviewer", ("reviewer",), town_code(1), None, "青石镇审核员"),
    ("town01-handler", ("handler",), town_code(1), None, "青石镇诉求办理员"),
    ("v001-editor", ("editor",), "990101001001", None, "东河村编辑"),
    ("v001-reviewer", ("reviewer",), "990101001001", None, "东河村审核员"),
    ("v001-handler", ("handler",), "990101001001", None, "东河村诉求办理员"),
    ("v002-editor", ("editor",), "990101001002", None, "东岭村编辑"),
    ("v002-handler", ("handler",), "990101001002", None, "东岭村诉求办理员"),
    ("noc", ("noc",), CITY_CODE, None, "网管中心值班员"),
    ("dept-civil", ("handler",), CITY_CODE, "civil-affairs", "市民政局办理员"),
    ("grid-v001", ("grid_worker",), "990101001001", None, "东河村网格员"),
    ("hotline", ("handler",), CITY_CODE, None, "12345热线接口"),
    ("v001-clerk", ("clerk",), "990101001001", None, "东河村办事员"),
    ("v002-clerk", ("clerk",), "990101001002", None, "东岭村办事员"),
    ("town01-clerk", ("clerk",), town_code(1), None, "青石镇便民服务中心办事员"),
    ("town01-leader", ("analyst",), town_code(1), None, "青石镇领导"),
    ("city-leader", ("analyst",), CITY_CODE, None, "市领导"),
]


def terminal_secret(serial: str) -> str:
    """The demo box's factory secret, derived from the secret key (stable across runs)."""
    return factory_secret(serial)


@dataclass
class SeedContext:
    """What feature seeds get: the regions by code, the accounts, and a deterministic RNG."""

    city: Region
    towns: list[Region]
    villages: list[Region]
    users: dict[str, User]
    echo: object = print
    rng: random.Random = field(default_factory=lambda: random.Random(20261122))
    created: dict[str, int] = field(default_factory=dict)

    def region(self, code: str) -> Region:
        return session.scalar(select(Region).where(Region.code == code))

    def count(self, what: str, n: int = 1) -> None:
        if n:
            self.created[what] = self.created.get(what, 0) + n


def _get_or_create_region(code, name, level, parent) -> tuple[Region, bool]:
    r = session.scalar(select(Region).where(Region.code == code))
    if r is not None:
        return r, False
    r = Region(code=code, name=name, level=level, parent=parent, path=make_path(parent, code))
    session.add(r)
    session.flush()
    return r, True


def _fake_phone(rng: random.Random) -> str:
    return rng.choice(["138", "139", "150", "151", "158", "187", "135", "133"]) + f"{rng.randrange(10**8):08d}"


def _fake_id(rng: random.Random, village_code: str) -> str:
    year = rng.randrange(1938, 1995)
    body = f"{village_code[:6]}{year}{rng.randrange(1, 13):02d}{rng.randrange(1, 29):02d}{rng.randrange(1000):03d}"
    weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    check = "10X98765432"[sum(int(a) * w for a, w in zip(body, weights)) % 11]
    return body + check


def seed(households_per_village: int = 40, echo=print) -> dict[str, int]:
    """Create whatever of the demo city is missing; returns counts of what was created."""
    settings = current_app.config["SETTINGS"]
    created: dict[str, int] = {}

    def bump(k, n=1):
        if n:
            created[k] = created.get(k, 0) + n

    city, new = _get_or_create_region(CITY_CODE, CITY_NAME, "city", None)
    bump("regions", int(new))
    for code, name in DEPARTMENTS:
        if session.scalar(select(Department).where(Department.code == code)) is None:
            session.add(Department(code=code, name=name, region=city))
            bump("departments")
    towns, villages = [], []
    vindex = 0
    for t in range(1, 15):
        town, new = _get_or_create_region(town_code(t), TOWN_NAMES[t - 1], "town", city)
        bump("regions", int(new))
        towns.append(town)
        for v in range(1, (7 if t == 1 else 6) + 1):
            code = f"990101{t:03d}{v:03d}"
            vil, new = _get_or_create_region(code, village_name(vindex), "village", town)
            bump("regions", int(new))
            villages.append(vil)
            vindex += 1
    session.flush()

    users = {}
    for username, roles, code, dept, display in ACCOUNTS:
        u = session.scalar(select(User).where(User.username == username))
        if u is None:
            region = session.scalar(select(Region).where(Region.code == code))
            u = create_user(username, settings.demo_password, roles, region, display, dept)
            bump("accounts")
        users[username] = u

    # Institutional terminals.
    terminals: list[tuple[str, str, Region, str | None]] = [
        ("CTV-CITY-01", "department", city, "civil-affairs"),
        ("CTV-CITY-02", "department", city, "service-center")]
    terminals += [(f"CTV-TOWN-{i + 1:02d}", "town", t, None) for i, t in enumerate(towns)]
    terminals += [(f"CTV-VIL-{i + 1:03d}", "village", v, None) for i, v in enumerate(villages)]
    existing = set(session.scalars(select(Terminal.serial)))
    for serial, kind, region, dept in terminals:
        if serial not in existing:
            session.add(Terminal(serial=serial, kind=kind, region_id=region.id, region_path=region.path,
                                 department_code=dept, model="CTV-Hall-2", firmware="2.3.1",
                                 mac=_mac(serial), secret_hash=hash_secret(terminal_secret(serial), serial),
                                 bound_at=func.now()))
            bump("terminals")
    for i in range(1, 11):
        serial = f"CTV-NEW-{i:04d}"
        if serial not in existing:
            session.add(Terminal(serial=serial, kind="household", model="CTV-S905", firmware="2.3.1",
                                 mac=_mac(serial), secret_hash=hash_secret(terminal_secret(serial), serial)))
            bump("terminals")
    session.flush()

    # Households, each with a box.
    existing_hh = set(session.scalars(select(Household.number)))
    with click.progressbar(villages, label="households", file=None if echo is click.echo else open(os.devnull, "w")) as bar:
        for vil in bar:
            rng = random.Random(int(vil.code))
            for n in range(1, households_per_village + 1):
                hh_serial_local = villages.index(vil) * 10000 + n  # stable across sizes
                number = f"H{vil.code}-{n:03d}"
                surname = rng.choice(SURNAMES)
                given = rng.choice(GIVEN) + (rng.choice(GIVEN) if rng.random() < 0.7 else "")
                size = rng.choice([1, 1, 2, 2, 2, 3, 3, 4, 4, 5, 6])
                tags = []
                if size == 1 and rng.random() < 0.6:
                    tags.append("elderly_alone")
                for t, p in (("low_income", 0.08), ("disabled", 0.05), ("left_behind_child", 0.07),
                             ("veteran", 0.05)):
                    if rng.random() < p:
                        tags.append(t)
                phone, idn = _fake_phone(rng), _fake_id(rng, vil.code)
                group = (n - 1) // 10 + 1
                if number in existing_hh:
                    continue
                hh = Household(number=number, head_name=surname + given, region_id=vil.id,
                               region_path=vil.path,
                               address=f"{vil.parent.name}{vil.name}{group}组{n}号", size=size,
                               tags=" ".join(t for t in TAGS if t in tags),
                               phone_enc=crypto.encrypt(phone), id_number_enc=crypto.encrypt(idn))
                session.add(hh)
                session.flush()
                serial = f"CTV-HH-{hh_serial_local:06d}"
                session.add(Terminal(serial=serial, kind="household", region_id=vil.id, region_path=vil.path,
                                     household_id=hh.id, model="CTV-S905", firmware="2.3.1", mac=_mac(serial),
                                     secret_hash=hash_secret(terminal_secret(serial), serial),
                                     bound_at=func.now()))
                bump("households")
                bump("terminals")
    if created:
        audit.record("demo.seed", "city", CITY_CODE, CITY_CODE, actor="cli", created=created)
    session.commit()

    # Then each feature's demo data (device_fleet writes demo-terminals.csv for the simulators).
    ctx = SeedContext(city=city, towns=towns, villages=villages, users=users, echo=echo)
    for pkg in FEATURES:
        name = pkg + ".demo"
        try:
            found = importlib.util.find_spec(name) is not None
        except ModuleNotFoundError:
            found = False
        if found:
            importlib.import_module(name).seed(ctx)
            session.commit()
    for k, v in ctx.created.items():
        created[k] = created.get(k, 0) + v
    return created


def _mac(serial: str) -> str:
    h = hashlib.sha1(serial.encode()).hexdigest()
    return "02:" + ":".join(h[i:i + 2] for i in range(0, 10, 2))
