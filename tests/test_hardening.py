"""Hardening (issue 15 items 5, 6, 8, 9, 10; issue 16 item 1): hostile or odd input ends in a
denial or a clear TypeError/ValueError, never in another exception; unknown names cost nothing
and are an error where a quiet empty answer would hide a typo."""

from __future__ import annotations

import datetime
import json
import sys
from pathlib import Path
from typing import Any

import pytest

import avgpolicy
from avgpolicy import UnknownNameError
from avgpolicy.cli import main

AT = datetime.date(2025, 10, 1)
KEY = b"hardening-test-key-0123456789abcdef"
POLICY = """
dataset leerling subject {
    id text personal
    school text personal
    leerjaar int personal
}
partner snappet { role controller }
partner dus-i { role controller kind government }
purpose leermiddelen
purpose bekostiging
permit snappet_lesmateriaal {
    partner snappet
    purpose leermiddelen
    basis contract
    fields leerling.school, leerling.id as pseudonym
    students where leerjaar >= 1
}
"""
FIELDS = ["leerling.school", "leerling.id"]
STUDENT = {"id": "s1", "school": "12AB", "leerjaar": 5}


@pytest.fixture
def policy() -> avgpolicy.Policy:
    return avgpolicy.loads(POLICY, pseudonym_key=KEY)


# -- unknown partners and purposes (issue 15 item 6, issue 16 item 1) -----------------------------

def test_compile_and_filter_raise_for_an_unknown_partner_or_purpose_with_did_you_mean(
        policy: avgpolicy.Policy) -> None:
    for partner, purpose, kind, suggestion in (("snapet", "leermiddelen", "partner", "snappet"),
                                               ("Snappet", "leermiddelen", "partner", "snappet"),
                                               ("snappet", "leermidelen", "purpose", "leermiddelen"),
                                               ("zzz", "leermiddelen", "partner", None)):
        for call in (lambda p, u: policy.compile(p, u, FIELDS),
                     lambda p, u: policy.filter(p, u, FIELDS, [STUDENT], at=AT),
                     policy.check_names):
            with pytest.raises(UnknownNameError) as info:
                call(partner, purpose)
            err = info.value
            assert isinstance(err, ValueError)
            assert (kind, suggestion) == (err.kind, err.suggestion)
            if suggestion:
                assert f"did you mean {suggestion!r}?" in str(err)
            else:
                assert "declared: dus-i, snappet" in str(err)
    assert None is policy.check_names("snappet", "leermiddelen")


def test_decide_denies_an_unknown_name_with_a_suggestion_and_compiles_nothing(policy: avgpolicy.Policy) -> None:
    before = policy.cache_info()
    for engine in ("compiled", "interpreted"):
        d = policy.decide("snapet", "leermiddelen", FIELDS, STUDENT, at=AT, engine=engine)
        assert False is d.allowed
        assert ["unknown_partner", "unknown_partner"] == [r.code for r in d.reasons]
        assert "partner 'snapet' is not declared in this policy set; did you mean 'snappet'?" == d.reasons[0].message
    assert before == policy.cache_info()


def test_a_nul_byte_in_a_name_denies_in_both_engines_and_is_an_unknown_name_for_filter(
        policy: avgpolicy.Policy) -> None:
    for partner, purpose in (("snap\x00pet", "leermiddelen"), ("snappet", "leer\x00middelen"), ("\x00", "\x00")):
        compiled = policy.decide(partner, purpose, FIELDS, STUDENT, at=AT)
        interpreted = policy.decide(partner, purpose, FIELDS, STUDENT, at=AT, engine="interpreted")
        assert compiled == interpreted
        assert False is compiled.allowed
        with pytest.raises(UnknownNameError):
            list(policy.filter(partner, purpose, FIELDS, [STUDENT], at=AT))
    assert 0 == policy.cache_info().currsize


