"""Fast path of the parser: a hand-written recursive descent over one declaration.

Lark's LALR parser (``parser.py``, ``grammar/avg.lark``) is the definition of the
language and produces every syntax diagnostic, but in pure Python it spends tens of
microseconds per token, too slow for policy sets of many thousands of rules. This
module parses the same declarations to the *same* nodes, spans included (a
differential test holds it to that), and gives up with ``Fallback`` at the first thing
it is not sure about: any syntax error, a keyword used as a name, an invalid date, an
over-long integer, deep nesting, a repeated clause. The caller then parses that
declaration with Lark, which reports the problem. So the fast path never decides what
is valid; it only makes the valid case cheap.

Spans follow Lark's ``propagate_positions``: a node runs from its first to its last
token, and a parenthesised child counts with its parentheses (its "container") when
a parent's span is computed, while the child node keeps its own span.
"""

from __future__ import annotations

import datetime
import difflib
import re
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

from . import nodes as n
from .source import Span

# Blanks are consumed in front of each token, so a match is one token (or a line break).
_TOKEN_RE = re.compile(r"""
    [ \t\f\r]*
    (?:
      (?P<NL>\n)
    | (?P<COMMENT>\#[^\n]*)
    | (?P<DATETIME>[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}(?::[0-9]{2})?)
    | (?P<DATE>[0-9]{4}-[0-9]{2}-[0-9]{2})
    | (?P<INT>-?[0-9]+)
    | (?P<IDENT>[A-Za-z_][A-Za-z0-9_-]*)
    | (?P<STRING>"(?:[^"\\]|\\["\\])*")
    | (?P<COMPARE>==|!=|<=|>=|<|>)
    | (?P<PUNCT>\.\.|[{}()\[\],.:*])
    )
""", re.VERBOSE)
_TRAILING_BLANKS_RE = re.compile(r"[ \t\f\r]*\Z")
_UNESCAPE_RE = re.compile(r"\\([\"\\])")
#: Above this nesting depth the fast path leaves the declaration to Lark (which reports E005).
_MAX_FAST_DEPTH = 24
_MAX_INT_DIGITS = 4000

# token: (kind, value, line, column, end_line, end_column)
Token = tuple[str, str, int, int, int, int]


class Fallback(Exception):
    """The fast path is not sure: parse this declaration with Lark instead."""


# ---------------------------------------------------------------------------
# v2 settings (spec 7): `WORD ARG, ARG, ...` in controller, partner and agreement
# bodies. Both paths parse a setting to ``Setting`` and read it here, so they agree
# on what each clause means; the Lark path reports what is wrong, the fast path
# falls back instead.


class StrArg(NamedTuple):
    """A string argument of a setting, unescaped, with its location."""

    value: str
    span: Span


class Setting(NamedTuple):
    """One v2 body clause as parsed: its word, the span of the whole clause, its arguments.

    Each argument is a ``Name``, a ``StrArg``, a ``Duration`` or a list of ``FieldRef``
    (one field reference, ``dataset.{...}`` written out).
    """

    word: n.Name
    span: Span
    args: list[Any]


#: (keyword, span, value) of a clause that the grammar parses with a keyword of its own
Shaped = tuple[str, Span, Any]
ErrorFn = Callable[[Span | None, str, str, str | None], None]

CONTROLLER_CLAUSES = ("kind", "dpo", "breach_handling")
PARTNER_CLAUSES = ("role", "kind", "location", "transfer", "agreement")
AGREEMENT_CLAUSES = ("model", "covers", "purposes", "retain", "breach", "dpia")
# what each setting takes, and an example shown when it is written wrongly
_SHAPES: dict[str, tuple[str, str]] = {
    "kind": ("name", "kind public"), "dpo": ("string", 'dpo "fg@school.nl"'),
    "breach_handling": ("duration", "breach_handling 24 hours"), "role": ("name", "role processor"),
    "location": ("name", "location NL"), "transfer": ("name", "transfer scc"),
    "model": ("name", "model convenant_4"), "covers": ("refs", "covers leerling.{eckid, roepnaam}"),
    "purposes": ("names", "purposes leermiddelen, toetsing"), "breach": ("duration", "breach 24 hours"),
}
_SHAPE_WORDS = {"name": "one name", "string": "one string", "duration": "an amount and a unit",
                "refs": "fields as `dataset.field`", "names": "names separated by `,`"}


