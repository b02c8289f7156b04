"""The log's building blocks: entries (what a store keeps), sortable ids, the hash chain, export records.

An export is written as two append-only *entries*: ``started`` (the request, before the first row
leaves) and then ``completed`` or ``aborted`` (what went out: counts, the keys of the students sent,
per field the rule, basis, law, agreement and transform that granted it). Entries are never updated,
so every entry can carry the hash of the one before it: the chain that ``verify`` walks. A ``pruned``
entry records a pruning. An :class:`ExportRecord` is the two entries of one export read together.

Nothing here holds a field value: a body is built from the request, the decision's rule names and
counts, and the keys of the students sent.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import threading
import time
from collections.abc import Mapping
from typing import Any

import attrs

__all__ = ["KINDS", "Entry", "ExportLogError", "ExportRecord", "Grant", "chain_hash", "dump_keys", "dumps", "new_id",
           "utc_now"]

#: entry kinds: an export's start, its two possible ends, and a pruning of the log
KINDS = ("started", "completed", "aborted", "pruned")
#: the version of the hashed layout; part of every hash, so a later layout cannot be confused with this one
CHAIN_VERSION = "avgpolicy-exports-1"


class ExportLogError(Exception):
    """The export log cannot be written or read: nothing was released because of it (fail closed)."""


# ---------------------------------------------------------------------------
# ids: 26 characters, sortable by time (ms), unique across threads and processes (80 random bits)

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_id_lock = threading.Lock()
_last: list[int] = [0, 0]  # the last (ms, random) handed out in this process


def new_id() -> str:
    """A new sortable unique id (a ULID: 48 bits of milliseconds, then 80 bits that are random per
    millisecond and counted up within one, so ids made in one process sort in the order they were made)."""
    with _id_lock:
        ms = time.time_ns() // 1_000_000
        if ms <= _last[0]:
            ms, rand = _last[0], _last[1] + 1
            if rand >> 80:  # 2**80 ids in one millisecond: move on to the next
                ms, rand = ms + 1, int.from_bytes(os.urandom(10), "big") >> 1
        else:
            rand = int.from_bytes(os.urandom(10), "big") >> 1  # top bit clear: room to count up
        _last[0], _last[1] = ms, rand
    value = (ms << 80) | rand
    return "".join(_CROCKFORD[(value >> shift) & 31] for shift in range(125, -1, -5))


def utc_now() -> str:
    """The current time as ISO 8601 UTC with microseconds, e.g. ``2026-03-02T09:00:00.000001Z``."""
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="microseconds")[:-6] + "Z"  # (not +00:00)


def parse_time(text: str) -> datetime.datetime:
    """An entry time back as an aware datetime (UTC); ValueError for any other text."""
    if len(text) == 27 and text[10] == "T" and text[-1] == "Z" and text[19] == ".":  # what utc_now writes
        return datetime.datetime.fromisoformat(text[:-1]).replace(tzinfo=datetime.UTC)
    return datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.UTC)


def dumps(data: Any) -> str:
    """Canonical JSON: sorted keys, no spaces, UTF-8 kept (what is hashed is exactly what is stored)."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def dump_keys(keys: list[Any]) -> str:
    """``dumps(keys)`` for a list of students' keys, the same text, joined without the JSON encoder
    when every key is a str that needs no escaping (or every key an int): about twice as fast."""
    if not keys:
        return "[]"
    if type(keys[0]) is str:
        try:
            text = '","'.join(keys)  # TypeError: not all str
        except TypeError:
            text = "\\"
        # JSON escapes only ", \\ and control characters (UTF-8 kept); anything unprintable is left to it
        if text.count('"') == 2 * (len(keys) - 1) and "\\" not in text and text.isprintable():
            return f'["{text}"]'
    elif set(map(type, keys)) == {int}:
        return "[" + ",".join(map(str, keys)) + "]"
    return dumps(keys)


# ---------------------------------------------------------------------------
# entries and the chain

@attrs.frozen
class Entry:
    """One stored line of the log. ``seq`` is its position (given by the store); everything else is hashed."""

    id: str
    kind: str
    export: str  # the export this entry belongs to (its own id for ``started`` and ``pruned``)
    time: str
    prev_id: str  # "" for the first entry of a log
    prev_hash: str
    body: str  # canonical JSON object
    keys: str  # canonical JSON array of the keys of the students sent ("" when none were recorded)
    hash: str
    seq: int | None = attrs.field(default=None, eq=False)

    def data(self) -> dict[str, Any]:
        return json.loads(self.body)  # type: ignore[no-any-return]

    def key_list(self) -> list[Any]:
        return json.loads(self.keys) if self.keys else []


def chain_hash(id: str, kind: str, export: str, time: str, prev_id: str, prev_hash: str,
               body: str, keys: str) -> str:
    """The hash of an entry: SHA-256 over every stored column but its position and the hash itself."""
    h = hashlib.sha256()
    for part in (CHAIN_VERSION, id, kind, export, time, prev_id, prev_hash, body):
        h.update(part.encode("utf-8"))
        h.update(b"\x1f")
    h.update(keys.encode("utf-8"))
    return h.hexdigest()


def make_entry(head: Entry | None, *, kind: str, body: Mapping[str, Any], keys: str = "",
               export: str | None = None, entry_id: str | None = None) -> Entry:
    """The entry that follows ``head`` (None: the first of the log)."""
    eid = entry_id or new_id()
    prev_id, prev_hash = (head.id, head.hash) if head is not None else ("", "")
    when = utc_now()
    text = dumps(body)
    ref = export or eid
    return Entry(eid, kind, ref, when, prev_id, prev_hash, text, keys,
                 chain_hash(eid, kind, ref, when, prev_id, prev_hash, text, keys))