def test_junk_names_never_push_real_requests_out_of_the_cache() -> None:
    policy = avgpolicy.loads(POLICY, pseudonym_key=KEY, cache_size=4)
    real = [("snappet", "leermiddelen", ["leerling.school"]), ("snappet", "leermiddelen", ["leerling.id"])]
    for partner, purpose, fields in real:
        policy.decide(partner, purpose, fields, STUDENT, at=AT)
    misses = policy.cache_info().misses
    for i in range(1024):
        junk = f"junk-{i}"
        assert False is policy.decide(junk, "leermiddelen", ["leerling.school"], STUDENT, at=AT).allowed
        assert False is policy.decide("snappet", junk, ["leerling.school"], STUDENT, at=AT).allowed
    big = "x" * 1_000_000
    assert False is policy.decide(big, big, ["leerling.school"], STUDENT, at=AT).allowed
    for partner, purpose, fields in real:
        assert True is policy.decide(partner, purpose, fields, STUDENT, at=AT).allowed
    info = policy.cache_info()
    assert (misses, 2) == (info.misses, info.currsize)  # the real requests were still cached


def test_a_megabyte_name_is_cut_in_messages(policy: avgpolicy.Policy) -> None:
    big = "y" * 1_000_000
    d = policy.decide(big, "leermiddelen", ["leerling.school"], STUDENT, at=AT)
    assert len(d.reasons[0].message) < 200
    with pytest.raises(UnknownNameError) as info:
        policy.compile(big, "leermiddelen", FIELDS)
    assert len(str(info.value)) < 300


def test_explain_with_an_unknown_partner_exits_1_and_suggests(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "set.avg").write_text(POLICY, encoding="utf-8")
    (tmp_path / "s.json").write_text(json.dumps(STUDENT), encoding="utf-8")
    code = main(["explain", str(tmp_path / "set.avg"), "--partner", "snapet", "--purpose", "leermiddelen",
                 "--fields", "leerling.school", "--student", str(tmp_path / "s.json"), "--at", "2025-10-01"])
    _, err = capsys.readouterr()
    assert 1 == code
    assert "unknown partner 'snapet'" in err and "did you mean 'snappet'?" in err


# -- avgpolicy explain on hostile JSON (issue 15 item 9) ----------------------------------------------

@pytest.mark.parametrize("text", ['{"leerjaar": ' + "9" * 5000 + "}", "[" * 100_000 + "]" * 100_000,
                                  '{"a": ' * 100_000 + "1" + "}" * 100_000])
def test_explain_on_a_huge_number_or_deep_nesting_is_a_usage_error(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str) -> None:
    (tmp_path / "set.avg").write_text(POLICY, encoding="utf-8")
    (tmp_path / "s.json").write_text(text, encoding="utf-8")
    code = main(["explain", str(tmp_path / "set.avg"), "--partner", "snappet", "--purpose", "leermiddelen",
                 "--fields", "leerling.school", "--student", str(tmp_path / "s.json"), "--at", "2025-10-01"])
    _, err = capsys.readouterr()
    assert 2 == code
    assert "Traceback" not in err
    assert "s.json" in err and ("too long" in err or "too deeply" in err)


# -- moments at the ends of the calendar (issue 15 item 8) ------------------------------------------

@pytest.mark.parametrize("at", [
    datetime.datetime(9999, 12, 31, 23, 59, tzinfo=datetime.timezone(datetime.timedelta(hours=-5))),
    datetime.datetime(1, 1, 1, 0, 0, tzinfo=datetime.timezone(datetime.timedelta(hours=5))),
])
def test_a_moment_past_the_representable_dates_is_a_value_error(policy: avgpolicy.Policy,
                                                                 at: datetime.datetime) -> None:
    for engine in ("compiled", "interpreted"):
        with pytest.raises(ValueError, match="outside the dates"):
            policy.decide("snappet", "leermiddelen", FIELDS, STUDENT, at=at, engine=engine)
    with pytest.raises(ValueError, match="outside the dates"):
        list(policy.filter("snappet", "leermiddelen", FIELDS, [STUDENT], at=at))


def test_the_last_and_first_representable_days_decide(policy: avgpolicy.Policy) -> None:
    for at in (datetime.date.max, datetime.date.min, datetime.datetime(9999, 12, 31, 23, 59),
               datetime.datetime(9999, 12, 31, 12, 0, tzinfo=datetime.UTC)):
        for engine in ("compiled", "interpreted"):
            assert True is policy.decide("snappet", "leermiddelen", FIELDS, STUDENT, at=at, engine=engine).allowed


# -- pseudonyms of very long integers (issue 15 item 5) -----------------------------------------------

