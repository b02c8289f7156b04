"""Policy.decide: every reason code, every clause, the examples of spec sections 4/6 and api.md.

Every semantic test runs on both engines (compiled and the reference interpreter).
"""

from __future__ import annotations

import datetime as dt
import json

import pytest
from engine_strategies import SCHOOL, SCHOOL_V2

import avgpolicy
from avgpolicy import Consent, Decision, FieldDecision, Reason
from avgpolicy.decision import Location
from avgpolicy.model import REASON_CODES

D = dt.date
ENGINES = ["compiled", "interpreted"]
OCT = D(2025, 10, 1)
GROEP5 = {"id": "s1", "eckid": "eck-1", "roepnaam": "Sanne", "school": "12AB", "leerjaar": 5,
          "geboortedatum": D(2016, 3, 1), "lesgroepen": ["5a"], "bsn": "123456782"}


@pytest.fixture(scope="module")
def policy() -> avgpolicy.Policy:
    return avgpolicy.loads({"school.avg": SCHOOL}, pseudonym_key=b"test-key")


def line_of(start: str) -> int:
    """The 1-based line of SCHOOL that starts with ``start`` (where a rule is written)."""
    return next(i for i, line in enumerate(SCHOOL.splitlines(), 1) if line.startswith(start))


def codes(d: Decision, field: str | None = None) -> list[str]:
    reasons = d.reasons if field is None else d.fields[field].reasons
    return [r.code for r in reasons]


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest) -> str:
    return request.param


# -- spec section 6 and api.md examples ------------------------------------------------

def test_spec_example_snappet_ziet_groep_5(policy, engine):
    student = {"school": "12AB", "leerjaar": 5, "geboortedatum": D(2016, 3, 1)}
    d = policy.decide("snappet", "leermiddelen", ["leerling.roepnaam", "leerling.eckid", "leerling.bsn"],
                      student, at=OCT, engine=engine)
    assert d.fields["leerling.roepnaam"].allowed
    assert d.fields["leerling.eckid"].allowed
    assert not d.fields["leerling.bsn"].allowed
    assert ["no_permit"] == codes(d, "leerling.bsn")
    assert not d.allowed and not bool(d)


def test_spec_example_foto_met_toestemming(policy, engine):
    student = {"geboortedatum": D(2012, 5, 1),
               "consents": {"beeldmateriaal": Consent(by="parent", given=D(2025, 9, 1))}}
    d = policy.decide("schoolwebsite", "publicatie", ["leerling.foto"], student, at=D(2026, 1, 15), engine=engine)
    assert d.allowed
    assert ["permitted"] == codes(d)


def test_api_example(policy, engine):
    student = {"id": "s1", "school": "12AB", "leerjaar": 5, "geboortedatum": D(2016, 3, 1),
               "consents": {"beeldmateriaal": avgpolicy.Consent(by="parent", given=D(2025, 9, 1))}}
    d = policy.decide(partner="snappet", purpose="leermiddelen", fields=["leerling.roepnaam", "leerling.bsn"],
                      student=student, at=OCT, engine=engine)
    assert not d.allowed
    assert isinstance(d.fields["leerling.bsn"], FieldDecision)
    assert all(isinstance(r, Reason) for r in d.reasons)
    assert policy.version == d.policy_version
    assert ("snappet", "leermiddelen") == (d.partner, d.purpose)
    fd = d.fields["leerling.roepnaam"]
    assert (True, "snappet_lesmateriaal", "contract", None, "1 year") == (
        fd.allowed, fd.rule, fd.basis, fd.transform, fd.retain)
    assert Location("school.avg", line_of("permit snappet_lesmateriaal")) == fd.reasons[0].location
    text = d.explain()
    assert "leerling.roepnaam: allowed by snappet_lesmateriaal" in text
    assert "leerling.bsn: denied" in text
    assert f"school.avg:{line_of('permit snappet_lesmateriaal')}" in text


# -- every reason code -----------------------------------------------------------------

def test_permitted_names_rule_basis_transform_retain_and_note(policy, engine):
    d = policy.decide("snappet", "leermiddelen", ["leerling.id"], GROEP5, at=OCT, engine=engine)
    fd = d.fields["leerling.id"]
    assert ("pseudonym", "snappet_lesmateriaal") == (fd.transform, fd.rule)
    (reason,) = fd.reasons
    assert ("permitted", "leerling.id", "snappet_lesmateriaal") == (reason.code, reason.field, reason.rule)
    assert "Alleen groepen 3 t/m 8" in reason.message and "retain 1 year" in reason.message


