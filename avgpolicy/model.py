"""The resolved policy set: symbol tables and rules with names looked up and ``*`` expanded.

The checker has validated the nodes before a model is built, so building trusts
every name. The model is what the interpreter, the compiler and reports read;
conditions stay ``nodes`` expressions (typed by the catalogue), a small
intermediate form that a later SQL generator can walk as well.
"""

from __future__ import annotations

import contextlib
import datetime
import gc
from collections.abc import Iterable, Iterator, Mapping
from types import MappingProxyType
from typing import Literal

import attrs

from . import nodes as n
from .source import Span

FIELD_TYPES = ("text", "int", "bool", "date", "set")
SENSITIVITIES = ("anonymous", "pseudonym", "personal", "sensitive", "special", "criminal", "national_id")
BASES = ("consent", "contract", "legal_obligation", "vital_interest", "public_task", "legitimate_interest")
ART9_GROUNDS = ("explicit_consent", "employment", "vital_interest", "public_data", "legal_claims",
                "substantial_public_interest", "health_care", "public_health", "archiving")
TRANSFORMS = ("pseudonym", "year")
DURATION_UNITS = {"day": "days", "days": "days", "week": "weeks", "weeks": "weeks",
                  "month": "months", "months": "months", "year": "years", "years": "years"}
CONSENT_PARTIES = ("parent", "student")
REASON_CODES = ("agreement_inactive", "forbidden", "permitted", "no_permit", "outside_window",
                "not_in_subset", "no_consent", "missing_attribute", "unknown_field", "unknown_partner",
                "unknown_purpose", "inform_student")
#: the built-in condition name, computed from the subject's ``geboortedatum``
AGE = "age"
BIRTHDATE_FIELD = "geboortedatum"


@attrs.frozen
class FieldInfo:
    dataset: str
    name: str
    type: str
    sensitivity: str
    span: Span | None = attrs.field(default=None, eq=False, repr=False)

    @property
    def ref(self) -> str:
        return f"{self.dataset}.{self.name}"


@attrs.frozen
class DatasetInfo:
    name: str
    title: str | None
    subject: bool
    fields: tuple[FieldInfo, ...]
    span: Span | None = attrs.field(default=None, eq=False, repr=False)


@attrs.frozen
class Catalogue:
    """All datasets; ``fields`` maps ``"dataset.field"`` to its FieldInfo."""

    datasets: Mapping[str, DatasetInfo]
    subject: str
    fields: Mapping[str, FieldInfo]

    @property
    def subject_fields(self) -> Mapping[str, FieldInfo]:
        """The subject dataset's fields by bare name (what ``students where`` can use)."""
        return MappingProxyType({f.name: f for f in self.datasets[self.subject].fields})

    def record_key(self, ref: str) -> str:
        """The key of a field's value in a student record: the bare name for the subject
        dataset (``roepnaam``), the full reference for any other (``absentie.reden``)."""
        info = self.fields[ref]
        return info.name if info.dataset == self.subject else ref


@attrs.frozen
class WindowInfo:
    """Inclusive local dates; None is open-ended."""

    start: datetime.date | None
    end: datetime.date | None

    def contains_date(self, day: datetime.date) -> bool:
        return (self.start is None or self.start <= day) and (self.end is None or day <= self.end)


ALWAYS = WindowInfo(None, None)


@attrs.frozen
class AgreementInfo:
    reference: str
    window: WindowInfo
    span: Span | None = attrs.field(default=None, eq=False, repr=False)


@attrs.frozen
class PartnerInfo:
    name: str
    title: str | None
    agreements: tuple[AgreementInfo, ...]
    span: Span | None = attrs.field(default=None, eq=False, repr=False)


@attrs.frozen
class PurposeInfo:
    name: str
    title: str | None
    span: Span | None = attrs.field(default=None, eq=False, repr=False)


@attrs.frozen
class ConsentInfo:
    name: str
    title: str | None
    reconfirm_at_16: bool
    span: Span | None = attrs.field(default=None, eq=False, repr=False)


@attrs.frozen
class NameSet:
    """``IDS`` (everything=False) or ``*`` / ``* except IDS`` (everything=True, names excepted)."""

    everything: bool
    names: frozenset[str]

    def matches(self, value: str) -> bool:
        return (value not in self.names) if self.everything else (value in self.names)


@attrs.frozen
class Grant:
    """One field a rule is about, with the transform a permit applies (None, "pseudonym", "year")."""

    ref: str
    transform: str | None = None


@attrs.frozen
class Retention:
    amount: int
    unit: str  # "days" | "weeks" | "months" | "years"

    def __str__(self) -> str:
        unit = self.unit if self.amount != 1 else self.unit[:-1]
        return f"{self.amount} {unit}"


def _index_grants(grants: Iterable[Grant]) -> dict[str, Grant]:
    out: dict[str, Grant] = {}
    for g in grants:
        out.setdefault(g.ref, g)
    return out


