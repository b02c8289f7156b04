"""AST nodes produced by the parser for the checker, the interpreter and the compiler.

Every node is an immutable attrs class. Its ``span`` (file, line, column, end line,
end column) is left out of equality, hashing and repr, so two policies that say the
same thing compare equal wherever they were written.

Names (of datasets, fields, partners, ...) are kept as ``Name`` nodes where the
checker must be able to point at them, and as plain strings elsewhere.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from typing import Any
from typing import Literal as TLiteral

import attrs

from .source import Span

_span = attrs.field(default=None, eq=False, repr=False, kw_only=True)


class Node:
    """Base of all nodes: child iteration and a ``visit_<ClassName>`` visitor protocol."""

    span: Span | None

    def children(self) -> Iterator[Node]:
        for a in attrs.fields(type(self)):  # type: ignore[arg-type]
            value = getattr(self, a.name)
            if isinstance(value, Node):
                yield value
            elif isinstance(value, tuple):
                for item in value:
                    if isinstance(item, Node):
                        yield item

    def walk(self) -> Iterator[Node]:
        """This node and every node below it, depth first (iterative: deep trees are safe)."""
        stack: list[Node] = [self]
        while stack:
            node = stack.pop()
            yield node
            stack.extend(reversed(list(node.children())))

    def find_all(self, kind: type[Any]) -> Iterator[Any]:
        return (n for n in self.walk() if isinstance(n, kind))


class NodeVisitor:
    """Dispatches ``visit(node)`` to ``visit_<ClassName>``; falls back to ``generic_visit``."""

    def visit(self, node: Node) -> Any:
        method = getattr(self, f"visit_{type(node).__name__}", self.generic_visit)
        return method(node)

    def generic_visit(self, node: Node) -> Any:
        for child in node.children():
            self.visit(child)
        return None


@attrs.frozen
class Name(Node):
    """An identifier as written, with its location."""

    value: str
    span: Span | None = _span

    def __str__(self) -> str:
        return self.value


# ---------------------------------------------------------------------------
# Catalogue, partners, purposes, consent topics

@attrs.frozen
class FieldDecl(Node):
    """``NAME TYPE SENSITIVITY [key|left]`` inside a dataset; type and sensitivity are checked later.

    ``role`` is the v2 field role (spec 7.7) as written, with its location, or None.
    """

    name: Name
    type: Name
    sensitivity: Name
    role: Name | None = None
    span: Span | None = _span


@attrs.frozen
class Dataset(Node):
    name: Name
    title: str | None
    subject: bool
    fields: tuple[FieldDecl, ...]
    span: Span | None = _span


@attrs.frozen
class Window(Node):
    """``valid from DATE until DATE``; both ends inclusive whole local days, either may be open."""

    start: datetime.date | None
    end: datetime.date | None
    span: Span | None = _span


@attrs.frozen
class Agreement(Node):
    """A processing agreement; the v2 body clauses (spec 7.3) are None when not written.

    ``clauses`` maps each body clause written to the span of the whole clause.
    """

    reference: str
    window: Window
    covers: tuple[FieldRef, ...] | None = None
    purposes: tuple[Name, ...] | None = None
    retain: Duration | None = None
    breach: Duration | None = None
    dpia: str | None = None
    model: Name | None = None
    clauses: tuple[tuple[str, Span], ...] = attrs.field(default=(), eq=False, repr=False)
    span: Span | None = _span

    def clause_span(self, keyword: str) -> Span | None:
        return _clause_span(self.clauses, keyword)


@attrs.frozen
class Partner(Node):
    """A partner; ``role``, ``kind``, ``location`` and ``transfer`` (spec 7.2) are None when not written."""

    name: Name
    title: str | None
    agreements: tuple[Agreement, ...]
    role: Name | None = None
    kind: Name | None = None
    location: Name | None = None
    transfer: Name | None = None
    clauses: tuple[tuple[str, Span], ...] = attrs.field(default=(), eq=False, repr=False)
    span: Span | None = _span

    def clause_span(self, keyword: str) -> Span | None:
        return _clause_span(self.clauses, keyword)


@attrs.frozen
class Purpose(Node):
    """``purpose NAME ["title"] [kind KIND]``; ``kind`` (spec 7.5) is None when not written."""

    name: Name
    title: str | None
    kind: Name | None = None
    span: Span | None = _span


@attrs.frozen
class Controller(Node):
    """``controller "NAME" { kind ...  dpo "..."  breach_handling N hours }`` (spec 7.1).

    A clause not written is None (the model applies the defaults).
    """

    title: str
    kind: Name | None = None
    dpo: str | None = None
    breach_handling: Duration | None = None
    clauses: tuple[tuple[str, Span], ...] = attrs.field(default=(), eq=False, repr=False)
    span: Span | None = _span

    def clause_span(self, keyword: str) -> Span | None:
        return _clause_span(self.clauses, keyword)


def _clause_span(clauses: tuple[tuple[str, Span], ...], keyword: str) -> Span | None:
    for k, s in clauses:
        if k == keyword:
            return s
    return None


@attrs.frozen
class ConsentTopic(Node):
    name: Name
    title: str | None
    reconfirm_at_16: bool
    span: Span | None = _span


# ---------------------------------------------------------------------------
# Rules

@attrs.frozen
class Selector(Node):
    """``IDS``, ``*`` or ``* except IDS`` (``everything`` is True for the last two)."""

    everything: bool
    names: tuple[Name, ...]
    span: Span | None = _span

    def matches(self, value: str) -> bool:
        listed = any(n.value == value for n in self.names)
        return not listed if self.everything else listed


@attrs.frozen
class FieldRef(Node):
    """``dataset.field`` (with an optional transform name) or ``dataset.*`` (field is ``"*"``).

    ``dataset.{a, b}`` is written out by the parser as one FieldRef per field.
    """

    dataset: Name
    field: Name
    transform: Name | None = None
    span: Span | None = _span

    @property
    def ref(self) -> str:
        return f"{self.dataset.value}.{self.field.value}"


@attrs.frozen
class Basis(Node):
    """A legal basis: ``kind`` is the name as written; ``topic`` is set for ``consent(TOPIC)``;
    ``law`` is the string of ``legal_obligation("...")`` / ``public_task("...")`` (spec 7.4),
    None when the basis was written without parentheses."""

    kind: Name
    topic: Name | None = None
    law: str | None = None
    span: Span | None = _span


@attrs.frozen
class Duration(Node):
    amount: int
    unit: Name
    span: Span | None = _span


Effect = TLiteral["permit", "forbid"]


@attrs.frozen
class Rule(Node):
    """A ``permit`` or ``forbid`` rule. A clause that was not written is None.

    ``clauses`` maps each clause keyword written to the span of the whole clause,
    so the checker can point at a clause that is missing or not allowed.
    """

    effect: Effect
    name: Name
    partner: Selector | None
    purpose: Selector | None
    fields: tuple[FieldRef, ...] | None
    basis: Basis | None
    art9: Name | None
    condition: Expr | None
    window: Window | None
    retain: Duration | None
    note: str | None
    #: TOPIC of ``art9 explicit_consent(TOPIC)`` (spec 7.6); None for a bare ground
    art9_topic: Name | None = None
    #: ``dpia "..."`` (spec 7.6)
    dpia: str | None = None
    clauses: tuple[tuple[str, Span], ...] = attrs.field(default=(), eq=False, repr=False)
    span: Span | None = _span

    def clause_span(self, keyword: str) -> Span | None:
        return _clause_span(self.clauses, keyword)


# ---------------------------------------------------------------------------
# Conditions (``students where ...``)

LiteralValue = str | int | bool | datetime.date
LiteralType = TLiteral["text", "int", "bool", "date"]


@attrs.frozen
class Literal(Node):
    value: LiteralValue
    type: LiteralType
    span: Span | None = _span


@attrs.frozen
class Ref(Node):
    """A field of the subject dataset, or the built-in ``age``."""

    name: str
    span: Span | None = _span


Operand = Literal | Ref
CompareOp = TLiteral["==", "!=", "<", "<=", ">", ">="]


@attrs.frozen
class Compare(Node):
    op: CompareOp
    left: Operand
    right: Operand
    span: Span | None = _span


@attrs.frozen
class InList(Node):
    """``x in [a, b]`` / ``x not in [a, b]``."""

    operand: Operand
    values: tuple[Literal, ...]
    negated: bool = False
    span: Span | None = _span


@attrs.frozen
class InRange(Node):
    """``x in low..high`` / ``x not in low..high``: inclusive integer or date range."""

    operand: Operand
    low: Literal
    high: Literal
    negated: bool = False
    span: Span | None = _span


@attrs.frozen
class InSet(Node):
    """``VALUE in SETFIELD`` / ``VALUE not in SETFIELD``: membership in a ``set`` field."""

    element: Operand
    container: Ref
    negated: bool = False
    span: Span | None = _span


@attrs.frozen
class And(Node):
    items: tuple[Expr, ...]
    span: Span | None = _span


@attrs.frozen
class Or(Node):
    items: tuple[Expr, ...]
    span: Span | None = _span


@attrs.frozen
class Not(Node):
    operand: Expr
    span: Span | None = _span


Expr = Compare | InList | InRange | InSet | And | Or | Not


# ---------------------------------------------------------------------------
# Tests written by policy authors

@attrs.frozen
class ConsentGiven(Node):
    """``consent TOPIC by parent|student on DATE [withdrawn DATE]`` in a test."""

    topic: Name
    by: Name
    given: datetime.date
    withdrawn: datetime.date | None
    span: Span | None = _span


@attrs.frozen
class StudentValue(Node):
    """One ``key: value`` of a test's student; a list literal becomes a frozenset value."""

    key: Name
    value: LiteralValue | frozenset[str]
    type: str
    span: Span | None = _span


