"""Spec v2 in both engines and filter: agreement coverage (7.3), laws and DPIAs on decisions (7.4, 7.6),
`art9 explicit_consent(TOPIC)` (7.6), students who left (7.7), and the FilterReport.

Every decision test runs on both engines; the rows of filter are held to decide field by field.
"""

from __future__ import annotations

import datetime as dt

import pytest
from engine_strategies import SCHOOL_V2

import avgpolicy
from avgpolicy import Consent, Decision, FilterReport

D = dt.date
ENGINES = ["compiled", "interpreted"]
OCT = D(2025, 10, 1)      # only agreement OUD in force
DEC = D(2025, 12, 15)     # OUD and NIEUW overlap
JAN = D(2026, 1, 1)       # OUD ended the day before: only NIEUW



@pytest.fixture(scope="module")
def policy() -> avgpolicy.Policy:
    return avgpolicy.loads({"v2.avg": SCHOOL_V2})


def student(**extra):
    return {"id": "s1", "roepnaam": "Sanne", "achternaam": "Jansen", "geboortedatum": D(2012, 3, 1),
            "leerjaar": 7, "zorgnotitie": "dyslexie", **extra}


def codes(d: Decision, field: str) -> list[str]:
    return [r.code for r in d.fields[field].reasons]


NAMES = ["leerling.id", "leerling.roepnaam", "leerling.achternaam"]


# ---------------------------------------------------------------------------
# 7.3 agreement coverage


@pytest.mark.parametrize("engine", ENGINES)
def test_a_field_outside_covers_is_outside_agreement(policy, engine):
    d = policy.decide("snappet", "leermiddelen", NAMES, student(), at=OCT, engine=engine)
    assert [True, True, False] == [d.fields[f].allowed for f in NAMES]
    assert ["outside_agreement"] == codes(d, "leerling.achternaam")
    message = d.fields["leerling.achternaam"].reasons[0].message
    assert "OUD (covers leerling.id, leerling.roepnaam for leermiddelen)" in message
    assert "leerling.achternaam" in message and "NIEUW" not in message  # only the agreements in force
    assert "OUD" == d.fields["leerling.roepnaam"].agreement
    assert d.fields["leerling.roepnaam"].dpia is None


@pytest.mark.parametrize("engine", ENGINES)
def test_a_purpose_outside_purposes_is_outside_agreement(policy, engine):
    d = policy.decide("snappet", "toetsing", ["leerling.id"], student(), at=DEC, engine=engine)
    assert ["outside_agreement"] == codes(d, "leerling.id")
    assert "for purpose toetsing" in d.reasons[0].message
    # a partner without agreements is not limited by coverage
    d = policy.decide("zorgteam", "toetsing", ["leerling.id"], student(), at=DEC, engine=engine)
    assert d.allowed and d.fields["leerling.id"].agreement is None


@pytest.mark.parametrize("engine", ENGINES)
def test_overlapping_agreements_cover_the_union(policy, engine):
    d = policy.decide("snappet", "leermiddelen", NAMES, student(), at=DEC, engine=engine)
    assert d.allowed
    assert "OUD" == d.fields["leerling.roepnaam"].agreement  # the first in force that covers it
    assert "NIEUW" == d.fields["leerling.achternaam"].agreement
    assert "DPIA-leermiddelen-2025" == d.fields["leerling.achternaam"].dpia
    # a transfer purpose only NIEUW covers: outside before it starts, inside while it runs
    assert not policy.decide("snappet", "oso", ["leerling.id"], student(), at=OCT, engine=engine)
    assert policy.decide("snappet", "oso", ["leerling.id"], student(), at=DEC, engine=engine)


@pytest.mark.parametrize("engine", ENGINES)
def test_the_day_an_agreement_ends(policy, engine):
    last = policy.decide("snappet", "leermiddelen", NAMES, student(), at=D(2025, 12, 31), engine=engine)
    assert "OUD" == last.fields["leerling.roepnaam"].agreement
    after = policy.decide("snappet", "leermiddelen", NAMES, student(), at=JAN, engine=engine)
    assert after.allowed and "NIEUW" == after.fields["leerling.roepnaam"].agreement
    gone = policy.decide("snappet", "leermiddelen", NAMES, student(), at=D(2026, 8, 1), engine=engine)
    assert ["agreement_inactive"] == codes(gone, "leerling.id")


def test_one_held_function_follows_coverage_across_boundaries(policy):
    check = policy.compile("snappet", "leermiddelen", NAMES)
    for day in (OCT, DEC, D(2025, 12, 31), JAN, D(2026, 7, 31), D(2026, 8, 1), OCT):
        assert policy.decide("snappet", "leermiddelen", NAMES, student(), at=day, engine="interpreted") == \
            check(student(), day)