def test_agreement_inactive(policy, engine):
    d = policy.decide("snappet", "leermiddelen", ["leerling.roepnaam", "leerling.bsn"], GROEP5,
                      at=D(2026, 8, 1), engine=engine)
    assert ["agreement_inactive", "agreement_inactive"] == codes(d)


def test_forbidden_wins_over_permit(policy, engine):
    d = policy.decide("snappet", "leermiddelen", ["leerling.zorgnotitie"], GROEP5, at=OCT, engine=engine)
    assert ["forbidden"] == codes(d)
    assert "geen_zorgdata_buiten_dus_i" == d.reasons[0].rule
    # the excepted partner is not forbidden and has a permit
    d = policy.decide("dus-i", "bekostiging", ["leerling.zorgnotitie"], {**GROEP5, "onderwijstype": "po"},
                      at=OCT, engine=engine)
    assert d.allowed
    assert "legal_obligation" == d.fields["leerling.zorgnotitie"].basis


def test_forbid_without_purpose_applies_to_every_purpose(policy, engine):
    for purpose in ("leermiddelen", "publicatie", "onderzoek"):
        d = policy.decide("uni", purpose, ["absentie.reden"], GROEP5, at=OCT, engine=engine)
        assert ["forbidden"] == codes(d)


def test_no_permit(policy, engine):
    d = policy.decide("snappet", "leermiddelen", ["leerling.bsn"], GROEP5, at=OCT, engine=engine)
    assert ["no_permit"] == codes(d)
    assert d.reasons[0].rule is None and d.reasons[0].location is None


def test_outside_window(policy, engine):
    student = {**GROEP5, "actief": True}
    d = policy.decide("snappet", "leermiddelen", ["leerling.achternaam"], student, at=D(2025, 8, 31), engine=engine)
    assert ["outside_window"] == codes(d)
    assert "from 2025-09-01 until 2026-06-30" in d.reasons[0].message
    d = policy.decide("snappet", "leermiddelen", ["leerling.achternaam"], student, at=D(2025, 9, 1), engine=engine)
    assert ["permitted"] == codes(d)


def test_not_in_subset_quotes_the_condition_not_the_value(policy, engine):
    student = {**GROEP5, "school": "99ZZ"}
    d = policy.decide("snappet", "leermiddelen", ["leerling.roepnaam"], student, at=OCT, engine=engine)
    assert ["not_in_subset"] == codes(d)
    message = d.reasons[0].message
    assert '`school == "12AB"`' in message
    assert "99ZZ" not in message
    d = policy.decide("snappet", "leermiddelen", ["leerling.roepnaam"], {**GROEP5, "leerjaar": 9}, at=OCT,
                      engine=engine)
    assert "`leerjaar in 3..8`" in d.reasons[0].message


def test_not_in_subset_of_an_or_quotes_the_whole_or(policy, engine):
    student = {**GROEP5, "lesgroepen": ["5a"], "actief": False}
    d = policy.decide("snappet", "leermiddelen", ["leerling.achternaam"], student, at=OCT, engine=engine)
    assert ["not_in_subset"] == codes(d)
    assert '`"plusklas" in lesgroepen or actief == true`' in d.reasons[0].message


def test_missing_attribute_names_the_field(policy, engine):
    student = {k: v for k, v in GROEP5.items() if k != "leerjaar"}
    d = policy.decide("snappet", "leermiddelen", ["leerling.roepnaam"], student, at=OCT, engine=engine)
    assert ["missing_attribute"] == codes(d)
    assert "leerjaar" in d.reasons[0].message
    assert "snappet_lesmateriaal" == d.reasons[0].rule


def test_missing_attribute_that_does_not_decide_is_not_reported(policy, engine):
    # "plusklas" in lesgroepen is true, actief is missing: true or unknown is true
    student = {**GROEP5, "lesgroepen": {"plusklas"}}
    d = policy.decide("snappet", "leermiddelen", ["leerling.achternaam"], student, at=OCT, engine=engine)
    assert ["permitted"] == codes(d)
    # false and unknown is false: not_in_subset, not missing_attribute
    student = {"school": "99ZZ"}
    d = policy.decide("snappet", "leermiddelen", ["leerling.roepnaam"], student, at=OCT, engine=engine)
    assert ["not_in_subset"] == codes(d)


