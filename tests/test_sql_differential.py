"""plan.run == filter, differentially, on every engine (api.md "v2: pushdown to SQL").

Generated policies (engine_strategies), generated student tables with NULLs, boundary and
29 February dates and consent rows (sql_strategies), loaded into a real engine; the rows that
``plan.run`` returns must be exactly ``filter``'s rows for the records read back from the same
tables: same students, same fields, same values after transforms. A request the planner refuses
(``NotTranslatable``) must name a rule that covers a requested field.
"""

from __future__ import annotations

import datetime as dt
import itertools
import sqlite3
from typing import Any

import engine_strategies as es
import pytest
import sql_strategies as ss
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from services import java_for_spark, postgres_dsn

from avgpolicy import NotTranslatable

duckdb = pytest.importorskip("duckdb")
_names = itertools.count()
KEY = b"differential-key"


def _check(conn: Any, dialect: str, students: str, consents: str, file: Any, partner: str, purpose: str,
           fields: list[str], at: Any, rows: list[dict[str, Any]], consent_rows: list[tuple[Any, ...]]) -> None:
    policy = es.build(file, pseudonym_key=KEY)
    try:
        plan = policy.plan(partner, purpose, fields, at=at)
    except NotTranslatable as exc:
        event("not translatable")
        assert exc.rule in {r.name for r in policy.model.rules}
        return
    except ValueError as exc:  # an undeclared partner or purpose: filter refuses it the same way
        event("undeclared partner or purpose")
        with pytest.raises(type(exc)):
            list(policy.filter(partner, purpose, fields, [], at=at))
        return
    event(f"plan {plan.kind}")
    if plan.kind == "none":  # nothing to run: filter must release nothing either
        records = ss.records([tuple(ss.to_dialect(r[c], dialect) for c in ss.COLUMNS) for r in rows],
                             [tuple(ss.to_dialect(v, dialect) for v in c) for c in consent_rows], dialect)
        assert [] == list(policy.filter(partner, purpose, fields, records, at=at))
        return
    ss.load(conn, dialect, students, consents, rows, consent_rows)
    records = ss.read_back(conn, dialect, students, consents)
    expected = ss.canonical(policy.filter(partner, purpose, fields, records, at=at))
    actual = plan.run(conn, table=students, columns=ss_columns(), consents={"table": consents, "key": "id"})
    event("rows released" if expected else "no row released")
    assert expected == ss.canonical(actual)


def ss_columns() -> dict[str, str]:
    return {ref: col for ref, col in ss.REFS.items()}


@st.composite
def _examples(draw: st.DrawFn, dialect: str) -> Any:
    """A policy, then mostly a request one of its permits is about, on a day inside that permit's
    window and an agreement of its partner (else most plans would be "none" and release nothing)."""
    file = draw(es.policy_files)
    rules = [d for d in file.declarations if isinstance(d, es.n.Rule)]
    permits = [r for r in rules if r.effect == "permit"]
    if permits and draw(st.integers(0, 4)):
        r = draw(st.sampled_from(permits))
        partner = draw(st.sampled_from(_chosen(r.partner, es.PARTNERS)))
        purpose = draw(st.sampled_from(_chosen(r.purpose, es.PURPOSES)))
        granted = [ref for ref in _refs(r) if ref in ss.REFS]
        others = [ref for rule in rules for ref in _refs(rule) if ref in ss.REFS] + list(ss.REFS)
        fields = draw(st.lists(st.sampled_from(granted or others), min_size=1, max_size=3))
        fields += draw(st.lists(st.sampled_from(others), max_size=2))
        at = draw(_day_inside(file, partner, r.window))
    else:
        partner = draw(st.sampled_from([*es.PARTNERS, "unknown-p"]))
        purpose = draw(st.sampled_from([*es.PURPOSES, "unknown-u"]))
        fields = draw(ss.fields_requests())
        at = draw(es.moments())
    # a Spark query costs about a second whatever the table's size: larger tables, more rows released
    return file, partner, purpose, fields, at, draw(ss.tables(dialect, (8, 20) if dialect == "spark" else (0, 10)))


def _chosen(selector: Any, every: list[str]) -> list[str]:
    """The names a selector matches (``* except a`` matches the others), or all when none."""
    if selector is None:
        return every
    names = {x.value for x in selector.names}
    chosen = [x for x in every if (x in names) != selector.everything]
    return chosen or every


def _day_inside(file: Any, partner: str, window: Any) -> st.SearchStrategy[Any]:
    """A day in ``window`` and in one of the partner's agreements (any moment when there is none)."""
    agreements = [a.window for d in file.declarations if isinstance(d, es.n.Partner) and d.name.value == partner
                  for a in d.agreements] or [None]
    spans = []
    for w in agreements:
        low = max([d for d in (w and w.start, window and window.start, dt.date(2025, 7, 1)) if d])
        high = min([d for d in (w and w.end, window and window.end, dt.date(2026, 9, 1)) if d])
        if low <= high:
            spans += [st.just(low), st.just(high), st.dates(low, high)]
    return st.one_of(*spans) if spans else es.moments()


def _refs(rule: Any) -> list[str]:
    out = []
    for f in rule.fields or ():
        if f.field.value == "*":
            out += [ref for ref in ss.REFS if ref.startswith(f.dataset.value + ".")]
        else:
            out.append(f"{f.dataset.value}.{f.field.value}")
    return out


