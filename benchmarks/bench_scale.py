"""Scale benchmarks: load + validate + compile, and per-decision latency, for sets of 10 to 10,000 rules.

The scenario is the same at every size (the generator's core), so a flat
latency line shows that a decision costs the same whatever the number of rules.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

import avgpolicy
from avgpolicy import loader, model
from benchmarks import gen
from benchmarks.support import PSEUDONYM_KEY, RECORDS, call_loop, decide_loop, tag

#: timed rounds per size for the (slow) load benchmark
LOAD_ROUNDS = {10: 10, 100: 5, 1_000: 5, 10_000: 5}


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Path]:
    out = {}
    for size in gen.SIZES:
        folder = tmp_path_factory.mktemp(f"set{size}")
        gen.write_policy(size, str(folder))
        out[size] = folder
    avgpolicy.load(out[10])  # builds the shared parser once, outside any timing
    return out


def load_and_compile(folder: Path) -> avgpolicy.Policy:
    pol = avgpolicy.load(folder, pseudonym_key=PSEUDONYM_KEY, today=gen.AT)
    for q in gen.QUERIES:
        pol.compile(partner=q.partner, purpose=q.purpose, fields=list(q.fields))
    return pol


def phases(folder: Path) -> dict[str, float]:
    """Wall seconds per stage of one load (read, parse, check, build, compile), and its CPU seconds in all.

    The stages run one by one, so without the loader's GC pause around parse, check and
    build; CPU time (``time.process_time``) leaves out the time other processes take.
    """
    from avgpolicy.checker import check
    from avgpolicy.parser import parse

    out: dict[str, float] = {}
    cpu = time.process_time()
    t = time.perf_counter()
    sources = loader.read_sources([folder])
    out["read"], t = time.perf_counter() - t, time.perf_counter()
    files = [parse(s)[0] for s in sources]
    out["parse"], t = time.perf_counter() - t, time.perf_counter()
    diagnostics = check(files, today=gen.AT)
    out["check"], t = time.perf_counter() - t, time.perf_counter()
    assert not [d for d in diagnostics if d.is_error]
    resolved = model.build(files)
    out["build"], t = time.perf_counter() - t, time.perf_counter()
    pol = avgpolicy.Policy(resolved, version="phases", zone=loader._zone(loader.DEFAULT_TIMEZONE),
                           pseudonym_key=PSEUDONYM_KEY)
    for q in gen.QUERIES:
        pol.compile(partner=q.partner, purpose=q.purpose, fields=list(q.fields))
    out["compile"] = time.perf_counter() - t
    out["CPU in all"] = time.process_time() - cpu
    return {k: round(v, 4) for k, v in out.items()}


@pytest.mark.parametrize("size", gen.SIZES)
def test_load(benchmark: Any, folders: dict[int, Path], size: int) -> None:
    cpu = time.process_time()
    load_and_compile(folders[size])
    cpu = time.process_time() - cpu
    tag(benchmark, engine="avgpolicy", case="load+validate+compile", size=size, units=1, cpu_seconds=round(cpu, 4),
        phases=phases(folders[size]))
    pol = benchmark.pedantic(load_and_compile, args=(folders[size],), rounds=LOAD_ROUNDS[size], iterations=1)
    assert size == len(pol.model.rules)


@pytest.mark.parametrize("size", gen.SIZES)
def test_latency_compiled(benchmark: Any, checked: Any, size: int) -> None:
    q = gen.HOT
    check = checked(size).compile(partner=q.partner, purpose=q.purpose, fields=list(q.fields))
    tag(benchmark, engine="avgpolicy", case="latency compiled", size=size, units=RECORDS)
    benchmark(call_loop(check))


@pytest.mark.parametrize("size", gen.SIZES)
def test_latency_decide(benchmark: Any, checked: Any, size: int) -> None:
    tag(benchmark, engine="avgpolicy", case="latency decide", size=size, units=RECORDS)
    benchmark(decide_loop(checked(size), gen.HOT))
