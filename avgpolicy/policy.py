"""Policy: an immutable, loaded policy set; decide/compile/filter live here."""

from __future__ import annotations

import datetime
import functools
import operator
from collections.abc import Iterable, Iterator, Mapping, Sequence
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo

from . import interpreter
from . import runtime as rt
from .cache import CacheInfo, CompileCache
from .compiler import compile_request
from .decision import Decision, FilterReport
from .engine import EngineContext
from .errors import Diagnostic, UnknownNameError
from .model import PolicyModel
from .pseudonym import Pseudonymizer, seal_key, year_of

ENGINES = ("compiled", "interpreted")
_PLAN_LIMIT = 4096  # projection plans kept per filter call
_YEAR = operator.attrgetter("year")  # ``as year`` on a value known to be exactly a date
Moment = datetime.date | datetime.datetime | None


def _check_request(partner: Any, purpose: Any, fields: Any) -> tuple[str, ...]:
    if type(partner) is not str:
        raise TypeError(f"partner must be a str, not {type(partner).__name__}")
    if type(purpose) is not str:
        raise TypeError(f"purpose must be a str, not {type(purpose).__name__}")
    if isinstance(fields, (str, bytes)) or not isinstance(fields, (list, tuple)):
        raise TypeError(f"fields must be a list of field names such as ['leerling.roepnaam'], "
                        f"not {type(fields).__name__}")
    for f in fields:
        if type(f) is not str:
            raise TypeError(f"every field must be a str such as 'leerling.roepnaam', not {type(f).__name__}")
    if not fields:
        raise ValueError("fields must name at least one field")
    return tuple(fields)


def _undecidable_record(exc: Exception, decide: Any, at: Any) -> Decision:
    """The decision for a record whose own code raised while it was read (a key whose ``__eq__``
    raises, say): it is decided as a record that is not a mapping, so every field is denied with
    ``missing_attribute`` (docs/api.md, "Records that raise"). Any other exception propagates."""
    if not rt.raised_by_record(exc):
        raise exc
    return decide(None, at)  # type: ignore[no-any-return]


def _resuming(rows: Iterator[dict[str, Any]], students: Iterator[Any],
              rows_of: Any, left_out: Any) -> Iterator[dict[str, Any]]:
    """``filter``'s rows, going on after a record whose own code raised (a key whose ``__eq__``
    raises): that record, already taken from ``students``, is left out like one that is not a
    mapping, and the rest of the batch is filtered by a fresh loop. Other exceptions propagate."""
    while True:
        try:
            yield from rows
            return
        except Exception as exc:
            if not rt.raised_by_record(exc):
                raise
            left_out()
            rows = rows_of(students)


def _check_moment(at: Any) -> None:
    if at is not None and not isinstance(at, datetime.date):
        raise TypeError(f"at must be a datetime.date, a datetime.datetime or None, not {type(at).__name__}")


