"""Test-data support: the values a policy set's conditions talk about, for generators of students.

Shared by the hypothesis strategies and the demo generator: a student drawn from
these values lands inside and outside each rule's subset, not only in the
middle of nowhere.
"""

from __future__ import annotations

import datetime
from collections import defaultdict
from typing import TYPE_CHECKING, Any

from .. import nodes as n

if TYPE_CHECKING:
    from ..policy import Policy


def condition_values(policy: Policy) -> dict[str, list[Any]]:
    """For each subject field (and ``age``) the literal values rule conditions compare it with.

    Range bounds contribute the bound and its neighbours; a ``"x" in SETFIELD``
    contributes ``"x"`` to the set field. Each list is deduplicated and sorted by type/value.
    """
    found: dict[str, set[Any]] = defaultdict(set)

    def add(ref: n.Operand, lit: n.Literal) -> None:
        if isinstance(ref, n.Ref):
            found[ref.name].add(lit.value)

    def around(ref: n.Operand, lit: n.Literal) -> None:
        add(ref, lit)
        if isinstance(ref, n.Ref) and lit.type == "int" and isinstance(lit.value, int):
            found[ref.name].update((lit.value - 1, lit.value + 1))
        elif isinstance(ref, n.Ref) and lit.type == "date" and isinstance(lit.value, datetime.date):
            found[ref.name].update(d for d in (_shift(lit.value, -1), _shift(lit.value, 1)) if d)

    for rule in policy.model.rules:
        if rule.condition is None:
            continue
        for node in rule.condition.walk():
            if isinstance(node, n.Compare):
                if isinstance(node.right, n.Literal):
                    around(node.left, node.right)
                if isinstance(node.left, n.Literal):
                    around(node.right, node.left)
            elif isinstance(node, n.InList):
                for lit in node.values:
                    add(node.operand, lit)
            elif isinstance(node, n.InRange):
                around(node.operand, node.low)
                around(node.operand, node.high)
            elif isinstance(node, n.InSet) and isinstance(node.element, n.Literal):
                found[node.container.name].add(node.element.value)
    return {k: sorted(v, key=lambda x: (type(x).__name__, x)) for k, v in found.items()}


def window_dates(policy: Policy) -> list[datetime.date]:
    """Every window and agreement boundary of the set (sorted), with the days just outside them."""
    days: set[datetime.date] = set()
    windows = [r.window for r in policy.model.rules]
    windows += [a.window for p in policy.model.partners.values() for a in p.agreements]
    for w in windows:
        for d in (w.start, w.end):
            if d is not None:
                days.update(x for x in (_shift(d, -1), d, _shift(d, 1)) if x)
    return sorted(days)


def _shift(day: datetime.date, days: int) -> datetime.date | None:
    try:
        return day + datetime.timedelta(days=days)
    except OverflowError:
        return None
