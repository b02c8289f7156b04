"""Fuzz generators: structured valid .avg policy sets, their rendering as text, and mutations.

``policy_specs()`` draws a ``PolicySpec`` that obeys every validation rule of the
language spec (sections 5 and 7: a v2 set with a controller, partner roles and kinds,
agreements with coverage, laws, purpose kinds, DPIAs, key and left fields), so it
loads without errors; ``render(spec, layout)``
writes it as text with varied whitespace, comments and parentheses;
``mutated_texts()`` breaks such texts token by token (delete, duplicate, swap,
truncate, insert junk). ``students_for(spec)`` and ``moments()`` give records and
moments for deciding over a generated set (good, missing and ill-typed values).
"""

from __future__ import annotations

import datetime
import random
import re
from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st

# Reserved words of the grammar (kept literal so that generating never builds the parser).
KEYWORDS = frozenset((
    "dataset", "partner", "purpose", "consent", "permit", "forbid", "test", "subject", "reconfirm_at_16",
    "valid", "from", "until", "agreement", "except", "fields", "as", "basis", "art9", "students", "where",
    "retain", "note", "or", "and", "not", "in", "true", "false", "at", "student", "by", "on", "withdrawn",
    "expect", "allow", "deny", "because", "controller", "dpia", "key", "left",
))

FIELD_TYPES = ("text", "int", "bool", "date", "set")
SENSITIVITIES = ("anonymous", "pseudonym", "personal", "sensitive", "special", "criminal", "national_id")
PLAIN_BASES = ("contract", "legal_obligation", "vital_interest", "public_task", "legitimate_interest")
ART9_GROUNDS = ("explicit_consent", "employment", "vital_interest", "public_data", "legal_claims",
                "substantial_public_interest", "health_care", "public_health", "archiving")
DURATION_UNITS = ("hour", "hours", "day", "days", "week", "weeks", "month", "months", "year", "years")
REASON_CODES = ("agreement_inactive", "forbidden", "permitted", "no_permit", "outside_window",
                "not_in_subset", "no_consent", "missing_attribute", "unknown_field", "unknown_partner",
                "unknown_purpose", "inform_student", "outside_agreement", "left_school")
LAWS = ("Wet op het primair onderwijs, art. 178a", "WVO 2020, art. 2.2", 'Leerplichtwet 1969 "art. 21"',
        "Wet pseudonimisering \\ art. 2")
# Kinds safe for any generated permit (no `publication`: it needs consent; no `parent_information`:
# it needs `age < 18`); consent for the first four is a warning only.
PURPOSE_KINDS = ("education", "organisation", "funding", "compulsory_education", "care", "research",
                 "transfer", "archive", "other")
# art. 9 grounds that fit any purpose kind (explicit_consent is added with a topic)
ANY_PURPOSE_GROUNDS = ("vital_interest", "public_data", "legal_claims")
PROCESSOR_KINDS = ("vendor", "research", "exam", "other", "care")
CONTROLLER_PARTNER_KINDS = ("government", "school", "swv", "exam", "care", "research")
EEA_LOCATIONS = ("NL", "DE", "BE", "IS", "NO")
#: the codes that can explain a denied field (`expect deny ... because CODE`)
DENY_CODES = tuple(c for c in REASON_CODES if c not in ("permitted", "inform_student"))
COMPARE_OPS = ("==", "!=", "<", "<=", ">", ">=")
CONSENT_PARTIES = ("parent", "student")

#: Small pools so that generated students often match generated conditions.
TEXT_VALUES = ("12AB", "34CD", "vwo", "havo", "plusklas", "Zoë", "a b", 'q"uote', "back\\slash", "")
INT_RANGE = (-2, 20)
DATE_LOW, DATE_HIGH = datetime.date(2000, 1, 1), datetime.date(2030, 12, 31)
BIRTHDATE = "geboortedatum"


# ---------------------------------------------------------------------------
# The structure of a policy set

@dataclass(frozen=True)
class FieldSpec:
    name: str
    type: str
    sensitivity: str
    role: str | None = None  # "key" | "left"


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    title: str | None
    subject: bool
    fields: tuple[FieldSpec, ...]


@dataclass(frozen=True)
class WindowSpec:
    start: datetime.date | None
    end: datetime.date | None


@dataclass(frozen=True)
class AgreementSpec:
    reference: str
    window: WindowSpec
    covers: tuple[RefSpec, ...] | None = None
    purposes: tuple[str, ...] | None = None
    retain: tuple[int, str] | None = None
    breach: tuple[int, str] | None = None
    dpia: str | None = None
    model: str | None = None


@dataclass(frozen=True)
class PartnerSpec:
    name: str
    title: str | None
    agreements: tuple[AgreementSpec, ...]
    braces: bool = False  # `partner p "t" {}` with no agreements
    role: str | None = None
    kind: str | None = None
    location: str | None = None
    transfer: str | None = None


@dataclass(frozen=True)
class ControllerSpec:
    title: str
    kind: str | None = None  # None: the default (public)
    dpo: str | None = None
    breach_handling: tuple[int, str] | None = None


