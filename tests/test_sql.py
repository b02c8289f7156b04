"""Pushdown to SQL (avgpolicy.sql): the NULL cases that bit Cerbos, NotTranslatable, injection,
no text ever parsed into SQL, and `avgpolicy sql` printing queries that run."""

from __future__ import annotations

import datetime as dt
import pathlib
import re
import sqlite3
from typing import Any

import pytest

import avgpolicy
from avgpolicy import NotTranslatable
from avgpolicy.cli import main

duckdb = pytest.importorskip("duckdb")
DAY = dt.date(2026, 3, 2)

CATALOGUE = """\
dataset leerling "Leerlinggegevens" subject {
    id             text  personal
    geboortedatum  date  personal
    school         text  personal
    leerjaar       int   personal
    actief         bool  personal
    roepnaam       text  personal
    lesgroepen     set   personal
}
purpose leermiddelen "Leermiddelen"
partner snappet "Snappet" { role controller }
"""


def policy_of(rules: str, **kw: Any) -> avgpolicy.Policy:
    return avgpolicy.loads(CATALOGUE + rules, **kw)


COLUMNS = {"id": "TEXT", "geboortedatum": "DATE", "school": "TEXT", "leerjaar": "BIGINT", "actief": "BOOLEAN",
           "roepnaam": "TEXT"}


def table(conn: Any, name: str, rows: list[dict[str, Any]], sqlite: bool = False) -> list[dict[str, Any]]:
    """Create and fill a student table; returns the records filter gets (missing = None)."""
    cols = ", ".join(f'"{c.replace(chr(34), chr(34) * 2)}" {t}' for c, t in COLUMNS.items())
    quoted = name.replace('"', '""')
    conn.execute(f'CREATE TABLE "{quoted}" ({cols})')
    for r in rows:
        values = [r.get(c) for c in COLUMNS]
        if sqlite:
            values = [v.isoformat() if isinstance(v, dt.date) else v for v in values]
        conn.execute(f'INSERT INTO "{quoted}" VALUES ({", ".join("?" * len(values))})', values)
    return [{c: r.get(c) for c in COLUMNS} for r in rows]


def rows_of(items: Any) -> list[str]:
    return sorted(repr(sorted(r.items())) for r in items)


STUDENTS = [
    {"id": "a",
     "school": "12AB", "leerjaar": 3, "actief": True, "roepnaam": "Anna", "geboortedatum": dt.date(2012, 2, 29)},
    {"id": "b",
     "school": None, "leerjaar": None, "actief": None, "roepnaam": "Bram", "geboortedatum": None},
    {"id": "c",
     "school": "34CD", "leerjaar": 7, "actief": False, "roepnaam": "Cas", "geboortedatum": dt.date(2010, 3, 2)},
    {"id": "d",
     "school": "12AB", "leerjaar": None, "actief": True, "roepnaam": None, "geboortedatum": dt.date(2010, 3, 3)},
]


def _permit(condition: str) -> str:
    return f"""
permit r_permit {{
    partner snappet
    purpose leermiddelen
    basis   contract
    fields  leerling.roepnaam
    students where {condition}
}}
"""


def _forbid(condition: str) -> str:
    return f"""
permit r_all {{
    partner snappet
    purpose leermiddelen
    basis   contract
    fields  leerling.roepnaam
}}
forbid r_forbid {{
    partner snappet
    fields  leerling.roepnaam
    students where {condition}
}}
"""


NULL_CONDITIONS = ['school == "12AB"', 'school != "12AB"', 'school not in ["12AB", "x"]',
                   'not (school == "12AB")', 'not (leerjaar > 5 or actief == true)', "age >= 16",
                   "age < 16", 'age != 14', "leerjaar not in 1..5"]


@pytest.mark.parametrize("dialect", ["duckdb", "sqlite"])
@pytest.mark.parametrize("condition", NULL_CONDITIONS)
@pytest.mark.parametrize("effect", ["permit", "forbid"])
def test_null_cases_that_bit_cerbos(dialect: str, condition: str, effect: str) -> None:
    """A missing value under ==, !=, not in, not (...): unknown, so a permit does not grant and a forbid
    blocks (Cerbos query-plan-adapters #302, #308: 14 rows where check() allowed 19)."""
    policy = policy_of(_permit(condition) if effect == "permit" else _forbid(condition))
    conn = duckdb.connect() if dialect == "duckdb" else sqlite3.connect(":memory:")
    records = table(conn, "leerling", STUDENTS, sqlite=dialect == "sqlite")
    expected = list(policy.filter("snappet", "leermiddelen", ["leerling.roepnaam"], records, at=DAY))
    actual = policy.plan("snappet", "leermiddelen", ["leerling.roepnaam"], at=DAY).run(conn, table="leerling")
    assert rows_of(expected) == rows_of(actual)
    assert {"leerling.roepnaam": "Bram"} not in actual  # Bram's school, year, flag and birth date are NULL