@attrs.frozen
class RuleInfo:
    name: str
    effect: Literal["permit", "forbid"]
    partners: NameSet
    purposes: NameSet
    grants: tuple[Grant, ...]
    basis: str | None  # one of BASES for a permit, None for a forbid
    consent_topic: str | None
    art9: str | None
    condition: n.Expr | None
    window: WindowInfo
    retain: Retention | None
    note: str | None
    span: Span | None = attrs.field(default=None, eq=False, repr=False)
    node: n.Rule | None = attrs.field(default=None, eq=False, repr=False)
    # ref -> grant, so that ``grant_for`` is one lookup however many fields the rule grants
    _grant_index: Mapping[str, Grant] = attrs.field(
        init=False, eq=False, repr=False,
        default=attrs.Factory(lambda self: _index_grants(self.grants), takes_self=True))

    @property
    def file(self) -> str | None:
        return self.span.file if self.span else None

    @property
    def line(self) -> int | None:
        return self.span.line if self.span else None

    def grant_for(self, ref: str) -> Grant | None:
        return self._grant_index.get(ref)


@attrs.frozen
class PolicyModel:
    catalogue: Catalogue
    partners: Mapping[str, PartnerInfo]
    purposes: Mapping[str, PurposeInfo]
    consents: Mapping[str, ConsentInfo]
    rules: tuple[RuleInfo, ...]
    tests: tuple[n.Test, ...]


@contextlib.contextmanager
def paused_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector while many acyclic nodes are built.

    Parsing and checking allocate hundreds of thousands of small objects that never form
    cycles; each automatic collection would walk all of them again (a third of the time
    for a large set). Reference counting still frees everything. Afterwards the collector
    is switched back on if it was on, and the new objects go straight to the oldest
    generation (``freeze`` + ``unfreeze``) rather than making the next young collection
    walk them all; that step is skipped when the application froze objects itself.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            if gc.get_freeze_count() == 0:
                gc.freeze()
                gc.enable()
                gc.unfreeze()
            else:
                gc.enable()


def _window(w: n.Window | None) -> WindowInfo:
    return ALWAYS if w is None else WindowInfo(w.start, w.end)


def _names(sel: n.Selector | None) -> NameSet:
    if sel is None:
        return NameSet(True, frozenset())
    return NameSet(sel.everything, frozenset(x.value for x in sel.names))


def build(files: Iterable[n.File]) -> PolicyModel:
    """Resolve validated files into a model (assumes the checker found no errors)."""
    with paused_gc():
        return _build(files)


def _build(files: Iterable[n.File]) -> PolicyModel:
    datasets: dict[str, DatasetInfo] = {}
    partners: dict[str, PartnerInfo] = {}
    purposes: dict[str, PurposeInfo] = {}
    consents: dict[str, ConsentInfo] = {}
    rule_nodes: list[n.Rule] = []
    tests: list[n.Test] = []
    for f in files:
        for d in f.declarations:
            if isinstance(d, n.Dataset):
                infos = tuple(FieldInfo(d.name.value, fd.name.value, fd.type.value, fd.sensitivity.value,
                                        span=fd.span) for fd in d.fields)
                datasets[d.name.value] = DatasetInfo(d.name.value, d.title, d.subject, infos, span=d.span)
            elif isinstance(d, n.Partner):
                agreements = tuple(AgreementInfo(a.reference, _window(a.window), span=a.span)
                                   for a in d.agreements)
                partners[d.name.value] = PartnerInfo(d.name.value, d.title, agreements, span=d.span)
            elif isinstance(d, n.Purpose):
                purposes[d.name.value] = PurposeInfo(d.name.value, d.title, span=d.span)
            elif isinstance(d, n.ConsentTopic):
                consents[d.name.value] = ConsentInfo(d.name.value, d.title, d.reconfirm_at_16, span=d.span)
            elif isinstance(d, n.Rule):
                rule_nodes.append(d)
            elif isinstance(d, n.Test):
                tests.append(d)
    subject = next(d.name for d in datasets.values() if d.subject)
    fields = {fi.ref: fi for d in datasets.values() for fi in d.fields}
    catalogue = Catalogue(MappingProxyType(datasets), subject, MappingProxyType(fields))
    rules = tuple(_rule(r, catalogue) for r in sorted(rule_nodes, key=lambda r: r.name.value))
    tests.sort(key=lambda t: t.name.value)
    return PolicyModel(catalogue, MappingProxyType(partners), MappingProxyType(purposes),
                       MappingProxyType(consents), rules, tuple(tests))


def expand_refs(refs: Iterable[n.FieldRef], catalogue: Catalogue) -> tuple[Grant, ...]:
    """``dataset.*`` becomes every field of the dataset; duplicates keep their first form."""
    out: dict[str, Grant] = {}
    for ref in refs:
        ds = ref.dataset.value
        if ref.field.value == "*":
            for fi in catalogue.datasets[ds].fields:
                out.setdefault(fi.ref, Grant(fi.ref))
        else:
            out.setdefault(ref.ref, Grant(ref.ref, ref.transform.value if ref.transform else None))
    return tuple(out.values())


def _rule(r: n.Rule, catalogue: Catalogue) -> RuleInfo:
    basis = topic = None
    if r.basis is not None:
        basis = r.basis.kind.value
        topic = r.basis.topic.value if r.basis.topic else None
    retain = None
    if r.retain is not None:
        retain = Retention(r.retain.amount, DURATION_UNITS[r.retain.unit.value])
    return RuleInfo(
        name=r.name.value, effect=r.effect, partners=_names(r.partner), purposes=_names(r.purpose),
        grants=expand_refs(r.fields or (), catalogue), basis=basis, consent_topic=topic,
        art9=r.art9.value if r.art9 else None, condition=r.condition, window=_window(r.window),
        retain=retain, note=r.note, span=r.span, node=r)
