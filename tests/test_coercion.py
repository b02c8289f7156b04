"""Ordinary SIS values (issue 16 item 2): what converts without loss is accepted, the rest denies naming types.

Each accepted kind is decided the same by ``decide`` (compiled), a held compiled function, the
reference interpreter and ``filter`` (which releases the converted value); each kind that does not
convert is denied with ``missing_attribute`` or ``no_consent`` whose message names the type it
received and the one the policy declares, never the value; hostile objects never make anything raise.
"""

from __future__ import annotations

import datetime as dt
import numbers
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from engine_strategies import BrokenDatetime, BrokenZone, IntLike

import avgpolicy
from avgpolicy import Consent, FilterReport
from avgpolicy import runtime as rt

D = dt.date
UTC = dt.UTC
AMS = ZoneInfo("Europe/Amsterdam")
AT = D(2025, 10, 1)

POLICY = """
dataset leerling "L" subject {
    id            text personal key
    leerjaar      int  personal
    geboortedatum date personal
    start         date personal
    school        text personal
    actief        bool personal
    vertrek       date personal left
    bsn           text national_id
    zorg          text special
}
partner p "P" { role controller  kind government }
purpose u "U"
purpose foto "Foto's"
consent beeld "Beeldmateriaal"
permit jaar  { partner p purpose u basis contract fields leerling.leerjaar, leerling.start, leerling.id
               students where leerjaar in 3..8 and start < 2025-09-01 }
permit oud   { partner p purpose u basis contract fields leerling.geboortedatum students where age >= 12 }
permit tekst { partner p purpose u basis contract fields leerling.school, leerling.actief
               students where school == "12AB" and actief == true }
permit bsn   { partner p purpose u basis legal_obligation("Wet") fields leerling.bsn students where bsn != "123" }
permit zorg  { partner p purpose u basis contract art9 explicit_consent(beeld) dpia "D-1" fields leerling.zorg
               students where zorg != "ADHD" }
permit beeld { partner p purpose foto basis consent(beeld) fields leerling.id, leerling.geboortedatum as year }
"""

FIELDS = ["leerling.leerjaar", "leerling.start", "leerling.geboortedatum", "leerling.school", "leerling.actief",
          "leerling.id"]


@pytest.fixture(scope="module")
def policy() -> avgpolicy.Policy:
    return avgpolicy.loads(POLICY)


def good(**extra: Any) -> dict[str, Any]:
    return {"id": "s1", "leerjaar": 5, "geboortedatum": D(2012, 3, 1), "start": D(2025, 8, 1), "school": "12AB",
            "actief": True, **extra}


def all_agree(policy: avgpolicy.Policy, fields: list[str], student: Any, at: Any = AT,
              purpose: str = "u") -> avgpolicy.Decision:
    """decide (compiled), a held compiled function and the interpreter give one decision; filter (with
    and without a report, and its fallback through the held check) yields what it allows."""
    expected = policy.decide("p", purpose, fields, student, at=at, engine="interpreted")
    assert expected == policy.decide("p", purpose, fields, student, at=at)
    check = policy.compile("p", purpose, fields)
    assert expected == check(student, at)
    assert expected == check(student, at)  # the held function, hot
    rows = list(policy.filter("p", purpose, fields, [student], at=at))
    report = FilterReport()
    assert rows == list(policy.filter("p", purpose, fields, [student], at=at, report=report))
    fallback = FilterReport()
    assert rows == list(policy._rows(check, "p", tuple(fields), [student], at, fallback))
    assert report.to_dict() == fallback.to_dict()
    assert (len(rows), 1 - len(rows)) == (report.sent, report.left_out)
    return expected


def released(policy: avgpolicy.Policy, fields: list[str], student: Any, at: Any = AT,
             purpose: str = "u") -> dict[str, Any]:
    rows = list(policy.filter("p", purpose, fields, [student], at=at))
    assert len(rows) <= 1
    return rows[0] if rows else {}


# ---------------------------------------------------------------------------
# the conversions themselves

def test_intlike_is_an_integral_number() -> None:
    assert isinstance(IntLike(5), numbers.Integral)


