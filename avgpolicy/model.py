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
DURATION_UNITS = {"hour": "hours", "hours": "hours", "day": "days", "days": "days", "week": "weeks",
                  "weeks": "weeks", "month": "months", "months": "months", "year": "years", "years": "years"}
CONSENT_PARTIES = ("parent", "student")
REASON_CODES = ("agreement_inactive", "forbidden", "permitted", "no_permit", "outside_window",
                "not_in_subset", "no_consent", "missing_attribute", "unknown_field", "unknown_partner",
                "unknown_purpose", "inform_student", "outside_agreement", "left_school")
# ---- v2 (spec 7)
CONTROLLER_KINDS = ("public", "private")
PARTNER_ROLES = ("processor", "controller", "joint_controller")
PARTNER_KINDS = ("vendor", "government", "school", "swv", "care", "research", "exam", "other")
TRANSFERS = ("adequacy", "scc", "bcr", "derogation")
AGREEMENT_MODELS = ("convenant_3", "convenant_4", "own")
PURPOSE_KINDS = ("education", "organisation", "funding", "compulsory_education", "care", "parent_information",
                 "publication", "research", "transfer", "archive", "other")
FIELD_ROLES = ("key", "left")
#: bases that must name the law they rest on (spec 7.4)
LAW_BASES = ("legal_obligation", "public_task")
#: the field taken as a subject's key when no field is marked ``key``
DEFAULT_KEY_FIELD = "id"
DEFAULT_LOCATION = "NL"
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
    role: str | None = None  # "key" | "left" | None (spec 7.7)

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
    #: bare name of the subject's key field: the field marked ``key``, else one named ``id``, else None
    key: str | None = None
    #: bare name of the subject's ``left`` date field (spec 7.7), or None
    left: str | None = None

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
class Duration:
    """An amount of time as written (``24 hours``, ``2 days``); ``unit`` is plural, as in DURATION_UNITS."""

    amount: int
    unit: str  # "hours" | "days" | "weeks" | "months" | "years"

    def __str__(self) -> str:
        unit = self.unit if self.amount != 1 else self.unit[:-1]
        return f"{self.amount} {unit}"

    @property
    def hours(self) -> int:
        """The duration in hours (a month counts as 31 days and a year as 366: never shorter)."""
        per = {"hours": 1, "days": 24, "weeks": 7 * 24, "months": 31 * 24, "years": 366 * 24}
        return self.amount * per[self.unit]


#: the breach_handling of a policy set without a controller (spec 7.1)
DEFAULT_BREACH_HANDLING = Duration(24, "hours")


@attrs.frozen
class ControllerInfo:
    """The school (board): ``controller "NAME" { ... }``, or the defaults of spec 7.1 without one."""

    kind: str = "public"  # "public" | "private"
    dpo: str | None = None
    breach_handling: Duration = DEFAULT_BREACH_HANDLING
    span: Span | None = attrs.field(default=None, eq=False, repr=False)
    name: str | None = None  # the controller's name as written; None when not declared

    @property
    def declared(self) -> bool:
        return self.name is not None


DEFAULT_CONTROLLER = ControllerInfo()


@attrs.frozen
class AgreementInfo:
    reference: str
    window: WindowInfo
    span: Span | None = attrs.field(default=None, eq=False, repr=False)
    #: expanded "dataset.field" refs the agreement covers; None = every field
    covers: frozenset[str] | None = None
    #: purposes it covers; None = every purpose
    purposes: frozenset[str] | None = None
    retain: Retention | None = None
    breach: Duration | None = None
    dpia: str | None = None
    model: str | None = None

    def covers_field(self, ref: str) -> bool:
        return self.covers is None or ref in self.covers

    def covers_purpose(self, purpose: str) -> bool:
        return self.purposes is None or purpose in self.purposes

    def allows(self, ref: str, purpose: str) -> bool:
        """Whether this agreement covers both the field and the purpose (spec 7.3)."""
        return (self.covers is None or ref in self.covers) and (self.purposes is None or purpose in self.purposes)