@dataclass(frozen=True)
class NamedSpec:
    """A purpose (with its kind) or a consent topic (reconfirm)."""

    name: str
    title: str | None
    reconfirm: bool = False
    kind: str | None = None


@dataclass(frozen=True)
class Selector:
    everything: bool
    names: tuple[str, ...]


@dataclass(frozen=True)
class RefSpec:
    """``ds.f`` (optionally ``as T``), ``ds.{f, g}`` or ``ds.*``."""

    dataset: str
    fields: tuple[str, ...]  # () means `ds.*`
    transform: str | None = None
    group: bool = False


# Conditions: ("cmp", field, op, literal) | ("inlist", field, literals, negated)
# | ("range", field, low, high, negated) | ("inset", literal, setfield, negated)
# | ("not", e) | ("and", (e, ...)) | ("or", (e, ...)) | ("paren", e)
Expr = tuple[Any, ...]


@dataclass(frozen=True)
class RuleSpec:
    effect: str
    name: str
    partner: Selector
    purpose: Selector | None
    refs: tuple[RefSpec, ...]
    basis: str | None = None  # "contract", "consent(topic)" or 'legal_obligation("law")'
    art9: str | None = None  # a ground, or "explicit_consent(topic)"
    condition: Expr | None = None
    window: WindowSpec | None = None
    retain: tuple[int, str] | None = None
    note: str | None = None
    dpia: str | None = None


@dataclass(frozen=True)
class TestSpec:
    name: str
    at: datetime.date | datetime.datetime
    partner: str
    purpose: str
    student: tuple[tuple[str, Any], ...]
    consents: tuple[tuple[str, str, datetime.date, datetime.date | None], ...]
    expects: tuple[tuple[bool, tuple[RefSpec, ...], str | None], ...]


@dataclass(frozen=True)
class PolicySpec:
    datasets: tuple[DatasetSpec, ...]
    partners: tuple[PartnerSpec, ...]
    purposes: tuple[NamedSpec, ...]
    topics: tuple[NamedSpec, ...]
    rules: tuple[RuleSpec, ...]
    tests: tuple[TestSpec, ...] = ()
    controller: ControllerSpec | None = None

    @property
    def subject(self) -> DatasetSpec:
        return next(d for d in self.datasets if d.subject)

    def field_refs(self) -> list[str]:
        return [f"{d.name}.{f.name}" for d in self.datasets for f in d.fields]

    def declaration_names(self) -> list[str]:
        return [x.name for group in (self.datasets, self.partners, self.purposes, self.topics,
                                     self.rules, self.tests) for x in group]


# ---------------------------------------------------------------------------
# Drawing. A generator takes one block of bytes from hypothesis and makes every choice
# from it: a single draw per policy set is ~50x faster than hundreds of small draws, and
# hypothesis still shrinks well (zeroed or missing bytes mean the first, smallest choice).

ENTROPY_BYTES = 2048
_entropy = st.binary(min_size=ENTROPY_BYTES, max_size=ENTROPY_BYTES)
_CHARS = ("a", "b", "Z", "_", "-", "0", "9", " ", '"', "\\", "#", "{", "}", "\n", "\t", "\x00", "\u2028", "\u2029",
          "\x85", "é", "ß", "€", "\U0001f600", "\ufeff", "'", "$", "%")
_IDENT_START = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_"
_IDENT_REST = _IDENT_START + "0123456789-"
text_values = st.one_of(st.sampled_from(TEXT_VALUES), st.text(max_size=6))
int_values = st.integers(*INT_RANGE)
date_values = st.dates(DATE_LOW, DATE_HIGH)


