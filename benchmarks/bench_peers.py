"""Peer benchmarks: the same set and scenario in Cedar (cedarpy) and Casbin, after checking equal decisions.

Optional: they run where the ``bench`` extra is installed and are skipped
otherwise. Each peer holds the whole translated set of the given size. Before
timing, every scenario request (all four requests, over the records below) must
get the same per-field verdicts from the peer as from avgpolicy and the
hand-written baseline. The timed loop is the peer's decision call alone, on
inputs prepared beforehand, so the figures are a lower bound on the peer's cost.
"""

from __future__ import annotations

from typing import Any

import pytest

from benchmarks import baseline, gen
from benchmarks.peers import CasbinPeer, CedarPeer, day_number
from benchmarks.support import policy, records, sample, tag

#: decisions per round, and records checked for agreement (all, or a half-flawed sample), per peer and size;
#: the peers get slow as sets grow
CEDAR = {10: (200, 1_000), 100: (100, 1_000), 1_000: (20, 100), 10_000: (5, 12)}
CASBIN = {10: (10, 60), 100: (3, 12)}


def agreement_records(n: int) -> tuple[dict[str, Any], ...]:
    return records() if n >= len(records()) else sample(n)


def expected(q: gen.Query, student: dict[str, Any]) -> list[bool]:
    verdicts = baseline.BY_QUERY[q.name](student, gen.AT)
    return [verdicts[f] for f in q.fields]


@pytest.mark.parametrize("size", list(CEDAR))
def test_cedar(benchmark: Any, checked: Any, size: int) -> None:
    pytest.importorskip("cedarpy")
    checked(size)  # avgpolicy agrees with the baseline at this size
    peer = CedarPeer(policy(size).model, validate=size <= 1_000)
    per_round, agree_on = CEDAR[size]
    students = agreement_records(agree_on)
    entities = peer.entities(students)
    for q in gen.QUERIES:
        for i, s in enumerate(students):
            asked = peer.requests(i, s, q.partner, q.purpose, q.fields, gen.AT)
            assert expected(q, s) == peer.decide(asked, entities), ("cedar", size, q.name, s)
    q = gen.HOT
    entities = peer.entities(records()[:per_round])
    prepared = [peer.requests(i, s, q.partner, q.purpose, q.fields, gen.AT)
                for i, s in enumerate(records()[:per_round])]

    def run() -> None:
        for asked in prepared:
            peer.decide(asked, entities)

    tag(benchmark, engine="cedar", case="cedar decision", size=size, units=per_round,
        agreed_records=agree_on, policies=peer.policy_text.count(";\n"))
    benchmark.pedantic(run, rounds=5 if size <= 1_000 else 3, iterations=1, warmup_rounds=1)


@pytest.mark.parametrize("size", list(CASBIN))
def test_casbin(benchmark: Any, checked: Any, size: int) -> None:
    pytest.importorskip("casbin")
    checked(size)
    peer = CasbinPeer(policy(size).model)
    per_round, agree_on = CASBIN[size]
    day = day_number(gen.AT)
    for q in gen.QUERIES:
        for s in agreement_records(agree_on):
            got = peer.decide(peer.student(s, gen.AT), q.partner, q.purpose, q.fields, day)
            assert expected(q, s) == got, ("casbin", size, q.name, s)
    q = gen.HOT
    prepared = [peer.student(s, gen.AT) for s in records()[:per_round]]

    def run() -> None:
        for stu in prepared:
            peer.decide(stu, q.partner, q.purpose, q.fields, day)

    tag(benchmark, engine="casbin", case="casbin decision", size=size, units=per_round,
        agreed_records=agree_on, policy_lines=len(peer.lines))
    benchmark.pedantic(run, rounds=5 if size <= 10 else 3, iterations=1, warmup_rounds=0)