@pytest.mark.parametrize(("value", "expected"), [
    (IntLike(5), 5), (IntLike(-3), -3), (IntLike(10**30), 10**30),
    (IntLike(True), None),  # an __index__ that gives a bool gives no int
    (IntLike("5"), None), (IntLike(ValueError("no")), None), (IntLike(RecursionError()), None),
    (True, None), (False, None), (5.0, None), ("5", None), (b"5", None), (None, None), (D(2020, 1, 1), None),
])
def test_to_int(value: Any, expected: Any) -> None:
    result = rt.to_int(value)
    assert expected == result
    assert result is None or type(result) is int


def test_numpy_integers_are_ints_and_its_bools_are_not() -> None:
    numpy = pytest.importorskip("numpy")
    assert 5 == rt.to_int(numpy.int64(5)) and type(rt.to_int(numpy.int64(5))) is int
    assert 200 == rt.to_int(numpy.uint8(200))
    assert rt.to_int(numpy.bool_(True)) is None
    assert rt.to_int(numpy.float64(5.0)) is None


@pytest.mark.parametrize(("value", "expected"), [
    (dt.datetime(2016, 3, 1, 23, 59), D(2016, 3, 1)),                       # naive: its own date
    (dt.datetime(2016, 2, 29, 23, 30, tzinfo=UTC), D(2016, 3, 1)),          # aware: the date in Amsterdam
    (dt.datetime(2016, 3, 1, 0, 30, tzinfo=AMS), D(2016, 3, 1)),
    (dt.datetime(2016, 3, 1, 0, 30, tzinfo=dt.timezone(dt.timedelta(hours=5))), D(2016, 2, 29)),
    (dt.datetime(9999, 12, 31, 23, 0, tzinfo=dt.timezone(dt.timedelta(hours=-5))), None),  # past date.max
    (dt.datetime(2016, 3, 1, tzinfo=BrokenZone()), None), (BrokenDatetime(2016, 3, 1, tzinfo=UTC), None),
    (BrokenDatetime(2016, 3, 1, 12, 0), D(2016, 3, 1)),  # naive: astimezone is never called
    ("2016-03-01", None), (20160301, None), (None, None), (D(2016, 3, 1), None),  # (a date is checked before)
])
def test_to_date(value: Any, expected: Any) -> None:
    result = rt.to_date(value, AMS)
    assert expected == result
    assert result is None or type(result) is D


@pytest.mark.parametrize(("value", "expected"), [
    ("2025-09-01", D(2025, 9, 1)), ("2024-02-29", D(2024, 2, 29)),
    ("2025-02-30", None), ("0000-01-01", None), ("20250901", None), ("2025-9-1", None), ("2025-09-01T00:00", None),
    ("2025-09-01 ", None), ("٢٠٢٥-٠٩-٠١", None),  # (Arabic-Indic digits match \d: only ASCII digits count)
    (dt.datetime(2025, 8, 31, 23, 30, tzinfo=UTC), D(2025, 9, 1)), (20250901, None),
])
def test_to_consent_date(value: Any, expected: Any) -> None:
    assert expected == rt.to_consent_date(value, AMS)


# ---------------------------------------------------------------------------
# accepted in both engines, the held function and filter

@pytest.mark.parametrize("leerjaar", [IntLike(5), IntLike(3), IntLike(8)])
def test_an_integral_number_in_an_int_field(policy, leerjaar) -> None:
    d = all_agree(policy, FIELDS, good(leerjaar=leerjaar))
    assert d.allowed
    row = released(policy, FIELDS, good(leerjaar=leerjaar))
    assert leerjaar.v == row["leerling.leerjaar"] and type(row["leerling.leerjaar"]) is int  # released converted


@pytest.mark.parametrize("leerjaar", [IntLike(2), IntLike(10**30), IntLike(-1)])
def test_an_integral_number_outside_the_range_is_outside_the_subset(policy, leerjaar) -> None:
    d = all_agree(policy, ["leerling.leerjaar"], good(leerjaar=leerjaar))
    assert ["not_in_subset"] == [r.code for r in d.reasons]