class Drawer:
    """Choices made from one block of hypothesis bytes: pick, coin, count, literals."""

    def __init__(self, draw: st.DrawFn) -> None:
        self.buf: bytes = draw(_entropy)
        self.pos = 0

    def _int(self) -> int:
        chunk = self.buf[self.pos:self.pos + 2]
        self.pos += 2
        return int.from_bytes(chunk.ljust(2, b"\0"), "big")

    def pick(self, pool: Any) -> Any:
        pool = list(pool)
        return pool[self._int() % len(pool)]

    def coin(self, p_true: float = 0.5) -> bool:
        return self._int() % 100 >= 100 - p_true * 100

    def count(self, low: int, high: int) -> int:
        return low + self._int() % (high - low + 1)

    def maybe(self, value: Any) -> Any:
        return value if self.coin() else None

    def text(self, max_size: int = 6) -> str:
        return "".join(self.pick(_CHARS) for _ in range(self.count(0, max_size)))

    def ident(self) -> str:
        return self.pick(_IDENT_START) + "".join(self.pick(_IDENT_REST) for _ in range(self.count(0, 8)))

    def date(self) -> datetime.date:
        return DATE_LOW + datetime.timedelta(days=self._int() % ((DATE_HIGH - DATE_LOW).days + 1))

    def datetime(self) -> datetime.datetime:
        return datetime.datetime.combine(self.date(), datetime.time(self.count(0, 23), self.count(0, 59)))

    def literal(self, ftype: str) -> Any:
        if ftype in ("text", "set"):
            return self.pick(TEXT_VALUES) if self.coin(0.8) else self.text()
        if ftype == "int":
            return self.count(*INT_RANGE)
        if ftype == "date":
            return self.date()
        return self.coin()

    def title(self) -> str | None:
        return (self.pick(["Snappet B.V.", 'Een "titel"', "a\\b", ""]) if self.coin() else self.text(12)) \
            if self.coin() else None

    def names(self, low: int, high: int, used: set[str], prefix: str) -> list[str]:
        """Distinct identifiers (never keywords, never one in ``used``), sometimes with hyphens."""
        out = []
        for i in range(self.count(low, high)):
            base = self.ident() if self.coin() else self.pick([prefix, f"{prefix}-x", f"{prefix}_2", "dus-i"])
            name, k = base, i
            while name in used or name in KEYWORDS:
                name = f"{base}_{k}x"
                k += 1
            used.add(name)
            out.append(name)
        return out

    def window(self) -> WindowSpec:
        a = self.date() if self.coin() else None
        b = self.date() if self.coin() else None
        if a is not None and b is not None and b < a:
            a, b = b, a
        if a is None and b is None:
            b = DATE_HIGH
        return WindowSpec(a, b)

    def selector(self, pool: list[str]) -> Selector:
        kind = self.pick(["names", "names", "all", "except"])
        if kind == "all":
            return Selector(True, ())
        chosen = tuple(dict.fromkeys(self.pick(pool) for _ in range(self.count(1, 3))))
        return Selector(kind == "except", chosen)

    def condition(self, subject: DatasetSpec, budget: int = 6) -> Expr:
        typed = [(f.name, f.type) for f in subject.fields]
        if any(f.name == BIRTHDATE and f.type == "date" for f in subject.fields):
            typed.append(("age", "int"))
        return self._expr(typed, [budget])

    def _expr(self, typed: list[tuple[str, str]], budget: list[int]) -> Expr:
        budget[0] -= 1
        if budget[0] > 0 and self.coin(0.4):
            kind = self.pick(["not", "paren", "and", "or"])
            if kind in ("not", "paren"):
                return (kind, self._expr(typed, budget))
            return (kind, tuple(self._expr(typed, budget) for _ in range(self.count(2, 3))))
        return self._atom(typed)

    def _atom(self, typed: list[tuple[str, str]]) -> Expr:
        scalar = [(n, t) for n, t in typed if t != "set"]
        ordered = [(n, t) for n, t in scalar if t in ("int", "date")]
        sets = [n for n, t in typed if t == "set"]
        kinds = (["cmp", "inlist"] if scalar else []) + (["range"] if ordered else []) + (["inset"] if sets else [])
        kind = self.pick(kinds)
        if kind == "inset":
            return ("inset", self.literal("text"), self.pick(sets), self.coin())
        if kind == "range":
            name, t = self.pick(ordered)
            return ("range", name, self.literal(t), self.literal(t), self.coin())
        name, t = self.pick(scalar)
        if kind == "inlist":
            return ("inlist", name, tuple(self.literal(t) for _ in range(self.count(0, 3))), self.coin())
        ops = COMPARE_OPS if t in ("int", "date") else ("==", "!=")
        return ("cmp", name, self.pick(ops), self.literal(t))


def conditions(subject: DatasetSpec, max_leaves: int = 6) -> st.SearchStrategy[Expr]:
    """Well-typed conditions over the subject dataset (and `age` when it has a birth date)."""
    return st.composite(lambda draw: Drawer(draw).condition(subject, max_leaves))()


# ---------------------------------------------------------------------------
# The whole set

