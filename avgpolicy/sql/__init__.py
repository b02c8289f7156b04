"""Pushdown to SQL: a request planned once and decided by the database (api.md, "v2: pushdown to SQL").

``policy.plan(...)`` returns a ``Plan``; ``Plan.to_sql`` renders it for duckdb, sqlite, postgres
or spark; ``Plan.run`` executes it and returns ``filter``'s rows. ``NotTranslatable`` names the rule
and construct that has no exact SQL form. The engine modules never import this subpackage, and
this package imports ``sqlglot`` (the ``sql`` extra) only when a plan is made.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .errors import NotTranslatable

if TYPE_CHECKING:
    from .plan import KINDS as KINDS
    from .plan import Plan as Plan
    from .plan import dialect_of as dialect_of
    from .plan import make_plan as make_plan
    from .render import DIALECTS as DIALECTS
    from .render import ConsentTable as ConsentTable

_EXPORTS = {"KINDS": ".plan", "Plan": ".plan", "dialect_of": ".plan", "make_plan": ".plan",
            "DIALECTS": ".render", "ConsentTable": ".render"}
__all__ = ["DIALECTS", "KINDS", "ConsentTable", "NotTranslatable", "Plan", "dialect_of", "make_plan"]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'avgpolicy.sql' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value
