"""Hypothesis strategies for the engine tests: policy texts, student records, consents, moments, requests.

Policies are written as .avg text over a fixed catalogue (so that they pass the checker)
with random partners' agreements, rules, conditions and windows; values come from small
pools shared with the condition literals, so conditions are true, false and unknown often.
"""

from __future__ import annotations

import datetime as dt
import functools
import itertools
import numbers
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import strategies as st

from avgpolicy import model
from avgpolicy import nodes as n
from avgpolicy.checker import check
from avgpolicy.decision import Consent
from avgpolicy.policy import Policy
from avgpolicy.runtime import condition_text
from avgpolicy.source import Span

D = dt.date
UTC = dt.UTC

SUBJECT = {"id": "text", "geboortedatum": "date", "school": "text", "vak-code": "text", "leerjaar": "int",
           "actief": "bool", "gestart": "date", "lesgroepen": "set", "vertrek": "date", "zorg": "text"}
#: v2 field roles (spec 7.7) and sensitivities other than personal
ROLES = {"vertrek": "left"}
SENSITIVE = {"zorg": "special"}
REFS = [f"leerling.{f}" for f in SUBJECT] + ["absentie.datum", "absentie.reden"]
REF_TYPES = {**{f"leerling.{k}": v for k, v in SUBJECT.items()}, "absentie.datum": "date", "absentie.reden": "text"}
PARTNERS = ["p-a", "pb", "pc"]
PURPOSES = ["u1", "u-2"]
TOPICS = ["t1", "t-2"]

TEXTS = ["12AB", "34CD", "plusklas", ""]
INTS = [-1, 0, 3, 5, 8, 16, 17]
DATES = [D(2008, 2, 29), D(2009, 3, 1), D(2010, 1, 12), D(2012, 2, 29), D(2016, 3, 1), D(2025, 8, 1),
         D(2025, 12, 31), D(2026, 3, 29), D(2026, 7, 31)]
WINDOW_DATES = [D(2025, 8, 1), D(2025, 10, 1), D(2025, 12, 31), D(2026, 1, 1), D(2026, 3, 29), D(2026, 3, 30),
                D(2026, 7, 31), D(2026, 8, 1)]


def lit(value: Any) -> n.Literal:
    t = {str: "text", int: "int", bool: "bool", D: "date"}[type(value)]
    return n.Literal(value, t)  # type: ignore[arg-type]


@functools.cache
def literal_of(t: str) -> st.SearchStrategy[n.Literal]:
    pool: list[Any] = {"text": TEXTS, "int": INTS, "date": DATES, "bool": [True, False]}[t]
    return st.sampled_from(pool).map(lit)


def _ref(name: str) -> n.Ref:
    return n.Ref(name)


@functools.cache
def _literal_lists(t: str) -> st.SearchStrategy[list[n.Literal]]:
    return st.lists(literal_of(t), max_size=3)


@st.composite
def atoms(draw: st.DrawFn) -> n.Expr:
    kind = draw(st.sampled_from(["cmp", "cmp", "cmp_ref", "list", "range", "inset"]))
    names = [k for k, t in SUBJECT.items() if t != "set"] + ["age"]
    name = draw(st.sampled_from(names))
    t = "int" if name == "age" else SUBJECT[name]
    if kind == "cmp":
        ops = ["==", "!="] + (["<", "<=", ">", ">="] if t in ("int", "date") else [])
        op = draw(st.sampled_from(ops))
        value = draw(literal_of(t))
        if draw(st.booleans()):
            return n.Compare(op, value, _ref(name))  # type: ignore[arg-type]
        return n.Compare(op, _ref(name), value)  # type: ignore[arg-type]
    if kind == "cmp_ref":
        same = [k for k in names if ("int" if k == "age" else SUBJECT[k]) == t]
        ops = ["==", "!="] + (["<", ">="] if t in ("int", "date") else [])
        return n.Compare(draw(st.sampled_from(ops)), _ref(name), _ref(draw(st.sampled_from(same))))  # type: ignore[arg-type]
    if kind == "list":
        values = tuple(draw(_literal_lists(t)))
        return n.InList(_ref(name), values, draw(st.booleans()))
    if kind == "range" and t in ("int", "date"):
        low, high = draw(literal_of(t)), draw(literal_of(t))
        return n.InRange(_ref(name), low, high, draw(st.booleans()))
    element: n.Literal | n.Ref
    element = draw(st.one_of(literal_of("text"), st.sampled_from(["school", "vak-code"]).map(_ref)))
    return n.InSet(element, _ref("lesgroepen"), draw(st.booleans()))


