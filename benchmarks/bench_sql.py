"""Pushdown to SQL: plan.run against fetching every row into Python + filter, and against a
hand-written query doing the same selection (api.md "v2: pushdown to SQL").

DuckDB at 1,000,000 generated students, PostgreSQL at 100,000 (AVG_TEST_POSTGRES_DSN). The
students are generated inside the database (deterministic from the row number: schools, years,
birth dates with 29 February, NULLs). Every variant returns the same rows as dicts keyed by the
requested fields, which each benchmark checks before it is timed. Targets: plan.run >= 5x faster
than fetch + filter; within 1.2x of the hand-written query.
"""

from __future__ import annotations

import datetime as dt
import os
from typing import Any

import pytest

import avgpolicy

duckdb = pytest.importorskip("duckdb")
AT = dt.date(2026, 3, 2)
FIELDS = ["leerling.id", "leerling.roepnaam", "leerling.leerjaar", "leerling.geboortedatum"]
POLICY = """\
dataset leerling "Leerlinggegevens" subject {
    id             text  personal
    geboortedatum  date  personal
    school         text  personal
    leerjaar       int   personal
    actief         bool  personal
    roepnaam       text  personal
    achternaam     text  personal
    lesgroepen     set   personal
}
purpose leermiddelen "Leermiddelen"
partner snappet "Snappet" { role controller }

permit snappet_rekenen {
    partner  snappet
    purpose  leermiddelen
    basis    contract
    fields   leerling.{id, roepnaam, leerjaar}, leerling.geboortedatum as year
    students where school == "12AB" and leerjaar in 3..8 and age >= 6
}

forbid niet_actief {
    partner  snappet
    fields   leerling.*
    students where actief == false
}
"""

#: the same selection written by hand (what a developer would write for this policy on AT)
HAND = """
SELECT id, roepnaam, leerjaar, CAST(EXTRACT(YEAR FROM geboortedatum) AS BIGINT)
FROM leerling
WHERE school = '12AB' AND leerjaar BETWEEN 3 AND 8 AND geboortedatum <= DATE '2020-03-02'
  AND actief IS NOT NULL AND actief
"""
GENERATE = """
CREATE TABLE leerling AS
SELECT 's' || CAST(i AS VARCHAR) AS id,
       CASE WHEN i % 97 = 0 THEN NULL ELSE DATE '2008-02-29' + CAST((i * 37) % 5000 AS INTEGER) END AS geboortedatum,
       CASE WHEN i % 3 = 0 THEN '12AB' WHEN i % 3 = 1 THEN '34CD' ELSE NULL END AS school,
       CASE WHEN i % 89 = 0 THEN NULL ELSE CAST(i % 10 AS BIGINT) END AS leerjaar,
       CASE WHEN i % 53 = 0 THEN NULL ELSE i % 11 <> 0 END AS actief,
       'naam' || CAST(i % 1000 AS VARCHAR) AS roepnaam,
       'achter' || CAST(i % 777 AS VARCHAR) AS achternaam,
       CASE WHEN i % 71 = 0 THEN NULL WHEN i % 7 = 0 THEN ARRAY['5A', 'plusklas']::VARCHAR[]
            ELSE ARRAY['5A']::VARCHAR[] END AS lesgroepen
FROM range({n}) t(i)
"""
PG_TABLE = "bench_sql_leerling"  # the test server is shared: a name of its own
PG_GENERATE = GENERATE.replace("range({n}) t(i)", "generate_series(0, {n} - 1) t(i)").replace(
    "VARCHAR", "TEXT").replace("TABLE leerling", f"TABLE {PG_TABLE}")
PG_HAND = HAND.replace("FROM leerling", f"FROM {PG_TABLE}")
COLUMNS = ["id", "geboortedatum", "school", "leerjaar", "actief", "roepnaam", "achternaam", "lesgroepen"]

#: the same with set membership, as the bundled snappet_rekenen_taal: a plusklas pupil of any year
POLICY_SETS = POLICY.replace("and leerjaar in 3..8 and", 'and (leerjaar in 3..8 or "plusklas" in lesgroepen) and')
HAND_SETS = HAND.replace("AND leerjaar BETWEEN 3 AND 8",
                         "AND (leerjaar BETWEEN 3 AND 8 OR list_contains(lesgroepen, 'plusklas'))")
