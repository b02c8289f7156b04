"""NotTranslatable: a request that cannot be planned as SQL without risking a wider release."""

from __future__ import annotations


class NotTranslatable(Exception):
    """A rule of the request uses a construct the SQL back end cannot express exactly.

    ``rule`` names the rule, ``construct`` what in it, ``hint`` what to do instead. Planning
    fails closed: rather than a query that might release more than ``filter``, no query.
    """

    def __init__(self, rule: str | None, construct: str, hint: str) -> None:
        self.rule = rule
        self.construct = construct
        self.hint = hint
        where = f"rule {rule}: " if rule else ""
        super().__init__(f"cannot translate to SQL: {where}{construct} ({hint})")
