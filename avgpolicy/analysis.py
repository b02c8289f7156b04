"""Analysis: reasoning over student conditions and rule coverage (satisfiable, implies, covers).

The checker uses this module for the warnings that need real reasoning (a permit whose
condition can never hold, a permit wholly shadowed by forbids); the engine may reuse it.

Conditions are read in two-valued logic over well-typed students: ``int`` fields are
unbounded integers, ``date`` fields calendar days, ``text`` fields any string, ``bool``
fields true/false, ``set`` fields any finite set of strings, and the built-in ``age`` an
integer >= 0 (independent of ``geboortedatum``: treating the two as unrelated only adds
students, so every "unsatisfiable" answer stays true). Atoms the module does not
understand (a field compared with another field, a field of an unknown or wrongly used
type) become free boolean variables, which again only adds students.

That is sound for the warnings. At decision time a condition over missing data is
*unknown* (Kleene logic); a formula that is true with some atoms unknown is true for every
completion of those atoms, so a condition with no two-valued model is never true at run
time either. A forbid applies on true *or* unknown, which only widens it, so "the permit's
condition implies the forbids' conditions" in two-valued logic proves the shadowing.

The search is a lazy disjunctive normal form: conjunctions of atoms are collected, and a
disjunction is split only when no atom is left to apply, depth first, with a budget on the
number of branches. When the budget runs out the answer is ``None`` ("maybe"), and the
public helpers turn that into the answer that cannot cause a false warning.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from . import nodes as n
from .model import AGE, NameSet, WindowInfo
from .source import Span

#: Branches the search may open before it gives up and answers "maybe".
DEFAULT_BUDGET = 20_000
#: atoms one search may apply before it answers "maybe": a domain update copies its value
#: sets, so a flat condition of thousands of atoms would otherwise cost quadratic time
MAX_APPLIED = 2_000

ORDERED = frozenset({"int", "date", AGE})
_FLIP = {"==": "==", "!=": "!=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}
_NEGATE = {"==": "!=", "!=": "==", "<": ">=", "<=": ">", ">": "<=", ">=": "<"}
_DATE_MIN = datetime.date.min.toordinal()
_DATE_MAX = datetime.date.max.toordinal()

# Formulas in negation normal form:
#   ("const", bool)
#   ("and", (formula, ...)) / ("or", (formula, ...))
#   ("cmp", var, op, value)          value: int (int, age, date ordinal), str or bool
#   ("in", var, frozenset, positive)
#   ("has", var, str, positive)      membership of a string in a set field
#   ("opaque", key, positive)        an atom read as a free boolean
Formula = tuple[Any, ...]
TRUE: Formula = ("const", True)
FALSE: Formula = ("const", False)


def condition_types(subject_fields: Mapping[str, str]) -> dict[str, str]:
    """The variables a condition may use: subject field name -> type, plus ``age``."""
    types = dict(subject_fields)
    types.setdefault(AGE, AGE)
    return types


# ---------------------------------------------------------------------------
# Expressions -> formulas in negation normal form


def _value(lit: n.Literal, var_type: str) -> Any:
    """The literal as a value of a variable of ``var_type``, or None when it cannot be one."""
    v = lit.value
    if var_type in ("int", AGE):
        return v if lit.type == "int" and isinstance(v, int) and not isinstance(v, bool) else None
    if var_type == "date":
        return v.toordinal() if lit.type == "date" and isinstance(v, datetime.date) else None
    if var_type == "text":
        return v if lit.type == "text" and isinstance(v, str) else None
    if var_type == "bool":
        return v if lit.type == "bool" and isinstance(v, bool) else None
    return None


def _opaque(node: n.Node, positive: bool) -> Formula:
    return ("opaque", node, positive)


def _junction(kind: str, items: list[Formula]) -> Formula:
    unit, zero = (TRUE, FALSE) if kind == "and" else (FALSE, TRUE)
    out: list[Formula] = []
    for f in items:
        if f == zero:
            return zero
        if f == unit:
            continue
        if f[0] == kind:
            out.extend(f[1])
        else:
            out.append(f)
    if not out:
        return unit
    return out[0] if len(out) == 1 else (kind, tuple(out))


def _compare_literals(op: str, a: n.Literal, b: n.Literal) -> bool | None:
    if a.type != b.type:
        return None
    x, y = a.value, b.value
    if op == "==":
        return x == y
    if op == "!=":
        return x != y
    if a.type not in ("int", "date"):
        return None
    return {"<": x < y, "<=": x <= y, ">": x > y, ">=": x >= y}[op]  # type: ignore[operator]


def _cmp(node: n.Node, var: str, op: str, lit: n.Literal, types: Mapping[str, str], positive: bool) -> Formula:
    var_type = types.get(var)
    value = _value(lit, var_type) if var_type else None
    if value is None or (op not in ("==", "!=") and var_type not in ORDERED):
        return _opaque(node, positive)
    return ("cmp", var, op if positive else _NEGATE[op], value)


def to_nnf(expr: n.Expr | None, types: Mapping[str, str], positive: bool = True) -> Formula:
    """The condition (None: always true) in negation normal form; ``positive=False`` negates it."""
    if expr is None:
        return TRUE if positive else FALSE
    if isinstance(expr, n.Not):
        return to_nnf(expr.operand, types, not positive)
    if isinstance(expr, (n.And, n.Or)):
        kind = "and" if isinstance(expr, n.And) == positive else "or"
        return _junction(kind, [to_nnf(e, types, positive) for e in expr.items])
    if isinstance(expr, n.Compare):
        left, right, op = expr.left, expr.right, expr.op
        if isinstance(left, n.Literal) and isinstance(right, n.Ref):
            left, right, op = right, left, _FLIP[op]
        if isinstance(left, n.Ref) and isinstance(right, n.Literal):
            return _cmp(expr, left.name, op, right, types, positive)
        if isinstance(left, n.Literal) and isinstance(right, n.Literal):
            value = _compare_literals(op, left, right)
            if value is not None:
                return TRUE if value == positive else FALSE
        return _opaque(expr, positive)
    if isinstance(expr, n.InList):
        pos = positive != expr.negated
        operand = expr.operand
        if isinstance(operand, n.Literal):
            hits = [_compare_literals("==", operand, v) for v in expr.values]
            if all(h is not None for h in hits):
                return TRUE if any(hits) == pos else FALSE
            return _opaque(n.InList(operand, expr.values), pos)
        var_type = types.get(operand.name)
        values = [_value(v, var_type) if var_type else None for v in expr.values]
        if var_type is None or var_type == "set" or any(v is None for v in values):
            return _opaque(n.InList(operand, expr.values), pos)
        return ("in", operand.name, frozenset(values), pos)
    if isinstance(expr, n.InRange):
        pos = positive != expr.negated
        operand = expr.operand
        if isinstance(operand, n.Literal):
            lo = _compare_literals(">=", operand, expr.low)
            hi = _compare_literals("<=", operand, expr.high)
            if lo is not None and hi is not None:
                return TRUE if (lo and hi) == pos else FALSE
            return _opaque(n.InRange(operand, expr.low, expr.high), pos)
        low = _cmp(expr, operand.name, ">=", expr.low, types, pos)
        high = _cmp(expr, operand.name, "<=", expr.high, types, pos)
        if low[0] == "opaque" or high[0] == "opaque":
            return _opaque(n.InRange(operand, expr.low, expr.high), pos)
        return _junction("and" if pos else "or", [low, high])
    if isinstance(expr, n.InSet):
        pos = positive != expr.negated
        element, container = expr.element, expr.container
        if types.get(container.name) == "set" and isinstance(element, n.Literal) and element.type == "text":
            return ("has", container.name, element.value, pos)
        return _opaque(n.InSet(element, container), pos)
    raise TypeError(f"not a condition node: {type(expr).__name__}")  # pragma: no cover


# ---------------------------------------------------------------------------
# Domains of the variables: (lo, hi, include, exclude) for scalars, (has, has_not) for sets


def _initial(var_type: str | None) -> tuple[Any, ...]:
    if var_type == AGE:
        return (0, None, None, frozenset())
    if var_type == "date":
        return (_DATE_MIN, _DATE_MAX, None, frozenset())
    if var_type == "bool":
        return (None, None, frozenset({True, False}), frozenset())
    return (None, None, None, frozenset())


def _nonempty(dom: tuple[Any, ...]) -> bool:
    lo, hi, include, exclude = dom
    if include is not None:
        return any(v not in exclude and (lo is None or v >= lo) and (hi is None or v <= hi) for v in include)
    if lo is None or hi is None:
        return True  # unbounded integers or any text: a finite exclude list cannot empty it
    if lo > hi:
        return False
    return hi - lo + 1 > sum(1 for e in exclude if lo <= e <= hi)


def _apply(state: dict[Any, Any], atom: Formula, types: Mapping[str, str]) -> bool:
    """Add an atom to a conjunction's state; False when the conjunction became impossible."""
    kind = atom[0]
    if kind == "opaque":
        key = ("opaque", atom[1])
        seen = state.get(key)
        if seen is not None and seen != atom[2]:
            return False
        state[key] = atom[2]
        return True
    if kind == "has":
        _, var, value, positive = atom
        has, has_not = state.get(var) or (frozenset(), frozenset())
        if positive:
            has = has | {value}
        else:
            has_not = has_not | {value}
        state[var] = (has, has_not)
        return value not in (has_not if positive else has)
    var = atom[1]
    lo, hi, include, exclude = state.get(var) or _initial(types.get(var))
    if kind == "in":
        values, positive = atom[2], atom[3]
        if positive:
            include = values if include is None else include & values
        else:
            exclude = exclude | values
    else:
        op, value = atom[2], atom[3]
        if op == "==":
            include = frozenset({value}) if include is None else include & {value}
        elif op == "!=":
            exclude = exclude | {value}
        elif op in ("<", "<="):
            bound = value - 1 if op == "<" else value
            hi = bound if hi is None else min(hi, bound)
        else:
            bound = value + 1 if op == ">" else value
            lo = bound if lo is None else max(lo, bound)
    dom = (lo, hi, include, exclude)
    state[var] = dom
    return _nonempty(dom)


