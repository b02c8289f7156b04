"""Consent (spec section 4): who may give it when, withdrawal, the 16th birthday, reconfirm_at_16, bad entries."""

from __future__ import annotations

import datetime as dt

import pytest
from engine_strategies import SCHOOL

import avgpolicy
from avgpolicy import Consent
from avgpolicy import runtime as rt

D = dt.date
BIRTH = D(2010, 6, 15)          # 16th birthday: 2026-06-15
SIXTEEN = D(2026, 6, 15)


@pytest.fixture(scope="module")
def policy() -> avgpolicy.Policy:
    return avgpolicy.loads(SCHOOL)


@pytest.fixture(params=["compiled", "interpreted"])
def engine(request: pytest.FixtureRequest) -> str:
    return request.param


def photo(policy, engine, consent, at, birth=BIRTH):
    student = {"consents": {"beeldmateriaal": consent}}
    if birth is not None:
        student["geboortedatum"] = birth
    return policy.decide("schoolwebsite", "publicatie", ["leerling.foto"], student, at=at, engine=engine)


def research(policy, engine, consent, at, birth=BIRTH):
    student = {"geboortedatum": birth, "consents": {"onderzoek": consent}}
    return policy.decide("uni", "onderzoek", ["leerling.eckid"], student, at=at, engine=engine)


def codes(d) -> list[str]:
    return [r.code for r in d.reasons]


def test_parent_consent_before_16_is_valid(policy, engine):
    d = photo(policy, engine, Consent(by="parent", given=D(2025, 9, 1)), D(2025, 9, 1))
    assert ["permitted"] == codes(d)


def test_consent_counts_from_the_day_it_is_given(policy, engine):
    d = photo(policy, engine, Consent(by="parent", given=D(2025, 9, 2)), D(2025, 9, 1))
    assert ["no_consent"] == codes(d)
    assert "only after this day" in d.reasons[0].message


def test_consent_withdrawn_on_the_decision_day_is_not_valid(policy, engine):
    consent = Consent(by="parent", given=D(2025, 9, 1), withdrawn=D(2025, 11, 1))
    assert ["permitted"] == codes(photo(policy, engine, consent, D(2025, 10, 31)))
    d = photo(policy, engine, consent, D(2025, 11, 1))
    assert ["no_consent"] == codes(d)
    assert "withdrawn" in d.reasons[0].message
    d = photo(policy, engine, consent, dt.datetime(2025, 11, 1, 0, 0))
    assert ["no_consent"] == codes(d)


def test_parent_consent_given_before_16_stays_valid_with_inform_student(policy, engine):
    consent = Consent(by="parent", given=D(2026, 6, 14))
    assert ["permitted"] == codes(photo(policy, engine, consent, D(2026, 6, 14)))
    d = photo(policy, engine, consent, SIXTEEN)
    assert d.allowed
    assert ["permitted", "inform_student"] == codes(d)
    assert "inform the student" in d.reasons[1].message


def test_parent_consent_given_on_the_16th_birthday_is_the_wrong_party(policy, engine):
    d = photo(policy, engine, Consent(by="parent", given=SIXTEEN), D(2026, 7, 1))
    assert ["no_consent"] == codes(d)
    assert "wrong party" in d.reasons[0].message and "parent" in d.reasons[0].message


def test_student_consent_before_16_is_the_wrong_party_and_from_16_valid(policy, engine):
    d = photo(policy, engine, Consent(by="student", given=D(2026, 6, 14)), D(2026, 7, 1))
    assert ["no_consent"] == codes(d)
    assert "wrong party" in d.reasons[0].message and "student" in d.reasons[0].message
    d = photo(policy, engine, Consent(by="student", given=SIXTEEN), SIXTEEN)
    assert ["permitted"] == codes(d)


def test_reconfirm_at_16_parental_consent_stops_on_the_16th_birthday(policy, engine):
    consent = Consent(by="parent", given=D(2024, 1, 10))
    assert ["permitted"] == codes(research(policy, engine, consent, D(2026, 6, 14)))
    d = research(policy, engine, consent, SIXTEEN)
    assert ["no_consent"] == codes(d)
    assert "reconfirmation at 16" in d.reasons[0].message
    d = research(policy, engine, Consent(by="student", given=SIXTEEN), SIXTEEN)
    assert ["permitted"] == codes(d)


