"""The organization leader's pages: team week, swap, hand back, members; scope and bad input."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from matcher.accounts import create_user
from matcher.models import Assignment, AssignmentStatus, Handback, Membership, MemberStatus, Role
from tests.conftest import PASSWORD
from tests.matcher.builders import assign, member
from tests.web.test_community import field_message


@pytest.fixture
def team(world, db):
    """Demand a1's Monday dispatched to organization a with vol_a offered; two more members; leader_b."""
    occ = world["demands"]["a1"].occurrences[0]
    org = world["orgs"]["a"]
    occ.responsible_organization_id = org.id
    offer = assign(db, occ, world["volunteers"]["a"], AssignmentStatus.OFFERED, org=org)
    fit = member(world, db, "陈红", "13811112222")
    unfit = member(world, db, "孙伟", "13811115555", skills="lecturing")
    applicant = member(world, db, "周敏", "13811113333", status=MemberStatus.APPLIED)
    create_user(username="leader_b", password=PASSWORD, role=Role.ORG_LEADER, organization_id=world["orgs"]["b"].id)
    db.session.commit()
    return {"occ": occ.id, "offer": offer.id, "fit": fit.id, "unfit": unfit.id,
            "application": db.session.scalar(select(Membership.id).where(Membership.volunteer_id == applicant.id)),
            "other_application": db.session.scalar(select(Membership.id).where(
                Membership.volunteer_id == world["volunteers"]["b"].id))}


def test_only_organization_leaders_open_the_team_pages(client, auth, world):
    for username, status in {"leader_a": 200, "worker_a1": 403, "coord": 403, "vol_a": 403, "admin": 403}.items():
        auth.login(username)
        assert client.get("/team").status_code == status, username
        assert client.get("/team/members").status_code == status, username
        auth.logout()


def test_team_week_lists_members_eligible_swaps_reasons_and_load(client, auth, world, team, next_monday):
    auth.login("leader_a")
    page = client.get(f"/team?week={next_monday.isoformat()}").get_data(as_text=True)
    assert "李秀英" in page and world["demands"]["a1"].title in page
    assert f"/team/assignments/{team['offer']}/swap" in page
    swap_page = client.get(f"/team/assignments/{team['offer']}/swap").get_data(as_text=True)
    swap_form = swap_page.split('class="swap')[1].split("</form>")[0]
    select_html = swap_form.split("<select")[1].split("</select>")[0]
    assert f'value="{team["fit"]}"' in select_html and f'value="{team["unfit"]}"' not in select_html
    assert "孙伟" in swap_form.split("<details>")[1]  # listed with the reason instead
    assert "<meter" in page and "90" in page  # vol_a's 90 offered minutes


def test_services_offered_to_members_directly_are_the_teams_too(client, auth, world, db, team, next_monday):
    thursday = world["demands"]["a1"].occurrences[1]
    direct = assign(db, thursday, world["volunteers"]["a"], AssignmentStatus.OFFERED)  # no organization
    foreign = assign(db, thursday, world["volunteers"]["b"], AssignmentStatus.OFFERED)  # not a member of a
    db.session.commit()
    ids = (direct.id, foreign.id, team["fit"])
    auth.login("leader_a")
    page = client.get(f"/team?week={next_monday.isoformat()}").get_data(as_text=True)
    assert f"/team/assignments/{ids[0]}/swap" in page and f"/team/assignments/{ids[1]}/swap" not in page
    assert client.post(f"/team/assignments/{ids[1]}/swap", data={"volunteer": ids[2]}).status_code == 404


def test_swap_bad_choice_is_400_and_nothing_changes_then_swaps(client, auth, world, db, team):
    auth.login("leader_b")
    assert client.post(f"/team/assignments/{team['offer']}/swap", data={"volunteer": team["fit"]}).status_code == 404
    auth.logout()
    auth.login("leader_a")
    response = client.post(f"/team/assignments/{team['offer']}/swap", data={"volunteer": team["unfit"]})
    assert response.status_code == 400 and field_message(response, "volunteer")
    response = client.post(f"/team/assignments/{team['offer']}/swap", data={"volunteer": "abc"})
    assert response.status_code == 400
    db.session.expire_all()
    assert db.session.get(Assignment, team["offer"]).volunteer_id == world["volunteers"]["a"].id
    assert client.post(f"/team/assignments/{team['offer']}/swap", data={"volunteer": team["fit"]}).status_code == 302
    db.session.expire_all()
    on_it = db.session.scalars(select(Assignment).where(Assignment.occurrence_id == team["occ"])).all()
    assert [(a.volunteer_id, a.status) for a in on_it] == [(team["fit"], AssignmentStatus.OFFERED)]