def _search(formula: Formula, types: Mapping[str, str], budget: int) -> bool | None:
    """True: a model exists; False: none exists; None: the budget ran out first."""
    # each entry: formulas still to apply, disjunctions left to split, the variables' domains
    stack: list[tuple[list[Formula], list[Formula], dict[Any, Any]]] = [([formula], [], {})]
    spent = applied = 0
    gave_up = False
    while stack:
        todo, ors, state = stack.pop()
        alive = True
        while alive and (todo or ors):
            if not todo:
                first = ors.pop()
                if spent + len(first[1]) > budget:
                    gave_up = True
                    alive = False
                    break
                spent += len(first[1])
                for branch in reversed(first[1][1:]):
                    stack.append(([branch], list(ors), dict(state)))
                todo.append(first[1][0])
                continue
            f = todo.pop()
            kind = f[0]
            if kind == "const":
                alive = f[1]
            elif kind == "and":
                todo.extend(f[1])
            elif kind == "or":
                ors.append(f)
            else:
                applied += 1
                if applied > MAX_APPLIED:
                    return None
                alive = _apply(state, f, types)
        if alive:
            return True
    return None if gave_up else False


def solve(all_of: Iterable[n.Expr | None] = (), none_of: Iterable[n.Expr | None] = (), *,
          types: Mapping[str, str], budget: int = DEFAULT_BUDGET) -> bool | None:
    """Is there a student for whom every ``all_of`` holds and no ``none_of`` holds?

    True or False when decided, None when the search was too large (``budget`` branches).
    A None condition means "all students".
    """
    parts = [to_nnf(e, types) for e in all_of] + [to_nnf(e, types, positive=False) for e in none_of]
    return _search(_junction("and", parts), types, budget)


