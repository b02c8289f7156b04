"""The export log (avgpolicy.exports): records, fail-closed, tamper evidence, queries, concurrency.

The store-independent tests run on every store: SQLite (the default), JSON lines and PostgreSQL
(a real server: tests/services.py). PostgreSQL-only failure modes are in test_exports_postgres.py,
the command line, access report and dashboard in test_exports_cli.py and test_exports_browser.py.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import avgpolicy
from avgpolicy.exports import ExportLog, ExportLogError, ExportRecord
from avgpolicy.exports.record import Entry, chain_hash, dump_keys, dumps
from tests import exports_support
from tests.exports_support import AT, FIELDS, KEY, planted_needles, planted_students, policy, sqlite_files, unique_table
from tests.services import postgres_dsn

STORES = ["sqlite", "jsonl", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(params=STORES)
def log(request: Any, tmp_path: Path) -> Iterator[ExportLog]:
    if request.param == "sqlite":
        made = ExportLog(tmp_path / "exports.sqlite")
    elif request.param == "jsonl":
        made = ExportLog(tmp_path / "exports.jsonl")
    else:
        made = ExportLog(postgres_dsn(), table=unique_table())
    yield made
    if request.param == "postgres":
        made.store.drop()  # type: ignore[attr-defined]
    made.close()


def run_export(pol: avgpolicy.Policy, log: ExportLog, students: list[dict[str, Any]], *, partner: str = "snappet",
               purpose: str = "leermiddelen", fields: list[str] | None = None, actor: str = "j.devries",
               channel: str = "nightly-feed") -> tuple[ExportRecord, list[dict[str, Any]]]:
    with pol.export(partner, purpose, fields or FIELDS, at=AT, actor=actor, channel=channel, log=log) as export:
        rows = list(export.rows(students))
    assert export.record is not None
    return export.record, rows


# ---------------------------------------------------------------------------
# what a record holds

def test_record_of_an_allowed_batch(log: ExportLog) -> None:
    pol = policy()
    students = [s for s in planted_students(16) if s["leerjaar"] >= 3]
    record, rows = run_export(pol, log, students)
    assert len(students) == len(rows)
    assert "completed" == record.status
    assert ("j.devries", "nightly-feed", "snappet", "leermiddelen") == (record.actor, record.channel, record.partner,
                                                                        record.purpose)
    assert tuple(FIELDS) == record.fields
    assert pol.version == record.policy_version
    assert "2026-03-02" == record.at
    assert "id" == record.key_field
    assert len(students) == record.students
    assert tuple(s["id"] for s in students) == record.keys
    assert 0 == record.left_out
    assert {"leerling.roepnaam", "leerling.leerjaar", "leerling.id"} == set(record.grants)
    [grant] = record.grants["leerling.id"]
    assert ("snappet_basis", "contract", "pseudonym") == (grant.rule, grant.basis, grant.transform)
    assert record.started <= record.ended  # type: ignore[operator]
    assert [record] == log.exports()


def test_record_of_a_partly_allowed_batch(log: ExportLog) -> None:
    pol = policy()
    students = planted_students(16)  # leerjaar 1..8: 1 and 2 get nothing, 6..8 also the achternaam
    fields = ["leerling.roepnaam", "leerling.achternaam", "leerling.bsn", "leerling.id"]
    record, rows = run_export(pol, log, students, fields=fields)
    sent = [s["id"] for s in students if s["leerjaar"] >= 3]
    assert sent == list(record.keys)
    assert len(sent) == record.students == len(rows)
    assert ("leerling.roepnaam", "leerling.achternaam", "leerling.id") == record.fields_sent
    assert "leerling.bsn" not in record.grants  # never sent: no grant recorded
    assert {"snappet_achternaam_bovenbouw"} == {g.rule for g in record.grants["leerling.achternaam"]}
    assert tuple(fields) == record.fields


def test_record_of_a_fully_denied_batch(log: ExportLog) -> None:
    pol = policy()
    record, rows = run_export(pol, log, planted_students(8), partner="malmberg")  # malmberg: rooster only
    assert [] == rows
    assert ("completed", 0, ()) == (record.status, record.students, record.keys)
    assert {} == dict(record.grants)
    assert [record.id] == [r.id for r in log.exports(partner="malmberg")]


def test_students_without_a_usable_key_are_left_out_and_counted(log: ExportLog) -> None:
    pol = policy()
    good = planted_students(3, prefix="G")
    for s in good:
        s["leerjaar"] = 5
    bad: list[Any] = [dict(good[0]) for _ in range(6)]
    del bad[0]["id"]
    bad[1]["id"] = None
    bad[2]["id"] = 12  # ill-typed: the key field is text
    bad[3]["id"] = ""
    bad[4]["id"] = "   "
    bad[5] = ["not", "a", "record"]
    # filter alone would release every one of these dicts (the id is sent as a pseudonym or left out)
    assert 5 == len(list(pol.filter("snappet", "leermiddelen", ["leerling.roepnaam"], bad[:5], at=AT)))
    batch = [bad[0], good[0], *bad[1:], good[1], good[2]]
    # a list (the student of a row found by position) and a generator (the student drawn last)
    for students in (batch, (s for s in batch)):
        record, rows = run_export(pol, log, students)  # type: ignore[arg-type]
        assert ["G0", "G1", "G2"] == list(record.keys)
        assert 3 == len(rows)
        assert 5 == record.left_out  # released by filter, withheld for the key
        assert {"missing": 1, "none": 1, "ill_typed": 1, "empty": 2} == dict(record.left_out_reasons)
        assert 1 == record.not_released  # the list: filter releases nothing about it anyway


def test_rows_follow_filter_lazily_one_student_at_a_time() -> None:
    """export.rows maps each row to the student last drawn: that needs filter to draw one student,
    yield its row (if any), then draw the next. This pins that laziness."""
    pol = policy()
    students = planted_students(12)
    drawn: list[str] = []

    def source() -> Iterator[dict[str, Any]]:
        for s in students:
            drawn.append(s["id"])
            yield s

    for row in pol.filter("snappet", "leermiddelen", FIELDS, source(), at=AT):
        owner = next(s for s in students if s["leerjaar"] == row["leerling.leerjaar"]
                     and s["roepnaam"] == row["leerling.roepnaam"])
        assert owner["id"] == drawn[-1]


def test_an_exception_in_the_block_aborts_with_the_rows_sent_so_far(log: ExportLog) -> None:
    pol = policy()
    students = [s for s in planted_students(20) if s["leerjaar"] >= 3]
    sent = []
    with pytest.raises(ConnectionError), \
            pol.export("snappet", "leermiddelen", FIELDS, at=AT, actor="sis", channel="api", log=log) as export:
        for row in export.rows(students):
            if len(sent) == 4:
                raise ConnectionError(f"partner unreachable while sending {row['leerling.roepnaam']}")
            sent.append(row)
    record = export.record
    assert record is not None
    assert ("aborted", "ConnectionError", 5) == (record.status, record.error, record.students)
    assert [s["id"] for s in students[:5]] == list(record.keys)  # the fifth row was drawn: it counts as sent
    assert "partner unreachable" not in json.dumps(log.exports()[0].to_dict())  # the message may hold a value


def test_no_row_can_be_drawn_after_the_block(log: ExportLog) -> None:
    pol = policy()
    with pol.export("snappet", "leermiddelen", FIELDS, at=AT, actor="sis", channel="api", log=log) as export:
        rows = export.rows(planted_students(40))
        next(rows)
    assert [] == list(rows)
    assert 1 == export.record.students  # type: ignore[union-attr]
    with pytest.raises(ExportLogError, match="inside"):
        export.rows(planted_students(2))


def test_a_wrong_call_raises_before_anything_is_written(log: ExportLog) -> None:
    pol = policy()
    with pytest.raises(TypeError, match="actor"):
        pol.export("snappet", "leermiddelen", FIELDS, actor="", channel="api", log=log)
    with pytest.raises(TypeError):
        pol.export("snappet", "leermiddelen", "leerling.roepnaam", actor="a", channel="api", log=log)
    keyless = avgpolicy.loads(textwrap.dedent("""
        dataset leerling "L" subject {
            nummer  text  personal
        }
        partner p "P" {
            agreement "A-1" valid from 2025-01-01
        }
        purpose u "U"
        permit r {
            partner p
            purpose u
            basis contract
            fields leerling.nummer
        }
        """))
    if getattr(keyless.model.catalogue, "key", None) is None:
        with pytest.raises(ValueError, match="key"):
            keyless.export("p", "u", ["leerling.nummer"], actor="a", channel="api", log=log)
    with pytest.raises(ValueError, match="export log"):
        pol.export("snappet", "leermiddelen", FIELDS, actor="a", channel="api")
    assert [] == log.entries()


def test_load_with_an_export_log(tmp_path: Path) -> None:
    pol = policy(export_log=str(tmp_path / "x.sqlite"))
    assert isinstance(pol.export_log, ExportLog)
    with pol.export("snappet", "leermiddelen", FIELDS, at=AT, actor="a", channel="manual") as export:
        list(export.rows(planted_students(4)))
    assert [export.record] == pol.export_log.exports()


# ---------------------------------------------------------------------------
# queries

def test_exports_filters(log: ExportLog) -> None:
    pol = policy()
    students = planted_students(8)
    first, _ = run_export(pol, log, students, actor="a.jansen", channel="manual")
    second, _ = run_export(pol, log, students, partner="malmberg", purpose="rooster",
                           fields=["leerling.roepnaam", "leerling.lesgroepen"])
    assert [first.id, second.id] == [r.id for r in log.exports()]
    assert [first.id] == [r.id for r in log.exports(actor="a.jansen")]
    assert [second.id] == [r.id for r in log.exports(partner="malmberg")]
    assert [first.id] == [r.id for r in log.exports(channel="manual")]
    today = first.started.date()
    assert 2 == len(log.exports(since=today, until=today + datetime.timedelta(days=1)))
    assert [] == log.exports(since=today + datetime.timedelta(days=1))
    assert [] == log.exports(until=today)
    assert () == log.exports(keys=False)[0].keys


def test_student_finds_exactly_the_exports_that_held_the_student(log: ExportLog) -> None:
    pol = policy()
    tricky = ['L1"', 'L"L1', "Ł1", "L1 "]
    students = planted_students(12)  # L0..L11
    for s in students:
        s["leerjaar"] = 5
    extra = [dict(students[0], id=k) for k in tricky]
    a, _ = run_export(pol, log, students[:2])            # L0, L1
    b, _ = run_export(pol, log, students[2:])            # L2..L11: L10, L11 hold "L1" as a prefix
    c, _ = run_export(pol, log, extra)                   # keys that contain L1 in other ways
    d, _ = run_export(pol, log, students[1:2], partner="malmberg", purpose="rooster",
                      fields=["leerling.roepnaam"])       # L1 again, another partner
    assert [a.id, d.id] == [r.id for r in log.student("L1")]
    assert [b.id] == [r.id for r in log.student("L10")]
    assert [] == log.student("L")
    assert [] == log.student("1")
    for k in tricky:
        assert [c.id] == [r.id for r in log.student(k)]
    with pytest.raises(TypeError):
        log.student(None)  # type: ignore[arg-type]


def test_student_keys_of_an_int_key_field_are_exact(tmp_path: Path) -> None:
    text = textwrap.dedent("""
        dataset leerling "L" subject {
            id        int   personal
            roepnaam  text  personal
        }
        partner p "P" {
            agreement "A-1" valid from 2025-01-01
        }
        purpose u "U"
        permit r {
            partner p
            purpose u
            basis contract
            fields leerling.roepnaam
        }
        """)
    log = ExportLog(tmp_path / "i.sqlite")
    pol = avgpolicy.loads(text, export_log=log)
    with pol.export("p", "u", ["leerling.roepnaam"], at=AT, actor="a", channel="api") as export:
        list(export.rows([{"id": 5, "roepnaam": "x"}, {"id": 15, "roepnaam": "y"}, {"id": "7", "roepnaam": "z"},
                          {"id": True, "roepnaam": "w"}]))
    assert (5, 15) == export.record.keys  # type: ignore[union-attr]
    assert {"ill_typed": 2} == dict(export.record.left_out_reasons)  # type: ignore[union-attr]
    assert [export.record.id] == [r.id for r in log.student(5)]  # type: ignore[union-attr]
    assert [] == log.student("5")
    assert [] == log.student(1)


# ---------------------------------------------------------------------------
# tamper evidence

def _sqlite_log_with_exports(tmp_path: Path, n: int = 3) -> tuple[Path, ExportLog, list[Entry]]:
    path = tmp_path / "t.sqlite"
    log = ExportLog(path)
    pol = policy()
    for i in range(n):
        run_export(pol, log, planted_students(4 + i))
    return path, log, log.entries()


def _sql(path: Path, *statements: tuple[str, tuple[Any, ...]]) -> None:
    conn = sqlite3.connect(path)
    with conn:
        for sql, params in statements:
            conn.execute(sql, params)
    conn.close()


def _problems(log: ExportLog) -> list[tuple[str, str]]:
    return [(p.kind, p.id) for p in log.verify().problems]


def test_an_intact_log_verifies(log: ExportLog) -> None:
    pol = policy()
    for _ in range(3):
        run_export(pol, log, planted_students(5))
    report = log.verify()
    assert (True, 6, 3, ()) == (report.ok, report.entries, report.exports, report.problems)
    assert log.entries()[-1].hash == report.head


def test_verify_finds_an_edited_record(tmp_path: Path) -> None:
    path, log, entries = _sqlite_log_with_exports(tmp_path)
    victim = entries[3]  # a completion: its keys
    _sql(path, ("UPDATE avgpolicy_exports SET keys = ? WHERE id = ?", ('["L0"]', victim.id)))
    assert [("edited", victim.id)] == _problems(log)
    assert not log.verify().ok


def test_verify_finds_an_edited_and_rehashed_record(tmp_path: Path) -> None:
    path, log, entries = _sqlite_log_with_exports(tmp_path)
    victim = entries[2]
    body = victim.body.replace("j.devries", "someone.else")
    new_hash = chain_hash(victim.id, victim.kind, victim.export, victim.time, victim.prev_id, victim.prev_hash,
                          body, victim.keys)
    _sql(path, ("UPDATE avgpolicy_exports SET body = ?, hash = ? WHERE id = ?", (body, new_hash, victim.id)))
    assert [("edited", victim.id)] == _problems(log)


def test_verify_finds_a_removed_record(tmp_path: Path) -> None:
    path, log, entries = _sqlite_log_with_exports(tmp_path)
    _sql(path, ("DELETE FROM avgpolicy_exports WHERE id = ?", (entries[2].id,)))
    assert [("removed", entries[2].id)] == _problems(log)


def test_verify_finds_an_inserted_record(tmp_path: Path) -> None:
    path, log, entries = _sqlite_log_with_exports(tmp_path)
    # a forged completion slipped in between entries 1 and 2, chained properly to entry 1
    before = entries[1]
    forged = Entry("01FORGEDFORGEDFORGEDFORGED", "completed", entries[0].id, before.time, before.id, before.hash,
                   before.body, "[]", "")
    forged = Entry(forged.id, forged.kind, forged.export, forged.time, forged.prev_id, forged.prev_hash,
                   forged.body, forged.keys, chain_hash(forged.id, forged.kind, forged.export, forged.time,
                                                        forged.prev_id, forged.prev_hash, forged.body, forged.keys))
    _sql(path, ("UPDATE avgpolicy_exports SET seq = seq + 100 WHERE seq >= 3", ()),
         ("INSERT INTO avgpolicy_exports VALUES (3, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
          (forged.id, forged.kind, forged.export, forged.time, forged.prev_id, forged.prev_hash, forged.body,
           forged.keys, forged.hash)))
    assert [("inserted", forged.id)] == _problems(log)


def test_verify_finds_reordered_records(tmp_path: Path) -> None:
    path, log, entries = _sqlite_log_with_exports(tmp_path)
    a, b = entries[2], entries[3]
    _sql(path, ("UPDATE avgpolicy_exports SET seq = -1 WHERE id = ?", (a.id,)),
         ("UPDATE avgpolicy_exports SET seq = ? WHERE id = ?", (a.seq, b.id)),
         ("UPDATE avgpolicy_exports SET seq = ? WHERE id = ?", (b.seq, a.id)))
    problems = _problems(log)
    assert problems and {"reordered"} == {k for k, _ in problems}
    assert b.id in {i for _, i in problems}


# ---------------------------------------------------------------------------
# pruning

def test_prune_is_recorded_and_the_pruned_log_verifies(log: ExportLog) -> None:
    pol = policy()
    old = [run_export(pol, log, planted_students(3))[0] for _ in range(2)]
    time.sleep(0.01)
    cut = datetime.datetime.now(datetime.UTC)
    time.sleep(0.01)
    new, _ = run_export(pol, log, planted_students(3))
    assert 4 == log.prune(before=cut, actor="privacy.officer")
    assert [new.id] == [r.id for r in log.exports()]
    assert [] == log.student(old[0].keys[0]) or all(r.id == new.id for r in log.student(old[0].keys[0]))
    entries = log.entries()
    assert ["started", "completed", "pruned"] == [e.kind for e in entries]
    assert {"removed": 4, "actor": "privacy.officer"}.items() <= entries[-1].data().items()
    assert log.verify().ok
    run_export(pol, log, planted_students(2))
    assert log.verify().ok
    assert 0 == log.prune(before=datetime.date(2000, 1, 1))


def test_a_deletion_after_pruning_is_still_found(tmp_path: Path) -> None:
    path, log, entries = _sqlite_log_with_exports(tmp_path, 3)
    log.prune(before=datetime.datetime.fromisoformat(entries[2].time.replace("Z", "+00:00")))
    _sql(path, ("DELETE FROM avgpolicy_exports WHERE id = ?", (entries[3].id,)))
    # the completion of the second export is gone: that export now also shows as unfinished
    assert [("removed", entries[3].id), ("unfinished", entries[2].id)] == _problems(log)


# ---------------------------------------------------------------------------
# fail closed

def _immutable(path: Path) -> contextlib.AbstractContextManager[None]:
    """Make a file read-only even for root (chmod alone does not stop root)."""

    @contextlib.contextmanager
    def cm() -> Iterator[None]:
        os.chmod(path, 0o444)
        locked = False
        if os.geteuid() == 0:
            chattr = shutil.which("chattr")
            if chattr is None or subprocess.run([chattr, "+i", str(path)]).returncode != 0:
                pytest.skip("running as root without chattr +i: a read-only file cannot be made")
            locked = True
        try:
            yield
        finally:
            if locked:
                subprocess.run([shutil.which("chattr") or "chattr", "-i", str(path)])
            os.chmod(path, 0o644)

    return cm()


def test_a_read_only_sqlite_file_raises_and_releases_nothing(tmp_path: Path) -> None:
    path = tmp_path / "ro.sqlite"
    ExportLog(path).close()  # the file exists, with its table
    for p in list(sqlite_files(path))[1:]:
        p.unlink()
    sent: list[Any] = []
    with _immutable(path):
        with pytest.raises(ExportLogError, match=r"ro\.sqlite"):
            log = ExportLog(path)
            with policy().export("snappet", "leermiddelen", FIELDS, at=AT, actor="a", channel="api",
                                 log=log) as export:
                sent.extend(export.rows(planted_students(8)))
        assert [] == sent


def test_a_full_disk_raises_and_releases_nothing(tmp_path: Path) -> None:
    log = ExportLog(tmp_path / "full.sqlite")
    pol = policy()
    run_export(pol, log, planted_students(4))
    conn = log.store._conn  # type: ignore[attr-defined]
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    conn.execute(f"PRAGMA max_page_count = {pages}")  # SQLITE_FULL from now on: a full disk
    big = planted_students(3000)
    sent: list[Any] = []
    with pytest.raises(ExportLogError, match="full"):  # noqa: SIM117
        with pol.export("snappet", "leermiddelen", FIELDS, at=AT, actor="a", channel="api", log=log) as export:
            sent.extend(export.rows(big))
    # the started entry fitted in the last page, the completion with 3,000 keys did not: the record
    # stays unfinished, which is what happened (rows went out, the log cannot say to whom)
    started = [r for r in log.exports() if r.status == "started"]
    if sent:
        assert 1 == len(started)
    else:
        assert [] == started
    conn.execute("PRAGMA max_page_count = 1073741823")


def test_a_log_that_cannot_start_the_record_releases_nothing(tmp_path: Path) -> None:
    log = ExportLog(tmp_path / "busy.sqlite")
    other = sqlite3.connect(tmp_path / "busy.sqlite", timeout=0)
    other.execute("BEGIN EXCLUSIVE")  # another process holds the write lock for longer than the timeout
    log.store._conn.execute("PRAGMA busy_timeout = 100")  # type: ignore[attr-defined]
    sent: list[Any] = []
    with pytest.raises(ExportLogError, match="locked"):  # noqa: SIM117
        with policy().export("snappet", "leermiddelen", FIELDS, at=AT, actor="a", channel="api", log=log) as export:
            sent.extend(export.rows(planted_students(8)))
    assert [] == sent
    other.rollback()
    other.close()


KILLED_CHILD = """
import sys, time
sys.path.insert(0, {root!r})
from tests.exports_support import AT, FIELDS, planted_students, policy
from avgpolicy import ExportLog
log = ExportLog({path!r})
with policy().export("snappet", "leermiddelen", FIELDS, at=AT, actor="nightly", channel="feed", log=log) as ex:
    for i, row in enumerate(ex.rows(planted_students(1000))):
        if i == 10:
            print("sending", flush=True)
            time.sleep(60)
