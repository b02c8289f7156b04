"""Differential testing at depth: compiled ≡ interpreted, and filter ≡ decide, field by field.

Two generators feed the same properties: the engine's node-level policy sets over a
fixed catalogue (tests/engine_strategies.py: moments at window edges and DST changes,
consents of every sort) and the fuzz generator's free-form sets rendered as text
(tests/fuzz_strategies.py: any catalogue shape, hyphenated names, odd strings, deep
conditions). The ``slow`` variants run 100,000 examples each (``pytest -m slow``, in
10 chunks of 10,000 to bound memory);
a failure prints its seed and a reproduction blob (``print_blob=True``). The small
variants keep the same code exercised in the default run.
"""

from __future__ import annotations

import datetime
import os
import time
from collections import Counter
from typing import Any

import pytest
from engine_strategies import build, moments, policy_files, requests, students
from fuzz_strategies import Layout, policy_specs, render, requests_for, students_for
from fuzz_strategies import moments as any_moments
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import avgpolicy
from avgpolicy import runtime as rt
from avgpolicy.decision import Consent

KEY = b"deep-differential-key-0123456789"
DEEP = 100_000
# Hypothesis keeps every explored choice in memory: one 100,000-example run grew past 14 GB
# (OOM-killed at ~82,000), so the deep run is 10 chunks of 10,000 examples, each a fresh run.
CHUNKS = 10
_BASE = settings.default.max_examples
_deep = settings(max_examples=DEEP // CHUNKS, deadline=None, print_blob=True, database=None,
                 suppress_health_check=list(HealthCheck))
