"""Source texts and spans: where a piece of policy text came from, and how to show it."""

from __future__ import annotations

import attrs


@attrs.frozen
class Source:
    """One policy text and the name it is reported under (a path or a given name)."""

    file: str
    text: str = attrs.field(repr=False)

    def line_text(self, line: int) -> str:
        """The text of 1-based line ``line``, without its line break ('' if out of range)."""
        return source_line(self.text, line) or ""


@attrs.frozen(order=True)
class Span:
    """A region of a source file; lines and columns are 1-based, end column exclusive."""

    file: str
    line: int
    column: int
    end_line: int
    end_column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"

    def to(self, other: Span | None) -> Span:
        """The span from the start of this one to the end of ``other``."""
        if other is None:
            return self
        return Span(self.file, self.line, self.column, other.end_line, other.end_column)


def render_caret(source_line: str, column: int, width: int = 1) -> str:
    """The source line and, under it, a caret at 1-based ``column`` (tabs kept for alignment)."""
    column = max(1, column)
    prefix = "".join("\t" if ch == "\t" else " " for ch in source_line[: column - 1])
    width = max(1, min(width, max(1, len(source_line) - column + 1)))
    return f"{source_line}\n{prefix}{'^' * width}"


def source_line(text: str, line: int) -> str | None:
    """1-based line ``line`` of ``text`` as the parser counts lines (only ``\n`` ends a line).

    ``str.splitlines`` would also split at U+2028, form feeds and the like, which may
    stand inside a string literal, and so show the wrong line under a diagnostic.
    """
    if line < 1:
        return None
    start = 0
    for _ in range(line - 1):
        start = text.find("\n", start) + 1
        if start == 0:
            return None
    end = text.find("\n", start)
    return (text[start:] if end < 0 else text[start:end]).removesuffix("\r")