@st.composite
def policy_specs(draw: st.DrawFn, *, max_rules: int = 6, with_tests: bool = True,
                 max_datasets: int = 3) -> PolicySpec:
    """A policy set that obeys every validation rule of spec sections 5 and 7 (warnings allowed).

    v2 rules kept: at most one controller; `legitimate_interest` only under a private one;
    a partner without agreements is a controller or joint controller of a kind that may
    receive special data; agreements (unique references) cover every field and purpose
    that permits give their partner, retain no less than any permit and leave breach +
    breach_handling within 72 hours; laws on `legal_obligation`/`public_task`; purpose
    kinds that need no extra condition; art. 9 grounds that fit any kind, with
    `explicit_consent(TOPIC)`; a DPIA on every permit of special or criminal data. No permit
    grants a `national_id` field (its partner-kind and pseudonym rules are tested by hand).
    """
    d = Drawer(draw)
    used: set[str] = set()
    datasets = []
    for i, ds in enumerate(d.names(1, max_datasets, used, "leerling")):
        fields = [FieldSpec(n, d.pick(FIELD_TYPES), d.pick(SENSITIVITIES))
                  for n in d.names(1, 5, {"age", BIRTHDATE, "uitschrijfdatum"}, "veld")]
        if i == 0 and d.coin():
            fields.insert(d.count(0, len(fields)), FieldSpec(BIRTHDATE, "date", "personal"))
        if i == 0 and d.coin():
            fields.insert(d.count(0, len(fields)), FieldSpec("uitschrijfdatum", "date", "personal", "left"))
        if i == 0 and d.coin():
            keys = [k for k, f in enumerate(fields) if f.type in ("text", "int") and f.role is None]
            if keys:
                k = d.pick(keys)
                fields[k] = FieldSpec(fields[k].name, fields[k].type, fields[k].sensitivity, "key")
        datasets.append(DatasetSpec(ds, d.title(), i == 0, tuple(fields)))
    subject = datasets[0]

    controller = None
    if d.coin(0.7):
        controller = ControllerSpec(d.text(12), d.maybe(d.pick(["public", "private"])),
                                    d.maybe("fg@" + d.ident() + ".nl"),
                                    d.maybe(d.pick([(24, "hours"), (1, "day"), (12, "hours"), (1, "hour")])))
    private = controller is not None and controller.kind == "private"

    partner_names = d.names(1, 4, used, "snappet")
    partner_windows = {p: [d.window() for _ in range(d.count(0, 2))] for p in partner_names}
    purposes = [NamedSpec(n, d.title(), kind=d.maybe(d.pick(PURPOSE_KINDS)))
                for n in d.names(1, 3, used, "leermiddelen")]
    topics = [NamedSpec(n, d.title(), d.coin()) for n in d.names(0, 2, used, "beeld")]
    all_fields = [(ds.name, f) for ds in datasets for f in ds.fields]
    permit_fields = [(dsn, f) for dsn, f in all_fields if f.sensitivity != "national_id"]

    rules = []
    for rname in d.names(0, max_rules, used, "regel"):
        effect = d.pick(["permit", "forbid"])
        pool = all_fields if effect == "forbid" else permit_fields
        if not pool:
            effect, pool = "forbid", all_fields
        by_ds: dict[str, dict[str, FieldSpec]] = {}
        for _ in range(d.count(1, 4)):
            dsn, f = d.pick(pool)
            by_ds.setdefault(dsn, {})[f.name] = f
        refs: list[RefSpec] = []
        covered: list[FieldSpec] = []
        for dsn, chosen in by_ds.items():
            ds = next(x for x in datasets if x.name == dsn)
            fs = list(chosen.values())
            style = d.pick(["one", "one", "group", "all"])
            if style == "all" and effect == "permit" and any(f.sensitivity == "national_id" for f in ds.fields):
                style = "group"
            if style == "all":
                refs.append(RefSpec(dsn, ()))
                covered.extend(ds.fields)
            elif style == "group":
                refs.append(RefSpec(dsn, tuple(f.name for f in fs), group=True))
                covered.extend(fs)
            else:
                for f in fs:
                    transform = None
                    if effect == "permit":
                        options: list[str | None] = [None]
                        options += ["pseudonym"] if f.type != "set" else []
                        options += ["year"] if f.type == "date" else []
                        transform = d.pick(options)
                    refs.append(RefSpec(dsn, (f.name,), transform))
                    covered.append(f)
        sens = {f.sensitivity for f in covered}
        basis = art9 = retain = dpia = None
        if effect == "permit":
            if "criminal" in sens:
                basis = d.pick(["legal_obligation", "public_task"])
            else:
                plain = [b for b in PLAIN_BASES if private or b != "legitimate_interest"]
                basis = d.pick(plain + [f"consent({t.name})" for t in topics])
            if basis in ("legal_obligation", "public_task"):
                basis = f"{basis}({quote(d.pick(LAWS))})"
            if "special" in sens:
                art9 = d.pick([*ANY_PURPOSE_GROUNDS, *(f"explicit_consent({t.name})" for t in topics)])
            if sens & {"special", "criminal"}:
                dpia = "DPIA-" + d.text(6)
            retain = d.maybe((d.count(1, 30), d.pick(DURATION_UNITS)))
        purpose = d.selector([p.name for p in purposes])
        if effect == "forbid" and d.coin():
            purpose = None
        rules.append(RuleSpec(
            effect, rname, d.selector(partner_names), purpose, tuple(refs), basis, art9,
            d.condition(subject) if d.coin() else None, d.window() if d.coin() else None, retain,
            d.text(20) if d.coin() else None, dpia,
        ))

    partners = []
    for p in partner_names:
        granted: dict[str, RefSpec] = {}
        purposes_given: set[str] | None = set()
        for r in rules:
            if r.effect != "permit" or r.partner.everything == (p in r.partner.names):
                continue
            for ref in r.refs:
                for f in (ref.fields or [f.name for f in next(x for x in datasets if x.name == ref.dataset).fields]):
                    granted.setdefault(f"{ref.dataset}.{f}", RefSpec(ref.dataset, (f,)))
            if r.purpose is None or r.purpose.everything:
                purposes_given = None
            elif purposes_given is not None:
                purposes_given.update(r.purpose.names)
        agreements = []
        for k, w in enumerate(partner_windows[p]):
            covers = None
            if d.coin(0.7):
                extra = [RefSpec(dsn, (f.name,)) for dsn, f in all_fields if d.coin(0.2)]
                covers = tuple({x.dataset + "." + x.fields[0]: x for x in [*granted.values(), *extra]}.values())
                if not covers:
                    covers = None
            purposes_cov = None
            if purposes_given is not None and d.coin(0.7):
                purposes_cov = tuple(sorted(purposes_given | {u.name for u in purposes if d.coin(0.2)})) or None
            agreements.append(AgreementSpec(
                f"{k}-" + d.text(8), w, covers, purposes_cov, d.maybe((d.count(31, 99), "years")),
                d.maybe(d.pick([(24, "hours"), (48, "hours"), (2, "days"), (1, "day"), (30, "hours")])),
                d.maybe("DPIA-" + d.text(6)), d.maybe(d.pick(["convenant_3", "convenant_4", "own"]))))
        if agreements:
            role = d.maybe("processor")
            kind = d.maybe(d.pick(PROCESSOR_KINDS))
        else:
            role = d.pick(["controller", "joint_controller"])
            kind = d.pick(CONTROLLER_PARTNER_KINDS)
        location = transfer = None
        if d.coin(0.3):
            location = d.pick([*EEA_LOCATIONS, "US", "IN"])
            if location in ("US", "IN"):
                transfer = d.pick(["scc", "bcr", "derogation"])
        partners.append(PartnerSpec(p, d.title(), tuple(agreements), braces=d.coin(), role=role, kind=kind,
                                    location=location, transfer=transfer))

    tests = []
    for tname in (d.names(0, 2, used, "toets") if with_tests else []):
        student = []
        for f in subject.fields:
            if d.coin():
                value = frozenset(d.literal("text") for _ in range(d.count(0, 2))) if f.type == "set" \
                    else d.literal(f.type)
                student.append((f.name, value))
        consents = []
        for t in topics:
            if d.coin():
                given, withdrawn = d.date(), d.maybe(d.date())
                if withdrawn is not None and withdrawn < given:
                    given, withdrawn = withdrawn, given
                consents.append((t.name, d.pick(CONSENT_PARTIES), given, withdrawn))
        expects = []
        for _ in range(d.count(1, 2)):
            dsn, f = d.pick(all_fields)
            allow = d.coin()
            because = None if allow else d.maybe(d.pick(DENY_CODES))
            expects.append((allow, (RefSpec(dsn, (f.name,)),), because))
        at = d.date() if d.coin() else d.datetime()
        tests.append(TestSpec(tname, at, d.pick(partner_names), d.pick([p.name for p in purposes]),
                              tuple(student), tuple(consents), tuple(expects)))
    return PolicySpec(tuple(datasets), tuple(partners), tuple(purposes), tuple(topics), tuple(rules), tuple(tests),
                      controller)


