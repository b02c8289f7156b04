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

from . import analysis
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

    # -- reporting ----------------------------------------------------------
    def report(self, span: Span | None, code: str, message: str, help: str | None = None,
               fallback: Span | None = None) -> None:
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
                    for a in d.agreements:
                        self.check_window(a.window, f"agreement `{a.reference}` of partner `{d.name}`",
                                          a.span)
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
                for kind, table, word in tables:
                    if isinstance(d, kind):
                        self.declare(table, d, word)
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
        for fd in ds.fields:
            if fd.type.value not in FIELD_TYPES:
                self.unknown(fd.type, "E106", "type", FIELD_TYPES, "use one of " + ", ".join(FIELD_TYPES))
            if fd.sensitivity.value not in SENSITIVITIES:
                self.unknown(fd.sensitivity, "E107", "sensitivity", SENSITIVITIES,
                             "use one of " + ", ".join(SENSITIVITIES))

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
        if effect == "permit":
            self.sensitivity_rules(rule, grants, basis)
        if rule.retain is not None:
            self.check_retain(rule.retain)
        window_ok = self.check_window(rule.window, f"{effect} `{rule.name}`", rule.span)
        if rule.condition is not None:
            self.check_condition(rule.condition)
        self.rule_warnings(rule, grants, window_ok)
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
        return b.kind.value

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
                                 "(UAVG art. 46): remove the field or use `basis legal_obligation`")
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
                                 "`art9 explicit_consent`, or remove the field")

    def check_retain(self, d: n.Duration) -> None:
        if d.unit.value not in DURATION_UNITS:
            self.unknown(d.unit, "E111", "duration unit", DURATION_UNITS,
                         "use days, weeks, months or years, e.g. `retain 2 years`", fallback=d.span)
        if d.amount <= 0:
            self.report(d.span, "E312", f"retention must be a positive duration, not {d.amount}",
                        help="write how long the partner may keep the data, e.g. `retain 1 year`")

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
        if rule.basis is not None and rule.basis.kind.value == "legitimate_interest" and rule.basis.topic is None:
            self.report(rule.basis.span, "W008", f"permit `{rule.name}` relies on `legitimate_interest`",
                        help="a public authority such as a publicly funded school cannot rely on legitimate "
                             "interest for its tasks (GDPR art. 6(1), last sentence): use `public_task`, "
                             "`legal_obligation`, `contract` or `consent(TOPIC)`")
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
        """W009: a partner that receives a national id and a pseudonym, which defeats the pseudonym."""
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
            self.report(g.node.span, "W009",
                        f"partner `{partner}` receives national id `{g.field.ref}` and pseudonym {what} "
                        f"(permit `{q.name}`), so the pseudonym protects nothing",
                        help="do not send the national id and a pseudonym to the same partner; "
                             "drop one of the two")
