"""Checker: semantic validation of parsed files against the catalogue -> errors and warnings.

``check(files)`` reports every problem of spec section 5 in every file at once and never
raises. Each diagnostic has a stable code (see docs/diagnostics.md), points at the name
or clause at fault, and says what to do. Set-wide warnings that need reasoning over
conditions and windows use ``analysis``; they are computed for the rules that have no
errors of their own, with rules indexed by (field, partner) so the pairwise reasoning
stays close to linear in the number of rules.
"""

from __future__ import annotations

import datetime
import difflib
import posixpath
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs

from . import analysis, law
from . import nodes as n
from .errors import Diagnostic
from .model import (
    AGE,
    ART9_GROUNDS,
    BASES,
    BIRTHDATE_FIELD,
    CONSENT_PARTIES,
    DURATION_UNITS,
    FIELD_TYPES,
    REASON_CODES,
    SENSITIVITIES,
    TRANSFORMS,
    NameSet,
    WindowInfo,
    paused_gc,
)
from .source import Span

#: bases that rest on a law, which they must name (GDPR art. 6(3)), with an example law for the help
_LAW_BASES = ("legal_obligation", "public_task")
_LAW_EXAMPLES = {"legal_obligation": "Wet op het primair onderwijs, art. 178a", "public_task": "WVO 2020, art. 2.2"}
#: duration units (hours are v2: `breach` and `breach_handling`)
_UNITS = tuple(DURATION_UNITS) + tuple(u for u in ("hour", "hours") if u not in DURATION_UNITS)
#: sensitivity classes a condition should not test (their value would decide, and show in, reasons)
_PROTECTED = ("special", "criminal", "national_id")
#: what ``unknown`` calls a name -> the declaration keyword of nodes.Recovered that declares it
_RECOVERED_KINDS = {"partner": "partner", "purpose": "purpose", "consent topic": "consent", "dataset": "dataset",
                    "dataset in expectation": "dataset"}
#: the reason codes an allowed field carries; every other code explains a denial
_ALLOW_CODES = frozenset({"permitted", "inform_student"})
#: sensitivity classes that need a `students where` to avoid a W010 warning
_RISKY = ("sensitive", "special", "criminal")
_ORDERING = ("<", "<=", ">", ">=")
_REQUIRED = {"permit": ("partner", "purpose", "fields", "basis"), "forbid": ("partner", "fields")}
_NOT_ALLOWED = {"permit": (), "forbid": ("basis", "art9", "retain")}
_CLAUSE_HELP = {
    "partner": "add `partner NAME` (or `partner *`) saying which partners the rule is about",
    "purpose": "add `purpose NAME` saying what the data is used for",
    "fields": "add `fields dataset.field, ...` listing the data the rule is about",
    "basis": "add the legal basis, e.g. `basis contract` or `basis consent(TOPIC)`",
}
_TEST_REQUIRED = {
    "at": "add `at DATE` (the moment the test decides at)",
    "partner": "add `partner NAME`",
    "purpose": "add `purpose NAME`",
    "expect": "add `expect allow dataset.field` or `expect deny dataset.field`",
}


def check(files: Sequence[n.File], *, today: datetime.date | None = None) -> list[Diagnostic]:
    """Every error and warning of spec section 5 for the given files (never raises)."""
    checker = _Checker(files, today or datetime.date.today())
    try:
        with paused_gc():
            checker.run()
    except Exception as exc:  # pragma: no cover - a bug here must not hide the policy's problems
        span = Span(files[0].name if files else "<policy>", 1, 1, 1, 2)
        checker.diagnostics.append(Diagnostic.at(
            span, "E999", f"internal error in the checker: {type(exc).__name__}: {exc}",
            help="please report this; the policy may be fine"))
    return checker.diagnostics


def suggest(name: str, candidates: Iterable[str]) -> str | None:
    """``did you mean `x`?`` for the closest candidate, or None."""
    close = difflib.get_close_matches(name, sorted(set(candidates)), n=1, cutoff=0.6)
    return f"did you mean `{close[0]}`?" if close else None


def _article(word: str) -> str:
    """``a`` or ``an`` before a word (by its first letter: "an int", "a date")."""
    return "an" if word[:1] in ("a", "e", "i", "o", "u") else "a"


def _set_folder(file: str) -> str:
    """The folder a policy file's set probably lives in: its folder, or the one above
    a `rules/` or `tests/` folder (``policies/rules/x.avg`` -> ``policies/``)."""
    folder = posixpath.dirname(file.replace("\\", "/"))
    if posixpath.basename(folder) in ("rules", "tests"):
        folder = posixpath.dirname(folder)
    return (folder or ".") + "/"


def _where(span: Span | None) -> str:
    return f"{span.file}:{span.line}" if span else "elsewhere"


@attrs.define
class _FieldEntry:
    dataset: str
    name: str
    type: str | None  # None when the declared type is unknown (already an error)
    sensitivity: str | None
    decl: n.FieldDecl

    @property
    def ref(self) -> str:
        return f"{self.dataset}.{self.name}"


@attrs.define
class _Grant:
    """One field a valid rule is about, with the FieldRef that names it."""

    field: _FieldEntry
    transform: str | None
    node: n.FieldRef


@attrs.define
class _AgreementFacts:
    """One agreement of a partner, resolved for the coverage, retention and DPIA checks."""

    reference: str
    window: WindowInfo
    covers: frozenset[str] | None  # "dataset.field" refs; None: every field
    purposes: frozenset[str] | None  # None: every purpose
    retain: tuple[int, str] | None
    dpia: str | None
    node: n.Agreement

    def covers_field(self, ref: str) -> bool:
        return self.covers is None or ref in self.covers

    def covers_purpose(self, purpose: str) -> bool:
        return self.purposes is None or purpose in self.purposes

    def describe(self) -> str:
        parts = []
        if self.covers is not None:
            refs = sorted(self.covers)
            parts.append("covers " + (", ".join(refs[:4]) + (" ..." if len(refs) > 4 else "") if refs else "nothing"))
        if self.purposes is not None:
            parts.append("purposes " + (", ".join(sorted(self.purposes)) or "none"))
        return f"`{self.reference}`" + (f" ({'; '.join(parts)})" if parts else "")


def _condition_refs(expr: n.Expr) -> list[n.Ref]:
    """The names a condition uses, in order (a walk over the condition nodes only: fast)."""
    out: list[n.Ref] = []
    stack: list[Any] = [expr]
    while stack:
        node = stack.pop()
        if isinstance(node, (n.And, n.Or)):
            stack.extend(reversed(node.items))
        elif isinstance(node, n.Not):
            stack.append(node.operand)
        elif isinstance(node, n.Ref):
            out.append(node)
        elif isinstance(node, n.Compare):
            stack.extend((node.right, node.left))
        elif isinstance(node, (n.InList, n.InRange)):
            stack.append(node.operand)
        elif isinstance(node, n.InSet):
            stack.extend((node.container, node.element))
    return out


def _names_text(names: Iterable[str], limit: int = 3) -> str:
    items = list(names)
    return ", ".join(f"`{x}`" for x in items[:limit]) + (" ..." if len(items) > limit else "")


def _duration_text(d: tuple[int, str]) -> str:
    amount, unit = d
    unit = DURATION_UNITS.get(unit, unit if unit.endswith("s") else unit + "s")
    return f"{amount} {unit[:-1] if amount == 1 else unit}"


@attrs.define
class _RuleFacts:
    """A rule without errors of its own, resolved for the set-wide warnings."""

    rule: n.Rule
    index: int
    partners: frozenset[str]
    purposes: frozenset[str]
    grants: list[_Grant]
    basis: str | None
    window: WindowInfo

    @property
    def name(self) -> str:
        return self.rule.name.value