@attrs.frozen
class PartnerInfo:
    name: str
    title: str | None
    agreements: tuple[AgreementInfo, ...]
    span: Span | None = attrs.field(default=None, eq=False, repr=False)
    #: "processor" | "controller" | "joint_controller"; None when undeclared and without agreements
    role: str | None = None
    kind: str = "other"
    location: str = DEFAULT_LOCATION  # ISO 3166-1 alpha-2
    transfer: str | None = None  # "adequacy" | "scc" | "bcr" | "derogation" | None

    def agreements_at(self, day: datetime.date) -> tuple[AgreementInfo, ...]:
        """The agreements valid on local day ``day`` (spec 7.3: their coverage is the union)."""
        return tuple(a for a in self.agreements if a.window.contains_date(day))


@attrs.frozen
class PurposeInfo:
    name: str
    title: str | None
    span: Span | None = attrs.field(default=None, eq=False, repr=False)
    kind: str = "other"


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
    unit: str  # "hours" | "days" | "weeks" | "months" | "years"

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
    #: the law of ``legal_obligation("...")`` / ``public_task("...")`` (spec 7.4)
    law: str | None = None
    #: TOPIC of ``art9 explicit_consent(TOPIC)`` (spec 7.6)
    art9_topic: str | None = None
    #: ``dpia "..."`` on the rule (spec 7.6)
    dpia: str | None = None
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

    def retain_under(self, agreements: Iterable[AgreementInfo] = ()) -> Retention | None:
        """The retention in force: the rule's own ``retain``, else (spec 7.3: a permit to a
        processor inherits it) the shortest ``retain`` of the given agreements, else None."""
        if self.retain is not None:
            return self.retain
        inherited = [a.retain for a in agreements if a.retain is not None]
        return min(inherited, key=retention_days) if inherited else None

    def dpia_under(self, agreements: Iterable[AgreementInfo] = ()) -> str | None:
        """The DPIA that covers this rule: its own ``dpia``, else the first of the agreements'."""
        if self.dpia is not None:
            return self.dpia
        return next((a.dpia for a in agreements if a.dpia is not None), None)


_DAYS_PER = {"hours": 1 / 24, "days": 1, "weeks": 7, "months": 31, "years": 366}


def retention_days(r: Retention | Duration) -> float:
    """A retention's length in days, for comparing two (a month counts 31 days, a year 366)."""
    return r.amount * _DAYS_PER[r.unit]


@attrs.frozen
class PolicyModel:
    catalogue: Catalogue
    partners: Mapping[str, PartnerInfo]
    purposes: Mapping[str, PurposeInfo]
    consents: Mapping[str, ConsentInfo]
    rules: tuple[RuleInfo, ...]
    tests: tuple[n.Test, ...]
    controller: ControllerInfo = DEFAULT_CONTROLLER


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
    partner_nodes: list[n.Partner] = []
    controller = DEFAULT_CONTROLLER
    for f in files:
        for d in f.declarations:
            if isinstance(d, n.Dataset):
                infos = tuple(FieldInfo(d.name.value, fd.name.value, fd.type.value, fd.sensitivity.value,
                                        span=fd.span, role=fd.role.value if fd.role else None)
                              for fd in d.fields)
                datasets[d.name.value] = DatasetInfo(d.name.value, d.title, d.subject, infos, span=d.span)
            elif isinstance(d, n.Partner):
                partner_nodes.append(d)
            elif isinstance(d, n.Purpose):
                purposes[d.name.value] = PurposeInfo(d.name.value, d.title, span=d.span,
                                                     kind=d.kind.value if d.kind else "other")
            elif isinstance(d, n.Controller):
                controller = _controller(d)
            elif isinstance(d, n.ConsentTopic):
                consents[d.name.value] = ConsentInfo(d.name.value, d.title, d.reconfirm_at_16, span=d.span)
            elif isinstance(d, n.Rule):
                rule_nodes.append(d)
            elif isinstance(d, n.Test):
                tests.append(d)
    subject = next(d.name for d in datasets.values() if d.subject)
    fields = {fi.ref: fi for d in datasets.values() for fi in d.fields}
    subject_fields = datasets[subject].fields
    key = next((fi.name for fi in subject_fields if fi.role == "key"), None)
    if key is None and any(fi.name == DEFAULT_KEY_FIELD for fi in subject_fields):
        key = DEFAULT_KEY_FIELD
    left = next((fi.name for fi in subject_fields if fi.role == "left"), None)
    catalogue = Catalogue(MappingProxyType(datasets), subject, MappingProxyType(fields), key, left)
    for p in partner_nodes:
        partners[p.name.value] = _partner(p, catalogue)
    rules = tuple(_rule(r, catalogue) for r in sorted(rule_nodes, key=lambda r: r.name.value))
    tests.sort(key=lambda t: t.name.value)
    return PolicyModel(catalogue, MappingProxyType(partners), MappingProxyType(purposes),
                       MappingProxyType(consents), rules, tuple(tests), controller)


