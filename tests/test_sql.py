"""Pushdown to SQL (avgpolicy.sql): the NULL cases that bit Cerbos, NotTranslatable, injection,
no text ever parsed into SQL, and `avgpolicy sql` printing queries that run."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import pathlib
import re
import sqlite3
from typing import Any

import pytest
from services import postgres_dsn

import avgpolicy
from avgpolicy import NotTranslatable
from avgpolicy import runtime as rt
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

BIG = "leerjaar < 99999999999999999999"


@pytest.mark.parametrize("rules, construct", [
    (_permit(BIG), "99999999999999999999"),
    (_permit(f'"plusklas" in lesgroepen or {BIG}'), "99999999999999999999"),
])
def test_not_translatable_names_the_rule(rules: str, construct: str) -> None:
    policy = policy_of(rules)
    with pytest.raises(NotTranslatable) as info:
        policy.plan("snappet", "leermiddelen", ["leerling.roepnaam"], at=DAY)
    assert "r_permit" == info.value.rule
    assert construct in str(info.value)
    assert "rule r_permit" in str(info.value)


def test_untranslatable_rule_not_in_the_request_does_not_matter() -> None:
    policy = policy_of(_permit(BIG))
    assert "none" == policy.plan("snappet", "leermiddelen", ["leerling.school"], at=DAY).kind


# ---------------------------------------------------------------------------
# Set fields: membership and release, NULL and ill-typed sets unknown as in the engines

SET_RULES = _permit('"plusklas" in lesgroepen or school in lesgroepen').replace(
    "fields  leerling.roepnaam", "fields  leerling.{roepnaam, lesgroepen}") + """
forbid r_geheim {
    partner snappet
    fields  leerling.lesgroepen
    students where "geheim" in lesgroepen
}
"""
SET_FIELDS = ["leerling.roepnaam", "leerling.lesgroepen"]
#: (id, school, roepnaam, lesgroepen): NULL set, empty set, a NULL element (ill-typed: unknown)
SET_STUDENTS = [("a", "12AB", "Anna", ["plusklas"]), ("b", "12AB", "Bram", ["12AB", "x"]),
                ("c", None, "Cas", ["12AB"]), ("d", "x", "Dirk", None), ("e", "x", "Eva", []),
                ("f", "x", "Fem", ["plusklas", None]), ("g", "x", "Gijs", ["plusklas", "geheim"]),
                ("h", "x", "Hans", ["geheim", None])]
SET_EXPECTED = [{"leerling.roepnaam": "Anna", "leerling.lesgroepen": ["plusklas"]},
                {"leerling.roepnaam": "Bram", "leerling.lesgroepen": ["12AB", "x"]},
                {"leerling.roepnaam": "Gijs"}]


def _set_records(rows: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
    return [dict(zip(["id", "school", "roepnaam", "lesgroepen"], r, strict=True)) for r in rows]


def test_set_membership_and_release_on_duckdb() -> None:
    """A NULL set, a NULL element and a NULL element next to "geheim" are unknown: the permit does not
    grant, and the forbid blocks Hans's set (his name has no forbid, but no permit either)."""
    policy = policy_of(SET_RULES)
    assert rows_of(SET_EXPECTED) == rows_of(policy.filter("snappet", "leermiddelen", SET_FIELDS,
                                                          _set_records(SET_STUDENTS), at=DAY))
    conn = duckdb.connect()
    conn.execute("CREATE TABLE leerling (id VARCHAR, school VARCHAR, roepnaam VARCHAR, lesgroepen VARCHAR[])")
    conn.executemany("INSERT INTO leerling VALUES (?, ?, ?, ?)", SET_STUDENTS)
    plan = policy.plan("snappet", "leermiddelen", SET_FIELDS, at=DAY)
    assert rows_of(SET_EXPECTED) == rows_of(plan.run(conn, table="leerling"))