"""


def test_a_killed_process_leaves_a_visible_unfinished_record(tmp_path: Path) -> None:
    path = tmp_path / "killed.sqlite"
    root = str(Path(__file__).resolve().parent.parent)
    child = subprocess.Popen([sys.executable, "-c", KILLED_CHILD.format(root=root, path=str(path))],
                             stdout=subprocess.PIPE, text=True)
    try:
        assert "sending" == child.stdout.readline().strip()  # type: ignore[union-attr]
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
        child.stdout.close()  # type: ignore[union-attr]
    assert -signal.SIGKILL == child.returncode
    log = ExportLog(path)
    [record] = log.exports()
    assert ("started", "nightly", None) == (record.status, record.actor, record.ended)
    assert [record.id] == [r.id for r in log.unfinished()]
    report = log.verify()
    assert report.ok  # an unfinished export is not tampering ...
    assert (record.id,) == report.unfinished  # ... but verify lists it


# ---------------------------------------------------------------------------
# concurrency: 8 threads and 2 processes into one SQLite log

WRITER_CHILD = """
import sys
sys.path.insert(0, {root!r})
from tests.exports_support import AT, FIELDS, planted_students, policy
from avgpolicy import ExportLog
log = ExportLog({path!r})
pol = policy()
students = planted_students(30, prefix={prefix!r})
for i in range({n}):
    with pol.export("snappet", "leermiddelen", FIELDS, at=AT, actor={prefix!r}, channel="proc", log=log) as ex:
        for row in ex.rows(students):
            pass