def _atom_pool() -> list[n.Expr]:
    """Every atom shape over the catalogue, enumerated once (one draw picks one)."""
    pool: list[n.Expr] = []
    names = [k for k, t in SUBJECT.items() if t != "set"] + ["age"]
    types = {k: "int" if k == "age" else SUBJECT[k] for k in names}
    pools: dict[str, list[Any]] = {"text": TEXTS, "int": INTS, "date": DATES, "bool": [True, False]}
    for name, t in types.items():
        ordered = t in ("int", "date")
        values = [lit(v) for v in pools[t]]
        for op in ["==", "!="] + (["<", "<=", ">", ">="] if ordered else []):
            for v in values:
                pool.append(n.Compare(op, _ref(name), v))  # type: ignore[arg-type]
                pool.append(n.Compare(op, v, _ref(name)))  # type: ignore[arg-type]
            for other in names:
                if types[other] == t:
                    pool.append(n.Compare(op, _ref(name), _ref(other)))  # type: ignore[arg-type]
        for neg in (False, True):
            for chosen in ([], values[:1], values[1:3], values[::2]):
                pool.append(n.InList(_ref(name), tuple(chosen), neg))
            if ordered:
                for low in values[::2]:
                    for high in values[1::2]:
                        pool.append(n.InRange(_ref(name), low, high, neg))
    for neg in (False, True):
        for element in [*(lit(v) for v in TEXTS), _ref("school"), _ref("vak-code")]:
            pool.append(n.InSet(element, _ref("lesgroepen"), neg))
    return pool


ATOM_POOL = _atom_pool()
_ATOMS = st.sampled_from(ATOM_POOL)
_SHAPES = st.sampled_from(["atom", "atom", "and", "or", "not"])
_WIDTHS = st.integers(2, 3)


@st.composite
def _conditions(draw: st.DrawFn, depth: int = 0) -> n.Expr:
    """A condition tree of at most 3 levels (and/or/not over atoms)."""
    shape = "atom" if depth >= 2 else draw(_SHAPES)
    if shape == "atom":
        return draw(_ATOMS)
    inner = _CONDITIONS[depth + 1]
    if shape == "not":
        return n.Not(draw(inner))
    items = tuple(draw(inner) for _ in range(draw(_WIDTHS)))
    return n.And(items) if shape == "and" else n.Or(items)


_CONDITIONS = [_conditions(d) for d in range(3)]
conditions: st.SearchStrategy[n.Expr] = _CONDITIONS[0]


def _name(value: str) -> n.Name:
    return n.Name(value)


def _window(start: D | None, end: D | None) -> n.Window:
    return n.Window(start, end)


def _window_pool() -> list[n.Window | None]:
    pool: list[n.Window | None] = [None] * 12
    for i, a in enumerate(WINDOW_DATES):
        pool.append(_window(a, None))
        pool.append(_window(None, a))
        for b in WINDOW_DATES[i:]:
            pool.append(_window(a, b))
    return pool


windows = st.sampled_from(_window_pool())


def _selector_pool(names: list[str]) -> list[n.Selector]:
    pool = [n.Selector(True, ())]
    for r in (1, 2):
        for chosen in itertools.combinations(names, r):
            sel = tuple(_name(c) for c in chosen)
            pool += [n.Selector(False, sel), n.Selector(False, sel), n.Selector(True, sel)]
    return pool


partner_selectors = st.sampled_from(_selector_pool(PARTNERS))
purpose_selectors = st.sampled_from(_selector_pool(PURPOSES))
_field_choices = st.lists(st.sampled_from([*REFS, "leerling.*", "absentie.*"]), min_size=1, max_size=3, unique=True)
_bases = st.sampled_from(["contract", "public_task", "consent(t1)", "consent(t-2)"])
_art9_topics = st.sampled_from(TOPICS)


