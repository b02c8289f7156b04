"""Interleaved benchmark: every hot-path run and its reference timed in turns, for ratios that survive a busy machine.

The other benchmarks run one after another; on a shared 2-core machine a busy
spell during one of them skews a ratio. Here each round runs every loop once,
in rotating order, and the fastest round of each is kept (per record), so the
report can put these ratios beside the sequential ones.
"""

from __future__ import annotations

from typing import Any

from benchmarks import baseline, gen
from benchmarks.support import RECORDS, call_loop, decide_loop, interleaved, mixed_loops, records, tag

ROUNDS = 60
HOT_SIZE = 100


def test_interleaved(benchmark: Any, checked: Any) -> None:
    runs = {}
    for q in gen.QUERIES:
        pol = checked(HOT_SIZE)
        runs[f"compiled {q.name}@{HOT_SIZE}"] = call_loop(pol.compile(partner=q.partner, purpose=q.purpose,
                                                                      fields=list(q.fields)))
        runs[f"decide {q.name}@{HOT_SIZE}"] = decide_loop(pol, q)
        runs[f"baseline {q.name}@{HOT_SIZE}"] = call_loop(baseline.BY_QUERY[q.name])
    pol = checked(HOT_SIZE)
    runs[f"decide mixed@{HOT_SIZE}"], runs[f"baseline mixed@{HOT_SIZE}"] = mixed_loops(pol)
    q, students, at = gen.FILTER, records(), gen.AT

    def filter_run() -> None:
        for _ in pol.filter(q.partner, q.purpose, list(q.fields), students, at=at):
            pass

    def filter_baseline() -> None:
        for _ in baseline.filter_gemengd(students, at):
            pass

    runs[f"filter gemengd@{HOT_SIZE}"] = filter_run
    runs[f"filter baseline gemengd@{HOT_SIZE}"] = filter_baseline
    for size in gen.SIZES:
        sized = checked(size)
        runs[f"latency compiled@{size}"] = call_loop(sized.compile(partner=gen.HOT.partner, purpose=gen.HOT.purpose,
                                                                   fields=list(gen.HOT.fields)))
        runs[f"latency decide@{size}"] = decide_loop(sized, gen.HOT)
    best = benchmark.pedantic(interleaved, args=(runs, ROUNDS), rounds=1, iterations=1)
    tag(benchmark, engine="all", case="interleaved", size=HOT_SIZE, units=1,
        per_unit={name: seconds / RECORDS for name, seconds in best.items()}, rounds_each=ROUNDS)
