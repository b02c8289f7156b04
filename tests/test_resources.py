"""Resource bounds: huge records, requests, conditions and policy files end in a decision or a clear error.

Each case must finish without RecursionError or hang, in time that grows about
linearly (measured as a ratio between a size and ten times that size, with a
generous bound; CPU time of the process, so that other load on the machine does not
count) and in memory proportional to the input. The 50 MB policy file is
``slow``; a 5 MB one runs by default. Big loads run in a child process, so that
their peak memory (ru_maxrss) is their own.
"""

from __future__ import annotations

import datetime
import functools
import json
import subprocess
import sys
import textwrap
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import avgpolicy
from avgpolicy import PolicyError

AT = datetime.date(2025, 10, 1)
RATIO = 40  # 10x the input within 40x the time: linear, with room for cache and load; quadratic is 100x
HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

BASE = """dataset leerling subject {
    id text personal
    school text personal
    leerjaar int personal
    geboortedatum date personal
    lesgroepen set personal
}
partner snappet { role controller }
purpose leermiddelen
"""


def best_time(fn: Callable[[], Any], repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.process_time()
        fn()
        best = min(best, time.process_time() - t0)
    return max(best, 1e-6)


def peak_memory(fn: Callable[[], Any]) -> tuple[Any, int]:
    """fn's result and the peak of memory it allocated (bytes, tracemalloc)."""
    tracemalloc.start()
    try:
        result = fn()
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


# ---------------------------------------------------------------------------
# A record with a million-element set


SET_POLICY = BASE + """permit groepen {
    partner snappet
    purpose leermiddelen
    basis contract
    fields leerling.{school, lesgroepen}
    students where "plusklas" in lesgroepen and not "x-0" in lesgroepen or "y" not in lesgroepen
}
"""


@pytest.mark.parametrize("kind", [frozenset, list])
def test_a_million_element_set_decides_in_linear_time_and_memory(kind: type) -> None:
    policy = avgpolicy.loads(SET_POLICY)
    fields = ["leerling.school", "leerling.lesgroepen"]

    def student(n: int) -> dict[str, Any]:
        return {"school": "12AB", "lesgroepen": kind([f"g{i}" for i in range(n)] + ["plusklas"])}

    small, big = student(100_000), student(1_000_000)
    for engine in ("compiled", "interpreted"):
        decide = functools.partial(policy.decide, "snappet", "leermiddelen", fields, at=AT, engine=engine)
        d, peak = peak_memory(functools.partial(decide, big))
        assert True is d.allowed, d.explain()
        assert peak < 200 * 2**20, f"{engine}: deciding over a 1M set allocated {peak / 2**20:.0f} MiB"
        ratio = best_time(functools.partial(decide, big), 2) / best_time(functools.partial(decide, small), 2)
        assert ratio < RATIO, f"{engine}: 10x the set took {ratio:.1f}x as long"
    # an ill-typed element anywhere makes the value ill-typed: denied, never raised
    bad = student(1_000_000)
    bad["lesgroepen"] = kind([*bad["lesgroepen"], 5]) if kind is not frozenset else frozenset([*bad["lesgroepen"], 5])
    d = policy.decide("snappet", "leermiddelen", fields, bad, at=AT)
    assert False is d.allowed
    rows = list(policy.filter("snappet", "leermiddelen", fields, [student(1_000_000)], at=AT))
    assert 1 == len(rows) and 1_000_001 == len(rows[0]["leerling.lesgroepen"])


# ---------------------------------------------------------------------------
# A 10,000-field request


def wide_policy(n_fields: int) -> str:
    fields = "\n".join(f"    veld{i} {'int' if i % 3 else 'text'} personal" for i in range(n_fields))
    return BASE + f"""dataset breed {{
{fields}
}}
permit alles {{
    partner snappet
    purpose leermiddelen
    basis contract
    fields breed.*
    students where leerjaar >= 3
}}
forbid een_paar {{
    partner snappet
    fields breed.veld7, breed.veld{n_fields - 1}
    students where school == "geheim"
}}
"""


def test_a_10000_field_request_decides_in_linear_time() -> None:
    def run(n: int) -> tuple[float, Any]:
        text = wide_policy(n)
        fields = [f"breed.veld{i}" for i in range(n)]
        student = {"school": "12AB", "leerjaar": 5}

        def go() -> Any:  # load, compile (a cold cache) and decide
            return avgpolicy.loads(text).decide("snappet", "leermiddelen", fields, student, at=AT)
        return best_time(go, 2), go()

    t_small, d_small = run(1_000)
    t_big, d_big = run(10_000)
    assert True is d_small.allowed and True is d_big.allowed
    assert 10_000 == len(d_big.fields)
    assert t_big / t_small < RATIO, f"10,000 fields took {t_big / t_small:.1f}x as long as 1,000"


def test_10000_unknown_and_repeated_fields_are_denied_not_raised() -> None:
    policy = avgpolicy.loads(BASE)
    fields = [f"leerling.nope{i}" for i in range(5_000)] + ["leerling.school"] * 5_000
    for engine in ("compiled", "interpreted"):
        d = policy.decide("snappet", "leermiddelen", fields, {"school": "x"}, at=AT, engine=engine)
        assert False is d.allowed
        assert "unknown_field" in {r.code for r in d.reasons}


# ---------------------------------------------------------------------------
# Deep and wide conditions


def condition_policy(cond: str) -> str:
    return BASE + f"""permit r {{
    partner snappet
    purpose leermiddelen
    basis contract
    fields leerling.school
    students where {cond}
}}
"""


def nested(depth: int) -> str:
    """`not (a or (b and (not (c or ...))))`: every level a real one."""
    cond = "leerjaar == 3"
    for i in range(depth):
        if i % 3 == 0:
            cond = f"not ({cond})"
        elif i % 3 == 1:
            cond = f'(school == "s{i}" or {cond})'
        else:
            cond = f"(leerjaar >= {i % 7} and {cond})"
    return cond


@pytest.mark.parametrize("depth", [1_000, 10_000])
def test_a_condition_nested_beyond_the_limit_is_a_clear_error(depth: int) -> None:
    with pytest.raises(PolicyError) as info:
        avgpolicy.loads(condition_policy(nested(depth)))
    assert ["E005"] == [d.code for d in info.value.errors]


def test_a_condition_at_the_nesting_limit_decides_in_both_engines() -> None:
    from avgpolicy.parser import MAX_DEPTH

    depth = MAX_DEPTH - 2  # the atom and the students clause take a level each
    while True:
        try:
            policy = avgpolicy.loads(condition_policy(nested(depth)))
            break
        except PolicyError as err:
            assert {"E005"} == {d.code for d in err.errors}
            depth -= 1
    assert depth >= MAX_DEPTH - 4
    for student in ({"school": "12AB", "leerjaar": 3}, {"school": "s1", "leerjaar": 5}, {}, {"leerjaar": "x"}):
        compiled = policy.decide("snappet", "leermiddelen", ["leerling.school"], student, at=AT)
        interpreted = policy.decide("snappet", "leermiddelen", ["leerling.school"], student, at=AT,
                                    engine="interpreted")
        assert interpreted == compiled


@pytest.mark.parametrize("shape", ["or", "and", "in_list"])
def test_a_condition_with_10000_terms_decides_in_linear_time(shape: str) -> None:
    def cond(n: int) -> str:
        if shape == "in_list":
            return "school in [" + ", ".join(f'"s{i}"' for i in range(n)) + "]"
        if shape == "or":
            return " or ".join(f'school == "s{i}"' for i in range(n))
        return " and ".join(f'school != "s{i}"' for i in range(n))

    def oracle(n: int, student: dict[str, str]) -> tuple[bool, list[str]]:
        """The answer worked out in plain Python, not by either engine (over 500 atoms the
        compiled path hands the epoch to the interpreter, so comparing the two proves little)."""
        if "school" not in student:
            return False, ["missing_attribute"]
        listed = student["school"] in {f"s{i}" for i in range(n)}
        holds = listed if shape != "and" else not listed
        return holds, ["permitted"] if holds else ["not_in_subset"]

    def run(n: int) -> tuple[float, Any]:
        t0 = time.process_time()
        policy = avgpolicy.loads(condition_policy(cond(n)))
        for student in ({"school": f"s{n - 1}"}, {"school": "zz"}, {}):
            compiled = policy.decide("snappet", "leermiddelen", ["leerling.school"], student, at=AT)
            assert oracle(n, student) == (compiled.allowed, [r.code for r in compiled.reasons])
            assert compiled == policy.decide("snappet", "leermiddelen", ["leerling.school"], student, at=AT,
                                             engine="interpreted")
        return time.process_time() - t0, policy

    t_small, _ = run(1_000)
    t_big, policy = run(10_000)
    assert t_big / t_small < RATIO, f"{shape}: 10,000 terms took {t_big / t_small:.1f}x as long as 1,000"
    d = policy.decide("snappet", "leermiddelen", ["leerling.school"], {"school": "s9999"}, at=AT)
    assert (shape != "and") is d.allowed
    if shape == "and":  # the failed part quoted is the one conjunct that is false
        assert "the student is outside the subset of rule r: `school != \"s9999\"` does not hold" == \
            d.reasons[0].message


# ---------------------------------------------------------------------------
# Big policy files, loaded in a child process


_CHILD = textwrap.dedent("""
    import datetime, json, resource, sys, time
    sys.path.insert(0, {tests!r}); sys.path.insert(0, {root!r})
    from test_fuzz import _big_valid_text
    import avgpolicy
    text = _big_valid_text({size})
    def rss_now():  # KiB resident now (Linux), else the peak so far
        try:
            with open("/proc/self/status") as f:
                return next(int(x.split()[1]) for x in f if x.startswith("VmRSS:"))
        except (OSError, StopIteration):
            return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    rss0 = rss_now()
    t0 = time.process_time()
    policy = avgpolicy.loads(text)
    seconds = time.process_time() - t0  # CPU time
    d = policy.decide("p0", "u0", ["leerling.school", "leerling.leerjaar"],  # r0: basis contract
                      {{"school": "34CD", "leerjaar": 5, "geboortedatum": datetime.date(2015, 1, 1)}},
                      at=datetime.date(2025, 10, 1))
    rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({{"bytes": len(text.encode()), "seconds": seconds, "rules": len(policy.model.rules),
                       "allowed": d.allowed, "rss_before_kib": rss0, "rss_peak_kib": rss1}}))
""")


def load_in_child(size: int) -> dict[str, Any]:
    script = _CHILD.format(tests=str(HERE), root=str(ROOT), size=size)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=3600, check=False)
    assert 0 == proc.returncode, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def check_big_load(size: int) -> dict[str, Any]:
    small, big = load_in_child(size // 10), load_in_child(size)
    print(f"\n{small['bytes'] / 1e6:.1f} MB: {small['seconds']:.1f}s; {big['bytes'] / 1e6:.1f} MB: "
          f"{big['seconds']:.1f}s (ratio {big['seconds'] / small['seconds']:.1f}x), "
          f"peak RSS growth {(big['rss_peak_kib'] - big['rss_before_kib']) / 1024:.0f} MiB")
    assert True is big["allowed"] and big["rules"] > 0
    assert big["seconds"] / small["seconds"] < RATIO
    grown = (big["rss_peak_kib"] - big["rss_before_kib"]) * 1024
    assert grown < 400 * big["bytes"], f"loading {big['bytes']} bytes grew the process by {grown} bytes"
    return big


def test_a_5mb_policy_file_loads_in_linear_time_and_memory() -> None:
    check_big_load(5_000_000)


@pytest.mark.slow
def test_a_50mb_policy_file_loads_in_linear_time_and_memory() -> None:
    check_big_load(50_000_000)
