"""Hot-path benchmarks: a held compiled function, decide and filter, each beside its hand-written baseline.

Every round runs over the same 1,000 generated student records (about 1 in 12
flawed), at one moment inside every window; the report divides by the records.
"""

from __future__ import annotations

from typing import Any

import pytest

from benchmarks import baseline, gen
from benchmarks.support import RECORDS, call_loop, decide_loop, mixed_loops, records, tag

SIZE = 100
QUERIES = {q.name: q for q in gen.QUERIES}


@pytest.mark.parametrize("name", list(QUERIES))
def test_compiled(benchmark: Any, checked: Any, name: str) -> None:
    q = QUERIES[name]
    check = checked(SIZE).compile(partner=q.partner, purpose=q.purpose, fields=list(q.fields))
    tag(benchmark, engine="avgpolicy", case=f"compiled {name}", size=SIZE, units=RECORDS)
    benchmark(call_loop(check))


@pytest.mark.parametrize("name", list(QUERIES))
def test_decide(benchmark: Any, checked: Any, name: str) -> None:
    tag(benchmark, engine="avgpolicy", case=f"decide {name}", size=SIZE, units=RECORDS)
    benchmark(decide_loop(checked(SIZE), QUERIES[name]))


@pytest.mark.parametrize("name", list(QUERIES))
def test_baseline(benchmark: Any, name: str) -> None:
    tag(benchmark, engine="baseline", case=f"baseline {name}", size=SIZE, units=RECORDS)
    benchmark(call_loop(baseline.BY_QUERY[name]))


def test_decide_mixed(benchmark: Any, checked: Any) -> None:
    tag(benchmark, engine="avgpolicy", case="decide mixed", size=SIZE, units=RECORDS)
    benchmark(mixed_loops(checked(SIZE))[0])


def test_baseline_mixed(benchmark: Any, checked: Any) -> None:
    tag(benchmark, engine="baseline", case="baseline mixed", size=SIZE, units=RECORDS)
    benchmark(mixed_loops(checked(SIZE))[1])


def test_filter(benchmark: Any, checked: Any) -> None:
    pol, q = checked(SIZE), gen.FILTER
    fields, students, at = list(q.fields), records(), gen.AT
    assert list(baseline.filter_gemengd(students, at)) == list(pol.filter(q.partner, q.purpose, fields, students,
                                                                           at=at))

    def run() -> None:
        for _ in pol.filter(q.partner, q.purpose, fields, students, at=at):
            pass

    tag(benchmark, engine="avgpolicy", case="filter gemengd", size=SIZE, units=RECORDS)
    benchmark(run)


def test_filter_baseline(benchmark: Any) -> None:
    students, at = records(), gen.AT

    def run() -> None:
        for _ in baseline.filter_gemengd(students, at):
            pass

    tag(benchmark, engine="baseline", case="filter baseline gemengd", size=SIZE, units=RECORDS)
    benchmark(run)
