"""Parser: .avg text -> nodes, with located syntax diagnostics and recovery per declaration.

A file is first cut into its top-level declarations (``dataset``, ``partner``,
``purpose``, ``consent``, ``permit``, ``forbid``, ``test``); each is parsed on its
own by Lark's LALR(1) parser, so one syntax error costs one declaration and the
rest of the file is still checked. Parse trees become nodes through an iterative
(bottom-up) transform, so no nesting depth can exhaust the Python stack; conditions
nested deeper than ``MAX_DEPTH`` are reported instead.

Valid declarations take a fast path (``fastparse``: hand-written recursive descent,
the same nodes and spans); Lark parses whatever the fast path is unsure about and
reports every syntax error, naming the expected tokens in words and recognising
common mistakes.
"""

from __future__ import annotations

import datetime
import difflib
import re
import threading
from collections.abc import Callable, Iterator
from importlib import resources
from pathlib import Path
from typing import Any

from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from . import fastparse
from . import nodes as n
from .errors import Diagnostic
from .model import paused_gc
from .source import Source, Span

#: Conditions nested deeper than this (parentheses, ``not``, ``and``/``or``) are an error.
MAX_DEPTH = 64

DECLARATION_KEYWORDS = ("controller", "dataset", "partner", "purpose", "consent", "permit", "forbid", "test")
# These never start a clause, so a line that begins with one starts a new declaration
# even when the previous one is missing its closing brace.
_ALWAYS_TOP = frozenset({"dataset", "permit", "forbid", "test"})

_IDENT_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
_UNESCAPE_RE = re.compile(r"\\([\"\\])")
_COMMENT_RE = re.compile(r"#[^\n]*")

#: a mistyped date where a date belongs (`2025-8-1`, `01-08-2025`, `1 aug`): replaced while recovering
_BAD_DATE_RE = re.compile(r"[0-9A-Za-z./-]*")
_DATE_PLACEHOLDER = "0001-01-01"

_parser_lock = threading.Lock()
_parser: Lark | None = None


def grammar_text() -> str:
    """The grammar, from the installed package or, in a source checkout, from ``grammar/``."""
    try:
        return resources.files("avgpolicy").joinpath("_data/avg.lark").read_text(encoding="utf-8")
    except (FileNotFoundError, OSError):
        here = Path(__file__).resolve().parent.parent / "grammar" / "avg.lark"
        return here.read_text(encoding="utf-8")


def get_parser(*, strict: bool = False) -> Lark:
    """The shared LALR parser, built on first use (``strict=True`` builds a fresh, checked one)."""
    global _parser
    if strict:
        return _build(strict=True)
    if _parser is None:
        with _parser_lock:
            if _parser is None:
                _parser = _build(strict=False)
    return _parser


def _build(*, strict: bool) -> Lark:
    return Lark(grammar_text(), parser="lalr", lexer="basic", propagate_positions=True,
                start=["start", "declaration"], strict=strict, maybe_placeholders=False)


_GRAMMAR_COMMENT_RE = re.compile(r"//[^\n]*")
_GRAMMAR_WORD_RE = re.compile(r'"([A-Za-z_][A-Za-z0-9_-]*)"')
_keywords: frozenset[str] | None = None


def keywords() -> frozenset[str]:
    """Every reserved word: the grammar's quoted literals that look like identifiers.

    Read from the grammar text, so that valid input (which the fast path parses) never
    pays for building the Lark parser; a test checks this equals Lark's own terminals.
    """
    global _keywords
    if _keywords is None:
        text = _GRAMMAR_COMMENT_RE.sub("", grammar_text())
        _keywords = frozenset(_GRAMMAR_WORD_RE.findall(text))
    return _keywords


def lark_keywords() -> frozenset[str]:
    """The keywords as Lark's terminals define them (the reference for ``keywords``)."""
    return frozenset(t.pattern.value for t in get_parser().terminals
                     if t.pattern.type == "str" and _IDENT_RE.fullmatch(t.pattern.value))


# ---------------------------------------------------------------------------
# Cutting a file into declarations

# a newline, a comment, a string (possibly unterminated), a brace, or a run of anything else
_SPLIT_RE = re.compile(r'\n|#[^\n]*|"(?:[^"\\]|\\[\s\S])*"?|[{}]|[^\n#"{}]+')
_LINE_WS_RE = re.compile(r"[ \t\r\f\v]*")


def split_declarations(text: str, *, nested: bool = False) -> Iterator[tuple[int, int, int]]:
    """Yield ``(start_offset, end_offset, first_line)`` of each top-level declaration.

    The scan knows strings and comments. A declaration keyword at the start of a
    line begins a new chunk when the braces are balanced, and ``dataset``,
    ``permit``, ``forbid`` and ``test`` always do. Text before the first keyword
    forms a chunk of its own (it is a syntax error unless it is blank).
    ``nested=True`` starts a chunk at every declaration keyword at a line start,
    whatever the braces (to take apart a declaration that swallowed the next ones).
    """
    starts: list[tuple[int, int]] = [(0, 1)]
    depth = 0
    line = 1
    at_line_start = True
    for m in _SPLIT_RE.finditer(text):
        tok = m.group()
        ch = tok[0]
        if ch == "\n":
            line += 1
            at_line_start = True
            continue
        if at_line_start:
            first = _LINE_WS_RE.match(text, m.start()).end()
            if first >= m.end():
                continue  # only blanks so far on this line
            at_line_start = False
            word = _IDENT_RE.match(text, first)
            if word and word.group() in DECLARATION_KEYWORDS and (
                    depth <= 0 or nested or word.group() in _ALWAYS_TOP):
                line_start = text.rfind("\n", 0, first) + 1
                if line_start > starts[-1][0]:
                    starts.append((line_start, line))
                else:
                    starts[-1] = (line_start, line)
                depth = 0
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        elif ch == '"':
            line += tok.count("\n")
    length = len(text)
    for k, (start, first_line) in enumerate(starts):
        end = starts[k + 1][0] if k + 1 < len(starts) else length
        if _COMMENT_RE.sub("", text[start:end]).strip():
            yield start, end, first_line