def rename_spec(spec: PolicySpec, rename: Any) -> PolicySpec:
    """The same set with every declared name and field name passed through ``rename``
    (`geboortedatum` and the built-in `age` keep their meaning and their names)."""
    def r(name: str) -> str:
        return name if name in (BIRTHDATE, "age") else rename(name)

    def sel(x: Selector | None) -> Selector | None:
        return None if x is None else Selector(x.everything, tuple(map(r, x.names)))

    def expr(e: Expr) -> Expr:
        kind = e[0]
        if kind in ("cmp", "inlist", "range"):
            return (kind, r(e[1]), *e[2:])
        if kind == "inset":
            return (kind, e[1], r(e[2]), e[3])
        if kind in ("not", "paren"):
            return (kind, expr(e[1]))
        return (kind, tuple(expr(x) for x in e[1]))

    def ref(x: RefSpec) -> RefSpec:
        return RefSpec(r(x.dataset), tuple(map(r, x.fields)), x.transform, x.group)

    def basis(b: str | None) -> str | None:
        if b is not None and b.startswith("consent("):
            return f"consent({r(b[8:-1])})"
        if b is not None and b.startswith("explicit_consent("):
            return f"explicit_consent({r(b[17:-1])})"
        return b

    def agreement(a: AgreementSpec) -> AgreementSpec:
        return AgreementSpec(a.reference, a.window, None if a.covers is None else tuple(map(ref, a.covers)),
                             None if a.purposes is None else tuple(map(r, a.purposes)), a.retain, a.breach,
                             a.dpia, a.model)

    return PolicySpec(
        tuple(DatasetSpec(r(d.name), d.title, d.subject,
                          tuple(FieldSpec(r(f.name), f.type,
                                          f.sensitivity, f.role) for f in d.fields))
              for d in spec.datasets),
        tuple(PartnerSpec(r(p.name), p.title, tuple(map(agreement, p.agreements)), p.braces, p.role, p.kind,
                          p.location, p.transfer) for p in spec.partners),
        tuple(NamedSpec(r(u.name), u.title, u.reconfirm, u.kind) for u in spec.purposes),
        tuple(NamedSpec(r(t.name), t.title, t.reconfirm) for t in spec.topics),
        tuple(RuleSpec(x.effect, r(x.name), sel(x.partner), sel(x.purpose), tuple(map(ref, x.refs)),
                       basis(x.basis), basis(x.art9), None if x.condition is None else expr(x.condition),
                       x.window, x.retain, x.note, x.dpia) for x in spec.rules),
        tuple(TestSpec(t.name and r(t.name), t.at, r(t.partner), r(t.purpose),
                       tuple((r(k), v) for k, v in t.student),
                       tuple((r(c[0]), *c[1:]) for c in t.consents),
                       tuple((a, tuple(map(ref, refs)), b) for a, refs, b in t.expects)) for t in spec.tests),
        spec.controller,
    )


