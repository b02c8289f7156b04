"""ExportLog and Export: record who received what, about whom, when - before anything leaves.

``policy.export(...)`` returns an :class:`Export`; entering it writes the ``started`` entry (durable,
or :class:`ExportLogError` and nothing is released); ``export.rows(students)`` is ``policy.filter``
over the students that have a usable key, noting each key sent; leaving the block writes
``completed`` (or ``aborted`` when the block raised). The log uses the engine only through public
objects: ``Policy.filter``/``decide``, ``policy.model`` for the catalogue's key field.
"""

from __future__ import annotations

import datetime
import os
import weakref
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs

from .record import (
    Entry,
    ExportLogError,
    ExportRecord,
    Grant,
    dump_keys,
    dumps,
    entry_is_intact,
    make_entry,
    parse_time,
)
from .store import JSONLinesStore, SQLiteStore, Store

if TYPE_CHECKING:
    from ..policy import Policy

__all__ = ["Export", "ExportLog", "Problem", "VerifyReport"]

Moment = datetime.date | datetime.datetime | None


# ---------------------------------------------------------------------------
# verify's answer

@attrs.frozen
class Problem:
    """Something ``verify`` found: ``kind`` is ``edited``, ``removed``, ``inserted``, ``reordered``,
    ``unfinished`` (an export started but never completed: a killed process) or ``unreadable``."""

    kind: str
    id: str
    message: str

    def to_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "id": self.id, "message": self.message}


TAMPERING = ("edited", "removed", "inserted", "reordered", "unreadable")


@attrs.frozen
class VerifyReport:
    """``ok`` when the chain is intact (unfinished exports are listed but are not tampering)."""

    entries: int
    exports: int
    head: str  # the hash of the last entry: note it elsewhere to detect a cut-off tail later
    problems: tuple[Problem, ...]

    @property
    def ok(self) -> bool:
        return not any(p.kind in TAMPERING for p in self.problems)

    @property
    def unfinished(self) -> tuple[str, ...]:
        return tuple(p.id for p in self.problems if p.kind == "unfinished")

    def __bool__(self) -> bool:
        return self.ok

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "entries": self.entries, "exports": self.exports, "head": self.head,
                "problems": [p.to_dict() for p in self.problems]}


def _verify(entries: list[Entry]) -> VerifyReport:
    problems: list[Problem] = []
    position = {e.id: i for i, e in enumerate(entries)}
    referenced = Counter(e.prev_id for e in entries)
    # pruning cuts the chain on purpose: a pruned entry names where, and that is a valid start
    anchors = {("", "")}
    for e in entries:
        if e.kind == "pruned":
            try:
                d = e.data()
                anchors.add((d["through"], d["through_hash"]))
            except (ValueError, KeyError, TypeError):
                pass
    edited = set()
    for e in entries:
        if not entry_is_intact(e):
            edited.add(e.id)
            problems.append(Problem("edited", e.id, f"entry {e.id} ({e.kind}) does not match its hash: "
                                                    "it was changed after it was written"))
    for i, e in enumerate(entries):
        before = entries[i - 1] if i else None
        if before is not None and e.prev_id == before.id:
            if e.prev_hash != before.hash and before.id not in edited:
                edited.add(before.id)
                problems.append(Problem("edited", before.id, f"entry {before.id} was rewritten: the entry after it "
                                                             "holds a different hash for it"))
            continue
        if before is None and (e.prev_id, e.prev_hash) in anchors:
            continue  # the first entry of the log, or the first after a recorded pruning
        at = position.get(e.prev_id)
        if at is not None and at > i:
            problems.append(Problem("reordered", e.id, f"entry {e.id} is out of order: it was written after "
                                                       f"{e.prev_id}, which now comes after it"))
        elif at is not None and i >= 2 and at == i - 2 and before is not None and not referenced[before.id]:
            problems.append(Problem("inserted", before.id, f"entry {before.id} was inserted: the entry after it "
                                                           f"was written straight after {e.prev_id}"))
        elif at is not None:
            problems.append(Problem("reordered", e.id, f"entry {e.id} is out of order: it was written after "
                                                       f"{e.prev_id}, not after {before.id if before else 'nothing'}"))
        elif e.prev_id == "":
            problems.append(Problem("inserted", e.id, f"entry {e.id} claims to be the first of the log, "
                                                      "but entries come before it"))
        else:
            problems.append(Problem("removed", e.prev_id, f"entry {e.prev_id} is missing: {e.id} was written "
                                                          "after it (removed without a recorded pruning)"))
    ends = {e.export for e in entries if e.kind in ("completed", "aborted")}
    starts = [e for e in entries if e.kind == "started"]
    for e in starts:
        if e.id not in ends:
            problems.append(Problem("unfinished", e.id, f"export {e.id} was started at {e.time} and never "
                                                        "completed (the process stopped mid-export): which "
                                                        "students it sent is not recorded"))
    return VerifyReport(entries=len(entries), exports=len(starts), head=entries[-1].hash if entries else "",
                        problems=tuple(problems))