@st.composite
def _rules(draw: st.DrawFn, index: int) -> n.Rule:
    effect = draw(st.sampled_from(["permit", "permit", "forbid"]))
    permit = effect == "permit"
    purpose = draw(purpose_selectors) if permit or draw(st.booleans()) else None
    refs = draw(_field_choices)
    every = {r.split(".")[0] for r in refs if r.endswith(".*")}
    fields = []
    for r in refs:
        ds, f = r.split(".")
        if not r.endswith(".*") and ds in every:
            continue
        t = REF_TYPES.get(r)
        transform = None
        if permit and t is not None:
            options = [None] * 3 + (["pseudonym"] if t != "set" else []) + (["year"] if t == "date" else [])
            chosen = draw(st.sampled_from(options))
            transform = _name(chosen) if chosen else None
        fields.append(n.FieldRef(_name(ds), _name(f), transform))
    basis = retain = art9 = art9_topic = dpia = None
    if permit:
        b = draw(_bases)
        law = "WPO, art. 1" if b == "public_task" else None
        basis = n.Basis(_name("consent"), _name(b[8:-1])) if b.startswith("consent") else n.Basis(_name(b), law=law)
        if draw(st.booleans()):
            retain = n.Duration(draw(st.integers(1, 3)), _name("years"))
        if any(r == "leerling.*" or SENSITIVE.get(r.split(".")[1]) for r in refs):  # special data (spec 7.6)
            art9, art9_topic, dpia = _name("explicit_consent"), _name(draw(_art9_topics)), "DPIA-gen"
    condition = draw(conditions) if draw(st.booleans()) else None
    window = draw(windows)
    span = Span("generated.avg", 10 + index, 1, 10 + index, 2)
    written = {"partner": True, "purpose": purpose, "fields": True, "basis": basis, "art9": art9,
               "students": condition, "valid": window, "retain": retain, "dpia": dpia}
    clauses = tuple((k, span) for k, v in written.items() if v is not None)
    return n.Rule(effect, _name(f"r{index}-x"), draw(partner_selectors), purpose, tuple(fields), basis, art9,
                  condition, window, retain, None, art9_topic=art9_topic, dpia=dpia, clauses=clauses, span=span)


_RULES = [_rules(i) for i in range(6)]


@st.composite
def _policy_files(draw: st.DrawFn) -> n.File:
    """A valid policy set as nodes: catalogue, agreements, consent topics and 1-6 rules."""
    decls: list[Any] = [
        n.Dataset(_name("leerling"), "Leerlinggegevens", True, tuple(
            n.FieldDecl(_name(k), _name(t), _name(SENSITIVE.get(k, "personal")),
                        _name(ROLES[k]) if k in ROLES else None) for k, t in SUBJECT.items())),
        n.Dataset(_name("absentie"), "Absentie", False, (
            n.FieldDecl(_name("datum"), _name("date"), _name("personal")),
            n.FieldDecl(_name("reden"), _name("text"), _name("sensitive"))))]
    # u1 is limited by a student's leaving; u-2 is a transfer or an archive purpose, or is too
    decls += [n.Purpose(_name("u1"), "Doel u1", _name("other")),
              n.Purpose(_name("u-2"), "Doel u-2", _name(draw(_u2_kinds)))]
    reconfirm = draw(st.booleans())
    decls.append(n.ConsentTopic(_name("t1"), "Onderwerp een", reconfirm))
    decls.append(n.ConsentTopic(_name("t-2"), "Onderwerp twee", not reconfirm))
    rules = [draw(_RULES[i]) for i in range(draw(st.integers(1, 5)))]
    for p in PARTNERS:
        drafts = [(f"A-{p}-{i}", draw(windows) or _window(D(2025, 8, 1), None), draw(_coverages), draw(_purpose_sets))
                  for i in range(draw(st.integers(0, 2)))]
        drafts = _cover_permits(p, drafts, rules)
        agreements = tuple(n.Agreement(ref, w, covers=None if covers is None else tuple(_field_ref(r) for r in covers),
                                       purposes=None if purposes is None else tuple(_name(u) for u in purposes),
                                       retain=n.Duration(5, _name("years")), breach=n.Duration(24, _name("hours")))
                           for ref, w, covers, purposes in drafts)
        decls.append(n.Partner(_name(p), f"Partner {p}", agreements, role=None if agreements else _name("controller")))
    decls.extend(rules)
    return n.File("generated.avg", tuple(decls))