# ---------------------------------------------------------------------------
# Describing what the parser expected, in words

_TERMINAL_WORDS = {
    "IDENT": "a name", "STRING": "a string", "INT": "an integer", "DATE": "a date (YYYY-MM-DD)",
    "DATETIME": "a date and time (YYYY-MM-DDTHH:MM)", "COMPARE": "a comparison (== != < <= > >=)",
    "$END": "the end of the declaration",
}


def describe_terminal(name: str, lark: Lark | None = None) -> str:
    if name in _TERMINAL_WORDS:
        return _TERMINAL_WORDS[name]
    lark = lark or get_parser()
    for term in lark.terminals:
        if term.name == name and term.pattern.type == "str":
            return f"`{term.pattern.value}`"
    return name.lower()


RULE_CLAUSES = ("partner", "purpose", "fields", "basis", "art9", "students", "valid", "retain", "note", "dpia")
TEST_CLAUSES = ("at", "partner", "purpose", "student", "consent", "expect")


def describe_expected(expected: set[str] | frozenset[str]) -> str:
    """The terminals a parser state accepts, in words (clause keywords summed up as "a clause")."""
    words = {describe_terminal(t) for t in expected}
    clause_words = {f"`{k}`" for k in (*RULE_CLAUSES, *TEST_CLAUSES)}
    if len(words & clause_words - {f"`{k}`" for k in DECLARATION_KEYWORDS}) >= 2:
        words = (words - clause_words) | {"the next clause"}
    ordered = sorted(words, key=lambda w: (w == "the next clause", w.startswith("the end"), w))
    if not ordered:
        return "nothing more"
    if len(ordered) == 1:
        return ordered[0]
    return ", ".join(ordered[:-1]) + " or " + ordered[-1]


# Common mistakes, labelled by an erroneous example that leaves the parser in the same
# state (Lark's ``match_examples``); the label picks the help text.
_MISTAKES: dict[str, list[str]] = {
    "open_brace": ["permit r partner x }", "forbid r", "permit r", "test t at 2025-01-01 }", "test t",
                   "dataset d a text personal }", "dataset d", 'dataset d "t"', 'dataset d "t" subject',
                   "dataset d subject"],
    "comma": ["permit r { partner a b }", "permit r { purpose a b }", "permit r { partner * except a b }",
              "permit r { fields d.a d.b }", "permit r { fields d.a as pseudonym d.b }",
              "permit r { fields d.{a b} }", "permit r { students where x in [1 2] }",
              "test t { student { a: 1 b: 2 } }", "test t { expect allow d.a d.b }"],
    "trailing_comma": ["permit r { partner a, }", "permit r { fields d.a, }", "permit r { purpose a, }"],
    "where": ["permit r { students a == 1 }"],
    "list_brackets": ['permit r { students where x in "a", "b" }', "permit r { students where x in 1, 2 }"],
    "range_dots": ["permit r { students where x in 3-8 }"],
    "from_until": ["permit r { valid 2025-01-01 }", 'partner p { agreement "a" valid 2025-01-01 }'],
    "dataset_dot": ["permit r { fields roepnaam }", "test t { expect allow roepnaam }"],
    "field_line": ["dataset d { a text }", "dataset d { a }"],
    "retain_unit": ["permit r { retain 2 }", "permit r { retain years }"],
    "consent_topic": ["permit r { basis consent }", "permit r { basis consent() }"],
    "student_braces": ["test t { student a: 1 }"],
    "verdict": ["test t { expect d.a }"],
}
_MISTAKE_HELP = {
    "open_brace": "the body of a declaration goes between `{` and `}`",
    "comma": "separate the items of a list with `,`",
    "trailing_comma": "remove the `,` after the last item",
    "where": "write `students where CONDITION`",
    "list_brackets": 'write a list of values in brackets: `in ["a", "b"]`',
    "range_dots": "write a range with two dots: `in 3..8`",
    "from_until": "write `valid from DATE until DATE` (either part may be left out)",
    "dataset_dot": "name a field with its dataset: `dataset.field`, e.g. `leerling.roepnaam`",
    "field_line": "a field line is `NAME TYPE SENSITIVITY`, e.g. `roepnaam text personal`",
    "retain_unit": "write an amount and a unit, e.g. `retain 2 years`",
    "consent_topic": "name the consent topic: `basis consent(TOPIC)`",
    "student_braces": 'write the student in braces: `student { school: "12AB", leerjaar: 5 }`',
    "verdict": "write `expect allow dataset.field` or `expect deny dataset.field`",
}
_CHAR_HELP = {
    "=": ("`=` is not an operator", "compare with `==`"),
    "'": ("strings are written in double quotes", 'write `"text"`'),
    "&": ("`&` is not an operator", "combine conditions with `and`"),
    "|": ("`|` is not an operator", "combine conditions with `or`"),
    "!": ("`!` is not an operator", "negate with `not`, or compare with `!=`"),
    ";": ("`;` is not used in the language", "remove it; clauses are separated by whitespace"),
}


_mistake_keys: dict[tuple[Any, frozenset[str]], str] | None = None


def _error_key(exc: UnexpectedInput) -> tuple[Any, frozenset[str]] | None:
    state = getattr(exc, "state", None)
    if state is None or not hasattr(state, "position"):
        return None
    return (state.position, frozenset(getattr(exc, "accepts", None) or ()))


def _mistake(exc: UnexpectedInput) -> str | None:
    """The label of the common mistake this error looks like, if any.

    Like Lark's ``match_examples`` (which fails on lark 1.3 when a state matches with other
    accepted tokens): an example matches when the parser stopped in the same LALR state
    with the same acceptable tokens. The examples are parsed once, on the first error.
    """
    global _mistake_keys
    if _mistake_keys is None:
        keys: dict[tuple[Any, frozenset[str]], str] = {}
        lark = get_parser()
        for label, examples in _MISTAKES.items():
            for text in examples:
                try:
                    lark.parse(text, start="start")
                except UnexpectedInput as example:
                    key = _error_key(example)
                    if key is not None:
                        keys.setdefault(key, label)
        _mistake_keys = keys
    key = _error_key(exc)
    return _mistake_keys.get(key) if key is not None else None


