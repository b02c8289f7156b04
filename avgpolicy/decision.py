"""Decision results: Decision, FieldDecision, Reason, Location and the Consent record.

All are frozen attrs classes. A Decision carries the policy version, the partner
and the purpose, but not the moment it was asked for: the compiled engine builds
one Decision per outcome path once and hands out that same (immutable) object on
every call. ``to_dict()`` gives a stable, JSON-ready form (for decision logs).
"""

from __future__ import annotations

import datetime
from collections import Counter
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import attrs

CONSENT_PARTIES = ("parent", "student")


@attrs.frozen
class Location:
    """Where a rule was written: file and 1-based line."""

    file: str
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file, "line": self.line}


@attrs.frozen
class Reason:
    """One reason for a field's outcome: a reason code of spec section 4 and a message."""

    code: str
    message: str
    field: str | None = None
    rule: str | None = None
    location: Location | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "field": self.field, "rule": self.rule,
                "location": self.location.to_dict() if self.location else None}

    def __str__(self) -> str:
        where = f" [{self.location}]" if self.location else ""
        return f"{self.code}: {self.message}{where}"


@attrs.frozen
class FieldDecision:
    """The outcome for one requested field; rule/basis/transform/retain are set when allowed.

    When allowed, ``law`` is the law the basis rests on (``legal_obligation("...")``,
    ``public_task("...")``), ``agreement`` the reference of the processing agreement in force
    that covers the field and purpose (None for a partner without agreements) and ``dpia`` the
    DPIA that covers the flow (the permit's, else that of an agreement in force covering it).
    """

    field: str
    allowed: bool
    reasons: tuple[Reason, ...]
    rule: str | None = None
    basis: str | None = None
    transform: str | None = None
    retain: str | None = None
    law: str | None = None
    agreement: str | None = None
    dpia: str | None = None

    def __bool__(self) -> bool:
        return self.allowed

    def to_dict(self) -> dict[str, Any]:
        return {"field": self.field, "allowed": self.allowed, "rule": self.rule, "basis": self.basis,
                "law": self.law, "agreement": self.agreement, "dpia": self.dpia,
                "transform": self.transform, "retain": self.retain,
                "reasons": [r.to_dict() for r in self.reasons]}


def _freeze_fields(value: Mapping[str, FieldDecision]) -> Mapping[str, FieldDecision]:
    return value if isinstance(value, MappingProxyType) else MappingProxyType(dict(value))


@attrs.frozen(hash=False)
class Decision:
    """The outcome of a request: allowed only if every requested field is allowed.

    ``fields`` maps each requested field (as written in the request) to its FieldDecision,
    in request order; ``reasons`` is every field's reasons, in that order.
    """

    allowed: bool
    fields: Mapping[str, FieldDecision] = attrs.field(converter=_freeze_fields)
    reasons: tuple[Reason, ...]
    policy_version: str
    partner: str
    purpose: str

    def __bool__(self) -> bool:
        return self.allowed

    @classmethod
    def of(cls, field_decisions: tuple[FieldDecision, ...], *, policy_version: str, partner: str,
           purpose: str) -> Decision:
        """The decision over these field decisions (allowed when all are)."""
        return cls(allowed=all(fd.allowed for fd in field_decisions),
                   fields={fd.field: fd for fd in field_decisions},
                   reasons=tuple(r for fd in field_decisions for r in fd.reasons),
                   policy_version=policy_version, partner=partner, purpose=purpose)

    def explain(self) -> str:
        """A readable account: a header, then one line per field and one indented line per reason."""
        verdict = "ALLOWED" if self.allowed else "DENIED"
        lines = [f"{verdict}: partner {self.partner}, purpose {self.purpose} (policy {self.policy_version})"]
        for fd in self.fields.values():
            if fd.allowed:
                extra = "".join(f", {k} {v}" for k, v in (
                    ("basis", fd.basis), ("law", fd.law and f'"{fd.law}"'), ("agreement", fd.agreement),
                    ("dpia", fd.dpia), ("as", fd.transform), ("retain", fd.retain)) if v)
                lines.append(f"  {fd.field}: allowed by {fd.rule}{extra}")
            else:
                lines.append(f"  {fd.field}: denied")
            for r in fd.reasons:
                lines.append(f"    - {r}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {"allowed": self.allowed, "policy_version": self.policy_version, "partner": self.partner,
                "purpose": self.purpose, "fields": {k: fd.to_dict() for k, fd in self.fields.items()},
                "reasons": [r.to_dict() for r in self.reasons]}