# ---------------------------------------------------------------------------
# the log

def _open_store(target: Any, table: str, synchronous: str) -> Store:
    if not isinstance(target, (str, os.PathLike)):
        if all(hasattr(target, a) for a in ("transaction", "entries", "holding", "close")):
            return target  # type: ignore[no-any-return]
        raise TypeError(f"an export log is a SQLite file path, a postgresql:// DSN or a store, "
                        f"not {type(target).__name__}")
    text = os.fspath(target)
    if isinstance(text, str) and text.startswith(("postgresql://", "postgres://")):
        from .postgres import PostgresStore

        return PostgresStore(text, table=table)
    if str(text).endswith((".jsonl", ".ndjson")):
        return JSONLinesStore(text)
    return SQLiteStore(text, table=table, synchronous=synchronous)


def _day_start(value: Any, what: str) -> datetime.datetime | None:
    """A bound for queries: a date is its start (UTC), a naive datetime is UTC."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = datetime.datetime.fromisoformat(value) if len(value) > 10 else datetime.date.fromisoformat(value)
        except ValueError as exc:
            raise ValueError(f"{what} {value!r}: write YYYY-MM-DD or an ISO date and time") from exc
    if isinstance(value, datetime.datetime):
        return value if value.tzinfo else value.replace(tzinfo=datetime.UTC)
    if isinstance(value, datetime.date):
        return datetime.datetime(value.year, value.month, value.day, tzinfo=datetime.UTC)
    raise TypeError(f"{what} must be a date, a datetime or an ISO string, not {type(value).__name__}")


class ExportLog:
    """Where exports are recorded: a SQLite file (default), a ``postgresql://`` DSN, a ``.jsonl``
    file, or any object with the store interface (``avgpolicy.exports.store.Store``).

    ``table`` names the table in SQLite and PostgreSQL (several logs can share a database);
    ``synchronous`` is SQLite's durability (``"full"``: against power loss, the default; ``"normal"``:
    against a crash of the process). Safe to share between threads.
    """

    def __init__(self, target: str | os.PathLike[str] | Store, *, table: str = "avgpolicy_exports",
                 synchronous: str = "full") -> None:
        self.store: Store = _open_store(target, table, synchronous)

    def __repr__(self) -> str:
        return f"<ExportLog {self.store.description}>"

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> ExportLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writing ---------------------------------------------------------------

    def _append(self, kind: str, body: Mapping[str, Any], *, keys: str = "", export: str | None = None,
                entry_id: str | None = None) -> Entry:
        with self.store.transaction() as tx:
            entry = make_entry(tx.head(), kind=kind, body=body, keys=keys, export=export, entry_id=entry_id)
            tx.add(entry)
        return entry

    def prune(self, before: datetime.date | datetime.datetime | str, *, actor: str = "avgpolicy") -> int:
        """Remove the oldest entries, up to the first one written on or after ``before`` (the log is
        personal data too); the pruning is itself an entry, so the pruned log still verifies.
        Returns how many entries were removed."""
        cut_time = _day_start(before, "before")
        assert cut_time is not None
        with self.store.transaction() as tx:
            last: Entry | None = None
            count = 0
            for e in tx.entries():
                if parse_time(e.time) >= cut_time:
                    break
                last, count = e, count + 1
            head = tx.head()
            if last is None or last.seq is None:
                return 0
            body = {"before": cut_time.isoformat().replace("+00:00", "Z"), "removed": count, "through": last.id,
                    "through_hash": last.hash, "actor": actor}
            entry = make_entry(head, kind="pruned", body=body)
            tx.remove_through(last.seq)
            tx.add(entry)
        return count

    # -- reading ---------------------------------------------------------------

    def entries(self) -> list[Entry]:
        """Every entry in chain order (the raw log)."""
        return list(self.store.entries())

    def verify(self) -> VerifyReport:
        """Walk the chain: every edited, removed, inserted or reordered entry, by id, and every
        export that was started and never completed."""
        return _verify(list(self.store.entries()))

    def _records(self, entries: Iterable[Entry], *, with_keys: bool) -> list[ExportRecord]:
        starts: dict[str, Entry] = {}
        ends: dict[str, Entry] = {}
        for e in entries:
            if e.kind == "started":
                starts[e.id] = e
            elif e.kind in ("completed", "aborted"):
                ends[e.export] = e
        out = []
        for eid, start in starts.items():
            try:
                out.append(ExportRecord.from_entries(start, ends.get(eid), with_keys=with_keys))
            except (ValueError, KeyError, TypeError):
                continue  # an entry edited into nonsense: verify reports it
        return out

    def exports(self, *, partner: str | None = None, actor: str | None = None, channel: str | None = None,
                since: datetime.date | datetime.datetime | str | None = None,
                until: datetime.date | datetime.datetime | str | None = None,
                keys: bool = True) -> list[ExportRecord]:
        """The exports, oldest first, optionally only those to ``partner``, by ``actor``, through
        ``channel``, started on or after ``since`` and before ``until`` (a date bound is the start of
        that day, UTC). ``keys=False`` leaves the students' keys out (faster for overviews)."""
        lo, hi = _day_start(since, "since"), _day_start(until, "until")
        out = []
        for r in self._records(self.store.entries(keys=keys), with_keys=keys):
            if partner is not None and r.partner != partner:
                continue
            if actor is not None and r.actor != actor:
                continue
            if channel is not None and r.channel != channel:
                continue
            if lo is not None and r.started < lo:
                continue
            if hi is not None and r.started >= hi:
                continue
            out.append(r)
        return out

    def student(self, key: str | int) -> list[ExportRecord]:
        """Every export that included the student with this key (exactly: ``"L1"`` is not ``"L10"``,
        ``5`` is not ``"5"``), oldest first."""
        if type(key) is not str and type(key) is not int:
            raise TypeError(f"a student key is a str or an int, not {type(key).__name__}")
        token = dumps(key)
        hits = {e.export for e in self.store.holding(token) if e.kind in ("completed", "aborted")
                and key_in(e.key_list(), key)}
        if not hits:
            return []
        return [r for r in self._records(self.store.entries(), with_keys=True) if r.id in hits]

    def unfinished(self) -> list[ExportRecord]:
        """Exports that were started and never completed (a process killed mid-export)."""
        return [r for r in self.exports(keys=False) if r.status == "started"]