def test_numpy_in_an_int_field(policy) -> None:
    numpy = pytest.importorskip("numpy")
    assert all_agree(policy, FIELDS, good(leerjaar=numpy.int64(5))).allowed
    assert 5 == released(policy, FIELDS, good(leerjaar=numpy.int64(5)))["leerling.leerjaar"]
    assert not all_agree(policy, ["leerling.leerjaar"], good(leerjaar=numpy.bool_(True))).allowed


@pytest.mark.parametrize(("birth", "allowed"), [
    (dt.datetime(2013, 10, 1, 8, 0), True),                     # 12 today
    (dt.datetime(2013, 10, 2, 8, 0), False),                    # 12 tomorrow
    (dt.datetime(2013, 9, 30, 22, 30, tzinfo=UTC), True),       # 1 October 00:30 in Amsterdam: 12 today
    (dt.datetime(2013, 10, 1, 22, 30, tzinfo=UTC), False),      # 2 October 00:30 in Amsterdam
])
def test_a_datetime_birth_date_is_its_date_in_the_policy_zone(policy, birth, allowed) -> None:
    d = all_agree(policy, ["leerling.geboortedatum"], good(geboortedatum=birth))
    assert allowed == d.allowed
    if allowed:
        row = released(policy, ["leerling.geboortedatum"], good(geboortedatum=birth))
        assert rt.to_date(birth, AMS) == row["leerling.geboortedatum"]
        assert type(row["leerling.geboortedatum"]) is D


def test_a_datetime_in_a_date_field_compared_with_a_date(policy) -> None:
    assert all_agree(policy, FIELDS, good(start=dt.datetime(2025, 8, 31, 23, 59))).allowed
    # 31 August 22:30 UTC is 1 September in Amsterdam: not before 2025-09-01
    d = all_agree(policy, FIELDS, good(start=dt.datetime(2025, 8, 31, 22, 30, tzinfo=UTC)))
    assert ["not_in_subset"] == [r.code for r in d.fields["leerling.start"].reasons]


def test_as_year_of_a_datetime(policy) -> None:
    consent = {"beeld": Consent(by="parent", given=D(2025, 9, 1))}
    student = good(geboortedatum=dt.datetime(2012, 12, 31, 23, 30, tzinfo=UTC), consents=consent)
    assert all_agree(policy, ["leerling.geboortedatum"], student, purpose="foto").allowed
    assert {"leerling.geboortedatum": 2013} == released(policy, ["leerling.geboortedatum"], student, purpose="foto")


@pytest.mark.parametrize("entry", [
    {"by": "parent", "given": "2025-09-01"},
    {"by": "parent", "given": "2025-09-01", "withdrawn": "2025-10-02"},
    {"by": "parent", "given": dt.datetime(2025, 9, 1, 12, 0)},
    {"by": "parent", "given": dt.datetime(2025, 9, 30, 22, 30, tzinfo=UTC)},  # 1 October in Amsterdam: today
    {"by": "parent", "given": D(2025, 9, 1), "withdrawn": dt.datetime(2025, 10, 1, 22, 30, tzinfo=UTC)},
])
def test_iso_strings_and_datetimes_in_a_consent(policy, entry) -> None:
    d = all_agree(policy, ["leerling.id"], good(consents={"beeld": entry}), purpose="foto")
    assert ["permitted"] == [r.code for r in d.reasons]


@pytest.mark.parametrize(("entry", "code_message"), [
    ({"by": "parent", "given": "2025-10-02"}, "only after this day"),
    ({"by": "parent", "given": "2025-09-01", "withdrawn": "2025-10-01"}, "withdrawn"),
    ({"by": "parent", "given": dt.datetime(2025, 10, 1, 22, 30, tzinfo=UTC)}, "only after this day"),
])
def test_converted_consent_dates_count_as_dates(policy, entry, code_message) -> None:
    d = all_agree(policy, ["leerling.id"], good(consents={"beeld": entry}), purpose="foto")
    assert ["no_consent"] == [r.code for r in d.reasons]
    assert code_message in d.reasons[0].message


