"""Compiler: a (partner, purpose, fields) request -> a specialised Python decision function.

Only the rules that can apply to that partner, purpose and those fields are compiled.
Code is generated only through the stdlib ``ast`` module: str/int/bool/None and
tuples of ints are ``ast.Constant``; everything else (dates, frozensets, prebuilt
Decisions, helpers) goes into the exec namespace under generated names (``_v3``).
Policy identifiers (which may contain ``-``) never become Python identifiers.

Time. Windows are inclusive whole local days, so the set of rules and agreements
in force changes only at local-date boundaries. A request holds the sorted boundary
dates; the code for each *epoch* between two boundaries is generated lazily, on the
first call that falls in it. Resolving ``at`` is a bisect (skipped when the same
``at`` object as last time is passed), so a function held for months is never stale.

The held function. ``check(s, at=None)`` is itself generated: a short prologue
(``a, day, e = _last``; resolve ``at`` unless it is the last one), then one branch
per specialised epoch. When a call needs a new epoch, the function is regenerated
with that epoch inlined and its ``__code__`` is swapped under a lock (a frame still
running the old code finds the epoch missing and calls the function again once), so
a decision costs a single Python call.

Outcomes. Fields governed by the same rules form a *group* that is decided once.
A group's outcome is a tuple of reason-spec ids (see ``runtime``); the Decision for
an outcome is built once and shared (immutable): the allowed path returns a
prebuilt constant, other paths are memoised.

Conditions. A conjunction of atoms (the usual ``students where``) becomes a decision
tree that loads each value once on every path and ends in the reason directly. For
any other condition E two plain Python boolean expressions are generated:
T(E) "E is true" and F(E) "E is false" (Kleene logic by duality: T(a and b) =
T(a) and T(b), F(a and b) = F(a) or F(b), T(not a) = F(a), ...). Every field load
is guarded by an exact type check (and, only when it fails, for int and date fields,
a lossless conversion: ``runtime.to_int``/``to_date``), so a missing or ill-typed
value makes both T and F false: *unknown*. Only on a non-true path is the reason worked out (which
part failed, which attribute was missing), by generated if-chains mirroring
``interpreter.failed_part`` and ``interpreter.unknown_attributes``.
"""

from __future__ import annotations

import ast
import bisect
import copy
import datetime
import itertools
import linecache
import threading
import types
import weakref
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from . import nodes as n
from . import runtime as rt
from .decision import Decision
from .model import BIRTHDATE_FIELD, FieldInfo, RuleInfo
from .pseudonym import year_of
from .pysource import docstring, unparse

if TYPE_CHECKING:
    from .engine import EngineContext

#: a condition with more atoms is decided by the interpreter: generating code for it would
#: take long and could exhaust Python's compiler (a flat `or` of thousands of terms)
MAX_GENERATED_ATOMS = 500
#: a request whose conditions hold more atoms in all (forbids and permits of every group) is decided by
#: the interpreter: generating and compiling that much code would cost more than the interpreter saves
#: before a request has been asked many times (issue 15: 8 rules of 498 atoms took 7.7 s to compile)
REQUEST_ATOM_BUDGET = 600
#: ``source`` and ``code_tree`` of a held function show at most this many epochs (the code of every
#: epoch is generated and run all the same)
SHOWN_EPOCHS = 32
MEMO_LIMIT = 4096
#: an outcome of at most this many reason specs gets its Decision built with the code; longer ones on use
PREBUILT_SPECS = 4
CONJUNCTION_TREE_LIMIT = 8  # atoms; the tree grows with the square of this
KLEENE_TREE_LIMIT = 4  # atoms of a condition with or/not; the tree grows with 3 to this power


class _Table:
    """An outcome picked at run time from static outcomes: ``outcomes[index]``."""

    def __init__(self, outcomes: tuple[tuple[int, ...] | None, ...], index: ast.expr) -> None:
        self.outcomes = outcomes
        self.index = index


#: a group's outcome: a static spec-id tuple, an expression giving one, or a _Table
Outcome = Any
_serial = itertools.count(1)
_NOTHING = object()

_INVERSE = {"==": "!=", "!=": "==", "<": ">=", ">=": "<", ">": "<=", "<=": ">"}
_CMP_OPS: dict[str, type[ast.cmpop]] = {"==": ast.Eq, "!=": ast.NotEq, "<": ast.Lt, "<=": ast.LtE,
                                        ">": ast.Gt, ">=": ast.GtE}
_TYPE_NAMES = {"text": "_str", "int": "_int", "bool": "_bool", "date": "_date"}
#: the slow-path conversion of a type whose values may convert without loss (``runtime.to_int``,
#: ``runtime.to_date``), called only when the exact type check has failed
_CONVERTERS = {"int": "_cint", "date": "_cdate"}


# ---------------------------------------------------------------------------
# ast helpers

def _name(ident: str) -> ast.Name:
    return ast.Name(id=ident, ctx=ast.Load())


def _store(ident: str) -> ast.Name:
    return ast.Name(id=ident, ctx=ast.Store())


def _const(value: Any) -> ast.Constant:
    return ast.Constant(value=value)


def _call(func: str, *args: ast.expr) -> ast.Call:
    return ast.Call(func=_name(func), args=list(args), keywords=[])


def _get(key: str) -> ast.Call:
    """``s.get(key)``: a student attribute (the key is a constant, never an identifier)."""
    return ast.Call(func=ast.Attribute(value=_name("s"), attr="get", ctx=ast.Load()), args=[_const(key)],
                    keywords=[])


def _and(items: list[ast.expr]) -> ast.expr:
    return items[0] if len(items) == 1 else ast.BoolOp(op=ast.And(), values=items)


def _or(items: list[ast.expr]) -> ast.expr:
    return items[0] if len(items) == 1 else ast.BoolOp(op=ast.Or(), values=items)


def _not(e: ast.expr) -> ast.expr:
    return ast.UnaryOp(op=ast.Not(), operand=e)


def _assign(target: str, value: ast.expr) -> ast.Assign:
    return ast.Assign(targets=[_store(target)], value=value)


def _append(target: str, ids: ast.expr) -> ast.AugAssign:
    return ast.AugAssign(target=_store(target), op=ast.Add(), value=ids)


def _if(test: ast.expr, body: list[ast.stmt], orelse: list[ast.stmt] | None = None) -> ast.If:
    return ast.If(test=test, body=body or [ast.Pass()], orelse=orelse or [])


def _conjuncts(e: n.Expr) -> list[n.Expr] | None:
    """The atoms of a conjunction (nested ``and`` flattened, in order); None if it has or/not."""
    if isinstance(e, n.And):
        out: list[n.Expr] = []
        for item in e.items:
            sub = _conjuncts(item)
            if sub is None:
                return None
            out.extend(sub)
        return out
    if isinstance(e, (n.Or, n.Not)):
        return None
    return [e]


def _atom_count(e: n.Expr, limit: int | None = None) -> int:
    """The atoms of a condition; with ``limit``, counting stops at the first atom past it (so a
    condition of 10,000 atoms costs ``limit`` steps when all that matters is whether it is too large)."""
    count, stack = 0, [e]
    pop, extend = stack.pop, stack.extend
    while stack:
        node = pop()
        kind = type(node)
        if kind is n.And or kind is n.Or:
            extend(node.items)
        elif kind is n.Not:
            stack.append(node.operand)
        else:
            count += 1
            if limit is not None and count > limit:
                break
    return count


class _NotSeen(Exception):
    """A leaf needs the value of an atom its path did not evaluate (never expected)."""


def _static_value(e: n.Expr, env: dict[int, bool | None]) -> bool | None:
    """The Kleene value of ``e`` from the atom values known on a path (as ``interpreter.evaluate``)."""
    if isinstance(e, n.Not):
        v = _static_value(e.operand, env)
        return None if v is None else not v
    if isinstance(e, (n.And, n.Or)):
        stop = isinstance(e, n.Or)
        values = []
        for i in e.items:
            try:
                values.append(_static_value(i, env))
            except _NotSeen:
                values.append(_NOTHING)
        if stop in values:
            return stop
        if _NOTHING in values:
            raise _NotSeen
        return None if None in values else not stop
    if id(e) not in env:
        raise _NotSeen
    return env[id(e)]