PG_HAND_SETS = PG_HAND.replace("AND leerjaar BETWEEN 3 AND 8",
                               "AND (leerjaar BETWEEN 3 AND 8 OR 'plusklas' = ANY(lesgroepen))")
REFS = ["leerling.id", "leerling.roepnaam", "leerling.leerjaar", "leerling.geboortedatum"]


#: the two requests timed: the plain one, and set membership ("plusklas" in lesgroepen) on a
#: VARCHAR[] / text[] column; each with its hand-written query on DuckDB and on PostgreSQL
VARIANTS = {"plain": (POLICY, HAND, PG_HAND), "sets": (POLICY_SETS, HAND_SETS, PG_HAND_SETS)}


@pytest.fixture(scope="module", params=list(VARIANTS))
def variant(request: pytest.FixtureRequest) -> tuple[avgpolicy.Policy, str, str]:
    """(policy, DuckDB hand-written query, PostgreSQL hand-written query) of one variant."""
    text, hand, pg_hand = VARIANTS[request.param]
    return avgpolicy.loads(text), hand, pg_hand


def fetch_and_filter(cursor_rows: Any, policy: avgpolicy.Policy) -> list[dict[str, Any]]:
    records = [dict(zip(COLUMNS, row, strict=True)) for row in cursor_rows]
    return list(policy.filter("snappet", "leermiddelen", FIELDS, records, at=AT))


def hand_rows(rows: Any) -> list[dict[str, Any]]:
    return [{r: v for r, v in zip(REFS, row, strict=True) if v is not None} for row in rows]


@pytest.fixture(scope="module")
def duck() -> Any:
    conn = duckdb.connect()
    conn.execute(GENERATE.format(n=1_000_000))
    return conn


