"""Use cases that change the catalogue of skills and service categories, and its seed.

The seeded catalogue comes from the domain guide; `seed_catalogue` only adds what is missing. An
administrator edits categories (`update_category`) and adds skills (`create_skill`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from .audit import record_audit
from .db import db
from .fields import Fields, skills_by_code
from .models import Category, Skill, User

# code, Chinese name, English name, needs a certificate
SKILLS = [
    ("elder_care", "助老护理", "Elder care", False),
    ("childcare", "育幼看护", "Childcare", True),
    ("mediation", "纠纷调解", "Mediation", True),
    ("first_aid", "急救", "First aid", True),
    ("medical", "医疗护理", "Medical", True),
    ("counselling", "心理咨询", "Counselling", True),
    ("performance", "文艺表演", "Performance", False),
    ("lecturing", "宣讲", "Lecturing", False),
    ("legal", "法律", "Legal", True),
    ("social_work", "社会工作", "Social work", True),
    ("sports", "体育指导", "Sports coaching", False),
    ("driving", "驾驶", "Driving", True),
    ("farming", "农业技术", "Farming", False),
    ("photography", "摄影", "Photography", False),
]

# code, Chinese, English, minutes, people, min people, required skills, any-of?
CATEGORIES = [
    ("elderly_care", "助老服务", "Elderly care", 90, 1, 1, ["elder_care"], False),
    ("childcare", "育幼服务", "Childcare", 120, 2, 1, ["childcare"], False),
    ("mediation", "矛盾纠纷调解", "Dispute mediation", 120, 2, 2, ["mediation"], False),
    ("health", "健康服务", "Health services", 180, 2, 1, ["medical", "first_aid"], True),
    ("mental_health", "心理健康服务", "Mental-health rehabilitation", 90, 1, 1, ["counselling"], False),
    ("culture_sports", "文体活动", "Culture and sports", 120, 4, 2, [], False),
    ("policy_outreach", "理论宣讲", "Theory and policy outreach", 90, 1, 1, ["lecturing"], False),
    ("customs_reform", "移风易俗", "Customs reform", 120, 2, 1, [], False),
    ("environment", "环境保护与垃圾分类", "Environment and garbage sorting", 120, 6, 3, [], False),
    ("legal_aid", "法治宣传与法律援助", "Legal publicity and aid", 120, 1, 1, ["legal"], False),
    ("science", "科普活动", "Science popularization", 90, 2, 1, ["lecturing"], False),
    ("emergency", "平急结合应急服务", "Emergency and disaster relief", 240, 8, 4, ["first_aid"], False),
    ("rehabilitation_support", "社区矫正与帮教支持", "Correction and rehabilitation support", 90, 1, 1,
     ["counselling", "social_work"], True),
]


# The notice's five kinds of work (新时代文明实践 through community social organizations), in its order, and
# which kind each seeded category counts under in the summary report (`matcher.reports`). A category an
# administrator adds later counts under `KIND_OTHER` until it is added here.
KINDS = ["theory", "customs", "culture", "services", "disputes"]
KIND_OTHER = "other"
KIND_NAMES = {
    "theory": ("理论宣讲", "Theory and policy outreach"),
    "customs": ("移风易俗", "Changing customs"),
    "culture": ("文体活动", "Culture and sports"),
    "services": ("便民服务", "Services for pressing needs"),
    "disputes": ("矛盾纠纷调解", "Preventing and resolving disputes"),
    "other": ("其他", "Other"),
}
CATEGORY_KIND = {
    "policy_outreach": "theory",
    "customs_reform": "customs",
    "environment": "customs",  # garbage sorting and tree planting are named under changing customs
    "culture_sports": "culture",
    "legal_aid": "culture",  # legal publicity and science popularization: the notice's culture activities
    "science": "culture",
    "elderly_care": "services",
    "childcare": "services",
    "health": "services",  # family and health services
    "emergency": "services",  # the standing reserve for emergencies
    "mediation": "disputes",
    "mental_health": "disputes",  # health and mental-health rehabilitation: named under kind five
    "rehabilitation_support": "disputes",  # community correction, drug rehabilitation, released persons
}


def category_kind(code: str) -> str:
    """The notice's kind of work a category's services count under (`KIND_OTHER` if unmapped)."""
    return CATEGORY_KIND.get(code, KIND_OTHER)

def seed_catalogue() -> tuple[int, int]:
    """Insert the catalogue's missing skills and categories; return how many of each were added."""
    skills = {s.code: s for s in db.session.scalars(select(Skill))}
    added_skills = 0
    for code, zh, en, cert in SKILLS:
        if code not in skills:
            skills[code] = Skill(code=code, name_zh=zh, name_en=en, needs_certificate=cert)
            db.session.add(skills[code])
            added_skills += 1
    existing = set(db.session.scalars(select(Category.code)))
    added = 0
    for code, zh, en, minutes, people, min_people, skill_codes, any_of in CATEGORIES:
        if code in existing:
            continue
        db.session.add(Category(code=code, name_zh=zh, name_en=en, default_minutes=minutes,
                                default_people=people, default_min_people=min_people, skills_any=any_of,
                                skills=[skills[c] for c in skill_codes]))
        added += 1
    db.session.flush()
    return added_skills, added


def update_category(category: Category, data: Mapping[str, Any], *, user: User) -> None:
    """Change a category's names, defaults, required skills and whether it is offered."""
    f = Fields(data)
    name_zh = f.text("name_zh", required=True, max_length=60)
    name_en = f.text("name_en", required=True, max_length=60)
    minutes = f.integer("default_minutes", minimum=15, maximum=1440)
    people = f.integer("default_people", minimum=1, maximum=200)
    min_people = f.integer("default_min_people", minimum=1, maximum=200)
    if people is not None and min_people is not None and min_people > people:
        f.fail("default_min_people", _l("The minimum team cannot exceed the headcount."))
    skills = skills_by_code(f, "skills")
    f.check()
    category.name_zh, category.name_en = name_zh, name_en
    category.default_minutes, category.default_people, category.default_min_people = minutes, people, min_people
    category.skills = skills
    category.skills_any = f.flag("skills_any")
    category.active = f.flag("active")
    record_audit(user, "update", category, code=category.code)
    db.session.flush()


def create_skill(data: Mapping[str, Any], *, user: User) -> Skill:
    """Add a skill to the catalogue; the code is a short lowercase identifier."""
    f = Fields(data)
    code = f.text("code", required=True, max_length=40)
    if code and not (code.replace("_", "").isalnum() and code.isascii() and code == code.lower()):
        f.fail("code", _l("Use lowercase letters, digits and '_'."))
    elif code and db.session.scalar(select(Skill.id).where(Skill.code == code)):
        f.fail("code", _l("This code is taken."))
    name_zh = f.text("name_zh", required=True, max_length=60)
    name_en = f.text("name_en", required=True, max_length=60)
    f.check()
    skill = Skill(code=code, name_zh=name_zh, name_en=name_en, needs_certificate=f.flag("needs_certificate"))
    db.session.add(skill)
    db.session.flush()
    record_audit(user, "create", skill, code=code)
    return skill