def test_null_row_is_denied_by_forbid_and_permit_alike() -> None:
    policy = policy_of(_forbid('school != "12AB"'))
    conn = duckdb.connect()
    table(conn, "leerling", STUDENTS)
    actual = policy.plan("snappet", "leermiddelen", ["leerling.roepnaam"], at=DAY).run(conn, table="leerling")
    assert [{"leerling.roepnaam": "Anna"}] == actual  # Bram (NULL school) blocked; Cas forbidden; d has no name


def test_kind_all_none_conditional() -> None:
    policy = policy_of(_forbid('school == "never"'))
    assert "conditional" == policy.plan("snappet", "leermiddelen", ["leerling.roepnaam"], at=DAY).kind
    policy = policy_of(_permit('school == "12AB"').replace("students where school == \"12AB\"", ""))
    assert "all" == policy.plan("snappet", "leermiddelen", ["leerling.roepnaam"], at=DAY).kind
    assert "none" == policy.plan("snappet", "leermiddelen", ["leerling.school"], at=DAY).kind


def test_age_bounds_on_29_february() -> None:
    """Born 29 February 2012: 14 on 1 March 2026, still 13 on 28 February 2026, as the engines count."""
    policy = policy_of(_permit("age >= 14"))
    conn = duckdb.connect()
    records = table(conn, "leerling", STUDENTS[:1])
    for day, expected in [(dt.date(2026, 2, 28), []), (dt.date(2026, 3, 1), [{"leerling.roepnaam": "Anna"}])]:
        assert expected == list(policy.filter("snappet", "leermiddelen", ["leerling.roepnaam"], records, at=day))
        assert expected == policy.plan("snappet", "leermiddelen", ["leerling.roepnaam"], at=day).run(
            conn, table="leerling")


# ---------------------------------------------------------------------------
# NotTranslatable

@pytest.mark.parametrize("rules, construct", [
    (_permit('"plusklas" in lesgroepen'), "membership in a set field"),
    (_permit("leerjaar < 99999999999999999999"), "99999999999999999999"),
    (_permit('school == "12AB"').replace("leerling.roepnaam", "leerling.lesgroepen"), "set field"),
])
def test_not_translatable_names_the_rule(rules: str, construct: str) -> None:
    policy = policy_of(rules)
    field = "leerling.lesgroepen" if "leerling.lesgroepen" in rules else "leerling.roepnaam"
    with pytest.raises(NotTranslatable) as info:
        policy.plan("snappet", "leermiddelen", [field], at=DAY)
    assert "r_permit" == info.value.rule
    assert construct in str(info.value)
    assert "rule r_permit" in str(info.value)


def test_untranslatable_rule_not_in_the_request_does_not_matter() -> None:
    policy = policy_of(_permit('"plusklas" in lesgroepen').replace("snappet\n    purpose", "snappet\n    purpose", 1))
    assert "none" == policy.plan("snappet", "leermiddelen", ["leerling.school"], at=DAY).kind


def test_pseudonym_never_reaches_a_view_and_run_applies_it() -> None:
    rules = _permit('school == "12AB"').replace("leerling.roepnaam", "leerling.id as pseudonym")
    policy = policy_of(rules, pseudonym_key=b"secret")
    plan = policy.plan("snappet", "leermiddelen", ["leerling.id"], at=DAY)
    with pytest.raises(NotTranslatable) as info:
        plan.to_view("feed", "duckdb", table="leerling")
    assert "r_permit" == info.value.rule
    conn = duckdb.connect()
    records = table(conn, "leerling", STUDENTS)
    expected = list(policy.filter("snappet", "leermiddelen", ["leerling.id"], records, at=DAY))
    assert rows_of(expected) == rows_of(plan.run(conn, table="leerling"))
    assert 2 == len(expected) and all(len(r["leerling.id"]) == 64 for r in expected)


# ---------------------------------------------------------------------------
# Injection: names quoted, values bound

HOSTILE_TABLE = 'leerling"; DROP TABLE x; --'
HOSTILE_COLUMN = "roep'naam\"; -- /* %s %(p0)s ? $1"
HOSTILE_VALUE = "12AB'; DROP TABLE leerling; -- /* \" ` %s ?"