def test_birth_date_missing_means_the_entitled_party_is_unknown(policy, engine):
    for birth in (None, "2010-06-15", 20100615):  # (a datetime birth date is read as its date: test_coercion.py)
        d = photo(policy, engine, Consent(by="parent", given=D(2025, 9, 1)), D(2025, 10, 1), birth=birth)
        assert ["no_consent"] == codes(d)
        assert "birth date" in d.reasons[0].message


def test_no_consent_at_all(policy, engine):
    for consents in (None, {}, {"other": Consent(by="parent", given=D(2025, 9, 1))}):
        student = {"geboortedatum": BIRTH, "consents": consents}
        d = policy.decide("schoolwebsite", "publicatie", ["leerling.foto"], student, at=D(2025, 10, 1), engine=engine)
        assert ["no_consent"] == codes(d)
        assert "no consent" in d.reasons[0].message


def test_consent_as_a_mapping(policy, engine):
    d = photo(policy, engine, {"by": "parent", "given": D(2025, 9, 1)}, D(2025, 10, 1))
    assert ["permitted"] == codes(d)
    d = photo(policy, engine, {"by": "parent", "given": D(2025, 9, 1), "withdrawn": D(2025, 9, 30)}, D(2025, 10, 1))
    assert ["no_consent"] == codes(d)


@pytest.mark.parametrize("entry", [
    1, "yes", ["parent"], {"by": "uncle", "given": D(2025, 9, 1)}, {"by": "parent"},
    {"by": "parent", "given": "1-9-2025"}, {"by": "parent", "given": 20250901},
    {"by": "parent", "given": D(2025, 9, 1), "withdrawn": "never"}, {"by": b"parent", "given": D(2025, 9, 1)},
])  # (ISO date strings and datetimes are read as dates: test_coercion.py)
def test_ill_typed_consent_entries_deny_with_a_reason(policy, engine, entry):
    d = photo(policy, engine, entry, D(2025, 10, 1))
    assert ["no_consent"] == codes(d)
    assert "is not a Consent" in d.reasons[0].message


@pytest.mark.parametrize("consents", ["all", ["beeldmateriaal"], 5])
def test_ill_typed_consents_mapping_denies(policy, engine, consents):
    student = {"geboortedatum": BIRTH, "consents": consents}
    d = policy.decide("schoolwebsite", "publicatie", ["leerling.foto"], student, at=D(2025, 10, 1), engine=engine)
    assert ["no_consent"] == codes(d)


def test_consent_type_checks_its_arguments():
    with pytest.raises(ValueError):
        Consent(by="uncle", given=D(2025, 1, 1))
    with pytest.raises(TypeError):
        Consent(by="parent", given="2025-01-01")
    with pytest.raises(TypeError):
        Consent(by="parent", given=dt.datetime(2025, 1, 1))
    with pytest.raises(TypeError):
        Consent(by="parent", given=D(2025, 1, 1), withdrawn="never")
    assert {"by": "parent", "given": "2025-01-01", "withdrawn": None} == Consent(
        by="parent", given=D(2025, 1, 1)).to_dict()


def test_29_february_birthday_turns_16_on_1_march_in_a_common_year():
    birth = D(1884, 2, 29)  # 1900 is not a leap year: the 16th birthday counts from 1 March 1900

    def status(by: str, given: D, day: D, reconfirm: bool = False) -> int:
        record = {"geboortedatum": birth, "consents": {"t": Consent(by=by, given=given)}}
        return rt.consent_status(record, "t", reconfirm, day)

    assert rt.CONSENT_OK == status("parent", D(1900, 2, 28), D(1900, 2, 28))
    assert rt.CONSENT_INFORM == status("parent", D(1900, 2, 28), D(1900, 3, 1))
    assert rt.CONSENT_RECONFIRM == status("parent", D(1900, 2, 28), D(1900, 3, 1), reconfirm=True)
    assert rt.CONSENT_PARENT_AFTER_16 == status("parent", D(1900, 3, 1), D(1900, 3, 1))
    assert rt.CONSENT_STUDENT_BEFORE_16 == status("student", D(1900, 2, 28), D(1900, 3, 5))
    assert rt.CONSENT_OK == status("student", D(1900, 3, 1), D(1900, 3, 5))
    # in a leap year the birthday is 29 February itself
    assert rt.CONSENT_INFORM == rt.consent_status(
        {"geboortedatum": D(2012, 2, 29), "consents": {"t": Consent(by="parent", given=D(2028, 2, 28))}},
        "t", False, D(2028, 2, 29))