def key_in(keys: Sequence[Any], key: Any) -> bool:
    kind = type(key)
    return any(k == key and type(k) is kind for k in keys)


# ---------------------------------------------------------------------------
# an export

_KEY_TYPES = {"text": (str,), "int": (int,)}


def _key_field(policy: Policy) -> tuple[str, str]:
    """The subject's key field (bare name) and its type; ``catalogue.key`` (spec 7.7), else ``id``."""
    catalogue = policy.model.catalogue
    name = getattr(catalogue, "key", None)
    subject = catalogue.subject_fields
    if name is None and "id" in subject:
        name = "id"
    if name is None or name not in subject:
        raise ValueError("the catalogue has no key field to record which students were sent: mark the "
                         "subject's identifying field `key` (spec 7.7), or name it `id`")
    return name, subject[name].type


def _usable_key(value: Any, student: Any, name: str, types: tuple[type, ...], left: Counter[str]) -> Any:
    """The key of a student whose key failed the inline exact-type check (the rows' loops check
    ``str``/``int`` exactly first): for an int key field an integral number that is not a bool, read
    as ``filter`` reads an int field (a numpy int64 becomes its int); else None, counted in ``left``
    by why (the student is then left out of the export, never sent)."""
    if int in types:
        from ..runtime import to_int

        key = to_int(value)
        if key is not None:
            return key
    left[_why_no_key(student, name, types)] += 1
    return None