def satisfiable(expr: n.Expr | None, types: Mapping[str, str], *, budget: int = DEFAULT_BUDGET) -> bool:
    """False only when no student can make ``expr`` true (too large to decide counts as True)."""
    return solve([expr], types=types, budget=budget) is not False


def implies(a: n.Expr | None, b: n.Expr | None, types: Mapping[str, str], *,
            budget: int = DEFAULT_BUDGET) -> bool:
    """True only when every student for whom ``a`` holds also satisfies ``b`` (proven)."""
    return covers(a, [b], types, budget=budget)


def _has_opaque(formula: Formula) -> bool:
    stack = [formula]
    while stack:
        f = stack.pop()
        if f[0] == "opaque":
            return True
        if f[0] in ("and", "or"):
            stack.extend(f[1])
    return False


def implication(a: n.Expr | None, b: n.Expr | None, *, types: Mapping[str, str],
                budget: int = DEFAULT_BUDGET) -> bool | None:
    """Does every student for whom ``a`` holds satisfy ``b``? (None ``a``: every student.)

    True: proven. False: refuted, a student exists for whom ``a`` holds and ``b`` does not
    (only answered when no atom of either was read as a free boolean, so the student is
    real, not an artefact of atoms the analysis does not understand). None: the analysis
    cannot tell (such atoms, or the search was too large).
    """
    formula = _junction("and", [to_nnf(a, types), to_nnf(b, types, positive=False)])
    result = _search(formula, types, budget)
    if result is False:
        return True
    if result is None or _has_opaque(formula):
        return None
    return False


