"""Spreadsheets to try the roster import with (written next to the demo database by `flask demo load`):
a clean roster of new volunteers in the demo district, and the same with a few rows a clerk gets wrong."""

from __future__ import annotations

import csv
import io
import random

from sqlalchemy import select

from ..db import db
from ..models import Area, AreaLevel, Skill
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