_u2_kinds = st.sampled_from(["transfer", "archive", "other", "care"])
_coverages = st.one_of(st.none(), st.lists(st.sampled_from(REFS), min_size=1, max_size=6, unique=True).map(sorted))
_purpose_sets = st.one_of(st.none(),
                          st.lists(st.sampled_from(PURPOSES), min_size=1, max_size=2, unique=True).map(sorted))


def _field_ref(ref: str) -> n.FieldRef:
    ds, f = ref.split(".")
    return n.FieldRef(_name(ds), _name(f))


def _overlap(a: n.Window | None, b: n.Window | None) -> bool:
    a_start, a_end = (a.start, a.end) if a else (None, None)
    b_start, b_end = (b.start, b.end) if b else (None, None)
    return (a_start is None or b_end is None or a_start <= b_end) and (b_start is None or a_end is None
                                                                        or b_start <= a_end)


def _cover_permits(partner: str, drafts: list[Any], rules: list[n.Rule]) -> list[Any]:
    """Widen the first agreement overlapping each permit that names ``partner`` to what it grants, so
    that the set is valid (E410); other agreements keep their drawn coverage, so fields and purposes
    still fall outside the agreements in force at some moments."""
    drafts = [[ref, w, None if c is None else set(c), None if u is None else set(u)] for ref, w, c, u in drafts]
    for r in rules:
        if r.effect != "permit" or r.partner is None or r.partner.everything or \
                partner not in {x.value for x in r.partner.names}:
            continue
        live = [d for d in drafts if _overlap(d[1], r.window)]
        if not live:
            continue
        target = live[0]
        refs: set[str] = set()
        for f in r.fields or ():
            if f.field.value != "*":
                refs.add(f"{f.dataset}.{f.field}")
            else:
                refs |= {x for x in REFS if x.startswith(f"{f.dataset}.")}
        purposes = set(PURPOSES) if r.purpose is None or r.purpose.everything else {x.value for x in r.purpose.names}
        if target[2] is not None:
            target[2] |= refs
        if target[3] is not None:
            target[3] |= purposes
    return [(ref, w, None if c is None else sorted(c), None if u is None else sorted(u)) for ref, w, c, u in drafts]


policy_files = _policy_files()


def build(file: n.File, *, pseudonym_key: bytes | None = None) -> Policy:
    """A Policy straight from nodes (checked, no parsing): fast enough for thousands of examples."""
    diagnostics = check([file])
    errors = [d for d in diagnostics if d.is_error]
    assert [] == errors, render(file)
    return Policy(model.build([file]), version="generated", zone=ZoneInfo("Europe/Amsterdam"),
                  pseudonym_key=pseudonym_key)


def _window_text(w: n.Window) -> str:
    return "valid" + (f" from {w.start}" if w.start else "") + (f" until {w.end}" if w.end else "")


def _selector_text(sel: n.Selector) -> str:
    names = ", ".join(x.value for x in sel.names)
    if sel.everything:
        return f"* except {names}" if names else "*"
    return names