# The checker reports an unknown unit or field reference before a model is built; the
# v2 parts are built defensively all the same (an unknown unit is no duration, an unknown
# reference covers nothing), so that nothing the checker missed can widen a flow.

def _duration(d: n.Duration | None) -> Duration | None:
    unit = None if d is None else DURATION_UNITS.get(d.unit.value)
    return None if d is None or unit is None else Duration(d.amount, unit)


def _retention(d: n.Duration | None) -> Retention | None:
    unit = None if d is None else DURATION_UNITS.get(d.unit.value)
    return None if d is None or unit is None else Retention(d.amount, unit)


def _controller(c: n.Controller) -> ControllerInfo:
    return ControllerInfo(kind=c.kind.value if c.kind else "public", dpo=c.dpo,
                          breach_handling=_duration(c.breach_handling) or DEFAULT_BREACH_HANDLING,
                          span=c.span, name=c.title)


def _agreement(a: n.Agreement, catalogue: Catalogue) -> AgreementInfo:
    covers = None
    if a.covers is not None:
        known = [r for r in a.covers if r.dataset.value in catalogue.datasets
                 and (r.field.value == "*" or r.ref in catalogue.fields)]
        covers = frozenset(g.ref for g in expand_refs(known, catalogue))
    purposes = None if a.purposes is None else frozenset(p.value for p in a.purposes)
    return AgreementInfo(a.reference, _window(a.window), span=a.span, covers=covers, purposes=purposes,
                         retain=_retention(a.retain), breach=_duration(a.breach), dpia=a.dpia,
                         model=a.model.value if a.model else None)


def _partner(p: n.Partner, catalogue: Catalogue) -> PartnerInfo:
    agreements = tuple(_agreement(a, catalogue) for a in p.agreements)
    role = p.role.value if p.role else ("processor" if agreements else None)
    return PartnerInfo(p.name.value, p.title, agreements, span=p.span, role=role,
                       kind=p.kind.value if p.kind else "other",
                       location=p.location.value if p.location else DEFAULT_LOCATION,
                       transfer=p.transfer.value if p.transfer else None)


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
    return RuleInfo(
        name=r.name.value, effect=r.effect, partners=_names(r.partner), purposes=_names(r.purpose),
        grants=expand_refs(r.fields or (), catalogue), basis=basis, consent_topic=topic,
        art9=r.art9.value if r.art9 else None, condition=r.condition, window=_window(r.window),
        retain=_retention(r.retain), note=r.note, span=r.span, node=r,
        law=r.basis.law if r.basis is not None else None,
        art9_topic=r.art9_topic.value if r.art9_topic else None, dpia=r.dpia)