class _Bad(Exception):
    pass


def _shape(word: str, setting: Setting, error: ErrorFn, what: str) -> Any:
    shape, example = _SHAPES[word]
    args = setting.args
    ok = True
    value: Any = None
    if shape in ("name", "string", "duration"):
        kind = {"name": n.Name, "string": StrArg, "duration": n.Duration}[shape]
        ok = len(args) == 1 and isinstance(args[0], kind)
        if ok:
            value = args[0]
            if shape == "string":
                value = value.value
            elif shape == "duration":
                value = n.Duration(value.amount, value.unit, span=setting.span)
    elif shape == "names":
        ok = all(isinstance(a, n.Name) for a in args)
        value = tuple(args)
    else:  # refs
        ok = all(isinstance(a, list) for a in args)
        refs = [r for a in args if isinstance(a, list) for r in a]
        for r in refs:
            if r.transform is not None:
                error(r.transform.span, "E001", f"a transform does not belong in `{word}`",
                      f"`{word}` lists the fields the agreement covers; remove `as {r.transform.value}`")
                raise _Bad
        value = tuple(refs)
    if not ok:
        error(setting.span, "E001", f"`{word}` in {what} takes {_SHAPE_WORDS[shape]}",
              f"write e.g. `{example}`")
        raise _Bad
    return value


def read_settings(items: Iterable[Setting | Shaped], allowed: tuple[str, ...], what: str,
                  error: ErrorFn) -> tuple[dict[str, Any], tuple[tuple[str, Span], ...]]:
    """The values of a body's clauses by keyword, and (keyword, span) in the order written.

    A clause word not in ``allowed``, a value of the wrong shape and a repeated clause
    are reported through ``error`` (the fast path's raises ``Fallback``) and left out.
    """
    values: dict[str, Any] = {}
    spans: list[tuple[str, Span]] = []
    for item in items:
        if isinstance(item, Setting):
            word = item.word.value
            span = item.span
            if word not in allowed:
                close = difflib.get_close_matches(word, allowed, n=1, cutoff=0.6)
                listed = ", ".join(f"`{a}`" for a in allowed[:-1]) + f" or `{allowed[-1]}`"
                error(item.word.span, "E001", f"unknown clause `{word}` in {what}; expected {listed}",
                      f"did you mean `{close[0]}`?" if close else "remove it or write one of the clauses listed")
                continue
            try:
                value = _shape(word, item, error, what)
            except _Bad:
                continue
        else:
            word, span, value = item
        if word in values:
            error(span, "E006", f"clause `{word}` appears more than once in {what}",
                  f"keep one `{word}` clause")
            continue
        values[word] = value
        spans.append((word, span))
    return values, tuple(spans)


def purpose_kind(word: n.Name, value: n.Name, error: ErrorFn) -> n.Name | None:
    """The kind of ``purpose NAME "title" kind KIND``, or None (reported) when the word is not ``kind``."""
    if word.value != "kind":
        error(word.span, "E001", f"unexpected `{word.value}` after a purpose; expected `kind`",
              "write the purpose's kind as `kind KIND`, e.g. `kind education`")
        return None
    return value


def _fallback(span: Span | None, code: str, message: str, help: str | None) -> None:
    raise Fallback