def render(file: n.File) -> str:
    """The .avg text of a generated file (for the tests that go through the parser)."""
    out = []
    for d in file.declarations:
        if isinstance(d, n.Dataset):
            body = "\n".join(f"    {f.name} {f.type} {f.sensitivity}" + (f" {f.role}" if f.role else "")
                             for f in d.fields)
            out.append(f'dataset {d.name} "{d.title}"{" subject" if d.subject else ""} {{\n{body}\n}}')
        elif isinstance(d, n.Purpose):
            out.append(f'purpose {d.name} "{d.title}"' + (f" kind {d.kind}" if d.kind else ""))
        elif isinstance(d, n.ConsentTopic):
            out.append(f'consent {d.name} "{d.title}"{" reconfirm_at_16" if d.reconfirm_at_16 else ""}')
        elif isinstance(d, n.Partner):
            body = f"\n    role {d.role}" if d.role else ""
            for a in d.agreements:
                body += f'\n    agreement "{a.reference}" {_window_text(a.window)} {{'
                if a.covers is not None:
                    body += "\n        covers " + (", ".join(f"{r.dataset}.{r.field}" for r in a.covers) or "")
                if a.purposes is not None:
                    body += "\n        purposes " + ", ".join(u.value for u in a.purposes)
                if a.retain is not None:
                    body += f"\n        retain {a.retain.amount} {a.retain.unit}"
                if a.breach is not None:
                    body += f"\n        breach {a.breach.amount} {a.breach.unit}"
                body += "\n    }"
            out.append(f'partner {d.name} "{d.title}"' + (f" {{{body}\n}}" if body else ""))
        elif isinstance(d, n.Rule):
            lines = [f"{d.effect} {d.name} {{", f"    partner {_selector_text(d.partner)}"]
            if d.purpose is not None:
                lines.append(f"    purpose {_selector_text(d.purpose)}")
            refs = [f"{r.dataset}.{r.field}" + (f" as {r.transform}" if r.transform else "") for r in d.fields]
            lines.append(f"    fields {', '.join(refs)}")
            if d.basis is not None:
                lines.append(f"    basis {d.basis.kind}" + (f"({d.basis.topic})" if d.basis.topic else "")
                             + (f'("{d.basis.law}")' if d.basis.law else ""))
            if d.art9 is not None:
                lines.append(f"    art9 {d.art9}" + (f"({d.art9_topic})" if d.art9_topic else ""))
            if d.dpia is not None:
                lines.append(f'    dpia "{d.dpia}"')
            if d.retain is not None:
                lines.append(f"    retain {d.retain.amount} {d.retain.unit}")
            if d.condition is not None:
                lines.append(f"    students where {condition_text(d.condition)}")
            if d.window is not None:
                lines.append(f"    {_window_text(d.window)}")
            out.append("\n".join([*lines, "}"]))
    return "\n\n".join(out) + "\n"


class StrSub(str):
    pass


class IntLike:
    """An integral number that is not an int: numpy's ``int64`` without numpy (``__index__``, registered as
    ``numbers.Integral``). Its ``__eq__`` and ``__hash__`` raise: the engines compare the converted int."""

    __slots__ = ("v",)

    def __init__(self, v: Any) -> None:
        self.v = v

    def __index__(self) -> Any:
        if isinstance(self.v, BaseException):
            raise self.v
        return self.v

    def __eq__(self, other: object) -> bool:
        raise TypeError("an IntLike was compared")

    def __hash__(self) -> int:
        raise TypeError("an IntLike was hashed")

    def __repr__(self) -> str:
        return f"IntLike({self.v!r})"


numbers.Integral.register(IntLike)


class BrokenZone(dt.tzinfo):
    """A time zone whose offset raises: an aware datetime in it cannot be read as a date (denied, no raise)."""

    def utcoffset(self, when: Any) -> dt.timedelta:
        raise RuntimeError("broken tzinfo")

    def dst(self, when: Any) -> dt.timedelta:
        raise RuntimeError("broken tzinfo")

    def tzname(self, when: Any) -> str:
        return "broken"

    def __repr__(self) -> str:
        return "BrokenZone()"


class BrokenDatetime(dt.datetime):
    """A datetime subclass whose ``astimezone`` raises."""

    def astimezone(self, tz: Any = None) -> Any:
        raise RuntimeError("broken astimezone")


def _numpy_ints() -> list[Any]:
    try:
        import numpy
    except ImportError:
        return []
    return [numpy.int64(5), numpy.int32(16), numpy.uint8(3), numpy.bool_(True)]


AMS = ZoneInfo("Europe/Amsterdam")
#: values that are not of the exact type: some mean the same without loss (converted, in both engines and
#: filter), some do not (denied with missing_attribute naming their type); none may make anything raise
CONVERTIBLE: dict[str, list[Any]] = {
    "int": [IntLike(5), IntLike(16), IntLike(-1), IntLike(10**30), IntLike(True), IntLike(ValueError("no")),
            IntLike("5"), *_numpy_ints()],
    "date": [dt.datetime(2016, 3, 1, 0, 0), dt.datetime(2025, 12, 31, 23, 59), dt.datetime(2016, 2, 29, 23, 30,
             tzinfo=UTC), dt.datetime(2026, 3, 28, 23, 30, tzinfo=UTC), dt.datetime(2012, 2, 29, 12, 0, tzinfo=AMS),
             dt.datetime(9999, 12, 31, 23, 0, tzinfo=dt.timezone(dt.timedelta(hours=-5))),
             dt.datetime(2016, 3, 1, tzinfo=BrokenZone()), BrokenDatetime(2016, 3, 1, tzinfo=UTC),
             BrokenDatetime(2016, 3, 1)],
    "text": [], "bool": [], "set": [],
}


