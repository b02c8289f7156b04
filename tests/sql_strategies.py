"""Student tables for the SQL differential tests: generated rows and consent rows, loaded into an engine.

The policies come from ``engine_strategies`` (its catalogue: ``leerling`` with text, int, bool and
date fields and a set field, ``absentie`` with two fields). A table holds every field of the
catalogue as a column (``absentie.*`` as ``datum`` and ``reden``; the set ``lesgroepen`` as a list
column, in SQLite as JSON text); values come from the same pools as the policies' literals, with
NULLs, 29 February and window-edge dates, and sets with a NULL element (ill-typed). SQLite tables
also hold ill-typed values (it has no column types; for a set: text that is not a JSON array of
strings). The records ``filter`` gets are read back from the
table, so both sides see exactly the same data.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any

import engine_strategies as es
from hypothesis import strategies as st

D = dt.date
#: column name -> catalogue type (every field; absentie's fields by their bare names)
COLUMNS = {**es.SUBJECT, "datum": "date", "reden": "text"}
REFS = {**{f"leerling.{k}": k for k in es.SUBJECT}, "absentie.datum": "datum", "absentie.reden": "reden"}
KEYS = ["s1", "s2", "s3", "s4", "s5"]
SQL_TYPES = {"duckdb": {"text": "VARCHAR", "int": "BIGINT", "bool": "BOOLEAN", "date": "DATE", "set": "VARCHAR[]"},
             "sqlite": {"text": "TEXT", "int": "INTEGER", "bool": "BOOLEAN", "date": "DATE", "set": "TEXT"},
             "postgres": {"text": "TEXT", "int": "BIGINT", "bool": "BOOLEAN", "date": "DATE", "set": "TEXT[]"},
             "spark": {"text": "STRING", "int": "BIGINT", "bool": "BOOLEAN", "date": "DATE", "set": "ARRAY<STRING>"}}
#: set values as lists of the policies' text literals (a set column holds a list; SQLite: its JSON text)
SETS: list[Any] = [[], ["12AB"], ["plusklas"], ["", "34CD"], ["plusklas", "12AB"], ["34CD", "34CD"]]
#: ill-typed sets a typed column can hold: a NULL element (PostgreSQL: also two dimensions)
SET_BAD = {"duckdb": [[None], ["plusklas", None]], "spark": [[None], ["plusklas", None]],
           "postgres": [[None], ["plusklas", None], [["plusklas"], ["12AB"]]],
           "sqlite": ["plusklas", '["plusklas", 1]', '{"plusklas": 1}', '"plusklas"', 5, "[null]", '["plusklas",]',
                      '["12AB", null]', 2.5]}
GIVENS = [D(2008, 2, 28), D(2012, 2, 29), D(2024, 2, 28), D(2024, 2, 29), D(2025, 9, 1), D(2026, 2, 28),
          D(2026, 3, 29)]
WITHDRAWNS = [None, None, D(2025, 10, 1), D(2026, 3, 29)]
PARTIES = ["parent", "parent", "student", "student", "uncle", None]
#: ill-typed values a SQLite column can hold (text in an int column, a malformed date, ...)
SQLITE_BAD = {"text": [5, 2.5], "int": ["5x", 2.5, "2016-03-01"], "bool": [2, "true", -1],
              "date": ["2016-02-30", "2016-3-1", 20160301, "2016-03-01 00:00", "0000-01-01", "x"]}
BIRTHS = [D(2008, 2, 29), D(2009, 3, 1), D(2010, 2, 28), D(2010, 3, 1), D(2012, 2, 29), D(2014, 6, 30),
          D(2010, 1, 12), D(2016, 3, 1)]


def _pool(t: str, dialect: str, name: str) -> list[Any]:
    if t == "set":
        good = [json.dumps(v) for v in SETS] if dialect == "sqlite" else SETS
        return [*good, *good, *SET_BAD[dialect], None, None]
    pool: list[Any] = list(es.GOOD[t]) * 2 + [None, None]
    if name == "geboortedatum":
        pool += BIRTHS * 2
    if name == "vertrek":  # most students have not left (a left student receives nothing for u1)
        pool += [None] * 36
    if dialect == "sqlite":
        pool += SQLITE_BAD[t]
    return pool


@st.composite
def tables(draw: st.DrawFn, dialect: str, sizes: tuple[int, int] = (0, 10)
           ) -> tuple[list[dict[str, Any]], list[tuple[Any, ...]]]:
    """(student rows as column -> value, consent rows (student, topic, party, given, withdrawn)).

    The sizes are drawn by hypothesis (``sizes``: the least and most students); the cell values by a
    random generator it seeds (one draw per table instead of one per cell keeps 1,000 examples fast)."""
    rnd = draw(st.randoms(use_true_random=False))
    pools = {name: _pool(t, dialect, name) for name, t in COLUMNS.items()}
    students = []
    for _ in range(draw(st.integers(*sizes))):
        row = {name: rnd.choice(pool) for name, pool in pools.items()}
        row["id"] = rnd.choice([*KEYS, None])
        students.append(row)
    consents = []
    pairs = [(k, t) for k in KEYS for t in es.TOPICS]
    for key, topic in rnd.sample(pairs, draw(st.integers(0, len(pairs)))):
        given: Any = rnd.choice([*GIVENS, None])
        if dialect == "sqlite" and rnd.randrange(7) == 0:
            given = rnd.choice(SQLITE_BAD["date"])
        consents.append((key, topic, rnd.choice(PARTIES), given, rnd.choice(WITHDRAWNS)))
    return students, consents


def fields_requests() -> st.SearchStrategy[list[str]]:
    refs = list(REFS)
    return st.lists(st.sampled_from([*refs, *refs, "leerling.nope"]), min_size=1, max_size=5)


# ---------------------------------------------------------------------------
# Loading and reading back

def create(conn: Any, dialect: str, students: str, consents: str) -> None:
    types = SQL_TYPES[dialect]
    cols = ", ".join(f'"{c}" {types[t]}' for c, t in COLUMNS.items())
    date = types["date"]
    text = types["text"]
    execute(conn, dialect, f'CREATE TABLE "{students}" ({cols})')
    execute(conn, dialect, f'CREATE TABLE "{consents}" ("student" {text}, "topic" {text}, "party" {text}, '
                           f'"given" {date}, "withdrawn" {date})')


def execute(conn: Any, dialect: str, sql: str, params: Any = ()) -> None:
    if dialect == "postgres":
        with conn.cursor() as cur:
            cur.execute(sql, params or None)
    else:
        conn.execute(sql, params)


def load(conn: Any, dialect: str, students: str, consents: str, rows: list[dict[str, Any]],
         consent_rows: list[tuple[Any, ...]]) -> None:
    """Replace the tables' contents (one connection is reused across examples)."""
    mark = {"duckdb": "?", "sqlite": "?", "postgres": "%s"}[dialect]
    names = list(COLUMNS)
    if dialect == "sqlite":
        def conv(v: Any) -> Any:
            return v.isoformat() if type(v) is D else v
    else:
        def conv(v: Any) -> Any:
            return v
    execute(conn, dialect, f'DELETE FROM "{students}"')
    execute(conn, dialect, f'DELETE FROM "{consents}"')
    cols = ", ".join(f'"{c}"' for c in names)
    if rows:
        one = "(" + ", ".join([mark] * len(names)) + ")"
        data = [conv(r[c]) for r in rows for c in names]
        execute(conn, dialect, f'INSERT INTO "{students}" ({cols}) VALUES {", ".join([one] * len(rows))}', data)
    if consent_rows:
        one = "(" + ", ".join([mark] * 5) + ")"
        data = [conv(v) for r in consent_rows for v in r]
        execute(conn, dialect, f'INSERT INTO "{consents}" VALUES {", ".join([one] * len(consent_rows))}', data)