def test_set_on_postgres_two_dimensions_are_ill_typed() -> None:
    dsn = postgres_dsn()
    import psycopg
    policy = policy_of(SET_RULES)
    plan = policy.plan("snappet", "leermiddelen", SET_FIELDS, at=DAY)
    name = f"sql_sets_{id(plan)}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'CREATE TABLE "{name}" (id text, school text, roepnaam text, lesgroepen text[])')
        try:
            with conn.cursor() as cur:
                cur.executemany(f'INSERT INTO "{name}" VALUES (%s, %s, %s, %s)', SET_STUDENTS)
                cur.execute(f'INSERT INTO "{name}" VALUES (%s, %s, %s, %s)', ("i", "x", "Ivo", [["plusklas"]]))
                cur.execute(f'SELECT id, school, roepnaam, lesgroepen FROM "{name}"')
                records = _set_records(cur.fetchall())
            assert [["plusklas"]] == records[-1]["lesgroepen"]  # a list of lists: not a set of text
            expected = list(policy.filter("snappet", "leermiddelen", SET_FIELDS, records, at=DAY))
            assert rows_of(SET_EXPECTED) == rows_of(expected)
            assert rows_of(expected) == rows_of(plan.run(conn, table=name))
        finally:
            conn.execute(f'DROP TABLE "{name}"')


def test_set_on_sqlite_is_a_json_array_of_strings() -> None:
    """SQLite has no arrays: a set column holds a JSON array of strings. Anything else (not JSON, a
    number inside, an object, a bare string, a number) is ill-typed, as the record json.loads gives."""
    policy = policy_of(SET_RULES)
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE leerling (id TEXT, school TEXT, roepnaam TEXT, lesgroepen TEXT)")
    rows = [(*r[:3], None if r[3] is None else json.dumps(r[3])) for r in SET_STUDENTS]
    rows += [("j", "x", "Jan", "plusklas"), ("k", "x", "Kim", '["plusklas", 1]'), ("l", "x", "Lot", 5),
             ("m", "x", "Mo", '{"plusklas": 1}'), ("n", "x", "Noor", '"plusklas"'), ("o", "x", "Olaf", "[plusklas"),
             ("p", "x", "Pim", ' [ "plusklas" ] ')]
    conn.executemany("INSERT INTO leerling VALUES (?, ?, ?, ?)", rows)
    records = _set_records(conn.execute("SELECT * FROM leerling").fetchall())
    for record in records:
        with contextlib.suppress(TypeError, ValueError):
            record["lesgroepen"] = json.loads(record["lesgroepen"])
    expected = list(policy.filter("snappet", "leermiddelen", SET_FIELDS, records, at=DAY))
    pim = {"leerling.roepnaam": "Pim", "leerling.lesgroepen": ["plusklas"]}
    assert rows_of([*SET_EXPECTED, pim]) == rows_of(expected)
    plan = policy.plan("snappet", "leermiddelen", SET_FIELDS, at=DAY)
    assert rows_of(expected) == rows_of(plan.run(conn, table="leerling"))


# ---------------------------------------------------------------------------
# SQLite has no column types: a value the engines call ill-typed is never released

def test_sqlite_text_in_an_int_column_is_unknown() -> None:
    """'5' stays text in a column without INTEGER affinity: the engines call it ill-typed, so a permit
    on leerjaar does not grant and a forbid on it blocks; in an INTEGER column SQLite stores 5, an int."""
    permit = policy_of(_permit("leerjaar >= 3"))
    forbid = policy_of(_forbid("leerjaar == 4"))
    for declared, inserted, granted in [("", "5", False), ("BLOB", "5", False), ("TEXT", "5", False),
                                        ("INTEGER", "5", True), ("INTEGER", 5, True), ("", 5, True),
                                        ("", 5.0, False), ("INTEGER", "5x", False), ("REAL", 5, False)]:
        conn = sqlite3.connect(":memory:")
        conn.execute(f"CREATE TABLE leerling (roepnaam TEXT, leerjaar {declared})")
        conn.execute("INSERT INTO leerling VALUES ('Anna', ?)", (inserted,))
        records = [dict(zip(["roepnaam", "leerjaar"], r, strict=True))
                   for r in conn.execute("SELECT * FROM leerling").fetchall()]
        assert granted == (type(records[0]["leerjaar"]) is int)  # INTEGER affinity turns '5' into 5
        for policy in (permit, forbid):
            expected = list(policy.filter("snappet", "leermiddelen", ["leerling.roepnaam"], records, at=DAY))
            assert ([{"leerling.roepnaam": "Anna"}] if granted else []) == expected, (declared, inserted)
            plan = policy.plan("snappet", "leermiddelen", ["leerling.roepnaam"], at=DAY)
            assert expected == plan.run(conn, table="leerling"), (declared, inserted)


