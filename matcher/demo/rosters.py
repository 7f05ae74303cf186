"""Spreadsheets to try the imports with (written next to the demo database by `flask demo load`): for
each kind (volunteer rosters, organizations, residents, demands) a clean file of new rows in the demo
district, and the same with a few rows a clerk gets wrong."""

from __future__ import annotations

import csv
import io
import random
from datetime import timedelta

from sqlalchemy import select

from ..db import db
from ..models import Area, AreaLevel, Category, Skill
from ..rosters import COLUMNS
from ..spreadsheets import write_xlsx

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = ("秀英", "桂兰", "建国", "志强", "丽华", "伟", "芳", "敏", "静", "磊", "洋", "婷", "军", "勇", "娟")
WEEKDAYS = "一二三四五六日"


def demo_rosters(seed: int = 2026, rows: int = 30) -> dict[str, bytes]:
    """{filename: content}: `demo-roster.xlsx` (clean) and `demo-roster-problems.csv` (GB18030, three bad
    rows: a landline, an unknown skill, a time range backwards)."""
    rng = random.Random(seed)
    communities = list(db.session.scalars(select(Area.name).where(Area.level == AreaLevel.COMMUNITY)))
    communities = sorted(c for c in set(communities) if communities.count(c) == 1)
    skills = sorted(db.session.scalars(select(Skill.name_zh).where(Skill.needs_certificate.is_(False))))
    header = [zh for _key, zh, _en, _req in COLUMNS]
    body = []
    for i in range(rows):
        day = rng.sample(range(7), 2)
        free = "；".join(f"周{WEEKDAYS[d]} {h:02d}:00-{h + 3:02d}:00" for d in sorted(day) for h in [rng.choice((8, 14))])
        values = {"real_name": rng.choice(SURNAMES) + rng.choice(GIVEN), "phone": f"1995{seed % 1000:03d}{i:04d}",
                  "gender": rng.choice(("男", "女")), "birth_year": str(rng.randint(1955, 2000)),
                  "community": rng.choice(communities), "skills": "；".join(rng.sample(skills, 2)),
                  "availability": free, "max_hours": str(rng.choice((2, 4, 6)))}
        body.append([values.get(key, "") for key, *_rest in COLUMNS])
    bad = [row[:] for row in body[:10]]
    index = {key: i for i, (key, *_rest) in enumerate(COLUMNS)}
    bad[2][index["phone"]] = "023-6888 1234"
    bad[5][index["skills"]] = "舞龙"
    bad[8][index["availability"]] = "周三 17:00-09:00"
    out = io.StringIO(newline="")
    csv.writer(out).writerows([header, *bad])
    return {"demo-roster.xlsx": write_xlsx([("志愿者名册", header, body)]),
            "demo-roster-problems.csv": out.getvalue().encode("gb18030")}


def demo_spreadsheets(seed: int = 2026) -> dict[str, bytes]:
    """{filename: content}: the rosters of `demo_rosters`, and for each other import (organizations,
    residents, demands) a clean XLSX and a GB18030 CSV with three rows a clerk gets wrong."""
    from ..demands import IMPORT_COLUMNS
    from ..organizations import COLUMNS as ORG_COLUMNS
    from ..residents import COLUMNS as RESIDENT_COLUMNS

    files = demo_rosters(seed)
    rng = random.Random(seed + 1)
    communities = list(db.session.scalars(select(Area).where(Area.level == AreaLevel.COMMUNITY).order_by(Area.id)))
    names = [a.name for a in communities]
    unique = [a for a in communities if names.count(a.name) == 1]
    streets = sorted({a.parent.name for a in unique if a.parent is not None})
    categories = sorted(db.session.scalars(select(Category.name_zh).where(Category.active)))

    # Organizations: new teams of the district's streets.
    orgs = []
    for i in range(8):
        street = streets[i % len(streets)]
        served = [a.name for a in unique if a.parent is not None and a.parent.name == street][:2]
        orgs.append({"name": f"{street}邻里互助队{i + 1}", "type": rng.choice(("生活服务", "公益慈善", "社区事务")),
                     "home": street, "areas": "；".join(served), "categories": "；".join(rng.sample(categories, 2)),
                     "contact_phone": f"1996{seed % 1000:03d}{i:04d}", "description": "导入示例：邻里互助。",
                     "registration": ("备案", "备案", "登记", "备案", "未登记", "备案", "filed", "registered")[i]})
    org_bad = [dict(o) for o in orgs[:5]]
    org_bad[1]["type"] = "武术类"
    org_bad[2]["home"] = "火星街道"
    org_bad[4]["contact_phone"] = "12345"
    _write_pair(files, "demo-organizations", "组织名单", ORG_COLUMNS, orgs, org_bad)

    # Residents: new people of a few communities, each with consent.
    residents = []
    for i in range(40):
        community = rng.choice(unique[:6])
        residents.append({"community": community.name, "name": rng.choice(SURNAMES) + rng.choice(GIVEN),
                          "phone": f"1997{seed % 1000:03d}{i:04d}", "gender": rng.choice(("男", "女")),
                          "birth_year": str(rng.randint(1930, 1960)), "address": f"{community.name}{i + 1}号楼",
                          "needs_notes": rng.choice(("独居", "行动不便", "需代购", "")), "consent": "是",
                          "consent_note": "本人签字同意书"})
    resident_bad = [dict(r) for r in residents[:10]]
    resident_bad[2]["consent"] = "否"
    resident_bad[5]["phone"] = "023-123"
    resident_bad[8]["community"] = "火星社区"
    _write_pair(files, "demo-residents", "居民名单", RESIDENT_COLUMNS, residents, resident_bad)

    # Demands of those residents (import the residents first): one-off and weekly, in the coming weeks.
    from ..clock import local_today

    start = local_today() + timedelta(days=7)
    demands = []
    for i, r in enumerate(residents[:20]):
        weekly = i % 3 == 0
        hour = rng.choice((9, 10, 14, 15))
        demands.append({"community": r["community"], "resident": r["name"], "resident_phone": r["phone"],
                        "category": rng.choice(categories), "title": "", "date": (start + timedelta(days=i % 7)).isoformat(),
                        "time": f"{hour:02d}:00-{hour + 1:02d}:30", "weekly": "周二；周五" if weekly else "",
                        "until": (start + timedelta(days=35)).isoformat() if weekly else "",
                        "priority": rng.choice(("普通", "高"))})
    demand_bad = [dict(d) for d in demands[:10]]
    demand_bad[1]["category"] = "舞龙"
    demand_bad[4]["time"] = "17:00-09:00"
    demand_bad[7]["date"] = "下周三"
    _write_pair(files, "demo-demands", "需求清单", IMPORT_COLUMNS, demands, demand_bad)
    return files


def _write_pair(files: dict, stem: str, title: str, columns, good: list[dict], bad: list[dict]) -> None:
    header = [zh for _key, zh, _en, _req in columns]
    rows = [[values.get(key, "") for key, *_rest in columns] for values in good]
    files[f"{stem}.xlsx"] = write_xlsx([(title, header, rows)])
    out = io.StringIO(newline="")
    csv.writer(out).writerows([header, *[[values.get(key, "") for key, *_rest in columns] for values in bad]])
    files[f"{stem}-problems.csv"] = out.getvalue().encode("gb18030")