def _accepts_before(prefix: str) -> frozenset[str]:
    """The terminals the parser would accept after ``prefix`` (empty if the prefix is itself wrong)."""
    try:
        interactive = get_parser().parse_interactive(prefix, start="start")
        interactive.exhaust_lexer()
        return frozenset(interactive.accepts()) - {t.upper() for t in DECLARATION_KEYWORDS}
    except Exception:
        return frozenset()


def _describe_token(token: Token) -> str:
    if token.type == "$END":
        return "the end of the declaration"
    return f"`{token.value}`"


# ---------------------------------------------------------------------------
# Parsing


class _FileParser:
    def __init__(self, source: Source, *, fast: bool = True) -> None:
        self.source = source
        self.fast = fast
        self.diagnostics: list[Diagnostic] = []
        self.reserved = keywords()
        self._line_offset = 0
        self.recovered: list[n.Recovered] = []
        self._text = ""  # the text Lark is parsing (for ``_keyword_as_name``)
        self._silenced_dates: set[tuple[int, int]] = set()

    # -- helpers ----------------------------------------------------------
    def span(self, meta: Any) -> Span | None:
        if meta is None or getattr(meta, "empty", True):
            return None
        return Span(self.source.file, meta.line + self._line_offset, meta.column,
                    meta.end_line + self._line_offset, meta.end_column)

    def token_span(self, tok: Token) -> Span:
        return Span(self.source.file, (tok.line or 1) + self._line_offset, tok.column or 1,
                    (tok.end_line or tok.line or 1) + self._line_offset,
                    tok.end_column or (tok.column or 1) + 1)

    def error(self, span: Span | None, code: str, message: str, help: str | None = None) -> None:
        span = span or Span(self.source.file, 1, 1, 1, 2)
        self.diagnostics.append(Diagnostic.at(span, code, message, help=help))

    # -- driver -----------------------------------------------------------
    def parse(self) -> n.File:
        text = self.source.text
        decls: list[n.Declaration] = []
        for start, end, first_line in split_declarations(text):
            chunk = text[start:end]
            self._line_offset = first_line - 1
            if self.fast:
                try:
                    decls.extend(fastparse.parse_declarations(self.source.file, chunk, first_line, self.reserved))
                    continue
                except fastparse.Fallback:
                    pass  # Lark parses it and reports what is wrong
            decls.extend(self._parse_chunk(chunk, first_line - 1))
        return n.File(self.source.file, tuple(decls),
                      span=Span(self.source.file, 1, 1, max(1, text.count("\n") + 1), 1),
                      recovered=tuple(self.recovered))

    # -- recovery: one mistake reports once (issue 16, item 3) ----------------
    #
    # A declaration that fails to parse is reported once, then:
    # * if it swallowed the declarations after it (a missing `}`: `partner`, `purpose`,
    #   `consent` and `controller` at a line start inside its braces), they are parsed on
    #   their own and its own error is the one reported;
    # * a missing `}` at its end is supplied, and a mistyped date replaced, so that the
    #   declaration is still checked (a field typo in a rule without its `}` is found);
    # * otherwise the names it declares are kept in ``File.recovered``, with what parsed
    #   before the mistake, so that they cause no "unknown ..." errors elsewhere.

    def _parse_chunk(self, chunk: str, line_offset: int) -> list[n.Declaration]:
        self._line_offset = line_offset
        try:
            # a chunk usually holds one declaration, but several may share a line
            self._text = chunk
            tree = get_parser().parse(chunk, start="start", on_error=self._keyword_as_name)
        except UnexpectedInput as exc:
            pieces = list(split_declarations(chunk, nested=True)) if self._swallows(chunk) else []
            if len(pieces) > 1:
                out: list[n.Declaration] = []
                for start, end, first_line in pieces:
                    out.extend(self._parse_chunk(chunk[start:end], line_offset + first_line - 1))
                return out
            self._line_offset = line_offset
            self._syntax_error(exc, chunk)
            return self._recover(chunk, exc, line_offset)
        return self._transform(tree)

    @staticmethod
    def _swallows(chunk: str) -> bool:
        """Whether declarations at a line start inside this chunk's braces are separate ones
        (in a rule or a test, `partner`, `purpose` and `consent` lines are clauses)."""
        word = _IDENT_RE.match(chunk.lstrip())
        return word is not None and word.group() in ("dataset", "partner", "purpose", "consent", "controller")

    def _recover(self, chunk: str, exc: UnexpectedInput, line_offset: int) -> list[n.Declaration]:
        text = chunk
        end_of_chunk = len(chunk.rstrip())
        self._silenced_dates: set[tuple[int, int]] = set()
        for _ in range(6):
            repaired = self._repair(text, exc)
            if repaired is None:
                break
            text = repaired
            try:
                self._text = text
                tree = get_parser().parse(text, start="start", on_error=self._keyword_as_name)
            except UnexpectedInput as again:
                pos = getattr(again, "pos_in_stream", None)
                tok = getattr(again, "token", None)
                if tok is not None and getattr(tok, "start_pos", None) is not None:
                    pos = tok.start_pos
                at_end = pos is None or pos >= end_of_chunk or getattr(tok, "type", "") == "$END"
                if not at_end:  # a second mistake of its own, not a consequence of the repair
                    self._syntax_error(again, text)
                exc = again
                continue
            decls = self._transform(tree)
            self._silenced_dates = set()
            return decls
        self._silenced_dates = set()
        self.recovered.extend(self._recovered_names(chunk, exc, line_offset))
        return []

    def _repair(self, text: str, exc: UnexpectedInput) -> str | None:
        """``text`` with the mistake of ``exc`` worked around, or None when there is no safe repair."""
        tok = getattr(exc, "token", None)
        accepts = set(getattr(exc, "accepts", None) or getattr(exc, "expected", None) or ())
        if isinstance(exc, (UnexpectedToken, UnexpectedEOF)) and tok is not None and tok.type == "$END" \
                and "RBRACE" in accepts:
            last_line = text[text.rfind("\n") + 1:]
            return text + ("\n}" if "#" in last_line else " }")
        if isinstance(exc, UnexpectedToken) and "DATE" in accepts and tok is not None \
                and tok.start_pos is not None:
            m = _BAD_DATE_RE.match(text, tok.start_pos)
            if m is None or not m.group():
                return None
            self._silenced_dates.add(((tok.line or 1) + self._line_offset, tok.column or 1))
            return text[:m.start()] + _DATE_PLACEHOLDER + text[m.end():]
        return None

    def _recovered_names(self, chunk: str, exc: UnexpectedInput, line_offset: int) -> list[n.Recovered]:
        """What a declaration that could not be repaired declares, read from its first tokens."""
        pos = getattr(exc, "pos_in_stream", None)
        tok = getattr(exc, "token", None)
        if getattr(tok, "start_pos", None) is not None:
            pos = tok.start_pos  # type: ignore[union-attr]
        try:  # the tokens before the mistake (an odd character there would stop the tokenizer)
            toks = fastparse.tokenize(chunk[:pos] if isinstance(pos, int) else chunk, line_offset + 1)
        except fastparse.Fallback:
            return []
        if not toks or toks[0][0] != "IDENT" or toks[0][1] not in DECLARATION_KEYWORDS:
            return []
        keyword = toks[0][1]
        name = None
        if keyword != "controller" and len(toks) > 1 and toks[1][0] == "IDENT":
            t = toks[1]
            name = n.Name(t[1], span=Span(self.source.file, t[2], t[3], t[4], t[5]))
        subject = False
        if keyword == "dataset":
            for t in toks[2:]:
                if t[0] == "PUNCT":
                    break
                subject = subject or (t[0] == "IDENT" and t[1] == "subject")
        first = toks[0]
        span = Span(self.source.file, first[2], first[3], first[4], first[5])
        return [n.Recovered(keyword, name, subject, self._partial(chunk, exc, line_offset), span=span)]

    def _partial(self, chunk: str, exc: UnexpectedInput, line_offset: int) -> n.Declaration | None:
        """The declaration as far as it goes before the line of the mistake, closed with `}`s."""
        line = getattr(exc, "line", None)
        if not isinstance(line, int) or line < 2:
            return None
        cut = 0
        for _ in range(line - 1):
            cut = chunk.find("\n", cut) + 1
        prefix = chunk[:cut]
        saved = len(self.diagnostics)
        try:
            for braces in range(1, 4):
                try:
                    tree = get_parser().parse(prefix + "}" * braces, start="start")
                except UnexpectedInput:
                    continue
                self._line_offset = line_offset
                decls = self._transform(tree)
                return decls[0] if len(decls) == 1 else None
            return None
        finally:
            del self.diagnostics[saved:]  # what the partial text says is not reported again

    def _keyword_as_name(self, exc: UnexpectedInput) -> bool:
        """Recover from a keyword where a name belongs: read it as a name (``t_name`` reports E004)."""
        if not isinstance(exc, UnexpectedToken) or exc.interactive_parser is None:
            return False
        tok = exc.token
        if tok.type == "IDENT" or tok.value not in self.reserved or "IDENT" not in exc.accepts:
            return False
        if tok.value in RULE_CLAUSES and tok.end_pos is not None:
            # `fields` then the next clause: the field list is empty (reported as such), unless
            # the keyword names a dataset (`fields students.x`)
            text = self._text
            if not text[tok.end_pos:].lstrip().startswith(".") \
                    and _COMMENT_RE.sub("", text[:tok.start_pos]).rstrip().endswith("fields"):
                return False
        exc.interactive_parser.feed_token(Token.new_borrow_pos("IDENT", tok.value, tok))
        return True

    def _syntax_error(self, exc: UnexpectedInput, chunk: str) -> None:
        if isinstance(exc, UnexpectedCharacters):
            span = Span(self.source.file, exc.line + self._line_offset, exc.column,
                        exc.line + self._line_offset, exc.column + 1)
            ch = chunk[exc.pos_in_stream] if exc.pos_in_stream < len(chunk) else ""
            if ch == '"':
                self.error(span, "E002", "unterminated string or bad escape",
                           help='close the string with `"`; inside a string only `\\"` and `\\\\` are escapes')
            elif ch in _CHAR_HELP:
                message, advice = _CHAR_HELP[ch]
                self.error(span, "E002", message, help=advice)
            else:
                shown = ch if ch.isprintable() and not ch.isspace() else repr(ch)[1:-1]
                accepts = _accepts_before(chunk[:exc.pos_in_stream])
                expected = f"; expected {describe_expected(accepts)}" if accepts else ""
                self.error(span, "E002", f"unexpected character `{shown}`{expected}",
                           help="remove the character, or put the text in double quotes")
            return
        if isinstance(exc, (UnexpectedToken, UnexpectedEOF)):
            tok = exc.token
            allowed = set(getattr(exc, "accepts", None) or exc.expected or ())
            starters = {t.upper() for t in DECLARATION_KEYWORDS}
            if "$END" in allowed:
                if allowed - {"$END"} <= starters:  # between declarations: one must start here
                    allowed.discard("$END")
                else:  # a declaration that may end here: say what may follow within it
                    allowed -= starters
            expected = describe_expected(frozenset(allowed))
            label = _mistake(exc)
            hint = _MISTAKE_HELP.get(label) if label else None
            if tok.type != "$END" and tok.type == "IDENT":
                words = [t.pattern.value for t in get_parser().terminals
                         if t.name in allowed and t.pattern.type == "str" and _IDENT_RE.fullmatch(t.pattern.value)]
                close = difflib.get_close_matches(tok.value, words, n=1, cutoff=0.7)
                if close:
                    hint = f"did you mean `{close[0]}`?"
            if tok.type == "$END" and (empty := self._empty_list(tok, chunk)) is not None:
                self.error(empty, "E001", "the field list of `fields` is empty",
                           help="list the fields after `fields`, e.g. `fields leerling.roepnaam, leerling.leerjaar`")
            elif tok.type == "$END":
                if "RBRACE" in allowed:
                    hint = "a `}` is missing at the end of the declaration"
                self.error(self._end_span(chunk), "E001", f"declaration ends too early; expected {expected}",
                           help=hint or "complete the declaration")
            elif "DATE" in allowed and (bad := self._bad_date(tok, chunk)) is not None:
                self.error(self.token_span(tok), "E003", f"`{bad}` is not a valid date",
                           help="write a calendar date as YYYY-MM-DD, e.g. 2025-08-01")
            elif (empty := self._empty_list(tok, chunk)) is not None:
                self.error(empty, "E001", "the field list of `fields` is empty",
                           help="list the fields after `fields`, e.g. `fields leerling.roepnaam, leerling.leerjaar`")
            elif tok.value in self.reserved and "IDENT" in allowed:
                self.error(self.token_span(tok), "E004", f"`{tok.value}` is a keyword and cannot be used as a name",
                           help="choose another name, e.g. add a prefix or suffix")
            else:
                if hint is None and allowed and allowed <= {t.upper() for t in DECLARATION_KEYWORDS}:
                    hint = "a declaration starts with one of these keywords"
                self.error(self.token_span(tok), "E001", f"unexpected {_describe_token(tok)}; expected {expected}",
                           help=hint)
            return
        self.error(None, "E001", f"syntax error: {exc}")  # pragma: no cover - lark has no other kinds

    @staticmethod
    def _bad_date(tok: Token, chunk: str) -> str | None:
        """The mistyped date that starts at ``tok`` (`2025-8-1`, `01-08-2025`), if it looks like one."""
        if tok.start_pos is None:
            return None
        m = _BAD_DATE_RE.match(chunk, tok.start_pos)
        text = m.group() if m else ""
        return text if any(c.isdigit() for c in text) else None

    def _empty_list(self, tok: Token, chunk: str) -> Span | None:
        """The span of a `fields` keyword followed by no field (issue 16, item 4), else None."""
        if tok.type == "$END":
            before = chunk.rstrip()
        elif tok.start_pos is not None:
            before = chunk[:tok.start_pos]
        else:
            return None
        before = _COMMENT_RE.sub("", before).rstrip()
        prev = before[-7:-6]
        if not before.endswith("fields") or (prev and (prev.isalnum() or prev in "_-")):
            return None
        start = len(before) - len("fields")
        line = before.count("\n", 0, start) + 1 + self._line_offset
        col = start - (before.rfind("\n", 0, start) + 1) + 1
        return Span(self.source.file, line, col, line, col + len("fields"))

    def _end_span(self, chunk: str) -> Span:
        stripped = chunk.rstrip()
        line = stripped.count("\n") + 1 + self._line_offset
        col = len(stripped) - (stripped.rfind("\n") + 1)
        return Span(self.source.file, line, max(1, col), line, max(2, col + 1))

    # -- tree -> nodes (iterative, bottom-up) -------------------------------
    def _transform(self, tree: Tree) -> list[n.Declaration]:
        results: dict[int, Any] = {}
        depth: dict[int, int] = {}
        too_deep = False
        for sub in tree.iter_subtrees():
            if sub.data in _EXPR_RULES:
                inner = max((depth.get(id(c), 0) for c in sub.children if isinstance(c, Tree)), default=0)
                # `(x)` and a one-armed and/or add no level of their own
                passthrough = sub.data in ("or_", "and_") and len(sub.children) == 1
                depth[id(sub)] = inner if passthrough else inner + 1
                if depth[id(sub)] > MAX_DEPTH:
                    too_deep = True
                    results[id(sub)] = None
                    continue
            elif sub.data == "students_clause" and too_deep:
                too_deep = False
                self.error(self.span(sub.meta), "E005",
                           f"condition nested too deeply (more than {MAX_DEPTH} levels)",
                           help="split the condition or remove redundant parentheses and `not`s")
                results[id(sub)] = ("students", self.span(sub.meta), None)
                continue
            kids = [results[id(c)] if isinstance(c, Tree) else c for c in sub.children]
            method: Callable[..., Any] = getattr(self, f"t_{sub.data}")
            results[id(sub)] = method(sub.meta, kids)
        return results[id(tree)]

    def t_start(self, meta: Any, kids: list[Any]) -> list[n.Declaration]:
        return [k for k in kids if k is not None]

    # terminals
    def t_name(self, meta: Any, kids: list[Token]) -> n.Name:
        tok = kids[0]
        span = self.token_span(tok)
        if tok.value in self.reserved:
            self.error(span, "E004", f"`{tok.value}` is a keyword and cannot be used as a name",
                       help="choose another name, e.g. add a prefix or suffix")
        return n.Name(str(tok.value), span=span)

    def string(self, tok: Token) -> str:
        return _UNESCAPE_RE.sub(r"\1", tok.value[1:-1])

    def date(self, tok: Token) -> datetime.date | None:
        if self._silenced_dates and ((tok.line or 1) + self._line_offset, tok.column or 1) in self._silenced_dates:
            return None  # the placeholder of a mistyped date, already reported
        try:
            return datetime.date.fromisoformat(tok.value)
        except ValueError:
            self.error(self.token_span(tok), "E003", f"`{tok.value}` is not a valid date",
                       help="write a calendar date as YYYY-MM-DD, e.g. 2025-08-01")
            return None

    def integer(self, tok: Token) -> int:
        try:
            return int(tok.value)
        except ValueError:
            self.error(self.token_span(tok), "E007", "integer literal is too long",
                       help="use an integer of at most 4,000 digits")
            return 0

    # catalogue
    def t_dataset(self, meta: Any, kids: list[Any]) -> n.Dataset:
        name = kids[0]
        title = next((self.string(k) for k in kids if isinstance(k, Token) and k.type == "STRING"), None)
        subject = any(isinstance(k, Token) and k.type == "SUBJECT" for k in kids)
        fields = tuple(k for k in kids if isinstance(k, n.FieldDecl))
        return n.Dataset(name, title, subject, fields, span=self.span(meta))

    def t_field_decl(self, meta: Any, kids: list[Any]) -> n.FieldDecl:
        role = n.Name(str(kids[3].value), span=self.token_span(kids[3])) if len(kids) > 3 else None
        return n.FieldDecl(kids[0], kids[1], kids[2], role, span=self.span(meta))

    def _error_fn(self, span: Span | None, code: str, message: str, help: str | None) -> None:
        self.error(span, code, message, help=help)

    def t_partner(self, meta: Any, kids: list[Any]) -> n.Partner:
        title = next((self.string(k) for k in kids if isinstance(k, Token) and k.type == "STRING"), None)
        agreements = tuple(k for k in kids if isinstance(k, n.Agreement))
        settings = [k for k in kids if isinstance(k, fastparse.Setting)]
        values, spans = fastparse.read_settings(settings, fastparse.PARTNER_CLAUSES, f"partner `{kids[0]}`",
                                                self._error_fn)
        return n.Partner(kids[0], title, agreements, values.get("role"), values.get("kind"),
                         values.get("location"), values.get("transfer"), clauses=spans, span=self.span(meta))

    def t_agreement(self, meta: Any, kids: list[Any]) -> n.Agreement:
        reference = self.string(kids[0])
        values, spans = fastparse.read_settings(kids[2:], fastparse.AGREEMENT_CLAUSES,
                                                f'agreement "{reference}"', self._error_fn)
        return n.Agreement(reference, kids[1], values.get("covers"), values.get("purposes"), values.get("retain"),
                           values.get("breach"), values.get("dpia"), values.get("model"), clauses=spans,
                           span=self.span(meta))

    def t_setting(self, meta: Any, kids: list[Any]) -> fastparse.Setting:
        return fastparse.Setting(kids[0], self.span(meta), kids[1:])  # type: ignore[arg-type]

    def t_arg_name(self, meta: Any, kids: list[n.Name]) -> n.Name:
        return kids[0]

    def t_arg_controller(self, meta: Any, kids: list[Any]) -> n.Name:
        return n.Name("controller", span=self.span(meta))

    def t_arg_string(self, meta: Any, kids: list[Token]) -> fastparse.StrArg:
        return fastparse.StrArg(self.string(kids[0]), self.token_span(kids[0]))

    def t_arg_duration(self, meta: Any, kids: list[Any]) -> n.Duration:
        return n.Duration(self.integer(kids[0]), kids[1], span=self.span(meta))

    def t_controller(self, meta: Any, kids: list[Any]) -> n.Controller:
        values, spans = fastparse.read_settings(kids[1:], fastparse.CONTROLLER_CLAUSES, "the controller",
                                                self._error_fn)
        return n.Controller(self.string(kids[0]), values.get("kind"), values.get("dpo"),
                            values.get("breach_handling"), clauses=spans, span=self.span(meta))

    def t_purpose(self, meta: Any, kids: list[Any]) -> n.Purpose:
        title = next((self.string(k) for k in kids if isinstance(k, Token) and k.type == "STRING"), None)
        kind = next((k for k in kids[1:] if isinstance(k, tuple)), None)
        return n.Purpose(kids[0], title, kind[0] if kind else None, span=self.span(meta))

    def t_purpose_kind(self, meta: Any, kids: list[n.Name]) -> tuple[n.Name | None]:
        return (fastparse.purpose_kind(kids[0], kids[1], self._error_fn),)

    def t_consent_topic(self, meta: Any, kids: list[Any]) -> n.ConsentTopic:
        title = next((self.string(k) for k in kids if isinstance(k, Token) and k.type == "STRING"), None)
        reconfirm = any(isinstance(k, Token) and k.type == "RECONFIRM" for k in kids)
        return n.ConsentTopic(kids[0], title, reconfirm, span=self.span(meta))

    def t_window(self, meta: Any, kids: list[Any]) -> n.Window:
        start = end = None
        for kind, value in kids:
            if kind == "from":
                start = value
            else:
                end = value
        return n.Window(start, end, span=self.span(meta))

    def t_window_from(self, meta: Any, kids: list[Token]) -> tuple[str, datetime.date | None]:
        return ("from", self.date(kids[0]))

    def t_window_until(self, meta: Any, kids: list[Token]) -> tuple[str, datetime.date | None]:
        return ("until", self.date(kids[0]))

    # rules
    def t_rule(self, meta: Any, kids: list[Any]) -> n.Rule:
        effect = kids[0].value
        name = kids[1]
        seen: dict[str, Any] = {}
        spans: list[tuple[str, Span]] = []
        for keyword, span, value in kids[2:]:
            if keyword in seen:
                self.error(span, "E006", f"clause `{keyword}` appears more than once in rule `{name}`",
                           help=f"merge the two `{keyword}` clauses into one")
                continue
            seen[keyword] = value
            spans.append((keyword, span))
        art9 = seen.get("art9")
        return n.Rule(effect, name, seen.get("partner"), seen.get("purpose"), seen.get("fields"),
                      seen.get("basis"), art9[0] if art9 else None, seen.get("students"), seen.get("valid"),
                      seen.get("retain"), seen.get("note"), art9[1] if art9 else None, seen.get("dpia"),
                      clauses=tuple(spans), span=self.span(meta))

    def _clause(self, keyword: str, meta: Any, value: Any) -> tuple[str, Span | None, Any]:
        return (keyword, self.span(meta), value)

    def t_partner_clause(self, meta: Any, kids: list[Any]) -> tuple[str, Span | None, Any]:
        return self._clause("partner", meta, kids[0])

    def t_purpose_clause(self, meta: Any, kids: list[Any]) -> tuple[str, Span | None, Any]:
        return self._clause("purpose", meta, kids[0])

    def t_select_names(self, meta: Any, kids: list[Any]) -> n.Selector:
        return n.Selector(False, kids[0], span=self.span(meta))

    def t_select_all(self, meta: Any, kids: list[Any]) -> n.Selector:
        return n.Selector(True, (), span=self.span(meta))

    def t_select_except(self, meta: Any, kids: list[Any]) -> n.Selector:
        return n.Selector(True, kids[0], span=self.span(meta))

    def t_name_list(self, meta: Any, kids: list[n.Name]) -> tuple[n.Name, ...]:
        return tuple(kids)

    def t_fields_clause(self, meta: Any, kids: list[Any]) -> tuple[str, Span | None, Any]:
        refs: list[n.FieldRef] = []
        for k in kids:
            refs.extend(k)
        return self._clause("fields", meta, tuple(refs))

    def t_field_one(self, meta: Any, kids: list[Any]) -> list[n.FieldRef]:
        transform = kids[2][1] if len(kids) > 2 else None
        return [n.FieldRef(kids[0], kids[1], transform, span=self.span(meta))]

    def t_field_group(self, meta: Any, kids: list[Any]) -> list[n.FieldRef]:
        ds = kids[0]
        names = [k for k in kids[1:] if not isinstance(k, tuple)]
        self._group_transform(kids, "`dataset.{...}`")
        return [n.FieldRef(ds, f, None, span=ds.span.to(f.span) if ds.span else f.span) for f in names]

    def t_field_all(self, meta: Any, kids: list[Any]) -> list[n.FieldRef]:
        ds = kids[0]
        self._group_transform(kids, "`dataset.*`")
        span = self.span(meta)
        return [n.FieldRef(ds, n.Name("*", span=span), None, span=span)]

    def _group_transform(self, kids: list[Any], what: str) -> None:
        for k in kids:
            if isinstance(k, tuple):
                _, name = k
                self.error(name.span, "E310", f"a transform applies to one field, not to {what}",
                           help=f"write the field on its own: `dataset.field as {name.value}`")

    def t_transform(self, meta: Any, kids: list[n.Name]) -> tuple[str, n.Name]:
        return ("transform", kids[0])

    def t_basis_clause(self, meta: Any, kids: list[Any]) -> tuple[str, Span | None, Any]:
        return self._clause("basis", meta, kids[0])

    def t_basis_plain(self, meta: Any, kids: list[n.Name]) -> n.Basis:
        return n.Basis(kids[0], None, span=self.span(meta))

    def t_basis_law(self, meta: Any, kids: list[Any]) -> n.Basis:
        return n.Basis(kids[0], None, self.string(kids[1]), span=self.span(meta))

    def t_basis_consent(self, meta: Any, kids: list[n.Name]) -> n.Basis:
        span = self.span(meta)
        kind_span = Span(span.file, span.line, span.column, span.line, span.column + 7) if span else None
        return n.Basis(n.Name("consent", span=kind_span), kids[0], span=span)

    def t_art9_clause(self, meta: Any, kids: list[n.Name]) -> tuple[str, Span | None, Any]:
        return self._clause("art9", meta, (kids[0], kids[1] if len(kids) > 1 else None))

    def t_dpia_clause(self, meta: Any, kids: list[Token]) -> tuple[str, Span | None, Any]:
        return self._clause("dpia", meta, self.string(kids[0]))

    def t_students_clause(self, meta: Any, kids: list[Any]) -> tuple[str, Span | None, Any]:
        return self._clause("students", meta, kids[0])

    def t_valid_clause(self, meta: Any, kids: list[Any]) -> tuple[str, Span | None, Any]:
        return self._clause("valid", meta, kids[0])

    def t_retain_clause(self, meta: Any, kids: list[Any]) -> tuple[str, Span | None, Any]:
        duration = n.Duration(self.integer(kids[0]), kids[1], span=self.span(meta))
        return self._clause("retain", meta, duration)

    def t_note_clause(self, meta: Any, kids: list[Token]) -> tuple[str, Span | None, Any]:
        return self._clause("note", meta, self.string(kids[0]))

    # conditions
    def t_or_(self, meta: Any, kids: list[Any]) -> Any:
        return kids[0] if len(kids) == 1 else n.Or(tuple(kids), span=self.span(meta))

    def t_and_(self, meta: Any, kids: list[Any]) -> Any:
        return kids[0] if len(kids) == 1 else n.And(tuple(kids), span=self.span(meta))

    def t_not_(self, meta: Any, kids: list[Any]) -> n.Not:
        return n.Not(kids[0], span=self.span(meta))

    def t_compare(self, meta: Any, kids: list[Any]) -> n.Compare:
        return n.Compare(kids[1].value, kids[0], kids[2], span=self.span(meta))

    def t_in_list(self, meta: Any, kids: list[Any], negated: bool = False) -> n.InList:
        values = kids[1] if len(kids) > 1 else ()
        return n.InList(kids[0], tuple(values), negated, span=self.span(meta))

    def t_not_in_list(self, meta: Any, kids: list[Any]) -> n.InList:
        return self.t_in_list(meta, kids, negated=True)

    def t_in_range(self, meta: Any, kids: list[Any], negated: bool = False) -> n.InRange:
        return n.InRange(kids[0], kids[1], kids[2], negated, span=self.span(meta))

    def t_not_in_range(self, meta: Any, kids: list[Any]) -> n.InRange:
        return self.t_in_range(meta, kids, negated=True)

    def t_in_set(self, meta: Any, kids: list[Any], negated: bool = False) -> n.InSet:
        container = n.Ref(kids[1].value, span=kids[1].span)
        return n.InSet(kids[0], container, negated, span=self.span(meta))

    def t_not_in_set(self, meta: Any, kids: list[Any]) -> n.InSet:
        return self.t_in_set(meta, kids, negated=True)

    def t_ref(self, meta: Any, kids: list[n.Name]) -> n.Ref:
        return n.Ref(kids[0].value, span=kids[0].span)

    def t_literal_list(self, meta: Any, kids: list[n.Literal]) -> tuple[n.Literal, ...]:
        return tuple(kids)

    def t_lit_string(self, meta: Any, kids: list[Token]) -> n.Literal:
        return n.Literal(self.string(kids[0]), "text", span=self.token_span(kids[0]))

    def t_lit_int(self, meta: Any, kids: list[Token]) -> n.Literal:
        return n.Literal(self.integer(kids[0]), "int", span=self.token_span(kids[0]))

    def t_lit_date(self, meta: Any, kids: list[Token]) -> n.Literal:
        value = self.date(kids[0]) or datetime.date.min
        return n.Literal(value, "date", span=self.token_span(kids[0]))

    def t_lit_true(self, meta: Any, kids: list[Token]) -> n.Literal:
        return n.Literal(True, "bool", span=self.span(meta))

    def t_lit_false(self, meta: Any, kids: list[Token]) -> n.Literal:
        return n.Literal(False, "bool", span=self.span(meta))

    # tests
    def t_test(self, meta: Any, kids: list[Any]) -> n.Test:
        name = kids[0]
        single: dict[str, Any] = {}
        spans: list[tuple[str, Span]] = []
        consents: list[n.ConsentGiven] = []
        expects: list[n.Expect] = []
        for keyword, span, value in kids[1:]:
            if keyword == "consent":
                consents.append(value)
                continue
            if keyword == "expect":
                expects.append(value)
                continue
            if keyword in single:
                self.error(span, "E006", f"clause `{keyword}` appears more than once in test `{name}`",
                           help=f"keep one `{keyword}` clause")
                continue
            if keyword in ("partner", "purpose"):
                sel: n.Selector = value
                if sel.everything or len(sel.names) != 1:
                    self.error(span, "E001", f"a test names exactly one {keyword}",
                               help=f"write `{keyword} NAME`; split the test to cover several")
                    continue
                value = sel.names[0]
            single[keyword] = value
            spans.append((keyword, span))
        return n.Test(name, single.get("at"), single.get("partner"), single.get("purpose"),
                      single.get("student", ()), tuple(consents), tuple(expects),
                      clauses=tuple(spans), span=self.span(meta))

    def t_at_clause(self, meta: Any, kids: list[Token]) -> tuple[str, Span | None, Any]:
        tok = kids[0]
        value: datetime.date | datetime.datetime | None
        if tok.type == "DATETIME":
            try:
                value = datetime.datetime.fromisoformat(tok.value)
            except ValueError:
                self.error(self.token_span(tok), "E003", f"`{tok.value}` is not a valid date and time",
                           help="write YYYY-MM-DDTHH:MM, e.g. 2025-10-01T14:30")
                value = None
        else:
            value = self.date(tok)
        return self._clause("at", meta, value)

    def t_student_clause(self, meta: Any, kids: list[n.StudentValue]) -> tuple[str, Span | None, Any]:
        seen: set[str] = set()
        for item in kids:
            if item.key.value in seen:
                self.error(item.key.span, "E201", f"student key `{item.key.value}` is given twice",
                           help="keep one value per field")
            seen.add(item.key.value)
        return self._clause("student", meta, tuple(kids))

    def t_student_item(self, meta: Any, kids: list[Any]) -> n.StudentValue:
        value = kids[1]
        if isinstance(value, n.Literal):
            return n.StudentValue(kids[0], value.value, value.type, span=self.span(meta))
        return n.StudentValue(kids[0], value, "set", span=self.span(meta))

    def t_list_value(self, meta: Any, kids: list[Any]) -> Any:
        literals = kids[0] if kids else ()
        bad = [lit for lit in literals if lit.type != "text"]
        for lit in bad:
            self.error(lit.span, "E301", "a list value in a test student holds strings only",
                       help='write the set as ["a", "b"]')
        return frozenset(lit.value for lit in literals if lit.type == "text")

    def t_consent_clause(self, meta: Any, kids: list[Any]) -> tuple[str, Span | None, Any]:
        withdrawn = kids[3] if len(kids) > 3 else None
        given = self.date(kids[2]) or datetime.date.min
        value = n.ConsentGiven(kids[0], kids[1], given, withdrawn, span=self.span(meta))
        return self._clause("consent", meta, value)

    def t_party(self, meta: Any, kids: list[n.Name]) -> n.Name:
        return kids[0]

    def t_party_student(self, meta: Any, kids: list[Any]) -> n.Name:
        return n.Name("student", span=self.span(meta))

    def t_withdrawn(self, meta: Any, kids: list[Token]) -> datetime.date | None:
        return self.date(kids[0])

    def t_expect_clause(self, meta: Any, kids: list[Any]) -> tuple[str, Span | None, Any]:
        allow = kids[0].type == "ALLOW"
        refs: list[n.FieldRef] = []
        because = None
        for k in kids[1:]:
            if isinstance(k, list):
                refs.extend(k)
            elif isinstance(k, n.Name):
                because = k
        return self._clause("expect", meta, n.Expect(allow, tuple(refs), because, span=self.span(meta)))

    def t_because(self, meta: Any, kids: list[n.Name]) -> n.Name:
        return kids[0]


_EXPR_RULES = frozenset({"or_", "and_", "not_", "compare", "in_list", "not_in_list", "in_range",
                         "not_in_range", "in_set", "not_in_set"})


def parse(source: Source, *, fast: bool = True) -> tuple[n.File, list[Diagnostic]]:
    """Parse one source text: its nodes and the syntax diagnostics found (never raises).

    ``fast=False`` parses every declaration with Lark (the reference for the fast path).
    """
    p = _FileParser(source, fast=fast)
    with paused_gc():
        file = p.parse()
    return file, p.diagnostics
