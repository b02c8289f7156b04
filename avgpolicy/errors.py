"""Diagnostics: located, coded problems found while loading a policy set, and PolicyError."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Literal

import attrs

from .source import Span, render_caret, source_line

Severity = Literal["error", "warning"]


@attrs.frozen
class Diagnostic:
    """One problem in a policy set: a stable ``code``, where it is, and what to do about it."""

    code: str
    severity: Severity
    message: str
    file: str
    line: int
    column: int
    end_line: int = 0
    end_column: int = 0
    help: str | None = None

    @classmethod
    def at(cls, span: Span, code: str, message: str, *, severity: Severity | None = None,
           help: str | None = None) -> Diagnostic:
        """A diagnostic located at ``span``; the severity defaults to the code's own."""
        sev: Severity = severity or ("warning" if code.startswith("W") else "error")
        return cls(code, sev, message, span.file, span.line, span.column,
                   span.end_line, span.end_column, help)

    @property
    def is_error(self) -> bool:
        return self.severity == "error"

    def headline(self) -> str:
        return f"{self.file}:{self.line}:{self.column}: {self.severity}[{self.code}]: {self.message}"

    def render(self, sources: Mapping[str, str] | None = None) -> str:
        """``file:line:col: error[CODE]: message``, then the source line and a caret, then help."""
        text = (sources or {}).get(self.file)
        return self._render(None if text is None else source_line(text, self.line))

    def _render(self, line_text: str | None) -> str:
        parts = [self.headline()]
        if line_text is not None:
            width = (self.end_column - self.column) if self.end_line == self.line else 1
            parts.append(render_caret(line_text, self.column, width))
        if self.help:
            parts.append(f"help: {self.help}")
        return "\n".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)


def sort_key(d: Diagnostic) -> tuple[str, int, int, str]:
    return (d.file, d.line, d.column, d.code)


class PolicyError(Exception):
    """A policy set that cannot be used; ``diagnostics`` lists every problem found (errors first)."""

    def __init__(self, diagnostics: Iterable[Diagnostic], sources: Mapping[str, str] | None = None):
        self.diagnostics: tuple[Diagnostic, ...] = tuple(
            sorted(diagnostics, key=lambda d: (not d.is_error, *sort_key(d))))
        self._sources = dict(sources or {})
        super().__init__(self.diagnostics)

    @property
    def errors(self) -> tuple[Diagnostic, ...]:
        return tuple(d for d in self.diagnostics if d.is_error)

    @property
    def warnings(self) -> tuple[Diagnostic, ...]:
        return tuple(d for d in self.diagnostics if not d.is_error)

    def __str__(self) -> str:
        n = len(self.errors)
        lines = {f: t.split("\n") for f, t in self._sources.items()}  # once per file, not per diagnostic

        def line_of(d: Diagnostic) -> str | None:
            file_lines = lines.get(d.file)
            if file_lines is None or not 1 <= d.line <= len(file_lines):
                return None
            return file_lines[d.line - 1].removesuffix("\r")

        body = "\n\n".join(d._render(line_of(d)) for d in self.diagnostics)
        return f"{body}\n\n{n} error{'s' if n != 1 else ''} in the policy set"

    def __reduce__(self) -> tuple[Any, ...]:
        return (PolicyError, (self.diagnostics, self._sources))


class UnknownNameError(ValueError):
    """A request names a partner or purpose the policy set does not declare (``compile``,
    ``filter``, ``plan``, ``export``; ``decide`` denies with ``unknown_partner``/``unknown_purpose``
    instead). ``kind`` is "partner" or "purpose", ``name`` what was sent, ``suggestion`` the
    closest declared name or None, ``declared`` every declared name of that kind."""

    def __init__(self, kind: str, name: str, suggestion: str | None, declared: Iterable[str]) -> None:
        self.kind, self.name, self.suggestion = kind, name, suggestion
        self.declared: tuple[str, ...] = tuple(sorted(declared))
        shown = repr(name) if len(name) <= 80 else repr(name[:80]) + f"... ({len(name)} characters)"
        hint = f"did you mean {suggestion!r}?" if suggestion else (
            "declared: " + ", ".join(self.declared[:12]) + (", ..." if len(self.declared) > 12 else "")
            if self.declared else f"the policy set declares no {kind}")
        super().__init__(f"unknown {kind} {shown}: the policy set does not declare it; {hint}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (UnknownNameError, (self.kind, self.name, self.suggestion, self.declared))
