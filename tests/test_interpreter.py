"""Bad data on both engines: for every field type, None, a missing key and each wrong type deny with a
reason and never raise; Kleene logic of the reference interpreter."""

from __future__ import annotations

import datetime as dt

import pytest

import avgpolicy
from avgpolicy import interpreter
from avgpolicy import nodes as n

D = dt.date

TYPED = """
dataset leerling "L" subject {
    naam     text personal
    jaar     int  personal
    actief   bool personal
    start    date personal
    groepen  set  personal
    geboortedatum date personal
}
partner p "P" { role controller }
purpose u "U"
permit tekst   { partner p purpose u basis contract fields leerling.naam students where naam == "A" }
permit getal   { partner p purpose u basis contract fields leerling.jaar students where jaar >= 3 }
permit waar    { partner p purpose u basis contract fields leerling.actief students where actief == true }
permit datum   { partner p purpose u basis contract fields leerling.start students where start < 2025-09-01 }
permit set_in  { partner p purpose u basis contract fields leerling.groepen students where "g1" in groepen }
permit leeftijd { partner p purpose u basis contract fields leerling.geboortedatum students where age in 4..12 }
"""

GOOD = {"naam": "A", "jaar": 5, "actief": True, "start": D(2025, 8, 1), "groepen": ["g1"],
        "geboortedatum": D(2018, 1, 1)}
FIELD_OF = {"naam": "leerling.naam", "jaar": "leerling.jaar", "actief": "leerling.actief", "start": "leerling.start",
            "groepen": "leerling.groepen", "geboortedatum": "leerling.geboortedatum"}


class Sneaky(str):
    def __eq__(self, other: object) -> bool:  # would open every door if it were ever called
        return True

    __hash__ = str.__hash__


class Exploding:
    def __eq__(self, other: object) -> bool:
        raise RuntimeError("never call me")

    def __lt__(self, other: object) -> bool:
        raise RuntimeError("never call me")

    __hash__ = object.__hash__


WRONG = {
    "naam": [5, True, b"A", Sneaky("B"), ["A"], Exploding(), D(2020, 1, 1)],
    "jaar": [True, "5", 5.0, D(2020, 1, 1), Exploding(), [5]],
    "actief": [1, "true", 0, Exploding()],
    "start": ["2025-08-01", 20250801, Exploding()],  # (a datetime converts to its date: test_coercion.py)
    "groepen": ["g1", [1], {"g1": 1}, ["g1", 2], [Sneaky("x")], 5, Exploding()],
    "geboortedatum": ["2018-01-01", 2018, Exploding()],
}
MISSING = object()
CASES = [(k, v) for k, values in WRONG.items() for v in [*values, None, MISSING]]


@pytest.fixture(scope="module")
def policy() -> avgpolicy.Policy:
    return avgpolicy.loads(TYPED)


@pytest.mark.parametrize("engine", ["compiled", "interpreted"])
def test_good_record_is_allowed(policy, engine):
    d = policy.decide("p", "u", list(FIELD_OF.values()), GOOD, at=D(2025, 10, 1), engine=engine)
    assert d.allowed


@pytest.mark.parametrize("engine", ["compiled", "interpreted"])
@pytest.mark.parametrize(("key", "value"), CASES, ids=[f"{k}-{type(v).__name__}" for k, v in CASES])
def test_bad_value_denies_with_missing_attribute_and_never_raises(policy, engine, key, value):
    student = dict(GOOD)
    if value is MISSING:
        del student[key]
    else:
        student[key] = value
    d = policy.decide("p", "u", [FIELD_OF[key]], student, at=D(2025, 10, 1), engine=engine)
    assert not d.allowed
    assert ["missing_attribute"] == [r.code for r in d.reasons]
    assert key in d.reasons[0].message


@pytest.mark.parametrize("engine", ["compiled", "interpreted"])
def test_a_broken_mapping_is_not_a_mapping(policy, engine):
    class Broken(dict):
        def items(self):
            raise RuntimeError("broken")

    from collections.abc import Mapping

    class Weird(Mapping):
        def __getitem__(self, key):
            raise RuntimeError("broken")

        def __iter__(self):
            return iter(["naam"])

        def __len__(self):
            return 1

    for student in (Broken(GOOD), Weird()):
        d = policy.decide("p", "u", ["leerling.naam"], student, at=D(2025, 10, 1), engine=engine)
        assert ["missing_attribute"] == [r.code for r in d.reasons]


@pytest.mark.parametrize("engine", ["compiled", "interpreted"])
def test_other_mappings_are_read(policy, engine):
    from types import MappingProxyType

    d = policy.decide("p", "u", ["leerling.naam"], MappingProxyType(GOOD), at=D(2025, 10, 1), engine=engine)
    assert d.allowed


def _lit(v):
    return n.Literal(v, {str: "text", int: "int", bool: "bool"}[type(v)])


def test_kleene_logic():
    subject = avgpolicy.loads(TYPED).model.catalogue.subject_fields
    true = n.Compare("==", n.Ref("naam"), _lit("A"))
    false = n.Compare("==", n.Ref("naam"), _lit("B"))
    unknown = n.Compare(">=", n.Ref("jaar"), _lit(3))
    record = {"naam": "A"}

    def ev(e):
        return interpreter.evaluate(e, record, subject, D(2025, 1, 1))

    assert (True, False, None) == (ev(true), ev(false), ev(unknown))
    assert True is ev(n.Or((unknown, true)))
    assert False is ev(n.And((unknown, false)))
    assert None is ev(n.And((unknown, true)))
    assert None is ev(n.Or((unknown, false)))
    assert None is ev(n.Not(unknown))
    assert False is ev(n.Not(true))
    assert ("jaar",) == interpreter.unknown_attributes(n.Or((false, unknown)), record, subject, D(2025, 1, 1))
    assert false == interpreter.failed_part(n.And((true, false, unknown)), record, subject, D(2025, 1, 1))
