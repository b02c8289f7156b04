"""Reference interpreter: a plain tree-walking evaluator of spec section 4, the oracle.

Deliberately simple: every field is decided on its own, every rule is looked at,
every condition is walked node by node with three-valued (Kleene) logic, where
None is *unknown*. The compiled engine must agree with it on every field's
outcome and on every reason, in order (see ``runtime`` for the canonical order).
"""

from __future__ import annotations

import datetime
import operator
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from . import nodes as n
from . import runtime as rt
from .decision import Decision
from .model import BIRTHDATE_FIELD, FieldInfo, RuleInfo

if TYPE_CHECKING:
    from .engine import EngineContext

_OPS = {"==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le, ">": operator.gt,
        ">=": operator.ge}


def _operand(op: n.Literal | n.Ref, record: Mapping[Any, Any], subject: Mapping[str, FieldInfo],
             day: datetime.date, zone: ZoneInfo | None = None) -> tuple[bool, Any]:
    """(known, value) of an operand for this student: a value that is not exactly of the field's
    type but converts without loss (``runtime.field_value``) is known as the converted value."""
    if isinstance(op, n.Literal):
        return True, op.value
    if rt.is_age(op, subject):
        age = rt.age_of(record.get(BIRTHDATE_FIELD), day, zone)
        return age is not None, age
    fi = subject.get(op.name)
    if fi is None:
        return False, None
    return rt.field_value(record.get(op.name), fi.type, zone)


def _atom(atom: n.Expr, record: Mapping[Any, Any], subject: Mapping[str, FieldInfo],
          day: datetime.date, zone: ZoneInfo | None = None) -> bool | None:
    if not rt.atom_is_typed(atom, subject):
        return None
    if isinstance(atom, n.Compare):
        lk, lv = _operand(atom.left, record, subject, day, zone)
        rk, rv = _operand(atom.right, record, subject, day, zone)
        if not (lk and rk):
            return None
        return bool(_OPS[atom.op](lv, rv))
    if isinstance(atom, n.InList):
        k, v = _operand(atom.operand, record, subject, day, zone)
        return None if not k else (v in rt.list_values(atom, subject)) != atom.negated
    if isinstance(atom, n.InRange):
        k, v = _operand(atom.operand, record, subject, day, zone)
        return None if not k else (atom.low.value <= v <= atom.high.value) != atom.negated
    if isinstance(atom, n.InSet):
        ek, ev = _operand(atom.element, record, subject, day, zone)
        ck, cv = _operand(atom.container, record, subject, day, zone)
        return None if not (ek and ck) else (ev in cv) != atom.negated
    raise TypeError(f"not an atom: {type(atom).__name__}")


def evaluate(e: n.Expr, record: Mapping[Any, Any], subject: Mapping[str, FieldInfo],
             day: datetime.date, zone: ZoneInfo | None = None) -> bool | None:
    """Kleene evaluation: True, False or None (unknown)."""
    if isinstance(e, n.And):
        values = [evaluate(i, record, subject, day, zone) for i in e.items]
        return False if False in values else (None if None in values else True)
    if isinstance(e, n.Or):
        values = [evaluate(i, record, subject, day, zone) for i in e.items]
        return True if True in values else (None if None in values else False)
    if isinstance(e, n.Not):
        v = evaluate(e.operand, record, subject, day, zone)
        return None if v is None else not v
    return _atom(e, record, subject, day, zone)


def failed_part(e: n.Expr, record: Mapping[Any, Any], subject: Mapping[str, FieldInfo],
                day: datetime.date, zone: ZoneInfo | None = None) -> n.Expr:
    """For a false condition: the part to quote (the first false conjunct, recursively)."""
    if isinstance(e, n.And):
        for item in e.items:
            if evaluate(item, record, subject, day, zone) is False:
                return failed_part(item, record, subject, day, zone)
    return e


def unknown_attributes(e: n.Expr, record: Mapping[Any, Any], subject: Mapping[str, FieldInfo],
                       day: datetime.date, zone: ZoneInfo | None = None) -> tuple[str, ...]:
    """For an unknown condition: the attributes of the first unknown atom on the deciding path."""
    if isinstance(e, (n.And, n.Or)):
        for item in e.items:
            if evaluate(item, record, subject, day, zone) is None:
                return unknown_attributes(item, record, subject, day, zone)
        raise AssertionError("an unknown and/or has an unknown item")
    if isinstance(e, n.Not):
        return unknown_attributes(e.operand, record, subject, day, zone)
    refs = rt.atom_refs(e)
    if not rt.atom_is_typed(e, subject):
        bad = refs
    else:
        bad = tuple(r for r in refs if not _operand(r, record, subject, day, zone)[0])
    return tuple(dict.fromkeys(rt.attribute_of(r, subject) for r in bad))