def tokenize(text: str, first_line: int) -> list[Token]:
    """Tokens of ``text`` (which starts at a line start), lines counted from ``first_line``.

    The list ends with an ``EOF`` token, so the parser can look ahead without bounds checks.
    """
    out: list[Token] = []
    append = out.append
    line = first_line
    line_start = 0
    pos = 0
    match = _TOKEN_RE.match
    length = len(text)
    while pos < length:
        m = match(text, pos)
        if m is None:
            if _TRAILING_BLANKS_RE.match(text, pos):
                break
            raise Fallback  # a character no token starts with
        kind = m.lastgroup
        value = m.group(kind)  # type: ignore[arg-type]
        end = m.end()
        if kind == "NL":
            line += 1
            line_start = end
        elif kind == "STRING" and "\n" in value:
            start = end - len(value)
            breaks = value.count("\n")
            last = text.rfind("\n", start, end) + 1
            append((kind, value, line, start - line_start + 1, line + breaks, end - last + 1))
            line += breaks
            line_start = last
        elif kind != "COMMENT":
            col = end - len(value) - line_start + 1
            append((kind, value, line, col, line, col + len(value)))  # type: ignore[arg-type]
        pos = end
    append(("EOF", "", line, 0, line, 0))
    return out


def _date(value: str) -> datetime.date:
    try:
        return datetime.date.fromisoformat(value)
    except ValueError:
        raise Fallback from None


