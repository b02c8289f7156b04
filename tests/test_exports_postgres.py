"""The PostgreSQL store against real servers: several SIS nodes sharing one log, and a server that
goes down between two exports (a cluster of our own, started and stopped here; never the shared one)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from avgpolicy.exports import ExportLog, ExportLogError
from tests.exports_support import AT, FIELDS, planted_needles, planted_students, policy, unique_table
from tests.services import postgres_dsn, unavailable

pytestmark = pytest.mark.postgres

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def own_cluster() -> Iterator[tuple[str, dict[str, str]]]:
    """A throwaway PostgreSQL cluster of this test alone: (dsn, env to stop it with)."""
    postgres_dsn()  # skips (locally) or fails (CI) the same way when PostgreSQL is missing
    state = tempfile.mkdtemp(prefix="avgpolicy-exports-pg-", dir="/tmp")
    os.chmod(state, 0o755)
    env = {**os.environ, "AVG_PG_STATE": state}
    started = subprocess.run(["bash", str(ROOT / ".ci" / "postgres"), "start"], env=env, capture_output=True,
                             text=True, timeout=180)
    found = re.search(r"AVG_TEST_POSTGRES_DSN=(\S+)", started.stdout)
    if started.returncode != 0 or found is None:
        shutil.rmtree(state, ignore_errors=True)
        unavailable("a second PostgreSQL cluster", f".ci/postgres start failed: {started.stderr[-500:]}")
    try:
        yield found.group(1), env  # type: ignore[union-attr]
    finally:
        subprocess.run(["bash", str(ROOT / ".ci" / "postgres"), "stop"], env=env, capture_output=True, timeout=120)
        shutil.rmtree(state, ignore_errors=True)


def test_a_server_stopped_between_two_exports_raises_and_releases_nothing(
        own_cluster: tuple[str, dict[str, str]]) -> None:
    dsn, env = own_cluster
    log = ExportLog(dsn, table=unique_table())
    pol = policy()
    students = planted_students(20)
    with pol.export("snappet", "leermiddelen", FIELDS, at=AT, actor="node-1", channel="feed", log=log) as export:
        first = list(export.rows(students))
    assert first and export.record is not None and "completed" == export.record.status
    stopped = subprocess.run(["bash", str(ROOT / ".ci" / "postgres"), "stop"], env=env, capture_output=True,
                             timeout=120)
    assert 0 == stopped.returncode
    sent: list[Any] = []
    with pytest.raises(ExportLogError) as caught:  # noqa: SIM117
        with pol.export("snappet", "leermiddelen", FIELDS, at=AT, actor="node-1", channel="feed", log=log) as export:
            sent.extend(export.rows(students))
    assert [] == sent
    message = str(caught.value)
    assert "PostgreSQL" in message
    for needle in planted_needles(students):
        assert needle not in message
    with pytest.raises(ExportLogError):
        log.exports()  # reading fails closed too: no half answer
    log.close()


def test_several_nodes_share_one_log(tmp_path: Path) -> None:
    dsn = postgres_dsn()
    table = unique_table()
    nodes = [ExportLog(dsn, table=table) for _ in range(4)]  # four SIS nodes, a connection each
    pol = policy()
    errors: list[BaseException] = []

    def work(node: ExportLog, n: int) -> None:
        try:
            students = planted_students(25, prefix=f"N{n}-")
            for _ in range(5):
                with pol.export("snappet", "leermiddelen", FIELDS, at=AT, actor=f"node-{n}", channel="feed",
                                log=node) as export:
                    for _row in export.rows(students):
                        pass
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(nodes[n % 4], n)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert [] == errors
        records = nodes[0].exports()
        assert 40 == len(records)
        assert {f"node-{n}" for n in range(8)} == {r.actor for r in records}
        report = nodes[1].verify()
        assert (True, 80) == (report.ok, report.entries)
        assert [r.id for r in records if "N3-7" in r.keys] == [r.id for r in nodes[2].student("N3-7")]
    finally:
        nodes[0].store.drop()  # type: ignore[attr-defined]
        for node in nodes:
            node.close()


def test_tampering_is_found_on_postgres() -> None:
    import psycopg

    dsn = postgres_dsn()
    log = ExportLog(dsn, table=unique_table())
    pol = policy()
    try:
        for _ in range(3):
            with pol.export("snappet", "leermiddelen", FIELDS, at=AT, actor="a", channel="feed", log=log) as ex:
                list(ex.rows(planted_students(6)))
        entries = log.entries()
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f"DELETE FROM {log.store.table} WHERE id = %s", (entries[2].id,))  # type: ignore[attr-defined]
            conn.execute(f"UPDATE {log.store.table} SET keys = '[]' WHERE id = %s",  # type: ignore[attr-defined]
                         (entries[5].id,))
        assert [("removed", entries[2].id), ("edited", entries[5].id)] == sorted(
            ((p.kind, p.id) for p in log.verify().problems if p.kind != "unfinished"), key=lambda x: x[0] != "removed")
    finally:
        log.store.drop()  # type: ignore[attr-defined]
        log.close()
