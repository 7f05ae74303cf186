"""The administrator edits the catalogue; bad input names the field; others may not."""

import pytest
from sqlalchemy import select

from matcher.models import AuditEntry, Category, Skill


@pytest.mark.parametrize("username", ["coord", "worker_a1", "leader_a", "vol_a"])
def test_only_admins_reach_the_catalogue(client, auth, world, username):
    auth.login(username)
    for url in ("/admin/catalogue", "/admin/audit", "/admin/categories/1"):
        assert client.get(url).status_code == 403


def test_admin_edits_a_category_and_it_is_audited(client, auth, world, db):
    auth.login("admin")
    cat = db.session.scalar(select(Category).where(Category.code == "elderly_care"))
    response = client.post(f"/admin/categories/{cat.id}", data={
        "name_zh": "助老服务", "name_en": "Elderly care", "default_minutes": "60", "default_people": "2",
        "default_min_people": "1", "skills": ["elder_care", "first_aid"], "active": "1"})
    assert response.status_code == 302
    db.session.expire_all()
    cat = db.session.get(Category, cat.id)
    assert cat.default_minutes == 60 and {s.code for s in cat.skills} == {"elder_care", "first_aid"}
    assert db.session.scalar(select(AuditEntry).where(AuditEntry.object_type == "category")) is not None
    assert client.get("/admin/audit").status_code == 200


@pytest.mark.parametrize(("overrides", "field"), [
    ({"default_min_people": "5"}, "default_min_people"), ({"default_minutes": "0"}, "default_minutes"),
    ({"skills": ["no_such_skill"]}, "skills"), ({"name_zh": ""}, "name_zh"),
])
def test_bad_category_edit_names_the_field_and_changes_nothing(client, auth, world, db, overrides, field):
    auth.login("admin")
    cat = db.session.scalar(select(Category).where(Category.code == "mediation"))
    data = {"name_zh": "调解", "name_en": "Mediation", "default_minutes": "90", "default_people": "2",
            "default_min_people": "2", "active": "1", **overrides}
    response = client.post(f"/admin/categories/{cat.id}", data=data)
    assert response.status_code == 400 and f'id="err-{field}"' in response.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(Category, cat.id).name_zh == "矛盾纠纷调解"


def test_admin_adds_a_skill_and_duplicates_are_refused(client, auth, world, db):
    auth.login("admin")
    data = {"code": "sign_language", "name_zh": "手语", "name_en": "Sign language"}
    assert client.post("/admin/skills", data=data).status_code == 302
    assert db.session.scalar(select(Skill).where(Skill.code == "sign_language")) is not None
    again = client.post("/admin/skills", data=data)
    assert again.status_code == 400 and 'id="err-code"' in again.get_data(as_text=True)
    assert client.post("/admin/skills", data={**data, "code": "Bad Code"}).status_code == 400
