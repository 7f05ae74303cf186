"""Service records and hours for other systems: the record's fields, whose records each role reads, the
token's scope, the period's rules, and totals equal to the database's."""

from __future__ import annotations

import json
from datetime import date, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from matcher.models import Assignment, AssignmentStatus, TokenKind, Volunteer
from tests.matcher.builders import assign, member


def _occurrences(world, key):
    return sorted(world["demands"][key].occurrences, key=lambda o: o.starts_at)


def _done(db, occ, vol, hours, *, org=None, rating=None, comment="", attendance="checked"):
    a = assign(db, occ, vol, AssignmentStatus.COMPLETED, org=org)
    a.credited_hours = Decimal(hours)
    a.rating, a.rating_comment, a.attendance = rating, comment, attendance
    a.checked_in_at = occ.starts_at if attendance == "checked" else None
    a.checked_out_at = occ.ends_at if attendance == "checked" else None
    vol.total_hours = (vol.total_hours or Decimal("0")) + Decimal(hours)
    return a


@pytest.fixture
def served(world, db):
    """Volunteer a (东城, member of 东城助老服务队) served a1 twice, once sent through the organization and rated;
    volunteer b (南山, only applied to 南山调解队) served b1; a third member served a1 too, and one service of
    volunteer a is still only accepted (no record)."""
    monday, thursday = _occurrences(world, "a1")[:2]
    b1 = _occurrences(world, "b1")[0]
    vol_a, vol_b = world["volunteers"]["a"], world["volunteers"]["b"]
    other = member(world, db, "陈红", "13811112222")
    records = {
        "a_monday": _done(db, monday, vol_a, "1.5", org=world["orgs"]["a"], rating=5, comment="很耐心"),
        "a_thursday": _done(db, thursday, vol_a, "1.0", attendance="by_hand"),
        "b": _done(db, b1, vol_b, "2.0"),
        "other": _done(db, monday, other, "1.5"),
    }
    vol_a.total_hours += Decimal("120")  # earlier years: one star
    later = _occurrences(world, "a1")[2]
    assign(db, later, vol_a, AssignmentStatus.ACCEPTED)
    db.session.commit()
    return records


def _period(world, days=14):
    first = _occurrences(world, "a1")[0].starts_at.date()
    return {"start": first.isoformat(), "end": (first + timedelta(days=days)).isoformat()}


def test_a_service_record_carries_the_record_s_fields_without_the_home_address(api, world, served):
    api.as_user(world["users"]["admin"])
    response = api.get("records/services", query_string=_period(world))
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert [r["id"] for r in body] == sorted([a.id for a in served.values()],
                                             key=lambda i: ([a for a in served.values() if a.id == i][0]
                                                            .occurrence.starts_at, i))
    record = next(r for r in body if r["id"] == served["a_monday"].id)
    assert record["volunteer"] == {"id": world["volunteers"]["a"].id, "name": "李秀英", "phone": "138****5678"}
    assert record["category"]["code"] == "elderly_care" and record["title"]
    monday = served["a_monday"].occurrence
    assert record["date"] == monday.starts_at.date().isoformat()
    assert (record["start"], record["end"]) == ("09:00", "10:30")
    assert record["community"]["name"] == "桂花社区"
    assert "3栋" not in record["place"] and "桂花社区" in record["place"]  # a resident's home, not its address
    assert record["hours"] == "1.5" and record["rating"] == 5 and record["comment"] == "很耐心"
    assert record["organization"] == {"id": world["orgs"]["a"].id, "name": "东城助老服务队"}
    assert record["attendance"] == "checked" and record["checked_in_at"]
    thursday = next(r for r in body if r["id"] == served["a_thursday"].id)
    # Not sent through an organization: the volunteer's approved organization records it.
    assert thursday["organization"]["name"] == "东城助老服务队" and thursday["attendance"] == "by_hand"
    assert thursday["rating"] is None and thursday["checked_in_at"] is None
    b = next(r for r in body if r["id"] == served["b"].id)
    assert b["organization"] is None  # only applied to 南山调解队
    assert "13987654321" not in response.get_data(as_text=True)