def field_specs(engine: EngineContext, partner: str, purpose: str, field: str, record: dict[Any, Any] | None,
                day: datetime.date) -> tuple[rt.Spec, ...]:
    """Every reason spec for one requested field, in the canonical order."""
    model = engine.model
    static = rt.static_specs(model, partner, purpose, field)
    if static:
        return static
    outside, covering = rt.agreement_check(model, partner, purpose, field, day)
    if outside is not None:
        return (outside,)
    if record is None:
        return (rt.NOT_MAPPING_SPEC,)
    subject = model.catalogue.subject_fields
    zone = engine.zone
    rules = [r for r in model.rules if rt.covers(r, partner, purpose, field)]

    forbids: list[rt.Spec] = []
    for r in rules:
        if r.effect != "forbid" or not r.window.contains_date(day):
            continue
        v = True if r.condition is None else evaluate(r.condition, record, subject, day, zone)
        if v is True:
            forbids.append(("forbidden", r, None))
        elif v is None:
            assert r.condition is not None
            forbids.append(("forbidden", r, None))
            forbids.append(_missing(r, unknown_attributes(r.condition, record, subject, day, zone), record, subject))
    if forbids:
        return tuple(forbids)

    permits = [r for r in rules if r.effect == "permit"]
    if not permits:
        return (rt.NO_PERMIT,)
    left = rt.left_applies(model, purpose)
    if left is not None:
        gone = rt.left_spec(record, left, day, zone)
        if gone is not None:
            return (gone,)
    failures: list[rt.Spec] = []
    for r in permits:
        failure, informs = _permit_failure(engine, r, field, record, subject, day)
        if failure is None:
            grant = r.grant_for(field)
            assert grant is not None
            return (("permitted", r, (grant.transform, covering)), *informs)
        failures.append(failure)
    return tuple(failures)


def _missing(r: RuleInfo, attrs: tuple[str, ...], record: Mapping[Any, Any],
             subject: Mapping[str, FieldInfo]) -> rt.Spec:
    """missing_attribute for a rule: each attribute absent/None, or its type and the declared one."""
    return ("missing_attribute", r, rt.missing_detail(attrs, record, rt.attribute_types(subject)))


def _permit_failure(engine: EngineContext, r: RuleInfo, field: str, record: Mapping[Any, Any],
                    subject: Mapping[str, FieldInfo], day: datetime.date) -> tuple[rt.Spec | None, tuple[rt.Spec, ...]]:
    """(None, inform_student specs) when the permit grants the field; else (why not, ())."""
    if not r.window.contains_date(day):
        return ("outside_window", r, None), ()
    zone = engine.zone
    if r.condition is not None:
        v = evaluate(r.condition, record, subject, day, zone)
        if v is False:
            return ("not_in_subset", r, failed_part(r.condition, record, subject, day, zone)), ()
        if v is None:
            return _missing(r, unknown_attributes(r.condition, record, subject, day, zone), record, subject), ()
    informs: list[rt.Spec] = []
    for topic in rt.consent_topics(engine.model, r, field):
        info = engine.model.consents.get(topic)
        status = rt.consent_status(record, topic, bool(info and info.reconfirm_at_16), day, zone)
        if status == rt.CONSENT_INFORM:
            informs.append(("inform_student", r, topic))
        elif status == rt.CONSENT_INVALID:  # what is wrong with it: types and expectations, never values
            return ("no_consent", r, (status, topic, rt.consent_problem(record, topic, zone))), ()
        elif status != rt.CONSENT_OK:
            return ("no_consent", r, (status, topic)), ()
    return None, tuple(informs)


def decide(engine: EngineContext, partner: str, purpose: str, fields: Sequence[str], student: Any,
           at: datetime.date | datetime.datetime | None) -> Decision:
    """The reference decision (arguments are assumed checked by ``Policy.decide``, which passes its
    ``EngineContext``)."""
    day = rt.local_day(at, engine.zone)
    record = rt.as_record(student)
    fds = tuple(rt.field_decision(f, field_specs(engine, partner, purpose, f, record, day), partner, purpose)
                for f in dict.fromkeys(fields))
    return Decision.of(fds, policy_version=engine.version, partner=partner, purpose=purpose)