_SET_VALUES: list[Any] = [set(), {"12AB"}, frozenset({"plusklas", "34CD"}), ["plusklas"], ("12AB", "plusklas"),
                          ["", "34CD"]]
GOOD: dict[str, list[Any]] = {"text": TEXTS, "int": INTS, "date": DATES, "bool": [True, False], "set": _SET_VALUES}
BAD: dict[str, list[Any]] = {
    "text": [5, True, b"12AB", StrSub("12AB"), ["12AB"]],
    "int": [True, False, "5", 5.0, D(2020, 1, 1)],
    "bool": [1, 0, "true"],
    "date": [dt.datetime(2016, 3, 1, 0, 0), "2016-03-01", 20160301],
    "set": ["plusklas", [1, 2], {"a": 1}, ["plusklas", 3], 5],
}
MISSING = object()


@functools.cache
def field_value(t: str) -> st.SearchStrategy[Any]:
    """One draw: mostly a well-typed value from the pool, sometimes ill-typed, None or missing."""
    pool = [*GOOD[t], *GOOD[t], *BAD[t], *CONVERTIBLE[t], None, MISSING]
    # drawn by index: hypothesis hashes sampled_from's elements, and some of these raise when hashed
    return st.integers(0, len(pool) - 1).map(functools.partial(_pick, tuple(pool)))


def _pick(pool: tuple[Any, ...], i: int) -> Any:
    return pool[i]


def _consent_pool() -> list[Any]:
    pool: list[Any] = []
    givens = [D(2008, 2, 28), D(2012, 2, 29), D(2024, 2, 28), D(2025, 9, 1), D(2026, 2, 28), D(2026, 3, 29)]
    for by in ("parent", "student"):
        for given in givens:
            for withdrawn in (None, D(2025, 10, 1), D(2026, 3, 29)):
                pool.append(Consent(by=by, given=given, withdrawn=withdrawn))
                pool.append({"by": by, "given": given, "withdrawn": withdrawn})
            pool.append({"by": by, "given": given})
    pool += [1, "yes", {"by": "uncle", "given": D(2025, 9, 1)}, {"by": "parent"},
             {"by": "parent", "given": "2025-01-01"}, {"by": "student", "given": D(2025, 9, 1), "withdrawn": "never"},
             {"by": "parent", "given": dt.datetime(2025, 9, 1, 0, 0)}]
    # dates as an SIS may give them (ISO strings, datetimes: read as dates), and parties and strings that are not
    for by in ("parent", "student", "ouder", "leerling", "Parent"):
        for given in ("2025-09-01", "2012-02-29", "2026-03-29", dt.datetime(2026, 3, 28, 23, 30, tzinfo=UTC),
                      dt.datetime(2024, 2, 28, 12, 0)):
            pool.append({"by": by, "given": given})
            pool.append({"by": by, "given": given, "withdrawn": "2025-10-01"})
    pool += [{"by": "parent", "given": "20250901"}, {"by": "parent", "given": "2025-9-1"},
             {"by": "parent", "given": "2025-02-30"}, {"by": "parent", "given": "2025-09-01T00:00"},
             {"by": "student", "given": D(2025, 9, 1), "withdrawn": dt.datetime(2026, 3, 29, 1, 0, tzinfo=UTC)},
             {"by": "parent", "given": BrokenDatetime(2025, 9, 1, tzinfo=UTC)}, {"by": None, "given": "2025-09-01"},
             {"by": 1, "given": D(2025, 9, 1)}, {"given": D(2025, 9, 1)}, {"by": "parent", "given": None}]
    return pool


CONSENT_POOL = _consent_pool()


def _consent_entry(i: int) -> Any:
    return CONSENT_POOL[i]


_consent_entries = st.integers(0, len(CONSENT_POOL) - 1).map(_consent_entry)  # (a short repr: the pool is long)
_consent_maps = st.sampled_from([None, "all", ["t1"], MISSING, MISSING])
_topic_lists = st.lists(st.sampled_from(TOPICS), max_size=2, unique=True)
_not_mappings = st.sampled_from([None, "student", 5, ["school"]])