_chunks = pytest.mark.parametrize("chunk", range(CHUNKS))
_small = settings(max_examples=max(_BASE // 4, 20), deadline=None, print_blob=True,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


_counts: Counter[str] = Counter()


def progress(name: str) -> None:
    """With AVG_DEEP_PROGRESS=FILE, append a line every 1,000 examples (long runs show how far they got)."""
    path = os.environ.get("AVG_DEEP_PROGRESS")
    if path:
        _counts[name] += 1
        if _counts[name] % 1000 == 0:
            with open(path, "a", encoding="utf-8") as out:
                out.write(f"{time.strftime('%H:%M:%S')} {name}: {_counts[name]} examples\n")


def _declared(policy: avgpolicy.Policy, partner: str, purpose: str) -> bool:
    return partner in policy.model.partners and purpose in policy.model.purposes


def agree(policy: avgpolicy.Policy, partner: str, purpose: str, fields: list[str], student: Any, at: Any) -> None:
    """The compiled function, cold and held, gives exactly the interpreter's decision."""
    expected = policy.decide(partner, purpose, fields, student, at=at, engine="interpreted")
    actual = policy.decide(partner, purpose, fields, student, at=at)
    assert expected.to_dict() == actual.to_dict()
    assert expected == actual
    assert expected.explain() == actual.explain()
    if not _declared(policy, partner, purpose):  # decided by the interpreter; nothing to compile
        with pytest.raises(avgpolicy.UnknownNameError):
            policy.compile(partner, purpose, fields)
        return
    check = policy.compile(partner, purpose, fields)
    assert expected == check(student, at=at)
    for ref, fd in expected.fields.items():  # per field: outcome, rule, basis, transform, reasons
        assert fd == actual.fields[ref]


def filter_agrees(policy: avgpolicy.Policy, partner: str, purpose: str, fields: list[str],
                  batch: list[Any], at: Any) -> None:
    """filter yields, per student with something permitted, exactly the fields decide allows."""
    if isinstance(at, datetime.datetime) and at.tzinfo is None:
        at = at.replace(tzinfo=policy.zone)
    if not _declared(policy, partner, purpose):  # an undeclared name is an error, not an empty feed
        with pytest.raises(avgpolicy.UnknownNameError):
            policy.filter(partner, purpose, fields, batch, at=at)
        assert not any(policy.decide(partner, purpose, fields, s, at=at).allowed for s in batch)
        return
    rows = list(policy.filter(partner, purpose, fields, batch, at=at))
    report = avgpolicy.FilterReport()
    again = list(policy.filter(partner, purpose, fields, batch, at=at, report=report))
    assert rows == again  # pseudonyms are deterministic; a report changes no row
    # the generated loop and the fallback (held check, then a projection plan per decision) agree, and so
    # do the reports they fill
    check = policy.compile(partner, purpose, fields)
    fallback = avgpolicy.FilterReport()
    assert rows == list(policy._rows(check, partner, tuple(fields), batch, at, fallback))
    assert fallback.to_dict() == report.to_dict()
    assert (len(rows), len(batch) - len(rows)) == (report.sent, report.left_out)
    subject = policy.model.catalogue.subject
    expected_rows = []
    for student in batch:
        decision = policy.decide(partner, purpose, fields, student, at=at)
        record = rt.as_record(student)
        row: dict[str, Any] = {}
        for ref, fd in decision.fields.items():
            info = policy.model.catalogue.fields.get(ref)
            if not fd.allowed or record is None or info is None:
                continue
            known, value = rt.field_value(record.get(info.name if info.dataset == subject else ref), info.type,
                                          policy.zone)
            if not known:  # (a value that converts without loss is released converted)
                continue
            if fd.transform == "year":
                value = ("year", value.year)
            elif fd.transform == "pseudonym":
                value = ("pseudonym", value)
            row[ref] = value
        if row:
            expected_rows.append(row)
    assert len(expected_rows) == len(rows)
    for want, got in zip(expected_rows, rows, strict=True):
        assert set(want) == set(got)
        for ref, value in want.items():
            if isinstance(value, tuple) and value[0] == "year":
                assert value[1] == got[ref]
            elif isinstance(value, tuple) and value[0] == "pseudonym":
                assert isinstance(got[ref], str) and got[ref] != value[1] and got[ref]
            else:
                assert value == got[ref]


# ---------------------------------------------------------------------------
# The engine's generator (fixed catalogue, edges of windows, consents)

_engine_queries = st.lists(st.tuples(requests(), students(), moments()), min_size=1, max_size=8)


def _engine_differential(file: Any, queries: list) -> None:
    progress("engine differential")
    policy = build(file)
    for (partner, purpose, fields), student, at in queries:
        agree(policy, partner, purpose, fields, student, at)


def _engine_filter(file: Any, req: tuple, batch: list, at: Any) -> None:
    progress("engine filter")
    policy = build(file, pseudonym_key=KEY)
    partner, purpose, fields = req
    filter_agrees(policy, partner, purpose, fields, batch, at)


@_small
@given(policy_files, _engine_queries)
def test_engine_sets_compiled_equals_interpreted(file: Any, queries: list) -> None:
    _engine_differential(file, queries)


@_small
@given(policy_files, requests(), st.lists(students(), max_size=8), moments())
def test_engine_sets_filter_equals_decide(file: Any, req: tuple, batch: list, at: Any) -> None:
    _engine_filter(file, req, batch, at)


@pytest.mark.slow
@_chunks
@_deep
@given(policy_files, _engine_queries)
def test_engine_sets_compiled_equals_interpreted_deep(chunk: int, file: Any, queries: list) -> None:
    _engine_differential(file, queries)


@pytest.mark.slow
@_chunks
@_deep
@given(policy_files, requests(), st.lists(students(), max_size=8), moments())
def test_engine_sets_filter_equals_decide_deep(chunk: int, file: Any, req: tuple, batch: list, at: Any) -> None:
    _engine_filter(file, req, batch, at)


# ---------------------------------------------------------------------------
# The fuzz generator (free catalogues, rendered as text through the parser)

@st.composite
def _text_cases(draw: st.DrawFn) -> tuple[avgpolicy.Policy, list]:
    spec = draw(policy_specs(max_rules=6, with_tests=False))
    policy = avgpolicy.loads(render(spec, Layout(draw(st.integers(0, 2**16)))), pseudonym_key=KEY)
    people = students_for(spec, Consent)
    queries = draw(st.lists(st.tuples(requests_for(spec), st.lists(people, min_size=1, max_size=4),
                                      any_moments()), min_size=1, max_size=4))
    return policy, queries


def _text_differential(case: tuple[avgpolicy.Policy, list]) -> None:
    progress("text differential+filter")
    policy, queries = case
    for (partner, purpose, fields), batch, at in queries:
        for student in batch:
            agree(policy, partner, purpose, fields, student, at)
        filter_agrees(policy, partner, purpose, fields, batch, at)


@_small
@given(_text_cases())
def test_text_sets_compiled_interpreted_filter_agree(case: tuple) -> None:
    _text_differential(case)


@pytest.mark.slow
@_chunks
@_deep
@given(_text_cases())
def test_text_sets_compiled_interpreted_filter_agree_deep(chunk: int, case: tuple) -> None:
    _text_differential(case)