def _why_no_key(student: Any, name: str, types: tuple[type, ...]) -> str:
    """Why a student's key is not usable (for the record's count of students left out)."""
    try:
        if not isinstance(student, Mapping):
            return "not_a_record"
        if name not in student:
            return "missing"
        value = student[name]
    except Exception:
        return "unreadable"
    if value is None:
        return "none"
    if type(value) is str and str in types:
        return "empty"
    return "ill_typed"


def permits_by_field(policy: Policy, partner: str, purpose: str, fields: Sequence[str]) -> dict[str, list[str]]:
    """Per requested field, the permits that can grant it to ``partner`` for ``purpose`` (windows,
    agreements and conditions aside; a field no permit names is never sent and is left out)."""
    known = _PERMITS.get(policy)
    if known is None:
        known = _PERMITS.setdefault(policy, {})
    request = (partner, purpose, tuple(fields))
    out = known.get(request)
    if out is None:
        out = {}
        for ref in fields:
            names = [r.name for r in policy.model.rules if r.effect == "permit" and r.partners.matches(partner)
                     and r.purposes.matches(purpose) and r.grant_for(ref) is not None]
            if names:
                out[ref] = names
        if len(known) < 1024:
            known[request] = out
    return out


#: permits_by_field's answers per policy (a policy is immutable; forgotten with it)
_PERMITS: weakref.WeakKeyDictionary[Any, dict[tuple[str, str, tuple[str, ...]], dict[str, list[str]]]] = \
    weakref.WeakKeyDictionary()