class FastParser:
    """Parses one declaration's tokens to nodes, or raises ``Fallback``."""

    def __init__(self, file: str, tokens: list[Token], reserved: frozenset[str]) -> None:
        self.file = file
        self.toks = tokens
        self.i = 0
        self.reserved = reserved

    # -- token helpers ----------------------------------------------------
    def peek(self) -> Token:
        return self.toks[self.i]

    def next(self) -> Token:
        tok = self.toks[self.i]
        if tok[0] == "EOF":
            raise Fallback
        self.i += 1
        return tok

    def is_word(self, word: str) -> bool:
        tok = self.toks[self.i]
        return tok[1] == word and tok[0] == "IDENT"

    def is_punct(self, p: str) -> bool:
        tok = self.toks[self.i]
        return tok[1] == p and tok[0] == "PUNCT"

    def word(self, word: str) -> Token:
        tok = self.toks[self.i]
        if tok[1] != word or tok[0] != "IDENT":
            raise Fallback
        self.i += 1
        return tok

    def punct(self, p: str) -> Token:
        tok = self.toks[self.i]
        if tok[1] != p or tok[0] != "PUNCT":
            raise Fallback
        self.i += 1
        return tok

    def kind(self, kind: str) -> Token:
        tok = self.toks[self.i]
        if tok[0] != kind:
            raise Fallback
        self.i += 1
        return tok

    def span(self, first: Token | Span, last: Token | Span) -> Span:
        if isinstance(first, Span):
            line, col = first.line, first.column
        else:
            line, col = first[2], first[3]
        if isinstance(last, Span):
            return Span(self.file, line, col, last.end_line, last.end_column)
        return Span(self.file, line, col, last[4], last[5])

    def tspan(self, tok: Token) -> Span:
        return Span(self.file, tok[2], tok[3], tok[4], tok[5])

    def name(self) -> n.Name:
        tok = self.toks[self.i]
        if tok[0] != "IDENT" or tok[1] in self.reserved:
            raise Fallback
        self.i += 1
        return n.Name(tok[1], span=Span(self.file, tok[2], tok[3], tok[4], tok[5]))

    def at_name(self) -> bool:
        tok = self.toks[self.i]
        return tok[0] == "IDENT" and tok[1] not in self.reserved

    @staticmethod
    def string(tok: Token) -> str:
        return _UNESCAPE_RE.sub(r"\1", tok[1][1:-1])

    def opt_string(self) -> tuple[str | None, Token | None]:
        tok = self.toks[self.i]
        if tok[0] == "STRING":
            self.i += 1
            return self.string(tok), tok
        return None, None

    # -- declarations ---------------------------------------------------------
    def declaration(self, *, last: bool = True) -> n.Declaration:
        tok = self.peek()
        if tok[0] != "IDENT":
            raise Fallback
        method = {"controller": self.controller, "dataset": self.dataset, "partner": self.partner,
                  "purpose": self.purpose, "consent": self.consent_topic, "permit": self.rule, "forbid": self.rule,
                  "test": self.test}.get(tok[1])
        if method is None:
            raise Fallback
        decl = method()
        if last and self.toks[self.i][0] != "EOF":
            raise Fallback
        return decl

    def dataset(self) -> n.Dataset:
        first = self.word("dataset")
        name = self.name()
        title, _ = self.opt_string()
        subject = False
        if self.is_word("subject"):
            self.i += 1
            subject = True
        self.punct("{")
        fields: list[n.FieldDecl] = []
        while not self.is_punct("}"):
            a, b, c = self.name(), self.name(), self.name()
            assert a.span is not None and c.span is not None
            role = None
            tok = self.toks[self.i]
            if tok[0] == "IDENT" and (tok[1] == "key" or tok[1] == "left"):
                self.i += 1
                role = n.Name(tok[1], span=self.tspan(tok))
            fields.append(n.FieldDecl(a, b, c, role, span=a.span.to((role or c).span)))
        last = self.punct("}")
        return n.Dataset(name, title, subject, tuple(fields), span=self.span(first, last))

    def window(self) -> n.Window:
        first = last = self.word("valid")
        start = end = None
        seen = False
        if self.is_word("from"):
            self.i += 1
            last = self.kind("DATE")
            start = _date(last[1])
            seen = True
        if self.is_word("until"):
            self.i += 1
            last = self.kind("DATE")
            end = _date(last[1])
            seen = True
        if not seen:
            raise Fallback
        return n.Window(start, end, span=self.span(first, last))

    def partner(self) -> n.Partner:
        first = self.word("partner")
        name = self.name()
        last: Token | Span = name.span  # type: ignore[assignment]
        title, tok = self.opt_string()
        if tok is not None:
            last = tok
        agreements: list[n.Agreement] = []
        items: list[Setting | Shaped] = []
        if self.is_punct("{"):
            self.i += 1
            while not self.is_punct("}"):
                if self.is_word("agreement"):
                    agreements.append(self.agreement())
                else:
                    items.append(self.setting())
            last = self.punct("}")
        values, spans = read_settings(items, PARTNER_CLAUSES, f"partner `{name.value}`", _fallback)
        return n.Partner(name, title, tuple(agreements), values.get("role"), values.get("kind"),
                         values.get("location"), values.get("transfer"),
                         clauses=spans, span=self.span(first, last))

    def agreement(self) -> n.Agreement:
        a_first = self.next()
        ref = self.kind("STRING")
        w = self.window()
        assert w.span is not None
        last: Token | Span = w.span
        items: list[Setting | Shaped] = []
        if self.is_punct("{"):
            self.i += 1
            while not self.is_punct("}"):
                tok = self.peek()
                if tok[0] == "IDENT" and (tok[1] == "retain" or tok[1] == "dpia"):
                    items.append(self.clause())
                else:
                    items.append(self.setting())
            last = self.next()
        reference = self.string(ref)
        values, spans = read_settings(items, AGREEMENT_CLAUSES, f"agreement \"{reference}\"", _fallback)
        return n.Agreement(reference, w, values.get("covers"), values.get("purposes"), values.get("retain"),
                           values.get("breach"), values.get("dpia"), values.get("model"), clauses=spans,
                           span=self.span(a_first, last))

    def setting(self) -> Setting:
        word = self.name()
        args = [self.setting_arg()]
        while self.is_punct(","):
            self.i += 1
            args.append(self.setting_arg())
        last = self.toks[self.i - 1]
        return Setting(word, self.span(word.span, last), args)  # type: ignore[arg-type]

    def setting_arg(self) -> Any:
        tok = self.peek()
        kind = tok[0]
        if kind == "STRING":
            self.i += 1
            return StrArg(self.string(tok), self.tspan(tok))
        if kind == "INT":
            self.i += 1
            if len(tok[1]) > _MAX_INT_DIGITS:
                raise Fallback
            unit = self.name()
            return n.Duration(int(tok[1]), unit, span=self.span(tok, unit.span))  # type: ignore[arg-type]
        if kind == "IDENT" and tok[1] == "controller":
            self.i += 1
            return n.Name("controller", span=self.tspan(tok))
        if kind != "IDENT":
            raise Fallback
        nxt = self.toks[self.i + 1]
        if nxt[0] == "PUNCT" and nxt[1] == ".":
            return self.field_ref()
        return self.name()

    def controller(self) -> n.Controller:
        first = self.word("controller")
        title = self.kind("STRING")
        last: Token = title
        items: list[Setting | Shaped] = []
        if self.is_punct("{"):
            self.i += 1
            while not self.is_punct("}"):
                items.append(self.setting())
            last = self.next()
        values, spans = read_settings(items, CONTROLLER_CLAUSES, "the controller", _fallback)
        return n.Controller(self.string(title), values.get("kind"), values.get("dpo"),
                            values.get("breach_handling"), clauses=spans, span=self.span(first, last))

    def purpose(self) -> n.Purpose:
        first = self.word("purpose")
        name = self.name()
        title, tok = self.opt_string()
        kind = None
        last: Token | Span = tok or name.span  # type: ignore[assignment]
        if self.at_name():
            word = self.name()
            kind = purpose_kind(word, self.name(), _fallback)
            last = kind.span  # type: ignore[union-attr,assignment]
        return n.Purpose(name, title, kind, span=self.span(first, last))

    def consent_topic(self) -> n.ConsentTopic:
        first = self.word("consent")
        name = self.name()
        last: Token | Span = name.span  # type: ignore[assignment]
        title, tok = self.opt_string()
        if tok is not None:
            last = tok
        reconfirm = False
        if self.is_word("reconfirm_at_16"):
            last = self.next()
            reconfirm = True
        return n.ConsentTopic(name, title, reconfirm, span=self.span(first, last))

    # -- rules -------------------------------------------------------------------
    def selector(self) -> n.Selector:
        if self.is_punct("*"):
            star = self.next()
            if self.is_word("except"):
                self.i += 1
                names = self.name_list()
                return n.Selector(True, names, span=self.span(star, names[-1].span))  # type: ignore[arg-type]
            return n.Selector(True, (), span=self.tspan(star))
        names = self.name_list()
        return n.Selector(False, names, span=self.span(names[0].span, names[-1].span))  # type: ignore[arg-type]

    def name_list(self) -> tuple[n.Name, ...]:
        names = [self.name()]
        while self.is_punct(","):
            self.i += 1
            names.append(self.name())
        return tuple(names)

    def field_ref(self) -> list[n.FieldRef]:
        ds = self.name()
        self.punct(".")
        if self.is_punct("*"):
            star = self.next()
            span = self.span(ds.span, star)  # type: ignore[arg-type]
            if self.is_word("as"):
                raise Fallback  # a transform on `dataset.*`: Lark's path reports E310
            return [n.FieldRef(ds, n.Name("*", span=span), None, span=span)]
        if self.is_punct("{"):
            self.i += 1
            names = self.name_list()
            self.punct("}")
            if self.is_word("as"):
                raise Fallback
            return [n.FieldRef(ds, f, None, span=ds.span.to(f.span)) for f in names]  # type: ignore[union-attr]
        field = self.name()
        transform = None
        if self.is_word("as"):
            self.i += 1
            transform = self.name()
        last = transform or field
        return [n.FieldRef(ds, field, transform, span=ds.span.to(last.span))]  # type: ignore[union-attr]

    def field_refs(self) -> tuple[list[n.FieldRef], Span]:
        refs = self.field_ref()
        last_span = self.toks[self.i - 1]
        while self.is_punct(","):
            self.i += 1
            refs.extend(self.field_ref())
            last_span = self.toks[self.i - 1]
        return refs, self.tspan(last_span)

    def rule(self) -> n.Rule:
        first = self.next()
        effect = first[1]
        name = self.name()
        self.punct("{")
        seen: dict[str, Any] = {}
        spans: list[tuple[str, Span]] = []
        while not self.is_punct("}"):
            keyword, span, value = self.clause()
            if keyword in seen:
                raise Fallback
            seen[keyword] = value
            spans.append((keyword, span))
        last = self.next()
        art9 = seen.get("art9")
        return n.Rule(effect, name, seen.get("partner"), seen.get("purpose"), seen.get("fields"),  # type: ignore[arg-type]
                      seen.get("basis"), art9[0] if art9 else None, seen.get("students"), seen.get("valid"),
                      seen.get("retain"), seen.get("note"), art9[1] if art9 else None, seen.get("dpia"),
                      clauses=tuple(spans), span=self.span(first, last))

    def clause(self) -> tuple[str, Span, Any]:
        tok = self.peek()
        if tok[0] != "IDENT":
            raise Fallback
        word = tok[1]
        if word == "valid":
            w = self.window()
            return "valid", w.span, w  # type: ignore[return-value]
        self.i += 1
        if word in ("partner", "purpose"):
            sel = self.selector()
            return word, self.span(tok, sel.span), sel  # type: ignore[arg-type]
        if word == "fields":
            refs, end = self.field_refs()
            return word, self.span(tok, end), tuple(refs)
        if word == "basis":
            if self.is_word("consent"):
                c = self.next()
                self.punct("(")
                topic = self.name()
                close = self.punct(")")
                span = self.span(c, close)
                kind = n.Name("consent", span=Span(self.file, span.line, span.column, span.line, span.column + 7))
                return word, self.span(tok, close), n.Basis(kind, topic, span=span)
            kind_name = self.name()
            if self.is_punct("("):
                self.i += 1
                law = self.kind("STRING")
                close = self.punct(")")
                span = self.span(kind_name.span, close)  # type: ignore[arg-type]
                return word, self.span(tok, close), n.Basis(kind_name, None, self.string(law), span=span)
            return word, self.span(tok, kind_name.span), n.Basis(kind_name, None, span=kind_name.span)  # type: ignore[arg-type]
        if word == "art9":
            ground = self.name()
            if self.is_punct("("):
                self.i += 1
                topic = self.name()
                close = self.punct(")")
                return word, self.span(tok, close), (ground, topic)
            return word, self.span(tok, ground.span), (ground, None)  # type: ignore[arg-type]
        if word == "dpia":
            text = self.kind("STRING")
            return word, self.span(tok, text), self.string(text)
        if word == "students":
            self.word("where")
            expr, _start, end = self.expr(0)
            return word, self.span(tok, end), expr
        if word == "retain":
            amount = self.kind("INT")
            if len(amount[1]) > _MAX_INT_DIGITS:
                raise Fallback
            unit = self.name()
            span = self.span(tok, unit.span)  # type: ignore[arg-type]
            return word, span, n.Duration(int(amount[1]), unit, span=span)
        if word == "note":
            text = self.kind("STRING")
            return word, self.span(tok, text), self.string(text)
        raise Fallback

    # -- conditions ---------------------------------------------------------------
    # each returns (node, container start, container end): the container includes parentheses

    def expr(self, depth: int) -> tuple[n.Expr, Span, Span]:
        if depth > _MAX_FAST_DEPTH:
            raise Fallback
        items = [self.and_expr(depth + 1)]
        while self.is_word("or"):
            self.i += 1
            items.append(self.and_expr(depth + 1))
        if len(items) == 1:
            return items[0]
        span = self.span(items[0][1], items[-1][2])
        return n.Or(tuple(i[0] for i in items), span=span), span, span

    def and_expr(self, depth: int) -> tuple[n.Expr, Span, Span]:
        items = [self.not_expr(depth + 1)]
        while self.is_word("and"):
            self.i += 1
            items.append(self.not_expr(depth + 1))
        if len(items) == 1:
            return items[0]
        span = self.span(items[0][1], items[-1][2])
        return n.And(tuple(i[0] for i in items), span=span), span, span

    def not_expr(self, depth: int) -> tuple[n.Expr, Span, Span]:
        if depth > _MAX_FAST_DEPTH:
            raise Fallback
        if self.is_word("not"):
            tok = self.next()
            operand, _s, end = self.not_expr(depth + 1)
            span = self.span(tok, end)
            return n.Not(operand, span=span), span, span
        if self.is_punct("("):
            open_ = self.next()
            inner, _s, _e = self.expr(depth + 1)
            close = self.punct(")")
            return inner, self.tspan(open_), self.tspan(close)
        return self.comparison()

    def operand(self) -> n.Operand:
        tok = self.next()
        kind, value = tok[0], tok[1]
        span = self.tspan(tok)
        if kind == "IDENT":
            if value == "true":
                return n.Literal(True, "bool", span=span)
            if value == "false":
                return n.Literal(False, "bool", span=span)
            if value in self.reserved:
                raise Fallback
            return n.Ref(value, span=span)
        return self.literal_of(tok)

    def literal_of(self, tok: Token) -> n.Literal:
        kind, value = tok[0], tok[1]
        span = self.tspan(tok)
        if kind == "STRING":
            return n.Literal(self.string(tok), "text", span=span)
        if kind == "INT":
            if len(value) > _MAX_INT_DIGITS:
                raise Fallback
            return n.Literal(int(value), "int", span=span)
        if kind == "DATE":
            return n.Literal(_date(value), "date", span=span)
        if kind == "IDENT" and value in ("true", "false"):
            return n.Literal(value == "true", "bool", span=span)
        raise Fallback

    def literal(self) -> n.Literal:
        return self.literal_of(self.next())

    def literal_list(self) -> tuple[tuple[n.Literal, ...], Token]:
        values: list[n.Literal] = []
        if not self.is_punct("]"):
            values.append(self.literal())
            while self.is_punct(","):
                self.i += 1
                values.append(self.literal())
        close = self.punct("]")
        return tuple(values), close

    def comparison(self) -> tuple[n.Expr, Span, Span]:
        left = self.operand()
        tok = self.next()
        node: n.Expr
        if tok[0] == "COMPARE":
            right = self.operand()
            span = self.span(left.span, right.span)  # type: ignore[arg-type]
            node = n.Compare(tok[1], left, right, span=span)  # type: ignore[arg-type]
            return node, span, span
        negated = False
        if tok[0] == "IDENT" and tok[1] == "not":
            negated = True
            tok = self.next()
        if tok[0] != "IDENT" or tok[1] != "in":
            raise Fallback
        if self.is_punct("["):
            self.i += 1
            values, close = self.literal_list()
            span = self.span(left.span, close)  # type: ignore[arg-type]
            return n.InList(left, values, negated, span=span), span, span
        if self.at_name():
            container = self.name()
            span = self.span(left.span, container.span)  # type: ignore[arg-type]
            ref = n.Ref(container.value, span=container.span)
            return n.InSet(left, ref, negated, span=span), span, span
        low = self.literal()
        self.punct("..")
        high = self.literal()
        span = self.span(left.span, high.span)  # type: ignore[arg-type]
        return n.InRange(left, low, high, negated, span=span), span, span

    # -- tests -------------------------------------------------------------------------
    def test(self) -> n.Test:
        first = self.word("test")
        name = self.name()
        self.punct("{")
        single: dict[str, Any] = {}
        spans: list[tuple[str, Span]] = []
        consents: list[n.ConsentGiven] = []
        expects: list[n.Expect] = []
        while not self.is_punct("}"):
            tok = self.next()
            if tok[0] != "IDENT":
                raise Fallback
            word = tok[1]
            value: Any
            if word == "consent":
                consents.append(self.consent_given(tok))
                continue
            if word == "expect":
                expects.append(self.expect(tok))
                continue
            if word == "at":
                at = self.next()
                if at[0] == "DATETIME":
                    try:
                        value = datetime.datetime.fromisoformat(at[1])
                    except ValueError:
                        raise Fallback from None
                elif at[0] == "DATE":
                    value = _date(at[1])
                else:
                    raise Fallback
                span = self.span(tok, at)
            elif word in ("partner", "purpose"):
                sel = self.selector()
                if sel.everything or len(sel.names) != 1:
                    raise Fallback
                value = sel.names[0]
                span = self.span(tok, sel.span)  # type: ignore[arg-type]
            elif word == "student":
                value, close = self.student()
                span = self.span(tok, close)
            else:
                raise Fallback
            if word in single:
                raise Fallback
            single[word] = value
            spans.append((word, span))
        last = self.next()
        return n.Test(name, single.get("at"), single.get("partner"), single.get("purpose"),
                      single.get("student", ()), tuple(consents), tuple(expects),
                      clauses=tuple(spans), span=self.span(first, last))

    def student(self) -> tuple[tuple[n.StudentValue, ...], Token]:
        self.punct("{")
        items: list[n.StudentValue] = []
        keys: set[str] = set()
        while not self.is_punct("}"):
            key = self.name()
            if key.value in keys:
                raise Fallback
            keys.add(key.value)
            self.punct(":")
            if self.is_punct("["):
                self.i += 1
                values, close = self.literal_list()
                if any(v.type != "text" for v in values):
                    raise Fallback
                item = n.StudentValue(key, frozenset(v.value for v in values), "set",  # type: ignore[misc]
                                      span=self.span(key.span, close))  # type: ignore[arg-type]
            else:
                lit = self.literal()
                item = n.StudentValue(key, lit.value, lit.type, span=self.span(key.span, lit.span))  # type: ignore[arg-type]
            items.append(item)
            if self.is_punct(","):
                self.i += 1
            elif not self.is_punct("}"):
                raise Fallback
        close = self.next()
        return tuple(items), close

    def consent_given(self, first: Token) -> n.ConsentGiven:
        topic = self.name()
        self.word("by")
        if self.is_word("student"):
            tok = self.next()
            by = n.Name("student", span=self.tspan(tok))
        else:
            by = self.name()
        self.word("on")
        last = self.kind("DATE")
        given = _date(last[1])
        withdrawn = None
        if self.is_word("withdrawn"):
            self.i += 1
            last = self.kind("DATE")
            withdrawn = _date(last[1])
        return n.ConsentGiven(topic, by, given, withdrawn, span=self.span(first, last))

    def expect(self, first: Token) -> n.Expect:
        verdict = self.next()
        if verdict[0] != "IDENT" or verdict[1] not in ("allow", "deny"):
            raise Fallback
        refs, end = self.field_refs()
        because = None
        if self.is_word("because"):
            self.i += 1
            because = self.name()
            end = because.span  # type: ignore[assignment]
        return n.Expect(verdict[1] == "allow", tuple(refs), because, span=self.span(first, end))


def parse_declaration(file: str, chunk: str, first_line: int, reserved: frozenset[str]) -> n.Declaration:
    """One declaration's nodes, exactly as Lark would build them, or ``Fallback``."""
    return FastParser(file, tokenize(chunk, first_line), reserved).declaration()


def parse_declarations(file: str, chunk: str, first_line: int, reserved: frozenset[str]) -> list[n.Declaration]:
    """The declarations of a chunk (usually one; several may share a line), or ``Fallback``."""
    parser = FastParser(file, tokenize(chunk, first_line), reserved)
    out = [parser.declaration(last=False)]
    while parser.toks[parser.i][0] != "EOF":
        out.append(parser.declaration(last=False))
    return out
