"""A bulk SQL feed in the export log: ``plan.run(connection, ..., export=export)`` records what
``export.rows`` records for the same students (keys, counts, grants), withholds a row whose key is
NULL or unusable, refuses a plan that is not the export's request, and writes no field value."""

from __future__ import annotations

import datetime
import re
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import avgpolicy
from avgpolicy.exports import ExportLog
from tests.exports_support import AT, FIELDS, KEY, POLICY_TEXT, planted_needles, planted_students, policy, sqlite_files

duckdb = pytest.importorskip("duckdb")

COLUMNS = ("id", "roepnaam", "achternaam", "leerjaar", "lesgroepen")
REQUESTS = [
    ("snappet", "leermiddelen", FIELDS),  # the key field itself, released as pseudonym
    ("snappet", "leermiddelen", ["leerling.roepnaam", "leerling.leerjaar"]),  # key not asked for
    ("snappet", "leermiddelen", ["leerling.roepnaam", "leerling.achternaam"]),  # two permits' conditions
    ("malmberg", "rooster", ["leerling.roepnaam", "leerling.lesgroepen"]),  # kind "all", a set field
]


def table(students: list[dict[str, Any]], dialect: str = "duckdb") -> Any:
    """The students as table ``leerling`` in an in-memory database."""
    if dialect == "duckdb":
        conn = duckdb.connect()
        conn.execute("CREATE TABLE leerling (id VARCHAR, roepnaam VARCHAR, achternaam VARCHAR, leerjaar BIGINT, "
                     "lesgroepen VARCHAR[])")
        for s in students:
            conn.execute("INSERT INTO leerling VALUES (?, ?, ?, ?, ?)", [
                sorted(v) if isinstance(v := s.get(c), frozenset) else v for c in COLUMNS])
        return conn
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE leerling (id, roepnaam TEXT, achternaam TEXT, leerjaar INTEGER, lesgroepen TEXT)")
    conn.executemany("INSERT INTO leerling VALUES (?, ?, ?, ?, NULL)", [
        tuple(s.get(c) for c in COLUMNS[:4]) for s in students])
    return conn


def records(students: list[dict[str, Any]], request: tuple[str, str, list[str]], log: ExportLog,
            dialect: str = "duckdb", pol: avgpolicy.Policy | None = None) -> tuple[Any, Any, list[Any], list[Any]]:
    """(plan feed's record, export.rows's record, plan feed's rows, export.rows's rows)."""
    pol = pol or policy()
    partner, purpose, fields = request
    plan = pol.plan(partner, purpose, fields, at=AT)
    conn = table(students, dialect)
    with pol.export(partner, purpose, fields, at=AT, actor="feed", channel="sql", log=log) as by_plan:
        sql_rows = plan.run(conn, table="leerling", export=by_plan)
    rows = [{c: s.get(c) for c in COLUMNS if dialect == "duckdb" or c != "lesgroepen"} for s in students]
    with pol.export(partner, purpose, fields, at=AT, actor="feed", channel="rows", log=log) as by_rows:
        py_rows = list(by_rows.rows(rows))
    return by_plan.record, by_rows.record, sql_rows, py_rows


def assert_same_record(a: Any, b: Any) -> None:
    assert a.status == b.status == "completed"
    assert list(a.keys) == list(b.keys)
    assert a.students == b.students == len(a.keys)
    assert (a.left_out, dict(a.left_out_reasons)) == (b.left_out, dict(b.left_out_reasons))
    assert a.grants == b.grants


def mixed_students(n: int) -> list[dict[str, Any]]:
    """Planted students (key ``L0``..) with some keys NULL, empty or blank and a NULL leerjaar."""
    out = []
    for s in planted_students(n):
        s = dict(s, lesgroepen=sorted(s["lesgroepen"]))
        i = int(s["id"][1:])
        if i % 7 == 2:
            s["id"] = None
        elif i % 11 == 4:
            s["id"] = "" if i % 2 else "  "
        if i % 13 == 5:
            s["leerjaar"] = None
        out.append(s)
    return out


