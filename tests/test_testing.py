"""Tests for avgpolicy.testing: running test blocks, coverage, assert helpers, strategies."""

from __future__ import annotations

import datetime
import subprocess
import sys
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import given, settings

import avgpolicy
from avgpolicy.decision import Consent
from avgpolicy.testing import assert_allowed, assert_denied, request_for, run, run_test
from avgpolicy.testing import strategies as avgst

ROOT = Path(__file__).resolve().parent.parent

CATALOGUE = """
dataset leerling "Leerlinggegevens" subject {
    id            text  personal
    roepnaam      text  personal
    achternaam    text  personal
    geboortedatum date  personal
    school        text  personal
    leerjaar      int   personal
    lesgroepen    set   personal
    actief        bool  personal
    foto          text  personal
    bsn           text  national_id
}
dataset toets "Toetsen" {
    resultaat text sensitive
}
partner snappet "Snappet" { agreement "DPA-1" valid from 2025-08-01 until 2026-07-31 }
partner website "Schoolwebsite" { role controller }
purpose leermiddelen "Leermiddelen"
purpose publicatie "Publicatie"
consent beeldmateriaal "Foto's op de website"

permit snappet_lesmateriaal {
    partner  snappet
    purpose  leermiddelen
    basis    public_task("Wet op het primair onderwijs, art. 8")
    fields   leerling.{roepnaam, leerjaar}, leerling.id as pseudonym
    students where school == "12AB" and (leerjaar in 3..8 or "plusklas" in lesgroepen)
}

permit website_fotos {
    partner  website
    purpose  publicatie
    basis    consent(beeldmateriaal)
    fields   leerling.foto
}

forbid niets_na_uitschrijving {
    partner  *
    fields   leerling.*
    students where actief == false
}
"""

TESTS = """
test groep_5_ziet_roepnaam {
    at       2025-10-01
    partner  snappet
    purpose  leermiddelen
    student  { school: "12AB", leerjaar: 5, actief: true, lesgroepen: ["5B"] }
    expect allow leerling.roepnaam, leerling.leerjaar
    expect deny  leerling.achternaam because no_permit
}

test uitgeschreven {
    at       2025-10-01T14:30
    partner  snappet
    purpose  leermiddelen
    student  { school: "12AB", leerjaar: 5, actief: false }
    expect deny  leerling.roepnaam because forbidden
}

test verkeerde_verwachting {
    at       2025-10-01
    partner  snappet
    purpose  leermiddelen
    student  { school: "12AB", leerjaar: 5, actief: true }
    expect allow leerling.achternaam
}

test verkeerde_reden {
    at       2025-10-01
    partner  snappet
    purpose  leermiddelen
    student  { school: "12AB", leerjaar: 1, actief: true, lesgroepen: ["1A"] }
    expect deny  leerling.roepnaam because no_consent
}
"""


POLICY = avgpolicy.loads({"catalogue.avg": CATALOGUE, "tests/snappet.avg": TESTS})


@pytest.fixture(scope="module")
def policy() -> avgpolicy.Policy:
    return POLICY


def test_request_for_builds_the_decide_arguments(policy: avgpolicy.Policy) -> None:
    test = next(t for t in policy.model.tests if t.name.value == "groep_5_ziet_roepnaam")
    request = request_for(test, policy)
    assert {"partner": "snappet", "purpose": "leermiddelen",
            "fields": ["leerling.roepnaam", "leerling.leerjaar", "leerling.achternaam"],
            "student": {"school": "12AB", "leerjaar": 5, "actief": True, "lesgroepen": frozenset({"5B"})},
            "at": datetime.datetime(2025, 10, 1, 0, 0)} == request