@attrs.frozen
class Expect(Node):
    allow: bool
    fields: tuple[FieldRef, ...]
    because: Name | None
    span: Span | None = _span


@attrs.frozen
class Test(Node):
    name: Name
    at: datetime.date | datetime.datetime | None
    partner: Name | None
    purpose: Name | None
    student: tuple[StudentValue, ...]
    consents: tuple[ConsentGiven, ...]
    expects: tuple[Expect, ...]
    clauses: tuple[tuple[str, Span], ...] = attrs.field(default=(), eq=False, repr=False)
    span: Span | None = _span


Declaration = Controller | Dataset | Partner | Purpose | ConsentTopic | Rule | Test


@attrs.frozen
class Recovered(Node):
    """A declaration that failed to parse, as far as the parser recovered it (issue 16, item 3).

    Its syntax error has been reported; the declaration is not in ``File.declarations``.
    It is here so that the names it declares are still known and cause no follow-on
    errors (an "unknown partner" for a partner whose date was mistyped):

    * ``keyword`` is the declaration keyword (``dataset``, ``partner``, ``purpose``,
      ``consent``, ``controller``, ``permit``, ``forbid``, ``test``) and ``name`` the name
      declared (None when even that was unreadable, and for the controller).
    * ``subject`` is True when a dataset was written ``subject`` (so "no subject dataset"
      is not reported either).
    * ``node`` is the part that parsed before the mistake (e.g. a dataset with the field
      lines before the bad one), or None. Its fields are known; as the list may be
      incomplete, a reference to another field of a recovered dataset is no error either.
    """

    keyword: str
    name: Name | None
    subject: bool = False
    node: Declaration | None = None
    span: Span | None = _span


@attrs.frozen
class File(Node):
    """One parsed ``.avg`` file; ``recovered`` lists the declarations that failed to parse."""

    name: str
    declarations: tuple[Declaration, ...]
    span: Span | None = _span
    recovered: tuple[Recovered, ...] = ()

    def children(self) -> Iterator[Node]:
        """The declarations only: a walk never reaches the partial nodes of ``recovered``."""
        return iter(self.declarations)