# ---------------------------------------------------------------------------
# Rendering

@dataclass
class Layout:
    """How to lay tokens out: a seeded choice of separators, comments and extra parentheses."""

    seed: int = 0
    spaces_only: bool = False  # every separator a space: whole declarations on one line
    extra_parens: bool = True
    _rng: random.Random = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def sep(self) -> str:
        if self.spaces_only:
            return " "
        return self._rng.choice([" ", " ", " ", "  ", "\t", "\n", "\n    ", " # note }{\"\n", "\r\n "])

    def paren(self) -> bool:
        return self.extra_parens and self._rng.random() < 0.15


def quote(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def literal_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, datetime.date)):
        return str(value)
    return quote(value)


def expr_text(e: Expr, layout: Layout, prec: int = 0) -> str:
    """Condition text; ``prec`` 0 = or-level, 1 = and-level, 2 = operand of `not`."""
    kind = e[0]
    if kind == "cmp":
        s = f"{e[1]} {e[2]} {literal_text(e[3])}"
    elif kind == "inlist":
        s = f"{e[1]} {'not in' if e[3] else 'in'} [{', '.join(literal_text(v) for v in e[2])}]"
    elif kind == "range":
        s = f"{e[1]} {'not in' if e[4] else 'in'} {literal_text(e[2])}..{literal_text(e[3])}"
    elif kind == "inset":
        s = f"{literal_text(e[1])} {'not in' if e[3] else 'in'} {e[2]}"
    elif kind == "paren":
        return "(" + expr_text(e[1], layout, 0) + ")"
    elif kind == "not":
        return "not " + expr_text(e[1], layout, 2)
    else:
        need = 1 if kind == "and" else 0
        joiner = f"{layout.sep()}{kind} "
        s = joiner.join(expr_text(x, layout, need + 1 if kind == "and" else need) for x in e[1])
        if prec > need:
            return f"({s})"
        return f"({s})" if layout.paren() else s
    return f"({s})" if layout.paren() else s


def window_text(w: WindowSpec) -> str:
    parts = ["valid"]
    if w.start is not None:
        parts.append(f"from {w.start}")
    if w.end is not None:
        parts.append(f"until {w.end}")
    return " ".join(parts)


def ref_text(r: RefSpec) -> str:
    if not r.fields:
        return f"{r.dataset}.*"
    if r.group:
        return f"{r.dataset}.{{{', '.join(r.fields)}}}"
    return f"{r.dataset}.{r.fields[0]}" + (f" as {r.transform}" if r.transform else "")


def selector_text(s: Selector) -> str:
    if not s.everything:
        return ", ".join(s.names)
    return "* except " + ", ".join(s.names) if s.names else "*"


def rule_clauses(r: RuleSpec, layout: Layout) -> list[str]:
    clauses = [f"partner {selector_text(r.partner)}",
               f"fields {', '.join(ref_text(x) for x in r.refs)}"]
    if r.purpose is not None:
        clauses.append(f"purpose {selector_text(r.purpose)}")
    if r.basis is not None:
        clauses.append(f"basis {r.basis}")
    if r.art9 is not None:
        clauses.append(f"art9 {r.art9}")
    if r.condition is not None:
        clauses.append(f"students where {expr_text(r.condition, layout)}")
    if r.window is not None:
        clauses.append(window_text(r.window))
    if r.retain is not None:
        clauses.append(f"retain {r.retain[0]} {r.retain[1]}")
    if r.note is not None:
        clauses.append(f"note {quote(r.note)}")
    if r.dpia is not None:
        clauses.append(f"dpia {quote(r.dpia)}")
    layout._rng.shuffle(clauses)  # clause order does not matter
    return clauses