@pytest.fixture(scope="module")
def duck() -> Any:
    conn = duckdb.connect()
    ss.create(conn, "duckdb", "leerling", "toestemming")
    yield conn
    conn.close()


@pytest.fixture(scope="module")
def lite() -> Any:
    conn = sqlite3.connect(":memory:")
    ss.create(conn, "sqlite", "leerling", "toestemming")
    yield conn
    conn.close()


_FAST = settings(max_examples=1000, deadline=None, suppress_health_check=list(HealthCheck))


@_FAST
@given(example=_examples("duckdb"))
def test_duckdb_plan_run_is_filter(duck: Any, example: Any) -> None:
    file, partner, purpose, fields, at, (rows, consents) = example
    _check(duck, "duckdb", "leerling", "toestemming", file, partner, purpose, fields, at, rows, consents)


@_FAST
@given(example=_examples("sqlite"))
def test_sqlite_plan_run_is_filter(lite: Any, example: Any) -> None:
    file, partner, purpose, fields, at, (rows, consents) = example
    _check(lite, "sqlite", "leerling", "toestemming", file, partner, purpose, fields, at, rows, consents)


@pytest.fixture(scope="module")
def pg() -> Any:
    dsn = postgres_dsn()
    import psycopg
    conn = psycopg.connect(dsn, autocommit=True)
    n = next(_names)
    students, consents = f"sql_diff_students_{n}_{id(conn)}", f"sql_diff_consents_{n}_{id(conn)}"
    ss.create(conn, "postgres", students, consents)
    yield conn, students, consents
    with conn.cursor() as cur:
        cur.execute(f'DROP TABLE IF EXISTS "{students}"')
        cur.execute(f'DROP TABLE IF EXISTS "{consents}"')
    conn.close()


@pytest.mark.postgres
@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(example=_examples("postgres"))
def test_postgres_plan_run_is_filter(pg: Any, example: Any) -> None:
    conn, students, consents = pg
    file, partner, purpose, fields, at, (rows, consent_rows) = example
    _check(conn, "postgres", students, consents, file, partner, purpose, fields, at, rows, consent_rows)


# ---------------------------------------------------------------------------
# Spark: one local session for the test session; tables are temporary views of the generated rows

@pytest.fixture(scope="session")
def spark() -> Any:
    java_for_spark()
    from pyspark.sql import SparkSession
    session = (SparkSession.builder.master("local[1]").appName("avgpolicy-sql-tests")
               .config("spark.ui.enabled", "false").config("spark.sql.shuffle.partitions", "1")
               .config("spark.sql.session.timeZone", "UTC").getOrCreate())
    yield session
    session.stop()


def _spark_load(session: Any, rows: list[dict[str, Any]], consent_rows: list[tuple[Any, ...]]) -> None:
    from pyspark.sql import types as T
    spark_types = {"text": T.StringType(), "int": T.LongType(), "bool": T.BooleanType(), "date": T.DateType(),
                   "set": T.ArrayType(T.StringType())}
    schema = T.StructType([T.StructField(c, spark_types[t]) for c, t in ss.COLUMNS.items()])
    data = [tuple(r[c] for c in ss.COLUMNS) for r in rows]
    session.createDataFrame(data, schema).createOrReplaceTempView("leerling")
    cschema = T.StructType([T.StructField("student", T.StringType()), T.StructField("topic", T.StringType()),
                            T.StructField("party", T.StringType()), T.StructField("given", T.DateType()),
                            T.StructField("withdrawn", T.DateType())])
    session.createDataFrame(consent_rows, cschema).createOrReplaceTempView("toestemming")


@pytest.mark.spark
@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
@given(example=_examples("spark"))
def test_spark_plan_run_is_filter(spark: Any, example: Any) -> None:
    file, partner, purpose, fields, at, (rows, consent_rows) = example
    policy = es.build(file, pseudonym_key=KEY)
    try:
        plan = policy.plan(partner, purpose, fields, at=at)
    except NotTranslatable as exc:
        event("not translatable")
        assert exc.rule in {r.name for r in policy.model.rules}
        return
    except ValueError as exc:
        event("undeclared partner or purpose")
        with pytest.raises(type(exc)):
            list(policy.filter(partner, purpose, fields, [], at=at))
        return
    event(f"plan {plan.kind}")
    # Spark keeps the values of an explicit schema as given: the records are the generated rows
    # (reading them back would cost two Spark jobs per example)
    records = ss.records([tuple(r[c] for c in ss.COLUMNS) for r in rows], consent_rows, "spark")
    expected = ss.canonical(policy.filter(partner, purpose, fields, records, at=at))
    if plan.kind == "none":  # run sends no query
        assert [] == expected
        return
    _spark_load(spark, rows, consent_rows)
    actual = plan.run(spark, table="leerling", columns=ss_columns(), consents={"table": "toestemming", "key": "id"})
    event("rows released" if expected else "no row released")
    assert expected == ss.canonical(actual)


def test_moments_cover_29_february() -> None:
    """The tables do hold 29 February birthdays (the age bounds' hardest case)."""
    assert dt.date(2008, 2, 29) in ss.BIRTHS and dt.date(2012, 2, 29) in ss.BIRTHS
