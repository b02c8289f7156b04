"""Compile cost (issue 15 items 3-4): the first compiled decision of a request against the interpreter's.

Target: the first compiled decision of a fresh request on a fresh Policy costs at most 10x the
reference interpreter's decision on the same request, for each case of ``compile_cases`` (8 permits
of 498 atoms; 60 and 120 monthly permits; 1,000 window boundaries); later decisions keep their speed.

Per case, each timed call gets a Policy loaded for it (the load is not timed):

* ``first compiled decision``: ``policy.decide(...)`` on the fresh Policy: the request is compiled (its
  held function) and the code of the moment's epoch generated, then the student decided;
* ``interpreted decision``: ``policy.decide(..., engine="interpreted")`` on the same request;
* ``new epoch decision``: the first decision in another epoch of a request already decided once (a
  weekly decision that reaches a new month): that epoch's code is generated in this call;
* ``held decision``: the held function deciding again in an epoch it has code for (per decision);
* ``weekly decisions`` (monthly cases): a fresh Policy asked once a week over the whole span, compiled
  and interpreted; the slowest single call of the compiled round is recorded (``worst_call``).

No call is served by a tier that hides code generation in a later call: the first decision in an
epoch generates that epoch's code (or, over the per-epoch atom budget, is interpreted for good).
``compile interleaved`` times first/interpreted/new-epoch in turns (fastest of ROUNDS each) for the
report's interleaved column.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

import avgpolicy
from benchmarks.compile_cases import PARTNER, PURPOSE, STUDENT, Case, cases
from benchmarks.support import tag

ROUNDS = 15
HELD_CALLS = 1_000
CASES = cases()


def fresh(case: Case) -> avgpolicy.Policy:
    return avgpolicy.loads(case.text)


def first_decision(pol: avgpolicy.Policy, case: Case) -> Any:
    return pol.decide(PARTNER, PURPOSE, list(case.fields), STUDENT, at=case.at)


def interpreted_decision(pol: avgpolicy.Policy, case: Case) -> Any:
    return pol.decide(PARTNER, PURPOSE, list(case.fields), STUDENT, at=case.at, engine="interpreted")


def assert_agree(case: Case) -> None:
    pol = fresh(case)
    for at in (case.at, case.other, *case.weeks[::5]):
        expected = pol.decide(PARTNER, PURPOSE, list(case.fields), STUDENT, at=at, engine="interpreted")
        assert expected == pol.decide(PARTNER, PURPOSE, list(case.fields), STUDENT, at=at), (case.name, at)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_first_compiled_decision(benchmark: Any, case: Case) -> None:
    assert_agree(case)
    benchmark.pedantic(first_decision, setup=lambda: ((fresh(case), case), {}), rounds=ROUNDS, iterations=1)
    tag(benchmark, engine="avgpolicy", case="first compiled decision", size=case.rules, units=1, label=case.label)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_interpreted_decision(benchmark: Any, case: Case) -> None:
    pol = fresh(case)
    benchmark.pedantic(interpreted_decision, args=(pol, case), rounds=ROUNDS * 4, iterations=1)
    tag(benchmark, engine="interpreter", case="interpreted decision", size=case.rules, units=1, label=case.label)


@pytest.mark.parametrize("case", [c for c in CASES if c.other != c.at], ids=lambda c: c.name)
def test_new_epoch_decision(benchmark: Any, case: Case) -> None:
    def setup() -> tuple[tuple[Any, ...], dict[str, Any]]:
        pol = fresh(case)
        check = pol.compile(PARTNER, PURPOSE, list(case.fields))
        check(STUDENT, case.at)
        return (check, STUDENT, case.other), {}

    benchmark.pedantic(lambda check, s, at: check(s, at), setup=setup, rounds=ROUNDS, iterations=1)
    tag(benchmark, engine="avgpolicy", case="new epoch decision", size=case.rules, units=1, label=case.label)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_held_decision(benchmark: Any, case: Case) -> None:
    check = fresh(case).compile(PARTNER, PURPOSE, list(case.fields))
    check(STUDENT, case.at)
    at = case.at

    def run() -> None:
        for _ in range(HELD_CALLS):
            check(STUDENT, at)

    benchmark.pedantic(run, rounds=ROUNDS, iterations=1)
    tag(benchmark, engine="avgpolicy", case="held decision", size=case.rules, units=HELD_CALLS, label=case.label)


def weekly(pol: avgpolicy.Policy, case: Case, engine: str) -> float:
    """Decide once a week over the span; returns the slowest single call (seconds)."""
    decide, fields, worst = pol.decide, list(case.fields), 0.0
    for at in case.weeks:
        t = time.perf_counter()
        decide(PARTNER, PURPOSE, fields, STUDENT, at=at, engine=engine)
        worst = max(worst, time.perf_counter() - t)
    return worst


@pytest.mark.parametrize("engine", ["compiled", "interpreted"])
@pytest.mark.parametrize("case", [c for c in CASES if c.weeks], ids=lambda c: c.name)
def test_weekly_decisions(benchmark: Any, case: Case, engine: str) -> None:
    worst: list[float] = []
    benchmark.pedantic(lambda pol: worst.append(weekly(pol, case, engine)), setup=lambda: ((fresh(case),), {}),
                       rounds=5, iterations=1)
    tag(benchmark, engine=engine, case=f"weekly decisions {engine}", size=case.rules, units=len(case.weeks),
        label=case.label, worst_call=min(worst))


def paired(case: Case, rounds: int) -> dict[str, float]:
    """Fastest of ``rounds`` of each measure, taken in turns (a fresh Policy per round)."""
    best = {"first": float("inf"), "interpreted": float("inf"), "new epoch": float("inf")}
    for _ in range(rounds):
        pol = fresh(case)
        t = time.perf_counter()
        check = pol.compile(PARTNER, PURPOSE, list(case.fields))
        first_decision(pol, case)
        best["first"] = min(best["first"], time.perf_counter() - t)
        t = time.perf_counter()
        interpreted_decision(pol, case)
        best["interpreted"] = min(best["interpreted"], time.perf_counter() - t)
        t = time.perf_counter()
        check(STUDENT, case.other)
        best["new epoch"] = min(best["new epoch"], time.perf_counter() - t)
    return best


def test_compile_interleaved(benchmark: Any) -> None:
    def run() -> dict[str, float]:
        out = {}
        for case in CASES:
            for name, seconds in paired(case, ROUNDS).items():
                measure = "first compiled decision" if name == "first" else f"{name} decision"
                out[f"{measure}@{case.rules}"] = seconds
        return out

    per_unit = benchmark.pedantic(run, rounds=1, iterations=1)
    tag(benchmark, engine="all", case="compile interleaved", size=0, units=1, per_unit=per_unit, rounds_each=ROUNDS)


def test_scenario_first_decisions(benchmark: Any) -> None:
    """For comparison (no target): the first compiled decision of each request of the generated scenario
    (``benchmarks/gen.py``, 100 rules), whose interpreted decisions cost tens of microseconds, against the
    interpreter on the same request, in turns (fastest of ROUNDS each)."""
    from benchmarks import gen

    texts = gen.policy_texts(100)
    student = gen.students(1)[0]

    def run() -> dict[str, float]:
        best: dict[str, float] = {}
        for _ in range(ROUNDS):
            for q in gen.QUERIES:
                pol = avgpolicy.loads(texts, today=gen.AT)
                t = time.perf_counter()
                pol.decide(q.partner, q.purpose, list(q.fields), student, at=gen.AT)
                first = time.perf_counter() - t
                t = time.perf_counter()
                pol.decide(q.partner, q.purpose, list(q.fields), student, at=gen.AT, engine="interpreted")
                interpreted = time.perf_counter() - t
                best[f"first {q.name}"] = min(best.get(f"first {q.name}", first), first)
                best[f"interpreted {q.name}"] = min(best.get(f"interpreted {q.name}", interpreted), interpreted)
        return best

    best = benchmark.pedantic(run, rounds=1, iterations=1)
    tag(benchmark, engine="all", case="compile scenario", size=100, units=1, per_request=best,
        ratios={q.name: round(best[f"first {q.name}"] / best[f"interpreted {q.name}"], 1) for q in gen.QUERIES})
