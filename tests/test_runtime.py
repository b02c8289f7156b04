"""Runtime semantics shared by both engines: type guards, age, records, condition text, reason specs."""

from __future__ import annotations

import datetime as dt
from types import MappingProxyType

import pytest

import avgpolicy
from avgpolicy import runtime as rt

D = dt.date


@pytest.mark.parametrize(("value", "field_type", "expected"), [
    ("x", "text", True), (5, "text", False), (None, "text", False),
    (5, "int", True), (True, "int", False), (5.0, "int", False), ("5", "int", False),
    (True, "bool", True), (1, "bool", False),
    (D(2020, 1, 1), "date", True), (dt.datetime(2020, 1, 1), "date", False), ("2020-01-01", "date", False),
    ({"a"}, "set", True), (frozenset(), "set", True), (["a", "b"], "set", True), (("a",), "set", True),
    ("a", "set", False), ([1], "set", False), ({"a": 1}, "set", False), (None, "set", False),
    ("x", "nonsense", False),
])
def test_well_typed_is_exact(value, field_type, expected):
    assert expected == rt.well_typed(value, field_type)


def test_age():
    assert 9 == rt.age_on(D(2016, 3, 1), D(2025, 10, 1))
    assert 8 == rt.age_on(D(2016, 10, 2), D(2025, 10, 1))
    assert 9 == rt.age_on(D(2016, 10, 1), D(2025, 10, 1))
    assert 9 == rt.age_of(dt.datetime(2016, 1, 1), D(2025, 1, 1))  # a datetime is read as its date
    assert rt.age_of("2016-01-01", D(2025, 1, 1)) is None
    assert rt.age_of(None, D(2025, 1, 1)) is None
    assert -1 == rt.age_of(D(2026, 1, 1), D(2025, 1, 1))


def test_as_record():
    d = {"a": 1}
    assert d is rt.as_record(d)
    assert {"a": 1} == rt.as_record(MappingProxyType(d))
    for bad in (None, [("a", 1)], "a", 5):
        assert rt.as_record(bad) is None


CONDITIONS = [
    'school == "12AB" and leerjaar in 3..8',
    'school in ["12AB", "34CD"] and (leerjaar >= 3 or "plusklas" in lesgroepen) and not age >= 16',
    'not (leerjaar < 3 or leerjaar > 8)',
    '"x" not in lesgroepen or leerjaar not in 1..2 or school not in []',
    'start <= 2025-08-01 and actief == false and naam != "a \\"quoted\\" \\\\ name"',
]


@pytest.mark.parametrize("text", CONDITIONS)
def test_condition_text_round_trips_through_the_parser(text):
    policy_text = f"""
dataset leerling "L" subject {{
    school text personal
    leerjaar int personal
    lesgroepen set personal
    geboortedatum date personal
    start date personal
    actief bool personal
    naam text personal
}}
partner p "P" {{ role controller }}
purpose u "U"
permit r {{ partner p purpose u basis contract fields leerling.naam students where {text} }}
"""
    policy = avgpolicy.loads(policy_text)
    condition = policy.model.rules[0].condition
    assert condition is not None
    again = avgpolicy.loads(policy_text.replace(text, rt.condition_text(condition)))
    assert condition == again.model.rules[0].condition


def test_every_consent_status_has_a_message():
    from avgpolicy.model import RuleInfo
    policy = avgpolicy.loads({"s.avg": """
dataset leerling "L" subject {
    geboortedatum date personal
    foto text personal
}
partner p "P" { role controller }
purpose u "U"
consent t "T"
permit r { partner p purpose u basis consent(t) fields leerling.foto }
"""})
    rule: RuleInfo = policy.model.rules[0]
    for status in rt.CONSENT_STATUSES:
        if status in (rt.CONSENT_OK, rt.CONSENT_INFORM):
            continue
        reason = rt.make_reason(("no_consent", rule, (status, "t")), "leerling.foto", "p", "u")
        assert "topic t" in reason.message and "(rule r)" in reason.message
        assert "s.avg" == reason.location.file


def test_unknown_reason_code_is_a_programming_error():
    with pytest.raises(ValueError):
        rt.reason_message(("no_such_code", None, None), "f", "p", "u")