@st.composite
def students(draw: st.DrawFn) -> Any:
    """A student record: each field missing, None, well-typed or ill-typed; consents of all sorts."""
    if draw(st.integers(0, 30)) == 0:
        return draw(_not_mappings)
    record: dict[str, Any] = {}
    for name, t in SUBJECT.items():
        value = draw(field_value(t))
        if value is not MISSING:
            record[name] = value
    value = draw(field_value("date"))
    if value is not MISSING:
        record["absentie.datum"] = value
    if draw(st.integers(0, 5)):
        record["consents"] = {topic: draw(_consent_entries) for topic in draw(_topic_lists)}
    else:
        consents = draw(_consent_maps)
        if consents is not MISSING:
            record["consents"] = consents
    return record


def _moment_pool() -> list[dt.date | dt.datetime]:
    pool: list[dt.date | dt.datetime] = []
    for base in [*WINDOW_DATES, D(2026, 10, 25), D(2025, 10, 26)]:
        for delta in (-1, 0, 1):
            day = base + dt.timedelta(days=delta)
            pool += [day, day]
            for t in (dt.time(0, 0), dt.time(0, 30), dt.time(12, 0), dt.time(22, 30), dt.time(23, 59)):
                moment = dt.datetime.combine(day, t)
                pool += [moment, moment.replace(tzinfo=UTC)]
    return pool


MOMENT_POOL = _moment_pool()


def moments() -> st.SearchStrategy[dt.date | dt.datetime]:
    """Days near window edges and DST changes, any day in between; dates, naive and aware datetimes."""
    return st.one_of(st.sampled_from(MOMENT_POOL), st.sampled_from(MOMENT_POOL),
                     st.dates(D(2025, 7, 1), D(2026, 9, 1)))


def _field_lists() -> list[list[str]]:
    refs = [*REFS, "leerling.nope", "nope"]
    pool = [[r] for r in refs] * 3
    pool += [list(c) for c in itertools.combinations(refs, 2)]
    pool += [list(c) for c in itertools.combinations(REFS[:6], 3)]
    pool += [[*REFS, "nope"], REFS[:3] + REFS[:1]]
    return pool


_requests = st.tuples(st.sampled_from([*PARTNERS, "unknown-p"]), st.sampled_from([*PURPOSES, "unknown-u"]),
                      st.sampled_from(_field_lists()))


def requests() -> st.SearchStrategy[tuple[str, str, list[str]]]:
    """(partner, purpose, fields), unknown names included."""
    return _requests


# ---------------------------------------------------------------------------
# A small school for the example-based engine tests (spec sections 3-6 and api.md)