@pytest.mark.parametrize("request_", REQUESTS, ids=lambda r: f"{r[0]}-{len(r[2])}")
def test_a_plan_feed_records_what_export_rows_records(request_: Any, tmp_path: Path) -> None:
    log = ExportLog(tmp_path / "log.sqlite")
    by_plan, by_rows, sql_rows, py_rows = records(mixed_students(60), request_, log)
    assert sql_rows == py_rows
    assert by_plan.students > 0 and by_plan.left_out > 0
    assert_same_record(by_plan, by_rows)
    assert by_plan.not_released is None  # the query never returned the students it does not release
    # what the log reads back is what the export recorded
    assert [(r.channel, list(r.keys), r.grants) for r in log.exports()] == [
        ("sql", list(by_plan.keys), by_plan.grants), ("rows", list(by_rows.keys), by_rows.grants)]


def test_on_sqlite_too_an_ill_typed_key_is_withheld(tmp_path: Path) -> None:
    students = mixed_students(30)
    students[10]["id"] = 10  # an int in a text key: ill_typed, as export.rows calls it
    by_plan, by_rows, sql_rows, py_rows = records(students, REQUESTS[1], ExportLog(tmp_path / "l.sqlite"), "sqlite")
    assert sql_rows == py_rows
    assert_same_record(by_plan, by_rows)
    assert by_plan.left_out_reasons["ill_typed"] == 1


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.sampled_from([None, "", " ", "K"]), st.none() | st.integers(1, 8),
                          st.none() | st.text("ab", max_size=2)), max_size=12),
       st.sampled_from(REQUESTS))
def test_generated_tables_agree(tmp_path: Path, spec: list[Any], request_: Any) -> None:
    students = [{"id": None if k is None else (k + str(i) if k == "K" else k), "leerjaar": year,
                 "roepnaam": name, "achternaam": name, "lesgroepen": None if name is None else [name]}
                for i, (k, year, name) in enumerate(spec)]
    log = ExportLog(tmp_path / f"gen{len(list(tmp_path.iterdir()))}.sqlite")
    by_plan, by_rows, sql_rows, py_rows = records(students, request_, log)
    assert sql_rows == py_rows
    assert_same_record(by_plan, by_rows)
    log.close()


def test_a_null_key_is_withheld_and_counted(tmp_path: Path) -> None:
    students = [{"id": "L1", "roepnaam": "Ada", "leerjaar": 5}, {"id": None, "roepnaam": "Bob", "leerjaar": 5},
                {"id": "  ", "roepnaam": "Cas", "leerjaar": 5}, {"id": "L4", "roepnaam": "Dirk", "leerjaar": 1}]
    pol = policy()
    plan = pol.plan("snappet", "leermiddelen", ["leerling.roepnaam"], at=AT)
    with pol.export("snappet", "leermiddelen", ["leerling.roepnaam"], at=AT, actor="a", channel="sql",
                    log=ExportLog(tmp_path / "l.sqlite")) as export:
        rows = plan.run(table(students), table="leerling", export=export)
    assert rows == [{"leerling.roepnaam": "Ada"}]  # the key is not in a row that did not ask for it
    assert list(export.record.keys) == ["L1"]
    assert dict(export.record.left_out_reasons) == {"none": 1, "empty": 1}


def test_the_key_field_as_pseudonym_records_the_raw_key_and_sends_the_pseudonym(tmp_path: Path) -> None:
    students = [{"id": "L7", "roepnaam": "Ada", "leerjaar": 5}]
    pol = policy()
    plan = pol.plan("snappet", "leermiddelen", ["leerling.id"], at=AT)
    with pol.export("snappet", "leermiddelen", ["leerling.id"], at=AT, actor="a", channel="sql",
                    log=ExportLog(tmp_path / "l.sqlite")) as export:
        rows = plan.run(table(students), table="leerling", export=export)
    assert rows == list(pol.filter("snappet", "leermiddelen", ["leerling.id"], students, at=AT))
    assert rows[0]["leerling.id"] != "L7"
    assert list(export.record.keys) == ["L7"]
    assert export.record.grants["leerling.id"][0].transform == "pseudonym"