def test_a_pseudonym_of_an_int_beyond_the_str_digit_limit(tmp_path: Path) -> None:
    text = POLICY.replace("id text personal", "id int personal")
    policy = avgpolicy.loads(text, pseudonym_key=KEY)
    huge = 10 ** 5000 + 7
    assert 4300 == sys.get_int_max_str_digits() or sys.get_int_max_str_digits() == 0
    rows = list(policy.filter("snappet", "leermiddelen", FIELDS, [{**STUDENT, "id": huge},
                                                                  {**STUDENT, "id": -huge},
                                                                  {**STUDENT, "id": 7}], at=AT))
    pseudonyms = [row["leerling.id"] for row in rows]
    assert 3 == len(set(pseudonyms)) and all(len(p) == 64 for p in pseudonyms)


# -- a record whose own code raises (issue 15 item 10) -------------------------------------------------

class _Key(str):
    """A key that hashes like a field name and whose comparison raises once armed."""

    armed = False

    def __hash__(self) -> int:
        return hash(str(self)[1:])

    def __eq__(self, other: object) -> bool:
        if _Key.armed:
            raise RuntimeError("a comparison that raises")
        return str.__eq__(self, other)


def _hostile(name: str) -> dict[Any, Any]:
    _Key.armed = False
    record = {k: v for k, v in STUDENT.items() if k != name}
    record[_Key("~" + name)] = 1  # found by the lookup of ``name``, which then compares it
    _Key.armed = True
    return record


@pytest.mark.parametrize("name", ["leerjaar", "school", "id"])
def test_a_record_whose_keys_raise_is_denied_as_not_a_mapping(policy: avgpolicy.Policy, name: str) -> None:
    record = _hostile(name)
    try:
        expected = policy.decide("snappet", "leermiddelen", FIELDS, None, at=AT)
        for engine in ("compiled", "interpreted"):
            for _ in range(2):  # the first call compiles, the second takes the fast path
                d = policy.decide("snappet", "leermiddelen", FIELDS, record, at=AT, engine=engine)
                if name == "leerjaar":  # the condition reads it: the record is undecidable
                    assert expected == d
                    assert ["the student record is not a mapping"] * 2 == [r.message for r in d.reasons]
    finally:
        _Key.armed = False


def test_an_engine_bug_is_not_taken_for_bad_data(policy: avgpolicy.Policy, monkeypatch: pytest.MonkeyPatch) -> None:
    from avgpolicy import interpreter

    def broken(*args: Any) -> Any:
        raise KeyError("a bug inside avgpolicy")

    monkeypatch.setattr(interpreter, "decide", broken)
    with pytest.raises(KeyError):
        policy.decide("snappet", "leermiddelen", FIELDS, STUDENT, at=AT, engine="interpreted")


def test_filter_leaves_out_a_record_whose_keys_raise_and_goes_on(policy: avgpolicy.Policy) -> None:
    good = [{**STUDENT, "id": f"s{i}"} for i in range(4)]
    try:
        batch = [good[0], _hostile("leerjaar"), good[1], _hostile("school"), _hostile("leerjaar"), good[2], good[3]]
        rows = list(policy.filter("snappet", "leermiddelen", ["leerling.school"], batch, at=AT))
        assert [{"leerling.school": "12AB"}] * 4 == rows
        report = avgpolicy.FilterReport()
        rows = list(policy.filter("snappet", "leermiddelen", ["leerling.school"], iter(batch), at=AT,
                                  report=report))
        assert 4 == len(rows)
        assert (4, 3) == (report.sent, report.left_out)
        assert 3 == report.left_out_reasons["missing_attribute"]  # each counted as not a mapping
    finally:
        _Key.armed = False


def test_filter_does_not_take_an_engine_bug_for_bad_data(policy: avgpolicy.Policy,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from avgpolicy import runtime as rt

    check = policy.compile("snappet", "leermiddelen", ["leerling.school"])

    def broken(*args: Any) -> Any:  # raises inside avgpolicy's own code, as a bug there would
        yield rt.local_day("not a moment", policy.zone)

    monkeypatch.setattr(check, "rows", broken)
    with pytest.raises(TypeError):
        list(policy.filter("snappet", "leermiddelen", ["leerling.school"], [STUDENT], at=AT))