class _Checker:
    def __init__(self, files: Sequence[n.File], today: datetime.date) -> None:
        self.files = files
        self.today = today
        self.diagnostics: list[Diagnostic] = []
        self.error_count = 0
        self.datasets: dict[str, n.Dataset] = {}
        self.fields: dict[str, dict[str, _FieldEntry]] = {}
        self.partners: dict[str, n.Partner] = {}
        self.purposes: dict[str, n.Purpose] = {}
        self.topics: dict[str, n.ConsentTopic] = {}
        self.rules: dict[str, n.Rule] = {}
        self.tests: dict[str, n.Test] = {}
        self.subject: n.Dataset | None = None
        self.types: dict[str, str] = {}
        self.facts: list[_RuleFacts] = []
        self._agreements: dict[str, list[WindowInfo]] = {}
        self._reported: set[Diagnostic] = set()
        #: codes not reported because the declarations they need are in files not given
        self.elsewhere: frozenset[str] = frozenset()
        self.hidden: set[Diagnostic] = set()
        self.controller: n.Controller | None = None
        #: names declared in declarations that failed to parse (nodes.File.recovered), by keyword
        self.recovered: dict[str, set[str]] = {}
        self.recovered_subject = False
        self.quiet_after: int | None = None
        self._agreement_facts: dict[str, list[_AgreementFacts]] = {}

    # -- reporting ----------------------------------------------------------
    def report(self, span: Span | None, code: str, message: str, help: str | None = None,
               fallback: Span | None = None) -> None:
        if self.quiet_after is not None and code.startswith("W") and self.error_count > self.quiet_after:
            return
        where = span or fallback or Span(self.files[0].name if self.files else "<policy>", 1, 1, 1, 2)
        diagnostic = Diagnostic.at(where, code, message, help=help)
        if code in self.elsewhere:
            self.hidden.add(diagnostic)
            return
        if diagnostic in self._reported:  # one mistake reports once (e.g. `d.{a, b}` of an unknown `d`)
            return
        self._reported.add(diagnostic)
        self.error_count += diagnostic.is_error
        self.diagnostics.append(diagnostic)

    def unknown(self, name: n.Name, code: str, what: str, candidates: Iterable[str], advice: str,
                fallback: Span | None = None) -> None:
        kind = _RECOVERED_KINDS.get(what)
        if kind is not None and name.value in self.recovered.get(kind, ()):
            return  # declared in a declaration that failed to parse: its syntax error says all
        hint = suggest(name.value, candidates)
        self.report(name.span, code, f"unknown {what} `{name.value}`", help=hint or advice, fallback=fallback)

    # -- driver ---------------------------------------------------------------
    def run(self) -> None:
        self.collect()
        self.check_subject()
        for f in self.files:
            for d in f.declarations:
                if isinstance(d, n.Dataset):
                    self.check_dataset(d)
                elif isinstance(d, n.Partner):
                    self.check_partner(d)
                elif isinstance(d, n.Controller):
                    self.check_controller(d)
                elif isinstance(d, n.Purpose):
                    self.check_purpose(d)
                elif isinstance(d, n.Rule):
                    self.check_rule(d)
                elif isinstance(d, n.Test):
                    self.check_test(d)
        self.set_wide_warnings()
        if self.elsewhere:
            self.report_catalogue_elsewhere()

    # -- symbol tables and duplicates -------------------------------------------
    def collect(self) -> None:
        tables: list[tuple[type[Any], dict[str, Any], str]] = [
            (n.Dataset, self.datasets, "dataset"), (n.Partner, self.partners, "partner"),
            (n.Purpose, self.purposes, "purpose"), (n.ConsentTopic, self.topics, "consent topic"),
            (n.Rule, self.rules, "rule"), (n.Test, self.tests, "test")]
        for f in self.files:
            for d in f.declarations:
                if isinstance(d, n.Controller):
                    self.declare_controller(d)
                    continue
                for kind, table, word in tables:
                    if isinstance(d, kind):
                        self.declare(table, d, word)
        for f in self.files:
            for r in getattr(f, "recovered", ()):
                if r.name is not None:
                    self.recovered.setdefault(r.keyword, set()).add(r.name.value)
                self.recovered_subject = self.recovered_subject or (r.keyword == "dataset" and r.subject)
        for ds in self.datasets.values():
            entries: dict[str, _FieldEntry] = {}
            for fd in ds.fields:
                if fd.name.value in entries:
                    first = entries[fd.name.value].decl
                    self.report(fd.name.span, "E201",
                                f"field `{fd.name.value}` is declared twice in dataset `{ds.name}`",
                                help=f"the first is at {_where(first.span)}; remove or rename one")
                    continue
                ftype = fd.type.value if fd.type.value in FIELD_TYPES else None
                sens = fd.sensitivity.value if fd.sensitivity.value in SENSITIVITIES else None
                entries[fd.name.value] = _FieldEntry(ds.name.value, fd.name.value, ftype, sens, fd)
            self.fields[ds.name.value] = entries

    def declare(self, table: dict[str, Any], decl: Any, word: str) -> None:
        name: n.Name = decl.name
        first = table.get(name.value)
        if first is None:
            table[name.value] = decl
            return
        extra = " (rule names are unique across permits and forbids)" if word == "rule" else ""
        self.report(name.span, "E201", f"{word} `{name.value}` is declared more than once{extra}",
                    help=f"the first is at {_where(first.span)}; remove or rename one", fallback=decl.span)

    def check_subject(self) -> None:
        subjects = [d for d in self.datasets.values() if d.subject]
        all_subjects = [d for f in self.files for d in f.declarations if isinstance(d, n.Dataset) and d.subject]
        if not subjects:
            if self.recovered_subject:
                return  # the subject dataset failed to parse: its syntax error is the one to fix
            first = next(iter(self.datasets.values()), None)
            if first is None and any(isinstance(d, (n.Rule, n.Test)) for f in self.files for d in f.declarations):
                self.catalogue_elsewhere()
                return
            span = first.name.span if first else None
            self.report(span, "E202", "the policy set has no `subject` dataset",
                        help='mark the dataset that holds the students, e.g. `dataset leerling "..." subject { ... }`')
            return
        self.subject = subjects[0]
        for extra in all_subjects:
            if extra is not self.subject and extra.name.value != self.subject.name.value:
                self.report(extra.name.span, "E203",
                            f"dataset `{extra.name}` is marked `subject`, but `{self.subject.name}` already is",
                            help=f"`{self.subject.name}` is at {_where(self.subject.span)}; "
                                 "a policy set has exactly one subject dataset: remove one `subject`")
        for entry in self.fields.get(self.subject.name.value, {}).values():
            if entry.type is not None:
                self.types[entry.name] = entry.type
        self.types.setdefault(AGE, AGE)

    def catalogue_elsewhere(self) -> None:
        """No dataset at all, but rules or tests: the catalogue is in a file that was not given.

        Say so once (E202, reported when the run ends, with how many follow-on errors it hid)
        and do not report every name of the missing files as unknown: datasets, and partners,
        purposes and consent topics when these files declare none of them either.
        """
        hidden = {"E104", "E311"}
        for code, table in (("E101", self.partners), ("E102", self.purposes), ("E103", self.topics)):
            if not table:
                hidden.add(code)
        self.elsewhere = frozenset(hidden)

    def report_catalogue_elsewhere(self) -> None:
        self.elsewhere = frozenset()
        names = sorted({f.name for f in self.files})
        folders = sorted({_set_folder(x) for x in names})
        command = "avgpolicy check " + " ".join(folders)
        what = f"file `{names[0]}` declares" if len(names) == 1 else f"the {len(names)} files given declare"
        count = len(self.hidden)
        hidden = f"; {count} unknown name{'s' if count != 1 else ''} not reported" if count else ""
        span = Span(names[0], 1, 1, 1, 2) if names else None
        self.report(span, "E202", f"the policy set has no `subject` dataset: {what} no dataset at all, "
                    f"so the catalogue is probably in another file{hidden}",
                    help=f"check the whole folder, e.g. `{command}`, or name the catalogue's file as well; "
                         "a policy set is every .avg file of the folder together")

    def check_dataset(self, ds: n.Dataset) -> None:
        if self.datasets.get(ds.name.value) is not ds:
            return
        first_role: dict[str, n.FieldDecl] = {}
        for fd in ds.fields:
            if fd.type.value not in FIELD_TYPES:
                self.unknown(fd.type, "E106", "type", FIELD_TYPES, "use one of " + ", ".join(FIELD_TYPES))
            if fd.sensitivity.value not in SENSITIVITIES:
                self.unknown(fd.sensitivity, "E107", "sensitivity", SENSITIVITIES,
                             "use one of " + ", ".join(SENSITIVITIES))
            role = getattr(fd, "role", None)
            if role is not None:
                self.check_field_role(ds, fd, role, first_role)

    def check_field_role(self, ds: n.Dataset, fd: n.FieldDecl, role: n.Name,
                         first_role: dict[str, n.FieldDecl]) -> None:
        """E420: `key` (a text or int field) and `left` (a date field), at most one each, in the subject."""
        r = role.value
        types = ("text", "int") if r == "key" else ("date",)
        meaning = ("identifies a student" if r == "key" else "is the date a student left the school")
        if not ds.subject:
            self.report(role.span, "E420", f"field role `{r}` in dataset `{ds.name}`, which is not the subject "
                        "dataset", help=f"`{r}` marks the field of the subject dataset that {meaning}: "
                                        f"remove `{r}` here (spec §7.7)", fallback=fd.span)
        elif fd.type.value in FIELD_TYPES and fd.type.value not in types:
            want = " or ".join(types)
            self.report(role.span, "E420", f"a `{r}` field must be {want}, but `{fd.name}` is {fd.type.value}",
                        help=f"mark a {want} field as `{r}`, or remove `{r}` (spec §7.7)", fallback=fd.span)
        elif r in first_role:
            first = first_role[r]
            self.report(role.span, "E420", f"dataset `{ds.name}` has a second `{r}` field `{fd.name}` "
                        f"(the first is `{first.name}`)", help=f"a student has one field that {meaning}: "
                                                            f"remove one `{r}` (spec §7.7)", fallback=fd.span)
        else:
            first_role[r] = fd

    def check_window(self, w: n.Window | None, what: str, fallback: Span | None) -> bool:
        if w is not None and w.start is not None and w.end is not None and w.end < w.start:
            self.report(w.span, "E303", f"the window of {what} ends ({w.end}) before it starts ({w.start})",
                        help="swap the dates or correct the `until` date", fallback=fallback)
            return False
        return True

    # -- rules ----------------------------------------------------------------
    def check_rule(self, rule: n.Rule) -> None:
        errors_before = self.error_count
        effect = rule.effect
        written = {k for k, _ in rule.clauses}
        for clause in _REQUIRED[effect]:
            if clause not in written:
                self.report(rule.name.span, "E304", f"{effect} `{rule.name}` has no `{clause}` clause",
                            help=_CLAUSE_HELP[clause], fallback=rule.span)
        for clause in _NOT_ALLOWED[effect]:
            if clause in written:
                self.report(rule.clause_span(clause), "E305", f"clause `{clause}` is not allowed in a forbid",
                            help=f"remove `{clause}` from forbid `{rule.name}`; "
                                 "a forbid only says who may not receive which data")
        partners = self.selector(rule.partner, self.partners, "E101", "partner", "declare it with `partner NAME`")
        purposes = self.selector(rule.purpose, self.purposes, "E102", "purpose", "declare it with `purpose NAME`")
        grants, grants_ok = self.rule_fields(rule)
        basis = self.rule_basis(rule)
        if rule.art9 is not None and rule.art9.value not in ART9_GROUNDS:
            self.unknown(rule.art9, "E109", "art. 9 ground", ART9_GROUNDS,
                         "use one of " + ", ".join(ART9_GROUNDS))
        self.check_art9(rule)
        if effect == "permit":
            self.sensitivity_rules(rule, grants, basis)
        if rule.retain is not None:
            self.check_retain(rule.retain)
        window_ok = self.check_window(rule.window, f"{effect} `{rule.name}`", rule.span)
        if rule.condition is not None:
            self.check_condition(rule.condition)
            self.condition_on_protected_fields(rule)
        self.rule_warnings(rule, grants, window_ok)
        if effect == "permit":
            self.quiet_after = errors_before  # warnings only for rules without errors
            try:
                self.legal_rules(rule, partners, purposes, grants, basis, window_ok)
            finally:
                self.quiet_after = None
        if self.error_count == errors_before and self.rules.get(rule.name.value) is rule \
                and partners is not None and purposes is not None and grants_ok and window_ok:
            w = rule.window
            self.facts.append(_RuleFacts(rule, len(self.facts), partners, purposes, grants, basis,
                                         WindowInfo(w.start, w.end) if w else WindowInfo(None, None)))

    def selector(self, sel: n.Selector | None, table: Mapping[str, Any], code: str, what: str,
                 advice: str) -> frozenset[str] | None:
        """The declared names a selector picks (None: it names an unknown one, or is absent)."""
        if sel is None:
            return frozenset(table) if what == "purpose" else None
        ok = True
        for name in sel.names:
            if name.value not in table:
                self.unknown(name, code, what, table, advice)
                ok = False
        if not ok:
            return None
        return analysis.expand(NameSet(sel.everything, frozenset(x.value for x in sel.names)), table)

    def resolve_ref(self, ref: n.FieldRef, code_dataset: str = "E104", code_field: str = "E105"
                    ) -> list[_FieldEntry] | None:
        ds = ref.dataset.value
        if ds not in self.datasets:
            if ds in self.recovered.get("dataset", ()):
                return None  # its field list may be incomplete: no field of it is unknown
            self.unknown(ref.dataset, code_dataset, "dataset", self.datasets,
                         "declare it with `dataset NAME { ... }`", fallback=ref.span)
            return None
        entries = self.fields.get(ds, {})
        if ref.field.value == "*":
            return list(entries.values())
        entry = entries.get(ref.field.value)
        if entry is None:
            hint = suggest(ref.field.value, entries)
            advice = f"declare it in dataset `{ds}`"
            self.report(ref.field.span, code_field, f"unknown field `{ref.ref}`: dataset `{ds}` has no field "
                        f"`{ref.field.value}`", help=hint or advice, fallback=ref.span)
            return None
        return [entry]

    def rule_fields(self, rule: n.Rule) -> tuple[list[_Grant], bool]:
        """The fields a rule names that resolve, and whether all of them did."""
        if rule.fields is None:
            return [], False
        out: list[_Grant] = []
        ok = True
        for ref in rule.fields:
            entries = self.resolve_ref(ref)
            if entries is None:
                ok = False
                continue
            transform = ref.transform.value if ref.transform else None
            if ref.transform is not None and not self.check_transform(rule, ref, entries[0]):
                ok = False
                continue
            out.extend(_Grant(e, transform, ref) for e in entries)
        return self.distinct(rule, out), ok

    def distinct(self, rule: n.Rule, grants: list[_Grant]) -> list[_Grant]:
        """Each field once; a field named twice in different forms is an error (which form is meant?)."""
        seen: dict[str, _Grant] = {}
        for g in grants:
            first = seen.get(g.field.ref)
            if first is None:
                seen[g.field.ref] = g
            elif first.transform != g.transform:
                def form(x: _Grant) -> str:
                    return f"`{x.field.ref} as {x.transform}`" if x.transform else f"`{x.field.ref}`"
                self.report(g.node.span, "E201", f"field `{g.field.ref}` is named twice in {rule.effect} "
                            f"`{rule.name}`, as {form(first)} and as {form(g)}",
                            help="name each field once, in the form the partner should receive")
        return list(seen.values())

    def check_transform(self, rule: n.Rule, ref: n.FieldRef, entry: _FieldEntry) -> bool:
        t = ref.transform
        assert t is not None
        if rule.effect == "forbid":
            self.report(t.span, "E310", f"a forbid cannot transform a field (`as {t.value}`)",
                        help=f"remove `as {t.value}`: a forbid denies the field whatever form it takes")
            return False
        if t.value not in TRANSFORMS:
            self.unknown(t, "E110", "transform", TRANSFORMS, "use `as pseudonym` or `as year`")
            return False
        if t.value == "year" and entry.type is not None and entry.type != "date":
            self.report(t.span, "E309", f"`as year` needs a date field, but `{ref.ref}` is {entry.type}",
                        help=f"remove `as year`, or use it on a date field such as `{BIRTHDATE_FIELD}`")
            return False
        if t.value == "pseudonym" and entry.type == "set":
            self.report(t.span, "E310", f"`as pseudonym` cannot be applied to set field `{ref.ref}`",
                        help="pseudonymise a single identifier field instead, or leave the transform out")
            return False
        return True

    def rule_basis(self, rule: n.Rule) -> str | None:
        b = rule.basis
        if b is None:
            return None
        if b.topic is not None:
            if b.topic.value not in self.topics:
                self.unknown(b.topic, "E103", "consent topic", self.topics,
                             "declare it with `consent NAME \"description\"`")
                return None
            return "consent"
        if b.kind.value not in BASES or b.kind.value == "consent":
            self.unknown(b.kind, "E108", "legal basis", [x for x in BASES if x != "consent"],
                         "use one of consent(TOPIC), " + ", ".join(x for x in BASES if x != "consent"))
            return None
        kind = b.kind.value
        law = getattr(b, "law", None)
        if kind in _LAW_BASES and (law is None or not law.strip()):
            example = _LAW_EXAMPLES[kind]
            what = "an empty law" if law is not None else "no law"
            self.report(b.span, "E412", f"`{kind}` names {what}: a basis in law must say which law it rests on "
                        "(GDPR art. 6(3))",
                        help=f'write the law and article, e.g. `basis {kind}("{example}")`', fallback=rule.span)
        elif kind not in _LAW_BASES and law is not None:
            self.report(b.span, "E412", f"`{kind}` takes no law in parentheses",
                        help=f"write `basis {kind}`; only legal_obligation(\"...\") and public_task(\"...\") "
                             "rest on a law that they name (GDPR art. 6(3))", fallback=rule.span)
        return kind

    def sensitivity_rules(self, rule: n.Rule, grants: list[_Grant], basis: str | None) -> None:
        basis_text = None
        if basis is not None and rule.basis is not None:
            basis_text = f"consent({rule.basis.topic})" if basis == "consent" else basis
        reported_art9 = False
        for g in grants:
            sens, ref = g.field.sensitivity, g.field.ref
            if sens == "national_id" and basis_text is not None and basis != "legal_obligation":
                self.report(g.node.span, "E306",
                            f"national_id field `{ref}` may only be permitted under `legal_obligation`, "
                            f"not `{basis_text}`",
                            help="the BSN/onderwijsnummer may only be shared where a law requires it "
                                 "(UAVG art. 46): remove the field or use `basis legal_obligation(\"LAW\")`")
            elif sens == "criminal" and basis_text is not None and basis not in ("legal_obligation", "public_task"):
                self.report(g.node.span, "E307",
                            f"criminal field `{ref}` may only be permitted under `legal_obligation` or "
                            f"`public_task`, not `{basis_text}`",
                            help="GDPR art. 10: remove the field or use one of those bases")
            elif sens == "special" and rule.art9 is None and not reported_art9:
                reported_art9 = True
                self.report(g.node.span, "E308",
                            f"special category field `{ref}` is permitted without an art. 9 ground",
                            help="add `art9 GROUND` naming the GDPR art. 9(2) exception, e.g. "
                                 "`art9 explicit_consent(TOPIC)`, or remove the field")

    def check_retain(self, d: n.Duration) -> bool:
        return self.check_duration(d, "retention", "write how long the partner may keep the data, "
                                   "e.g. `retain 1 year`")

    def check_duration(self, d: n.Duration, what: str, advice: str) -> bool:
        """E111 / E312; True when the duration is usable."""
        ok = True
        if d.unit.value not in _UNITS:
            ok = False
            self.unknown(d.unit, "E111", "duration unit", _UNITS,
                         "use hours, days, weeks, months or years, e.g. `retain 2 years`", fallback=d.span)
        if d.amount <= 0:
            ok = False
            self.report(d.span, "E312", f"{what} must be a positive duration, not {d.amount}", help=advice)
        return ok

    # -- v2: the controller (spec §7.1) ----------------------------------------------
    def declare_controller(self, c: n.Controller) -> None:
        if self.controller is None:
            self.controller = c
            return
        self.report(c.span, "E401", f"a second controller `{c.title}`: a policy set describes one school board",
                    help=f"the first is `{self.controller.title}` at {_where(self.controller.span)}; keep one "
                         "`controller` (the controller that answers for the processing, GDPR art. 4(7) and 24)")

    def controller_kind(self) -> str | None:
        """`public` (the default), `private`, or None when the kind written is unknown."""
        c = self.controller
        if c is None or c.kind is None:
            return "public"
        return c.kind.value if c.kind.value in law.CONTROLLER_KINDS else None

    def breach_handling(self) -> tuple[int, str]:
        c = self.controller
        if c is not None and c.breach_handling is not None and c.breach_handling.unit.value in _UNITS \
                and c.breach_handling.amount > 0:
            return (c.breach_handling.amount, c.breach_handling.unit.value)
        return (24, "hours")

    def check_controller(self, c: n.Controller) -> None:
        if c.kind is not None and c.kind.value not in law.CONTROLLER_KINDS:
            self.unknown(c.kind, "E115", "controller kind", law.CONTROLLER_KINDS,
                         "write `kind public` (a publicly funded school board) or `kind private`", fallback=c.span)
        d = c.breach_handling
        if d is not None and self.check_duration(d, "breach_handling", "write the school's own time to assess "
                                                 "a breach, e.g. `breach_handling 24 hours`"):
            hours = law.hours_range(d.amount, d.unit.value)
            if hours is not None and hours[0] > law.BREACH_LIMIT_HOURS:
                self.report(d.span, "E408", f"breach_handling {_duration_text((d.amount, d.unit.value))} leaves "
                            "no time to notify the supervisory authority within 72 hours (GDPR art. 33)",
                            help="the school must notify a breach within 72 hours of learning of it: "
                                 "shorten it, e.g. `breach_handling 24 hours`", fallback=c.span)

    # -- v2: partners and agreements (spec §7.2, §7.3) ---------------------------------
    def partner_role(self, name: str) -> str | None:
        """The partner's role: as written, or `processor` when it lists an agreement; None when it has
        neither (an error of its own), `?` when the role written is unknown."""
        p = self.partners[name]
        if p.role is not None:
            return p.role.value if p.role.value in law.PARTNER_ROLES else "?"
        return "processor" if p.agreements else None

    def partner_kind(self, name: str) -> str | None:
        """The partner's kind (default `other`), or None when the kind written is unknown."""
        k = self.partners[name].kind
        if k is None:
            return "other"
        return k.value if k.value in law.PARTNER_KINDS else None

    def agreement_facts(self, partner: str) -> list[_AgreementFacts]:
        """The partner's agreements, resolved (names that do not resolve are left out: already errors)."""
        facts = self._agreement_facts.get(partner)
        if facts is not None:
            return facts
        facts = []
        for a in self.partners[partner].agreements:
            covers: frozenset[str] | None = None
            if a.covers is not None:
                refs: set[str] = set()
                for ref in a.covers:
                    entries = self.fields.get(ref.dataset.value, {})
                    if ref.field.value == "*":
                        refs.update(e.ref for e in entries.values())
                    elif ref.field.value in entries:
                        refs.add(ref.ref)
                covers = frozenset(refs)
            purposes = None if a.purposes is None else frozenset(x.value for x in a.purposes)
            retain = None
            if a.retain is not None and a.retain.unit.value in _UNITS and a.retain.amount > 0:
                retain = (a.retain.amount, a.retain.unit.value)
            dpia = a.dpia if a.dpia and a.dpia.strip() else None
            facts.append(_AgreementFacts(a.reference, WindowInfo(a.window.start, a.window.end), covers, purposes,
                                         retain, dpia, a))
        self._agreement_facts[partner] = facts
        return facts

    def check_partner(self, d: n.Partner) -> None:
        name = d.name.value
        for a in d.agreements:
            self.check_window(a.window, f"agreement `{a.reference}` of partner `{name}`", a.span)
        if d.role is not None and d.role.value not in law.PARTNER_ROLES:
            self.unknown(d.role, "E116", "partner role", law.PARTNER_ROLES,
                         "use processor, controller or joint_controller", fallback=d.span)
        if d.kind is not None and d.kind.value not in law.PARTNER_KINDS:
            self.unknown(d.kind, "E117", "partner kind", law.PARTNER_KINDS,
                         "use one of " + ", ".join(law.PARTNER_KINDS), fallback=d.span)
        if d.transfer is not None and d.transfer.value not in law.TRANSFERS:
            self.unknown(d.transfer, "E119", "transfer mechanism", law.TRANSFERS,
                         "use adequacy, scc, bcr or derogation", fallback=d.span)
        if not d.agreements:
            if d.role is None:
                self.report(d.name.span, "E403", f"partner `{name}` has no processing agreement and no role",
                            help="say which the partner is: `role controller` or `role joint_controller` (an "
                                 "independent or joint controller, e.g. a government body), or list its processing "
                                 "agreement: a processor receives nothing without one (GDPR art. 28(3))",
                            fallback=d.span)
            elif d.role.value == "processor":
                self.report(d.role.span, "E404", f"partner `{name}` is a processor but lists no processing "
                            "agreement", help=f'add `agreement "REFERENCE" valid from DATE until DATE` to partner '
                                              f"`{name}`: a processor may process data only under an agreement "
                                              "(GDPR art. 28(3))", fallback=d.span)
        self.check_location(d)
        self.check_agreements(d)

    def check_location(self, d: n.Partner) -> None:
        location = d.location.value if d.location is not None else "NL"
        if d.location is not None and location not in law.COUNTRIES:
            alias = law.COUNTRY_ALIASES.get(location.upper())
            upper = location.upper() if location.upper() in law.COUNTRIES else None
            hint = f"did you mean `{alias or upper}`?" if (alias or upper) else None
            self.report(d.location.span, "E118", f"unknown country code `{location}`",
                        help=hint or "write the ISO 3166-1 alpha-2 code of the country where the data is "
                                     "processed, e.g. `location NL`, `location DE`, `location US`",
                        fallback=d.span)
            return
        if location in law.EEA:
            return
        transfer = d.transfer.value if d.transfer is not None else None
        span = d.location.span if d.location is not None else d.name.span
        adequate = location in law.ADEQUACY
        options = ("`transfer adequacy` (" + law.ADEQUACY[location] + " has an adequacy decision), or scc, bcr "
                   "or derogation") if adequate else "`transfer scc`, `transfer bcr` or `transfer derogation`"
        if transfer is None:
            self.report(span, "E406", f"partner `{d.name}` processes data in {location}, outside the EEA, "
                        "and declares no transfer mechanism",
                        help=f"add {options} (GDPR art. 44-46)", fallback=d.span)
        elif transfer == "adequacy" and not adequate:
            assert d.transfer is not None
            self.report(d.transfer.span, "E407", f"`transfer adequacy`, but {location} has no EU adequacy decision "
                        f"(list of {law.ADEQUACY_AS_OF})",
                        help=f"use {options} (GDPR art. 45-46); countries with an adequacy decision: "
                             + ", ".join(sorted(law.ADEQUACY)), fallback=d.span)

    def check_agreements(self, d: n.Partner) -> None:
        name = d.name.value
        role = d.role.value if d.role is not None else ("processor" if d.agreements else None)
        handling = self.breach_handling()
        seen: dict[str, n.Agreement] = {}
        for a in d.agreements:
            first = seen.get(a.reference)
            if first is not None:
                self.report(a.span, "E409", f"partner `{name}` has two agreements with reference `{a.reference}`",
                            help=f"the first is at {_where(first.span)}; give the renewal its own reference "
                                 "(each agreement is a document the school can show, GDPR art. 28(9))")
            else:
                seen[a.reference] = a
            for ref in a.covers or ():
                if ref.transform is not None:
                    self.report(ref.transform.span, "E310", f"an agreement's `covers` cannot transform a field "
                                f"(`as {ref.transform.value}`)", help=f"write `{ref.ref}`; the permit says in "
                                                                     "which form the partner receives it")
                self.resolve_ref(ref)
            for purpose in a.purposes or ():
                if purpose.value not in self.purposes:
                    self.unknown(purpose, "E102", "purpose", self.purposes, "declare it with `purpose NAME`")
            model = a.model
            if model is not None and model.value not in law.AGREEMENT_MODELS:
                self.unknown(model, "E121", "agreement model", law.AGREEMENT_MODELS,
                             "use convenant_3, convenant_4 or own", fallback=a.span)
            if a.retain is not None:
                self.check_retain(a.retain)
            if a.breach is not None and self.check_duration(
                    a.breach, "breach", "write how fast the partner must report a breach, e.g. `breach 24 hours`"):
                hours = law.hours_range(a.breach.amount, a.breach.unit.value)
                own = law.hours_range(*handling)
                if hours is not None and own is not None and hours[0] + own[0] > law.BREACH_LIMIT_HOURS:
                    room = law.BREACH_LIMIT_HOURS - own[0]
                    self.report(a.breach.span, "E408", f"agreement `{a.reference}`: breach "
                                f"{_duration_text((a.breach.amount, a.breach.unit.value))} plus the school's "
                                f"breach_handling {_duration_text(handling)} is over 72 hours",
                                help=(f"write `breach {room} hours` or less, so the school can notify the supervisory "
                                      "authority within 72 hours (GDPR art. 33)") if room > 0 else
                                     "shorten the controller's breach_handling and this deadline: together at most "
                                     "72 hours (GDPR art. 33)", fallback=a.span)
            if a.covers is None:
                self.report(a.span, "W011", f"agreement `{a.reference}` of partner `{name}` has no `covers`: "
                            "fields are not checked against it",
                            help="add `{ covers dataset.field, ... }` listing the fields of its privacybijsluiter "
                                 "(GDPR art. 28(3)(a))")
            if role == "processor" and a.breach is None:
                self.report(a.span, "W012", f"processor agreement `{a.reference}` of partner `{name}` has no "
                            "`breach` deadline", help="add e.g. `breach 24 hours`: how fast the partner reports a "
                                                      "data breach to the school (GDPR art. 33(2))")

    # -- v2: rules (spec §7.1-§7.6) ---------------------------------------------------
    def check_art9(self, rule: n.Rule) -> None:
        """E415 / E103: `art9 explicit_consent(TOPIC)` names a declared topic; other grounds take none."""
        ground = rule.art9
        if ground is None or rule.effect != "permit":
            return
        topic = getattr(rule, "art9_topic", None)
        if ground.value == "explicit_consent":
            if topic is None:
                example = next(iter(self.topics), "zorg")
                self.report(ground.span, "E415", "`art9 explicit_consent` names no consent topic, so it would "
                            "release special category data without any consent",
                            help=f"write the topic whose explicit consent is asked, e.g. "
                                 f"`art9 explicit_consent({example})` (GDPR art. 9(2)(a)); declare it with "
                                 f"`consent {example} \"...\"` if it is new", fallback=rule.span)
            elif topic.value not in self.topics:
                self.unknown(topic, "E103", "consent topic", self.topics,
                             "declare it with `consent NAME \"description\"`", fallback=rule.span)
        elif topic is not None and ground.value in ART9_GROUNDS:
            self.report(topic.span, "E415", f"`art9 {ground.value}` takes no consent topic",
                        help=f"write `art9 {ground.value}`, or `art9 explicit_consent({topic.value})` if the flow "
                             "rests on explicit consent (GDPR art. 9(2)(a))", fallback=rule.span)

    def purpose_kind(self, name: str) -> str | None:
        """The purpose's kind (default `other`), or None when the kind written is unknown."""
        k = self.purposes[name].kind
        if k is None:
            return "other"
        if k.value not in law.PURPOSE_KINDS:
            return None
        return k.value

    def check_purpose(self, d: n.Purpose) -> None:
        if d.kind is not None and d.kind.value not in law.PURPOSE_KINDS:
            self.unknown(d.kind, "E120", "purpose kind", law.PURPOSE_KINDS,
                         "use one of " + ", ".join(law.PURPOSE_KINDS), fallback=d.span)

    def legal_rules(self, rule: n.Rule, partners: frozenset[str] | None, purposes: frozenset[str] | None,
                    grants: list[_Grant], basis: str | None, window_ok: bool) -> None:
        """The permit checks of spec §7 (the controller, partners, agreements, purposes, art. 9, DPIA)."""
        kinds = {u: self.purpose_kind(u) for u in sorted(purposes or ())}
        if basis == "legitimate_interest" and self.controller_kind() == "public" and rule.basis is not None:
            self.report(rule.basis.span, "E402", f"permit `{rule.name}` relies on `legitimate_interest`, but the "
                        "controller is a public authority",
                        help="a publicly funded school cannot rely on legitimate interest for its tasks (GDPR art. "
                             "6(1), last sentence): use `public_task(\"LAW\")`, `legal_obligation(\"LAW\")`, "
                             "`contract` or `consent(TOPIC)`; a private controller declares "
                             "`controller \"NAME\" { kind private }`")
        if basis is not None and rule.basis is not None:
            self.purpose_kind_rules(rule, kinds, basis)
        ground = rule.art9.value if rule.art9 is not None and rule.art9.value in ART9_GROUNDS else None
        if ground is not None and kinds:
            fits = law.ART9_PURPOSE_KINDS[ground]
            wrong = [u for u, k in kinds.items() if fits is not None and k is not None and k not in fits]
            if wrong:
                assert rule.art9 is not None
                shown = ", ".join(f"`{u}` ({kinds[u]})" for u in wrong[:3]) + (" ..." if len(wrong) > 3 else "")
                assert fits is not None
                self.report(rule.art9.span, "E416", f"art. 9 ground `{ground}` does not fit purpose {shown}",
                            help=f"`{ground}` fits purposes of kind {', '.join(fits)} (GDPR art. 9(2), UAVG "
                                 "art. 22-30); use a ground that fits, e.g. `explicit_consent(TOPIC)`, or a purpose "
                                 "of a kind that fits", fallback=rule.span)
        if not partners:
            return
        national = [g for g in grants if g.field.sensitivity == "national_id"]
        if national:
            wrong = sorted(x for x in partners if self.partner_kind(x) not in (None, *law.NATIONAL_ID_KINDS))
            if wrong:
                self.report(national[0].node.span, "E405", f"national_id field `{national[0].field.ref}` is "
                            f"permitted to {_names_text(wrong)}, of kind {self.partner_kind(wrong[0])}",
                            help="the BSN/onderwijsnummer may only go to a partner of kind government, school, "
                                 "swv or exam (UAVG art. 46, Wet pseudonimisering): remove the field, or declare "
                                 "the partner's `kind` if it is one of those", fallback=rule.span)
        special = [g for g in grants if g.field.sensitivity == "special"]
        if special and ground is not None and ground != "explicit_consent":
            independent = sorted(x for x in partners if self.partner_role(x) in ("controller", "joint_controller")
                                 and self.partner_kind(x) in law.VENDOR_KINDS)
            if independent:
                self.report(special[0].node.span, "E417", f"special category field `{special[0].field.ref}` goes "
                            f"to {_names_text(independent)}, an independent {self.partner_kind(independent[0])}, "
                            f"under `art9 {ground}`",
                            help="UAVG art. 30 lets a school process health data for its own support, not hand it "
                                 "to an independent vendor: use `art9 explicit_consent(TOPIC)`, or remove the field",
                            fallback=rule.span)
        if window_ok and purposes is not None:
            w = rule.window
            window = WindowInfo(w.start, w.end) if w else WindowInfo(None, None)
            self.agreement_coverage(rule, partners, purposes, grants, window)
            self.retention(rule, partners, purposes, grants, window)
            self.dpia(rule, partners, purposes, grants, window, kinds)

    def purpose_kind_rules(self, rule: n.Rule, kinds: Mapping[str, str | None], basis: str) -> None:
        """W014, E413, E414: the basis fits the kind of the purposes (spec §7.5)."""
        assert rule.basis is not None
        if basis == "consent":
            core = [u for u, k in kinds.items() if k in law.CORE_PURPOSE_KINDS]
            if core:
                self.report(rule.basis.span, "W014", f"consent is the basis of {_names_text(core)}, a purpose of "
                            f"kind {kinds[core[0]]}",
                            help="consent is not freely given where the school's core task depends on it (GDPR "
                                 "art. 7(4), recital 43): use `public_task(\"LAW\")`, `legal_obligation(\"LAW\")` "
                                 "or `contract`")
            return
        publication = [u for u, k in kinds.items() if k == "publication"]
        if publication:
            self.report(rule.basis.span, "E413", f"permit `{rule.name}` publishes ({_names_text(publication)} is a "
                        f"publication purpose) without a consent basis",
                        help="photos, video and names on a website or in a school guide need consent: "
                             "`basis consent(TOPIC)` (GDPR art. 6(1)(a); an opt-out is no consent, AP guidance on "
                             "school photos)" + (f"; or leave the purpose out: `purpose * except {publication[0]}`"
                                                 if rule.purpose is not None and rule.purpose.everything else ""))
        parents = [u for u, k in kinds.items() if k == "parent_information"]
        if parents:
            self.under_18(rule, parents)

    def under_18(self, rule: n.Rule, purposes: list[str]) -> None:
        """E414: informing parents without the student's consent only while the student is under 18."""
        verdict = analysis.implication(rule.condition, analysis.age_below(18), types=self.types)
        if verdict is True:
            return
        what = f"permit `{rule.name}` informs parents ({_names_text(purposes)} is a parent_information purpose)"
        if rule.condition is None:
            message = f"{what} about every student, also students of 18 and older"
        elif verdict is False:
            message = f"{what}, but its condition does not limit it to students under 18: it holds for some " \
                      "students aged 18 or older"
        else:
            message = f"{what}, and the analysis could not prove that its condition limits it to students under 18"
        self.report(rule.condition.span if rule.condition is not None else rule.name.span, "E414", message,
                    help="add `age < 18` to the condition (`students where ... and age < 18`), or use `basis "
                         "consent(TOPIC)`: parents of an adult student are informed only with the student's "
                         "consent (WVO art. 23b)", fallback=rule.clause_span("students") or rule.name.span)

    def live_agreements(self, partner: str, window: WindowInfo) -> list[_AgreementFacts]:
        return [a for a in self.agreement_facts(partner) if analysis.overlaps(window, a.window)]

    def agreement_coverage(self, rule: n.Rule, partners: frozenset[str], purposes: frozenset[str],
                           grants: list[_Grant], window: WindowInfo) -> None:
        """E410 (a listed partner) / W016 (`partner *`): fields and purposes outside every agreement."""
        assert rule.partner is not None
        listed = not rule.partner.everything
        purpose_span = rule.purpose.span if rule.purpose is not None else rule.name.span
        every_purpose = rule.purpose is None or rule.purpose.everything
        for x in sorted(partners):
            live = self.live_agreements(x, window)
            if not live:
                continue  # no agreement at all in the window: W002 says the permit never takes effect
            out_purposes = [u for u in sorted(purposes) if not any(a.covers_purpose(u) for a in live)]
            in_purposes = [u for u in sorted(purposes) if u not in out_purposes]
            out_fields: list[tuple[_Grant, str]] = []
            for g in grants:
                for u in in_purposes:
                    if not any(a.covers_purpose(u) and a.covers_field(g.field.ref) for a in live):
                        out_fields.append((g, u))
                        break
            if not out_purposes and not out_fields:
                continue
            agreements = ", ".join(a.describe() for a in live[:3]) + (" ..." if len(live) > 3 else "")
            if not listed:
                what = [f"purpose `{u}`" for u in out_purposes[:2]] + [f"`{g.field.ref}`" for g, _ in out_fields[:3]]
                self.report(rule.partner.span, "W016", f"permit `{rule.name}` gives {', '.join(what)}"
                            f"{' ...' if len(out_purposes) > 2 or len(out_fields) > 3 else ''} to `{x}`, outside "
                            f"its agreements {agreements}",
                            help=f"`{x}` will be denied these (`outside_agreement`); name the partners the permit "
                                 "is for, or extend the agreement's `covers`/`purposes` (GDPR art. 28(3)(a))",
                            fallback=rule.span)
                continue
            help_text = (f"add it to the `covers`/`purposes` of `{x}`'s agreement if the agreement allows it, or "
                         "remove it from the permit: a processor may only process what was agreed "
                         "(GDPR art. 28(3)(a))")
            if out_purposes and every_purpose:
                self.report(purpose_span, "E410", f"permit `{rule.name}` gives data to `{x}` for purposes "
                            f"{_names_text(out_purposes)}, outside every agreement in force during its window: "
                            f"{agreements}", help="name the purposes the agreement covers: `purpose "
                                                  + ", ".join(sorted(in_purposes)[:3] or ["..."]) + "`; "
                                                  + help_text, fallback=rule.span)
            else:
                for u in out_purposes:
                    names = rule.purpose.names if rule.purpose is not None else ()
                    span = next((nm.span for nm in names if nm.value == u), purpose_span)
                    self.report(span, "E410", f"permit `{rule.name}` gives data to `{x}` for purpose `{u}`, "
                                f"outside every agreement in force during its window: {agreements}",
                                help=help_text, fallback=rule.span)
            for g, u in out_fields:
                self.report(g.node.span, "E410", f"permit `{rule.name}` gives `{g.field.ref}` to `{x}` for `{u}`, "
                            f"outside every agreement in force during its window: {agreements}",
                            help=help_text, fallback=rule.span)

    def retention(self, rule: n.Rule, partners: frozenset[str], purposes: frozenset[str],
                  grants: list[_Grant], window: WindowInfo) -> None:
        """E411: a permit keeps data longer than an agreement allows; W013: a processor flow kept forever."""
        refs = {g.field.ref for g in grants}

        def under(a: _AgreementFacts) -> bool:
            return any(a.covers_field(r) for r in refs) and any(a.covers_purpose(u) for u in purposes)

        mine = (rule.retain.amount, rule.retain.unit.value) if rule.retain is not None else None
        unlimited: list[str] = []
        for x in sorted(partners):
            if self.agreement_facts(x) and not self.live_agreements(x, window):
                continue  # no agreement in the window at all: W002
            live = [a for a in self.live_agreements(x, window) if under(a)]
            if mine is not None:
                shorter = [a for a in live if a.retain is not None and law.certainly_longer(mine, a.retain)]
                if shorter:
                    a = shorter[0]
                    assert a.retain is not None and rule.retain is not None
                    self.report(rule.clause_span("retain") or rule.retain.span, "E411",
                                f"permit `{rule.name}` lets `{x}` keep the data {_duration_text(mine)}, longer "
                                f"than agreement `{a.reference}` allows ({_duration_text(a.retain)})",
                                help=f"write `retain {_duration_text(a.retain)}` or less, or leave `retain` out to "
                                     "use the agreement's (GDPR art. 5(1)(e), 28(3))", fallback=rule.span)
                    return
            elif self.partner_role(x) == "processor" and not any(
                    a.retain is not None for a in self.live_agreements(x, window)):
                unlimited.append(x)
        if unlimited:
            self.report(rule.name.span, "W013", f"permit `{rule.name}` sends data to processor "
                        f"{_names_text(unlimited)} with no retention, in the permit or in an agreement",
                        help="add `retain DURATION` to the permit or to the agreement: how long the partner may "
                             "keep the data (GDPR art. 5(1)(e), 30(1)(f))", fallback=rule.span)

    def dpia(self, rule: n.Rule, partners: frozenset[str], purposes: frozenset[str], grants: list[_Grant],
             window: WindowInfo, kinds: Mapping[str, str | None]) -> None:
        """E418: special or criminal data without a DPIA; W015: sensitive data of every student to research."""
        if getattr(rule, "dpia", None) and str(rule.dpia).strip():
            return

        def missing(g: _Grant) -> list[str]:
            """The partners for which no agreement with a DPIA covers the field and a purpose."""
            return [x for x in sorted(partners) if not any(
                a.dpia and a.covers_field(g.field.ref) and any(a.covers_purpose(u) for u in purposes)
                for a in self.live_agreements(x, window))]

        for g in grants:
            if g.field.sensitivity in ("special", "criminal"):
                lacking = missing(g)
                if lacking:
                    self.report(g.node.span, "E418", f"{g.field.sensitivity} field `{g.field.ref}` is permitted "
                                f"to {_names_text(lacking)} without a DPIA",
                                help='name the data protection impact assessment: `dpia "REFERENCE"` on the permit, '
                                     "or on the agreement it falls under (GDPR art. 35(3)(b))", fallback=rule.span)
                    return
        research = [u for u, k in kinds.items() if k == "research"]
        if research and rule.condition is None:
            for g in grants:
                if g.field.sensitivity == "sensitive" and missing(g):
                    self.report(g.node.span, "W015", f"sensitive field `{g.field.ref}` of every student goes to "
                                f"research ({_names_text(research)}) without a DPIA",
                                help='add `dpia "REFERENCE"` to the permit or its agreement, or limit the students '
                                     "with `students where ...` (GDPR art. 35(1), WP248)", fallback=rule.span)
                    return

    def condition_on_protected_fields(self, rule: n.Rule) -> None:
        """W017: a condition that tests a special, criminal or national_id field (issue 15)."""
        if self.subject is None or rule.condition is None:
            return
        entries = self.fields.get(self.subject.name.value, {})
        seen: set[str] = set()
        for ref in _condition_refs(rule.condition):
            entry = entries.get(ref.name)
            if entry is None or entry.sensitivity not in _PROTECTED or ref.name in seen:
                continue
            seen.add(ref.name)
            self.report(ref.span, "W017", f"the condition of {rule.effect} `{rule.name}` tests `{ref.name}`, a "
                        f"{entry.sensitivity} field",
                        help="every decision then reads this field, and its value is what decides: base the "
                             "student subset on ordinary fields (e.g. a group in a set field) if you can (GDPR "
                             "art. 5(1)(c), 9, 10; UAVG art. 46); reasons never show its value",
                        fallback=rule.span)

    # -- conditions -------------------------------------------------------------
    def ref_type(self, ref: n.Ref) -> str | None:
        """The type of a name in a condition, reporting unknown names; None when unknown."""
        if self.subject is None:
            return None
        entries = self.fields.get(self.subject.name.value, {})
        entry = entries.get(ref.name)
        if entry is not None:
            return entry.type
        if ref.name == AGE:
            birth = entries.get(BIRTHDATE_FIELD)
            if birth is None or birth.type != "date":
                self.report(ref.span, "E302", "`age` needs a `geboortedatum date` field in subject dataset "
                            f"`{self.subject.name}`",
                            help=f"declare `{BIRTHDATE_FIELD} date personal` in `{self.subject.name}`, "
                                 "or compare a field instead of `age`")
                return None
            return "int"
        hint = suggest(ref.name, [*entries, AGE])
        advice = f"a condition can use the fields of subject dataset `{self.subject.name}` and `age`"
        self.report(ref.span, "E113", f"unknown name `{ref.name}` in condition",
                    help=f"{hint} ({advice})" if hint else advice)
        return None

    def operand_type(self, op: n.Operand) -> str | None:
        return op.type if isinstance(op, n.Literal) else self.ref_type(op)

    @staticmethod
    def _show(op: n.Operand) -> str:
        if isinstance(op, n.Ref):
            return f"`{op.name}`"
        if op.type == "text":
            return f'`"{op.value}"`'
        if op.type == "bool":
            return f"`{str(op.value).lower()}`"
        return f"`{op.value}`"

    def mismatch(self, a: n.Operand, ta: str, b: n.Operand, tb: str, span: Span | None) -> None:
        wrong = b if isinstance(b, n.Literal) and isinstance(a, n.Ref) else a
        self.report(wrong.span or span, "E301",
                    f"cannot compare {self._show(a)} ({ta}) with {self._show(b)} ({tb})",
                    help=f"compare {self._show(a)} with a value of type {ta}", fallback=span)

    def check_condition(self, expr: n.Expr) -> None:
        stack: list[n.Expr] = [expr]
        while stack:
            node = stack.pop()
            if isinstance(node, (n.And, n.Or)):
                stack.extend(reversed(node.items))
            elif isinstance(node, n.Not):
                stack.append(node.operand)
            elif isinstance(node, n.Compare):
                self.check_compare(node)
            elif isinstance(node, n.InList):
                t = self.operand_type(node.operand)
                if t == "set":
                    self.report(node.operand.span, "E301", f"{self._show(node.operand)} is a set; "
                                "`in [...]` needs a single value on the left",
                                help=f'test membership with `"VALUE" in {node.operand.name}`', fallback=node.span)
                elif t is not None:
                    self.check_list(node, t)
            elif isinstance(node, n.InRange):
                self.check_range(node)
            elif isinstance(node, n.InSet):
                self.check_in_set(node)

    def check_list(self, node: n.InList, t: str) -> None:
        """E301 once for a list, however many of its values have the wrong type."""
        wrong = [v for v in node.values if v.type != t]
        if not wrong:
            return
        if len(wrong) == 1:
            self.mismatch(node.operand, t, wrong[0], wrong[0].type, node.span)
            return
        shown = ", ".join(self._show(v) for v in wrong[:3]) + (" ..." if len(wrong) > 3 else "")
        kinds = " and ".join(sorted({v.type for v in wrong}))
        advice = f"write every value of the list as {_article(t)} {t} value"
        if t == "int" and all(v.type == "text" and str(v.value).lstrip("-").isdigit() and len(str(v.value)) < 20
                              for v in node.values if v.type != "int") and isinstance(node.operand, n.Ref):
            fixed = ", ".join(str(int(str(v.value))) for v in node.values)
            advice += f", e.g. `{node.operand.name} in [{fixed}]`"
        self.report(wrong[0].span, "E301", f"{len(wrong)} values in the list ({shown}) are {kinds}, but "
                    f"{self._show(node.operand)} is {t}", help=advice, fallback=node.span)

    def check_compare(self, node: n.Compare) -> None:
        tl, tr = self.operand_type(node.left), self.operand_type(node.right)
        if tl is None or tr is None:
            return
        if "set" in (tl, tr):
            side = node.left if tl == "set" else node.right
            self.report(side.span, "E301", f"{self._show(side)} is a set and cannot be compared with `{node.op}`",
                        help=f'test membership with `"VALUE" in {getattr(side, "name", "SETFIELD")}`',
                        fallback=node.span)
        elif tl != tr:
            self.mismatch(node.left, tl, node.right, tr, node.span)
        elif node.op in _ORDERING and tl not in ("int", "date"):
            self.report(node.span, "E301", f"`{node.op}` orders int or date values, not {tl}",
                        help="use `==`, `!=` or `in [...]` for text and true/false values")

    def check_range(self, node: n.InRange) -> None:
        t = self.operand_type(node.operand)
        if node.low.type != node.high.type:
            self.report(node.high.span, "E301", f"range bounds {self._show(node.low)} ({node.low.type}) and "
                        f"{self._show(node.high)} ({node.high.type}) have different types",
                        help="write both bounds as integers or both as dates", fallback=node.span)
            return
        if node.low.type not in ("int", "date"):
            self.report(node.low.span, "E301", f"a range `A..B` needs int or date bounds, not {node.low.type}",
                        help="list the values instead: `in [...]`", fallback=node.span)
            return
        if t is None:
            return
        if t not in ("int", "date"):
            self.report(node.operand.span, "E301", f"{self._show(node.operand)} is {t}; a range `A..B` "
                        "needs an int or date value", help="list the values instead: `in [...]`",
                        fallback=node.span)
        elif t != node.low.type:
            self.mismatch(node.operand, t, node.low, node.low.type, node.span)

    def check_in_set(self, node: n.InSet) -> None:
        te = self.operand_type(node.element)
        tc = self.ref_type(node.container)
        if tc is not None and tc != "set":
            self.report(node.container.span, "E301", f"`{node.container.name}` is {tc}, not a set field; "
                        "`VALUE in NAME` needs a set field",
                        help=f"compare with `{node.container.name} == VALUE`, or list values: "
                             f"`{node.container.name} in [...]`", fallback=node.span)
        elif te is not None and te != "text":
            self.report(node.element.span, "E301", f"a set holds text values, but {self._show(node.element)} "
                        f"is {te}", help='write the value as a string, e.g. `"plusklas" in lesgroepen`',
                        fallback=node.span)

    # -- per-rule warnings --------------------------------------------------------
    def rule_warnings(self, rule: n.Rule, grants: list[_Grant], window_ok: bool) -> None:
        if window_ok and rule.window is not None and rule.window.end is not None and rule.window.end < self.today:
            self.report(rule.clause_span("valid"), "W005",
                        f"the window of {rule.effect} `{rule.name}` ended on {rule.window.end}",
                        help="remove the rule or extend its window; it no longer has any effect",
                        fallback=rule.name.span)
        if rule.effect != "permit":
            return
        if rule.partner is not None and rule.partner.everything:
            self.report(rule.partner.span, "W004", f"permit `{rule.name}` applies to every partner (`partner *`)",
                        help="name the partners that need this data; a new partner would receive it too",
                        fallback=rule.clause_span("partner"))
        if rule.condition is None and grants:
            risky = [g for g in grants if g.field.sensitivity in _RISKY]
            if risky:
                refs = ", ".join(f"`{g.field.ref}`" for g in risky[:3]) + (" ..." if len(risky) > 3 else "")
                self.report(risky[0].node.span, "W010",
                            f"{risky[0].field.sensitivity} data {refs} is permitted for all students",
                            help="add `students where ...` to limit the permit to the students who need it",
                            fallback=rule.name.span)

    # -- tests ------------------------------------------------------------------
    def check_test(self, test: n.Test) -> None:
        written = {k for k, _ in test.clauses}
        if test.expects:
            written.add("expect")
        for clause, advice in _TEST_REQUIRED.items():
            if clause not in written:
                self.report(test.name.span, "E304", f"test `{test.name}` has no `{clause}` clause",
                            help=advice, fallback=test.span)

        def all_deny_because(code: str) -> bool:
            return bool(test.expects) and all(
                not e.allow and e.because is not None and e.because.value == code for e in test.expects)

        if test.partner is not None and test.partner.value not in self.partners \
                and not all_deny_because("unknown_partner"):
            self.unknown(test.partner, "E101", "partner", self.partners, "declare it with `partner NAME`")
        if test.purpose is not None and test.purpose.value not in self.purposes \
                and not all_deny_because("unknown_purpose"):
            self.unknown(test.purpose, "E102", "purpose", self.purposes, "declare it with `purpose NAME`")
        for c in test.consents:
            if c.topic.value not in self.topics:
                self.unknown(c.topic, "E103", "consent topic", self.topics,
                             "declare it with `consent NAME \"description\"`", fallback=c.span)
            if c.by.value not in CONSENT_PARTIES:
                self.unknown(c.by, "E114", "consent party", CONSENT_PARTIES, "write `by parent` or `by student`",
                             fallback=c.span)
            if c.withdrawn is not None and c.withdrawn < c.given:
                self.report(c.span, "E303", f"consent for `{c.topic}` is withdrawn ({c.withdrawn}) before it "
                            f"was given ({c.given})", help="correct one of the two dates")
        for e in test.expects:
            if e.because is not None:
                self.check_because(e)
            unknown_ok = not e.allow and e.because is not None and e.because.value == "unknown_field"
            if unknown_ok:
                continue
            for ref in e.fields:
                if ref.dataset.value not in self.datasets:
                    self.unknown(ref.dataset, "E311", "dataset in expectation", self.datasets,
                                 "expect a field of the catalogue (or `deny ... because unknown_field`)",
                                 fallback=ref.span)
                elif ref.field.value != "*" and ref.field.value not in self.fields.get(ref.dataset.value, {}):
                    entries = self.fields.get(ref.dataset.value, {})
                    hint = suggest(ref.field.value, entries)
                    advice = "expect a field of the catalogue (or `deny ... because unknown_field`)"
                    self.report(ref.field.span, "E311", f"test expects unknown field `{ref.ref}`",
                                help=hint or advice, fallback=ref.span)
        self.check_student(test)

    def check_because(self, e: n.Expect) -> None:
        """E112: a reason code that does not exist, or cannot explain this expectation's outcome."""
        assert e.because is not None
        code = e.because.value
        fitting = [c for c in REASON_CODES if (c in _ALLOW_CODES) == e.allow]
        verdict = "allow" if e.allow else "deny"
        if code not in REASON_CODES:
            hint = suggest(code, fitting)
            advice = f"`expect {verdict}` takes one of " + ", ".join(fitting)
            self.report(e.because.span, "E112", f"unknown reason code `{code}`",
                        help=f"{hint} ({advice})" if hint else advice, fallback=e.span)
        elif code not in fitting:
            what = "an allowed" if code in _ALLOW_CODES else "a denied"
            self.report(e.because.span, "E112", f"reason code `{code}` explains {what} field, so "
                        f"`expect {verdict} ... because {code}` can never pass",
                        help=f"`expect {verdict}` takes one of " + ", ".join(fitting), fallback=e.span)

    def check_student(self, test: n.Test) -> None:
        if self.subject is None:
            return
        entries = self.fields.get(self.subject.name.value, {})
        for item in test.student:
            key = item.key.value
            entry = entries.get(key)
            if entry is None:
                hint = suggest(key, entries)
                advice = (f"give `{BIRTHDATE_FIELD}` instead; `age` is computed from it" if key == AGE else
                          f"a test student has the fields of subject dataset `{self.subject.name}`")
                self.report(item.key.span, "E311", f"test student key `{key}` is not a field of "
                            f"`{self.subject.name}`", help=f"{hint} ({advice})" if hint else advice,
                            fallback=item.span)
            elif entry.type is not None and entry.type != item.type:
                example = {"text": '"text"', "int": "5", "bool": "true", "date": "2016-03-01",
                           "set": '["a", "b"]'}[entry.type]
                self.report(item.span, "E311", f"test student value for `{key}` is {item.type}, but the field "
                            f"is {entry.type}",
                            help=f"write {_article(entry.type)} {entry.type} value, e.g. `{key}: {example}`")

    # -- set-wide warnings ------------------------------------------------------------
    def set_wide_warnings(self) -> None:
        if self.subject is None:
            return
        permits = [f for f in self.facts if f.rule.effect == "permit"]
        forbids = [f for f in self.facts if f.rule.effect == "forbid"]
        never: set[int] = set()
        for p in permits:
            if self.agreement_warning(p):
                never.add(p.index)
                continue
            if p.rule.condition is not None and \
                    analysis.solve([p.rule.condition], types=self.types) is False:
                never.add(p.index)
                self.report(p.rule.condition.span, "W003",
                            f"the condition of permit `{p.name}` can never hold, so the permit never applies",
                            help="check the bounds and values: e.g. `leerjaar in 5..3` is empty; "
                                 "write `leerjaar in 3..5`", fallback=p.rule.clause_span("students"))
        self.shadowing(permits, forbids, never)
        self.open_ended_special(permits)
        self.conflicting_bases(permits)
        self.national_id_and_pseudonym(permits)

    def agreements(self, partner: str) -> list[WindowInfo]:
        windows = self._agreements.get(partner)
        if windows is None:
            windows = [WindowInfo(a.window.start, a.window.end) for a in self.partners[partner].agreements]
            self._agreements[partner] = windows
        return windows

    def agreement_warning(self, p: _RuleFacts) -> bool:
        """W002; True when the permit never takes effect for any of its partners."""
        blocked = [x for x in sorted(p.partners)
                   if self.agreements(x) and not any(analysis.overlaps(p.window, w) for w in self.agreements(x))]
        if not blocked:
            return False
        every = len(blocked) == len(p.partners)
        if not every and (p.rule.partner is None or p.rule.partner.everything):
            return False
        names = ", ".join(f"`{x}`" for x in blocked[:3]) + (" ..." if len(blocked) > 3 else "")
        what = "never takes effect" if every else f"never takes effect for {names}"
        self.report(p.rule.clause_span("valid") or p.rule.name.span, "W002",
                    f"permit `{p.name}` {what}: its window lies outside every agreement of {names}",
                    help="align the permit's `valid` window with the partner's agreement, "
                         "or add the new agreement to the partner")
        return every

    def shadowing(self, permits: list[_RuleFacts], forbids: list[_RuleFacts], never: set[int]) -> None:
        """W001: a permit that every applicable forbid together blocks at every moment it covers."""
        index: dict[tuple[str, str], list[_RuleFacts]] = defaultdict(list)
        for f in forbids:
            for g in {g.field.ref for g in f.grants}:
                for partner in f.partners:
                    index[(g, partner)].append(f)
        for p in permits:
            if p.index in never or not p.partners or not p.purposes:
                continue
            memo: dict[tuple[str, frozenset[int]], bool] = {}
            used: set[str] = set()
            shadowed = True
            for g in p.grants:
                for partner in p.partners:
                    candidates = index.get((g.field.ref, partner), ())
                    for purpose in p.purposes:
                        hits = [f for f in candidates if purpose in f.purposes]
                        key = (partner, frozenset(f.index for f in hits))
                        if key not in memo:
                            memo[key] = self.blocked(p, hits, self.agreements(partner), used)
                        if not memo[key]:
                            shadowed = False
                            break
                    if not shadowed:
                        break
                if not shadowed:
                    break
            if shadowed and used:
                names = ", ".join(f"`{x}`" for x in sorted(used)[:3]) + (" ..." if len(used) > 3 else "")
                self.report(p.rule.name.span, "W001",
                            f"permit `{p.name}` can never take effect: forbid {names} always applies first",
                            help="remove the permit, or narrow the forbid's partners, purposes, fields, "
                                 "students or window", fallback=p.rule.span)

    def blocked(self, p: _RuleFacts, forbids: list[_RuleFacts], agreements: list[WindowInfo],
                used: set[str]) -> bool:
        """Do ``forbids`` (all matching one partner, purpose and field) block ``p`` at every moment?"""
        if not forbids:
            return False
        windows = [f.window for f in forbids]
        for start, _end in analysis.segments(p.window, [*windows, *agreements]):
            if agreements and not analysis.active_on(agreements, start):
                continue  # the partner receives nothing then anyway
            active = [forbids[i] for i in analysis.active_on(windows, start)]
            if not active:
                return False
            if not analysis.covers(p.rule.condition, [f.rule.condition for f in active], self.types):
                return False
            used.update(f.name for f in active)
        return True

    def open_ended_special(self, permits: list[_RuleFacts]) -> None:
        """W006: special or national_id data with no end to the permit and no agreement ending it."""
        for p in permits:
            if p.window.end is not None:
                continue
            unlimited = sorted(x for x in p.partners
                               if not self.agreements(x) or any(w.end is None for w in self.agreements(x)))
            if not unlimited:
                continue
            for g in p.grants:
                if g.field.sensitivity in ("special", "national_id"):
                    names = ", ".join(f"`{x}`" for x in unlimited[:3]) + (" ..." if len(unlimited) > 3 else "")
                    self.report(g.node.span, "W006",
                                f"{g.field.sensitivity} field `{g.field.ref}` is permitted to {names} "
                                "with no end date",
                                help="add `valid until DATE` to the permit, or an end date to the partner's "
                                     "agreement", fallback=p.rule.name.span)
                    break

    def conflicting_bases(self, permits: list[_RuleFacts]) -> None:
        """W007: the same field to the same partner and purpose under two different bases."""
        cells: dict[tuple[str, str, str], dict[str, _RuleFacts]] = defaultdict(dict)
        seen: set[tuple[int, int]] = set()
        for p in permits:
            assert p.rule.basis is not None
            basis = f"consent({p.rule.basis.topic})" if p.basis == "consent" else str(p.basis)
            for ref in {g.field.ref for g in p.grants}:
                for partner in p.partners:
                    for purpose in p.purposes:
                        cell = cells[(ref, partner, purpose)]
                        for other_basis, q in cell.items():
                            if other_basis == basis or (q.index, p.index) in seen:
                                continue
                            if not analysis.overlaps(p.window, q.window) or analysis.solve(
                                    [p.rule.condition, q.rule.condition], types=self.types) is False:
                                continue
                            seen.add((q.index, p.index))
                            self.report(p.rule.basis.span, "W007",
                                        f"permits `{q.name}` and `{p.name}` give `{ref}` to `{partner}` for "
                                        f"`{purpose}` under different bases (`{other_basis}`, `{basis}`)",
                                        help="one flow has one legal basis: merge the permits or make their "
                                             "students or windows disjoint", fallback=p.rule.name.span)
                        cell.setdefault(basis, p)

    def national_id_and_pseudonym(self, permits: list[_RuleFacts]) -> None:
        """E419 (W009 in v1): a partner that receives a national id and a pseudonym, which defeats the pseudonym."""
        national: dict[str, _Grant] = {}
        pseudo: dict[str, tuple[_RuleFacts, _Grant]] = {}
        for p in permits:
            for g in p.grants:
                is_id = g.field.sensitivity == "national_id"
                is_pseudo = g.transform == "pseudonym" or g.field.sensitivity == "pseudonym"
                for partner in p.partners:
                    if is_id:
                        national.setdefault(partner, g)
                    if is_pseudo:
                        pseudo.setdefault(partner, (p, g))
        for partner in sorted(national.keys() & pseudo.keys()):
            g = national[partner]
            q, h = pseudo[partner]
            what = f"`{h.field.ref} as pseudonym`" if h.transform == "pseudonym" else f"`{h.field.ref}`"
            self.report(g.node.span, "E419",
                        f"partner `{partner}` receives national id `{g.field.ref}` and pseudonym {what} "
                        f"(permit `{q.name}`), so the pseudonym protects nothing",
                        help="do not send the national id and a pseudonym to the same partner: drop one of "
                             "the two (GDPR art. 4(5) and 25; the Wet pseudonimisering forbids linking them)")
