"""The demo district: a realistic, deterministic (seeded) district for trying the service.

`load_demo` builds, in the current app context and session, an invented district in a
Chongqing-like setting: townships and streets, villages and communities with their practice
stations, community social organizations of every type, thousands of volunteers with
skills, weekly availability and limits, residents, and one week of demands expanded into
occurrences. Everything comes from `random.Random(seed)` and `week_start`, so the same seed
gives the same district. The big tables are written with bulk INSERTs so the standard
district loads in seconds on SQLite and PostgreSQL; only the handful of demo logins get a
password hash, the other accounts exist unactivated (as imported volunteers would be).
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from itertools import accumulate
from typing import Any

from sqlalchemy import func, insert, select, update

from .. import rules
from ..accounts import hash_password, password_problem
from ..catalogue import seed_catalogue
from ..db import db
from ..demands import occurrence_times
from ..errors import DomainError
from ..models import (
    Area,
    AreaLevel,
    AvailabilityException,
    AvailabilitySlot,
    Category,
    Certificate,
    Demand,
    DemandOccurrence,
    DemandStatus,
    ExceptionKind,
    Gender,
    LocationKind,
    MemberRole,
    Membership,
    MemberStatus,
    Organization,
    OrgType,
    Priority,
    Registration,
    Resident,
    Role,
    Skill,
    Station,
    User,
    Volunteer,
    category_skills,
    demand_organizations,
    demand_skills,
    demand_skills_any,
    organization_areas,
    organization_categories,
    utcnow,
    volunteer_skills,
)

DEMO_PASSWORD = "linli-demo-2026"

DISTRICT_NAME = "青溪区"
DISTRICT_CODE = "500188"
DISTRICT_LAT = 29.33
DISTRICT_LON = 107.72
DISTRICT_RADIUS_KM = 35.0

# Standard district (scale 1.0).
TOWNSHIPS = 25
COMMUNITIES = 200
ORGANIZATIONS = 60
VOLUNTEERS = 4000
RESIDENTS = 500
OCCURRENCES = 1200

# Syllables for invented place names: (character, pinyin). Chosen to sound like hill-country
# places (坝, 湾, 坪, 垭 ...), never a real district's name on purpose.
_PLACE_FIRST = [
    ("青", "qing"), ("白", "bai"), ("石", "shi"), ("凤", "feng"), ("龙", "long"), ("桂", "gui"),
    ("松", "song"), ("柏", "bo"), ("梅", "mei"), ("竹", "zhu"), ("兰", "lan"), ("黄", "huang"),
    ("金", "jin"), ("银", "yin"), ("玉", "yu"), ("长", "chang"), ("安", "an"), ("平", "ping"),
    ("新", "xin"), ("永", "yong"), ("和", "he"), ("太", "tai"), ("福", "fu"), ("双", "shuang"),
    ("沙", "sha"), ("马", "ma"), ("鹤", "hao"), ("云", "yun"), ("花", "hua"), ("桃", "tao"),
    ("杨", "yang"), ("柳", "liu"), ("高", "gao"), ("乐", "le"), ("兴", "xing"), ("仙", "xian"),
    ("木", "mu"), ("火", "huo"), ("土", "tu"), ("大", "da"), ("小", "xiao"), ("东", "dong"),
    ("西", "xi"), ("南", "nan"), ("北", "bei"), ("万", "wan"), ("庙", "miao"), ("茶", "cha"),
]
_PLACE_SECOND = [
    ("山", "shan"), ("河", "he"), ("溪", "xi"), ("坝", "ba"), ("桥", "qiao"), ("湾", "wan"),
    ("坪", "ping"), ("岩", "yan"), ("林", "lin"), ("塘", "tang"), ("峰", "feng"), ("岭", "ling"),
    ("园", "yuan"), ("田", "tian"), ("口", "kou"), ("门", "men"), ("池", "chi"), ("源", "yuan"),
    ("湖", "hu"), ("寺", "si"), ("垭", "ya"), ("沟", "gou"), ("台", "tai"), ("阳", "yang"),
    ("场", "chang"), ("岗", "gang"), ("丰", "feng"), ("洞", "dong"), ("坡", "po"), ("滩", "tan"),
]
_NAME_PREFIX = [("新", "xin"), ("上", "shang"), ("下", "xia"), ("中", "zhong"), ("前", "qian"), ("后", "hou")]

_SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蒋蔡余杜叶程苏魏吕"
    "丁任沈姚卢傅钟谭冉向秦熊黎邹文税牟颜龚喻廖付"
)
_SURNAME_CUM_WEIGHTS = list(accumulate(1 / (i + 4) for i in range(len(_SURNAMES))))
_GIVEN_F = "秀英华芳兰玉梅珍丽红琴霞燕萍敏静婷雪琳淑凤慧莉娟丹颖欣怡佳雨思诗晓彤悦"
_GIVEN_M = "明军华强伟勇建国平刚杰涛斌志辉林超波磊鹏飞浩宇俊文德成海福贵龙祥昌荣峰"

_MOBILE_PREFIXES = [
    "130", "131", "132", "133", "134", "135", "136", "137", "138", "139", "150", "151", "152", "155",
    "156", "157", "158", "159", "166", "173", "175", "176", "177", "178", "180", "181", "182", "183",
    "185", "186", "187", "188", "189", "191", "198", "199",
]

# Organization name suffixes and the categories each kind serves.
_ORG_KINDS: list[tuple[OrgType, str, list[str], str]] = [
    (OrgType.LIFE_SERVICES, "助老服务队", ["elderly_care", "health"], "为辖区老人提供上门探访、助餐、陪同就医等服务。"),
    (OrgType.COMMUNITY_AFFAIRS, "居民议事会", ["customs_reform", "mediation", "policy_outreach"],
     "组织居民协商议事，参与修订居民公约。"),
    (OrgType.CHARITY, "爱心互助会", ["elderly_care", "childcare", "emergency"], "开展邻里互助和困难群众帮扶。"),
    (OrgType.CULTURE_SPORTS, "广场舞队", ["culture_sports"], "组织广场舞、文艺展演和健身活动。"),
    (OrgType.RURAL_COUNCIL, "红白理事会", ["customs_reform"], "倡导婚事新办、丧事俭办、喜事简办。"),
    (OrgType.LIFE_SERVICES, "四点半课堂志愿队", ["childcare"], "放学后看护儿童、辅导作业。"),
    (OrgType.COMMUNITY_AFFAIRS, "邻里守望队", ["elderly_care", "environment", "emergency"], "邻里守望、关爱独居老人。"),
    (OrgType.CULTURE_SPORTS, "艺术团", ["culture_sports", "policy_outreach"], "排练节目，开展文艺汇演和宣讲。"),
    (OrgType.RURAL_COUNCIL, "矛盾纠纷调解队", ["mediation", "legal_aid"], "调解邻里、家庭和土地承包经营纠纷。"),
    (OrgType.CHARITY, "阳光公益服务社", ["mental_health", "rehabilitation_support", "elderly_care"],
     "协助精神障碍社区康复、社区矫正和帮教。"),
    (OrgType.LIFE_SERVICES, "健康服务队", ["health", "elderly_care", "emergency"], "义诊、测血压血糖和急救培训。"),
    (OrgType.RURAL_COUNCIL, "乡风文明理事会", ["customs_reform", "policy_outreach", "environment"],
     "推动移风易俗，评选文明家庭。"),
    (OrgType.COMMUNITY_AFFAIRS, "环保志愿服务队", ["environment", "customs_reform"], "垃圾分类督导、植绿护绿。"),
    (OrgType.CULTURE_SPORTS, "科普宣讲团", ["science", "policy_outreach", "legal_aid"], "科普讲座、法治宣传和政策宣讲。"),
    (OrgType.CHARITY, "应急救援志愿队", ["emergency", "health"], "平急结合的应急备勤和防灾救灾。"),
    (OrgType.CULTURE_SPORTS, "太极拳协会", ["culture_sports", "health"], "晨练教学与健身比赛。"),
    (OrgType.LIFE_SERVICES, "便民服务社", ["elderly_care", "environment"], "维修、理发、代购等便民服务。"),
]


def _registration(index: int) -> Registration:
    """An organization's standing as districts report it: most filed with their street (备案), about one in
    seven registered with the civil affairs bureau (登记), about one in seven neither yet. By position, not
    drawn from the random source, so the rest of the district stays as the seed made it."""
    return {2: Registration.REGISTERED, 4: Registration.UNREGISTERED}.get(index % 7, Registration.FILED)


_RURAL_KINDS = {"红白理事会", "乡风文明理事会", "矛盾纠纷调解队"}

_CERTIFICATES = {
    "childcare": "保育员证",
    "mediation": "人民调解员培训合格证",
    "first_aid": "红十字救护员证",
    "medical": "护士执业证书",
    "counselling": "心理咨询师证书",
    "legal": "法律职业资格证书",
    "social_work": "社会工作者职业资格证书",
    "driving": "机动车驾驶证",
}

# Skill probabilities by life situation: retiree, worker, student.
_SKILL_ODDS = {
    "elder_care": (0.55, 0.30, 0.25),
    "childcare": (0.15, 0.12, 0.20),
    "mediation": (0.06, 0.03, 0.0),
    "first_aid": (0.10, 0.12, 0.15),
    "medical": (0.05, 0.04, 0.02),
    "counselling": (0.02, 0.03, 0.03),
    "performance": (0.20, 0.06, 0.12),
    "lecturing": (0.10, 0.06, 0.05),
    "legal": (0.015, 0.025, 0.01),
    "social_work": (0.02, 0.04, 0.04),
    "sports": (0.12, 0.10, 0.15),
    "driving": (0.04, 0.12, 0.01),
    "farming": (0.15, 0.05, 0.0),
    "photography": (0.04, 0.05, 0.08),
}
_SITUATIONS = ("retiree", "worker", "student")

_ELDER_NEEDS = [
    "独居，行动不便，需每周上门探访、聊天陪伴。",
    "空巢老人，子女在外务工，需帮忙代购生活用品。",
    "高血压、糖尿病，需提醒按时服药。",
    "半失能，需协助打扫卫生和送餐。",
    "听力较差，来访请先打电话给邻居。",
    "腿脚不便，需陪同到社区卫生服务中心复诊。",
    "失独老人，情绪低落，需要多陪伴。",
]
_FAMILY_NEEDS = [
    "双职工家庭，孩子（小学二年级）放学后无人照看。",
    "留守儿童，由祖父母照看，需要作业辅导。",
    "单亲家庭，孩子放学后需接送并看护到18:30。",
    "孩子上小学四年级，家长晚班，需课后看护。",
]
_CONSENT_NOTES = ["本人签署服务信息使用同意书", "本人口头同意，社工记录", "由子女代为签署同意书"]


@dataclass
class DemoSummary:
    """What `load_demo` built: rows per table, the demo logins and how long it took."""

    counts: dict[str, int]
    logins: list[tuple[str, str, str]]
    seconds: float
    password: str = field(default=DEMO_PASSWORD, repr=False)


@dataclass
class _Place:
    """An area being built: enough to place people and name things before ids exist."""

    index: int
    name: str
    pinyin: str
    kind: str  # district, street, town, xiang, shequ, cun
    lat: float
    lon: float
    parent: int | None = None  # index into the township list for communities
    id: int = 0
    path: str = ""
    station_id: int = 0
    worker_user_id: int | None = None
    communities: list[int] = field(default_factory=list)


def _scaled(n: int, scale: float, minimum: int) -> int:
    return max(minimum, round(n * scale))


def _offset(lat: float, lon: float, dx_km: float, dy_km: float) -> tuple[float, float]:
    """Move a point east by dx_km and north by dy_km (flat approximation, fine at this size)."""
    return (lat + dy_km / 110.574, lon + dx_km / (111.320 * math.cos(math.radians(lat))))


class _Builder:
    """Holds the random source and what was built so far; one method per layer."""

    def __init__(self, week_start: date, seed: int, scale: float, password: str,
                 echo: Callable[[str], None]):
        self.rng = random.Random(seed)
        self.week_start = week_start
        self.week_end = week_start + timedelta(days=7)
        self.scale = scale
        self.password = password
        self.echo = echo
        self.t0 = time.perf_counter()
        self.used_names: set[str] = set()
        self.used_pinyin: set[str] = set()
        self.used_phones: set[str] = set()
        self.townships: list[_Place] = []
        self.communities: list[_Place] = []
        self.district: _Place | None = None
        self.logins: list[tuple[str, str, str]] = []

    # -- helpers -----------------------------------------------------------------------------

    def say(self, what: str, n: int) -> None:
        self.echo(f"{what}: {n} ({time.perf_counter() - self.t0:.1f} s)")

    def insert_ids(self, model: Any, rows: list[dict[str, Any]]) -> list[int]:
        """Bulk INSERT with RETURNING, ids in the order of `rows`."""
        if not rows:
            return []
        stmt = insert(model).returning(model.id, sort_by_parameter_order=True)
        return list(db.session.execute(stmt, rows).scalars())

    def insert_rows(self, target: Any, rows: list[dict[str, Any]]) -> None:
        if rows:
            db.session.execute(insert(target), rows)

    def place_name(self) -> tuple[str, str]:
        """A fresh two-syllable place name and its pinyin, unique in the district."""
        rng = self.rng
        for attempt in range(200):
            (c1, p1), (c2, p2) = rng.choice(_PLACE_FIRST), rng.choice(_PLACE_SECOND)
            name, pinyin = c1 + c2, p1 + p2
            if attempt >= 40:  # the two-syllable names are used up: 上石门, 下石门 ...
                c0, p0 = rng.choice(_NAME_PREFIX)
                name, pinyin = c0 + name, p0 + pinyin
            if name not in self.used_names and pinyin not in self.used_pinyin:
                self.used_names.add(name)
                self.used_pinyin.add(pinyin)
                return name, pinyin
        raise DomainError("Ran out of invented place names; use a smaller scale.", "scale")

    def person_name(self, gender: Gender) -> str:
        rng = self.rng
        surname = rng.choices(_SURNAMES, cum_weights=_SURNAME_CUM_WEIGHTS)[0]
        chars = _GIVEN_F if gender == Gender.F else _GIVEN_M
        given = rng.choice(chars) + (rng.choice(chars) if rng.random() < 0.65 else "")
        return surname + given

    def mobile(self) -> str:
        """A valid, unused mainland mobile number in E.164."""
        while True:
            raw = self.rng.choice(_MOBILE_PREFIXES) + f"{self.rng.randrange(10 ** 8):08d}"
            phone = rules.normalize_phone(raw)
            if phone and phone not in self.used_phones:
                self.used_phones.add(phone)
                return phone

    def landline(self) -> str:
        """A valid Chongqing landline (023) in E.164, or a mobile when the draw is not valid."""
        raw = "023" + str(self.rng.choice([6, 7])) + f"{self.rng.randrange(10 ** 7):07d}"
        phone = rules.normalize_phone(raw)
        if phone and phone not in self.used_phones:
            self.used_phones.add(phone)
            return phone
        return self.mobile()

    def jitter(self, place: _Place, sigma_km: float, max_km: float) -> tuple[float, float]:
        dx, dy = self.rng.gauss(0, sigma_km), self.rng.gauss(0, sigma_km)
        r = math.hypot(dx, dy)
        if r > max_km:
            dx, dy = dx * max_km / r, dy * max_km / r
        lat, lon = _offset(place.lat, place.lon, dx, dy)
        return round(lat, 6), round(lon, 6)

    def township_of(self, community: _Place) -> _Place:
        assert community.parent is not None
        return self.townships[community.parent]

    def address(self, community: _Place) -> str:
        rng = self.rng
        town = self.township_of(community)
        if community.kind == "shequ":
            return f"{town.name}{community.name}{rng.randint(1, 36)}栋{rng.randint(1, 6)}单元{rng.randint(1, 18)}0{rng.randint(1, 4)}"
        return f"{town.name}{community.name}{rng.randint(1, 12)}组{rng.randint(1, 90)}号"

    def days_before(self, lo: int, hi: int, hour: int = 9) -> datetime:
        day = self.week_start - timedelta(days=self.rng.randint(lo, hi))
        return datetime.combine(day, datetime.min.time()) + timedelta(hours=hour, minutes=self.rng.randrange(0, 60, 5))

    # -- areas ---------------------------------------------------------------------------------

    def build_areas(self) -> None:
        rng = self.rng
        n_town = _scaled(TOWNSHIPS, self.scale, 2)
        n_comm = max(2 * n_town, _scaled(COMMUNITIES, self.scale, 4))
        self.used_names.add(DISTRICT_NAME[:2])
        district = _Place(0, DISTRICT_NAME, "qingxi", "district", DISTRICT_LAT, DISTRICT_LON)
        self.district = district
        n_street = max(1, round(n_town * 0.24))
        n_xiang = round((n_town - n_street) * 0.3)
        golden = math.pi * (3 - math.sqrt(5))
        for i in range(n_town):
            kind = "street" if i < n_street else ("xiang" if i >= n_town - n_xiang else "town")
            dist = {"street": rng.uniform(1.5, 6.0), "town": rng.uniform(8.0, 21.0),
                    "xiang": rng.uniform(14.0, 24.0)}[kind]
            angle = i * golden + rng.uniform(-0.3, 0.3)
            lat, lon = _offset(DISTRICT_LAT, DISTRICT_LON, dist * math.cos(angle), dist * math.sin(angle))
            name, pinyin = self.place_name()
            suffix = {"street": "街道", "town": "镇", "xiang": "乡"}[kind]
            self.townships.append(_Place(i, name + suffix, pinyin, kind, round(lat, 6), round(lon, 6)))
        # Communities per township: random weights, urban streets denser, split by largest remainder.
        weights = [rng.uniform(0.7, 1.3) * {"street": 1.2, "town": 1.0, "xiang": 0.7}[t.kind] for t in self.townships]
        spare = n_comm - 2 * n_town
        raw = [spare * w / sum(weights) for w in weights]
        counts = [2 + math.floor(x) for x in raw]
        order = sorted(range(n_town), key=lambda k: (-(raw[k] - math.floor(raw[k])), k))
        for k in order[: n_comm - sum(counts)]:
            counts[k] += 1
        for town, count in zip(self.townships, counts, strict=True):
            for j in range(count):
                if town.kind == "street":
                    kind, dist = "shequ", rng.uniform(0.4, 2.2)
                elif town.kind == "town" and j == 0:
                    kind, dist = "shequ", rng.uniform(0.1, 0.5)  # the township seat's community
                else:
                    kind, dist = "cun", rng.uniform(1.0, 6.0)
                angle = rng.uniform(0, 2 * math.pi)
                lat, lon = _offset(town.lat, town.lon, dist * math.cos(angle), dist * math.sin(angle))
                name, pinyin = self.place_name()
                name += "社区" if kind == "shequ" else "村"
                place = _Place(len(self.communities), name, pinyin, kind, round(lat, 6), round(lon, 6),
                               parent=town.index)
                town.communities.append(place.index)
                self.communities.append(place)

        district.id = self.insert_ids(Area, [dict(
            level=AreaLevel.DISTRICT, name=district.name, code=DISTRICT_CODE, parent_id=None, path="",
            lat=district.lat, lon=district.lon, radius_km=DISTRICT_RADIUS_KM)])[0]
        district.path = f"/{district.id}/"
        town_ids = self.insert_ids(Area, [dict(
            level=AreaLevel.TOWNSHIP, name=t.name, code=f"{DISTRICT_CODE}{t.index + 1:03d}", parent_id=district.id,
            path="", lat=t.lat, lon=t.lon, radius_km=3.0 if t.kind == "street" else 7.5) for t in self.townships])
        for t, id_ in zip(self.townships, town_ids, strict=True):
            t.id, t.path = id_, f"{district.path}{id_}/"
        comm_rows = []
        for c in self.communities:
            town = self.township_of(c)
            comm_rows.append(dict(
                level=AreaLevel.COMMUNITY, name=c.name,
                code=f"{DISTRICT_CODE}{town.index + 1:03d}{town.communities.index(c.index) + 1:03d}",
                parent_id=town.id, path="", lat=c.lat, lon=c.lon, radius_km=0.8 if c.kind == "shequ" else 2.5))
        for c, id_ in zip(self.communities, self.insert_ids(Area, comm_rows), strict=True):
            c.id, c.path = id_, f"{self.township_of(c).path}{id_}/"
        everything = [district, *self.townships, *self.communities]
        db.session.execute(update(Area), [{"id": p.id, "path": p.path} for p in everything])

        station_rows = [dict(area_id=district.id, name=f"{district.name}新时代文明实践中心",
                             address=f"{district.name}文化广场1号", lat=district.lat, lon=district.lon, capacity=500)]
        for t in self.townships:
            lat, lon = self.jitter(t, 0.3, 0.8)
            station_rows.append(dict(area_id=t.id, name=f"{t.name}新时代文明实践所", address=f"{t.name}便民服务中心",
                                     lat=lat, lon=lon, capacity=rng.randrange(100, 301, 20)))
        for c in self.communities:
            lat, lon = self.jitter(c, 0.15, 0.4)
            station_rows.append(dict(area_id=c.id, name=f"{c.name}新时代文明实践站",
                                     address=f"{self.township_of(c).name}{c.name}党群服务中心", lat=lat, lon=lon,
                                     capacity=rng.randrange(30, 121, 10) if c.kind == "shequ" else rng.randrange(20, 81, 10)))
        station_ids = self.insert_ids(Station, station_rows)
        for c, id_ in zip(self.communities, station_ids[1 + len(self.townships):], strict=True):
            c.station_id = id_
        self.say("areas", len(everything))
        self.say("stations", len(station_ids))

    # -- staff accounts ------------------------------------------------------------------------

    def build_staff(self) -> None:
        """Administrator, coordinators and one community worker per community."""
        assert self.district is not None
        self.demo_town = self.townships[0]  # a street near the centre
        self.demo_comm = self.communities[self.demo_town.communities[0]]
        rows: list[dict[str, Any]] = []
        demo: dict[str, tuple[str, str]] = {}

        def add(username: str, display: str, role: Role, area_id: int | None, login: str | None = None) -> None:
            rows.append(dict(username=username, display_name=display, role=role, area_id=area_id,
                             organization_id=None, password_hash=None, active=True))
            if login:
                demo[username] = (role.value, login)

        add("admin", "系统管理员", Role.ADMIN, None, "Administrator")
        add("coord", f"{self.district.name}志愿服务中心", Role.COORDINATOR, self.district.id,
            f"Coordinator, {self.district.name} (district)")
        for t in self.townships:
            login = f"Coordinator, {t.name} (township)" if t is self.demo_town else None
            add(f"coord_{t.pinyin}", f"{t.name}文明实践所", Role.COORDINATOR, t.id, login)
        for c in self.communities:
            gender = Gender.F if self.rng.random() < 0.7 else Gender.M
            display = f"{self.person_name(gender)}（{c.name}社工）"
            if c is self.demo_comm:
                add("worker", display, Role.WORKER, c.id, f"Community worker, {c.name}, {self.demo_town.name}")
            else:
                town = self.township_of(c)
                add(f"w{town.index + 1:03d}{town.communities.index(c.index) + 1:03d}", display, Role.WORKER, c.id)
        for row in rows:
            if row["username"] in demo:
                row["password_hash"] = hash_password(self.password)
        ids = self.insert_ids(User, rows)
        by_area = {row["area_id"]: id_ for row, id_ in zip(rows, ids, strict=True) if row["role"] == Role.WORKER}
        for c in self.communities:
            c.worker_user_id = by_area[c.id]
        for row in rows:
            if row["username"] in demo:
                role, desc = demo[row["username"]]
                self.logins.append((role, row["username"], desc))
        self.staff_count = len(rows)

    # -- organizations --------------------------------------------------------------------------

    def build_organizations(self, categories: dict[str, dict[str, Any]]) -> None:
        rng = self.rng
        n_org = _scaled(ORGANIZATIONS, self.scale, len(_ORG_KINDS) // 3)
        rural = [c for c in self.communities if c.kind == "cun"]
        self.orgs: list[dict[str, Any]] = []
        used: set[str] = set()
        for i in range(n_org):
            otype, suffix, cats, desc = _ORG_KINDS[i % len(_ORG_KINDS)]
            if i == 0:
                home = self.demo_comm
            elif suffix in _RURAL_KINDS and rural:
                home = rng.choice(rural)
            else:
                home = rng.choice(self.communities)
            town = self.township_of(home)
            if suffix == "居民议事会" and home.kind == "cun":
                suffix = "村民议事会"
            name = f"{home.name}{suffix}"
            if name in used:
                name = f"{town.name}{home.name}{suffix}"
            k = 2
            while name in used:
                name, k = f"{town.name}{home.name}{suffix}{'第' + '二三四五六七八九'[min(k, 9) - 2] + '分队'}", k + 1
            used.add(name)
            # Bigger teams serve the whole township; most serve their own community and a neighbour or two.
            if i == 0 or rng.random() < 0.3:
                area_places: list[_Place] = [town]
                served = [self.communities[k] for k in town.communities]
            else:
                near = sorted((self.communities[k] for k in town.communities if k != home.index),
                              key=lambda c: ((c.lat - home.lat) ** 2 + (c.lon - home.lon) ** 2, c.index))
                served = [home, *near[: rng.randint(0, 2)]]
                area_places = list(served)
            self.orgs.append(dict(
                index=i, name=name, type=otype, home=home, areas=area_places, served={c.index for c in served},
                categories=[categories[c]["id"] for c in cats], cat_codes=cats,
                skills={s for c in cats for s in categories[c]["skill_codes"]},
                description=f"{desc}（{town.name}）", phone=self.mobile()))
        ids = self.insert_ids(Organization, [dict(
            name=o["name"], type=o["type"], home_area_id=o["home"].id, description=o["description"],
            contact_phone=o["phone"], registration=_registration(o["index"])) for o in self.orgs])
        for o, id_ in zip(self.orgs, ids, strict=True):
            o["id"] = id_
        self.insert_rows(organization_areas, [dict(organization_id=o["id"], area_id=a.id)
                                              for o in self.orgs for a in o["areas"]])
        self.insert_rows(organization_categories, [dict(organization_id=o["id"], category_id=c)
                                                   for o in self.orgs for c in o["categories"]])
        self.orgs_serving: dict[int, list[dict[str, Any]]] = {
            c.index: [o for o in self.orgs if c.index in o["served"]] for c in self.communities}
        self.say("organizations", len(self.orgs))

    # -- volunteers -----------------------------------------------------------------------------

    def slots_for(self, situation: str) -> list[tuple[int, int, int]]:
        """A weekly availability pattern that fits the volunteer's life situation."""
        rng = self.rng
        slots: list[tuple[int, int, int]] = []
        if situation == "retiree":
            for day in sorted(rng.sample(range(5), rng.randint(3, 5))):
                part = rng.random()
                if part < 0.75:
                    slots.append((day, rng.choice([480, 510, 540]), rng.choice([690, 720])))
                if part > 0.45:
                    slots.append((day, rng.choice([840, 870]), rng.choice([1020, 1050])))
            if rng.random() < 0.3:
                slots.append((5, 540, 690))
        elif situation == "worker":
            for day in sorted(rng.sample(range(5), rng.randint(1, 3))):
                slots.append((day, rng.choice([1080, 1110, 1140]), rng.choice([1260, 1290])))
            for day in (5, 6):
                if rng.random() < 0.7:
                    slots.append((day, rng.choice([480, 510, 540]), rng.choice([720, 1020, 1080])))
            if not slots:
                slots.append((5, 540, 1020))
        else:
            for day in sorted(rng.sample(range(5), rng.randint(0, 2))):
                slots.append((day, rng.choice([900, 960, 990]), 1080))
            for day in (5, 6):
                if rng.random() < 0.8:
                    slots.append((day, rng.choice([540, 570, 840]), rng.choice([1020, 1080])))
            if not slots:
                slots.append((6, 540, 1020))
        return slots

    def build_volunteers(self, skills: dict[str, dict[str, Any]]) -> None:
        rng = self.rng
        n_vol = _scaled(VOLUNTEERS, self.scale, 20)
        year = self.week_start.year
        # Cumulative weights, computed once: choices() would otherwise redo them on every draw.
        comm_weights = list(accumulate(1.4 if c.kind == "shequ" else 1.0 for c in self.communities))
        vols: list[dict[str, Any]] = []
        for i in range(n_vol):
            # Volunteer 0 is the demo volunteer: a retiree with elder-care skills in the demo community.
            home = self.demo_comm if i == 0 else rng.choices(self.communities, cum_weights=comm_weights)[0]
            situation = "retiree" if i == 0 else rng.choices(_SITUATIONS, weights=(40, 40, 20))[0]
            k = _SITUATIONS.index(situation)
            gender = Gender.F if rng.random() < (0.62, 0.55, 0.58)[k] else Gender.M
            age = {"retiree": rng.randint(56, 78), "worker": rng.randint(24, 55), "student": rng.randint(17, 23)}[situation]
            lat, lon = self.jitter(home, 0.5 if home.kind == "shequ" else 1.2, 3.0)
            codes = [code for code, odds in _SKILL_ODDS.items()
                     if rng.random() < odds[k] * (1.6 if code == "farming" and home.kind == "cun" else 1.0)]
            if i == 0:
                codes = ["elder_care", "first_aid"]
            max_minutes = {"retiree": rng.randrange(240, 601, 60), "worker": rng.randrange(120, 301, 30),
                           "student": rng.randrange(120, 361, 60)}[situation]
            preferred = max(60, (max_minutes // 2 // 30) * 30 + rng.choice([0, 30, 60]))
            travel = {"retiree": rng.uniform(2, 5), "worker": rng.uniform(3, 10), "student": rng.uniform(2, 8)}[situation]
            hours = min(3000.0, rng.lognormvariate((4.0, 3.0, 2.6)[k], (1.1, 1.2, 1.0)[k]))
            certs = []
            for code in codes:
                if code in _CERTIFICATES:
                    draw = rng.random()
                    if i == 0 or draw < 0.85:
                        expires = self.week_start + timedelta(days=rng.randint(60, 1100))
                    elif draw < 0.93:
                        expires = self.week_start + timedelta(days=rng.randint(0, 6))  # runs out this week
                    else:
                        expires = self.week_start - timedelta(days=rng.randint(1, 200))
                    certs.append(dict(code=code, name=_CERTIFICATES[code],
                                      number=f"{rng.randrange(10 ** 11, 10 ** 12)}", expires_on=expires))
            vols.append(dict(
                index=i, situation=situation, home=home, real_name=self.person_name(gender), phone=self.mobile(),
                gender=gender, birth_year=year - age, address=self.address(home), lat=lat, lon=lon,
                max_minutes=max_minutes, preferred=min(preferred, max_minutes), travel=round(travel * 2) / 2,
                hours=Decimal(round(hours * 2) / 2).quantize(Decimal("0.1")),
                skills=codes, certs=certs,
                slots=[(0, 480, 720), (1, 480, 720), (2, 840, 1050), (3, 480, 720), (4, 840, 1050)] if i == 0
                else self.slots_for(situation)))
        exceptions: list[tuple[int, ExceptionKind, datetime, datetime, str]] = []
        for v in vols[1:]:
            draw = rng.random()
            if draw < 0.05:
                first = rng.randint(0, 6)
                start = datetime.combine(self.week_start + timedelta(days=first), datetime.min.time())
                days = rng.randint(1, 3)
                exceptions.append((v["index"], ExceptionKind.AWAY, start, start + timedelta(days=days),
                                   rng.choice(["回老家探亲", "出差", "身体不适，在家休息", "家里有事", "住院复查"])))
            elif draw < 0.07:
                day = self.week_start + timedelta(days=rng.randint(0, 6))
                start = datetime.combine(day, datetime.min.time()) + timedelta(minutes=rng.choice([540, 840, 870]))
                exceptions.append((v["index"], ExceptionKind.EXTRA, start, start + timedelta(minutes=180),
                                   "本周临时有空"))
        self.vols = vols
        self.exceptions = exceptions
        self.skill_ids = {code: s["id"] for code, s in skills.items()}

    def build_memberships(self) -> None:
        rng = self.rng
        members: dict[int, list[int]] = {o["index"]: [] for o in self.orgs}
        by_vol: dict[int, list[int]] = {}

        def org_distance(o: dict[str, Any], v: dict[str, Any]) -> float:
            return rules.haversine_km(v["lat"], v["lon"], o["home"].lat, o["home"].lon)

        for v in self.vols:
            if v["index"] == 0:
                chosen = [0]
            elif rng.random() < 0.85:
                candidates = self.orgs_serving[v["home"].index]
                if not candidates:
                    town = self.township_of(v["home"])
                    candidates = [o for o in self.orgs if o["home"].parent == town.index] \
                        or sorted(self.orgs, key=lambda o: (org_distance(o, v), o["index"]))[:3]
                weights = [1 + 2 * len(o["skills"].intersection(v["skills"])) for o in candidates]
                chosen = [rng.choices(candidates, weights=weights)[0]["index"]]
                if len(candidates) > 1 and rng.random() < 0.25:
                    second = rng.choices(candidates, weights=weights)[0]["index"]
                    if second != chosen[0]:
                        chosen.append(second)
            else:
                chosen = []
            for o in chosen:
                members[o].append(v["index"])
            by_vol[v["index"]] = chosen
        # Every organization has at least a few members: its nearest volunteers join.
        for o in self.orgs:
            if len(members[o["index"]]) < 3:
                near = sorted((v for v in self.vols if v["index"] not in members[o["index"]]),
                              key=lambda v: (org_distance(o, v), v["index"]))
                for v in near[: 3 - len(members[o["index"]])]:
                    members[o["index"]].append(v["index"])
        rows: list[dict[str, Any]] = []
        leaders: dict[int, int] = {}
        for o in self.orgs:
            ids = members[o["index"]]
            statuses = {vi: (MemberStatus.APPROVED if vi == 0 or rng.random() < 0.88 else MemberStatus.APPLIED)
                        for vi in ids}
            pool = [vi for vi in ids if vi != 0 and vi not in leaders.values()] or [vi for vi in ids if vi != 0]
            leader = max(pool, key=lambda vi: (self.vols[vi]["hours"], -vi))
            statuses[leader] = MemberStatus.APPROVED
            leaders[o["index"]] = leader
            for vi in ids:
                applied = self.days_before(14, 900)
                approved = statuses[vi] == MemberStatus.APPROVED
                rows.append(dict(org=o["index"], vol=vi,
                                 role=MemberRole.LEADER if vi == leader else MemberRole.MEMBER,
                                 status=statuses[vi], applied_at=applied,
                                 approved_at=applied + timedelta(days=rng.randint(1, 7)) if approved else None))
        self.membership_rows = rows
        self.leaders = leaders

    def birth(self, v: dict[str, Any]) -> dict[str, Any]:
        """Birth year, and for the young (where the year is not enough: under 18 or close) a birth date
        that keeps their age on the week's Monday; the under-18s have their guardian's consent recorded.
        Drawn without the generator, so the rest of the district stays as it was."""
        age = self.week_start.year - v["birth_year"]
        row: dict[str, Any] = dict(birth_year=v["birth_year"], birth_date=None, guardian_name="",
                                   guardian_relation="", guardian_consent_at=None)
        if age <= 20:
            anniversary = date(self.week_start.year - age, self.week_start.month, min(self.week_start.day, 28))
            born = anniversary - timedelta(days=1 + v["index"] % 360)
            row.update(birth_date=born, birth_year=born.year)
            if age < 18:
                row.update(guardian_name=v["real_name"][:1] + "家长", guardian_relation="父母",
                           guardian_consent_at=utcnow())
        return row

    def insert_volunteers(self) -> None:
        assert self.district is not None
        width = max(4, len(str(len(self.vols))))
        # A leader's account is an organization-leader account (the first organization they lead).
        leads: dict[int, int] = {}
        for org_index, vi in sorted(self.leaders.items()):
            leads.setdefault(vi, org_index)
        user_rows = []
        for v in self.vols:
            org_index = leads.get(v["index"])
            username = f"v{v['index'] + 1:0{width}d}"
            password_hash = None
            if v["index"] == 0:
                username, password_hash = "volunteer", hash_password(self.password)
            elif org_index == 0:
                username, password_hash = "leader", hash_password(self.password)
            user_rows.append(dict(
                username=username, display_name=v["real_name"], password_hash=password_hash,
                role=Role.ORG_LEADER if org_index is not None else Role.VOLUNTEER, area_id=None,
                organization_id=self.orgs[org_index]["id"] if org_index is not None else None, active=True))
        user_ids = self.insert_ids(User, user_rows)
        vol_ids = self.insert_ids(Volunteer, [dict(
            user_id=uid, real_name=v["real_name"], phone=v["phone"], gender=v["gender"],
            home_area_id=v["home"].id, address=v["address"], lat=v["lat"], lon=v["lon"],
            max_minutes_per_week=v["max_minutes"], preferred_minutes_per_week=v["preferred"],
            max_travel_km=v["travel"], total_hours=v["hours"], active=True, **self.birth(v))
            for v, uid in zip(self.vols, user_ids, strict=True)])
        for v, id_ in zip(self.vols, vol_ids, strict=True):
            v["id"] = id_
        self.say("volunteers", len(vol_ids))
        self.insert_rows(volunteer_skills, [dict(volunteer_id=v["id"], skill_id=self.skill_ids[c])
                                            for v in self.vols for c in v["skills"]])
        self.insert_rows(Certificate, [dict(volunteer_id=v["id"], skill_id=self.skill_ids[c["code"]], name=c["name"],
                                            number=c["number"], expires_on=c["expires_on"])
                                       for v in self.vols for c in v["certs"]])
        slot_rows = [dict(volunteer_id=v["id"], weekday=d, start_minute=s, end_minute=e)
                     for v in self.vols for d, s, e in v["slots"]]
        self.insert_rows(AvailabilitySlot, slot_rows)
        self.insert_rows(AvailabilityException, [dict(volunteer_id=self.vols[vi]["id"], kind=kind, starts_at=s,
                                                      ends_at=e, note=note)
                                                 for vi, kind, s, e, note in self.exceptions])
        self.insert_rows(Membership, [dict(organization_id=self.orgs[r["org"]]["id"], volunteer_id=self.vols[r["vol"]]["id"],
                                           role=r["role"], status=r["status"], applied_at=r["applied_at"],
                                           approved_at=r["approved_at"]) for r in self.membership_rows])
        self.say("availability slots", len(slot_rows))
        demo_org = self.orgs[0]
        self.logins.append((Role.ORG_LEADER.value, "leader",
                            f"Organization leader, {demo_org['name']} ({self.vols[self.leaders[0]]['real_name']})"))
        self.logins.append((Role.VOLUNTEER.value, "volunteer",
                            f"Volunteer {self.vols[0]['real_name']}, {self.demo_comm.name} (elder care, first aid)"))
        self.volunteer_users = len(user_rows)

    # -- residents -------------------------------------------------------------------------------

    def build_residents(self) -> None:
        rng = self.rng
        n_res = _scaled(RESIDENTS, self.scale, 10)
        year = self.week_start.year
        weights = list(accumulate(1.3 if c.kind == "shequ" else 1.0 for c in self.communities))
        residents: list[dict[str, Any]] = []
        for i in range(n_res):
            home = self.demo_comm if i < min(6, n_res) else rng.choices(self.communities, cum_weights=weights)[0]
            elderly = rng.random() < 0.8 or i < 4
            gender = Gender.F if rng.random() < (0.6 if elderly else 0.7) else Gender.M
            age = rng.randint(68, 95) if elderly else rng.randint(28, 45)
            lat, lon = self.jitter(home, 0.3 if home.kind == "shequ" else 1.0, 2.0)
            residents.append(dict(
                home=home, elderly=elderly, name=self.person_name(gender), gender=gender, birth_year=year - age,
                phone=self.landline() if elderly and rng.random() < 0.15 else self.mobile(),
                address=self.address(home), lat=lat, lon=lon,
                needs=rng.choice(_ELDER_NEEDS if elderly else _FAMILY_NEEDS),
                consent_at=self.days_before(7, 400, hour=10), consent_note=rng.choice(_CONSENT_NOTES)))
        ids = self.insert_ids(Resident, [dict(
            community_id=r["home"].id, name=r["name"], phone=r["phone"], gender=r["gender"], birth_year=r["birth_year"],
            address=r["address"], lat=r["lat"], lon=r["lon"], needs_notes=r["needs"], consent_given_at=r["consent_at"],
            consent_recorded_by_id=r["home"].worker_user_id, consent_note=r["consent_note"]) for r in residents])
        for r, id_ in zip(residents, ids, strict=True):
            r["id"] = id_
        self.residents = residents
        self.say("residents", len(ids))

    # -- demands ---------------------------------------------------------------------------------

    def priority(self, weights: Sequence[float] = (3, 20, 66, 11)) -> Priority:
        return self.rng.choices([Priority.URGENT, Priority.HIGH, Priority.NORMAL, Priority.LOW], weights=weights)[0]

    def restrict(self, community: _Place, category: str, chance: float, one_chance: float,
                 prefer: str | None = None) -> tuple[list[int], bool]:
        """Organizations a demand is restricted to (maybe none), and whether one team takes it."""
        fit = [o for o in self.orgs_serving[community.index] if category in o["cat_codes"]]
        if prefer:
            fit = [o for o in fit if o["name"].endswith(prefer)] or fit
        if not fit or self.rng.random() >= chance:
            return [], False
        picked = self.rng.sample(fit, min(len(fit), self.rng.choice([1, 1, 2])))
        return sorted(o["id"] for o in picked), self.rng.random() < one_chance

    def build_demands(self, categories: dict[str, dict[str, Any]]) -> None:
        rng = self.rng
        target = _scaled(OCCURRENCES, self.scale, 30)
        demands: list[dict[str, Any]] = []

        def first_day(weekdays: list[int]) -> date:
            return self.week_start + timedelta(days=min(weekdays))

        def add(community: _Place, category: str, title: str, *, weekdays: list[int], start: int, minutes: int,
                people: int, min_people: int, priority: Priority, resident: dict[str, Any] | None = None,
                gender: Gender | None = None, orgs: tuple[list[int], bool] = ([], False),
                point: bool = False, notes: str = "", one_off: bool = False) -> None:
            if resident is not None:
                kind, station_id, lat, lon, address = (LocationKind.HOME, None, resident["lat"], resident["lon"],
                                                       resident["address"])
            elif point:
                lat, lon = self.jitter(community, 0.2, 0.5)
                kind, station_id, address = LocationKind.POINT, None, f"{community.name}垃圾分类集中投放点"
            else:
                kind, station_id, lat, lon = LocationKind.STATION, community.station_id, community.lat, community.lon
                address = f"{community.name}新时代文明实践站"
            recurring = not one_off
            repeat_until = None
            if recurring and rng.random() < 0.75:
                repeat_until = self.week_start + timedelta(weeks=rng.randint(3, 12), days=6)
            demands.append(dict(
                community=community, category=category, resident_id=resident["id"] if resident else None,
                title=title, location_kind=kind, station_id=station_id, lat=lat, lon=lon, address=address,
                starts_on=first_day(weekdays), start_minute=start, duration_minutes=minutes,
                weekdays=",".join(map(str, sorted(weekdays))) if recurring else "", repeat_until=repeat_until,
                people=people, min_people=min_people, priority=priority, gender=gender,
                organizations=orgs[0], one_organization=orgs[1] and bool(orgs[0]), notes=notes,
                occurrences=len(weekdays) if recurring else 1))

        # Recurring home visits to elderly residents (most of the week's work) and after-school care.
        for r in self.residents:
            community = r["home"]
            if r["elderly"]:
                if rng.random() < 0.88 or community is self.demo_comm:
                    n_days = rng.choices([1, 2, 3], weights=[50, 35, 15])[0]
                    days = sorted(rng.sample(range(6), n_days))
                    start = rng.choice([540, 570, 600, 870, 900, 930] * 3 + [1140])
                    two = rng.random() < 0.12
                    high = "半失能" in r["needs"] or "独居" in r["needs"]
                    add(community, "elderly_care",
                        rng.choice(["助老上门探访", "聊天陪伴", "送餐上门", "代购生活用品", "居家清洁帮扶"]),
                        weekdays=days, start=start, minutes=rng.choice([60, 90, 90, 120]), people=2 if two else 1,
                        min_people=1, priority=self.priority((3, 45, 47, 5) if high else (1, 12, 75, 12)),
                        resident=r, gender=r["gender"] if rng.random() < 0.2 else None,
                        orgs=self.restrict(community, "elderly_care", 0.1, 0.2), notes=r["needs"][:60])
                if rng.random() < 0.12:
                    add(community, "elderly_care", "陪同就医", weekdays=[rng.randint(0, 4)], start=rng.choice([480, 510]),
                        minutes=180, people=1, min_people=1, priority=self.priority((10, 40, 50, 0)), resident=r,
                        notes="陪同到区人民医院复诊，需提前预约。", one_off=True)
            elif rng.random() < 0.85:
                days = sorted(rng.sample(range(5), rng.choice([2, 3, 3, 5])))
                add(community, "childcare", "放学接送与课后看护", weekdays=days, start=rng.choice([960, 990]),
                    minutes=120, people=1, min_people=1, priority=self.priority((0, 15, 75, 10)), resident=r,
                    orgs=self.restrict(community, "childcare", 0.15, 0.3), notes="孩子在附近小学就读。")
        # A standing emergency reserve, then station events until the week is as busy as the target.
        shequ = [c for c in self.communities if c.kind == "shequ"]
        for _ in range(_scaled(5, self.scale, 1)):
            community = rng.choice(shequ or self.communities)
            add(community, "emergency", rng.choice(["防汛应急备勤", "应急志愿服务备勤", "森林防火巡查备勤"]),
                weekdays=[rng.randint(0, 6)], start=480, minutes=240, people=8, min_people=4,
                priority=self.priority((35, 65, 0, 0)), orgs=self.restrict(community, "emergency", 0.5, 0.5),
                notes="接到通知后30分钟内到岗。", one_off=True)
        events: list[tuple[str, float]] = [
            ("health", 60), ("culture_sports", 90), ("policy_outreach", 45), ("environment", 45),
            ("mediation", 40), ("customs_reform", 15), ("legal_aid", 15), ("science", 15),
            ("mental_health", 10), ("rehabilitation_support", 8),
        ]
        total = sum(d["occurrences"] for d in demands)
        comm_weights = list(accumulate(1.3 if c.kind == "shequ" else 1.0 for c in self.communities))
        while total < target:
            category = rng.choices([c for c, _ in events], weights=[w for _, w in events])[0]
            community = rng.choices(self.communities, cum_weights=comm_weights)[0]
            weekend = rng.choice([5, 6])
            weekday = rng.randint(0, 4)
            if category == "health":
                add(community, "health", rng.choice(["免费测血压血糖", "健康义诊", "急救知识普及与咨询"]),
                    weekdays=[rng.randint(0, 5)], start=rng.choice([510, 540]), minutes=180, people=2, min_people=1,
                    priority=self.priority(), orgs=self.restrict(community, "health", 0.2, 0.3),
                    one_off=rng.random() < 0.5, notes="请携带血压计和登记表。")
            elif category == "culture_sports":
                title = rng.choice(["广场舞展演", "露天电影放映", "文艺汇演", "乒乓球友谊赛", "书法培训", "重阳敬老文艺演出"])
                evening = rng.random() < 0.4
                people = rng.randint(4, 8)
                add(community, "culture_sports", title, weekdays=[weekday if evening else weekend],
                    start=1140 if evening else rng.choice([570, 870]), minutes=120, people=people,
                    min_people=rng.randint(2, 3), priority=self.priority((0, 10, 70, 20)),
                    orgs=self.restrict(community, "culture_sports", 0.3, 0.5), one_off=True,
                    notes="负责场地布置、秩序维护和签到。")
            elif category == "policy_outreach":
                add(community, "policy_outreach", rng.choice(["党的创新理论宣讲", "惠民政策宣讲", "医保政策解读"]),
                    weekdays=[weekday], start=rng.choice([570, 870, 1170]), minutes=90, people=rng.choice([1, 2]),
                    min_people=1, priority=self.priority((0, 15, 70, 15)), one_off=True,
                    orgs=self.restrict(community, "policy_outreach", 0.2, 0.3))
            elif category == "environment":
                days = sorted({weekend, weekday}) if rng.random() < 0.35 else [weekend]
                people = rng.randint(6, 12)
                add(community, "environment", rng.choice(["垃圾分类督导", "垃圾分类宣传入户", "植绿护绿"]),
                    weekdays=days, start=rng.choice([480, 510, 1110]), minutes=120, people=people, min_people=3,
                    priority=self.priority((0, 10, 65, 25)), point=rng.random() < 0.6,
                    orgs=self.restrict(community, "environment", 0.15, 0.5), notes="请穿志愿者马甲。")
            elif category == "mediation":
                rural = community.kind == "cun"
                title = rng.choice(["土地承包经营纠纷调解", "邻里纠纷调解", "家庭矛盾调解"] if rural
                                   else ["物业纠纷调解", "邻里纠纷调解", "家庭矛盾调解"])
                people = rng.choice([2, 2, 2, 3])
                add(community, "mediation", title, weekdays=[rng.randint(0, 5)], start=rng.choice([870, 900, 1140]),
                    minutes=120, people=people, min_people=2, priority=self.priority((5, 35, 55, 5)),
                    orgs=self.restrict(community, "mediation", 0.5, 0.6, prefer="矛盾纠纷调解队"), one_off=True,
                    notes="调解员不得来自当事人所在楼栋或村民小组。")
            elif category == "customs_reform":
                add(community, "customs_reform", rng.choice(["婚事新办丧事俭办宣传", "文明家庭评选宣传", "厉行节约倡议活动"]),
                    weekdays=[weekend], start=570, minutes=120, people=rng.randint(2, 3), min_people=1,
                    priority=self.priority((0, 5, 70, 25)), one_off=True,
                    orgs=self.restrict(community, "customs_reform", 0.6, 0.5, prefer="红白理事会"))
            elif category == "legal_aid":
                add(community, "legal_aid", rng.choice(["法律咨询进社区", "防范电信诈骗法治宣传"]), weekdays=[weekend],
                    start=540, minutes=120, people=rng.choice([1, 2]), min_people=1, priority=self.priority(),
                    one_off=True, orgs=self.restrict(community, "legal_aid", 0.3, 0.3))
            elif category == "science":
                add(community, "science", rng.choice(["科普讲座：防范电信诈骗", "青少年科学小实验", "防灾减灾知识科普"]),
                    weekdays=[rng.choice([weekend, weekday])], start=rng.choice([870, 1140]), minutes=90, people=2,
                    min_people=1, priority=self.priority((0, 5, 75, 20)), one_off=True,
                    orgs=self.restrict(community, "science", 0.2, 0.3))
            elif category == "mental_health":
                add(community, "mental_health", "精神康复者陪伴探访", weekdays=[weekday], start=rng.choice([600, 900]),
                    minutes=90, people=1, min_people=1, priority=self.priority((0, 30, 65, 5)), one_off=True,
                    notes="到实践站见面，由社工陪同。")
            else:
                add(community, "rehabilitation_support", rng.choice(["社区矫正人员帮教谈心", "刑满释放人员就业帮扶"]),
                    weekdays=[weekday], start=rng.choice([600, 870]), minutes=90, people=1, min_people=1,
                    priority=self.priority((0, 25, 70, 5)), one_off=True)
            total += demands[-1]["occurrences"]

        rows = []
        for d in demands:
            rows.append(dict(
                community_id=d["community"].id, created_by_id=d["community"].worker_user_id,
                category_id=categories[d["category"]]["id"], resident_id=d["resident_id"], title=d["title"],
                location_kind=d["location_kind"], station_id=d["station_id"], lat=d["lat"], lon=d["lon"],
                address=d["address"], starts_on=d["starts_on"], start_minute=d["start_minute"],
                duration_minutes=d["duration_minutes"], weekdays=d["weekdays"], repeat_until=d["repeat_until"],
                people=d["people"], min_people=d["min_people"], priority=d["priority"], gender=d["gender"],
                one_organization=d["one_organization"], notes=d["notes"], status=DemandStatus.OPEN, version=1))
        ids = self.insert_ids(Demand, rows)
        occ_rows, req_rows, any_rows, org_rows = [], [], [], []
        for d, row, id_ in zip(demands, rows, ids, strict=True):
            weekdays = [int(x) for x in row["weekdays"].split(",") if x]
            for start, end in occurrence_times(row["starts_on"], weekdays, row["repeat_until"], row["start_minute"],
                                               row["duration_minutes"], self.week_start,
                                               self.week_end - timedelta(days=1)):
                occ_rows.append(dict(demand_id=id_, starts_at=start, ends_at=end, status=DemandStatus.OPEN))
            cat = categories[d["category"]]
            target_rows = any_rows if cat["skills_any"] else req_rows
            target_rows.extend(dict(demand_id=id_, skill_id=s) for s in cat["skill_ids"])
            org_rows.extend(dict(demand_id=id_, organization_id=o) for o in d["organizations"])
        self.insert_rows(DemandOccurrence, occ_rows)
        self.insert_rows(demand_skills, req_rows)
        self.insert_rows(demand_skills_any, any_rows)
        self.insert_rows(demand_organizations, org_rows)
        self.say("demands", len(ids))
        self.say("occurrences", len(occ_rows))


def _catalogue() -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """Skills and categories by code, with category skill codes and ids (sorted, for determinism)."""
    skills = {s.code: {"id": s.id, "needs_certificate": s.needs_certificate}
              for s in db.session.scalars(select(Skill).order_by(Skill.code))}
    links: dict[int, list[str]] = {}
    code_by_id = {v["id"]: k for k, v in skills.items()}
    for cat_id, skill_id in db.session.execute(select(category_skills.c.category_id, category_skills.c.skill_id)):
        links.setdefault(cat_id, []).append(code_by_id[skill_id])
    categories = {}
    for c in db.session.scalars(select(Category).order_by(Category.code)):
        codes = sorted(links.get(c.id, []))
        categories[c.code] = {"id": c.id, "skills_any": c.skills_any, "skill_codes": codes,
                              "skill_ids": [skills[s]["id"] for s in codes]}
    return skills, categories


_COUNTED = [
    ("areas", Area), ("stations", Station), ("skills", Skill), ("categories", Category),
    ("organizations", Organization), ("organization_areas", organization_areas),
    ("organization_categories", organization_categories), ("users", User), ("volunteers", Volunteer),
    ("volunteer_skills", volunteer_skills), ("certificates", Certificate), ("availability_slots", AvailabilitySlot),
    ("availability_exceptions", AvailabilityException), ("memberships", Membership), ("residents", Resident),
    ("demands", Demand), ("demand_skills", demand_skills), ("demand_skills_any", demand_skills_any),
    ("demand_organizations", demand_organizations), ("demand_occurrences", DemandOccurrence),
]


def table_counts() -> dict[str, int]:
    """Rows per table of the demo's tables."""
    counts = {}
    for name, target in _COUNTED:
        table = target if hasattr(target, "c") else target.__table__
        counts[name] = db.session.scalar(select(func.count()).select_from(table)) or 0
    return counts


def load_demo(*, week_start: date, seed: int = 2026, scale: float = 1.0, password: str = DEMO_PASSWORD,
              echo: Callable[[str], None] = lambda s: None) -> DemoSummary:
    """Build the demo district for the week starting `week_start` (a Monday) and commit it."""
    if week_start.weekday() != 0:
        raise DomainError(f"The demo week must start on a Monday; {week_start} is not one.", "week_start")
    if not 0 < scale <= 10:
        raise DomainError("The scale must be above 0 and at most 10.", "scale")
    if db.session.scalar(select(Area.id).limit(1)) is not None:
        raise DomainError("The database already holds areas; the demo district loads only into an empty database.",
                          "areas")
    problem = password_problem(password)
    if problem:
        raise DomainError(f"Demo password: {problem}", "password")
    builder = _Builder(week_start, seed, scale, password, echo)
    try:
        seed_catalogue()
        skills, categories = _catalogue()
        builder.build_areas()
        builder.build_staff()
        builder.build_organizations(categories)
        builder.build_volunteers(skills)
        builder.build_memberships()
        builder.insert_volunteers()
        builder.build_residents()
        builder.build_demands(categories)
        db.session.commit()
    except BaseException:
        db.session.rollback()  # never leave half a district behind
        raise
    counts = table_counts()
    seconds = time.perf_counter() - builder.t0
    echo(f"done in {seconds:.1f} s")
    order = {"admin": 0, "coordinator": 1, "worker": 2, "org_leader": 3, "volunteer": 4}
    logins = sorted(builder.logins, key=lambda item: (order[item[0]], item[1]))
    return DemoSummary(counts=counts, logins=logins, seconds=seconds, password=password)