def test_hours_per_volunteer_equal_the_database_s(api, world, db, served):
    api.as_user(world["users"]["admin"])
    response = api.get("records/hours", query_string=_period(world))
    assert response.status_code == 200, response.get_json()
    rows = {r["volunteer"]["id"]: r for r in response.get_json()}
    expected = dict(db.session.execute(
        select(Assignment.volunteer_id, func.sum(Assignment.credited_hours))
        .where(Assignment.status == AssignmentStatus.COMPLETED).group_by(Assignment.volunteer_id)).all())
    assert set(rows) == set(expected)
    for vid, hours in expected.items():
        assert Decimal(rows[vid]["hours"]) == Decimal(str(hours)).quantize(Decimal("0.1"))
        volunteer = db.session.get(Volunteer, vid)
        assert Decimal(rows[vid]["total_hours"]) == volunteer.total_hours
    vol_a = rows[world["volunteers"]["a"].id]
    assert (vol_a["hours"], vol_a["services"], vol_a["total_hours"], vol_a["stars"]) == ("2.5", 2, "122.5", 1)
    assert sum(r["services"] for r in rows.values()) == len(served)
    assert json.loads(response.headers["X-Pagination"])["total"] == 3
    # The period: a day after every service finds none.
    later = _occurrences(world, "a1")[0].starts_at.date() + timedelta(days=30)
    empty = api.get("records/hours", query_string={"start": later.isoformat(), "end": later.isoformat()})
    assert empty.status_code == 200 and empty.get_json() == []


def test_a_coordinator_reads_the_records_of_their_area_s_volunteers_only(api, world, served):
    api.as_user(world["users"]["coord_a"])
    ids = {r["id"] for r in api.get("records/services", query_string=_period(world)).get_json()}
    assert ids == {served["a_monday"].id, served["a_thursday"].id, served["other"].id}
    people = {r["volunteer"]["id"] for r in api.get("records/hours", query_string=_period(world)).get_json()}
    assert world["volunteers"]["b"].id not in people and world["volunteers"]["a"].id in people
    api.as_user(world["users"]["coord_b"])
    ids = {r["id"] for r in api.get("records/services", query_string=_period(world)).get_json()}
    assert ids == {served["b"].id}
    people = {r["volunteer"]["id"] for r in api.get("records/hours", query_string=_period(world)).get_json()}
    assert people == {world["volunteers"]["b"].id}
    api.as_user(world["users"]["coord"])  # the district: everyone's
    assert len(api.get("records/services", query_string=_period(world)).get_json()) == 4


def test_an_organization_leader_reads_their_organization_s_services(api, world, served):
    api.as_user(world["users"]["leader_a"])
    ids = {r["id"] for r in api.get("records/services", query_string=_period(world)).get_json()}
    assert ids == {served["a_monday"].id, served["a_thursday"].id, served["other"].id}
    hours = api.get("records/hours", query_string=_period(world)).get_json()
    assert world["volunteers"]["b"].id not in {r["volunteer"]["id"] for r in hours}


def test_workers_volunteers_and_tokens_without_the_records_scope_are_refused(api, world, served):
    for username in ("worker_a1", "vol_a"):
        api.as_user(world["users"][username])
        response = api.get("records/services", query_string=_period(world))
        assert response.status_code == 403 and response.mimetype == "application/problem+json", username
    api.as_user(world["users"]["coord_a"], kind=TokenKind.PERSONAL, scopes=["read", "schedules"])
    for path in ("records/services", "records/hours"):
        refused = api.get(path, query_string=_period(world))
        assert refused.status_code == 403 and "records" in refused.get_json()["detail"]


@pytest.mark.parametrize("query,field", [
    ({}, "start"),
    ({"start": "2026-01-01"}, "end"),
    ({"start": "2026-13-01", "end": "2026-12-31"}, "start"),
    ({"start": "2026-02-01", "end": "2026-01-01"}, "end"),
    ({"start": "2026-01-01", "end": "2027-06-01"}, "end"),
    ({"start": "2026-01-01", "end": "2026-01-31", "page_size": "1000"}, "page_size"),
    ({"start": "2026-01-01", "end": "2026-01-31", "page": "0"}, "page"),
])
def test_a_bad_period_or_page_is_named(api, world, query, field):
    api.as_user(world["users"]["coord"])
    for path in ("records/services", "records/hours"):
        response = api.get(path, query_string=query)
        assert response.status_code == 422, (path, query, response.get_json())
        assert field in response.get_json()["errors"], response.get_json()


def test_records_are_paged(api, world, served):
    api.as_user(world["users"]["admin"])
    query = {**_period(world), "page_size": 1}
    first = api.get("records/services", query_string={**query, "page": 1})
    second = api.get("records/services", query_string={**query, "page": 2})
    assert first.status_code == second.status_code == 200
    assert len(first.get_json()) == len(second.get_json()) == 1
    assert first.get_json()[0]["id"] != second.get_json()[0]["id"]
    assert json.loads(first.headers["X-Pagination"])["total"] == 4


def test_services_before_the_period_are_not_counted(api, world, db, served):
    api.as_user(world["users"]["admin"])
    start = served["a_thursday"].occurrence.starts_at.date()
    body = api.get("records/services", query_string={"start": start.isoformat(),
                                                      "end": (start + timedelta(days=1)).isoformat()}).get_json()
    assert [r["id"] for r in body] == [served["a_thursday"].id]
    assert date.fromisoformat(body[0]["date"]) == start