def test_hand_back_needs_a_reason_and_only_the_organizations_leader(client, auth, world, db, team, next_monday):
    auth.login("leader_b")
    assert client.post(f"/team/occurrences/{team['occ']}/hand-back", data={"reason": "忙"}).status_code == 404
    auth.logout()
    auth.login("leader_a")
    # The team page links each service to its own hand-back page (no form per service on the week).
    week_page = client.get(f"/team?week={next_monday.isoformat()}").get_data(as_text=True)
    assert f'href="/team/occurrences/{team["occ"]}/hand-back"' in week_page and 'name="reason"' not in week_page
    page = client.get(f"/team/occurrences/{team['occ']}/hand-back")
    assert page.status_code == 200 and 'name="reason"' in page.get_data(as_text=True)
    response = client.post(f"/team/occurrences/{team['occ']}/hand-back", data={"reason": " "})
    assert response.status_code == 400 and field_message(response, "reason")
    db.session.expire_all()
    assert db.session.get(Assignment, team["offer"]) is not None and db.session.scalar(select(Handback.id)) is None
    assert client.post(f"/team/occurrences/{team['occ']}/hand-back", data={"reason": "人手不足"}).status_code == 302
    db.session.expire_all()
    assert db.session.get(Assignment, team["offer"]) is None
    assert db.session.scalar(select(Handback.reason)) == "人手不足"


def test_members_page_approve_and_reject_within_the_organization(client, auth, world, db, team):
    auth.login("leader_a")
    page = client.get("/team/members").get_data(as_text=True)
    assert "周敏" in page and "王强" not in page
    assert client.post(f"/team/members/{team['other_application']}/approve").status_code == 404
    assert client.post(f"/team/members/{team['application']}/approve").status_code == 302
    db.session.expire_all()
    assert db.session.get(Membership, team["application"]).status == MemberStatus.APPROVED
    assert db.session.get(Membership, team["other_application"]).status == MemberStatus.APPLIED
    auth.logout()
    auth.login("leader_b")
    assert client.post(f"/team/members/{team['application']}/reject").status_code == 404
    assert client.post(f"/team/members/{team['other_application']}/reject").status_code == 302
    db.session.expire_all()
    assert db.session.get(Membership, team["other_application"]) is None


def test_an_accepted_service_is_handed_to_another_member_from_the_swap_page(client, auth, world, db, team):
    db.session.get(Assignment, team["offer"]).status = AssignmentStatus.ACCEPTED
    db.session.commit()
    auth.login("leader_a")
    page = client.get(f"/team/assignments/{team['offer']}/swap").get_data(as_text=True)
    assert "李秀英 已接受此服务" in page  # the leader is warned that the member takes it over as accepted
    assert client.post(f"/team/assignments/{team['offer']}/swap",
                       data={"volunteer": team["fit"]}).status_code == 302
    db.session.expire_all()
    assert db.session.scalar(select(Assignment).where(Assignment.volunteer_id == world["volunteers"]["a"].id)) is None
    new = db.session.scalar(select(Assignment).where(Assignment.volunteer_id == team["fit"]))
    assert new.status == AssignmentStatus.ACCEPTED and new.occurrence_id == team["occ"]


def test_the_team_page_puts_the_load_first_and_the_services_needing_the_leader_before_the_settled(
        client, auth, world, db, team, next_monday):
    monday, thursday = sorted(world["demands"]["a1"].occurrences, key=lambda o: o.starts_at)[:2]
    thursday.responsible_organization_id = world["orgs"]["a"].id  # dispatched, nobody on it yet
    db.session.commit()
    auth.login("leader_a")
    client.post("/language/en", data={"next": "/dashboard"})
    page = client.get(f"/team?week={next_monday.isoformat()}").get_data(as_text=True)
    assert page.index('id="load"') < page.index('id="services"') < page.index(f'id="occ-{monday.id}"')
    assert page.index("<meter") < page.index('id="services"')  # vol_a's minutes, above the services
    assert 'href="#load"' in page and 'href="#services"' in page
    # Thursday is later in the week but still open: it comes before Monday's offered service.
    assert page.index(f'id="occ-{thursday.id}"') < page.index(f'id="occ-{monday.id}"')
    assert page.index('id="state-open"') < page.index(f'id="occ-{thursday.id}"') < page.index('id="state-scheduled"')