# ---------------------------------------------------------------------------
# 7.4 / 7.6 laws and DPIAs on the decision


@pytest.mark.parametrize("engine", ENGINES)
def test_law_and_dpia_are_part_of_the_decision(policy, engine):
    d = policy.decide("snappet", "oso", ["leerling.id"], student(), at=DEC, engine=engine)
    fd = d.fields["leerling.id"]
    assert ("legal_obligation", "WPO, art. 42", "NIEUW") == (fd.basis, fd.law, fd.agreement)
    assert {"law": "WPO, art. 42", "agreement": "NIEUW", "dpia": "DPIA-leermiddelen-2025"}.items() <= \
        fd.to_dict().items()
    assert 'law "WPO, art. 42", agreement NIEUW, dpia DPIA-leermiddelen-2025' in d.explain()


# ---------------------------------------------------------------------------
# 7.7 students who left

LEFT_CASES = [
    (D(2025, 9, 30), False, ["left_school"]),        # left yesterday
    (OCT, True, ["permitted"]),                      # leaves today: still a student today
    (None, True, ["permitted"]),
    ("2025-09-30", False, ["missing_attribute"]),    # ill-typed: unknown
    (20250930, False, ["missing_attribute"]),
    (dt.datetime(2025, 9, 30, 12, 0), False, ["left_school"]),  # a datetime is read as its date
    (dt.datetime(2025, 10, 1, 0, 0), True, ["permitted"]),
]


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize(("left", "allowed", "expected"), LEFT_CASES)
def test_left_school(policy, engine, left, allowed, expected):
    d = policy.decide("snappet", "leermiddelen", ["leerling.roepnaam"], student(uitschrijfdatum=left), at=OCT,
                      engine=engine)
    assert allowed == d.allowed
    assert expected == codes(d, "leerling.roepnaam")
    if expected == ["left_school"]:
        assert "2025-09-30" in d.reasons[0].message
    if expected == ["missing_attribute"]:
        assert "uitschrijfdatum" in d.reasons[0].message


@pytest.mark.parametrize("engine", ENGINES)
def test_left_school_absent_means_not_left_and_transfer_still_allowed(policy, engine):
    assert policy.decide("snappet", "leermiddelen", ["leerling.roepnaam"], student(), at=OCT, engine=engine)
    gone = student(uitschrijfdatum=D(2025, 12, 1))
    assert policy.decide("snappet", "oso", ["leerling.id", "leerling.roepnaam"], gone, at=DEC, engine=engine)
    d = policy.decide("snappet", "leermiddelen", NAMES, gone, at=DEC, engine=engine)
    assert [["left_school"]] * 3 == [codes(d, f) for f in NAMES]


# ---------------------------------------------------------------------------
# 7.6 art9 explicit_consent(TOPIC)

CARE = ["leerling.roepnaam", "leerling.zorgnotitie"]


@pytest.mark.parametrize("engine", ENGINES)
def test_explicit_consent_without_consent_denies_the_special_field(policy, engine):
    d = policy.decide("zorgteam", "ondersteuning", CARE, student(), at=OCT, engine=engine)
    assert d.fields["leerling.roepnaam"].allowed  # not special: the basis alone carries it
    assert ["no_consent"] == codes(d, "leerling.zorgnotitie")
    assert "topic zorgdeling" in d.fields["leerling.zorgnotitie"].reasons[0].message
    assert "art. 9(2)(a)" in d.fields["leerling.zorgnotitie"].reasons[0].message


@pytest.mark.parametrize("engine", ENGINES)
def test_explicit_consent_by_a_parent_under_16(policy, engine):
    s = student(consents={"zorgdeling": Consent(by="parent", given=D(2025, 9, 1))})
    d = policy.decide("zorgteam", "ondersteuning", CARE, s, at=OCT, engine=engine)
    assert d.allowed
    fd = d.fields["leerling.zorgnotitie"]
    assert ("public_task", "WPO, art. 18a", "DPIA-zorg", None) == (fd.basis, fd.law, fd.dpia, fd.agreement)
    # given by the student under 16: the wrong party
    s = student(consents={"zorgdeling": Consent(by="student", given=D(2025, 9, 1))})
    assert ["no_consent"] == codes(policy.decide("zorgteam", "ondersteuning", CARE, s, at=OCT, engine=engine),
                                   "leerling.zorgnotitie")


