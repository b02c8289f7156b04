"""Stores: where the entries of an export log live. One small interface, three stores.

A store keeps entries in chain order and does three things: append under a lock (reading the
head, adding one entry, and optionally removing a prefix, all in one durable transaction), list the
entries in order, and find the entries whose key list holds a text (a pre-filter; the log checks
exactly). The log (``log.py``) builds every entry and its hash; a store never computes one.

* :class:`SQLiteStore` - one file, the standard library's ``sqlite3``, WAL mode, safe for several
  threads (one connection behind a lock) and several processes (SQLite's write lock, waited for).
* :class:`JSONLinesStore` - one line of JSON per entry, ``fcntl`` file lock: the "third store",
  about 60 lines, to show what another store costs.
* ``postgres.PostgresStore`` - several SIS nodes sharing one log (psycopg 3, extra ``postgres``).

Every failure to write or read becomes :class:`ExportLogError`.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

from .record import Entry, ExportLogError

__all__ = ["JSONLinesStore", "SQLiteStore", "Store", "Transaction", "check_table_name"]

_COLUMNS = ("seq", "id", "kind", "export", "time", "prev_id", "prev_hash", "body", "keys", "hash")
_NAME = re.compile(r"[a-z_][a-z0-9_]{0,47}")


def check_table_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ValueError(f"table must be a lower-case SQL name such as 'avgpolicy_exports' "
                         f"(letters, digits, _; at most 48), not {name!r}")
    return name


class Transaction(Protocol):
    """What a store offers inside one write transaction (the log's lock is held)."""

    def head(self) -> Entry | None:
        """The last entry in chain order, or None for an empty log: its ``seq``, ``id`` and ``hash``
        (what the next entry needs; the other columns may be left empty)."""

    def entries(self) -> Iterator[Entry]:
        """Every entry in chain order (with keys), as seen inside this transaction."""

    def add(self, entry: Entry) -> None:
        """Append ``entry`` after the head (its ``seq`` is the head's plus one)."""

    def remove_through(self, seq: int) -> int:
        """Remove every entry up to and including position ``seq``; returns how many."""


class Store(Protocol):
    """The store interface: see the module docstring."""

    description: str

    def transaction(self) -> contextlib.AbstractContextManager[Transaction]:
        """A write transaction: durable when the ``with`` block ends without an error."""

    def entries(self, *, keys: bool = True) -> Iterator[Entry]:
        """Every entry in chain order; ``keys=False`` leaves the key lists out (``keys == ""``)."""

    def holding(self, text: str) -> Iterator[Entry]:
        """The entries whose key list contains ``text`` (a superset: the caller checks exactly)."""

    def close(self) -> None:
        """Release connections and files."""


def _entry(row: tuple[object, ...]) -> Entry:
    seq, id_, kind, export, time, prev_id, prev_hash, body, keys, hash_ = row
    return Entry(str(id_), str(kind), str(export), str(time), str(prev_id), str(prev_hash), str(body),
                 str(keys), str(hash_), seq=int(seq))  # type: ignore[call-overload]


# ---------------------------------------------------------------------------
# SQLite

class _SQLiteTransaction:
    def __init__(self, store: SQLiteStore, conn: sqlite3.Connection) -> None:
        self._store, self._conn = store, conn
        self._head: Entry | None = None
        self._read = False

    def head(self) -> Entry | None:
        if not self._read:
            row = self._conn.execute(f"SELECT {HEAD_COLUMNS} FROM {self._store.table} "
                                     "ORDER BY seq DESC LIMIT 1").fetchone()
            self._head, self._read = (head_entry(row) if row else None), True
        return self._head

    def entries(self) -> Iterator[Entry]:
        cur = self._conn.execute(f"SELECT {', '.join(_COLUMNS)} FROM {self._store.table} ORDER BY seq")
        return map(_entry, cur.fetchall())

    def add(self, entry: Entry) -> None:
        head = self.head()
        seq = head.seq + 1 if head is not None and head.seq is not None else 1
        self._conn.execute(f"INSERT INTO {self._store.table} ({', '.join(_COLUMNS)}) "
                           "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                           (seq, entry.id, entry.kind, entry.export, entry.time, entry.prev_id,
                            entry.prev_hash, entry.body, entry.keys, entry.hash))
        self._head = attrs_evolve_seq(entry, seq)

    def remove_through(self, seq: int) -> int:
        return self._conn.execute(f"DELETE FROM {self._store.table} WHERE seq <= ?", (seq,)).rowcount


