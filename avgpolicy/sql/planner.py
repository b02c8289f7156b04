"""Planning: one request (partner, purpose, fields, day) folded into a neutral tree per field.

This is one more back end of the same request as the compiler and the interpreter, and it
follows the interpreter's ``field_specs`` step by step (see ``runtime`` for the order):

* unknown partner/purpose/field, an agreement not in force, a field or purpose outside every
  agreement in force (spec 7.3): the field is never released;
* a forbid in force blocks unless its condition is FALSE (unknown blocks);
* the first permit in rule-name order whose window holds, whose condition is TRUE, whose
  consents are valid (basis ``consent(T)``; ``art9 explicit_consent(T)`` for a special field) and whose student has
  not left (spec 7.7) grants the field, with its transform.
"""

from __future__ import annotations

import datetime
import operator
from typing import TYPE_CHECKING, Any

import attrs

from .. import nodes as n
from .. import runtime as rt
from ..model import BIRTHDATE_FIELD, RuleInfo
from . import tree as t
from .errors import NotTranslatable

if TYPE_CHECKING:
    from ..policy import Policy

_OPS = {"==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le, ">": operator.gt,
        ">=": operator.ge}
_FLIP = {"==": "==", "!=": "!=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}
INT64 = (-(2 ** 63), 2 ** 63 - 1)
#: purpose kinds whose permits still reach students who left (spec 7.7)
LEFT_KINDS = ("transfer", "archive")


@attrs.frozen
class Branch:
    """One permit that may grant the field: its row condition (TRUE/FALSE, never unknown) and transform."""

    rule: str
    condition: t.Node
    transform: str | None


@attrs.frozen
class FieldPlan:
    """How one requested field is released: never (``column`` None), or where not ``blocked`` by a
    forbid, by the first branch whose condition holds."""

    ref: str
    column: t.Column | None
    blocked: t.Node
    branches: tuple[Branch, ...]

    @property
    def never(self) -> bool:
        return self.column is None or self.blocked == t.TRUE or not self.branches

    @property
    def always(self) -> bool:
        """Released (when the value is there) for every row, whatever its columns hold."""
        return not self.never and self.blocked == t.FALSE and self.branches[0].condition == t.TRUE

    @property
    def transforms(self) -> tuple[str | None, ...]:
        return tuple(dict.fromkeys(b.transform for b in self.branches))


class _Planner:
    def __init__(self, policy: Policy, partner: str, purpose: str, day: datetime.date) -> None:
        self.policy = policy
        self.model = policy.model
        self.partner = partner
        self.purpose = purpose
        self.day = day
        cat = self.model.catalogue
        self.subject = cat.subject_fields
        self.subject_name = cat.subject
        birth = self.subject.get(BIRTHDATE_FIELD)
        self.birth = t.Column(f"{cat.subject}.{BIRTHDATE_FIELD}", "date") \
            if birth is not None and birth.type == "date" else None

    # -- fields ----------------------------------------------------------------

    def field(self, ref: str) -> FieldPlan:
        never = FieldPlan(ref, None, t.TRUE, ())
        model, day = self.model, self.day
        if rt.static_specs(model, self.partner, self.purpose, ref):
            return never
        if not self._agreement_covers(ref):  # (also: no agreement in force at all)
            return never
        info = model.catalogue.fields[ref]
        column = t.Column(ref, info.type)
        rules = [r for r in model.rules if rt.covers(r, self.partner, self.purpose, ref)]
        blocks: list[t.Node] = []
        for r in rules:
            if r.effect != "forbid" or not r.window.contains_date(day):
                continue
            blocks.append(t.TRUE if r.condition is None else t.coalesce(self.condition(r, r.condition), True))
        blocked = t.or_(*blocks)
        branches: list[Branch] = []
        if blocked != t.TRUE:
            for r in rules:
                if r.effect != "permit" or not r.window.contains_date(day):
                    continue
                cond = self.permit(r, ref)
                if cond == t.FALSE:
                    continue
                grant = r.grant_for(ref)
                assert grant is not None
                branches.append(Branch(r.name, cond, grant.transform))
                if cond == t.TRUE:
                    break  # later permits are never reached
        return FieldPlan(ref, column, blocked, tuple(branches))

    def _agreement_covers(self, ref: str) -> bool:
        """Spec 7.3: some agreement in force covers the field and the purpose (v1 agreements cover all)."""
        agreements = self.model.partners[self.partner].agreements
        if not agreements:
            return True
        for a in agreements:
            if not a.window.contains_date(self.day):
                continue
            covers = getattr(a, "covers", None)
            purposes = getattr(a, "purposes", None)
            if (covers is None or ref in covers) and (purposes is None or self.purpose in purposes):
                return True
        return False

    def permit(self, r: RuleInfo, ref: str) -> t.Node:
        """TRUE exactly where the permit grants (its condition TRUE, consents valid, student not left)."""
        parts: list[t.Node] = []
        if r.condition is not None:
            parts.append(t.coalesce(self.condition(r, r.condition), False))
        for topic in rt.consent_topics(self.model, r, ref):  # art9's topic only for a special field
            if self.birth is None:
                return t.FALSE  # no birth date: the party entitled to consent is unknown
            info = self.model.consents.get(topic)
            parts.append(t.ConsentValid(topic, bool(info and info.reconfirm_at_16), self.day, self.birth, r.name))
        left = getattr(self.model.catalogue, "left", None)
        if left is not None:
            kind = getattr(self.model.purposes[self.purpose], "kind", "other")
            if kind not in LEFT_KINDS:
                info = self.subject.get(left)
                if info is not None:
                    parts.append(t.coalesce(t.NotLeft(t.Column(f"{self.subject_name}.{left}", info.type),
                                                      self.day), False))
        return t.and_(*parts)

    # -- conditions ------------------------------------------------------------

    def condition(self, r: RuleInfo, e: n.Expr) -> t.Node:
        if isinstance(e, n.And):
            return t.and_(*(self.condition(r, i) for i in e.items))
        if isinstance(e, n.Or):
            return t.or_(*(self.condition(r, i) for i in e.items))
        if isinstance(e, n.Not):
            return t.not_(self.condition(r, e.operand))
        if not rt.atom_is_typed(e, self.subject):
            return t.UNKNOWN
        if isinstance(e, n.Compare):
            return self._compare(r, e)
        if isinstance(e, n.InList):
            return self._in_list(r, e)
        if isinstance(e, n.InRange):
            return self._in_range(r, e)
        if isinstance(e, n.InSet):
            element, container = self._operand(r, e.element), self._operand(r, e.container)
            assert isinstance(element, (t.Param, t.Column)) and isinstance(container, t.Column)
            node = t.Member(element, container)
            return t.not_(node) if e.negated else node
        raise TypeError(f"not a condition: {type(e).__name__}")

    def _operand(self, r: RuleInfo, op: n.Literal | n.Ref) -> Any:
        """A Param, a Column, the string "age", or None (a column that cannot hold a usable value)."""
        if isinstance(op, n.Literal):
            if op.type == "int" and not INT64[0] <= op.value <= INT64[1]:  # type: ignore[operator]
                raise NotTranslatable(r.name, f"the number {op.value}", "it does not fit a 64-bit SQL integer")
            return t.Param(op.value, op.type)
        if rt.is_age(op, self.subject):
            return "age"
        info = self.subject[op.name]
        return t.Column(f"{self.subject_name}.{op.name}", info.type)

    def _compare(self, r: RuleInfo, e: n.Compare) -> t.Node:
        left, right, op = self._operand(r, e.left), self._operand(r, e.right), e.op
        if isinstance(left, t.Param) and not isinstance(right, t.Param):
            left, right, op = right, left, _FLIP[op]
        if isinstance(left, t.Param):
            return t.Const(bool(_OPS[op](left.value, right.value)))
        if left == "age" or right == "age":
            if self.birth is None:
                return t.UNKNOWN
            if left == "age" and right == "age":
                return t.when_known((self.birth,), bool(_OPS[op](0, 0)))
            if isinstance(right, t.Param):
                return self._age(op, right.value)
            if left == "age":
                return t.Cmp(op, t.AgeOf(self.birth, self.day), right)
            return t.Cmp(op, left, t.AgeOf(self.birth, self.day))
        return t.Cmp(op, left, right)

    def _age(self, op: str, k: int) -> t.Node:
        """``age OP k`` as bounds on the birth date at the decision day."""
        if op == ">=":
            return self._age_at_least(k)
        if op == ">":
            return self._age_at_least(k + 1)
        if op == "<":
            return t.not_(self._age_at_least(k))
        if op == "<=":
            return t.not_(self._age_at_least(k + 1))
        eq = t.and_(self._age_at_least(k), t.not_(self._age_at_least(k + 1)))
        return eq if op == "==" else t.not_(eq)

    def _age_at_least(self, k: int) -> t.Node:
        assert self.birth is not None
        bound = t.birthday_bound(self.day, k)
        if bound is None:
            return t.when_known((self.birth,), False)
        return t.Cmp("<=", self.birth, t.Param(bound, "date"))

    def _in_list(self, r: RuleInfo, e: n.InList) -> t.Node:
        operand = self._operand(r, e.operand)
        values = sorted(rt.list_values(e, self.subject), key=repr)
        for v in values:
            self._operand(r, n.Literal(v, rt.operand_type(e.operand, self.subject)))  # type: ignore[arg-type]
        if isinstance(operand, t.Param):
            return t.Const((operand.value in values) != e.negated)
        if operand == "age":
            if self.birth is None:
                return t.UNKNOWN
            node = t.or_(*(self._age("==", v) for v in values)) if values else t.when_known((self.birth,), False)
        elif not values:
            node = t.when_known((operand,), False)
        else:
            node = t.In(operand, tuple(t.Param(v, operand.type) for v in values))
        return t.not_(node) if e.negated else node

    def _in_range(self, r: RuleInfo, e: n.InRange) -> t.Node:
        operand = self._operand(r, e.operand)
        low, high = self._operand(r, e.low), self._operand(r, e.high)
        if isinstance(operand, t.Param):
            return t.Const((low.value <= operand.value <= high.value) != e.negated)
        if operand == "age":
            if self.birth is None:
                return t.UNKNOWN
            node = t.and_(self._age(">=", low.value), self._age("<=", high.value))
        else:
            node = t.and_(t.Cmp(">=", operand, low), t.Cmp("<=", operand, high))
        return t.not_(node) if e.negated else node


def plan_fields(policy: Policy, partner: str, purpose: str, fields: tuple[str, ...],
                day: datetime.date) -> tuple[FieldPlan, ...]:
    """The field plans of a request on a local day (fields deduplicated, in request order)."""
    planner = _Planner(policy, partner, purpose, day)
    return tuple(planner.field(f) for f in dict.fromkeys(fields))