# the spec's examples (spec sections 3-6, in v2: roles, kinds, a law, a DPIA) with a field `actief` and more
# partners, purposes and rules around them
SCHOOL = """
dataset leerling "Leerlinggegevens" subject {
    id            text      personal
    eckid         text      pseudonym
    roepnaam      text      personal
    achternaam    text      personal
    geboortedatum date      personal
    school        text      personal
    leerjaar      int       personal
    onderwijstype text      personal
    lesgroepen    set       personal
    actief        bool      personal
    bsn           text      national_id
    foto          text      personal
    zorgnotitie   text      special
}

dataset absentie "Absentiegegevens" {
    datum  date  personal
    reden  text  special
}

partner snappet "Snappet B.V." {
    agreement "DPA-2025-031" valid from 2025-08-01 until 2026-07-31
}
partner dus-i "DUS-I / DUO" { role controller  kind government }
partner schoolwebsite "Website van de school" { role controller }
partner gappy "Partner met een gat tussen twee overeenkomsten" {
    agreement "DPA-1" valid from 2025-01-01 until 2025-06-30
    agreement "DPA-2" valid from 2025-09-01 until 2025-12-31
}
partner uni "Universiteit" { role controller  kind research }

purpose leermiddelen "Levering en gebruik van digitaal leermateriaal" kind education
purpose publicatie "Publicatie op de website" kind publication
purpose bekostiging "Bekostiging" kind funding
purpose onderzoek "Wetenschappelijk onderzoek" kind research

consent beeldmateriaal "Foto's en video's op website en sociale media"
consent onderzoek "Deelname aan wetenschappelijk onderzoek" reconfirm_at_16

permit snappet_lesmateriaal {
    partner  snappet
    purpose  leermiddelen
    basis    contract
    fields   leerling.{eckid, roepnaam, leerjaar, lesgroepen}, leerling.id as pseudonym
    students where school == "12AB" and leerjaar in 3..8
    valid    from 2025-08-01 until 2026-07-31
    retain   1 year
    note     "Alleen groepen 3 t/m 8 van De Regenboog"
}

permit snappet_plusklas {
    partner  snappet
    purpose  leermiddelen
    basis    contract
    fields   leerling.achternaam
    students where "plusklas" in lesgroepen or actief == true
    valid    from 2025-09-01 until 2026-06-30
}

forbid geen_zorgdata_buiten_dus_i {
    partner  * except dus-i
    fields   leerling.zorgnotitie, absentie.reden
}

permit dus_i_bekostiging {
    partner  dus-i
    purpose  bekostiging
    basis    legal_obligation("Wet op het primair onderwijs, art. 178a")
    art9     substantial_public_interest  dpia "DPIA-bekostiging-2025"
    fields   leerling.{bsn, zorgnotitie, geboortedatum}
    students where onderwijstype != "vavo"
}

permit website_foto {
    partner  schoolwebsite
    purpose  publicatie
    basis    consent(beeldmateriaal)
    fields   leerling.foto, leerling.geboortedatum as year
}

permit uni_onderzoek {
    partner  uni
    purpose  onderzoek
    basis    consent(onderzoek)
    fields   leerling.eckid, absentie.datum
    students where age >= 12
}

permit gappy_roepnaam {
    partner  gappy
    purpose  leermiddelen
    basis    contract
    fields   leerling.roepnaam, leerling.geboortedatum
}

forbid gappy_geen_onderbouw {
    partner  gappy
    fields   leerling.roepnaam
    students where leerjaar < 3
    valid    from 2025-01-01
}
"""

# spec v2 (section 7): a controller, agreements with coverage that overlap, purposes of several kinds,
# laws, art9 explicit_consent(TOPIC), a DPIA and a `left` field (tests/test_engine_v2.py)
SCHOOL_V2 = """\
controller "Stichting Voorbeeld" {
    kind  public
    dpo   "fg@voorbeeld.nl"
}

dataset leerling "Leerlinggegevens" subject {
    id               text  personal  key
    roepnaam         text  personal
    achternaam       text  personal
    geboortedatum    date  personal
    leerjaar         int   personal
    zorgnotitie      text  special
    uitschrijfdatum  date  personal  left
}

partner snappet "Snappet B.V." {
    role  processor
    kind  vendor
    agreement "OUD" valid from 2025-08-01 until 2025-12-31 {
        covers    leerling.{id, roepnaam}
        purposes  leermiddelen
        retain    1 year
        breach    24 hours
    }
    agreement "NIEUW" valid from 2025-12-01 until 2026-07-31 {
        covers    leerling.{id, roepnaam, achternaam}
        purposes  leermiddelen, oso
        retain    1 year
        breach    24 hours
        dpia      "DPIA-leermiddelen-2025"
    }
}

partner zorgteam "Zorgteam" {
    role  controller
    kind  care
}

purpose leermiddelen "Digitaal leermateriaal" kind education
purpose oso "Overstap naar een andere school" kind transfer
purpose toetsing "Toetsen" kind education
purpose ondersteuning "Leerlingondersteuning" kind care

consent zorgdeling "Delen van zorgnotities"

permit snappet_namen {
    partner  snappet
    purpose  leermiddelen
    basis    contract
    fields   leerling.{id, roepnaam, achternaam}
    valid    from 2025-08-01 until 2026-07-31
}

permit snappet_overstap {
    partner  snappet
    purpose  oso
    basis    legal_obligation("WPO, art. 42")
    fields   leerling.{id, roepnaam}
    valid    from 2025-08-01 until 2026-07-31
}

permit iedereen_toets {
    partner  *
    purpose  toetsing
    basis    contract
    fields   leerling.id
    valid    from 2025-08-01 until 2026-07-31
}

permit zorgnotities {
    partner  zorgteam
    purpose  ondersteuning
    basis    public_task("WPO, art. 18a")
    art9     explicit_consent(zorgdeling)
    fields   leerling.{roepnaam, zorgnotitie}
    students where leerjaar >= 1
    dpia     "DPIA-zorg"
}
"""