"""


def test_threads_and_processes_lose_no_record_and_keep_the_chain(tmp_path: Path) -> None:
    path = tmp_path / "shared.sqlite"
    root = str(Path(__file__).resolve().parent.parent)
    per_writer = 12
    log = ExportLog(path)
    pol = policy()
    errors: list[BaseException] = []

    def thread_writer(n: int) -> None:
        try:
            students = planted_students(30, prefix=f"T{n}-")
            for _ in range(per_writer):
                with pol.export("snappet", "leermiddelen", FIELDS, at=AT, actor=f"T{n}", channel="thread",
                                log=log) as ex:
                    for _row in ex.rows(students):
                        pass
        except BaseException as exc:
            errors.append(exc)

    procs = [subprocess.Popen([sys.executable, "-c", WRITER_CHILD.format(root=root, path=str(path),
                                                                        prefix=f"P{k}-", n=per_writer)])
             for k in range(2)]
    threads = [threading.Thread(target=thread_writer, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for p in procs:
        assert 0 == p.wait(timeout=120)
    assert [] == errors
    records = log.exports()
    assert 10 * per_writer == len(records)
    assert {"completed"} == {r.status for r in records}
    assert {f"T{n}" for n in range(8)} | {"P0-", "P1-"} == {r.actor for r in records}
    expected = sum(1 for s in planted_students(30) if s["leerjaar"] >= 3)  # leerjaar 1 and 2 get nothing
    assert {expected} == {r.students for r in records}
    report = log.verify()
    assert (True, 20 * per_writer) == (report.ok, report.entries)
    assert len({e.id for e in log.entries()}) == 20 * per_writer


def test_threads_share_one_log_on_every_store(log: ExportLog) -> None:
    pol = policy()
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            for _ in range(3):
                run_export(pol, log, planted_students(6, prefix=f"W{n}-"), actor=f"W{n}")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [] == errors
    assert 24 == len(log.exports())
    assert log.verify().ok


# ---------------------------------------------------------------------------
# never a field value

def test_no_field_value_ever_reaches_the_log(tmp_path: Path) -> None:
    path = tmp_path / "values.sqlite"
    log = ExportLog(path)
    pol = policy()
    students = planted_students(64)
    run_export(pol, log, students, fields=["leerling.roepnaam", "leerling.achternaam", "leerling.bsn",
                                           "leerling.medisch", "leerling.geboortedatum", "leerling.id"])
    run_export(pol, log, students, partner="malmberg", purpose="rooster",
               fields=["leerling.roepnaam", "leerling.lesgroepen", "leerling.medisch"])
    with pytest.raises(RuntimeError), \
            pol.export("snappet", "leermiddelen", FIELDS, at=AT, actor="a", channel="manual", log=log) as export:
        for row in export.rows(students):
            raise RuntimeError(f"failed on {row}")
    log.prune(before=datetime.date(2000, 1, 1))
    log.close()
    blob = b"".join(p.read_bytes() for p in sqlite_files(path))
    for needle in planted_needles(students):
        assert needle.encode() not in blob, needle
    assert b"L63" in blob  # the keys are there (the search would find a value)


# ---------------------------------------------------------------------------
# export.rows is filter: the same rows, the keys of their students, the grants the engine reports

@given(st.lists(st.one_of(st.text(max_size=6), st.integers(min_value=-10**20, max_value=10**20)), max_size=8))
def test_keys_are_written_as_canonical_json(keys: list[Any]) -> None:
    assert dumps(keys) == dump_keys(keys)
    assert dumps([str(k) for k in keys]) == dump_keys([str(k) for k in keys])
    assert dumps([k for k in keys if type(k) is int]) == dump_keys([k for k in keys if type(k) is int])


POLICY_TEXT = exports_support.POLICY_TEXT
TWO_PERMITS = POLICY_TEXT + '''
permit snappet_roepnaam_onderbouw {
    partner  snappet
    purpose  leermiddelen
    basis    contract
    fields   leerling.roepnaam, leerling.geboortedatum as year
    students where leerjaar in 1..2
}
'''


def _sent_by_filter(pol: avgpolicy.Policy, partner: str, purpose: str, fields: list[str],
                    students: list[Any], at: Any) -> tuple[list[dict[str, Any]], list[Any], dict[str, set[Any]]]:
    """filter's rows for the students with a usable key, their keys, and its FilterReport's grants
    for the fields that are in some row."""
    key = pol.model.catalogue.key or "id"
    keyed = [s for s in students if type(s) is dict and type(s.get(key)) is str and s[key].strip()]
    report = avgpolicy.FilterReport()
    rows, keys = [], []
    for s in keyed:
        for row in pol.filter(partner, purpose, fields, [s], at=at, report=report):
            rows.append(row)
            keys.append(s[key])
    sent = {f for row in rows for f in row}
    return rows, keys, {f: g for f, g in report.grants.items() if f in sent}


def _grant_tuples(record: ExportRecord) -> dict[str, set[Any]]:
    return {f: {(g.rule, g.basis, g.law, g.agreement, g.transform) for g in gs} for f, gs in record.grants.items()}


@pytest.mark.parametrize("text", [POLICY_TEXT, TWO_PERMITS], ids=["one permit a field", "two permits"])
def test_rows_keys_and_grants_are_filters(tmp_path: Path, text: str) -> None:
    pol = avgpolicy.loads(text, pseudonym_key=KEY)
    students: list[Any] = planted_students(40)
    students[3]["leerjaar"] = "4"  # ill-typed: denied
    del students[5]["id"]  # no key: withheld
    students[9] = None
    fields = ["leerling.roepnaam", "leerling.achternaam", "leerling.geboortedatum", "leerling.id", "leerling.bsn"]
    rows, keys, grants = _sent_by_filter(pol, "snappet", "leermiddelen", fields, students, AT)
    log = ExportLog(tmp_path / "x.sqlite")
    for batch in (students, tuple(students), iter(students)):
        record, got = run_export(pol, log, batch, fields=fields)  # type: ignore[arg-type]
        assert rows == got
        assert keys == list(record.keys)
        assert grants == _grant_tuples(record)
        assert len(students) == record.students + record.left_out + record.not_released
    if text == TWO_PERMITS:  # the roepnaam of years 1-2 and 3-8 is granted by two rules
        assert {"snappet_basis", "snappet_roepnaam_onderbouw"} == {g[0] for g in grants["leerling.roepnaam"]}


def test_the_demo_feeds_through_an_export_are_filters_feeds(tmp_path: Path) -> None:
    from avgpolicy.demo import BUNDLED_MOMENT, DEMO_PSEUDONYM_KEY, bundled_policy_path, feeds, generate_students

    pol = avgpolicy.load(bundled_policy_path(), pseudonym_key=DEMO_PSEUDONYM_KEY)
    students = generate_students(pol, 300, seed=5)
    log = ExportLog(tmp_path / "demo.sqlite", synchronous="normal")
    for feed in feeds(pol):
        fields = list(feed.fields)
        rows, keys, grants = _sent_by_filter(pol, feed.partner, feed.purpose, fields, students, BUNDLED_MOMENT)
        with pol.export(feed.partner, feed.purpose, fields, at=BUNDLED_MOMENT, actor="demo", channel="test",
                        log=log) as export:
            got = list(export.rows(students))
        assert export.record is not None
        assert (rows, keys) == (got, list(export.record.keys)), feed
        assert grants == _grant_tuples(export.record), feed
    assert log.verify().ok


def test_a_list_changed_while_rows_are_drawn_keeps_the_keys_right(tmp_path: Path) -> None:
    pol = policy()
    students = [s for s in planted_students(12) if s["leerjaar"] >= 3]
    expected = [s["id"] for s in students]
    with pol.export("snappet", "leermiddelen", FIELDS, at=AT, actor="a", channel="api",
                    log=ExportLog(tmp_path / "x.sqlite")) as export:
        for _ in export.rows(students):
            students.insert(0, {"id": "intruder", "leerjaar": 5, "roepnaam": "X"})
    assert expected == list(export.record.keys)  # type: ignore[union-attr]


def test_a_student_sent_twice_in_one_export_is_listed_twice(tmp_path: Path) -> None:
    pol = policy()
    [a, b] = [s for s in planted_students(8) if s["leerjaar"] >= 3][:2]
    record, rows = run_export(pol, ExportLog(tmp_path / "x.sqlite"), [a, b, a])
    assert 3 == len(rows) == record.students
    assert [a["id"], b["id"], a["id"]] == list(record.keys)


def test_an_integral_key_that_filter_reads_as_int_is_recorded_as_that_int(tmp_path):
    """A numpy-like integral student id in an int key field: filter releases the student (issue 16
    item 2), so the export sends and records it, as the exact int; a bool or a float is still left out."""
    import numbers

    class Int64:  # what numpy.int64 looks like to avgpolicy: an integral number with __index__
        def __init__(self, v: int) -> None:
            self.v = v

        def __index__(self) -> int:
            return self.v

    numbers.Integral.register(Int64)
    text = POLICY_TEXT.replace("    id             text  personal", "    id             int   personal")
    assert text != POLICY_TEXT
    p = avgpolicy.loads(text, pseudonym_key=b"k" * 32)
    students = [dict(s, id=key, leerjaar=5) for s, key in zip(planted_students(3), [Int64(7), True, 8.0], strict=True)]
    with avgpolicy.ExportLog(tmp_path / "log.sqlite") as log:
        with p.export("snappet", "leermiddelen", FIELDS, at=AT, actor="t", channel="test", log=log) as export:
            sent = list(export.rows(students))
        record = export.record
        assert (1, [7]) == (len(sent), list(record.keys))
        assert 2 == record.left_out
