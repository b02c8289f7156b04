"""Concurrency: one policy shared by 8 threads while its compile cache churns.

The cache holds 4 functions and the threads ask 48 different requests, so functions
are built, evicted and rebuilt all the time; held functions specialise their time
epochs lazily from several threads at once. Every decision must equal the one a
single thread gets from a fresh policy, and no thread may raise.
"""

from __future__ import annotations

import datetime
import itertools
import random
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import avgpolicy
from avgpolicy.decision import Consent

THREADS = 8
PER_THREAD = 250  # decisions per thread in the churn test (most of them compile anew)
POLICY = """
dataset leerling subject {
    id text personal
    school text personal
    leerjaar int personal
    geboortedatum date personal
    lesgroepen set personal
    zorg text special
}
dataset absentie { reden text sensitive }
partner snappet { agreement "A" valid from 2025-08-01 until 2026-07-31 }
partner dus-i { role controller kind government }
partner app { agreement "B" valid from 2025-01-01 until 2025-12-31 agreement "C" valid from 2026-02-01 }
purpose leermiddelen
purpose communicatie
consent foto reconfirm_at_16
permit p1 {
    partner snappet, app
    purpose leermiddelen
    basis contract
    fields leerling.{id, school, leerjaar, lesgroepen}, leerling.geboortedatum as year
    students where leerjaar in 3..8 and ("plus" in lesgroepen or school == "12AB")
    valid from 2025-09-01
}
permit p2 {
    partner app
    purpose communicatie
    basis consent(foto)
    fields leerling.id, leerling.school
    students where age < 18
}
permit p3 {
    partner dus-i
    purpose *
    basis legal_obligation("Wet op het primair onderwijs, art. 178a")
    art9 vital_interest dpia "DPIA-1"
    fields leerling.zorg, absentie.reden
    students where not school in ["99ZZ"]
    valid until 2026-03-31
}
forbid f1 {
    partner * except dus-i
    fields leerling.zorg, absentie.reden
}
forbid f2 {
    partner snappet
    fields leerling.lesgroepen
    students where leerjaar > 7
    valid from 2026-01-01
}
"""

FIELDS = ["leerling.id", "leerling.school", "leerling.leerjaar", "leerling.geboortedatum", "leerling.lesgroepen",
          "leerling.zorg", "absentie.reden", "leerling.nope"]
REQUESTS = [(p, u, fs) for p, u in itertools.product(["snappet", "dus-i", "app", "onbekend"],
                                                     ["leermiddelen", "communicatie"])
            for fs in (FIELDS[:3], FIELDS[2:6], [FIELDS[5]], FIELDS[3:8], FIELDS[:1], FIELDS)]
DECLARED = [r for r in REQUESTS if r[0] != "onbekend"]  # compile and filter raise UnknownNameError for the rest
MOMENTS = [datetime.date(2025, 8, 31), datetime.date(2025, 9, 1), datetime.date(2025, 12, 31),
           datetime.date(2026, 1, 1), datetime.date(2026, 3, 31), datetime.date(2026, 4, 1),
           datetime.datetime(2026, 7, 31, 23, 59), datetime.date(2026, 8, 1),
           datetime.datetime(2026, 3, 29, 1, 30, tzinfo=datetime.UTC)]


def students() -> list[Any]:
    rng = random.Random(7)
    out: list[Any] = [None, "geen record", {}]
    for i in range(30):
        out.append({
            "id": f"s{i}", "school": rng.choice(["12AB", "34CD", "99ZZ", 5]),
            "leerjaar": rng.choice([2, 3, 5, 8, 9, "5", None]),
            "geboortedatum": rng.choice([datetime.date(2010, 4, 1), datetime.date(2008, 3, 29), "2010-01-01"]),
            "lesgroepen": rng.choice([{"plus"}, frozenset(), ["plus", "b"], "plus"]),
            "zorg": "notitie", "absentie.reden": "ziek",
            "consents": {"foto": Consent(by=rng.choice(["parent", "student"]), given=datetime.date(2025, 1, 1))},
        })
    return out


