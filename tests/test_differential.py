"""Differential tests: the compiled engine agrees with the reference interpreter, field by field.

Generated policies (catalogue, agreements, permits and forbids with conditions and
windows), student records with missing and ill-typed values, consents and moments.
The whole Decision must be equal (outcomes, reason codes in order, messages, rules).
"""

from __future__ import annotations

import pytest
from engine_strategies import build, moments, policy_files, render, requests, students
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import avgpolicy

_BASE = settings.default.max_examples  # scaled by the hypothesis profile (ci: 200)
_queries = st.lists(st.tuples(requests(), students(), moments()), min_size=1, max_size=4)


def _agree(policy: avgpolicy.Policy, queries: list) -> None:
    for (partner, purpose, fields), student, at in queries:
        expected = policy.decide(partner, purpose, fields, student, at=at, engine="interpreted")
        actual = policy.decide(partner, purpose, fields, student, at=at)
        assert expected.to_dict() == actual.to_dict()
        assert expected == actual
        if partner not in policy.model.partners or purpose not in policy.model.purposes:
            continue  # decided by the interpreter, never compiled (compile raises UnknownNameError)
        # a held function, called again with the same moment object (the resolved-moment fast path)
        check = policy.compile(partner, purpose, fields)
        assert expected == check(student, at=at)
        assert [r.code for r in expected.reasons] == [r.code for r in check(student, at).reasons]


@settings(max_examples=min(10 * _BASE, 5000), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(policy_files, _queries)
def test_compiled_equals_interpreted(file, queries: list) -> None:
    _agree(build(file), queries)


@pytest.mark.slow
@settings(max_examples=max(100 * _BASE, 20_000), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(policy_files, st.lists(st.tuples(requests(), students(), moments()), min_size=1, max_size=20))
def test_compiled_equals_interpreted_deep(file, queries: list) -> None:
    _agree(build(file), queries)


@settings(max_examples=_BASE, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(policy_files, requests(), st.lists(st.tuples(students(), moments()), min_size=2, max_size=12))
def test_one_held_function_over_many_moments(file, req: tuple, cases: list) -> None:
    """Through the parser (locations in reasons): one compiled function, called across window
    boundaries, equals the interpreter every time."""
    policy = avgpolicy.loads(render(file))
    partner, purpose, fields = req
    if partner not in policy.model.partners or purpose not in policy.model.purposes:
        return  # an undeclared name is never compiled (compile raises UnknownNameError)
    check = policy.compile(partner, purpose, fields)
    for student, at in cases:
        assert policy.decide(partner, purpose, fields, student, at=at, engine="interpreted") == check(student, at)