def _same(a: Any, b: Any) -> bool:
    """Whether two generated statement lists (or nodes, or field values) are the same code: what
    comparing their ``ast.dump`` says, without formatting them (stops at the first difference)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, ast.AST):
        return all(_same(getattr(a, f, None), getattr(b, f, None)) for f in a._fields)
    if type(a) is list:
        return len(a) == len(b) and all(map(_same, a, b))
    if type(a) is tuple:  # a constant's value: the same types, element by element
        return len(a) == len(b) and all(map(_same, a, b))
    return a == b  # type: ignore[no-any-return]


def _memoised(key: ast.expr) -> ast.expr:
    """``_d if (_d := _memoget(key)) is not None else _decision(_k)``, with ``_k`` the key: the
    memoised Decision of an outcome without a Python call (a Decision may be falsy: test None)."""
    bind_key = ast.NamedExpr(target=_store("_k"), value=key)
    found = ast.Compare(left=ast.NamedExpr(target=_store("_d"), value=_call("_memoget", bind_key)),
                        ops=[ast.IsNot()], comparators=[_const(None)])
    return ast.IfExp(test=found, body=_name("_d"), orelse=_call("_decision", _name("_k")))


def _record_guard(not_mapping: ast.stmt) -> ast.If:
    """``if type(s) is not dict: s = _record(s); if s is None: <not_mapping>``."""
    return _if(ast.Compare(left=_call("_type", _name("s")), ops=[ast.IsNot()], comparators=[_name("_dict")]),
               [_assign("s", _call("_record", _name("s"))),
                _if(ast.Compare(left=_name("s"), ops=[ast.Is()], comparators=[_const(None)]), [not_mapping])])


def _typed(bind: ast.NamedExpr, temp: str, ftype: str) -> ast.expr:
    """True when the value ``bind`` loads into ``temp`` is usable as ``ftype``: the exact type check
    (the hot path) ``type(t := ...) is int``, and only when it fails, for a type with a lossless
    conversion, ``or (t is not None and (t := _cint(t)) is not None)`` (``temp`` then holds the
    converted value)."""
    exact = ast.Compare(left=_call("_type", bind), ops=[ast.Is()], comparators=[_name(_TYPE_NAMES[ftype])])
    convert = _CONVERTERS.get(ftype)
    if convert is None:
        return exact
    # ``or (t is not None and (t := _cint(t)) is not None)``: a missing value costs no call
    present = ast.Compare(left=_name(temp), ops=[ast.IsNot()], comparators=[_const(None)])
    converted = ast.NamedExpr(target=_store(temp), value=_call(convert, _name(temp)))
    return _or([exact, _and([present, ast.Compare(left=converted, ops=[ast.IsNot()], comparators=[_const(None)])])])


def _names_types(outcome: ast.expr) -> bool:
    """Whether an outcome holds a spec naming what a value is (``_miss``, ``_cspec``): an ill-typed
    value's outcome, rare enough to go through ``_decision`` in short code."""
    return any(isinstance(e, ast.Call) and isinstance(e.func, ast.Name) and e.func.id in ("_miss", "_cspec")
               for e in ast.walk(outcome))


def _chain(branches: list[tuple[ast.expr, list[ast.stmt]]], last: list[ast.stmt]) -> list[ast.stmt]:
    """``if a: ... elif b: ... else: last``."""
    out = last
    for test, body in reversed(branches):
        out = [_if(test, body, out)]
    return out


# ---------------------------------------------------------------------------
# code generation for one epoch