@pytest.mark.parametrize("declared, consent_given, refused", [
    ("leerjaar VARCHAR", "DATE", "'leerjaar' of leerling is VARCHAR"),
    ("leerjaar DOUBLE", "DATE", "'leerjaar' of leerling is DOUBLE"),
    ("leerjaar DECIMAL(4, 0)", "DATE", "'leerjaar' of leerling is DECIMAL(4,0)"),
    ("leerjaar INTEGER", "TIMESTAMP", "'given' of toestemming is TIMESTAMP"),
    ("leerjaar INTEGER", "DATE", None)])
def test_run_refuses_columns_of_another_type(declared: str, consent_given: str, refused: str | None) -> None:
    """DuckDB would compare a VARCHAR '5' with 3 as a number, where the engines call '5' ill-typed and
    deny: run reads the column types first and raises NotTranslatable rather than release more."""
    policy = policy_of(_permit("leerjaar >= 3").replace("basis   contract", "basis   consent(t)")
                       + 'consent t "Toestemming"\n')
    conn = duckdb.connect()
    conn.execute(f"CREATE TABLE leerling (id VARCHAR, geboortedatum DATE, roepnaam VARCHAR, {declared})")
    conn.execute("INSERT INTO leerling VALUES ('a', DATE '2010-01-01', 'Anna', '5')")
    conn.execute(f"CREATE TABLE toestemming (student VARCHAR, topic VARCHAR, party VARCHAR, given {consent_given}, "
                 "withdrawn DATE)")
    conn.execute("INSERT INTO toestemming VALUES ('a', 't', 'parent', '2025-09-01', NULL)")
    plan = policy.plan("snappet", "leermiddelen", ["leerling.roepnaam"], at=DAY)
    if refused is None:
        assert [{"leerling.roepnaam": "Anna"}] == plan.run(conn, table="leerling", consents="toestemming")
        return
    with pytest.raises(NotTranslatable) as info:
        plan.run(conn, table="leerling", consents="toestemming")
    assert refused in str(info.value)


# ---------------------------------------------------------------------------
# The bundled example school board: every request of its test blocks, planned and run in DuckDB

POLICIES = pathlib.Path(__file__).resolve().parent.parent / "policies"
_DUCK_TYPES = {"text": "VARCHAR", "int": "BIGINT", "bool": "BOOLEAN", "date": "DATE", "set": "VARCHAR[]"}
_SAMPLE = {"text": "x", "int": 3, "bool": True, "date": dt.date(2026, 1, 15), "set": ["x"]}


def _refs_of(e: Any) -> list[Any]:
    """The references a condition reads."""
    if isinstance(e, (avgpolicy.nodes.And, avgpolicy.nodes.Or)):
        return [r for i in e.items for r in _refs_of(i)]
    if isinstance(e, avgpolicy.nodes.Not):
        return _refs_of(e.operand)
    return list(rt.atom_refs(e))


def _bundled_requests(policy: avgpolicy.Policy) -> list[tuple[str, str, list[str], Any]]:
    cat = policy.model.catalogue
    out = []
    for test in policy.model.tests:
        if test.partner is None or test.purpose is None:
            continue
        refs: list[str] = []
        for e in test.expects:
            for ref in e.fields:
                if ref.field.value == "*":
                    refs += [f.ref for f in cat.datasets[ref.dataset.value].fields]
                else:
                    refs.append(ref.ref)
        out.append((test.partner.value, test.purpose.value, list(dict.fromkeys(refs)), test.at or DAY))
    return out