def test_forbid_applies_when_its_condition_is_unknown(policy, engine):
    student = {"roepnaam": "Ali"}  # no leerjaar: the forbid cannot rule it out
    d = policy.decide("gappy", "leermiddelen", ["leerling.roepnaam"], student, at=D(2025, 10, 1), engine=engine)
    assert ["forbidden", "missing_attribute"] == codes(d)
    assert "leerjaar" in d.reasons[1].message
    assert {"gappy_geen_onderbouw"} == {r.rule for r in d.reasons}
    d = policy.decide("gappy", "leermiddelen", ["leerling.roepnaam"], {"leerjaar": 1}, at=OCT, engine=engine)
    assert ["forbidden"] == codes(d)
    d = policy.decide("gappy", "leermiddelen", ["leerling.roepnaam"], {"leerjaar": 4}, at=OCT, engine=engine)
    assert ["permitted"] == codes(d)


def test_no_consent(policy, engine):
    d = policy.decide("schoolwebsite", "publicatie", ["leerling.foto"], {"geboortedatum": D(2012, 5, 1)},
                      at=OCT, engine=engine)
    assert ["no_consent"] == codes(d)
    assert "no consent" in d.reasons[0].message and "beeldmateriaal" in d.reasons[0].message


def test_inform_student(policy, engine):
    student = {"geboortedatum": D(2009, 5, 1),
               "consents": {"beeldmateriaal": Consent(by="parent", given=D(2024, 9, 1))}}
    d = policy.decide("schoolwebsite", "publicatie", ["leerling.foto"], student, at=D(2025, 5, 1), engine=engine)
    assert d.allowed
    assert ["permitted", "inform_student"] == codes(d)


def test_unknown_partner_purpose_field_combine(policy, engine):
    d = policy.decide("nobody", "nothing", ["leerling.nope", "leerling.roepnaam"], GROEP5, at=OCT, engine=engine)
    assert ["unknown_partner", "unknown_purpose", "unknown_field"] == codes(d, "leerling.nope")
    assert ["unknown_partner", "unknown_purpose"] == codes(d, "leerling.roepnaam")
    d = policy.decide("snappet", "leermiddelen", ["nope"], GROEP5, at=OCT, engine=engine)
    assert ["unknown_field"] == codes(d)


def test_every_reason_code_is_a_spec_code(policy, engine):
    seen = set()
    requests = [
        ("snappet", "leermiddelen", ["leerling.roepnaam", "leerling.bsn", "leerling.zorgnotitie", "x.y"], GROEP5, OCT),
        ("snappet", "leermiddelen", ["leerling.roepnaam"], GROEP5, D(2026, 8, 1)),
        ("snappet", "leermiddelen", ["leerling.achternaam"], {"actief": False}, D(2025, 8, 2)),
        ("snappet", "leermiddelen", ["leerling.roepnaam"], {"school": "x", "leerjaar": 4}, OCT),
        ("snappet", "leermiddelen", ["leerling.roepnaam"], {"school": "12AB"}, OCT),
        ("schoolwebsite", "publicatie", ["leerling.foto"], {}, OCT),
        ("schoolwebsite", "publicatie", ["leerling.foto"], {"geboortedatum": D(2009, 1, 1), "consents": {
            "beeldmateriaal": {"by": "parent", "given": D(2024, 1, 1)}}}, OCT),
        ("x", "y", ["leerling.roepnaam"], {}, OCT),
        ("snappet", "leermiddelen", ["leerling.achternaam"], {"school": "x"}, D(2025, 9, 1)),
    ]
    for partner, purpose, fields, student, at in requests:
        seen.update(codes(policy.decide(partner, purpose, fields, student, at=at, engine=engine)))
    v2 = avgpolicy.loads(SCHOOL_V2)
    seen.update(codes(v2.decide("snappet", "leermiddelen", ["leerling.achternaam"], {}, at=OCT, engine=engine)))
    seen.update(codes(v2.decide("snappet", "leermiddelen", ["leerling.id"], {"uitschrijfdatum": D(2025, 1, 1)},
                                at=OCT, engine=engine)))
    assert set(REASON_CODES) == seen


# -- bad calls and bad data ------------------------------------------------------------