class _Gen:
    """Builds the ast of one epoch's functions; shares the namespace and spec table of a request."""

    def __init__(self, request: _Request, epoch: int) -> None:
        self.req = request
        self.epoch = epoch
        self.tmp = itertools.count()
        self.leaf: Callable[[int | ast.expr], list[ast.stmt] | None] | None = None
        #: the agreements in force that cover the group being generated (``permitted`` names them)
        self.covering: tuple[Any, ...] = ()
        #: id(a group's permits) -> (the permits, in-window indices, outside_window spec ids): see ``in_window``
        self._windows: dict[int, tuple[list[_Permit], list[int], list[int]]] = {}

    def temp(self) -> str:
        return f"_t{next(self.tmp)}"

    # -- operands and atoms ----------------------------------------------------

    def literal(self, lit: n.Literal) -> ast.expr:
        if type(lit.value) in (str, int, bool):
            return _const(lit.value)
        return _name(self.req.value(lit.value))

    def guarded(self, ref: n.Ref) -> tuple[ast.expr, ast.expr]:
        """(guard, value): the guard binds the value to a temp and is true iff it is well-typed."""
        t = self.temp()
        if rt.is_age(ref, self.req.subject):
            bind = ast.NamedExpr(target=_store(t), value=_call("_age", _get(BIRTHDATE_FIELD), _name("day")))
            return ast.Compare(left=bind, ops=[ast.IsNot()], comparators=[_const(None)]), _name(t)
        ftype = self.req.subject[ref.name].type
        bind = ast.NamedExpr(target=_store(t), value=_get(ref.name))
        if ftype == "set":
            return _call("_strset", bind), _name(t)
        return _typed(bind, t, ftype), _name(t)

    def operand(self, op: n.Literal | n.Ref, guards: list[ast.expr]) -> ast.expr:
        if isinstance(op, n.Literal):
            return self.literal(op)
        guard, value = self.guarded(op)
        guards.append(guard)
        return value

    def atom(self, a: n.Expr, truth: bool) -> ast.expr:
        """T(a) (truth=True) or F(a): guards, then the comparison (or its negation)."""
        if not rt.atom_is_typed(a, self.req.subject):
            return _const(False)
        guards, test = self.atom_split(a, truth)
        return _and([*guards, test])

    def atom_split(self, a: n.Expr, truth: bool) -> tuple[list[ast.expr], ast.expr]:
        """The guards (binding the operands to temps) and the comparison over the temps."""
        guards: list[ast.expr] = []
        test: ast.expr
        if isinstance(a, n.Compare):
            left = self.operand(a.left, guards)
            right = self.operand(a.right, guards)
            op = a.op if truth else _INVERSE[a.op]
            test = ast.Compare(left=left, ops=[_CMP_OPS[op]()], comparators=[right])
        elif isinstance(a, n.InList):
            x = self.operand(a.operand, guards)
            values = _name(self.req.value(rt.list_values(a, self.req.subject)))
            member = truth != a.negated
            test = ast.Compare(left=x, ops=[ast.In() if member else ast.NotIn()], comparators=[values])
        elif isinstance(a, n.InRange):
            x = self.operand(a.operand, guards)
            test = ast.Compare(left=self.literal(a.low), ops=[ast.LtE(), ast.LtE()],
                               comparators=[x, self.literal(a.high)])
            if truth == a.negated:
                test = _not(test)
        elif isinstance(a, n.InSet):
            e = self.operand(a.element, guards)
            c = self.operand(a.container, guards)
            member = truth != a.negated
            test = ast.Compare(left=e, ops=[ast.In() if member else ast.NotIn()], comparators=[c])
        else:
            raise TypeError(f"not an atom: {type(a).__name__}")
        return guards, test

    def truth(self, e: n.Expr, want: bool) -> ast.expr:
        """T(e) when want is True, F(e) when False (Kleene logic by duality)."""
        if isinstance(e, n.Not):
            return self.truth(e.operand, not want)
        if isinstance(e, (n.And, n.Or)):
            parts = [self.truth(i, want) for i in e.items]
            conjunctive = isinstance(e, n.And) == want
            return _and(parts) if conjunctive else _or(parts)
        return self.atom(e, want)

    # -- diagnosis of a condition that is not true -------------------------------

    def set_failure(self, target: str, spec: rt.Spec | ast.expr) -> list[ast.stmt]:
        """A diagnosis leaf: emit the outcome directly if the permit hook allows, else set ``target``.
        ``spec`` is a spec, or an expression giving a spec id at run time."""
        sid: int | ast.expr = spec if isinstance(spec, ast.expr) else self.req.spec_id(spec)
        if self.leaf is not None and target == "_x":
            direct = self.leaf(sid)
            if direct is not None:
                return direct
        return [_assign(target, sid if isinstance(sid, ast.expr) else _const(sid))]

    def set_missing(self, target: str, spec: rt.Spec) -> list[ast.stmt]:
        """A missing_attribute leaf: the spec as it is when every attribute it names is absent or
        None; else the spec naming each present value's type (``_miss``, run time: the slow path)."""
        attrs = spec[2]
        if not attrs:  # (an atom over two literals of different types: unknown, naming nothing)
            return self.set_failure(target, spec)
        absent = _and([ast.Compare(left=_get(a), ops=[ast.Is()], comparators=[_const(None)]) for a in attrs])
        static = self.set_failure(target, spec)
        typed = self.set_failure(target, _call("_miss", _const(self.req.spec_id(spec)), _name("s")))
        if len(static) == len(typed) == 1 and isinstance(static[0], ast.Assign) and isinstance(typed[0], ast.Assign):
            return [_assign(target, ast.IfExp(test=absent, body=static[0].value, orelse=typed[0].value))]
        return [_if(absent, static, typed)]

    def false_part(self, e: n.Expr, rule: RuleInfo, target: str) -> list[ast.stmt]:
        if isinstance(e, n.And):
            branches = [(self.truth(i, False), self.false_part(i, rule, target)) for i in e.items[:-1]]
            return _chain(branches, self.false_part(e.items[-1], rule, target))
        return self.set_failure(target, ("not_in_subset", rule, e))

    def unknown_part(self, e: n.Expr, rule: RuleInfo, target: str) -> list[ast.stmt]:
        if isinstance(e, n.Not):
            return self.unknown_part(e.operand, rule, target)
        if isinstance(e, (n.And, n.Or)):
            want = isinstance(e, n.And)  # first item not true (and) / not false (or) is the unknown one
            branches = [(_not(self.truth(i, want)), self.unknown_part(i, rule, target)) for i in e.items[:-1]]
            return _chain(branches, self.unknown_part(e.items[-1], rule, target))
        refs = rt.atom_refs(e)

        def missing(bad: Sequence[n.Ref]) -> list[ast.stmt]:
            attrs = tuple(dict.fromkeys(rt.attribute_of(r, self.req.subject) for r in bad))
            return self.set_missing(target, ("missing_attribute", rule, attrs))

        if not rt.atom_is_typed(e, self.req.subject) or len({r.name for r in refs}) == 1:
            return missing(refs)  # (with one reference, that one is the unknown one)
        return self._missing_tree(refs, (), missing)

    def _missing_tree(self, refs: tuple[n.Ref, ...], bad: tuple[n.Ref, ...],
                      missing: Callable[[Sequence[n.Ref]], list[ast.stmt]]) -> list[ast.stmt]:
        if not refs:
            return missing(bad)
        guard, _ = self.guarded(refs[0])
        return [_if(guard, self._missing_tree(refs[1:], bad, missing),
                    self._missing_tree(refs[1:], (*bad, refs[0]), missing))]

    def diagnose(self, e: n.Expr, rule: RuleInfo, target: str) -> list[ast.stmt]:
        return [_if(self.truth(e, False), self.false_part(e, rule, target), self.unknown_part(e, rule, target))]

    def condition(self, e: n.Expr, rule: RuleInfo, granted: list[ast.stmt], target: str) -> list[ast.stmt]:
        """``granted`` when ``e`` is true, else the failure (leaf hook or ``target``).

        A conjunction of atoms (the common case) becomes a decision tree that loads each
        value once on every path; anything else is T(e), then a diagnosis."""
        atoms = _conjuncts(e)
        if atoms is None:
            if _atom_count(e, KLEENE_TREE_LIMIT) <= KLEENE_TREE_LIMIT:
                try:
                    return self._kleene(e, e, {}, rule, granted, target)
                except (_NotSeen, StopIteration):  # not expected: the general form below is always right
                    pass
            return [_if(self.truth(e, True), granted, self.diagnose(e, rule, target))]
        if len(atoms) > CONJUNCTION_TREE_LIMIT:
            return [_if(self.truth(e, True), granted, self.diagnose(e, rule, target))]
        return self._conjunction(atoms, 0, None, rule, granted, target)

    # -- a small condition with or/not: a three-valued decision tree ----------------

    def _kleene(self, whole: n.Expr, e: n.Expr, env: dict[int, bool | None], rule: RuleInfo,
                granted: list[ast.stmt], target: str) -> list[ast.stmt]:
        """Evaluate ``e`` (a part of ``whole``) atom by atom, each loaded once on its path; at each
        leaf the value of ``whole`` is known at compile time from the atoms seen (``env``, by id),
        and so is its reason (as ``interpreter.failed_part`` / ``unknown_attributes`` find it)."""
        return self._value(e, env, lambda v, env2: self._kleene_leaf(whole, env2, rule, granted, target))

    def _value(self, e: n.Expr, env: dict[int, bool | None],
               k: Callable[[bool | None, dict[int, bool | None]], list[ast.stmt]]) -> list[ast.stmt]:
        """Code that finds the Kleene value of ``e`` and continues with ``k(value, env)`` on each path."""
        if isinstance(e, n.Not):
            return self._value(e.operand, env, lambda v, env2: k(None if v is None else not v, env2))
        if isinstance(e, (n.And, n.Or)):
            stop = isinstance(e, n.Or)  # the value that decides an or (True) / an and (False)
            items = e.items

            def step(i: int, acc: bool | None, env1: dict[int, bool | None]) -> list[ast.stmt]:
                def after(v: bool | None, env2: dict[int, bool | None]) -> list[ast.stmt]:
                    if v is stop:
                        return k(stop, env2)
                    acc2 = None if (v is None or acc is None) else acc
                    return k(acc2, env2) if i + 1 == len(items) else step(i + 1, acc2, env2)
                return self._value(items[i], env1, after)
            return step(0, not stop, env)
        key = id(e)
        if key in env:
            return k(env[key], env)
        if not rt.atom_is_typed(e, self.req.subject):
            return k(None, {**env, key: None})
        guards, test = self.atom_split(e, True)
        if_true, if_false = k(True, {**env, key: True}), k(False, {**env, key: False})
        known = if_true if _same(if_true, if_false) else [_if(test, if_true, if_false)]
        if not guards:
            return known
        if_unknown = k(None, {**env, key: None})
        if _same(known, if_unknown):
            return known
        return [_if(_and(guards), known, if_unknown)]

    def _kleene_leaf(self, whole: n.Expr, env: dict[int, bool | None], rule: RuleInfo,
                     granted: list[ast.stmt], target: str) -> list[ast.stmt]:
        value = _static_value(whole, env)
        if value is True:
            return copy.deepcopy(granted)
        if value is False:
            part = whole
            while isinstance(part, n.And):
                part = next(i for i in part.items if _static_value(i, env) is False)
            return self.set_failure(target, ("not_in_subset", rule, part))
        part = whole
        while isinstance(part, (n.And, n.Or, n.Not)):
            part = part.operand if isinstance(part, n.Not) else \
                next(i for i in part.items if _static_value(i, env) is None)
        return self.unknown_part(part, rule, target)

    def _conjunction(self, atoms: list[n.Expr], i: int, unknown: n.Expr | None, rule: RuleInfo,
                     granted: list[ast.stmt], target: str) -> list[ast.stmt]:
        """Atoms ``i`` onwards, all before true, or ``unknown`` the first unknown one."""
        if i == len(atoms):
            return granted if unknown is None else self.unknown_part(unknown, rule, target)
        a = atoms[i]
        if not rt.atom_is_typed(a, self.req.subject):  # unknown for every student
            return self._conjunction(atoms, i + 1, unknown or a, rule, granted, target)
        if unknown is not None:  # the outcome is unknown unless a later atom is false
            return [_if(self.atom(a, False), self.false_part(a, rule, target),
                        self._conjunction(atoms, i + 1, unknown, rule, granted, target))]
        guards, test = self.atom_split(a, True)
        known = _if(test, self._conjunction(atoms, i + 1, None, rule, granted, target),
                    self.false_part(a, rule, target))
        if not guards:
            return [known]
        return [_if(_and(guards), [known], self._conjunction(atoms, i + 1, a, rule, granted, target))]

    def consent_status(self, topic: str) -> ast.expr:
        """``_consent(s, topic, reconfirm_at_16, day, _zone)``: the CONSENT_* code of a consent topic."""
        info = self.req.engine.model.consents.get(topic)
        return _call("_consent", _name("s"), _const(topic), _const(bool(info and info.reconfirm_at_16)), _name("day"),
                     _name("_zone"))

    # -- one group of fields -----------------------------------------------------

    def group_body(self, group: _Group, emit: Callable[[Outcome], list[ast.stmt]]) -> list[ast.stmt]:
        """Statements deciding one group; every path ends in ``emit(outcome)`` (a return)."""
        req = self.req
        rep = req.representative(self.epoch)
        body: list[ast.stmt] = []
        forbids = [r for r in group.forbids if r.window.contains_date(rep)]
        if forbids and all(r.condition is None for r in forbids):
            return emit(tuple(req.spec_id(("forbidden", r, None)) for r in forbids))
        if forbids:
            # fast test: every forbid's condition is false; otherwise collect their reasons
            slow: list[ast.stmt] = [_assign("_r", _const(()))]
            for r in forbids:
                forbidden = req.spec_id(("forbidden", r, None))
                if r.condition is None:
                    slow.append(_append("_r", _const((forbidden,))))
                    continue
                unknown = self.unknown_part(r.condition, r, "_x")
                unknown.append(_append("_r", ast.Tuple(elts=[_const(forbidden), _name("_x")], ctx=ast.Load())))
                slow.append(_if(self.truth(r.condition, True), [_append("_r", _const((forbidden,)))],
                                [_if(_not(self.truth(r.condition, False)), unknown)]))
            slow.extend(emit(_name("_r")))
            none_applies = _and([self.truth(r.condition, False) if r.condition is not None else _const(False)
                                 for r in forbids])
            body.append(_if(_not(none_applies), slow))
        if not group.permits:
            return body + emit((req.spec_id(rt.NO_PERMIT),))
        if req.left is not None:
            body.extend(self.left_check(emit))
        return body + self.permits(group.permits, 0, None, (), emit)

    def left_check(self, emit: Callable[[Outcome], list[ast.stmt]]) -> list[ast.stmt]:
        """Spec 7.7: a student whose ``left`` date is before the day is outside every permit
        (``left_school`` naming the date); an ill-typed date is unknown (``missing_attribute``)."""
        req = self.req
        assert req.left is not None
        bind = ast.NamedExpr(target=_store("_l"), value=_get(req.left))
        # an ill-typed date: missing_attribute naming its type (``_miss`` reads it from the record)
        unknown = emit(ast.Tuple(elts=[_call("_miss", _const(req.spec_id(("missing_attribute", None, (req.left,)))),
                                             _name("s"))], ctx=ast.Load()))
        gone = emit(ast.Tuple(elts=[_call("_leftspec", _name("_l"))], ctx=ast.Load()))
        converted = ast.Compare(left=ast.NamedExpr(target=_store("_l"), value=_call("_cdate", _name("_l"))),
                                ops=[ast.Is()], comparators=[_const(None)])
        return [_if(ast.Compare(left=bind, ops=[ast.IsNot()], comparators=[_const(None)]), [
            _if(ast.Compare(left=_call("_type", _name("_l")), ops=[ast.IsNot()], comparators=[_name("_date")]),
                [_if(converted, unknown)]),
            _if(ast.Compare(left=_name("_l"), ops=[ast.Lt()], comparators=[_name("day")]), gone)])]

    def in_window(self, permits: list[_Permit]) -> tuple[list[int], list[int]]:
        """(indices of the permits in this epoch's window, then ``len(permits)``; per permit, the spec id
        of its ``outside_window`` reason (-1 for one in window)), worked out once per group and epoch."""
        found = self._windows.get(id(permits))
        if found is None or found[0] is not permits:
            in_force = self.req.in_force(self.epoch)
            live = [k for k, (r, _, _) in enumerate(permits) if id(r) in in_force]
            found = self._windows[id(permits)] = (permits, [*live, len(permits)], self.req.outside_ids(permits))
        return found[1], found[2]

    def permits(self, permits: list[_Permit], i: int, dynamic: str | None,
                failures: tuple[int, ...], emit: Callable[[Outcome], list[ast.stmt]]) -> list[ast.stmt]:
        """Permit ``i`` onwards; the failures so far are local ``dynamic`` (if set) + ``failures``.

        Continuation style: while every failure so far is known at compile time, a failing
        leaf whose later permits are all out of window emits a prebuilt outcome directly.
        Permits out of this epoch's window add their static failure in a loop (no recursion, and
        no rescan of the later permits: a policy of 1,000 windows costs linear time per epoch)."""
        req = self.req
        live, outside = self.in_window(permits)

        def so_far(extra: ast.expr | None = None) -> ast.expr:
            parts: list[ast.expr] = [_name(dynamic)] if dynamic else []
            if len(failures) > PREBUILT_SPECS:  # one constant, not a node per spec id
                parts.append(_name(req.value(failures)))
                if extra is not None:
                    parts.append(ast.Tuple(elts=[extra], ctx=ast.Load()))
            else:
                tail: list[ast.expr] = [_const(x) for x in failures] + ([extra] if extra is not None else [])
                if tail:
                    parts.append(ast.Tuple(elts=tail, ctx=ast.Load()))
            if not parts:
                return _const(())
            out = parts[0]
            for p in parts[1:]:
                out = ast.BinOp(left=out, op=ast.Add(), right=p)
            return out

        j = live[bisect.bisect_left(live, i)]  # the next permit in window (len(permits) if none)
        if j > i:
            failures = (*failures, *outside[i:j])
            i = j
        if i == len(permits):
            return emit(so_far() if dynamic else failures)
        r, transform, topics = permits[i]
        later_static = live[bisect.bisect_right(live, i)] == len(permits)
        suffix = tuple(outside[i + 1:]) if later_static else ()

        def fail_static(spec_id: int | ast.expr) -> list[ast.stmt] | None:
            """Emit directly when every other failure of the outcome is known here (``spec_id`` is
            a spec id, or an expression giving one at run time); None otherwise."""
            if later_static and dynamic is None:
                if isinstance(spec_id, ast.expr):
                    return emit(req.around(failures, spec_id, suffix))
                return emit((*failures, spec_id, *suffix))
            return None

        allowed = req.spec_id(("permitted", r, (transform, self.covering)))

        def consents(todo: tuple[str, ...], informs: tuple[int, ...]) -> list[ast.stmt]:
            """Check each consent topic in turn (``_c`` is the latest status); grant after the last."""
            if not todo:
                return emit((allowed, *informs))
            topic = todo[0]
            no_consent = [req.spec_id(("no_consent", r, (c, topic))) for c in rt.CONSENT_STATUSES]
            failed: list[ast.stmt]
            # an unusable consent: its reason says what is wrong with it (``_cspec``, run time)
            invalid = _call("_cspec", _const(no_consent[rt.CONSENT_INVALID]), _name("s"))
            valid = (rt.CONSENT_OK, rt.CONSENT_INFORM, rt.CONSENT_INVALID)
            if later_static and dynamic is None:
                failed = emit(_Table(tuple(None if c in valid else (*failures, x, *suffix)
                                           for c, x in zip(rt.CONSENT_STATUSES, no_consent, strict=True)),
                                     _name("_c")))
                unusable = emit(req.around(failures, invalid, suffix))
            else:
                failed = [_assign("_x", ast.Subscript(value=_const(tuple(no_consent)), slice=_name("_c"),
                                                     ctx=ast.Load()))]
                unusable = [_assign("_x", invalid)]
            failed = [_if(ast.Compare(left=_name("_c"), ops=[ast.Eq()], comparators=[_const(rt.CONSENT_INVALID)]),
                          unusable, failed)]
            inform = req.spec_id(("inform_student", r, topic))
            return [_assign("_c", self.consent_status(topic)),
                    _if(ast.Compare(left=_name("_c"), ops=[ast.Eq()], comparators=[_const(rt.CONSENT_OK)]),
                        consents(todo[1:], informs),
                        [_if(ast.Compare(left=_name("_c"), ops=[ast.Eq()], comparators=[_const(rt.CONSENT_INFORM)]),
                             consents(todo[1:], (*informs, inform)), failed)])]

        granted = consents(topics, ())
        body: list[ast.stmt]
        if r.condition is None:
            if not topics:
                return granted  # this permit always grants: later permits are unreachable
            body = granted
        else:
            self.leaf = fail_static
            body = self.condition(r.condition, r, granted, "_x")
            self.leaf = None
        if later_static and dynamic is None:
            return body  # every path above returns
        # failing paths fall through with the failure id in x
        name = f"_f{i}"
        return [*body, _assign(name, so_far(_name("_x"))), *self.permits(permits, i + 1, name, (), emit)]

    # -- the epoch function ------------------------------------------------------

    def parts(self) -> tuple[list[ast.stmt], list[ast.stmt]]:
        """(group function definitions, the statements deciding this epoch over ``s`` and ``day``)."""
        req = self.req
        rep = req.representative(self.epoch)
        agreed = [req.agreement_outcome(g, rep) for g in req.groups]
        dynamic = [g for g, (fixed, _) in zip(req.groups, agreed, strict=True) if fixed is None]
        fname = f"_epoch_{self.epoch}"
        doc = _const(f"decide {req.partner}/{req.purpose} on local days {req.epoch_text(self.epoch)}")
        args = ast.arguments(posonlyargs=[], args=[ast.arg(arg="s"), ast.arg(arg="day")], vararg=None,
                             kwonlyargs=[], kw_defaults=[], kwarg=None, defaults=[])
        defs: list[ast.stmt] = []
        body: list[ast.stmt] = [ast.Expr(value=doc)]

        if not dynamic:
            key = req.key([fixed for fixed, _ in agreed])
            body.append(ast.Return(value=_name(req.value(req.decision(key)))))
        else:
            not_mapping = req.key([fixed if fixed is not None else (req.spec_id(rt.NOT_MAPPING_SPEC),)
                                   for fixed, _ in agreed])
            body.append(_record_guard(ast.Return(value=_name(req.value(req.decision(not_mapping))))))
            if len(req.groups) == 1:
                def emit_single(outcome: Outcome) -> list[ast.stmt]:
                    # A short outcome's Decision is built now and returned as a constant; a long one
                    # (a reason per permit out of window, say) only on first use, then memoised: building
                    # them all up front made the first decision of a request cost many interpreted ones.
                    if isinstance(outcome, tuple):
                        if len(outcome) > PREBUILT_SPECS:
                            return [ast.Return(value=_memoised(_name(req.value(outcome))))]
                        return [ast.Return(value=_name(req.value(req.decision(outcome))))]
                    if isinstance(outcome, _Table) and any(o is not None and len(o) > PREBUILT_SPECS
                                                           for o in outcome.outcomes):
                        return [ast.Return(value=_memoised(ast.Subscript(value=_name(req.value(outcome.outcomes)),
                                                                         slice=outcome.index, ctx=ast.Load())))]
                    if isinstance(outcome, ast.expr) and _names_types(outcome):  # rare: kept short
                        return [ast.Return(value=_call("_decision", outcome))]
                    if isinstance(outcome, _Table):
                        table = tuple(None if o is None else req.decision(o) for o in outcome.outcomes)
                        return [ast.Return(value=ast.Subscript(value=_name(req.value(table)), slice=outcome.index,
                                                               ctx=ast.Load()))]
                    return [ast.Return(value=_memoised(outcome))]
                self.covering = agreed[0][1]
                body.extend(self.group_body(req.groups[0], emit_single))
            else:
                def emit_multi(outcome: Outcome) -> list[ast.stmt]:
                    if isinstance(outcome, _Table):
                        return [ast.Return(value=ast.Subscript(value=_name(req.value(outcome.outcomes)),
                                                               slice=outcome.index, ctx=ast.Load()))]
                    if isinstance(outcome, tuple):  # a long one is a name: no ast node per spec id
                        return [ast.Return(value=_const(outcome) if len(outcome) <= PREBUILT_SPECS
                                           else _name(req.value(outcome)))]
                    return [ast.Return(value=outcome)]
                parts: list[ast.expr] = []
                for i, (g, (fixed, covering)) in enumerate(zip(req.groups, agreed, strict=True)):
                    if fixed is not None:
                        parts.append(_const(fixed))
                        continue
                    self.tmp = itertools.count()
                    self.covering = covering
                    gbody = self.group_body(g, emit_multi)
                    if len(gbody) == 1 and isinstance(gbody[0], ast.Return) and (
                            isinstance(gbody[0].value, ast.Constant)
                            or (isinstance(gbody[0].value, ast.Name) and gbody[0].value.id.startswith("_v"))):
                        parts.append(gbody[0].value)  # decided without looking at the student
                        continue
                    gname = f"{fname}_group_{i}"
                    defs.append(ast.FunctionDef(name=gname, args=args, body=[
                        ast.Expr(value=_const(f"fields {', '.join(g.fields)}")),
                        *gbody], decorator_list=[], returns=None))
                    parts.append(_call(gname, _name("s"), _name("day")))
                body.append(ast.Return(value=_memoised(ast.Tuple(elts=parts, ctx=ast.Load()))))
        return defs, body


