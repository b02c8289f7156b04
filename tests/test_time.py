"""Time: inclusive whole local days, window and agreement edges, gaps, DST days, `at` forms, age and 29 February."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from engine_strategies import SCHOOL

import avgpolicy
from avgpolicy import runtime as rt

D = dt.date
AMS = ZoneInfo("Europe/Amsterdam")
UTC = dt.UTC

AGES = """
dataset leerling "L" subject {
    geboortedatum date personal
    roepnaam text personal
}
partner p "P" {
    agreement "A" valid from 2026-03-29 until 2026-10-25
}
purpose u "U"
permit dertien {
    partner p
    purpose u
    basis contract
    fields leerling.roepnaam
    students where age >= 13
}
"""


@pytest.fixture(scope="module")
def school() -> avgpolicy.Policy:
    return avgpolicy.loads(SCHOOL)


@pytest.fixture(scope="module")
def ages() -> avgpolicy.Policy:
    return avgpolicy.loads(AGES)


@pytest.fixture(params=["compiled", "interpreted"])
def engine(request: pytest.FixtureRequest) -> str:
    return request.param


def codes(d) -> list[str]:
    return [r.code for r in d.reasons]


GROEP5 = {"school": "12AB", "leerjaar": 5, "roepnaam": "Sanne"}


@pytest.mark.parametrize(("at", "expected"), [
    (D(2025, 7, 31), ["agreement_inactive"]),          # the day before the agreement and the rule
    (D(2025, 8, 1), ["permitted"]),                     # first day
    (dt.datetime(2025, 8, 1, 0, 0), ["permitted"]),     # first moment of the first day (naive = local)
    (dt.datetime(2025, 7, 31, 22, 0, tzinfo=UTC), ["permitted"]),   # 00:00 local (CEST, UTC+2)
    (dt.datetime(2025, 7, 31, 21, 59, tzinfo=UTC), ["agreement_inactive"]),
    (D(2026, 7, 31), ["permitted"]),                    # last day
    (dt.datetime(2026, 7, 31, 23, 59, 59, 999999), ["permitted"]),
    (dt.datetime(2026, 7, 31, 21, 59, 59, tzinfo=UTC), ["permitted"]),
    (dt.datetime(2026, 7, 31, 22, 0, tzinfo=UTC), ["agreement_inactive"]),  # 00:00 local on 1 August
    (D(2026, 8, 1), ["agreement_inactive"]),
])
def test_first_and_last_day_of_agreement_and_rule_window(school, engine, at, expected):
    d = school.decide("snappet", "leermiddelen", ["leerling.roepnaam"], GROEP5, at=at, engine=engine)
    assert expected == codes(d)


@pytest.mark.parametrize(("at", "expected"), [
    (D(2025, 8, 31), ["outside_window"]),
    (D(2025, 9, 1), ["permitted"]),
    (D(2026, 6, 30), ["permitted"]),
    (D(2026, 7, 1), ["outside_window"]),
])
def test_first_and_last_day_of_a_rule_window_inside_the_agreement(school, engine, at, expected):
    d = school.decide("snappet", "leermiddelen", ["leerling.achternaam"], {"actief": True}, at=at, engine=engine)
    assert expected == codes(d)


@pytest.mark.parametrize(("at", "expected"), [
    (D(2024, 12, 31), ["agreement_inactive"]),
    (D(2025, 1, 1), ["permitted"]),
    (D(2025, 6, 30), ["permitted"]),
    (D(2025, 7, 1), ["agreement_inactive"]),            # in the gap between the two agreements
    (D(2025, 8, 31), ["agreement_inactive"]),
    (D(2025, 9, 1), ["permitted"]),
    (D(2025, 12, 31), ["permitted"]),
    (D(2026, 1, 1), ["agreement_inactive"]),
])
def test_agreements_with_a_gap(school, engine, at, expected):
    d = school.decide("gappy", "leermiddelen", ["leerling.geboortedatum"], {}, at=at, engine=engine)
    assert expected == codes(d)


def test_dst_start_utc_moments_are_local_days(ages, engine):
    # 2026-03-29 is the last Sunday of March: clocks go from 02:00 CET to 03:00 CEST
    student = {"geboortedatum": D(2013, 3, 29), "roepnaam": "A"}
    before = dt.datetime(2026, 3, 28, 22, 59, tzinfo=UTC)   # 23:59 local on 28 March
    after = dt.datetime(2026, 3, 28, 23, 30, tzinfo=UTC)    # 00:30 local on 29 March
    assert D(2026, 3, 28) == rt.local_day(before, AMS)
    assert D(2026, 3, 29) == rt.local_day(after, AMS)
    assert ["agreement_inactive"] == codes(ages.decide("p", "u", ["leerling.roepnaam"], student, at=before,
                                                       engine=engine))
    assert ["permitted"] == codes(ages.decide("p", "u", ["leerling.roepnaam"], student, at=after, engine=engine))
    # later that day, after the switch (UTC+2)
    assert D(2026, 3, 29) == rt.local_day(dt.datetime(2026, 3, 29, 21, 59, tzinfo=UTC), AMS)
    assert D(2026, 3, 30) == rt.local_day(dt.datetime(2026, 3, 29, 22, 0, tzinfo=UTC), AMS)


def test_dst_end_last_day_of_the_agreement(ages, engine):
    # 2026-10-25 is the last Sunday of October: CEST -> CET at 03:00; local midnight is 23:00 UTC
    student = {"geboortedatum": D(2000, 1, 1), "roepnaam": "A"}
    last = dt.datetime(2026, 10, 25, 22, 59, tzinfo=UTC)    # 23:59 CET on 25 October
    gone = dt.datetime(2026, 10, 25, 23, 0, tzinfo=UTC)     # 00:00 CET on 26 October
    assert ["permitted"] == codes(ages.decide("p", "u", ["leerling.roepnaam"], student, at=last, engine=engine))
    assert ["agreement_inactive"] == codes(ages.decide("p", "u", ["leerling.roepnaam"], student, at=gone,
                                                       engine=engine))
    other_zone = dt.datetime(2026, 10, 26, 6, 0, tzinfo=ZoneInfo("Asia/Tokyo"))  # 22:00 UTC: still the 25th
    assert ["permitted"] == codes(ages.decide("p", "u", ["leerling.roepnaam"], student, at=other_zone,
                                              engine=engine))


def test_age_is_whole_years_on_the_local_date(ages, engine):
    student = {"geboortedatum": D(2013, 6, 1), "roepnaam": "A"}
    assert ["not_in_subset"] == codes(ages.decide("p", "u", ["leerling.roepnaam"], student, at=D(2026, 5, 31),
                                                  engine=engine))
    assert ["permitted"] == codes(ages.decide("p", "u", ["leerling.roepnaam"], student, at=D(2026, 6, 1),
                                              engine=engine))
    # 22:30 UTC on 31 May is already 1 June in Amsterdam
    assert ["permitted"] == codes(ages.decide("p", "u", ["leerling.roepnaam"], student,
                                              at=dt.datetime(2026, 5, 31, 22, 30, tzinfo=UTC), engine=engine))


def test_29_february_birthday_counts_from_1_march_in_common_years(ages, engine):
    student = {"geboortedatum": D(2012, 2, 29), "roepnaam": "A"}   # 13 in 2025, a common year
    d = ages.decide("p", "u", ["leerling.roepnaam"], student, at=D(2026, 4, 1), engine=engine)
    assert ["permitted"] == codes(d)
    assert 12 == rt.age_on(D(2012, 2, 29), D(2025, 2, 28))
    assert 13 == rt.age_on(D(2012, 2, 29), D(2025, 3, 1))
    assert 16 == rt.age_on(D(2012, 2, 29), D(2028, 2, 29))


def test_at_forms(school, engine):
    expected = school.decide("snappet", "leermiddelen", ["leerling.roepnaam"], GROEP5, at=D(2025, 10, 1),
                             engine=engine)
    for at in (dt.datetime(2025, 10, 1, 14, 30), dt.datetime(2025, 10, 1, 12, 30, tzinfo=UTC),
               dt.datetime(2025, 10, 1, 23, 59, tzinfo=AMS)):
        assert expected == school.decide("snappet", "leermiddelen", ["leerling.roepnaam"], GROEP5, at=at,
                                         engine=engine)


def test_at_none_is_now(school, engine):
    today = dt.datetime.now(AMS).date()
    expected = "agreement_inactive" if today > D(2026, 7, 31) else "permitted"
    d = school.decide("snappet", "leermiddelen", ["leerling.roepnaam"], GROEP5, engine=engine)
    # the agreement window is fixed; the answer only depends on which side of it today is
    assert [expected] == codes(d) or today == D(2026, 7, 31)


def test_local_day_rules():
    assert D(2025, 1, 1) == rt.local_day(D(2025, 1, 1), AMS)
    assert D(2025, 1, 1) == rt.local_day(dt.datetime(2025, 1, 1, 23, 59), AMS)
    assert D(2025, 1, 2) == rt.local_day(dt.datetime(2025, 1, 1, 23, 0, tzinfo=UTC), AMS)
    for bad in ("2025-01-01", 1, 1.0, [2025, 1, 1]):
        with pytest.raises(TypeError):
            rt.local_day(bad, AMS)


def test_other_policy_time_zone():
    policy = avgpolicy.loads(SCHOOL, timezone="America/New_York")
    at = dt.datetime(2025, 8, 1, 3, 0, tzinfo=UTC)   # 23:00 on 31 July in New York
    d = policy.decide("snappet", "leermiddelen", ["leerling.roepnaam"], GROEP5, at=at)
    assert ["agreement_inactive"] == codes(d)
    assert d == policy.decide("snappet", "leermiddelen", ["leerling.roepnaam"], GROEP5, at=at, engine="interpreted")