@pytest.mark.parametrize("dialect", ["duckdb", "sqlite"])
def test_injection_names_quoted_values_bound(dialect: str) -> None:
    policy = policy_of(_permit(f'school in ["{HOSTILE_VALUE.replace(chr(34), chr(92) + chr(34))}", "34CD"]'))
    conn = duckdb.connect() if dialect == "duckdb" else sqlite3.connect(":memory:")
    global COLUMNS
    saved = COLUMNS
    COLUMNS = {**{k: v for k, v in saved.items() if k != "roepnaam"}, HOSTILE_COLUMN: "TEXT"}
    try:
        students = [dict(s, **{HOSTILE_COLUMN: s["roepnaam"]}) for s in STUDENTS]
        students[0]["school"] = HOSTILE_VALUE
        table(conn, HOSTILE_TABLE, students, sqlite=dialect == "sqlite")
    finally:
        COLUMNS = saved
    plan = policy.plan("snappet", "leermiddelen", ["leerling.roepnaam"], at=DAY)
    columns = {"leerling.roepnaam": HOSTILE_COLUMN}
    sql, params = plan.to_sql(dialect, table=HOSTILE_TABLE, columns=columns)
    assert HOSTILE_VALUE in params.values()
    assert "DROP TABLE leerling" not in sql  # the value is bound, never in the text
    actual = plan.run(conn, table=HOSTILE_TABLE, columns=columns)
    assert rows_of([{"leerling.roepnaam": "Anna"}, {"leerling.roepnaam": "Cas"}]) == rows_of(actual)
    # the view writes values as literals: quoted by sqlglot, and the view gives the same rows
    conn.execute(plan.to_view("feed", dialect, table=HOSTILE_TABLE, columns=columns))
    viewed = conn.execute('SELECT * FROM "feed"').fetchall()
    assert sorted([("Anna",), ("Cas",)]) == sorted(viewed)


@pytest.mark.parametrize("dialect", ["postgres", "spark"])
def test_hostile_names_are_quoted_for_every_dialect(dialect: str) -> None:
    policy = policy_of(_permit(f'school == "{HOSTILE_VALUE.replace(chr(34), chr(92) + chr(34))}"'))
    plan = policy.plan("snappet", "leermiddelen", ["leerling.roepnaam"], at=DAY)
    sql, params = plan.to_sql(dialect, table="t`x\"y", columns={"leerling.roepnaam": "a`b\"c"})
    assert [HOSTILE_VALUE] == [v for v in params.values() if isinstance(v, str) and "DROP" in v]
    assert "DROP" not in sql
    if dialect == "spark":
        assert "`t``x\"y`" in sql and "`a``b\"c`" in sql
    else:
        assert '"t`x""y"' in sql and '"a`b""c"' in sql


def test_no_text_is_parsed_into_sql() -> None:
    """sqlglot.condition / parse_one / maybe_parse (and builders that parse strings) are never used."""
    root = pathlib.Path(avgpolicy.__file__).parent / "sql"
    forbidden = re.compile(r"\b(condition|parse_one|maybe_parse|parse|to_table|to_column|column|select|and_|or_|"
                           r"not_)\s*\(")
    for path in sorted(root.glob("*.py")):
        for lineno, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split("#")[0]
            for m in forbidden.finditer(code):
                before = code[:m.start()]
                assert not re.search(r"(sqlglot|exp)\.\s*$", before), f"{path.name}:{lineno}: {line.strip()}"


# ---------------------------------------------------------------------------
# avgpolicy sql

@pytest.mark.parametrize("dialect", ["duckdb", "sqlite"])
@pytest.mark.parametrize("view", [False, True])
def test_cli_prints_a_query_that_runs(tmp_path: pathlib.Path, capsys: Any, dialect: str, view: bool) -> None:
    path = tmp_path / "p.avg"
    path.write_text(CATALOGUE + _permit('school == "12AB" and leerjaar >= 3'))
    args = ["sql", str(path), "--partner", "snappet", "--purpose", "leermiddelen", "--fields",
            "leerling.roepnaam,leerling.leerjaar", "--at", DAY.isoformat(), "--dialect", dialect, "--table", "leerling"]
    assert 0 == main(args + (["--view", "feed"] if view else []))
    text = capsys.readouterr().out
    assert text.startswith("-- avgpolicy conditional plan")
    conn = duckdb.connect() if dialect == "duckdb" else sqlite3.connect(":memory:")
    table(conn, "leerling", STUDENTS, sqlite=dialect == "sqlite")
    if view:
        conn.execute(text)
        result = conn.execute('SELECT * FROM "feed"').fetchall()
    else:
        result = conn.execute(text).fetchall()
    assert [("Anna",)] == result


def test_cli_refuses_an_untranslatable_request(tmp_path: pathlib.Path, capsys: Any) -> None:
    path = tmp_path / "p.avg"
    path.write_text(CATALOGUE + _permit('"plusklas" in lesgroepen'))
    code = main(["sql", str(path), "--partner", "snappet", "--purpose", "leermiddelen", "--fields",
                 "leerling.roepnaam", "--dialect", "duckdb", "--table", "leerling"])
    assert 1 == code
    assert "rule r_permit" in capsys.readouterr().err