# ---------------------------------------------------------------------------
# filter: decide and project in one pass

class _FilterGen(_Gen):
    """Builds ``rows(students, day)``, the generator ``Policy.filter`` runs for one epoch.

    ``filter`` needs only whether each field is allowed and under which transform, not the
    reasons, so each group of fields is decided to a small int: 0 when denied, else the
    1-based index of the permit that grants (it picks the transform). A field is allowed
    exactly when ``decide`` would allow it: the agreement is in force, every forbid in
    window is known false, and some permit in window has a true condition and (for consent)
    valid consent; the first such permit grants. The row is then built in request order,
    each value guarded by its exact type, with the transform applied. Tests hold it to
    ``decide`` field by field (tests/test_deep.py)."""

    def filter_function(self, report: bool = False) -> ast.Module | None:
        """The module defining ``rows``, or None when no field can be allowed in this epoch.

        With ``report``, ``rows(students, day, _rep)`` also fills a FilterReport: a student left
        out is counted with its reasons (the held check decides it: only such students pay for
        it), a student sent marks, per group, the permit that granted (a bit in ``_mN``); the
        counts are handed over when the loop ends (``_flush``, in a ``finally``)."""
        req = self.req
        rep = req.representative(self.epoch)
        decided: list[ast.stmt] = []
        flags: dict[int, tuple[str | None, list[RuleInfo]]] = {}
        for gi, g in enumerate(req.groups):
            if req.agreement_outcome(g, rep)[0] is not None:
                continue  # unknown name, or no agreement in force covers these fields
            forbids = [r for r in g.forbids if r.window.contains_date(rep)]
            in_window = [(r, topics) for r, _, topics in g.permits if r.window.contains_date(rep)]
            if not in_window or any(r.condition is None for r in forbids):
                continue
            permits = [r for r, _ in in_window]
            flag = f"_g{gi}"
            chain: list[tuple[ast.expr, list[ast.stmt]]] = []
            always: list[ast.stmt] | None = None
            for j, (r, topics) in enumerate(in_window, 1):
                tests = [] if r.condition is None else [self.truth(r.condition, True)]
                tests.extend(self.consent_valid(topic) for topic in topics)
                if not tests:
                    always = [_assign(flag, _const(j))]
                    permits = permits[:j]
                    break
                chain.append((_and(tests), [_assign(flag, _const(j))]))
            if not forbids and not chain:  # granted to every student: no flag needed
                flags[gi] = (None, permits)
                continue
            grant = _chain(chain, always or [])
            if forbids:
                grant = [_if(_and([self.truth(r.condition, False) for r in forbids if r.condition is not None]),
                             grant)]
            decided.extend([_assign(flag, _const(0)), *grant])
            flags[gi] = (flag, permits)
        if not flags:
            return None
        # the row, in request order; consecutive fields under the same flag share one test
        blocks: list[tuple[Any, list[ast.stmt]]] = []
        for f, gi in zip(req.fields, req.group_of, strict=True):
            if gi not in flags:
                continue
            flag, permits = flags[gi]
            by_transform: dict[str | None, list[int]] = {}
            for j, r in enumerate(permits, 1):
                grant = r.grant_for(f)
                assert grant is not None
                by_transform.setdefault(grant.transform, []).append(j)
            if flag is None or len(by_transform) == 1:
                stmts = self.project(f, next(iter(by_transform)))
                if blocks and blocks[-1][0] == flag:
                    blocks[-1][1].extend(stmts)
                else:
                    blocks.append((flag, stmts))
                continue
            assert flag is not None
            blocks.append((None, _chain([(ast.Compare(left=_name(flag), ops=[ast.In()],
                                                      comparators=[_const(tuple(js))]),
                                          self.project(f, t)) for t, js in by_transform.items()], [])))
        project: list[ast.stmt] = [_assign("_row", ast.Dict(keys=[], values=[]))]
        for flag, stmts in blocks:
            project.extend(stmts if flag is None else [_if(_name(flag), stmts)])
        marks = [flag for flag, _ in flags.values() if flag is not None]
        left_out: list[ast.stmt] = []
        if report:
            req.filter_groups[self.epoch] = [(gi, flag, permits) for gi, (flag, permits) in flags.items()]
            left_out = [ast.Expr(value=_call("_out", _name("_rep"), _name("s"), _name("day")))]
            sent: list[ast.stmt] = [ast.AugAssign(target=_store("_sent"), op=ast.Add(), value=_const(1))]
            sent += [ast.AugAssign(target=_store(f"_m{flag}"), op=ast.BitOr(),
                                   value=ast.BinOp(left=_const(1), op=ast.LShift(), right=_name(flag)))
                     for flag in marks]
            project.append(_if(_name("_row"), [*sent, ast.Expr(value=ast.Yield(value=_name("_row")))], left_out))
        else:
            project.append(_if(_name("_row"), [ast.Expr(value=ast.Yield(value=_name("_row")))]))
        left: list[ast.stmt] = []
        if req.left is not None:  # a student who left gets no field (every grant is a permit's)
            # _l is not None and (_l < day if type(_l) is date else ((_l := _cdate(_l)) is None or _l < day))
            bind = ast.NamedExpr(target=_store("_l"), value=_get(req.left))
            before = ast.Compare(left=_name("_l"), ops=[ast.Lt()], comparators=[_name("day")])
            unusable = ast.Compare(left=ast.NamedExpr(target=_store("_l"), value=_call("_cdate", _name("_l"))),
                                   ops=[ast.Is()], comparators=[_const(None)])
            left = [_if(_and([ast.Compare(left=bind, ops=[ast.IsNot()], comparators=[_const(None)]), ast.IfExp(
                test=ast.Compare(left=_call("_type", _name("_l")), ops=[ast.Is()], comparators=[_name("_date")]),
                body=before, orelse=_or([unusable, copy.deepcopy(before)]))]),
                [*left_out, ast.Continue()])]
        if report:  # keep the record as given, for the held check's reasons
            guard = _if(ast.Compare(left=_call("_type", _name("s")), ops=[ast.IsNot()], comparators=[_name("_dict")]),
                        [_assign("_o", _name("s")), _assign("s", _call("_record", _name("s"))),
                         _if(ast.Compare(left=_name("s"), ops=[ast.Is()], comparators=[_const(None)]),
                             [ast.Expr(value=_call("_out", _name("_rep"), _name("_o"), _name("day"))),
                              ast.Continue()])])
        else:
            guard = _record_guard(ast.Continue())
        loop: list[ast.stmt] = [ast.For(target=_store("s"), iter=_name("students"),
                                        body=[guard, *left, *decided, *project], orelse=[])]
        params = ["students", "day"] + (["_rep"] if report else [])
        args = ast.arguments(posonlyargs=[], args=[ast.arg(arg=a) for a in params], vararg=None,
                             kwonlyargs=[], kw_defaults=[], kwarg=None, defaults=[])
        doc = _const(f"filter {req.partner}/{req.purpose} for fields {', '.join(req.fields)} "
                     f"on local days {req.epoch_text(self.epoch)}" + (", filling a FilterReport" if report else ""))
        if report:
            flush = ast.Expr(value=_call("_flush", _name("_rep"), _const(self.epoch), _name("_sent"),
                                         ast.Tuple(elts=[_name(f"_m{flag}") for flag in marks], ctx=ast.Load())))
            loop = [_assign("_sent", _const(0)), *(_assign(f"_m{flag}", _const(0)) for flag in marks),
                    ast.Try(body=loop, handlers=[], orelse=[], finalbody=[flush])]
        return _locate(ast.Module(body=[
            ast.FunctionDef(name="rows", args=args, body=[ast.Expr(value=doc), *loop], decorator_list=[],
                            returns=None)], type_ignores=[]))

    def consent_valid(self, topic: str) -> ast.expr:
        """Whether the student's consent for ``topic`` is valid (with or without inform_student)."""
        return ast.Compare(left=self.consent_status(topic), ops=[ast.In()],
                           comparators=[_const((rt.CONSENT_OK, rt.CONSENT_INFORM))])

    def project(self, ref: str, transform: str | None) -> list[ast.stmt]:
        """Put field ``ref`` into ``_row`` when its value is well-typed (after ``transform``)."""
        req = self.req
        info = req.engine.model.catalogue.fields[ref]
        bind = ast.NamedExpr(target=_store("_v"), value=_get(req.engine.model.catalogue.record_key(ref)))
        if info.type == "set":
            guard: ast.expr = _call("_strset", bind)
        elif info.type in _TYPE_NAMES:
            guard = _typed(bind, "_v", info.type)  # the converted value is the one released
        else:
            guard = ast.Compare(left=_call("_type", bind), ops=[ast.Is()],
                                comparators=[_name(req.value(rt.exact_type(info.type)))])
        put = ast.Subscript(value=_name("_row"), slice=_const(ref), ctx=ast.Store())
        if transform is None:
            return [_if(guard, [ast.Assign(targets=[put], value=_name("_v"))])]
        if transform == "year" and info.type == "date":
            return [_if(guard, [ast.Assign(targets=[put], value=ast.Attribute(value=_name("_v"), attr="year",
                                                                               ctx=ast.Load()))])]
        fn: Any = year_of if transform == "year" else \
            req.engine.pseudonym_function(req.partner, ref) if transform == "pseudonym" else None
        if fn is None:  # a pseudonym without a key: never sent (filter refuses such a request before)
            return []
        made = ast.NamedExpr(target=_store("_w"), value=_call(req.value(fn), _name("_v")))
        return [_if(_and([guard, ast.Compare(left=made, ops=[ast.IsNot()], comparators=[_const(None)])]),
                    [ast.Assign(targets=[put], value=_name("_w"))])]