def test_request_for_expands_star_and_collects_consents() -> None:
    policy = avgpolicy.loads({"catalogue.avg": CATALOGUE, "t.avg": """
test foto {
    at       2026-01-15T08:15
    partner  website
    purpose  publicatie
    student  { geboortedatum: 2012-05-01 }
    consent  beeldmateriaal by parent on 2025-09-01 withdrawn 2026-01-01
    expect allow toets.*, leerling.foto
}"""})
    request = request_for(policy.model.tests[0], policy)
    assert ["toets.resultaat", "leerling.foto"] == request["fields"]
    assert datetime.datetime(2026, 1, 15, 8, 15) == request["at"]
    assert {"geboortedatum": datetime.date(2012, 5, 1),
            "consents": {"beeldmateriaal": Consent(by="parent", given=datetime.date(2025, 9, 1),
                                                   withdrawn=datetime.date(2026, 1, 1))}} == request["student"]


def test_run_reports_pass_fail_and_location(policy: avgpolicy.Policy) -> None:
    report = run(policy)
    assert ["groep_5_ziet_roepnaam", "uitgeschreven", "verkeerde_reden", "verkeerde_verwachting"] == \
        sorted(r.name for r in report.results)
    assert report["groep_5_ziet_roepnaam"].passed
    assert report["uitgeschreven"].passed
    assert not report.passed
    assert {"verkeerde_reden", "verkeerde_verwachting"} == {r.name for r in report.failures}
    wrong = report["verkeerde_verwachting"]
    assert ("tests/snappet.avg", 19) == wrong.location
    [failure] = wrong.failures
    assert "leerling.achternaam" == failure.field
    assert failure.expected_allow and failure.actual_allow is False
    assert "no_permit" in failure.codes
    text = wrong.describe_failure()
    assert "tests/snappet.avg:19" in text
    assert "expected allow, got deny (no_permit" in text


def test_deny_because_needs_that_code_among_the_fields_reasons(policy: avgpolicy.Policy) -> None:
    result = run(policy, tests=["verkeerde_reden"]).results[0]
    [failure] = result.failures
    assert "deny because no_consent" == failure.expected_text()
    assert failure.actual_allow is False          # denied, but for another reason
    assert "not_in_subset" in failure.codes
    assert "no_consent" not in failure.codes


def test_coverage_lists_rules_no_test_exercised(policy: avgpolicy.Policy) -> None:
    report = run(policy)
    assert {"snappet_lesmateriaal", "niets_na_uitschrijving"} <= report.exercised
    assert ("website_fotos",) == report.untested
    assert pytest.approx(2 / 3) == report.coverage
    data = report.to_dict()
    assert ["website_fotos"] == data["coverage"]["untested"]
    assert 2 == sum(not t["passed"] for t in data["tests"])


def test_a_test_without_partner_fails_with_an_error(policy: avgpolicy.Policy) -> None:
    # the checker rejects such a test in a .avg file; run_test still fails it cleanly
    test = attrs.evolve(policy.model.tests[0], partner=None)
    result, exercised = run_test(policy, test)
    assert (False, set()) == (result.passed, exercised)
    assert result.error is not None and "partner" in result.error
    assert "error: the test names no partner" in result.describe_failure()


def test_bundled_policies_pass_their_own_tests() -> None:
    report = run(avgpolicy.load(ROOT / "policies"))
    assert [] == [r.describe_failure() for r in report.failures]
    assert len(report.results) >= 10


def test_assert_allowed_returns_the_decision(policy: avgpolicy.Policy) -> None:
    decision = assert_allowed(policy, partner="snappet", purpose="leermiddelen", fields=["leerling.roepnaam"],
                              student={"school": "12AB", "leerjaar": 4, "actief": True},
                              at=datetime.date(2025, 10, 1))
    assert decision.allowed


def test_assert_allowed_fails_with_the_explanation(policy: avgpolicy.Policy) -> None:
    with pytest.raises(AssertionError) as info:
        assert_allowed(policy, partner="snappet", purpose="leermiddelen", fields=["leerling.bsn"],
                       student={"school": "12AB", "leerjaar": 4, "actief": True}, at=datetime.date(2025, 10, 1))
    assert "leerling.bsn" in str(info.value)
    assert "no_permit" in str(info.value)