def render_declarations(spec: PolicySpec, layout: Layout | None = None) -> list[str]:
    """Each declaration of ``spec`` as its own text (no trailing newline)."""
    layout = layout or Layout()
    out: list[str] = []
    sep = layout.sep
    if spec.controller is not None:
        c = spec.controller
        clauses = []
        if c.kind is not None:
            clauses.append(f"kind{sep()}{c.kind}")
        if c.dpo is not None:
            clauses.append(f"dpo{sep()}{quote(c.dpo)}")
        if c.breach_handling is not None:
            clauses.append(f"breach_handling{sep()}{c.breach_handling[0]} {c.breach_handling[1]}")
        layout._rng.shuffle(clauses)
        body = f" {{{sep()}{sep().join(clauses)}{sep()}}}" if clauses or layout._rng.random() < 0.5 else ""
        out.append(f"controller {quote(c.title)}{body}")
    for d in spec.datasets:
        head = f"dataset {d.name}" + (f" {quote(d.title)}" if d.title is not None else "")
        head += " subject" if d.subject else ""
        body = sep().join(f"{f.name} {f.type} {f.sensitivity}" + (f"{sep()}{f.role}" if f.role else "")
                          for f in d.fields)
        out.append(f"{head} {{{sep()}{body}{sep()}}}")
    for p in spec.partners:
        text = f"partner {p.name}" + (f" {quote(p.title)}" if p.title is not None else "")
        items = [agreement_text(a, layout) for a in p.agreements]
        for word, value in (("role", p.role), ("kind", p.kind), ("location", p.location), ("transfer", p.transfer)):
            if value is not None:
                items.append(f"{word}{sep()}{value}")
        layout._rng.shuffle(items)  # clauses and agreements in any order
        if items or p.braces:
            text += f" {{{sep()}{sep().join(items)}{sep()}}}"
        out.append(text)
    for u in spec.purposes:
        out.append(f"purpose {u.name}" + (f" {quote(u.title)}" if u.title is not None else "")
                   + (f"{sep()}kind{sep()}{u.kind}" if u.kind is not None else ""))
    for t in spec.topics:
        out.append(f"consent {t.name}" + (f" {quote(t.title)}" if t.title is not None else "")
                   + (" reconfirm_at_16" if t.reconfirm else ""))
    for r in spec.rules:
        body = layout.sep().join(rule_clauses(r, layout))
        out.append(f"{r.effect} {r.name} {{{layout.sep()}{body}{layout.sep()}}}")
    for t in spec.tests:
        at = t.at.strftime("%Y-%m-%dT%H:%M") if isinstance(t.at, datetime.datetime) else str(t.at)
        items = []
        for k, v in t.student:
            if isinstance(v, frozenset):
                items.append(f"{k}: [{', '.join(quote(x) for x in sorted(v))}]")
            else:
                items.append(f"{k}: {literal_text(v)}")
        clauses = [f"at {at}", f"partner {t.partner}", f"purpose {t.purpose}",
                   f"student {{ {', '.join(items)} }}"]
        for topic, by, given, withdrawn in t.consents:
            clauses.append(f"consent {topic} by {by} on {given}" + (f" withdrawn {withdrawn}" if withdrawn else ""))
        for allow, refs, because in t.expects:
            clauses.append(f"expect {'allow' if allow else 'deny'} {', '.join(ref_text(r) for r in refs)}"
                           + (f" because {because}" if because else ""))
        out.append(f"test {t.name} {{{layout.sep()}{layout.sep().join(clauses)}{layout.sep()}}}")
    return out


def agreement_text(a: AgreementSpec, layout: Layout) -> str:
    sep = layout.sep
    text = f"agreement {quote(a.reference)} {window_text(a.window)}"
    clauses = []
    if a.covers is not None:
        clauses.append(f"covers{sep()}{', '.join(ref_text(r) for r in a.covers)}")
    if a.purposes is not None:
        clauses.append(f"purposes{sep()}{', '.join(a.purposes)}")
    for word, value in (("retain", a.retain), ("breach", a.breach)):
        if value is not None:
            clauses.append(f"{word} {value[0]}{sep()}{value[1]}")
    if a.dpia is not None:
        clauses.append(f"dpia {quote(a.dpia)}")
    if a.model is not None:
        clauses.append(f"model {a.model}")
    layout._rng.shuffle(clauses)
    if clauses or layout._rng.random() < 0.2:
        text += f"{sep()}{{{sep()}{sep().join(clauses)}{sep()}}}"
    return text


def render(spec: PolicySpec, layout: Layout | None = None, *, shuffle: bool = True) -> str:
    """The whole set as one text; declarations shuffled (order does not matter), one per line."""
    layout = layout or Layout()
    decls = render_declarations(spec, layout)
    if shuffle:
        layout._rng.shuffle(decls)
    joiner = " " if layout.spaces_only else "\n\n"
    return "# generated policy\n" + joiner.join(decls) + "\n"


@st.composite
def policy_texts(draw: st.DrawFn, **kwargs: Any) -> tuple[PolicySpec, str]:
    spec = draw(policy_specs(**kwargs))
    layout = Layout(seed=draw(st.integers(0, 2**32 - 1)))
    return spec, render(spec, layout)


# ---------------------------------------------------------------------------
# Mutations and random text

TOKEN_RE = re.compile(r'"(?:[^"\\]|\\.)*"?|#[^\n]*|[A-Za-z_][A-Za-z0-9_-]*|-?[0-9][0-9:T-]*|\.\.|[=!<>]=?|\s+|.',
                      re.DOTALL)

JUNK = ("{", "}", "(", ")", "[", "]", ",", ".", "..", "*", '"', "\\", "#", "==", "<", "not", "and", "or",
        "in", "permit", "forbid", "dataset", "partner", "except", "as", "valid", "from", "until", "2025-02-30",
        "9999999999999999999999", "-0", "\u2028", "\x00", "\ufeff", "ë", "\r", "students where", "basis consent(",
        "1" * 5000, "((((((((((", "not not not", "x.", ".*", "T12:00", "2025-13-01", "\t", "\n")


def tokens(text: str) -> list[str]:
    return TOKEN_RE.findall(text)


