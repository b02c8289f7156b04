"""Policy.filter: only permitted fields, transforms (keyed pseudonyms, years), and the pseudonym key rules."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac

import pytest
from engine_strategies import SCHOOL

import avgpolicy
from avgpolicy import Consent
from avgpolicy.pseudonym import Pseudonymizer

D = dt.date
OCT = D(2025, 10, 1)
KEY = b"secret-key-for-filter-tests"
FIELDS = ["leerling.roepnaam", "leerling.id", "leerling.bsn"]


@pytest.fixture(scope="module")
def policy() -> avgpolicy.Policy:
    return avgpolicy.loads(SCHOOL, pseudonym_key=KEY)


def student(**extra):
    return {"id": "s1", "roepnaam": "Sanne", "school": "12AB", "leerjaar": 5, "bsn": "123456782", **extra}


def test_filter_yields_permitted_fields_with_transforms(policy):
    rows = list(policy.filter("snappet", "leermiddelen", FIELDS, [student()], at=OCT))
    assert 1 == len(rows)
    row = rows[0]
    assert ["leerling.roepnaam", "leerling.id"] == list(row)
    assert "Sanne" == row["leerling.roepnaam"]
    assert row["leerling.id"] != "s1" and 64 == len(row["leerling.id"])
    assert "leerling.bsn" not in row


def test_students_without_permitted_fields_are_skipped(policy):
    students = [student(school="99ZZ"), student(), None, "x", {}]
    rows = list(policy.filter("snappet", "leermiddelen", FIELDS, students, at=OCT))
    assert [{"leerling.roepnaam", "leerling.id"}] == [set(r) for r in rows]


def test_missing_or_ill_typed_values_are_left_out(policy):
    rows = list(policy.filter("snappet", "leermiddelen", ["leerling.roepnaam", "leerling.id", "leerling.eckid"],
                              [student(roepnaam=None, id=5)], at=OCT))
    assert [] == rows  # roepnaam None, id an int (ill-typed), eckid missing: nothing to send
    rows = list(policy.filter("snappet", "leermiddelen", ["leerling.roepnaam", "leerling.eckid"],
                              [student(eckid="eck-1", roepnaam=7)], at=OCT))
    assert [{"leerling.eckid": "eck-1"}] == rows


def test_pseudonyms_are_stable_per_partner_and_differ_between_partners(policy):
    other = avgpolicy.loads(SCHOOL.replace("partner  snappet\n", "partner  snappet, gappy\n"), pseudonym_key=KEY)
    a1 = next(other.filter("snappet", "leermiddelen", ["leerling.id"], [student()], at=OCT))["leerling.id"]
    a2 = next(other.filter("snappet", "leermiddelen", ["leerling.id"], [student()], at=OCT))["leerling.id"]
    b = next(other.filter("gappy", "leermiddelen", ["leerling.id"], [{**student(), "leerjaar": 4}],
                          at=OCT))["leerling.id"]
    assert a1 == a2
    assert a1 != b
    expected = hmac.new(KEY, b"avgpolicy-pseudonym-v1\x00snappet\x00leerling.id\x00s:s1", hashlib.sha256).hexdigest()
    assert expected == a1
    c = next(other.filter("snappet", "leermiddelen", ["leerling.id"], [student(id="s2")], at=OCT))["leerling.id"]
    assert a1 != c


def test_as_year(policy):
    s = {"geboortedatum": D(2012, 5, 1), "foto": "f.jpg",
         "consents": {"beeldmateriaal": Consent(by="parent", given=D(2025, 9, 1))}}
    rows = list(policy.filter("schoolwebsite", "publicatie", ["leerling.foto", "leerling.geboortedatum"], [s],
                              at=OCT))
    assert [{"leerling.foto": "f.jpg", "leerling.geboortedatum": 2012}] == rows
    s["geboortedatum"] = "2012-05-01"  # a str is not a date: consent cannot be checked
    assert [] == list(policy.filter("schoolwebsite", "publicatie", ["leerling.geboortedatum"], [s], at=OCT))
    s["geboortedatum"] = dt.datetime(2012, 5, 1, 23, 30)  # a datetime is read as its date
    assert [{"leerling.geboortedatum": 2012}] == list(policy.filter("schoolwebsite", "publicatie",
                                                                    ["leerling.geboortedatum"], [s], at=OCT))


def test_other_datasets_are_read_by_full_reference(policy):
    s = {"geboortedatum": D(2010, 1, 1), "eckid": "e1", "absentie.datum": D(2025, 9, 3),
         "consents": {"onderzoek": Consent(by="parent", given=D(2025, 1, 1))}}
    rows = list(policy.filter("uni", "onderzoek", ["leerling.eckid", "absentie.datum"], [s], at=OCT))
    assert [{"leerling.eckid": "e1", "absentie.datum": D(2025, 9, 3)}] == rows


def test_pseudonym_without_key_raises_before_yielding():
    policy = avgpolicy.loads(SCHOOL)
    with pytest.raises(ValueError, match="pseudonym_key"):
        policy.filter("snappet", "leermiddelen", ["leerling.roepnaam", "leerling.id"], [student()], at=OCT)
    # without a pseudonymised field it works
    rows = list(policy.filter("snappet", "leermiddelen", ["leerling.roepnaam"], [student()], at=OCT))
    assert [{"leerling.roepnaam": "Sanne"}] == rows


def test_filter_checks_its_arguments(policy):
    with pytest.raises(TypeError):
        policy.filter("snappet", "leermiddelen", "leerling.roepnaam", [student()], at=OCT)
    with pytest.raises(TypeError):
        policy.filter("snappet", "leermiddelen", ["leerling.roepnaam"], student(), at=OCT)
    with pytest.raises(TypeError):
        policy.filter("snappet", "leermiddelen", ["leerling.roepnaam"], [student()], at="2025-10-01")


def test_filter_is_lazy_over_a_generator(policy):
    seen = []

    def source():
        for i in range(3):
            seen.append(i)
            yield student(id=f"s{i}")

    rows = policy.filter("snappet", "leermiddelen", ["leerling.roepnaam"], source(), at=OCT)
    assert [] == seen
    assert {"leerling.roepnaam": "Sanne"} == next(rows)
    assert [0] == seen


def test_the_key_never_shows():
    key = b"do-not-leak-this-key"
    policy = avgpolicy.loads(SCHOOL, pseudonym_key=key)
    texts = [repr(policy), repr(policy._pseudonymizer), str(vars(policy._pseudonymizer.__class__))]
    row = next(policy.filter("snappet", "leermiddelen", ["leerling.id"], [student()], at=OCT))
    texts.append(repr(row))
    check = policy.compile("snappet", "leermiddelen", ["leerling.id"])
    texts.append(check.source)
    for text in texts:
        assert key.decode() not in text and key.hex() not in text
    with pytest.raises(TypeError):
        Pseudonymizer(b"")


# ---------------------------------------------------------------------------
# the generated loop that decides and projects in one pass

TWO_PERMITS = """
dataset leerling "Leerlinggegevens" subject {
    roepnaam      text  personal
    geboortedatum date  personal
    leerjaar      int   personal
    school        text  personal
}
partner p "Partner" { role controller }
purpose doel "Doel"
permit oud_volledig {
    partner  p
    purpose  doel
    basis    contract
    fields   leerling.geboortedatum, leerling.roepnaam
    students where leerjaar >= 7
}
permit jong_alleen_jaar {
    partner  p
    purpose  doel
    basis    contract
    fields   leerling.geboortedatum as year, leerling.roepnaam
    students where school == "12AB"
}
forbid niet_zonder_school {
    partner  p
    fields   leerling.roepnaam
    students where school == "99ZZ"
}
"""


def projected(policy, partner, purpose, fields, students, at):
    """What filter must yield, worked out from decide field by field."""
    rows = []
    for s in students:
        d = policy.decide(partner, purpose, fields, s, at=at)
        row = {}
        for ref, fd in d.fields.items():
            value = s.get(ref.split(".", 1)[1]) if isinstance(s, dict) else None
            if fd.allowed and value is not None:
                row[ref] = value.year if fd.transform == "year" else value
        if row:
            rows.append(row)
    return rows


def test_the_transform_is_that_of_the_permit_that_grants():
    policy = avgpolicy.loads(TWO_PERMITS)
    fields = ["leerling.roepnaam", "leerling.geboortedatum"]
    born = D(2013, 4, 2)
    students = [
        {"leerjaar": 8, "school": "34CD", "roepnaam": "Ada", "geboortedatum": born},  # oud_volledig: the date
        {"leerjaar": 4, "school": "12AB", "roepnaam": "Bo", "geboortedatum": born},  # jong_alleen_jaar: the year
        {"leerjaar": 8, "school": "12AB", "roepnaam": "Ben", "geboortedatum": born},  # both: the first by name
        {"leerjaar": 4, "school": "34CD", "roepnaam": "Cas", "geboortedatum": born},  # neither
        {"leerjaar": 8, "school": "99ZZ", "roepnaam": "Dirk", "geboortedatum": born},  # roepnaam forbidden
        {"leerjaar": 8, "roepnaam": "Eva", "geboortedatum": born},  # school unknown: forbid may apply
    ]
    rows = list(policy.filter("p", "doel", fields, students, at=OCT))
    assert [{"leerling.roepnaam": "Ada", "leerling.geboortedatum": born},
            {"leerling.roepnaam": "Bo", "leerling.geboortedatum": 2013},
            {"leerling.roepnaam": "Ben", "leerling.geboortedatum": 2013},
            {"leerling.geboortedatum": born},
            {"leerling.geboortedatum": born}] == rows
    assert projected(policy, "p", "doel", fields, students, OCT) == rows
    assert ["leerling.roepnaam", "leerling.geboortedatum"] == list(rows[0])  # request order
    source = policy.compile("p", "doel", fields).filter_for(OCT).source
    assert "def rows(students, day):" in source and "yield _row" in source


def test_filter_follows_the_windows_of_one_held_request(policy):
    fields = ["leerling.roepnaam", "leerling.achternaam"]
    s = {**student(), "achternaam": "Jansen", "actief": True}
    rows_at = {day: list(policy.filter("snappet", "leermiddelen", fields, [s], at=day))
               for day in (D(2025, 7, 31), D(2025, 8, 15), OCT, D(2026, 7, 1), D(2026, 8, 1))}
    assert [] == rows_at[D(2025, 7, 31)]  # before the processing agreement
    assert [{"leerling.roepnaam": "Sanne"}] == rows_at[D(2025, 8, 15)]  # plusklas rule not yet in force
    assert [{"leerling.roepnaam": "Sanne", "leerling.achternaam": "Jansen"}] == rows_at[OCT]
    assert [{"leerling.roepnaam": "Sanne"}] == rows_at[D(2026, 7, 1)]  # plusklas rule ended
    assert [] == rows_at[D(2026, 8, 1)]  # the agreement ended
    for day, rows in rows_at.items():
        assert projected(policy, "snappet", "leermiddelen", fields, [s], day) == rows


def test_non_dict_mappings_and_non_mappings_in_the_generated_loop(policy):
    from types import MappingProxyType

    students = [MappingProxyType(student()), None, 42, ["roepnaam"], student(roepnaam="Ali")]
    rows = list(policy.filter("snappet", "leermiddelen", ["leerling.roepnaam"], students, at=OCT))
    assert [{"leerling.roepnaam": "Sanne"}, {"leerling.roepnaam": "Ali"}] == rows


def test_a_condition_too_large_to_generate_filters_through_the_held_check():
    terms = " or ".join(f"leerjaar == {i}" for i in range(600))
    policy = avgpolicy.loads(TWO_PERMITS.replace("students where leerjaar >= 7", f"students where {terms}"))
    fields = ["leerling.roepnaam", "leerling.geboortedatum"]
    check = policy.compile("p", "doel", fields)
    assert check.filter_for(OCT) is None  # decided by the interpreter, projected through its decisions
    students = [{"leerjaar": 599, "school": "34CD", "roepnaam": "Ada", "geboortedatum": D(2012, 1, 1)},
                {"leerjaar": 600, "school": "34CD", "roepnaam": "Bo"},
                {"leerjaar": 600, "school": "12AB", "roepnaam": "Cas", "geboortedatum": D(2012, 1, 1)}]
    rows = list(policy.filter("p", "doel", fields, students, at=OCT))
    assert [{"leerling.roepnaam": "Ada", "leerling.geboortedatum": D(2012, 1, 1)},
            {"leerling.roepnaam": "Cas", "leerling.geboortedatum": 2012}] == rows


def test_nothing_can_be_allowed_yields_nothing(policy):
    for partner, purpose, fields in [("snappet", "leermiddelen", ["leerling.bsn"]),  # no permit
                                     ("snappet", "leermiddelen", ["leerling.zorgnotitie"]),  # forbidden
                                     ("snappet", "leermiddelen", ["leerling.nope"])]:  # unknown field
        assert [] == list(policy.filter(partner, purpose, fields, [student(zorgnotitie="x")], at=OCT))
    with pytest.raises(avgpolicy.UnknownNameError):  # an unknown partner is an error, not an empty feed
        policy.filter("nobody", "leermiddelen", ["leerling.roepnaam"], [student(zorgnotitie="x")], at=OCT)