def test_assert_denied(policy: avgpolicy.Policy) -> None:
    request = {"partner": "snappet", "purpose": "leermiddelen", "fields": ["leerling.roepnaam"],
               "student": {"school": "12AB", "leerjaar": 4, "actief": False}, "at": datetime.date(2025, 10, 1)}
    assert not assert_denied(policy, **request).allowed
    assert_denied(policy, because="forbidden", **request)
    with pytest.raises(AssertionError, match="expected deny because no_consent"):
        assert_denied(policy, because="no_consent", **request)
    with pytest.raises(ValueError, match="not a reason code"):
        assert_denied(policy, because="verboden", **request)
    with pytest.raises(AssertionError, match="expected deny, but allowed"):
        assert_denied(policy, **{**request, "student": {"school": "12AB", "leerjaar": 4, "actief": True}})


def test_testing_imports_without_hypothesis() -> None:
    code = ("import sys; sys.modules['hypothesis'] = None\n"
            "import avgpolicy.testing as t\n"
            "assert 'hypothesis' not in [m for m in sys.modules if sys.modules[m] is not None]\n"
            "print(t.run.__name__)")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False)
    assert (0, "run") == (done.returncode, done.stdout.strip()), done.stderr


# ---------------------------------------------------------------------------
# strategies

_TYPES = {"text": str, "int": int, "bool": bool, "date": datetime.date, "set": frozenset}


@given(student=avgst.students(POLICY))
def test_students_are_complete_and_well_typed(student: dict[str, object]) -> None:
    policy = POLICY
    subject = policy.model.catalogue.subject_fields
    assert set(subject) <= set(student)
    for name, info in subject.items():
        assert _TYPES[info.type] is type(student[name]), name
    for topic, consent in student.get("consents", {}).items():
        assert topic in policy.model.consents
        assert isinstance(consent, Consent)


@settings(max_examples=60)  # each new field list compiles a function: keep the run short
@given(request=avgst.requests(POLICY, bad_values=True))
def test_requests_decide_without_raising(request: dict[str, Any]) -> None:
    decision = POLICY.decide(**request)
    assert list(request["fields"]) == list(decision.fields)
    for fd in decision.fields.values():
        if fd.allowed:
            assert "permitted" == fd.reasons[0].code
    if request["student"].get("actief") is not True:
        # forbid niets_na_uitschrijving holds when `actief` is false *or unknown*: no leerling field passes
        assert [] == [f for f, fd in decision.fields.items() if fd.allowed and f.startswith("leerling.")]


def test_students_hit_condition_values(policy: avgpolicy.Policy) -> None:
    seen: set[object] = set()

    @settings(max_examples=50)
    @given(avgst.students(policy))
    def collect(student: dict[str, object]) -> None:
        seen.add(student["school"])

    collect()
    assert "12AB" in seen  # drawn from the rules' conditions, not left to chance


@given(at=avgst.moments(POLICY))
def test_moments_are_dates_or_datetimes(at: datetime.date) -> None:
    assert isinstance(at, datetime.date)
    if isinstance(at, datetime.datetime) and at.tzinfo is not None:
        assert POLICY.zone == at.tzinfo


def test_expect_allow_because_checks_the_reason_code_too():
    text = """
dataset leerling subject {
    id            text personal
    foto          text personal
    geboortedatum date personal
}
partner website { role controller }
purpose publicatie
consent beeldmateriaal
permit foto_op_website {
    partner website
    purpose publicatie
    basis   consent(beeldmateriaal)
    fields  leerling.foto
}
test ouder_gaf_toestemming_voor_16 {
    at       2026-01-15
    partner  website
    purpose  publicatie
    student  { geboortedatum: 2009-05-01 }
    consent  beeldmateriaal by parent on 2024-09-01
    expect allow leerling.foto because inform_student
}
test geen_inform_student_onder_16 {
    at       2026-01-15
    partner  website
    purpose  publicatie
    student  { geboortedatum: 2012-05-01 }
    consent  beeldmateriaal by parent on 2025-09-01
    expect allow leerling.foto because inform_student
}
"""
    report = avgpolicy.testing.run(avgpolicy.loads(text))
    by_name = {r.name: r.passed for r in report.results}
    assert {"ouder_gaf_toestemming_voor_16": True, "geen_inform_student_onder_16": False} == by_name
