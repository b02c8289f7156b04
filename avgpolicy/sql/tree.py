"""The neutral condition tree of a plan: what a row must satisfy, with the request folded in.

A plan's conditions read only student columns (and the consent table). Everything known
when planning is already folded: partner, purpose, the decision day, windows, agreements,
and ``age`` as bounds on the birth date. The tree is three-valued exactly as the engines
are: a column whose value is missing or ill-typed is *unknown* (SQL NULL), ``And``/``Or``/
``Not`` are Kleene, and ``Const(None)`` is unknown. Dialects (``render``) turn it into SQL.
"""

from __future__ import annotations

import datetime
from typing import Any

import attrs


@attrs.frozen
class Column:
    """A student column: the field ``ref`` (``leerling.roepnaam``) of catalogue ``type``."""

    ref: str
    type: str


@attrs.frozen
class Param:
    """A value from the policy or the request: always a bound parameter, never SQL text."""

    value: Any
    type: str


@attrs.frozen
class AgeOf:
    """The built-in ``age`` computed in SQL on ``day`` (used only when age is compared with a field)."""

    birth: Column
    day: datetime.date


Operand = Column | Param | AgeOf


@attrs.frozen
class Const:
    value: bool | None


@attrs.frozen
class Known:
    """The column holds a well-typed value (not NULL, and of its catalogue type)."""

    column: Column


@attrs.frozen
class Cmp:
    op: str
    left: Operand
    right: Operand


@attrs.frozen
class In:
    """``operand IN (values)``; ``values`` is never empty."""

    operand: Column
    values: tuple[Param, ...]


@attrs.frozen
class Member:
    """``element in container``: a text operand in a set column; unknown unless both are well-typed
    (a set is well-typed when it is a list of text with no NULL element, as ``runtime.is_str_set``)."""

    element: Column | Param
    container: Column


@attrs.frozen
class And:
    items: tuple[Node, ...]


@attrs.frozen
class Or:
    items: tuple[Node, ...]


@attrs.frozen
class Not:
    operand: Node


@attrs.frozen
class Coalesce:
    """TRUE/FALSE with unknown read as ``default`` (a permit needs TRUE; a forbid blocks on unknown)."""

    operand: Node
    default: bool


@attrs.frozen
class ConsentValid:
    """Valid consent for ``topic`` on ``day`` (spec section 4, on dates); never unknown."""

    topic: str
    reconfirm_at_16: bool
    day: datetime.date
    birth: Column
    rule: str


@attrs.frozen
class NotLeft:
    """Spec 7.7: the student has not left before ``day`` (NULL = not left; ill-typed = unknown)."""

    column: Column
    day: datetime.date


Node = Const | Known | Cmp | In | Member | And | Or | Not | Coalesce | ConsentValid | NotLeft
TRUE = Const(True)
FALSE = Const(False)
UNKNOWN = Const(None)


def and_(*items: Node) -> Node:
    """Kleene AND with constants folded."""
    out: list[Node] = []
    unknown = False
    for item in items:
        parts = item.items if isinstance(item, And) else (item,)
        for p in parts:
            if p == FALSE:
                return FALSE
            if p == TRUE:
                continue
            if p == UNKNOWN:
                unknown = True
                continue
            if p not in out:
                out.append(p)
    if unknown:
        out.append(UNKNOWN)
    if not out:
        return TRUE
    return out[0] if len(out) == 1 else And(tuple(out))


def or_(*items: Node) -> Node:
    """Kleene OR with constants folded."""
    out: list[Node] = []
    unknown = False
    for item in items:
        parts = item.items if isinstance(item, Or) else (item,)
        for p in parts:
            if p == TRUE:
                return TRUE
            if p == FALSE:
                continue
            if p == UNKNOWN:
                unknown = True
                continue
            if p not in out:
                out.append(p)
    if unknown:
        out.append(UNKNOWN)
    if not out:
        return FALSE
    return out[0] if len(out) == 1 else Or(tuple(out))


def not_(item: Node) -> Node:
    if isinstance(item, Const):
        return item if item.value is None else Const(not item.value)
    if isinstance(item, Not):
        return item.operand
    return Not(item)


def coalesce(item: Node, default: bool) -> Node:
    """``item`` with unknown read as ``default`` (constants folded; never-unknown nodes kept as they are)."""
    if isinstance(item, Const):
        return Const(default if item.value is None else item.value)
    if isinstance(item, (ConsentValid, Known, Coalesce)):
        return item
    return Coalesce(item, default)


def when_known(columns: tuple[Column, ...], value: bool | None) -> Node:
    """``value`` where every column is known, else unknown."""
    if value is None or not columns:
        return Const(value)
    known_or_unknown = Or((and_(*(Known(c) for c in columns)), UNKNOWN))  # TRUE where known, else unknown
    return known_or_unknown if value else Not(known_or_unknown)


def birthday_bound(day: datetime.date, years: int) -> datetime.date | None:
    """The latest birth date of a student who is at least ``years`` old on ``day``.

    ``age >= years`` holds exactly for birth dates on or before it (29 February: a student born
    on 29 February is a year older from 1 March in non-leap years, as ``runtime.age_on``
    counts). None when no date is that late (``years`` beyond the calendar: see callers).
    """
    year = day.year - years
    if year < datetime.MINYEAR:
        return None
    if year > datetime.MAXYEAR:
        return datetime.date.max
    try:
        return datetime.date(year, day.month, day.day)
    except ValueError:  # day is 29 February, the year is not a leap year: 28 February is the last
        return datetime.date(year, 2, 28)