def test_a_datetime_left_date(policy) -> None:
    left = dt.datetime(2025, 9, 30, 22, 30, tzinfo=UTC)  # 1 October in Amsterdam: still a student today
    assert all_agree(policy, FIELDS, good(vertrek=left)).allowed
    d = all_agree(policy, FIELDS, good(vertrek=dt.datetime(2025, 9, 30, 12, 0)))
    assert {"left_school"} == {r.code for r in d.reasons}
    assert "2025-09-30" in d.reasons[0].message


# ---------------------------------------------------------------------------
# denied, naming the type received and the one declared

@pytest.mark.parametrize(("key", "value", "received", "declared"), [
    ("leerjaar", "5", "str", "int"), ("leerjaar", True, "bool", "int"), ("leerjaar", 5.0, "float", "int"),
    ("leerjaar", IntLike(ValueError("no")), "IntLike that gives no whole number", "int"),
    ("leerjaar", IntLike(True), "IntLike that gives no whole number", "int"),
    ("school", 12, "int", "text"), ("actief", 1, "int", "bool"), ("start", "2025-08-01", "str", "date"),
    ("start", dt.datetime(2025, 8, 1, tzinfo=BrokenZone()), "datetime whose date cannot be read", "date"),
    ("geboortedatum", BrokenDatetime(2012, 3, 1, tzinfo=UTC), "BrokenDatetime whose date cannot be read", "date"),
    ("geboortedatum", "2012-03-01", "str", "date"),
])
def test_ill_typed_values_name_their_type(policy, key, value, received, declared) -> None:
    d = all_agree(policy, FIELDS, good(**{key: value}))
    assert not d.allowed
    reasons = [r for r in d.reasons if r.code == "missing_attribute"]
    assert reasons
    message = reasons[0].message
    assert f"student attribute {key} has type {received}, but the policy declares {declared} (" in message
    assert repr(value) not in message


def test_missing_and_none_say_so(policy) -> None:
    student = good()
    del student["leerjaar"]
    for s in (student, good(leerjaar=None)):
        d = all_agree(policy, ["leerling.leerjaar"], s)
        assert ["missing_attribute"] == [r.code for r in d.reasons]
        assert "student attribute leerjaar is missing or None, so the condition of permit rule jaar" \
            in d.reasons[0].message


def test_two_attributes_each_described(policy) -> None:
    # the first unknown atom on the deciding path is reported (school), not every unknown one
    d = all_agree(policy, ["leerling.school"], good(school=None, actief="ja"))
    assert ["missing_attribute"] == [r.code for r in d.reasons]
    assert "student attribute school is missing or None, so the condition" in d.reasons[0].message
    # an atom over two attributes names each
    rule = policy.model.rules[0]
    detail = rt.missing_detail(("start", "vertrek"), {"start": None, "vertrek": "2025-01-01"},
                               rt.attribute_types(policy.model.catalogue.subject_fields))
    assert ("start", ("vertrek", "str", "date")) == detail
    assert "student attribute start is missing or None; vertrek has type str, but the policy declares date (" \
        in rt.reason_message(("missing_attribute", rule, detail), "leerling.start", "p", "u")


def test_an_int_student_id_is_not_text(policy) -> None:
    """A text key holding an int (leading zeros would be lost): never released; the report counts it."""
    student = good(id=12)
    d = all_agree(policy, ["leerling.id"], student)
    assert d.allowed  # the permit has no condition on the id: decide allows, but there is no text to send
    report = FilterReport()
    assert [] == list(policy.filter("p", "u", ["leerling.id"], [student], at=AT, report=report))
    assert (0, 1, {"missing_attribute": 1}) == (report.sent, report.left_out, dict(report.left_out_reasons))


def test_protected_values_are_never_quoted(policy) -> None:
    for key, value in (("bsn", 123456782), ("zorg", ["ADHD"]), ("bsn", b"123456782")):
        d = all_agree(policy, [f"leerling.{key}"], good(**{key: value}, consents={"beeld": Consent(
            by="parent", given=D(2025, 9, 1))}))
        message = d.reasons[0].message
        assert ["missing_attribute"] == [r.code for r in d.reasons]
        assert f"student attribute {key} has type {type(value).__name__}, but the policy declares text" in message
        assert "123456782" not in message and "ADHD" not in message