class Export:
    """One export in progress: a context manager (see ``Policy.export``)."""

    def __init__(self, policy: Policy, log: ExportLog, partner: str, purpose: str, fields: Sequence[str], *,
                 at: Moment, actor: str, channel: str) -> None:
        for what, value in (("actor", actor), ("channel", channel)):
            if type(value) is not str or not value.strip():
                raise TypeError(f"{what} must be a non-empty str (who exports, and how: e.g. actor='j.devries', "
                                f"channel='manual'), not {value!r}")
        if not isinstance(log, ExportLog):
            raise TypeError(f"log must be an avgpolicy.ExportLog, not {type(log).__name__}")
        self.policy, self.log = policy, log
        self.partner, self.purpose, self.fields = partner, purpose, list(fields) if isinstance(fields, tuple) \
            else fields
        self.actor, self.channel = actor, channel
        # a wrong call raises here, before anything is written (filter checks the request eagerly)
        policy.filter(partner, purpose, self.fields, (), at=at)
        self.key_field, key_type = _key_field(policy)
        self._key_types = _KEY_TYPES.get(key_type, (str,))
        self.at = datetime.datetime.now(policy.zone) if at is None else at  # one moment for the whole export
        self._record: ExportRecord | None = None
        self._end: tuple[Entry, tuple[Any, ...]] | None = None  # the end entry and its keys
        self._entry: Entry | None = None
        self._keys: list[Any] = []  # the key of each row's student, in the order handed out
        self._left_out: Counter[str] = Counter()
        self._drawn = 0  # students filter read (sent, left out for their key, or not released)
        self._reports: list[Any] = []  # FilterReports
        self._active: list[Iterator[Any]] = []
        self._unknown_drawn = False  # a plan fed rows: the students its query did not return are not counted
        self._state = "new"
        # What granted each field sent. A field that only one permit names is granted by it to every
        # student it is sent about in this export (one decision moment: one basis, law, agreement in
        # force and transform), so the export learns the grant from the decision of the first student
        # the field is sent about and does nothing per student after that (filter runs without a
        # report). When some field has several permits, the grant can differ per student: the
        # engine's FilterReport records them (it decides again every student it leaves out).
        permits = permits_by_field(policy, partner, purpose, self.fields)
        self._sole = {f: names[0] for f, names in permits.items()} \
            if all(len(names) == 1 for names in permits.values()) else None
        self._grants: dict[str, set[tuple[Any, ...]]] = {}
        self._unseen = set(permits)  # fields that can be sent and were not yet

    def __repr__(self) -> str:
        return (f"<Export {self._entry.id if self._entry else '(not started)'} {self.partner}/{self.purpose} "
                f"{self._state}, {len(self._keys)} students>")

    @property
    def id(self) -> str | None:
        return self._entry.id if self._entry else None

    @property
    def record(self) -> ExportRecord | None:
        """The ExportRecord written: None before the export is entered, status ``started`` inside
        the ``with`` block, completed or aborted after it (built when first asked for)."""
        if self._record is None and self._entry is not None:
            end, keys = self._end if self._end is not None else (None, None)
            self._record = ExportRecord.from_entries(self._entry, end, keys=keys)
        return self._record

    @property
    def sent(self) -> int:
        """Rows handed out so far (students sent; a student in a batch twice counts twice)."""
        return len(self._keys)

    def __enter__(self) -> Export:
        if self._state != "new":
            raise RuntimeError("an Export is entered once: call policy.export(...) again for another")
        body = {"actor": self.actor, "channel": self.channel, "partner": self.partner, "purpose": self.purpose,
                "fields": list(self.fields), "policy_version": self.policy.version, "at": _moment_text(self.at),
                "key_field": self.key_field, **_describe(self.policy, self.partner, self.purpose, self.fields, self.at)}
        entry = self.log._append("started", body)  # ExportLogError: nothing is released
        self._entry = entry
        self._state = "open"
        return self

    def rows(self, students: Iterable[Any]) -> Iterator[dict[str, Any]]:
        """``policy.filter``'s rows, but only for students with a usable key (the others are left out
        and counted); each row's student key is recorded as sent when the row is handed out."""
        if self._state != "open":
            raise ExportLogError("export.rows() is used inside `with policy.export(...) as export:`: "
                                 "the export's record must be written before any row is released")
        if isinstance(students, (str, bytes, Mapping)) or not isinstance(students, Iterable):
            raise TypeError(f"students must be an iterable of student records, not {type(students).__name__}")
        gen = self._rows(students)
        self._active.append(gen)
        return gen

    def _rows(self, students: Iterable[Any]) -> Iterator[dict[str, Any]]:
        # Each row is matched to the student filter drew last (filter draws one student, yields its
        # row if any, then draws the next: tests/test_exports.py pins that). Every student goes
        # through filter; the key is read only for the students filter releases, and a row whose
        # student has no usable key is withheld (counted in left_out by reason).
        name, types = self.key_field, self._key_types
        accept_str, accept_int = str in types, int in types
        left, sent, unseen, first = self._left_out, self._keys.append, self._unseen, self._first_sent
        report = None
        if self._sole is None:
            from .. import FilterReport

            report = FilterReport()
            self._reports.append(report)
        policy, partner, purpose, fields, at = self.policy, self.partner, self.purpose, self.fields, self.at
        if type(students) is list or type(students) is tuple:
            # a batch in memory: the student of a row is found by the position of filter's iterator
            batch = tuple(students)  # (a copy: the caller may change the list while rows are drawn)
            n = len(batch)
            it = iter(batch)
            remaining = it.__length_hint__
            rows = policy.filter(partner, purpose, fields, it, at=at, report=report)
            try:
                for row in rows:
                    s = batch[~remaining()]  # (n - remaining - 1: the student just drawn)
                    k = s.get(name) if type(s) is dict else _read_key(s, name)
                    t = type(k)
                    if not ((accept_str and k and not k.isspace()) if t is str else (t is int and accept_int)):
                        k = _usable_key(k, s, name, types, left)
                        if k is None:
                            continue
                    if unseen and not unseen.isdisjoint(row) and not first(s, row):
                        continue
                    sent(k)
                    yield row
            finally:
                self._drawn += n - remaining()
            return
        current: list[Any] = [None, 0]

        def drawn() -> Iterator[Any]:
            for s in students:
                current[0] = s
                current[1] += 1
                yield s

        try:
            for row in policy.filter(partner, purpose, fields, drawn(), at=at, report=report):
                s = current[0]
                k = s.get(name) if type(s) is dict else _read_key(s, name)
                t = type(k)
                if not ((accept_str and k and not k.isspace()) if t is str else (t is int and accept_int)):
                    k = _usable_key(k, s, name, types, left)
                    if k is None:
                        continue
                if unseen and not unseen.isdisjoint(row) and not first(s, row):
                    continue
                sent(k)
                yield row
        finally:
            self._drawn += current[1]

    def _first_sent(self, student: Any, row: dict[str, Any]) -> bool:
        """Note the fields of ``row`` sent for the first time in this export, and (one permit per
        field) what granted them, from the student's decision: False (withhold the row) in the
        one case where that decision does not allow them, a record changed while it was read."""
        new = self._unseen.intersection(row)
        if self._sole is not None:
            decision = self.policy.decide(self.partner, self.purpose, self.fields, student, at=self.at)
            grants = {}
            for ref in new:
                fd = decision.fields[ref]
                if not fd.allowed or fd.rule != self._sole[ref]:
                    self._left_out["changed_while_read"] += 1
                    return False
                grants[ref] = (fd.rule, fd.basis, fd.law, fd.agreement, fd.transform)
            for ref, grant in grants.items():
                self._grants.setdefault(ref, set()).add(grant)
        self._unseen -= new
        return True

    # -- a bulk feed from SQL: ``plan.run(connection, ..., export=export)`` ------------------

    def _plan_key(self, plan: Any) -> str:
        """The key field's reference for ``plan.run(..., export=self)``, after checking that the
        export is open and that the plan is this export's request (ValueError naming what differs)."""
        if self._state != "open":
            raise ValueError(f"the export is {self._state}, not open: plan.run(..., export=export) is used inside "
                             "`with policy.export(...) as export:` (the record is written before any row is released)")
        from ..runtime import local_day

        day = local_day(self.at, self.policy.zone)
        fields = tuple(dict.fromkeys(self.fields))
        differs = [f"{what}: plan {mine!r}, export {theirs!r}" for what, mine, theirs in (
            ("partner", plan.partner, self.partner), ("purpose", plan.purpose, self.purpose),
            ("fields", list(plan.fields), list(fields)), ("decision day", plan.day, day)) if mine != theirs]
        if plan.policy is not self.policy:
            differs.insert(0, "policy: the plan was made by another Policy object")
        if differs:
            raise ValueError("the plan is not this export's request (" + "; ".join(differs) + ")")
        if self._sole is None:
            permits = permits_by_field(self.policy, self.partner, self.purpose, self.fields)
            field = next(f for f, names in permits.items() if len(names) > 1)
            raise ValueError(f"several permits grant {field} ({', '.join(permits[field])}): the grant may differ "
                             "per student, which the query does not return: use export.rows")
        for fp in plan.field_plans:
            rules = {b.rule for b in fp.branches} if not fp.never else set()
            if not rules <= {self._sole.get(fp.ref)}:  # the planner and permits_by_field disagree
                raise ValueError(f"the plan grants {fp.ref} by {sorted(rules)}, not by {self._sole.get(fp.ref)}")
        return f"{self.policy.model.catalogue.subject}.{self.key_field}"

    def _plan_rows(self, plan: Any, keys: Sequence[Any], rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """Record the rows of a plan's query (one key per fetched row, ``rows`` aligned with them, an
        empty dict for a row with nothing to send) as ``export.rows`` records filter's, and return
        the rows to send: those with something to send and a usable key."""
        if self._state != "open":
            raise ExportLogError("the export was closed while its query ran: nothing is released")
        name, types = self.key_field, self._key_types
        accept_str, accept_int = str in types, int in types
        out: list[dict[str, Any]] = []
        sent: list[Any] = []
        left: Counter[str] = Counter()
        for k, row in zip(keys, rows, strict=True):
            if not row:
                continue  # nothing to send (a pseudonym that came out None): not released
            t = type(k)
            if not ((accept_str and k and not k.isspace()) if t is str else (t is int and accept_int)):
                k = _usable_key(k, {name: k}, name, types, left)
                if k is None:
                    continue
            sent.append(k)
            out.append(row)
        new = {f for row in out for f in row} & self._unseen
        grants = {ref: self._sole_grant(ref, plan.day) for ref in new}  # ValueError: nothing recorded or sent
        for ref, grant in grants.items():
            self._grants.setdefault(ref, set()).add(grant)
        self._unseen -= new
        self._left_out.update(left)
        self._keys.extend(sent)
        self._drawn += len(keys)
        self._unknown_drawn = True  # the students the query did not return were never drawn
        return out

    def _sole_grant(self, ref: str, day: datetime.date) -> tuple[Any, ...]:
        """What grants ``ref`` in this export, from its one permit's RuleInfo and the agreement in
        force on ``day`` (as the engine fills FieldDecision's rule, basis, law, agreement, transform)."""
        from ..runtime import agreement_check, basis_text

        assert self._sole is not None
        rule = next(r for r in self.policy.model.rules if r.name == self._sole[ref])
        grant = rule.grant_for(ref)
        failure, covering = agreement_check(self.policy.model, self.partner, self.purpose, ref, day)
        if grant is None or failure is not None:  # the query released what the engine would not: fail closed
            raise ValueError(f"the query released {ref}, which {rule.name} does not grant on {day}: "
                             "nothing was sent; use export.rows")
        return (rule.name, basis_text(rule), rule.law, covering[0].reference if covering else None, grant.transform)

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if self._state != "open":
            return
        self._state = "closing"
        for gen in self._active:  # no row can be drawn once the record is complete
            gen.close()  # type: ignore[attr-defined]
        sent_fields = {f for f in self.fields if f not in self._unseen}
        grants: dict[str, set[tuple[Any, ...]]] = {f: set(g) for f, g in self._grants.items()}
        why_not: Counter[str] = Counter()
        for report in self._reports:
            for f, items in report.grants.items():
                if f in sent_fields:  # a field allowed but never in a row (no usable value) was not sent
                    grants.setdefault(f, set()).update(items)
            why_not.update(report.left_out_reasons)
        # The keys as the rows were handed out: no pass to drop a student sent twice in one export
        # (it is listed twice, as it was sent twice): such a pass reads every key again once it has
        # left the CPU's cache, 8 ms for 35,000 keys against 60-110 ms for filter's 100,000 students.
        keys = self._keys
        text = dump_keys(keys)
        left_out = sum(self._left_out.values())
        body = {
            "students": len(keys), "left_out": left_out, "left_out_reasons": dict(sorted(self._left_out.items())),
            "not_released": None if self._unknown_drawn else self._drawn - len(keys) - left_out,
            "not_released_reasons": dict(sorted(why_not.items())),
            "grants": {f: [Grant(*g).to_dict() for g in sorted(grants[f], key=_sort_key)]
                       for f in self.fields if f in grants},
            "error": None if exc_type is None else _qualname(exc_type),
        }
        kind = "completed" if exc_type is None else "aborted"
        assert self._entry is not None
        try:
            end = self.log._append(kind, body, keys=text, export=self._entry.id)
        finally:
            self._state = "closed"
        self._end = (end, tuple(keys))
        self._record = None


def _describe(policy: Policy, partner: str, purpose: str, fields: Sequence[str], at: Any) -> dict[str, Any]:
    """What the policy says about the request, kept in the record so that the log reads on its own
    (an access report years later, after the policy changed): titles and each field's sensitivity."""
    model = policy.model
    p, u = model.partners.get(partner), model.purposes.get(purpose)
    described: dict[str, Any] = {}
    for ref in fields:
        info = model.catalogue.fields.get(ref)
        if info is not None:
            dataset = model.catalogue.datasets.get(info.dataset)
            described[ref] = {"sensitivity": info.sensitivity, "dataset_title": dataset.title if dataset else None}
    day = at.astimezone(policy.zone).date() if isinstance(at, datetime.datetime) and at.tzinfo else \
        at.date() if isinstance(at, datetime.datetime) else at
    in_force = [a.reference for a in (p.agreements if p else ()) if a.window.contains_date(day)]
    return {"partner_title": p.title if p else None, "purpose_title": u.title if u else None,
            "field_info": described, "agreements_in_force": in_force}


def _sort_key(g: tuple[Any, ...]) -> tuple[str, ...]:
    return tuple("" if x is None else str(x) for x in g)


def _qualname(exc_type: type) -> str:
    module = getattr(exc_type, "__module__", "")
    name = getattr(exc_type, "__qualname__", getattr(exc_type, "__name__", "Exception"))
    return name if module in ("builtins", "") else f"{module}.{name}"


def _read_key(student: Any, name: str) -> Any:
    """The key of a record that is not a plain dict; None when it cannot be read (never raises)."""
    try:
        if isinstance(student, Mapping):
            return student.get(name)
    except Exception:
        return None
    return None


def _moment_text(at: Any) -> str:
    return at.isoformat() if isinstance(at, (datetime.date, datetime.datetime)) else str(at)