def entry_is_intact(entry: Entry) -> bool:
    return entry.hash == chain_hash(entry.id, entry.kind, entry.export, entry.time, entry.prev_id,
                                    entry.prev_hash, entry.body, entry.keys)


# ---------------------------------------------------------------------------
# export records

@attrs.frozen
class Grant:
    """What released one field to the partner in an export: the permit, its basis and law, the
    agreement in force that covers the field, and the transform applied."""

    rule: str | None
    basis: str | None
    law: str | None = None
    agreement: str | None = None
    transform: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"rule": self.rule, "basis": self.basis, "law": self.law, "agreement": self.agreement,
                "transform": self.transform}


def _grants(data: Any) -> Mapping[str, tuple[Grant, ...]]:
    out: dict[str, tuple[Grant, ...]] = {}
    for field, items in (data or {}).items():
        out[field] = tuple(Grant(**item) for item in items)
    return out


@attrs.frozen
class ExportRecord:
    """One export as the log holds it.

    ``status`` is ``"started"`` (unfinished: the process never completed it, e.g. it was killed),
    ``"completed"`` or ``"aborted"`` (the ``with`` block raised; ``error`` names the exception type).
    ``students`` is the number of students sent and ``keys`` their keys (the catalogue's key field),
    one per row in the order the rows were handed out (a student sent twice in one export is listed twice);
    ``left_out`` counts students not released because they had no usable key, by reason in
    ``left_out_reasons``. ``grants`` maps each field sent to what released it. Never a field value.
    """

    id: str
    status: str
    started: datetime.datetime
    ended: datetime.datetime | None
    actor: str
    channel: str
    partner: str
    purpose: str
    fields: tuple[str, ...]
    policy_version: str
    at: str  # the decision moment of the whole export, ISO
    key_field: str
    students: int = 0
    keys: tuple[Any, ...] = ()
    left_out: int = 0
    left_out_reasons: Mapping[str, int] = attrs.field(factory=dict)
    not_released: int | None = None  # students with no permitted field (when the engine reports it)
    not_released_reasons: Mapping[str, int] = attrs.field(factory=dict)  # their reason codes
    grants: Mapping[str, tuple[Grant, ...]] = attrs.field(factory=dict)
    error: str | None = None
    partner_title: str | None = None
    purpose_title: str | None = None
    #: per requested field: its sensitivity and dataset title when the export was made
    field_info: Mapping[str, Mapping[str, Any]] = attrs.field(factory=dict)
    #: the partner's processing agreements valid at the decision moment (whether or not they cover)
    agreements_in_force: tuple[str, ...] = ()

    @property
    def finished(self) -> bool:
        return self.status != "started"

    @property
    def fields_sent(self) -> tuple[str, ...]:
        """The requested fields that went out to at least one student, in request order."""
        return tuple(f for f in self.fields if f in self.grants)

    @classmethod
    def from_entries(cls, start: Entry, end: Entry | None, *, with_keys: bool = True,
                     keys: tuple[Any, ...] | None = None) -> ExportRecord:
        """The record of an export's entries; ``keys``: the end entry's keys when the caller has
        them already (not read back from its JSON)."""
        s = start.data()
        e = end.data() if end is not None else {}
        return cls(
            id=start.id, status=end.kind if end is not None else "started",
            started=parse_time(start.time), ended=parse_time(end.time) if end is not None else None,
            actor=s["actor"], channel=s["channel"], partner=s["partner"], purpose=s["purpose"],
            fields=tuple(s["fields"]), policy_version=s["policy_version"], at=s["at"], key_field=s["key_field"],
            students=e.get("students", 0),
            keys=(keys if keys is not None else tuple(end.key_list())) if end is not None and with_keys else (),
            left_out=e.get("left_out", 0), left_out_reasons=dict(e.get("left_out_reasons", {})),
            not_released=e.get("not_released"), not_released_reasons=dict(e.get("not_released_reasons", {})),
            grants=_grants(e.get("grants")), error=e.get("error"),
            partner_title=s.get("partner_title"), purpose_title=s.get("purpose_title"),
            field_info=s.get("field_info") or {}, agreements_in_force=tuple(s.get("agreements_in_force") or ()))

    def to_dict(self, *, keys: bool = True) -> dict[str, Any]:
        out = {
            "id": self.id, "status": self.status, "started": _iso(self.started), "ended": _iso(self.ended),
            "actor": self.actor, "channel": self.channel, "partner": self.partner, "purpose": self.purpose,
            "fields": list(self.fields), "policy_version": self.policy_version, "at": self.at,
            "key_field": self.key_field, "students": self.students, "left_out": self.left_out,
            "left_out_reasons": dict(self.left_out_reasons), "not_released": self.not_released,
            "not_released_reasons": dict(self.not_released_reasons),
            "grants": {f: [g.to_dict() for g in gs] for f, gs in self.grants.items()}, "error": self.error,
            "partner_title": self.partner_title, "purpose_title": self.purpose_title,
            "field_info": {f: dict(v) for f, v in self.field_info.items()},
            "agreements_in_force": list(self.agreements_in_force),
        }
        if keys:
            out["keys"] = list(self.keys)
        return out


def _iso(moment: datetime.datetime | None) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment is not None else None