def test_a_left_date_of_the_wrong_type(policy) -> None:
    d = all_agree(policy, FIELDS, good(vertrek="2025-09-30"))
    assert {"missing_attribute"} == {r.code for r in d.reasons}
    assert "vertrek (the date the student left the school) has type str, but the policy declares date" \
        in d.reasons[0].message


@pytest.mark.parametrize(("entry", "problem"), [
    ({"by": "ouder", "given": D(2025, 9, 1)}, "'by' is a str that is not 'parent' or 'student'"),
    ({"by": "Parent", "given": D(2025, 9, 1)}, "'by' is a str that is not 'parent' or 'student'"),
    ({"by": 1, "given": D(2025, 9, 1)}, "'by' has type int, expected a str, 'parent' or 'student'"),
    ({"given": D(2025, 9, 1)}, "'by' is missing or None"),
    ({"by": "parent"}, "'given' is missing or None"),
    ({"by": "parent", "given": "1-9-2025"}, "'given' is a str that is not an ISO date 'YYYY-MM-DD'"),
    ({"by": "parent", "given": 20250901}, "'given' has type int, expected a date"),
    ({"by": "parent", "given": BrokenDatetime(2025, 9, 1, tzinfo=UTC)},
     "'given' is a BrokenDatetime whose date cannot be read"),
    ({"by": "parent", "given": D(2025, 9, 1), "withdrawn": "never"},
     "'withdrawn' is a str that is not an ISO date"),
    ({"by": "parent", "given": D(2025, 9, 1), "withdrawn": 0}, "'withdrawn' has type int, expected a date"),
    ("yes", "the entry has type str, expected a Consent or a mapping"),
])
def test_an_unusable_consent_says_what_is_wrong(policy, entry, problem) -> None:
    d = all_agree(policy, ["leerling.id"], good(consents={"beeld": entry}), purpose="foto")
    assert ["no_consent"] == [r.code for r in d.reasons]
    assert problem in d.reasons[0].message
    assert "ouder" not in d.reasons[0].message.replace("'ouder', 'leerling'", "")  # the spellings, not the value


def test_consents_that_are_not_a_mapping(policy) -> None:
    d = all_agree(policy, ["leerling.id"], good(consents=["beeld"]), purpose="foto")
    assert "the record's 'consents' has type list, expected a mapping" in d.reasons[0].message


def test_explicit_consent_problem_is_named(policy) -> None:
    d = all_agree(policy, ["leerling.zorg"], good(zorg="dyslexie", consents={"beeld": {"by": "ouder",
                                                                                     "given": "2025-09-01"}}))
    assert ["no_consent"] == [r.code for r in d.reasons]
    assert "'by' is a str that is not 'parent' or 'student'" in d.reasons[0].message
    assert "explicit consent" in d.reasons[0].message


# ---------------------------------------------------------------------------
# hostile objects: denied, never raised; the student's own code runs only on the slow path

class Hostile:
    """Everything a value can do raises."""

    def __index__(self) -> int:
        raise RuntimeError("__index__")

    def __eq__(self, other: object) -> bool:
        raise RuntimeError("__eq__")

    def __hash__(self) -> int:
        raise RuntimeError("__hash__")

    def __lt__(self, other: object) -> bool:
        raise RuntimeError("__lt__")


class NamedBadly(type):
    @property
    def __name__(cls) -> str:  # type: ignore[override]
        raise RuntimeError("__name__")


class Weird(metaclass=NamedBadly):
    def __index__(self) -> int:
        raise RuntimeError("__index__")


numbers.Integral.register(Hostile)


class HostileDatetime(dt.datetime):
    def astimezone(self, tz: Any = None) -> Any:
        raise RuntimeError("astimezone")

    def utcoffset(self) -> Any:
        raise RuntimeError("utcoffset")

    def __eq__(self, other: object) -> bool:
        raise RuntimeError("__eq__")

    __hash__ = dt.datetime.__hash__


@pytest.mark.parametrize("value", [Hostile(), Weird(), HostileDatetime(2012, 3, 1, tzinfo=UTC),
                                   IntLike(RecursionError())], ids=["hostile", "weird", "datetime", "intlike"])
