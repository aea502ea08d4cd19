"""Demo base data (idempotent): every demo household gets its members (head first, with valid
ID numbers) and a house plot on its village's plan (组 = lane, 号 = position along it), and one
village gets the cases the data comparison should catch."""
from __future__ import annotations

import datetime as dt
import random
import re

from sqlalchemy import select

from portal_server.core import crypto
from portal_server.core.db import session
from portal_server.core.households import Household

from . import tasks
from .models import House, HouseholdHouse, Person

GIVEN = "秀英桂兰玉珍凤华建国明军志强永福春梅淑芬德胜文清海燕红霞金花长青振华国庆树林宝山丽娟"
RELATIONS = ("配偶", "子女", "子女", "父母", "孙子女")
_W = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ADDR = re.compile(r"(\d+)组(\d+)号$")


def fake_id(rng: random.Random, village_code: str, year: int) -> str:
    body = f"{village_code[:6]}{year}{rng.randrange(1, 13):02d}{rng.randrange(1, 29):02d}{rng.randrange(1000):03d}"
    return body + "10X98765432"[sum(int(a) * w for a, w in zip(body, _W)) % 11]


def _birth(idn: str) -> dt.date:
    return dt.date(int(idn[6:10]), int(idn[10:12]), int(idn[12:14]))


def seed(ctx) -> None:
    have_people = set(session.scalars(select(Person.household_id).distinct()))
    have_house = set(session.scalars(select(HouseholdHouse.household_id)))
    houses: dict[tuple[int, str], House] = {(h.region_id, h.number): h for h in session.scalars(select(House))}
    people = placed = 0
    for hh in session.scalars(select(Household).order_by(Household.id)).all():
        code = hh.region_path.rstrip("/").rsplit("/", 1)[-1]
        rng = random.Random(hh.id * 7919)
        if hh.id not in have_people:
            idn = crypto.decrypt(hh.id_number_enc)
            session.add(Person(household_id=hh.id, region_path=hh.region_path, name=hh.head_name,
                               id_number_enc=hh.id_number_enc, id_number_hash=crypto.lookup_hash(idn),
                               relation="户主", birth_date=_birth(idn) if idn else None,
                               tags=" ".join(t for t in hh.tag_list if t in ("disabled", "veteran")), status="active"))
            for i in range(1, max(1, hh.size)):
                rel = RELATIONS[(i - 1) % len(RELATIONS)]
                year = {"子女": 1990, "孙子女": 2012, "父母": 1945}.get(rel, 1965) + rng.randrange(8)
                m_idn = fake_id(rng, code, year)
                session.add(Person(household_id=hh.id, region_path=hh.region_path,
                                   name=hh.head_name[0] + rng.choice(GIVEN) + rng.choice(GIVEN), relation=rel,
                                   id_number_enc=crypto.encrypt(m_idn), id_number_hash=crypto.lookup_hash(m_idn),
                                   birth_date=_birth(m_idn),
                                   tags="left_behind_child" if rel == "孙子女" and "left_behind_child" in hh.tag_list else "",
                                   status="active"))
                people += 1
            people += 1
        if hh.id not in have_house:
            m = _ADDR.search(hh.address)
            group, n = (int(m.group(1)), int(m.group(2))) if m else (1, hh.id)
            number = f"{group}组{n}号"
            house = houses.get((hh.region_id, number))
            if house is None:
                house = House(region_id=hh.region_id, region_path=hh.region_path, number=number, lane=f"{group}组",
                              row=group - 1, col=(n - 1) % 10)
                session.add(house)
                session.flush()
                houses[(hh.region_id, number)] = house
            session.add(HouseholdHouse(household_id=hh.id, house_id=house.id))
            placed += 1
    session.flush()
    ctx.count("people", people)
    ctx.count("household_houses", placed)
    _seed_comparison_cases(ctx)


def _seed_comparison_cases(ctx) -> None:
    """What the data comparison is for, in village 001: a member who died last month and is still
    on the low-income list; then the report of town 01 is computed once."""
    village = ctx.villages[0]
    if session.scalar(select(Person.id).where(Person.region_path == village.path, Person.status == "deceased")):
        return
    hh = session.scalar(select(Household).where(Household.region_id == village.id).order_by(Household.id))
    if hh is None:
        return
    idn = fake_id(random.Random(1), village.code, 1936)
    session.add(Person(household_id=hh.id, region_path=hh.region_path, name=hh.head_name[0] + "老汉", relation="父母",
                       id_number_enc=crypto.encrypt(idn), id_number_hash=crypto.lookup_hash(idn), birth_date=_birth(idn),
                       tags="low_income deceased", status="deceased", died_on=dt.date(2026, 10, 28)))
    session.flush()
    tasks.compare_region(ctx.towns[0])
    ctx.count("findings", 1)
