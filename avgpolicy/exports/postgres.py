"""The PostgreSQL store: one export log shared by several SIS nodes (psycopg 3, extra ``postgres``).

Appends are serialised per log with a transaction-scoped advisory lock, so nodes writing at the
same time each see the head the one before them wrote; the transaction commits before the call
returns (PostgreSQL's ``synchronous_commit`` decides what durable means; its default waits for the
WAL to be flushed). A connection that broke (server restarted) is opened again on the next call; a
server that cannot be reached raises :class:`ExportLogError`.
"""

from __future__ import annotations

import contextlib
import threading
import zlib
from collections.abc import Iterator
from typing import Any

from .record import Entry, ExportLogError
from .store import _COLUMNS, HEAD_COLUMNS, Transaction, _entry, attrs_evolve_seq, check_table_name, head_entry

__all__ = ["PostgresStore"]


def _redact(dsn: str) -> str:
    """The DSN without a password, for messages."""
    try:
        from psycopg.conninfo import conninfo_to_dict, make_conninfo

        parts = conninfo_to_dict(dsn)
        if "password" in parts:
            parts["password"] = "***"
        return make_conninfo(**parts)  # type: ignore[arg-type]
    except Exception:
        return "(the PostgreSQL DSN)"


class _PGTransaction:
    def __init__(self, store: PostgresStore, cur: Any) -> None:
        self._store, self._cur = store, cur
        self._head: Entry | None = None
        self._read = False

    def head(self) -> Entry | None:
        if not self._read:
            self._cur.execute(f"SELECT {HEAD_COLUMNS} FROM {self._store.table} ORDER BY seq DESC LIMIT 1")
            row = self._cur.fetchone()
            self._head, self._read = (head_entry(row) if row else None), True
        return self._head

    def entries(self) -> Iterator[Entry]:
        self._cur.execute(f"SELECT {', '.join(_COLUMNS)} FROM {self._store.table} ORDER BY seq")
        return map(_entry, self._cur.fetchall())

    def add(self, entry: Entry) -> None:
        head = self.head()
        seq = head.seq + 1 if head is not None and head.seq is not None else 1
        self._cur.execute(f"INSERT INTO {self._store.table} ({', '.join(_COLUMNS)}) "
                          "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                          (seq, entry.id, entry.kind, entry.export, entry.time, entry.prev_id, entry.prev_hash,
                           entry.body, entry.keys, entry.hash))
        self._head = attrs_evolve_seq(entry, seq)

    def remove_through(self, seq: int) -> int:
        self._cur.execute(f"DELETE FROM {self._store.table} WHERE seq <= %s", (seq,))
        return int(self._cur.rowcount)


class PostgresStore:
    """An export log in a PostgreSQL table ``table`` (created when missing)."""

    def __init__(self, dsn: str, *, table: str = "avgpolicy_exports", connect_timeout: int = 10) -> None:
        try:
            import psycopg
        except ImportError as exc:  # pragma: no cover - the extra is missing
            raise ExportLogError("a PostgreSQL export log needs psycopg 3: pip install 'avgpolicy[postgres]'") from exc
        self._psycopg = psycopg
        self.dsn = dsn
        self.table = check_table_name(table)
        self.description = f"PostgreSQL {_redact(dsn)} table {self.table}"
        self._timeout = connect_timeout
        self._lock = threading.RLock()
        self._conn: Any = None
        self._lock_key = zlib.crc32(f"avgpolicy-exports:{self.table}".encode())  # advisory lock id per log
        with self._connection() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (self._lock_key,))
            conn.execute(f"CREATE TABLE IF NOT EXISTS {self.table} (seq BIGINT PRIMARY KEY, id TEXT NOT NULL UNIQUE, "
                         "kind TEXT NOT NULL, export TEXT NOT NULL, time TEXT NOT NULL, prev_id TEXT NOT NULL, "
                         "prev_hash TEXT NOT NULL, body TEXT NOT NULL, keys TEXT NOT NULL, hash TEXT NOT NULL)")
            conn.execute(f"CREATE INDEX IF NOT EXISTS {self.table}_export ON {self.table} (export)")

    @contextlib.contextmanager
    def _connection(self) -> Iterator[Any]:
        """The store's connection (opened again if it broke), with every psycopg error as ExportLogError."""
        psycopg = self._psycopg
        with self._lock:
            try:
                if self._conn is None or self._conn.closed or self._conn.broken:
                    self._conn = psycopg.connect(self.dsn, connect_timeout=self._timeout, autocommit=True)
                yield self._conn
            except psycopg.Error as exc:
                if self._conn is not None and (self._conn.closed or self._conn.broken):
                    self._conn = None
                raise ExportLogError(f"cannot use the export log at {self.description}: "
                                     f"{exc.__class__.__name__}: {str(exc).strip()}") from exc

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Transaction]:
        with self._connection() as conn, conn.transaction(), conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (self._lock_key,))
            yield _PGTransaction(self, cur)

    def entries(self, *, keys: bool = True) -> Iterator[Entry]:
        columns = ", ".join(c if c != "keys" or keys else "'' AS keys" for c in _COLUMNS)
        return self._select(f"SELECT {columns} FROM {self.table} ORDER BY seq", ())

    def holding(self, text: str) -> Iterator[Entry]:
        return self._select(f"SELECT {', '.join(_COLUMNS)} FROM {self.table} WHERE strpos(keys, %s) > 0 "
                            "ORDER BY seq", (text,))

    def _select(self, sql: str, params: tuple[object, ...]) -> Iterator[Entry]:
        with self._connection() as conn:
            rows = conn.execute(sql, params).fetchall()
        return map(_entry, rows)

    def drop(self) -> None:
        """Remove the log's table (tests; a real log is pruned, not dropped)."""
        with self._connection() as conn:
            conn.execute(f"DROP TABLE IF EXISTS {self.table}")

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                with contextlib.suppress(Exception):
                    self._conn.close()
                self._conn = None