# ---------------------------------------------------------------------------
# a compiled request

#: a permit of a group: the rule, the transform of the group's first field, the consent topics it needs
_Permit = tuple[RuleInfo, str | None, tuple[str, ...]]


class _Group:
    """Fields decided by the same rules and covered by the same agreements (transforms may differ):
    decided once per call."""

    def __init__(self, fields: list[str], static: tuple[int, ...] | None, forbids: list[RuleInfo],
                 permits: list[_Permit], coverage: frozenset[int] = frozenset()) -> None:
        self.fields = fields
        self.static = static
        self.forbids = forbids
        self.permits = permits
        self.coverage = coverage  # indices of the partner's agreements that cover these fields


class _Request:
    def __init__(self, engine: EngineContext, partner: str, purpose: str, fields: Sequence[str]) -> None:
        self.engine = engine
        self.partner = partner
        self.purpose = purpose
        self.fields = list(dict.fromkeys(fields))
        model = engine.model
        self.subject: dict[str, FieldInfo] = dict(model.catalogue.subject_fields)
        self.known_partner = partner in model.partners
        self.agreements = model.partners[partner].agreements if self.known_partner else ()
        self.left = rt.left_applies(model, purpose) if purpose in model.purposes else None
        zone = engine.zone
        self.namespace: dict[str, Any] = {
            "__builtins__": {}, "_type": type, "_str": str, "_int": int, "_bool": bool, "_date": datetime.date,
            "_dict": dict, "_record": rt.as_record, "_age": rt.age_function(zone), "_strset": rt.is_str_set,
            "_consent": rt.consent_status, "_decision": self.lookup, "_zone": zone,
            "_cint": rt.converter("int", zone), "_cdate": rt.converter("date", zone),
            "_miss": self.missing_spec, "_cspec": self.consent_spec}
        self.types = rt.attribute_types(model.catalogue.subject_fields)
        self._dynamic: dict[Any, int] = {}
        self._by_types: dict[Any, int] = {}
        self.memo: dict[Any, Decision] = {}
        self.namespace["_memoget"] = self.memo.get
        self._values: dict[int, str] = {}
        self._keep: list[Any] = []
        self.specs: list[rt.Spec] = []
        self._spec_ids: dict[Any, int] = {}
        # group the fields by the rules that decide them
        groups: dict[Any, _Group] = {}
        seen: dict[int, RuleInfo] = {}  # every rule of the request, once
        #: (rule, first day, last day) of each rule of the request (see ``in_force``)
        self._spans: list[tuple[RuleInfo, datetime.date | None, datetime.date | None]] = []
        # the local dates where a window begins or ends (the day after its last); a dict keeps the order
        # the windows come in, often nearly sorted: sorting it is then about linear
        bounds: dict[datetime.date, None] = {}
        day, last = datetime.timedelta(days=1), datetime.date.max
        for w in (a.window for a in self.agreements):
            if w.start is not None:
                bounds[w.start] = None
            if w.end is not None and w.end < last:
                bounds[w.end + day] = None
        self.group_of: list[int] = []
        index: dict[Any, int] = {}
        about = engine.rules_for(partner, purpose)
        for f in self.fields:
            static = rt.static_specs(model, partner, purpose, f)
            if static:
                sig: Any = ("static", static)
                group = groups.get(sig) or _Group([], tuple(self.spec_id(s) for s in static), [], [])
            else:
                forbids: list[RuleInfo] = []
                permits: list[_Permit] = []
                for r in about:  # rt.covers (partner and purpose matched already), in one pass
                    g = r.grant_for(f)
                    if g is None:
                        continue
                    if id(r) not in seen:
                        seen[id(r)] = r
                        start, end = r.window.start, r.window.end
                        self._spans.append((r, start, end))
                        if start is not None:
                            bounds[start] = None
                        if end is not None and end < last:
                            bounds[end + day] = None
                    if r.effect == "forbid":
                        forbids.append(r)
                    else:  # rt.consent_topics is () unless the permit has a consent basis or an art9 topic
                        permits.append((r, g.transform, rt.consent_topics(model, r, f)
                                        if r.basis == "consent" or r.art9_topic is not None else ()))
                coverage = frozenset(i for i, a in enumerate(self.agreements) if rt.agreement_covers(a, purpose, f))
                # transforms are per-field data of the outcome (see ``decision``), not part of the test
                sig = (tuple(r.name for r in forbids), tuple((r.name, topics) for r, _, topics in permits), coverage) \
                    if len(self.fields) > 1 else "one field"
                group = groups.get(sig) or _Group([], None, forbids, permits, coverage)
            groups[sig] = group
            group.fields.append(f)
            self.group_of.append(index.setdefault(sig, len(index)))
        self.groups = list(groups.values())
        #: every rule of the request, once (see ``in_force``)
        self.rules = list(seen.values())
        self._in_force: dict[int, tuple[frozenset[int], list[RuleInfo]]] = {}
        #: id(rule) -> how many groups it decides (None: one group)
        self._groups_of: dict[int, int] | None = None
        if len(self.groups) > 1:
            self._groups_of = {}
            for g in self.groups:
                for r in {id(r): r for r in (*g.forbids, *(p for p, _, _ in g.permits))}.values():
                    self._groups_of[id(r)] = self._groups_of.get(id(r), 0) + 1
        self._outside: dict[int, tuple[list[_Permit], list[int]]] = {}
        self.boundaries = sorted(bounds)
        # epoch -> its function ``check(s, at=None)`` (generated on first use); found by bisecting the
        # boundaries, so a moment costs O(log epochs) and each epoch's code is generated once
        self.table: list[Any] = [None] * (len(self.boundaries) + 1)
        self.hot = -1  # the epoch whose code the held function runs now
        self.shown: list[str] = []  # sources of the first SHOWN_EPOCHS epochs, for ``check.source``
        self.check: Any = None
        self.namespace.update(_last=(_NOTHING, None, -1), _resolve=self.resolve, _table=self.table,
                              _interpret=self.interpret, _leftspec=self.left_spec, _out=self.left_out,
                              _flush=self.flush)
        self.filter_groups: dict[int, list[tuple[int, str | None, list[RuleInfo]]]] = {}
        self._left_specs: dict[datetime.date, int] = {}
        self.lock = threading.Lock()
        self.serial = next(_serial)
        self.filenames: list[str] = []
        # epoch -> rows(students, day), or None: use the held check; (epoch, True) -> the report variant
        self.filters: dict[Any, Any] = {}

    # -- namespace and specs -----------------------------------------------------

    def value(self, v: Any) -> str:
        """A generated namespace name holding ``v`` (one name per object)."""
        name = self._values.get(id(v))
        if name is None:
            name = f"_v{len(self._values)}"
            self._values[id(v)] = name
            self._keep.append(v)  # keeps id(v) unique while the request lives
            self.namespace[name] = v
        return name

    def spec_id(self, spec: rt.Spec) -> int:
        code, rule, detail = spec
        key = (code, rule.name if rule else None, id(detail) if isinstance(detail, n.Node) else detail)
        sid = self._spec_ids.get(key)
        if sid is None:
            sid = self._spec_ids[key] = len(self.specs)
            self.specs.append(spec)
        return sid

    def around(self, before: tuple[int, ...], sid: ast.expr, after: tuple[int, ...]) -> ast.expr:
        """An outcome whose one run-time spec id ``sid`` sits between static ones: ``before + (sid,) +
        after``, a long static part as a name (no ast node per spec id)."""
        out: ast.expr = ast.Tuple(elts=[sid], ctx=ast.Load())
        if before:
            out = ast.BinOp(left=self.ids(before), op=ast.Add(), right=out)
        if after:
            out = ast.BinOp(left=out, op=ast.Add(), right=self.ids(after))
        return out

    def ids(self, ids: tuple[int, ...]) -> ast.expr:
        """Spec ids in the code: a constant tuple, or a name when long."""
        return _const(ids) if len(ids) <= PREBUILT_SPECS else _name(self.value(ids))

    def dynamic_spec(self, key: Any, spec: rt.Spec) -> int:
        """The id of a spec made at run time from the student's data (registered on first use)."""
        sid = self._dynamic.get(key)
        if sid is None:
            with self.lock:
                sid = self._dynamic[key] = self.spec_id(spec)
        return sid

    def missing_spec(self, sid: int, s: dict[Any, Any]) -> int:
        """``_miss``: the missing_attribute spec ``sid`` naming, for each of its attributes the record
        holds a value for, that value's type and the declared one (``runtime.missing_detail``).

        What a reason says of an unusable value depends only on its type, so the answer is kept by
        (spec, the ids of the values' types; hashing an id runs no code of the student's, and the
        request keeps the types alive, so an id is never reused): a batch with the same flaw over
        and over pays one dict lookup per student."""
        attrs = self.specs[sid][2]
        get = s.get
        key = (sid, id(type(get(attrs[0])))) if len(attrs) == 1 else (sid, *[id(type(get(a))) for a in attrs])
        found = self._by_types.get(key)
        if found is not None:
            return found  # type: ignore[no-any-return]
        detail = rt.missing_detail(attrs, s, self.types)
        found = sid if detail == attrs else self.dynamic_spec((sid, detail), ("missing_attribute", self.specs[sid][1],
                                                                             detail))
        if len(self._by_types) < MEMO_LIMIT:
            with self.lock:
                self._keep.append([type(get(a)) for a in attrs])  # the ids in the key stay these types'
                self._by_types[key] = found
        return found

    def consent_spec(self, sid: int, s: dict[Any, Any]) -> int:
        """``_cspec``: the no_consent spec ``sid`` (CONSENT_INVALID) saying what is wrong with the consent."""
        code, rule, (status, topic) = self.specs[sid]
        problem = rt.consent_problem(s, topic, self.engine.zone)
        return self.dynamic_spec((sid, problem), (code, rule, (status, topic, problem)))

    def left_spec(self, day: datetime.date) -> int:
        """The spec id of ``left_school`` naming ``day`` (registered on first use: a student's date
        is run-time data, like the types ``missing_spec`` and the problems ``consent_spec`` name)."""
        sid = self._left_specs.get(day)
        if sid is None:
            with self.lock:
                sid = self._left_specs[day] = self.spec_id(("left_school", None, day))
        return sid

    def agreement_outcome(self, group: _Group, day: datetime.date) -> tuple[tuple[int, ...] | None, tuple[Any, ...]]:
        """(the group's outcome when it is fixed on ``day`` without looking at the student, or None;
        the agreements in force that cover its fields). Spec 7.3: agreement_inactive when none of
        the partner's agreements is in force, outside_agreement when none in force covers them."""
        if group.static is not None:
            return group.static, ()
        if not self.agreements:
            return None, ()
        in_force = [i for i, a in enumerate(self.agreements) if a.window.contains_date(day)]
        if not in_force:
            return (self.spec_id(rt.AGREEMENT_INACTIVE),), ()
        covering = tuple(self.agreements[i] for i in in_force if i in group.coverage)
        if not covering:
            return (self.spec_id(("outside_agreement", None, tuple(self.agreements[i] for i in in_force))),), ()
        return None, covering

    def key(self, outcomes: list[tuple[int, ...]]) -> Any:
        return outcomes[0] if len(self.groups) == 1 else tuple(outcomes)

    def decision(self, key: Any) -> Decision:
        """The Decision for an outcome key (one spec-id tuple, or one per group)."""
        outcomes = (key,) if len(self.groups) == 1 else key
        fds = tuple(rt.field_decision(f, tuple(self.field_spec(self.specs[i], f) for i in outcomes[gi]),
                                      self.partner, self.purpose)
                    for f, gi in zip(self.fields, self.group_of, strict=True))
        return Decision.of(fds, policy_version=self.engine.version, partner=self.partner, purpose=self.purpose)

    @staticmethod
    def field_spec(spec: rt.Spec, field: str) -> rt.Spec:
        """A group's spec for one of its fields: ``permitted`` carries that field's transform
        (fields of a group share their rules, not necessarily their transforms)."""
        code, rule, detail = spec
        if code == "permitted":
            assert rule is not None
            grant = rule.grant_for(field)
            assert grant is not None
            return (code, rule, (grant.transform, detail[1]))
        return spec

    def lookup(self, key: Any) -> Decision:
        d = self.memo.get(key)
        if d is None:
            d = self.decision(key)
            if len(self.memo) < MEMO_LIMIT:
                self.memo[key] = d
        return d

    # -- epochs ------------------------------------------------------------------

    def too_large(self, epoch: int) -> bool:
        """Whether the conditions in force in ``epoch`` are too large to generate code for: one over
        MAX_GENERATED_ATOMS, or more than REQUEST_ATOM_BUDGET atoms in all (the forbids and permits in
        window, of every group); such an epoch is decided by the reference interpreter. Rules out of the
        epoch's window generate no code, so they count for nothing (issue 15: a year of monthly rules)."""
        self.in_force(epoch)
        left = REQUEST_ATOM_BUDGET
        for r in self._in_force[epoch][1]:
            if r.condition is None:
                continue
            size = _atom_count(r.condition, min(left, MAX_GENERATED_ATOMS))  # (stops past either limit)
            if size > MAX_GENERATED_ATOMS:
                return True
            # a rule deciding several groups of fields is generated once per group
            size *= 1 if self._groups_of is None else self._groups_of[id(r)]
            if size > left:
                return True
            left -= size
        return False

    def in_force(self, epoch: int) -> frozenset[int]:
        """The ids of the request's rules whose window holds ``epoch`` (worked out once per epoch; the
        rules themselves are ``_in_force[epoch][1]``)."""
        found = self._in_force.get(epoch)
        if found is None:
            rep = self.representative(epoch)  # WindowInfo.contains_date, inlined
            live = [r for r, start, end in self._spans
                    if (start is None or start <= rep) and (end is None or rep <= end)]
            found = self._in_force[epoch] = (frozenset(map(id, live)), live)
        return found[0]

    def outside_ids(self, permits: list[_Permit]) -> list[int]:
        """The spec id of each permit's ``outside_window`` reason (the same in every epoch: registered once
        per request; an epoch uses those of its permits out of window)."""
        found = self._outside.get(id(permits))
        if found is None or found[0] is not permits:
            # a block of new ids, without ``spec_id``'s look-up (a policy of 1,000 windows has 500 of these;
            # a spec registered twice has two ids, which only means two equal Decisions may be built)
            base = len(self.specs)
            self.specs.extend([("outside_window", r, None) for r, _, _ in permits])
            found = self._outside[id(permits)] = (permits, list(range(base, len(self.specs))))
        return found[1]

    def representative(self, epoch: int) -> datetime.date:
        return self.boundaries[epoch - 1] if epoch > 0 else datetime.date.min

    def epoch_text(self, epoch: int) -> str:
        start = self.boundaries[epoch - 1].isoformat() if epoch > 0 else "..."
        end = (self.boundaries[epoch] - datetime.timedelta(days=1)).isoformat() \
            if epoch < len(self.boundaries) else "..."
        return f"{start} to {end}"

    def specialise(self, epoch: int) -> None:
        """Generate the code of ``epoch`` once: a module defining ``check(s, at=None)`` for that epoch
        alone (its prologue resolves ``at``; a call for another epoch goes to ``_table[_e]``)."""
        with self.lock:
            if self.table[epoch] is not None:
                return
            try:
                if self.too_large(epoch):
                    raise RecursionError
                defs, body = _Gen(self, epoch).parts()
                fn, tree, source = self._epoch_module(epoch, defs, body)
            except RecursionError:
                # A condition (or a request) too large to generate code for: this epoch is decided by
                # the reference interpreter, the same semantics by definition, only slower.
                fn, tree, source = self._epoch_module(
                    epoch, [], [ast.Return(value=_call("_interpret", _name("s"), _name("day")))])
            self.table[epoch] = fn
            if self.check is not None and len(self.shown) < SHOWN_EPOCHS:
                self.shown.append(source)
                self.check.code_tree.body.extend(tree.body)
                self.check.source = "\n".join(self.shown)

    def _epoch_module(self, epoch: int, defs: list[ast.stmt], body: list[ast.stmt]) -> tuple[Any, ast.Module, str]:
        """Compile one epoch's ``check`` (and its group functions): (function, tree, source)."""
        unpack = ast.Tuple(elts=[_store("_a"), _store("day"), _store("_e")], ctx=ast.Store())
        prologue: list[ast.stmt] = [  # a, day, e = _last; if at is not a: a, day, e = _resolve(at)
            ast.Assign(targets=[unpack], value=_name("_last")),
            _if(ast.Compare(left=_name("at"), ops=[ast.IsNot()], comparators=[_name("_a")]),
                [ast.Assign(targets=[unpack], value=_call("_resolve", _name("at")))]),
            # a frame of this epoch's code asked about a moment of another epoch
            _if(ast.Compare(left=_name("_e"), ops=[ast.NotEq()], comparators=[_const(epoch)]),
                [ast.Return(value=ast.Call(func=ast.Subscript(value=_name("_table"), slice=_name("_e"),
                                                              ctx=ast.Load()),
                                           args=[_name("s"), _name("_a")], keywords=[]))])]
        args = ast.arguments(posonlyargs=[], args=[ast.arg(arg="s"), ast.arg(arg="at")], vararg=None,
                             kwonlyargs=[], kw_defaults=[], kwarg=None, defaults=[_const(None)])
        doc = ast.Expr(value=_const(f"decide {self.partner}/{self.purpose} for fields {', '.join(self.fields)} "
                                    f"on local days {self.epoch_text(epoch)}"))
        tree = _locate(ast.Module(body=[
            *defs, ast.FunctionDef(name="check", args=args, body=[doc, *prologue, *body], decorator_list=[],
                                   returns=None)], type_ignores=[]))
        source = self.load(tree, f"<avgpolicy {self.partner}/{self.purpose} #{self.serial}.{epoch}>", self.namespace)
        return self.namespace.pop("check"), tree, source

    def epoch_of(self, at: Any) -> tuple[datetime.date, int]:
        """(local day, epoch) of a moment."""
        day = rt.local_day(at, self.engine.zone)
        return day, bisect.bisect_right(self.boundaries, day)

    def load(self, tree: ast.Module, filename: str, scope: dict[str, Any]) -> str:
        """Run a generated module (globals: the request's namespace; new names go into ``scope``);
        its source is registered under ``filename`` for tracebacks. Returns the source."""
        source = unparse(tree)
        linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
        self.filenames.append(filename)
        exec(compile(tree, filename, "exec", dont_inherit=True), self.namespace, scope)  # built from ast nodes only
        return source

    def rows(self, students: Any, at: Any, report: Any = None) -> Any:
        """The rows ``filter`` yields for ``students`` at ``at`` from this epoch's generated filter
        (filling ``report``, a FilterReport, when given); None when the epoch has none (a condition
        too large to generate code for; with a report, also an epoch where nothing is allowed)."""
        day, epoch = self.epoch_of(at)
        if report is not None:
            key = (epoch, True)
            fn = self.filters[key] if key in self.filters else self.make_filter(epoch, True)
            return None if fn is None or fn is _no_rows else fn(students, day, report)
        try:
            fn = self.filters[epoch]
        except KeyError:
            fn = self.make_filter(epoch)
        return None if fn is None else fn(students, day)

    def filter_for(self, at: Any = None, report: bool = False) -> Any:
        """The generated ``rows(students, day)`` of the epoch of ``at`` (with ``.source`` and
        ``.code_tree`` when code was generated); None when that epoch filters through the check.
        With ``report``: the variant ``rows(students, day, report)`` that fills a FilterReport."""
        return self.make_filter(self.epoch_of(at)[1], report)

    def make_filter(self, epoch: int, report: bool = False) -> Any:
        key: Any = (epoch, True) if report else epoch
        with self.lock:
            if key in self.filters:
                return self.filters[key]
            fn: Any = None
            if not self.too_large(epoch):
                try:
                    tree = _FilterGen(self, epoch).filter_function(report)
                    if tree is None:
                        fn = _no_rows
                    else:
                        scope: dict[str, Any] = {}
                        source = self.load(tree, f"<avgpolicy filter {self.partner}/{self.purpose} "
                                                 f"#{self.serial}.{epoch}{' report' if report else ''}>", scope)
                        fn = scope["rows"]
                        fn.source = source
                        fn.code_tree = tree
                except RecursionError:  # too large for Python's compiler: filter through the held check
                    fn = None
            self.filters[key] = fn
            return fn

    def left_out(self, report: Any, s: Any, day: datetime.date) -> None:
        """Count a student filter leaves out, with the reasons of its decision (``_out``)."""
        assert self.check is not None
        report.add_left_out(self.check(s, day))

    def flush(self, report: Any, epoch: int, sent: int, masks: tuple[int, ...]) -> None:
        """Hand a report loop's counts to the report (``_flush``): the students sent and, per group,
        what granted its fields (bit j of a group's mask: its j-th permit in window granted)."""
        report.sent += sent
        if not sent:
            return
        day = self.representative(epoch)
        it = iter(masks)
        for gi, flag, permits in self.filter_groups[epoch]:
            mask = 2 if flag is None else next(it)  # no flag: the first permit grants every student
            group = self.groups[gi]
            covering = self.agreement_outcome(group, day)[1]
            agreement = covering[0].reference if covering else None
            for j, r in enumerate(permits, 1):
                if mask >> j & 1:
                    for f in group.fields:
                        grant = r.grant_for(f)
                        assert grant is not None
                        report.add_grant(f, (r.name, rt.basis_text(r), r.law, agreement, grant.transform))

    def resolve(self, at: Any) -> tuple[Any, datetime.date, int]:
        """(at, local day, epoch) for a moment; the epoch is specialised if it was not yet, and the
        held function switches to its code (a swap of ``__code__``: later calls in it are one call)."""
        day, epoch = self.epoch_of(at)
        fn = self.table[epoch]
        if fn is None:
            self.specialise(epoch)
            fn = self.table[epoch]
        if epoch != self.hot and self.check is not None:
            self.hot = epoch
            self.check.__code__ = fn.__code__
        resolved = (at, day, epoch)
        if at is not None:
            self.namespace["_last"] = resolved
        return resolved

    def interpret(self, s: Any, day: datetime.date) -> Decision:
        """The reference interpreter's decision, for an epoch too large to generate code for."""
        from . import interpreter  # a sibling stage, needed only for such pathological conditions

        return interpreter.decide(self.engine, self.partner, self.purpose, self.fields, s, day)

    def start(self) -> Any:
        """The held function before any epoch is generated: it resolves the moment (generating that
        epoch's code, which it then runs from the next call on) and hands the call to the epoch.
        Its code is the same for every request (compiled once, ``_START``), bound to this request's
        namespace: making a request's function compiles nothing."""
        doc = f"decide {self.partner}/{self.purpose} for fields {', '.join(self.fields)}"
        check: Any = types.FunctionType(_START.code, self.namespace, "check", (None,))
        check.__doc__ = doc
        self.check = check
        self.namespace["_check"] = check
        check.code_tree = _locate(ast.Module(body=[ast.FunctionDef(
            name="check", args=_START.tree.args, body=[ast.Expr(value=_const(doc)), *_START.tree.body[1:]],
            decorator_list=[], returns=None)], type_ignores=[]))
        # the generated source of the display: the template's, with this request's docstring
        source = _START.source.replace(_START.doc, docstring(doc), 1)
        check.source = source
        self.shown.append(source)
        return check