@st.composite
def mutate(draw: st.DrawFn, text: str, max_mutations: int = 4) -> str:
    toks = tokens(text)
    for _ in range(draw(st.integers(1, max_mutations))):
        if not toks:
            toks = [draw(st.sampled_from(JUNK))]
        op = draw(st.sampled_from(["delete", "duplicate", "swap", "truncate", "insert", "replace"]))
        i = draw(st.integers(0, len(toks) - 1))
        if op == "delete":
            del toks[i]
        elif op == "duplicate":
            toks.insert(i, toks[i])
        elif op == "swap":
            j = draw(st.integers(0, len(toks) - 1))
            toks[i], toks[j] = toks[j], toks[i]
        elif op == "truncate":
            toks = toks[:i]
            if toks and draw(st.booleans()):  # also cut inside the last token
                last = toks[-1]
                toks[-1] = last[: draw(st.integers(0, len(last)))]
        elif op == "insert":
            toks.insert(i, draw(st.sampled_from(JUNK) | st.text(max_size=3)))
        else:
            toks[i] = draw(st.sampled_from(JUNK))
    return "".join(toks)


@st.composite
def mutated_texts(draw: st.DrawFn) -> str:
    _, text = draw(policy_texts(max_rules=4))
    return draw(mutate(text))


#: Printable ASCII biased towards the characters and words of the language.
_LANG_PIECES = [*sorted(KEYWORDS), "{", "}", "(", ")", "[", "]", ",", ".", "..", "*", '"', "#", "==", "!=",
                "<=", ">=", "<", ">", ":", "\\", "2025-08-01", "12", "-3", "x", "leerling",
                "consent(", "as pseudonym", " ", " ", "\n", "\t"]
language_soup = st.lists(st.one_of(st.sampled_from(_LANG_PIECES),
                                   st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=4)),
                         max_size=80).map(" ".join)
ascii_soup = st.lists(st.sampled_from(_LANG_PIECES), max_size=120).map("".join)


# ---------------------------------------------------------------------------
# Students and moments for deciding over a generated set

_bad_values = st.one_of(st.none(), st.integers(), st.text(max_size=4), st.booleans(), date_values,
                        st.floats(allow_nan=True), st.just(object()), st.lists(st.integers(), max_size=2),
                        st.datetimes(datetime.datetime(2000, 1, 1), datetime.datetime(2030, 1, 1)))


def _good_value(ftype: str) -> st.SearchStrategy[Any]:
    if ftype == "set":
        return st.one_of(st.frozensets(text_values, max_size=3), st.lists(text_values, max_size=3),
                         st.sets(text_values, max_size=3))
    if ftype == "date":
        return st.dates(datetime.date(2005, 1, 1), datetime.date(2025, 12, 31))
    return {"text": text_values, "int": int_values, "date": date_values, "bool": st.booleans()}[ftype]


def students_for(spec: PolicySpec, consent_factory: Any = None) -> st.SearchStrategy[dict[str, Any]]:
    """Student records for the subject dataset: mostly well typed, sometimes missing or ill-typed."""
    subject = spec.subject

    @st.composite
    def build(draw: st.DrawFn) -> dict[str, Any]:
        record: dict[str, Any] = {}
        for f in subject.fields:
            choice = draw(st.sampled_from(["good", "good", "good", "good", "missing", "bad"]))
            if choice == "good":
                record[f.name] = draw(_good_value(f.type))
            elif choice == "bad":
                record[f.name] = draw(_bad_values)
        if spec.topics and consent_factory is not None:
            consents = {}
            for t in spec.topics:
                if draw(st.booleans()):
                    by = draw(st.sampled_from(["parent", "student"]))
                    given = draw(st.dates(datetime.date(2015, 1, 1), datetime.date(2030, 1, 1)))
                    withdrawn = draw(st.none() | st.dates(datetime.date(2015, 1, 1), datetime.date(2030, 1, 1)))
                    consents[t.name] = consent_factory(by=by, given=given, withdrawn=withdrawn)
            record["consents"] = consents
        return record

    return build()


def moments() -> st.SearchStrategy[Any]:
    """Dates, naive and aware datetimes between 2000 and 2031, plus exact window edges."""
    from zoneinfo import ZoneInfo
    zones = st.sampled_from([ZoneInfo("Europe/Amsterdam"), ZoneInfo("UTC"), ZoneInfo("America/New_York")])
    return st.one_of(
        date_values,
        st.datetimes(datetime.datetime(2000, 1, 1), datetime.datetime(2030, 12, 31)),
        st.datetimes(datetime.datetime(2000, 1, 1), datetime.datetime(2030, 12, 31), timezones=zones),
        date_values.map(lambda d: datetime.datetime.combine(d, datetime.time(23, 59, 59, 999999))),
    )


def requests_for(spec: PolicySpec) -> st.SearchStrategy[tuple[str, str, list[str]]]:
    """(partner, purpose, fields): mostly declared names, sometimes unknown ones."""
    partners = st.sampled_from([p.name for p in spec.partners]) | st.just("onbekend")
    purposes = st.sampled_from([u.name for u in spec.purposes]) | st.just("onbekend")
    refs = spec.field_refs()
    fields = st.lists(st.sampled_from(refs) | st.just("leerling.bestaat_niet"), min_size=1, max_size=5, unique=True)
    return st.tuples(partners, purposes, fields)