@pytest.mark.parametrize("key", ["leerjaar", "start", "geboortedatum", "school", "vertrek"])
def test_hostile_values_deny_and_never_raise(policy, key, value) -> None:
    d = all_agree(policy, FIELDS, good(**{key: value}))
    assert not d.fields[f"leerling.{key}" if key != "vertrek" else "leerling.leerjaar"].allowed
    assert any(r.code == "missing_attribute" for r in d.reasons)


def test_a_naive_hostile_datetime_is_read_without_its_methods(policy) -> None:
    """Naive: its date is read from year, month and day; utcoffset, astimezone and __eq__ never run."""
    assert all_agree(policy, FIELDS, good(start=HostileDatetime(2025, 8, 1))).allowed
    d = all_agree(policy, FIELDS, good(vertrek=HostileDatetime(2025, 9, 30)))
    assert {"left_school"} == {r.code for r in d.reasons}


@pytest.mark.parametrize("value", [Hostile(), HostileDatetime(2025, 9, 1, tzinfo=UTC), Weird()],
                         ids=["hostile", "datetime", "weird"])
def test_hostile_consent_dates_deny_and_never_raise(policy, value) -> None:
    for entry in ({"by": "parent", "given": value}, {"by": "parent", "given": D(2025, 9, 1), "withdrawn": value},
                  {"by": value, "given": D(2025, 9, 1)}):
        d = all_agree(policy, ["leerling.id"], good(consents={"beeld": entry}), purpose="foto")
        assert ["no_consent"] == [r.code for r in d.reasons]


def test_a_type_name_never_fails() -> None:
    assert "Weird" == rt.type_name(Weird())  # the class's own name: its metaclass's __name__ property never runs
    assert "str" == rt.type_name("x")
    long = type("X" * 100, (), {})()
    assert 63 == len(rt.type_name(long))


# ---------------------------------------------------------------------------
# the hot path stays the exact type check; conversion only after it failed

def test_generated_code_tests_the_exact_type_first(policy) -> None:
    check = policy.compile("p", "u", ["leerling.leerjaar"])
    check(good(), AT)
    source = check.source
    assert "_type((_t0 := s.get('leerjaar'))) is _int or _t0 is not None and (_t0 := _cint(_t0)) is not None" \
        in source
    rows = check.filter_for(AT)
    assert "_cint(_v)" in rows.source
    exact = source.index("is _int")
    assert exact < source.index("_cint(")


def test_the_exact_type_never_calls_a_conversion(policy, monkeypatch) -> None:
    calls: list[Any] = []
    policy = avgpolicy.loads(POLICY)  # a fresh policy: its compiled code reads the patched helpers

    def spy(name: str, fn: Any) -> Any:
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            calls.append(name)
            return fn(*args, **kwargs)
        return wrapped

    monkeypatch.setattr(rt, "to_int", spy("to_int", rt.to_int))
    monkeypatch.setattr(rt, "to_date", spy("to_date", rt.to_date))
    students = [good(), good(leerjaar=4), good(start=D(2025, 1, 1))]
    for s in students:
        assert policy.decide("p", "u", FIELDS, s, at=AT).allowed
        assert policy.decide("p", "u", FIELDS, s, at=AT, engine="interpreted").allowed
    assert 3 == len(list(policy.filter("p", "u", FIELDS, students, at=AT)))
    assert [] == calls
    policy.decide("p", "u", FIELDS, good(leerjaar=IntLike(5)), at=AT)
    assert "to_int" in calls


def test_a_filter_report_counts_who_was_left_out_and_why(policy) -> None:
    """One pass: converted values are sent, the rest counted with their reason codes."""
    batch = [good(), good(leerjaar=IntLike(5)), good(leerjaar="5"), good(leerjaar=None), good(id=12),
             good(leerjaar=IntLike(2))]
    report = FilterReport()
    rows = list(policy.filter("p", "u", ["leerling.leerjaar", "leerling.id"], batch, at=AT, report=report))
    assert [{"leerling.leerjaar": 5, "leerling.id": "s1"}] * 2 + [{"leerling.leerjaar": 5}] == rows
    assert (3, 3) == (report.sent, report.left_out)
    assert {"missing_attribute": 2, "not_in_subset": 1} == dict(report.left_out_reasons)