STUDENTS = students()
CASES = [(r, s, m) for r in REQUESTS for s in range(len(STUDENTS)) for m in MOMENTS]


@contextmanager
def busy_switching() -> Iterator[None]:
    """Switch threads every 10 microseconds, so that races have a chance to show."""
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    try:
        yield
    finally:
        sys.setswitchinterval(old)


def single_threaded(indices: Any = None) -> dict[int, dict[str, Any]]:
    policy = avgpolicy.loads(POLICY)
    chosen = range(len(CASES)) if indices is None else sorted(set(indices))
    return {i: policy.decide(p, u, fs, STUDENTS[s], at=m).to_dict()
            for i in chosen for (p, u, fs), s, m in [CASES[i]]}


def thread_order(k: int) -> list[int]:
    order = list(range(len(CASES)))
    random.Random(k).shuffle(order)
    return order[:PER_THREAD]


def run_threads(work: Callable[[int], None]) -> list[BaseException]:
    errors: list[BaseException] = []
    barrier = threading.Barrier(THREADS)

    def main(k: int) -> None:
        try:
            barrier.wait()
            work(k)
        except BaseException as exc:  # reported by the test
            errors.append(exc)

    threads = [threading.Thread(target=main, args=(k,)) for k in range(THREADS)]
    with busy_switching():
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    return errors


def test_eight_threads_deciding_while_the_cache_churns() -> None:
    expected = single_threaded(i for k in range(THREADS) for i in thread_order(k))
    policy = avgpolicy.loads(POLICY, cache_size=4)
    mismatches: list[tuple[int, int]] = []

    def work(k: int) -> None:
        for i in thread_order(k):
            (p, u, fs), s, m = CASES[i]
            if policy.decide(p, u, fs, STUDENTS[s], at=m).to_dict() != expected[i]:
                mismatches.append((k, i))

    assert [] == run_threads(work)
    assert [] == mismatches
    info = policy.cache_info()
    assert 4 == info.maxsize
    assert info.currsize <= 4
    assert info.misses > len(REQUESTS)  # functions were evicted and rebuilt


def test_held_functions_specialise_epochs_from_many_threads() -> None:
    """Fresh functions (no epoch built yet) called by 8 threads at once, across every moment."""
    expected = single_threaded(i for i in range(len(CASES)) if any((i + k) % 16 == 0 for k in range(THREADS)))
    policy = avgpolicy.loads(POLICY, cache_size=2)
    checks = {i: policy.compile(*r) for i, r in enumerate(REQUESTS) if r in DECLARED}
    index = {(tuple(r[2]), r[0], r[1]): i for i, r in enumerate(REQUESTS)}
    mismatches: list[int] = []

    def work(k: int) -> None:
        for i, ((p, u, fs), s, m) in enumerate(CASES):
            if (i + k) % 16 or p == "onbekend":
                continue
            check = checks[index[(tuple(fs), p, u)]]
            if check(STUDENTS[s], at=m).to_dict() != expected[i]:
                mismatches.append(i)
            policy.compile(p, u, fs)  # keep the small cache churning meanwhile

    assert [] == run_threads(work)
    assert [] == mismatches


def test_filter_from_many_threads() -> None:
    policy = avgpolicy.loads(POLICY, cache_size=3, pseudonym_key=b"concurrency-key-0123456789abcdef")
    at = datetime.date(2025, 10, 1)
    want = {(*r[:2], tuple(r[2])): list(policy.filter(*r, STUDENTS, at=at)) for r in DECLARED}
    bad: list[tuple[Any, ...]] = []

    def work(k: int) -> None:
        for r in DECLARED[k::2]:
            key = (*r[:2], tuple(r[2]))
            if list(policy.filter(*r, STUDENTS, at=at)) != want[key]:
                bad.append(key)

    assert [] == run_threads(work)
    assert [] == bad