class _Start:
    """The held function's first code, shared by every request: ``check(s, at=None)`` resolves the
    moment (``_resolve`` generates the epoch's code and swaps it in) and hands the call to the epoch."""

    def __init__(self) -> None:
        unpack = ast.Tuple(elts=[_store("_a"), _store("day"), _store("_e")], ctx=ast.Store())
        self.doc = docstring("decide a request")  # replaced by each request's own
        body: list[ast.stmt] = [
            ast.Expr(value=_const("decide a request")),
            ast.Assign(targets=[unpack], value=_call("_resolve", _name("at"))),
            ast.Return(value=ast.Call(func=ast.Subscript(value=_name("_table"), slice=_name("_e"), ctx=ast.Load()),
                                      args=[_name("s"), _name("_a")], keywords=[]))]
        args = ast.arguments(posonlyargs=[], args=[ast.arg(arg="s"), ast.arg(arg="at")], vararg=None,
                             kwonlyargs=[], kw_defaults=[], kwarg=None, defaults=[_const(None)])
        self.tree = ast.FunctionDef(name="check", args=args, body=body, decorator_list=[], returns=None)
        module = _locate(ast.Module(body=[self.tree], type_ignores=[]))
        self.source = unparse(module)
        filename = "<avgpolicy held function>"
        linecache.cache[filename] = (len(self.source), None, self.source.splitlines(True), filename)
        scope: dict[str, Any] = {}
        exec(compile(module, filename, "exec", dont_inherit=True), {"__builtins__": {}}, scope)
        self.code = scope["check"].__code__


