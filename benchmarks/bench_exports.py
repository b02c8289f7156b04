"""Export-log benchmarks: ``export.rows`` beside ``filter`` per record, and what writing a record costs.

* ``export.rows`` / ``filter`` per record on the hot-path scenario (``gen.FILTER`` over the generated
  records, 100-rule set), one record per batch of 1,000 and of 100,000 students, SQLite log with
  ``synchronous="full"`` (the default: an fsync per entry) and ``"normal"``. The export's figure
  includes everything: the started entry, the key check per student, the rows, the completion
  entry with the keys and the grants. Target: at most 1.3x ``filter``.
* The same in turns (``test_export_interleaved``): filter, the hand-written filter of
  ``benchmarks/baseline.py`` and the exports, one round each in rotating order, the fastest round
  of each kept: the ratios that hold on a busy machine (``extra_info["ratios"]``).
* Writing one record (its started and completed entries) as a function of the number of keys it
  holds (1 to 100,000), for SQLite (full and normal) and PostgreSQL.

Run: ``mkdir -p .benchmarks && python -m pytest benchmarks/bench_exports.py -p no:cacheprovider
--benchmark-json=.benchmarks/exports.json`` (PostgreSQL cases need AVG_TEST_POSTGRES_DSN).
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

import pytest

from avgpolicy.exports import ExportLog
from benchmarks import baseline, gen
from benchmarks.support import interleaved, records, tag

SIZE = 100
BATCHES = (1_000, 100_000)


def _rounds(n: int) -> int:
    return 40 if n <= 1_000 else 5


@pytest.fixture
def sqlite_log(tmp_path: Path) -> Any:
    def make(synchronous: str) -> ExportLog:
        return ExportLog(tmp_path / f"bench-{synchronous}.sqlite", synchronous=synchronous)
    return make


@pytest.mark.parametrize("n", BATCHES)
def test_filter(benchmark: Any, checked: Any, n: int) -> None:
    pol, q = checked(SIZE), gen.FILTER
    fields, students = list(q.fields), records(n)

    def run() -> None:
        for _ in pol.filter(q.partner, q.purpose, fields, students, at=gen.AT):
            pass

    tag(benchmark, engine="avgpolicy", case=f"filter batch {n}", size=SIZE, units=n)
    benchmark.pedantic(run, rounds=_rounds(n), warmup_rounds=1)


@pytest.mark.parametrize("synchronous", ["full", "normal"])
@pytest.mark.parametrize("n", BATCHES)
def test_export_rows(benchmark: Any, checked: Any, sqlite_log: Any, n: int, synchronous: str) -> None:
    pol, q = checked(SIZE), gen.FILTER
    fields, students = list(q.fields), records(n)
    log = sqlite_log(synchronous)
    # the export sends at most what filter sends: students without a usable key are left out
    sent = sum(1 for _ in pol.filter(q.partner, q.purpose, fields, students, at=gen.AT))

    def run() -> None:
        with pol.export(q.partner, q.purpose, fields, at=gen.AT, actor="bench", channel="bench", log=log) as export:
            for _ in export.rows(students):
                pass
        assert export.record is not None and export.record.students <= sent

    tag(benchmark, engine="avgpolicy", case=f"export.rows batch {n} sqlite-{synchronous}", size=SIZE, units=n)
    benchmark.pedantic(run, rounds=_rounds(n), warmup_rounds=1)


@pytest.mark.parametrize("n", BATCHES)
def test_export_interleaved(benchmark: Any, checked: Any, sqlite_log: Any, n: int) -> None:
    pol, q = checked(SIZE), gen.FILTER
    fields, students = list(q.fields), records(n)
    logs = {sync: sqlite_log(sync) for sync in ("full", "normal")}

    def filter_run() -> None:
        for _ in pol.filter(q.partner, q.purpose, fields, students, at=gen.AT):
            pass

    def hand_run() -> None:
        for _ in baseline.filter_gemengd(students, gen.AT):
            pass

    def export_run(sync: str) -> Any:
        def run() -> None:
            with pol.export(q.partner, q.purpose, fields, at=gen.AT, actor="bench", channel="bench",
                            log=logs[sync]) as export:
                for _ in export.rows(students):
                    pass
        return run

    runs = {"filter": filter_run, "hand-written filter": hand_run, "export.rows sqlite-full": export_run("full"),
            "export.rows sqlite-normal": export_run("normal")}
    rounds = 40 if n <= 1_000 else 6
    best = benchmark.pedantic(interleaved, args=(runs, rounds), rounds=1, iterations=1)
    tag(benchmark, engine="avgpolicy", case=f"export interleaved batch {n}", size=SIZE, units=n,
        per_unit={name: seconds / n for name, seconds in best.items()},
        ratios={name: seconds / best["filter"] for name, seconds in best.items()}, rounds_each=rounds)


def _record_writer(log: ExportLog, n: int) -> Any:
    """Write one record as an export does: the started entry, then the completion with ``n`` keys."""
    from avgpolicy.exports.record import dumps

    keys = dumps([f"s{i:06d}" for i in range(n)])
    start = {"actor": "bench", "channel": "bench", "partner": "p", "purpose": "u", "fields": ["leerling.roepnaam"],
             "policy_version": "x", "at": "2026-10-01", "key_field": "id", "partner_title": "P",
             "purpose_title": "U", "field_info": {}, "agreements_in_force": ["A-1"]}
    end = {"students": n, "distinct_keys": n, "left_out": 0, "left_out_reasons": {}, "not_released": 0,
           "not_released_reasons": {}, "error": None,
           "grants": {"leerling.roepnaam": [{"rule": "r", "basis": "contract", "law": None, "agreement": "A-1",
                                             "transform": None}]}}

    def run() -> None:
        first = log._append("started", start)
        log._append("completed", end, keys=keys, export=first.id)

    return run


RECORD_SIZES = (1, 1_000, 10_000, 100_000)


@pytest.mark.parametrize("synchronous", ["full", "normal"])
@pytest.mark.parametrize("n", RECORD_SIZES)
def test_write_record_sqlite(benchmark: Any, sqlite_log: Any, n: int, synchronous: str) -> None:
    tag(benchmark, engine="avgpolicy", case=f"write record sqlite-{synchronous} keys {n}", size=0, units=1)
    benchmark.pedantic(_record_writer(sqlite_log(synchronous), n), rounds=_rounds(n), warmup_rounds=1)


@pytest.mark.parametrize("n", RECORD_SIZES)
def test_write_record_postgres(benchmark: Any, n: int) -> None:
    dsn = os.environ.get("AVG_TEST_POSTGRES_DSN")
    if not dsn:
        pytest.skip("AVG_TEST_POSTGRES_DSN is not set")
    log = ExportLog(dsn, table=f"bench_{uuid.uuid4().hex[:12]}")
    try:
        tag(benchmark, engine="avgpolicy", case=f"write record postgres keys {n}", size=0, units=1)
        benchmark.pedantic(_record_writer(log, n), rounds=_rounds(n), warmup_rounds=1)
    finally:
        log.store.drop()  # type: ignore[attr-defined]
        log.close()
