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


def _entries(world, db, next_monday):
    from datetime import datetime

    from tests.matcher.builders import first_occurrence, offer, publish

    schedule = publish(world, next_monday)
    occ = first_occurrence(world["demands"]["a1"])
    a = offer(schedule, occ, world["volunteers"]["a"])
    a.override_reason = "known to the family"
    coord = world["users"]["coord_a"]
    db.session.add_all([
        AuditEntry(user_id=coord.id, action="assign", object_type="assignment", object_id=a.id,
                   details={"occurrence": occ.id, "override": True, "rules": [3]}, at=datetime(2026, 3, 1, 20, 30)),
        AuditEntry(user_id=coord.id, action="apply_run", object_type="schedule", object_id=schedule.id,
                   details={"run": 7, "added": 2, "removed": 1}, at=datetime(2026, 3, 5, 1, 0)),
        AuditEntry(user_id=None, action="login_failed", object_type="nosuchuser", object_id=None,
                   details={"username": "ghost"}, at=datetime(2026, 3, 9, 2, 0)),
    ])
    db.session.commit()
    return a, occ


def test_the_audit_log_reads_as_sentences_in_beijing_time(client, auth, world, db, next_monday):
    a, occ = _entries(world, db, next_monday)
    auth.login("admin")
    client.post("/language/en", data={"next": "/dashboard"})
    page = client.get("/admin/audit").get_data(as_text=True)
    assert "<th>By</th>" in page and ">Assigned by hand<" in page and ">Applied a solve run<" in page
    assert ">apply_run<" not in page and "assignment #" not in page and "{" not in page.split("<tbody>")[1]
    assert f"“{world['demands']['a1'].title}” {occ.starts_at:%Y-%m-%d %H:%M}" in page
    assert world["volunteers"]["a"].real_name in page
    assert "2026-03-02 04:30:00" in page  # 20:30 UTC is 04:30 the next morning in Beijing
    assert "Override reason: known to the family" in page and "added: 2" in page
    client.post("/language/zh_CN", data={"next": "/dashboard"})
    chinese = client.get("/admin/audit").get_data(as_text=True)
    assert "<th>操作人</th>" in chinese
    assert "<th>时间</th>" in chinese and "<th>服务时间</th>" not in chinese  # when it was done, not a service's time


def test_the_audit_log_filters_by_action_user_and_dates(client, auth, world, db, next_monday):
    _entries(world, db, next_monday)
    auth.login("admin")
    client.post("/language/en", data={"next": "/dashboard"})

    def shown(**query):
        page = client.get("/admin/audit", query_string=query).get_data(as_text=True)
        return {code for code, label in (("assign", ">Assigned by hand<"), ("apply_run", ">Applied a solve run<"),
                                         ("login_failed", ">Sign-in failed<")) if label in page.split("<tbody>")[1]}

    assert shown(action="apply_run") == {"apply_run"}
    assert shown(user="coord_a") == {"assign", "apply_run"}
    assert shown(**{"from": "2026-03-02", "to": "2026-03-05"}) == {"assign", "apply_run"}
    assert shown(**{"from": "2026-03-06"}) == {"login_failed"}
    assert shown(user="coord_a", action="apply_run", page="1") == {"apply_run"}
    for query, name in (({"action": "drop_table"}, "action"), ({"from": "2026-13-01"}, "from"),
                        ({"to": "yesterday"}, "to"), ({"from": "2026-03-05", "to": "2026-03-01"}, "to")):
        response = client.get("/admin/audit", query_string=query)
        assert response.status_code == 400 and name in response.get_data(as_text=True), query