@pytest.mark.parametrize("fields", ["leerling.roepnaam", [1], None, [b"x"], {"leerling.roepnaam"}])
def test_fields_must_be_a_list_of_str(policy, fields):
    with pytest.raises(TypeError):
        policy.decide("snappet", "leermiddelen", fields, GROEP5, at=OCT)
    with pytest.raises(TypeError):
        policy.compile("snappet", "leermiddelen", fields)


def test_empty_fields_partner_type_engine_and_at_are_checked(policy):
    with pytest.raises(ValueError):
        policy.decide("snappet", "leermiddelen", [], GROEP5, at=OCT)
    with pytest.raises(TypeError):
        policy.decide(None, "leermiddelen", ["leerling.roepnaam"], GROEP5, at=OCT)
    with pytest.raises(TypeError):
        policy.decide("snappet", 5, ["leerling.roepnaam"], GROEP5, at=OCT)
    with pytest.raises(ValueError):
        policy.decide("snappet", "leermiddelen", ["leerling.roepnaam"], GROEP5, at=OCT, engine="jit")
    for engine in ENGINES:
        for at in ("2025-10-01", 20251001, 1.5):
            with pytest.raises(TypeError):
                policy.decide("snappet", "leermiddelen", ["leerling.roepnaam"], GROEP5, at=at, engine=engine)


@pytest.mark.parametrize("student", [None, "student", 5, ["school"], object()])
def test_student_not_a_mapping_is_denied_with_missing_attribute(policy, engine, student):
    d = policy.decide("snappet", "leermiddelen", ["leerling.roepnaam", "leerling.bsn"], student, at=OCT,
                      engine=engine)
    assert ["missing_attribute", "missing_attribute"] == codes(d)
    assert "not a mapping" in d.reasons[0].message


def test_decision_to_dict_is_json_and_stable(policy, engine):
    d = policy.decide("snappet", "leermiddelen", ["leerling.roepnaam", "leerling.bsn"], GROEP5, at=OCT,
                      engine=engine)
    data = d.to_dict()
    assert data == json.loads(json.dumps(data))
    assert ["allowed", "policy_version", "partner", "purpose", "fields", "reasons"] == list(data)
    assert {"code": "no_permit", "field": "leerling.bsn", "rule": None, "location": None} == {
        k: v for k, v in data["reasons"][1].items() if k != "message"}
    location = data["fields"]["leerling.roepnaam"]["reasons"][0]["location"]
    assert {"file": "school.avg", "line": line_of("permit snappet_lesmateriaal")} == location


def test_duplicate_requested_fields_are_decided_once(policy, engine):
    d = policy.decide("snappet", "leermiddelen", ["leerling.roepnaam", "leerling.roepnaam"], GROEP5, at=OCT,
                      engine=engine)
    assert ["leerling.roepnaam"] == list(d.fields)
    assert ["permitted"] == codes(d)


def test_decision_is_frozen(policy):
    d = policy.decide("snappet", "leermiddelen", ["leerling.roepnaam"], GROEP5, at=OCT)
    with pytest.raises(AttributeError):
        d.allowed = False  # type: ignore[misc]
    with pytest.raises(TypeError):
        d.fields["x"] = None  # type: ignore[index]


STAR = """
dataset leerling "L" subject {
    naam text personal
    klas text personal
}
dataset absentie "A" {
    datum date personal
    reden text sensitive
}
partner p "P" { role controller }
purpose u "U"
purpose v "V"
permit alles { partner * purpose u basis public_task("WPO, art. 1") fields leerling.*, absentie.datum
                students where klas == "3a" }
forbid geen_reden { partner p purpose * except v fields absentie.* }
"""


def test_star_fields_and_except_selectors(engine):
    policy = avgpolicy.loads(STAR)
    student = {"naam": "A", "klas": "3a"}
    d = policy.decide("p", "u", ["leerling.naam", "leerling.klas", "absentie.datum", "absentie.reden"], student,
                      at=OCT, engine=engine)
    assert {"leerling.naam": ["permitted"], "leerling.klas": ["permitted"], "absentie.datum": ["forbidden"],
            "absentie.reden": ["forbidden"]} == {f: codes(d, f) for f in d.fields}
    d = policy.decide("p", "v", ["absentie.datum", "absentie.reden"], student, at=OCT, engine=engine)
    assert ["no_permit", "no_permit"] == codes(d)  # purpose v: excepted from the forbid, no permit either