#: what a transaction reads of the head entry: not its body and keys (a large export's keys are
#: hundreds of kilobytes, and the next entry needs only the head's position, id and hash)
HEAD_COLUMNS = "seq, id, hash"


def head_entry(row: tuple[object, ...]) -> Entry:
    seq, id_, hash_ = row
    return Entry(str(id_), "", "", "", "", "", "", "", str(hash_), seq=int(seq))  # type: ignore[call-overload]


def attrs_evolve_seq(entry: Entry, seq: int) -> Entry:
    return Entry(entry.id, entry.kind, entry.export, entry.time, entry.prev_id, entry.prev_hash, entry.body,
                 entry.keys, entry.hash, seq=seq)


class SQLiteStore:
    """An export log in one SQLite file (WAL mode).

    ``synchronous="full"`` (the default) makes every record durable against power loss before
    the call returns (an fsync per transaction); ``"normal"`` is durable against a crash of the
    process but may lose the last records on power loss, for about a tenth of the cost.
    """

    def __init__(self, path: str | os.PathLike[str], *, table: str = "avgpolicy_exports",
                 synchronous: str = "full", timeout: float = 30.0) -> None:
        if synchronous not in ("full", "normal"):
            raise ValueError(f"synchronous must be 'full' or 'normal', not {synchronous!r}")
        self.path = Path(path)
        self.table = check_table_name(table)
        self.description = f"SQLite {self.path}"
        self._lock = threading.RLock()
        try:
            conn = sqlite3.connect(str(self.path), timeout=timeout, isolation_level=None,
                                   check_same_thread=False)
        except sqlite3.Error as exc:
            raise ExportLogError(f"cannot open the export log {self.path}: {exc}") from exc
        self._conn = conn
        try:
            with self._lock:
                conn.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
                mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
                conn.execute(f"PRAGMA synchronous = {synchronous.upper()}")
                conn.execute("BEGIN IMMEDIATE")
                try:
                    conn.execute(f"CREATE TABLE IF NOT EXISTS {self.table} (seq INTEGER PRIMARY KEY, "
                                 "id TEXT NOT NULL UNIQUE, kind TEXT NOT NULL, export TEXT NOT NULL, "
                                 "time TEXT NOT NULL, prev_id TEXT NOT NULL, prev_hash TEXT NOT NULL, "
                                 "body TEXT NOT NULL, keys TEXT NOT NULL, hash TEXT NOT NULL)")
                    conn.execute(f"CREATE INDEX IF NOT EXISTS {self.table}_export ON {self.table} (export)")
                    conn.execute("COMMIT")
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
        except sqlite3.Error as exc:
            conn.close()
            raise ExportLogError(f"cannot write the export log {self.path}: {exc}") from exc
        if str(mode).lower() != "wal":
            conn.close()
            raise ExportLogError(f"the export log {self.path} cannot use WAL mode (journal mode {mode!r})")

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Transaction]:
        with self._lock:
            conn = self._conn
            try:
                conn.execute("BEGIN IMMEDIATE")  # the write lock, across processes
            except sqlite3.Error as exc:
                raise ExportLogError(f"cannot write the export log {self.path}: {exc}") from exc
            try:
                yield _SQLiteTransaction(self, conn)
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                _rollback(conn)
                raise ExportLogError(f"cannot write the export log {self.path}: {exc}") from exc
            except BaseException:
                _rollback(conn)
                raise

    def entries(self, *, keys: bool = True) -> Iterator[Entry]:
        columns = ", ".join(c if c != "keys" or keys else "'' AS keys" for c in _COLUMNS)
        return self._select(f"SELECT {columns} FROM {self.table} ORDER BY seq", ())

    def holding(self, text: str) -> Iterator[Entry]:
        return self._select(f"SELECT {', '.join(_COLUMNS)} FROM {self.table} WHERE instr(keys, ?) > 0 "
                            "ORDER BY seq", (text,))

    def _select(self, sql: str, params: tuple[object, ...]) -> Iterator[Entry]:
        with self._lock:
            try:
                rows = self._conn.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise ExportLogError(f"cannot read the export log {self.path}: {exc}") from exc
        return map(_entry, rows)

    def close(self) -> None:
        with self._lock:
            self._conn.close()