def _locate(tree: ast.Module) -> ast.Module:
    """``ast.fix_missing_locations`` for a generated tree: each node without a location gets line 1,
    column 0, as that function gives them, in one loop. A node with a location is taken to have been
    located here with everything below it, and is not walked again."""
    stack: list[Any] = [tree]
    pop, push, AST = stack.pop, stack.append, ast.AST
    while stack:
        node = pop()
        fields = node.__dict__  # an ast node keeps its fields in its __dict__
        if "lineno" in fields:
            continue  # located by an earlier call, with all below it (a shared part, such as _START's)
        for value in tuple(fields.values()):
            if value.__class__ is list:
                for v in value:
                    if isinstance(v, AST):
                        push(v)
            elif isinstance(value, AST):
                push(value)
        if node._attributes:
            fields["lineno"] = fields["end_lineno"] = 1
            fields["col_offset"] = fields["end_col_offset"] = 0
    return tree


_START = _Start()


def _no_rows(students: Any, day: datetime.date) -> Any:
    """The filter of an epoch in which no requested field can be allowed."""
    return iter(())


def _forget(filenames: list[str]) -> None:
    for f in filenames:
        linecache.cache.pop(f, None)


def compile_request(engine: EngineContext, partner: str, purpose: str, fields: Sequence[str]) -> Any:
    """The decision function ``check(student, at=None) -> Decision`` for one request.

    Attributes: ``source`` (the generated Python, via ``pysource.unparse``, with every epoch specialised
    so far), ``code_tree`` (its ``ast.Module``), ``boundaries`` (local dates where rules or
    agreements begin or end), ``specialise_all()`` (generate every epoch now), ``request``;
    for ``filter``: ``rows(students, at)`` and ``filter_for(at)`` (the generated loop of an epoch).
    """
    req = _Request(engine, partner, purpose, fields)
    check = req.start()  # no epoch's code yet: the first call generates the code of its own epoch

    def specialise_all() -> None:
        for i in range(len(req.boundaries) + 1):
            req.specialise(i)

    check.__qualname__ = check.__name__ = f"check<{partner}/{purpose}>"
    check.boundaries = tuple(req.boundaries)
    check.specialise_all = specialise_all
    check.request = (partner, purpose, tuple(fields))
    check.rows = req.rows
    check.filter_for = req.filter_for
    weakref.finalize(check, _forget, req.filenames)
    return check