def test_bundled_policies_requests_run_in_duckdb() -> None:
    """Every request of the bundled test blocks (snappet_rekenen_taal's "plusklas" in lesgroepen too) is
    planned; plan.run on a DuckDB table of all the test blocks' students (other datasets' fields filled
    in, consents in a consent table) returns exactly filter's rows."""
    policy = avgpolicy.load(POLICIES, pseudonym_key=b"bundled")
    cat = policy.model.catalogue
    subject = cat.subject
    fields = {ref: info for ref, info in cat.fields.items()}
    columns = {ref: ref.split(".", 1)[1] if ref.startswith(subject + ".") else ref for ref in fields}
    conn = duckdb.connect()
    conn.execute("CREATE TABLE leerling (" + ", ".join(f'"{columns[r]}" {_DUCK_TYPES[i.type]}'
                                                        for r, i in fields.items()) + ")")
    conn.execute("CREATE TABLE toestemming (student VARCHAR, topic VARCHAR, party VARCHAR, given DATE, "
                 "withdrawn DATE)")
    in_conditions = {ref.name for r in policy.model.rules if r.condition is not None
                     for ref in _refs_of(r.condition)}
    records = []
    for i, test in enumerate(policy.model.tests):
        values = {sv.key.value: sorted(sv.value) if isinstance(sv.value, frozenset) else sv.value
                  for sv in test.student}
        record: dict[str, Any] = {}
        for ref, info in fields.items():
            key = columns[ref]
            if not ref.startswith(subject + "."):
                record[ref] = _SAMPLE[info.type]
            elif key in values or info.type != "text" or key in in_conditions:
                record[key] = values.get(key)
            else:  # a text field no condition reads: a value of its own, so that rows show who got what
                record[key] = f"{key}-{i}"
        record["id"] = f"{values.get('id', 'T')}-{i}"  # one student per test block
        conn.execute(f"INSERT INTO leerling VALUES ({', '.join('?' * len(fields))})",
                     [record[columns[r] if r.startswith(subject + ".") else r] for r in fields])
        consents = {}
        for c in test.consents:
            conn.execute("INSERT INTO toestemming VALUES (?, ?, ?, ?, ?)",
                         [record["id"], c.topic.value, c.by.value, c.given, c.withdrawn])
            consents[c.topic.value] = {"by": c.by.value, "given": c.given, "withdrawn": c.withdrawn}
        if consents:
            record["consents"] = consents
        records.append(record)
    requests = _bundled_requests(policy)
    kleuter = next(i for i, t in enumerate(policy.model.tests) if t.name.value == "snappet_kleuter_in_plusklas")
    planned, released, plusklas, refused = 0, 0, 0, []
    for partner, purpose, refs, at in requests:
        try:
            plan = policy.plan(partner, purpose, refs, at=at)
        except NotTranslatable as exc:
            refused.append((partner, purpose, str(exc)))
            continue
        planned += 1
        expected = list(policy.filter(partner, purpose, refs, records, at=at))
        actual = plan.run(conn, table="leerling", columns=columns, consents="toestemming")
        assert rows_of(expected) == rows_of(actual), (partner, purpose, refs, at)
        released += bool(expected)
        plusklas += any(r.get("leerling.roepnaam") == f"roepnaam-{kleuter}" for r in actual)
    assert [] == refused
    assert len(requests) == planned and planned >= 70
    assert released >= 50  # the comparison is about rows, not only empty feeds
    assert plusklas >= 1  # the group 2 pupil in the plusklas reached Snappet through "plusklas" in lesgroepen
    rekenen = next(r for r in policy.model.rules if r.name == "snappet_rekenen_taal")
    assert "lesgroepen" in rt.condition_text(rekenen.condition)


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
    path.write_text(CATALOGUE + _permit(BIG))
    code = main(["sql", str(path), "--partner", "snappet", "--purpose", "leermiddelen", "--fields",
                 "leerling.roepnaam", "--dialect", "duckdb", "--table", "leerling"])
    assert 1 == code
    assert "rule r_permit" in capsys.readouterr().err