@pytest.mark.parametrize(("change", "says"), [
    ({"partner": "malmberg", "purpose": "rooster"}, "partner: plan 'malmberg', export 'snappet'"),
    ({"fields": ["leerling.roepnaam"]}, "fields: plan"),
    ({"at": datetime.date(2026, 3, 3)}, "decision day: plan"),
    ({"policy": "other"}, "another Policy"),
])
def test_a_plan_for_another_request_is_refused_before_the_query(change: dict[str, Any], says: str,
                                                                 tmp_path: Path) -> None:
    pol = policy()
    partner, purpose = change.get("partner", "snappet"), change.get("purpose", "leermiddelen")
    plan_policy = policy() if change.get("policy") else pol
    plan = plan_policy.plan(partner, purpose, change.get("fields", FIELDS), at=change.get("at", AT))
    conn = table(planted_students(8))
    with pol.export("snappet", "leermiddelen", FIELDS, at=AT, actor="a", channel="sql",
                    log=ExportLog(tmp_path / "l.sqlite")) as export, \
            pytest.raises(ValueError, match=f"not this export's request.*{re.escape(says)}"):
        plan.run(conn, table="leerling", export=export)
    assert export.record.students == 0 and export.record.keys == ()


def test_an_export_that_is_not_open_is_refused(tmp_path: Path) -> None:
    pol = policy()
    plan = pol.plan("snappet", "leermiddelen", FIELDS, at=AT)
    conn = table(planted_students(8))
    export = pol.export("snappet", "leermiddelen", FIELDS, at=AT, actor="a", channel="sql",
                        log=ExportLog(tmp_path / "l.sqlite"))
    with pytest.raises(ValueError, match="is new, not open"):
        plan.run(conn, table="leerling", export=export)
    with export:
        pass
    with pytest.raises(ValueError, match="is closed, not open"):
        plan.run(conn, table="leerling", export=export)


def test_a_field_with_several_permits_is_refused(tmp_path: Path) -> None:
    text = POLICY_TEXT + '''
permit snappet_roepnaam_ook {
    partner  snappet
    purpose  leermiddelen
    basis    contract
    fields   leerling.roepnaam
    students where leerjaar <= 2
}
'''
    pol = avgpolicy.loads(text, pseudonym_key=KEY)
    plan = pol.plan("snappet", "leermiddelen", ["leerling.roepnaam"], at=AT)
    with pol.export("snappet", "leermiddelen", ["leerling.roepnaam"], at=AT, actor="a", channel="sql",
                    log=ExportLog(tmp_path / "l.sqlite")) as export:
        with pytest.raises(ValueError, match=r"several permits grant leerling\.roepnaam.*use export\.rows"):
            plan.run(table(planted_students(8)), table="leerling", export=export)
        # export.rows still records it (per-student grants from the engine's report)
        assert len(list(export.rows(planted_students(8)))) == 8
    assert {g.rule for g in export.record.grants["leerling.roepnaam"]} == {"snappet_basis", "snappet_roepnaam_ook"}


def test_no_field_value_reaches_the_log(tmp_path: Path) -> None:
    path = tmp_path / "values.sqlite"
    log = ExportLog(path)
    students = planted_students(64)
    for s in students:
        s["lesgroepen"] = sorted(s["lesgroepen"])
    for request_ in REQUESTS:
        by_plan, _, sql_rows, _ = records(students, request_, log)
        assert sql_rows and by_plan.students == len(sql_rows)
    log.close()
    blob = b"".join(p.read_bytes() for p in sqlite_files(path))
    for needle in planted_needles(students):
        assert needle.encode() not in blob, needle
    assert b"L63" in blob  # the keys are there (the search would find a value)