@pytest.mark.parametrize("engine", ENGINES)
def test_explicit_consent_withdrawn(policy, engine):
    s = student(consents={"zorgdeling": Consent(by="parent", given=D(2025, 9, 1), withdrawn=D(2025, 9, 20))})
    d = policy.decide("zorgteam", "ondersteuning", CARE, s, at=OCT, engine=engine)
    assert ["no_consent"] == codes(d, "leerling.zorgnotitie")
    assert "withdrawn" in d.fields["leerling.zorgnotitie"].reasons[0].message


@pytest.mark.parametrize("engine", ENGINES)
def test_explicit_consent_of_a_parent_after_16_informs_the_student(policy, engine):
    s = student(geboortedatum=D(2009, 3, 1), consents={"zorgdeling": Consent(by="parent", given=D(2024, 9, 1))})
    d = policy.decide("zorgteam", "ondersteuning", CARE, s, at=OCT, engine=engine)
    assert ["permitted", "inform_student"] == codes(d, "leerling.zorgnotitie")


# ---------------------------------------------------------------------------
# filter: the same outcomes, and the FilterReport

def test_filter_follows_coverage_and_leaving(policy):
    students = [student(), student(id="s2", uitschrijfdatum=D(2025, 9, 1)), student(id="s3", uitschrijfdatum=None)]
    rows = list(policy.filter("snappet", "leermiddelen", NAMES, students, at=OCT))
    assert [{"leerling.id": "s1", "leerling.roepnaam": "Sanne"}, {"leerling.id": "s3", "leerling.roepnaam": "Sanne"}] \
        == rows
    assert 3 == len(list(policy.filter("snappet", "oso", ["leerling.id"], students, at=DEC)))  # transfer
    care = [student(consents={"zorgdeling": Consent(by="parent", given=D(2025, 9, 1))}), student(id="s2")]
    assert [set(CARE), {"leerling.roepnaam"}] == [set(r) for r in policy.filter("zorgteam", "ondersteuning", CARE,
                                                                                    care, at=OCT)]


def test_filter_report_counts_sent_left_out_and_grants(policy):
    students = [student(), student(id="s2", uitschrijfdatum=D(2025, 9, 1)), None, student(id="s4", roepnaam=5),
                student(id="s5", uitschrijfdatum="gisteren")]
    report = FilterReport()
    rows = list(policy.filter("snappet", "leermiddelen", NAMES, students, at=OCT, report=report))
    assert 2 == len(rows) == report.sent  # s4 still sends its id
    assert 3 == report.left_out
    # (achternaam is outside the agreement in force for everyone)
    assert {"left_school": 1, "missing_attribute": 2, "outside_agreement": 3} == dict(report.left_out_reasons)
    grant = ("snappet_namen", "contract", None, "OUD", None)
    assert {"leerling.id": {grant}, "leerling.roepnaam": {grant}} == report.grants
    # a second batch adds up
    list(policy.filter("snappet", "leermiddelen", NAMES, [student()], at=DEC, report=report))
    assert 3 == report.sent
    assert {("snappet_namen", "contract", None, "NIEUW", None)} == report.grants["leerling.achternaam"]
    assert 3 == report.to_dict()["sent"]


def test_filter_report_when_nothing_can_be_sent(policy):
    report = FilterReport()
    assert [] == list(policy.filter("snappet", "leermiddelen", NAMES, [student(), 5], at=D(2027, 1, 1),
                                    report=report))
    assert (0, 2, {"agreement_inactive": 2}) == (report.sent, report.left_out, dict(report.left_out_reasons))


def test_filter_report_equals_decide(policy):
    """The report's counts are those of decide, student by student."""
    students = [student(id=f"s{i}", leerjaar=i % 3, uitschrijfdatum=[None, D(2025, 9, 1), OCT, 7][i % 4],
                        consents={"zorgdeling": Consent(by="parent", given=D(2025, 9, 1))} if i % 5 else {})
                for i in range(40)]
    for partner, purpose, fields in [("snappet", "leermiddelen", NAMES), ("zorgteam", "ondersteuning", CARE),
                                     ("snappet", "oso", ["leerling.id"])]:
        report = FilterReport()
        rows = list(policy.filter(partner, purpose, fields, students, at=DEC, report=report))
        expected = FilterReport()
        for s in students:
            d = policy.decide(partner, purpose, fields, s, at=DEC, engine="interpreted")
            if any(fd.allowed for fd in d.fields.values()):
                expected.add_sent(d)
            else:
                expected.add_left_out(d)
        assert expected.to_dict() == report.to_dict()
        assert len(rows) == report.sent


def test_filter_report_must_be_a_filter_report(policy):
    with pytest.raises(TypeError, match="FilterReport"):
        policy.filter("snappet", "leermiddelen", NAMES, [], at=OCT, report={})