def _rollback(conn: sqlite3.Connection) -> None:
    with contextlib.suppress(sqlite3.Error):
        conn.execute("ROLLBACK")


# ---------------------------------------------------------------------------
# JSON lines: the third store, to show what one costs

class _LinesTransaction:
    def __init__(self, lines: list[Entry]) -> None:
        self.lines, self.added, self.removed = lines, [], 0  # type: list[Entry], list[Entry], int

    def head(self) -> Entry | None:
        return (self.added or self.lines or [None])[-1]

    def entries(self) -> Iterator[Entry]:
        return iter(self.lines + self.added)

    def add(self, entry: Entry) -> None:
        head = self.head()
        self.added.append(attrs_evolve_seq(entry, (head.seq or 0) + 1 if head else 1))

    def remove_through(self, seq: int) -> int:
        before = len(self.lines)
        self.lines = [e for e in self.lines if (e.seq or 0) > seq]
        self.removed += before - len(self.lines)
        return before - len(self.lines)


class JSONLinesStore:
    """An export log as a file of JSON lines, one entry a line, locked with ``fcntl.flock``."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.description = f"JSON lines {self.path}"
        self._lock = threading.Lock()
        try:
            self.path.touch(exist_ok=True)
        except OSError as exc:
            raise ExportLogError(f"cannot write the export log {self.path}: {exc.strerror or exc}") from exc

    def _read(self) -> list[Entry]:
        with open(self.path, encoding="utf-8") as fh:
            return [_entry(tuple(json.loads(line)[c] for c in _COLUMNS)) for line in fh if line.strip()]

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Transaction]:
        import fcntl

        with self._lock:
            try:
                fh = open(self.path, "r+", encoding="utf-8")  # noqa: SIM115 (closed below, after the lock)
                fcntl.flock(fh, fcntl.LOCK_EX)
            except OSError as exc:
                raise ExportLogError(f"cannot write the export log {self.path}: {exc.strerror or exc}") from exc
            try:
                tx = _LinesTransaction(self._read())
                yield tx
                lines = [json.dumps(dict(zip(_COLUMNS, (e.seq, e.id, e.kind, e.export, e.time, e.prev_id,
                                                        e.prev_hash, e.body, e.keys, e.hash), strict=True)),
                                    ensure_ascii=False) + "\n" for e in (tx.lines + tx.added if tx.removed
                                                                         else tx.added)]
                if tx.removed:  # a pruning rewrites the file
                    fh.seek(0)
                    fh.truncate()
                else:
                    fh.seek(0, os.SEEK_END)
                fh.write("".join(lines))
                fh.flush()
                os.fsync(fh.fileno())
            except OSError as exc:
                raise ExportLogError(f"cannot write the export log {self.path}: {exc.strerror or exc}") from exc
            finally:
                fh.close()

    def entries(self, *, keys: bool = True) -> Iterator[Entry]:
        try:
            return iter(self._read())
        except OSError as exc:
            raise ExportLogError(f"cannot read the export log {self.path}: {exc.strerror or exc}") from exc

    def holding(self, text: str) -> Iterator[Entry]:
        return (e for e in self.entries() if text in e.keys)

    def close(self) -> None:
        pass
