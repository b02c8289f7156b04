"""Hypothesis strategies for the engine tests: policy texts, student records, consents, moments, requests.

Policies are written as .avg text over a fixed catalogue (so that they pass the checker)
with random partners' agreements, rules, conditions and windows; values come from small
pools shared with the condition literals, so conditions are true, false and unknown often.
"""

from __future__ import annotations

import datetime as dt
import functools
import itertools
from typing import Any
from zoneinfo import ZoneInfo

import spec_texts as spec
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
           "actief": "bool", "gestart": "date", "lesgroepen": "set"}
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
    basis = retain = None
    if permit:
        b = draw(_bases)
        basis = n.Basis(_name("consent"), _name(b[8:-1])) if b.startswith("consent") else n.Basis(_name(b))
        if draw(st.booleans()):
            retain = n.Duration(draw(st.integers(1, 3)), _name("years"))
    condition = draw(conditions) if draw(st.booleans()) else None
    window = draw(windows)
    span = Span("generated.avg", 10 + index, 1, 10 + index, 2)
    written = {"partner": True, "purpose": purpose, "fields": True, "basis": basis, "students": condition,
               "valid": window, "retain": retain}
    clauses = tuple((k, span) for k, v in written.items() if v is not None)
    return n.Rule(effect, _name(f"r{index}-x"), draw(partner_selectors), purpose, tuple(fields), basis, None,
                  condition, window, retain, None, clauses=clauses, span=span)


_RULES = [_rules(i) for i in range(6)]


@st.composite
def _policy_files(draw: st.DrawFn) -> n.File:
    """A valid policy set as nodes: catalogue, agreements, consent topics and 1-6 rules."""
    decls: list[Any] = [
        n.Dataset(_name("leerling"), "Leerlinggegevens", True, tuple(
            n.FieldDecl(_name(k), _name(t), _name("personal")) for k, t in SUBJECT.items())),
        n.Dataset(_name("absentie"), "Absentie", False, (
            n.FieldDecl(_name("datum"), _name("date"), _name("personal")),
            n.FieldDecl(_name("reden"), _name("text"), _name("sensitive")))),
        *(n.Purpose(_name(u), f"Doel {u}") for u in PURPOSES)]
    reconfirm = draw(st.booleans())
    decls.append(n.ConsentTopic(_name("t1"), "Onderwerp een", reconfirm))
    decls.append(n.ConsentTopic(_name("t-2"), "Onderwerp twee", not reconfirm))
    for p in PARTNERS:
        agreements = tuple(n.Agreement(f"A-{p}-{i}", draw(windows) or _window(D(2025, 8, 1), None))
                           for i in range(draw(st.integers(0, 2))))
        decls.append(n.Partner(_name(p), f"Partner {p}", agreements))
    for i in range(draw(st.integers(1, 5))):
        decls.append(draw(_RULES[i]))
    return n.File("generated.avg", tuple(decls))


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
            body = "\n".join(f"    {f.name} {f.type} {f.sensitivity}" for f in d.fields)
            out.append(f'dataset {d.name} "{d.title}"{" subject" if d.subject else ""} {{\n{body}\n}}')
        elif isinstance(d, n.Purpose):
            out.append(f'purpose {d.name} "{d.title}"')
        elif isinstance(d, n.ConsentTopic):
            out.append(f'consent {d.name} "{d.title}"{" reconfirm_at_16" if d.reconfirm_at_16 else ""}')
        elif isinstance(d, n.Partner):
            body = "".join(f'\n    agreement "{a.reference}" {_window_text(a.window)}' for a in d.agreements)
            out.append(f'partner {d.name} "{d.title}"' + (f" {{{body}\n}}" if body else ""))
        elif isinstance(d, n.Rule):
            lines = [f"{d.effect} {d.name} {{", f"    partner {_selector_text(d.partner)}"]
            if d.purpose is not None:
                lines.append(f"    purpose {_selector_text(d.purpose)}")
            refs = [f"{r.dataset}.{r.field}" + (f" as {r.transform}" if r.transform else "") for r in d.fields]
            lines.append(f"    fields {', '.join(refs)}")
            if d.basis is not None:
                lines.append(f"    basis {d.basis.kind}" + (f"({d.basis.topic})" if d.basis.topic else ""))
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
    return st.sampled_from([*GOOD[t], *GOOD[t], *BAD[t], None, MISSING])


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
    return pool


CONSENT_POOL = _consent_pool()
_consent_entries = st.sampled_from(CONSENT_POOL)
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

_LESGROEPEN = "    lesgroepen    set       personal\n"

# the spec's examples (spec_texts.py) with a field `actief` and more partners, purposes and rules around them
SCHOOL = ("\n" + spec.DATASETS.replace(_LESGROEPEN, _LESGROEPEN + "    actief        bool      personal\n") + "\n"
          + spec.PARTNERS + spec.SCHOOLWEBSITE + """\
partner gappy "Partner met een gat tussen twee overeenkomsten" {
    agreement "DPA-1" valid from 2025-01-01 until 2025-06-30
    agreement "DPA-2" valid from 2025-09-01 until 2025-12-31
}
partner uni "Universiteit"

""" + spec.LEERMIDDELEN + spec.PUBLICATIE + """\
purpose bekostiging "Bekostiging"
purpose onderzoek "Wetenschappelijk onderzoek"

""" + spec.CONSENTS + "\n" + spec.SNAPPET_LESMATERIAAL + """
permit snappet_plusklas {
    partner  snappet
    purpose  leermiddelen
    basis    contract
    fields   leerling.achternaam
    students where "plusklas" in lesgroepen or actief == true
    valid    from 2025-09-01 until 2026-06-30
}

""" + spec.GEEN_ZORGDATA + """
permit dus_i_bekostiging {
    partner  dus-i
    purpose  bekostiging
    basis    legal_obligation
    art9     substantial_public_interest
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
""")