class Policy:
    """A validated policy set. Immutable and safe to share between threads."""

    def __init__(self, model: PolicyModel, *, version: str, zone: ZoneInfo,
                 warnings: tuple[Diagnostic, ...] = (), sources: Mapping[str, str] | None = None,
                 pseudonym_key: bytes | Pseudonymizer | None = None, cache_size: int = 1024) -> None:
        # only the keyed function that derives pseudonyms is kept, never the key (see pseudonym.py)
        pseudonymizer = seal_key(pseudonym_key)
        del pseudonym_key
        self.model = model
        rt.protect_values(model)  # reasons never quote a condition on a special/criminal/national_id field
        self.version = version
        self.zone = zone
        self.warnings = warnings
        self.sources: Mapping[str, str] = MappingProxyType(dict(sources or {}))
        self._pseudonymizer = pseudonymizer
        # what the engines get of this policy (they never see the Policy itself)
        self._engine = EngineContext(model, zone, version, None if pseudonymizer is None else pseudonymizer.pseudonym)
        self._cache_size = cache_size
        self._cache = CompileCache(cache_size)
        self._last_request: tuple[Any, ...] = (None, None, None, None, None)

    @property
    def timezone(self) -> str:
        return self.zone.key

    @property
    def has_pseudonym_key(self) -> bool:
        return self._pseudonymizer is not None

    def __repr__(self) -> str:
        m = self.model
        return (f"<Policy {self.version} rules={len(m.rules)} partners={len(m.partners)} "
                f"purposes={len(m.purposes)} tz={self.timezone}>")

    # -- deciding --------------------------------------------------------------

    def _compiled(self, partner: str, purpose: str, fields: tuple[str, ...]) -> Any:
        return self._cache.get((partner, purpose, fields), compile_request, self._engine, partner, purpose, fields)

    def decide(self, partner: str, purpose: str, fields: Sequence[str], student: Any, *,
               at: Moment = None, engine: str = "compiled") -> Decision:
        """May ``partner`` receive ``fields`` of ``student`` for ``purpose`` at ``at``? Field by field.

        Never raises because of the student's data; raises TypeError/ValueError for a wrong call.
        ``engine="interpreted"`` uses the reference interpreter instead of the compiled function.
        """
        last = self._last_request  # the request decided last time, already checked and compiled
        if engine == "compiled":
            if type(fields) is list and fields == last[2] and partner == last[0] and purpose == last[1]:
                cache = self._cache
                cache.used[last[4]] = next(cache.hit_counter)
                try:
                    return last[3](student, at)  # type: ignore[no-any-return]
                except Exception as exc:  # (free until raised) a record whose own code raised
                    return _undecidable_record(exc, last[3], at)
            if type(partner) is str and type(purpose) is str and (type(fields) is list or type(fields) is tuple):
                request = (partner, purpose, tuple(fields))
                cache = self._cache
                check = cache.front.get(request)  # lock-free: a request decided before is valid
                if check is not None:
                    cache.used[request] = next(cache.hit_counter)  # counts the hit, marks it used
                    if type(fields) is list:
                        self._last_request = (partner, purpose, list(fields), check, request)
                    try:
                        return check(student, at)  # type: ignore[no-any-return]
                    except Exception as exc:
                        return _undecidable_record(exc, check, at)
        key = _check_request(partner, purpose, fields)
        if engine == "compiled":
            model = self.model
            if partner in model.partners and purpose in model.purposes:
                check = self._compiled(partner, purpose, key)
                try:
                    return check(student, at)  # type: ignore[no-any-return]
                except Exception as exc:
                    return _undecidable_record(exc, check, at)
            engine = "interpreted"  # an unknown name is denied by the interpreter: nothing compiled or cached
        if engine == "interpreted":
            _check_moment(at)
            try:
                return interpreter.decide(self._engine, partner, purpose, key, student, at)
            except Exception as exc:
                return _undecidable_record(exc, functools.partial(interpreter.decide, self._engine, partner, purpose,
                                                                  key), at)
        raise ValueError(f"engine must be one of {ENGINES}, not {engine!r}")

    def compile(self, partner: str, purpose: str, fields: Sequence[str]) -> Any:
        """A decision function ``check(student, at=None) -> Decision`` for this request (cached).

        It carries ``.source`` (the generated Python) and ``.code_tree`` (its ``ast.Module``).
        """
        key = _check_request(partner, purpose, fields)
        self.check_names(partner, purpose)
        return self._compiled(partner, purpose, key)

    def check_names(self, partner: str, purpose: str) -> None:
        """Raise ``avgpolicy.UnknownNameError`` (a ValueError, with "did you mean") when the policy
        set does not declare ``partner`` or ``purpose``; what compile, filter, plan and export call
        first, so that a misspelt name is an error rather than an empty feed."""
        model = self.model
        if partner not in model.partners:
            raise UnknownNameError("partner", partner, rt.suggest(partner, model.partners), model.partners)
        if purpose not in model.purposes:
            raise UnknownNameError("purpose", purpose, rt.suggest(purpose, model.purposes), model.purposes)

    def cache_info(self) -> CacheInfo:
        """Hits, misses, maxsize and current size of the compile cache."""
        return self._cache.info()

    def plan(self, partner: str, purpose: str, fields: Sequence[str], *, at: Moment = None) -> Any:
        """A query plan (``avgpolicy.sql.Plan``) for this request: ``plan.to_sql(...)`` gives SQL and
        parameters, ``plan.run(connection, table=...)`` gives exactly ``filter``'s rows. ``at=None`` is
        now. Raises ``avgpolicy.NotTranslatable`` naming the rule whose condition has no exact SQL form."""
        from .sql.plan import make_plan  # the sql extra (sqlglot) is loaded only here
        return make_plan(self, partner, purpose, fields, at)

    # -- exporting (the export log: avgpolicy/exports, imported on first use) ----

    #: the ExportLog that ``export`` records in when no ``log=`` is given (``load(..., export_log=)``)
    export_log: Any = None

    def export(self, partner: str, purpose: str, fields: Sequence[str], *, actor: str, channel: str,
               at: Moment = None, log: Any = None) -> Any:
        """An export: ``filter`` that records who received what, about whom, when (a context manager).

        ``with policy.export("snappet", "leermiddelen", fields, actor="j.devries", channel="nightly-feed")
        as export: for row in export.rows(students): send(row)``. Entering writes the record (status
        ``started``) durably before any row is released, or raises ``avgpolicy.ExportLogError``;
        leaving completes it (``completed``, or ``aborted`` when the block raised). ``log`` overrides
        the policy's ``export_log``. See docs/exports.md.
        """
        from .exports.log import Export, ExportLog

        log = self.export_log if log is None else log
        if log is None:
            raise ValueError("no export log: load the policy with export_log=avgpolicy.ExportLog('exports.sqlite') "
                             "or pass log=... to export()")
        if not isinstance(log, ExportLog):
            log = ExportLog(log)
        return Export(self, log, partner, purpose, fields, at=at, actor=actor, channel=channel)

    # -- filtering -------------------------------------------------------------

    def _needs_key(self, partner: str, purpose: str, fields: tuple[str, ...]) -> list[str]:
        return [f for f in fields for r in self.model.rules
                if r.effect == "permit" and rt.covers(r, partner, purpose, f)
                and (g := r.grant_for(f)) is not None and g.transform == "pseudonym"]

    def filter(self, partner: str, purpose: str, fields: Sequence[str], students: Iterable[Any], *,
               at: Moment = None, report: FilterReport | None = None) -> Iterator[dict[str, Any]]:
        """For each student with at least one permitted field: a dict of the permitted fields.

        Keys are the fields as requested; transforms are applied; a permitted field whose value
        is missing or ill-typed is left out. Subject fields are read by bare name (``roepnaam``),
        other datasets' fields by their full reference (``absentie.reden``). ``at=None`` is the
        moment of this call, for the whole batch. ``report``: a FilterReport filled as the rows
        are consumed (students sent, students left out and why, what granted each field).
        """
        if report is not None and type(report) is not FilterReport:
            raise TypeError(f"report must be an avgpolicy.FilterReport, not {type(report).__name__}")
        key = _check_request(partner, purpose, fields)
        self.check_names(partner, purpose)
        _check_moment(at)
        if isinstance(students, (str, bytes, Mapping)) or not isinstance(students, Iterable):
            raise TypeError(f"students must be an iterable of student records, not {type(students).__name__}")
        check = self._compiled(partner, purpose, key)
        if self._pseudonymizer is None:
            needing = getattr(check, "needs_key", None)
            if needing is None:  # worked out once per request: it walks the rules
                needing = check.needs_key = self._needs_key(partner, purpose, key)
            if needing:
                raise ValueError(f"{needing[0]} is permitted `as pseudonym` to {partner}: load the policy with "
                                 "pseudonym_key=... to filter it")
        moment = datetime.datetime.now(self.zone) if at is None else at

        def rows_of(batch: Iterator[Any]) -> Iterator[dict[str, Any]]:
            rows = check.rows(batch, moment, report)  # decides and projects in one generated loop
            return self._rows(check, partner, key, batch, moment, report) if rows is None else rows  # type: ignore

        def left_out() -> None:  # counted as a record that is not a mapping
            if report is not None:
                report.add_left_out(check(None, moment))

        students = iter(students)  # one iterator: after a record whose own code raised, the rest goes on
        return _resuming(rows_of(students), students, rows_of, left_out)

    def _pseudonym_function(self, partner: str, ref: str) -> Any:
        """``value -> pseudonym`` for ``ref`` sent to ``partner`` (None for an ill-typed value);
        None when the policy has no pseudonym key."""
        return self._engine.pseudonym_function(partner, ref)

    def _plan(self, decision: Decision, partner: str) -> tuple[tuple[str, Any, Any, Any, Any], ...]:
        """The projection plan of a decision: ``(ref, record key, exact type or None, transform or None,
        lossless conversion or None)`` for each permitted field, in request order (empty when nothing is
        permitted). A type of None means a set of text (checked by ``runtime.is_str_set``); the
        conversion (``runtime.converter``) is tried only on a value that is not of the exact type."""
        catalogue = self.model.catalogue
        plan = []
        for ref, fd in decision.fields.items():
            if not fd.allowed:
                continue
            info = catalogue.fields[ref]
            key = catalogue.record_key(ref)
            exact = None if info.type == "set" else rt.exact_type(info.type)
            transform: Any = None
            if fd.transform == "year":
                transform = year_of if exact is not datetime.date else _YEAR  # (the same, faster, on a date)
            elif fd.transform == "pseudonym":
                transform = self._pseudonym_function(partner, ref)
                assert transform is not None  # (filter refuses a pseudonym without a key before)
            plan.append((ref, key, exact, transform, rt.converter(info.type, self.zone)))
        return tuple(plan)

    def _rows(self, check: Any, partner: str, fields: tuple[str, ...], students: Iterable[Any],
              moment: Moment, report: FilterReport | None = None) -> Iterator[dict[str, Any]]:
        # Compiled decisions are shared immutable objects, one per outcome: the projection plan
        # is worked out once per decision (keyed by id; the entry holds the decision itself, so
        # its id cannot be reused while the plan is kept).
        plans: dict[int, tuple[Decision, tuple[tuple[str, Any, Any, Any, Any], ...], bool]] = {}
        as_record, is_str_set = rt.as_record, rt.is_str_set
        for student in students:
            decision = check(student, moment)
            entry = plans.get(id(decision))
            if entry is None or entry[0] is not decision:
                plan = self._plan(decision, partner)
                # simple: exact types only, and no transform can give None on a value of its exact type
                simple = all(exact is not None and transform in (None, _YEAR) for _, _, exact, transform, _ in plan)
                entry = (decision, plan, simple)
                if len(plans) < _PLAN_LIMIT:
                    plans[id(decision)] = entry
            plan = entry[1]
            if not plan:
                if report is not None:
                    report.add_left_out(decision)
                continue
            record = student if type(student) is dict else as_record(student)
            if record is None:
                if report is not None:
                    report.add_left_out(decision)
                continue
            get = record.get
            row: dict[str, Any]
            if entry[2]:
                row = {ref: value if transform is None else transform(value)
                       for ref, key, exact, transform, convert in plan
                       if type(value := get(key)) is exact or (convert and (value := convert(value)) is not None)}
            else:
                row = {}
                for ref, key, exact, transform, convert in plan:
                    value = get(key)
                    if exact is None:
                        if not is_str_set(value):
                            continue
                    elif type(value) is not exact and (convert is None or (value := convert(value)) is None):
                        continue
                    if transform is not None:
                        value = transform(value)
                        if value is None:
                            continue
                    row[ref] = value
            if report is not None:
                if row:
                    report.add_sent(decision)
                else:
                    report.add_left_out(decision)
            if row:
                yield row
