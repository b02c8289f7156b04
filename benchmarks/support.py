"""Benchmark support: generated sets loaded once, the records, tagging, and the agreement check.

Every timed case records in ``extra_info`` what it is (``engine``: avgpolicy,
baseline, cedar, casbin), which ``case`` it belongs to, the ``size`` of the set
and how many ``units`` (decisions or records) one round handles, so
``benchmarks/report.py`` can turn means into per-unit costs and ratios.
"""

from __future__ import annotations

import datetime
import functools
import importlib.util
import time
from collections.abc import Callable
from typing import Any

import avgpolicy
from benchmarks import baseline, gen

#: records per round for the per-record benchmarks
RECORDS = 1_000
PSEUDONYM_KEY = b"benchmark-pseudonym-key-32-bytes"


def has(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


@functools.cache
def policy(size: int) -> avgpolicy.Policy:
    """The generated set of ``size`` rules, loaded once per run."""
    return avgpolicy.loads(gen.policy_texts(size), pseudonym_key=PSEUDONYM_KEY, today=gen.AT)


@functools.cache
def records(n: int = RECORDS) -> tuple[dict[str, Any], ...]:
    return tuple(gen.students(n))


@functools.cache
def sample(n: int) -> tuple[dict[str, Any], ...]:
    """``n`` records, half of them flawed, for checks that cannot afford all of them (slow peers)."""
    flawed = [s for s in records() if gen.is_flawed(s)]
    clean = [s for s in records() if not gen.is_flawed(s)]
    return tuple(flawed[: n // 2] + clean[: n - min(n // 2, len(flawed))])


def verdicts(decision: Any, fields: tuple[str, ...]) -> list[bool]:
    return [decision.fields[f].allowed for f in fields]


def assert_avgpolicy_agrees(size: int, students: tuple[dict[str, Any], ...], day: datetime.date = gen.AT) -> None:
    """Compiled, interpreted and the hand-written baseline give the same verdicts on every request."""
    pol = policy(size)
    for q in gen.QUERIES:
        check = pol.compile(partner=q.partner, purpose=q.purpose, fields=list(q.fields))
        hand = baseline.BY_QUERY[q.name]
        for s in students:
            expected = [hand(s, day)[f] for f in q.fields]
            assert expected == verdicts(check(s, at=day), q.fields), (size, q.name, s)
            interpreted = pol.decide(partner=q.partner, purpose=q.purpose, fields=list(q.fields), student=s,
                                     at=day, engine="interpreted")
            assert expected == verdicts(interpreted, q.fields), (size, q.name, s)


def tag(benchmark: Any, *, engine: str, case: str, size: int, units: int, **extra: Any) -> None:
    benchmark.group = f"{case} @ {size} rules"
    benchmark.extra_info.update(engine=engine, case=case, size=size, units=units, **extra)


def call_loop(fn: Callable[[Any, datetime.date], Any], at: datetime.date = gen.AT) -> Callable[[], None]:
    """A round: ``fn(student, at)`` for every record (the same loop for avgpolicy and the baseline)."""
    students = records()

    def run() -> None:
        for s in students:
            fn(s, at)
    return run


def decide_loop(pol: avgpolicy.Policy, q: gen.Query, at: datetime.date = gen.AT) -> Callable[[], None]:
    """A round: ``policy.decide(...)`` with keyword arguments, as api.md writes it, for every record."""
    decide, students = pol.decide, records()
    partner, purpose, fields = q.partner, q.purpose, list(q.fields)

    def run() -> None:
        for s in students:
            decide(partner=partner, purpose=purpose, fields=fields, student=s, at=at)
    return run


def interleaved(runs: dict[str, Callable[[], Any]], rounds: int) -> dict[str, float]:
    """The fastest of ``rounds`` timings of each run, taking turns round by round.

    Sequential benchmarks on a shared machine catch its busy spells unevenly; taking
    turns exposes every run to the same spells, so ratios between them hold up.
    """
    best = dict.fromkeys(runs, float("inf"))
    names = list(runs)
    for i in range(rounds):
        for name in names[i % len(names):] + names[:i % len(names)]:
            t = time.perf_counter()
            runs[name]()
            best[name] = min(best[name], time.perf_counter() - t)
    return best


def mixed_loops(pol: avgpolicy.Policy, at: datetime.date = gen.AT) -> tuple[Callable[[], None], Callable[[], None]]:
    """Rounds of mixed traffic: record ``i`` is asked the scenario's request ``i mod 4``.

    Consecutive calls differ, so no last-request shortcut applies: ``decide`` finds its
    function in the cache every time. Returns (the decide round, the hand-written round).
    """
    students, queries = records(), gen.QUERIES
    asks = [(s, queries[i % len(queries)]) for i, s in enumerate(students)]
    ours = [(s, q.partner, q.purpose, list(q.fields)) for s, q in asks]
    hand = [(s, baseline.BY_QUERY[q.name]) for s, q in asks]
    decide = pol.decide

    def decide_run() -> None:
        for s, partner, purpose, fields in ours:
            decide(partner=partner, purpose=purpose, fields=fields, student=s, at=at)

    def baseline_run() -> None:
        for s, fn in hand:
            fn(s, at)
    return decide_run, baseline_run