def _same(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> None:
    key = lambda r: r["leerling.id"]  # noqa: E731
    assert sorted(a, key=key) == sorted(b, key=key)


def test_duckdb_plan_run(benchmark: Any, duck: Any, variant: tuple[avgpolicy.Policy, str, str]) -> None:
    policy, hand, _ = variant
    plan = policy.plan("snappet", "leermiddelen", FIELDS, at=AT)
    _same(plan.run(duck, table="leerling"), hand_rows(duck.execute(hand).fetchall()))
    benchmark.pedantic(lambda: plan.run(duck, table="leerling"), rounds=5, iterations=1)


def test_duckdb_hand_written(benchmark: Any, duck: Any, variant: tuple[avgpolicy.Policy, str, str]) -> None:
    _, hand, _ = variant
    benchmark.pedantic(lambda: hand_rows(duck.execute(hand).fetchall()), rounds=5, iterations=1)


def test_duckdb_fetch_all_and_filter(benchmark: Any, duck: Any, variant: tuple[avgpolicy.Policy, str, str]) -> None:
    policy, hand, _ = variant
    sql = f"SELECT {', '.join(COLUMNS)} FROM leerling"
    _same(fetch_and_filter(duck.execute(sql).fetchall(), policy), hand_rows(duck.execute(hand).fetchall()))
    benchmark.pedantic(lambda: fetch_and_filter(duck.execute(sql).fetchall(), policy), rounds=3, iterations=1)


@pytest.fixture(scope="module")
def pg() -> Any:
    dsn = os.environ.get("AVG_TEST_POSTGRES_DSN")
    if not dsn:
        pytest.skip("PostgreSQL: AVG_TEST_POSTGRES_DSN is not set")
    psycopg = pytest.importorskip("psycopg")
    conn = psycopg.connect(dsn, autocommit=True)
    conn.execute(f"DROP TABLE IF EXISTS {PG_TABLE}")
    conn.execute(PG_GENERATE.format(n=100_000))
    conn.execute(f"ANALYZE {PG_TABLE}")
    yield conn
    conn.execute(f"DROP TABLE IF EXISTS {PG_TABLE}")
    conn.close()


def _pg_fetch(conn: Any, sql: str) -> list[Any]:
    with conn.cursor() as cur:
        cur.execute(sql)
        return cur.fetchall()


def test_postgres_plan_run(benchmark: Any, pg: Any, variant: tuple[avgpolicy.Policy, str, str]) -> None:
    policy, _, pg_hand = variant
    plan = policy.plan("snappet", "leermiddelen", FIELDS, at=AT)
    _same(plan.run(pg, table=PG_TABLE), hand_rows(_pg_fetch(pg, pg_hand)))
    benchmark.pedantic(lambda: plan.run(pg, table=PG_TABLE), rounds=5, iterations=1)


def test_postgres_hand_written(benchmark: Any, pg: Any, variant: tuple[avgpolicy.Policy, str, str]) -> None:
    _, _, pg_hand = variant
    benchmark.pedantic(lambda: hand_rows(_pg_fetch(pg, pg_hand)), rounds=5, iterations=1)


def test_postgres_fetch_all_and_filter(benchmark: Any, pg: Any, variant: tuple[avgpolicy.Policy, str, str]) -> None:
    policy, _, pg_hand = variant
    sql = f"SELECT {', '.join(COLUMNS)} FROM {PG_TABLE}"
    _same(fetch_and_filter(_pg_fetch(pg, sql), policy), hand_rows(_pg_fetch(pg, pg_hand)))
    benchmark.pedantic(lambda: fetch_and_filter(_pg_fetch(pg, sql), policy), rounds=3, iterations=1)


# ---------------------------------------------------------------------------
# Interleaved: python benchmarks/bench_sql.py [ROUNDS] times the three variants in turns, so that a busy
# spell of the shared machine hits all of them alike (the fastest round of each counts)

def _interleaved(rounds: int) -> None:
    import time
    variants: dict[str, dict[str, Any]] = {}
    duck = duckdb.connect()
    duck.execute(GENERATE.format(n=1_000_000))
    cols = ", ".join(COLUMNS)
    for name, (text, hand, _) in VARIANTS.items():
        name = "duckdb" if name == "plain" else f"duckdb {name}"
        pol = avgpolicy.loads(text)
        plan = pol.plan("snappet", "leermiddelen", FIELDS, at=AT)
        variants[name] = {
            "plan.run": lambda plan=plan: plan.run(duck, table="leerling"),
            "hand-written": lambda hand=hand: hand_rows(duck.execute(hand).fetchall()),
            "fetch + filter": lambda pol=pol: fetch_and_filter(duck.execute(f"SELECT {cols} FROM leerling").fetchall(),
                                                               pol)}
    dsn = os.environ.get("AVG_TEST_POSTGRES_DSN")
    if dsn:
        import psycopg
        pg = psycopg.connect(dsn, autocommit=True)
        pg.execute(f"DROP TABLE IF EXISTS {PG_TABLE}")
        pg.execute(PG_GENERATE.format(n=100_000))
        pg.execute(f"ANALYZE {PG_TABLE}")
        sql = f"SELECT {cols} FROM {PG_TABLE}"
        for name, (text, _, hand) in VARIANTS.items():
            name = "postgres" if name == "plain" else f"postgres {name}"
            pol = avgpolicy.loads(text)
            plan = pol.plan("snappet", "leermiddelen", FIELDS, at=AT)
            variants[name] = {
                "plan.run": lambda plan=plan: plan.run(pg, table=PG_TABLE),
                "hand-written": lambda hand=hand: hand_rows(_pg_fetch(pg, hand)),
                "fetch + filter": lambda pol=pol: fetch_and_filter(_pg_fetch(pg, sql), pol)}
    for name, fns in variants.items():
        first = {k: sorted(f(), key=lambda r: r["leerling.id"]) for k, f in fns.items()}
        assert first["plan.run"] == first["hand-written"] == first["fetch + filter"], name
        best = dict.fromkeys(fns, float("inf"))
        for i in range(rounds):
            for k, f in fns.items():
                if k == "fetch + filter" and i % 3:  # the slow variant: every third round
                    continue
                start = time.perf_counter()
                f()
                best[k] = min(best[k], time.perf_counter() - start)
        run, hand, fetch = best["plan.run"], best["hand-written"], best["fetch + filter"]
        print(f"{name}: plan.run {run * 1000:.1f} ms, hand-written {hand * 1000:.1f} ms, fetch + filter "
              f"{fetch * 1000:.0f} ms; plan.run / hand-written {run / hand:.2f}x, fetch + filter / plan.run "
              f"{fetch / run:.1f}x")
    if dsn:
        pg.execute(f"DROP TABLE IF EXISTS {PG_TABLE}")


if __name__ == "__main__":
    import sys
    _interleaved(int(sys.argv[1]) if len(sys.argv) > 1 else 15)