def to_dialect(value: Any, dialect: str) -> Any:
    """A generated value as the engine stores it (SQLite keeps dates as ISO text)."""
    return value.isoformat() if dialect == "sqlite" and type(value) is D else value


_ISO = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def from_sqlite(value: Any, t: str) -> Any:
    """What a SQLite value stands for: an ISO date text in a date column is a date, 0/1 in a bool
    column a bool; anything else stays as it is (ill-typed for the engines, exactly as the plan's guards
    treat it)."""
    if t == "date" and type(value) is str and _ISO.fullmatch(value):
        try:
            day = D.fromisoformat(value)
        except ValueError:
            return value
        return day if day.year >= 1 else value
    if t == "bool" and type(value) is int and value in (0, 1):
        return bool(value)
    if t == "set" and type(value) is str:  # a JSON array of strings; other text is an ill-typed str
        try:
            parsed = json.loads(value)
        except ValueError:
            return value
        return parsed if type(parsed) is list else value
    return value


def records(rows: list[tuple[Any, ...]], consent_rows: list[tuple[Any, ...]], dialect: str) -> list[dict[str, Any]]:
    """The student records ``filter`` gets for the rows read back from the tables (in COLUMNS order)."""
    sqlite = dialect == "sqlite"
    by_key: dict[Any, dict[str, Any]] = {}
    for key, topic, party, given, withdrawn in consent_rows:
        if sqlite:
            given, withdrawn = from_sqlite(given, "date"), from_sqlite(withdrawn, "date")
        by_key.setdefault(key, {})[topic] = {"by": party, "given": given, "withdrawn": withdrawn}
    out = []
    for row in rows:
        record: dict[str, Any] = {}
        for (name, t), value in zip(COLUMNS.items(), row, strict=True):
            if sqlite:
                value = from_sqlite(value, t)
            record[{"datum": "absentie.datum", "reden": "absentie.reden"}.get(name, name)] = value
        key = record.get("id")
        if key is not None and key in by_key:
            record["consents"] = by_key[key]
        out.append(record)
    return out


def read_back(conn: Any, dialect: str, students: str, consents: str) -> list[dict[str, Any]]:
    cols = ", ".join(f'"{c}"' for c in COLUMNS)
    if dialect == "postgres":
        with conn.cursor() as cur:
            cur.execute(f'SELECT {cols} FROM "{students}"')
            rows = cur.fetchall()
            cur.execute(f'SELECT * FROM "{consents}"')
            crows = cur.fetchall()
    else:
        rows = conn.execute(f'SELECT {cols} FROM "{students}"').fetchall()
        crows = conn.execute(f'SELECT * FROM "{consents}"').fetchall()
    return records(rows, crows, dialect)


def canonical(rows: Any) -> list[str]:
    """Rows as a sorted list of their reprs (a query gives rows in no particular order)."""
    return sorted(repr(sorted(r.items())) for r in rows)