#: what granted a field in a filter batch: (rule, basis, law, agreement reference, transform)
Grant = tuple[str, str | None, str | None, str | None, str | None]


@attrs.define(eq=False)
class FilterReport:
    """What one ``Policy.filter`` batch did, filled as its rows are consumed (pass
    ``report=FilterReport()``); complete once the iteration has ended. Passing the same report
    to several calls adds them up.

    ``sent``: students yielded. ``left_out``: students not yielded (no field allowed, or no
    allowed field with a usable value). ``left_out_reasons``: for the students left out, how many
    had each reason code (a student counts once per code; ``missing_attribute`` also counts a
    student whose allowed fields all had a missing or ill-typed value). ``grants``: requested
    field -> the (rule, basis, law, agreement, transform) tuples that granted it to a student sent.
    """

    sent: int = 0
    left_out: int = 0
    left_out_reasons: Counter[str] = attrs.field(factory=Counter)
    grants: dict[str, set[Grant]] = attrs.field(factory=dict)

    def add_grant(self, field: str, grant: Grant) -> None:
        self.grants.setdefault(field, set()).add(grant)

    def add_left_out(self, decision: Decision) -> None:
        """Count one student left out, with the codes of its decision's reasons."""
        self.left_out += 1
        codes = {r.code for r in decision.reasons} - {"permitted", "inform_student"}
        if any(fd.allowed for fd in decision.fields.values()):
            codes.add("missing_attribute")  # allowed, but no usable value to send
        self.left_out_reasons.update(codes)

    def add_sent(self, decision: Decision) -> None:
        """Count one student sent, with what granted each allowed field of its decision."""
        self.sent += 1
        for ref, fd in decision.fields.items():
            if fd.allowed:
                self.add_grant(ref, (fd.rule, fd.basis, fd.law, fd.agreement, fd.transform))  # type: ignore[arg-type]

    def to_dict(self) -> dict[str, Any]:
        return {"sent": self.sent, "left_out": self.left_out,
                "left_out_reasons": dict(sorted(self.left_out_reasons.items())),
                "grants": {f: [list(g) for g in sorted(gs, key=lambda g: tuple(x or "" for x in g))]
                           for f, gs in self.grants.items()}}


def _check_party(instance: Any, attribute: Any, value: Any) -> None:
    if type(value) is not str:
        raise TypeError(f"Consent.by must be 'parent' or 'student', not {type(value).__name__}")
    if value not in CONSENT_PARTIES:
        raise ValueError(f"Consent.by must be 'parent' or 'student', not {value!r}")


def _check_date(instance: Any, attribute: Any, value: Any) -> None:
    if value is None and attribute.name == "withdrawn":
        return
    if type(value) is not datetime.date:
        raise TypeError(f"Consent.{attribute.name} must be a datetime.date (not a datetime), "
                        f"not {type(value).__name__}")


@attrs.frozen
class Consent:
    """A consent a student record holds for one topic: who gave it, when, and when it was withdrawn."""

    by: str = attrs.field(validator=_check_party)
    given: datetime.date = attrs.field(validator=_check_date)
    withdrawn: datetime.date | None = attrs.field(default=None, validator=_check_date)

    def to_dict(self) -> dict[str, Any]:
        return {"by": self.by, "given": self.given.isoformat(),
                "withdrawn": self.withdrawn.isoformat() if self.withdrawn else None}