def age_below(years: int, span: Span | None = None) -> n.Compare:
    """The condition ``age < years`` (e.g. "limited to students under 18")."""
    return n.Compare("<", n.Ref(AGE, span=span), n.Literal(years, "int", span=span), span=span)


def covers(expr: n.Expr | None, others: Sequence[n.Expr | None], types: Mapping[str, str], *,
           budget: int = DEFAULT_BUDGET) -> bool:
    """True only when, for every student for whom ``expr`` holds, at least one of ``others`` holds."""
    if any(o is None for o in others):
        return True
    return solve([expr], others, types=types, budget=budget) is False


# ---------------------------------------------------------------------------
# Names, windows and agreements


def expand(names: NameSet, declared: Iterable[str]) -> frozenset[str]:
    """The declared names a ``NameSet`` selects (``*`` is every declared name)."""
    if not names.everything:
        pool = declared if isinstance(declared, (Mapping, set, frozenset)) else frozenset(declared)
        return frozenset(x for x in names.names if x in pool)
    return frozenset(x for x in declared if x not in names.names)


def _ordinal_bounds(w: WindowInfo) -> tuple[int, int]:
    return (w.start.toordinal() if w.start else _DATE_MIN, w.end.toordinal() if w.end else _DATE_MAX)


def overlaps(a: WindowInfo, b: WindowInfo) -> bool:
    """Do two windows share at least one day?"""
    a0, a1 = _ordinal_bounds(a)
    b0, b1 = _ordinal_bounds(b)
    return max(a0, b0) <= min(a1, b1)


def segments(window: WindowInfo, others: Iterable[WindowInfo]) -> list[tuple[datetime.date, datetime.date]]:
    """Cut ``window`` into maximal day ranges on which each of ``others`` is wholly in or wholly out."""
    lo, hi = _ordinal_bounds(window)
    if lo > hi:
        return []
    cuts = {lo}
    for w in others:
        s, e = _ordinal_bounds(w)
        if lo < s <= hi:
            cuts.add(s)
        if lo < e + 1 <= hi:
            cuts.add(e + 1)
    points = sorted(cuts)
    bounds = [*points[1:], hi + 1]
    return [(datetime.date.fromordinal(a), datetime.date.fromordinal(b - 1))
            for a, b in zip(points, bounds, strict=True)]


def active_on(windows: Iterable[WindowInfo], day: datetime.date) -> list[int]:
    """Indexes of the windows that contain ``day``."""
    return [i for i, w in enumerate(windows) if w.contains_date(day)]
