"""Register (report stage): the processing-register overview of a loaded policy set.

A school board's privacy officer needs, per partner: the processing agreements
and how long they still run, the purposes, legal bases, datasets and fields
(special-category and BSN data marked), which students are concerned (the
``students where`` conditions in words), transforms and retention, and a
partner x dataset matrix (GDPR art. 30(1)). ``build_register`` returns all of
it as plain, JSON-able data; ``render`` turns that into Markdown, CSV, JSON or a
self-contained, printable HTML page.

The register reads only ``policy.model``; it decides nothing.
"""

from __future__ import annotations

import csv
import datetime
import html
import io
import json
import re
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import attrs

from . import nodes as n
from .law import EEA
from .model import SENSITIVITIES, AgreementInfo, NameSet, PartnerInfo, PolicyModel, RuleInfo, WindowInfo

if TYPE_CHECKING:
    from .policy import Policy

__all__ = ["ART30", "FORMATS", "build_register", "condition_text", "incomplete_rows", "render", "render_data"]

FORMATS = ("md", "csv", "json", "html")

#: an agreement that ends within this many days is reported as expiring
EXPIRING_DAYS = 90

#: the marker shown next to a field of a high-risk sensitivity class
MARKERS = {
    "national_id": "BSN",
    "criminal": "art. 10",
    "special": "art. 9",
    "sensitive": "sensitive",
}

_MARKER_CLASS = {marker: cls for cls, marker in MARKERS.items()}

_BASIS_TEXT = {
    "consent": "consent (art. 6(1)(a))",
    "contract": "contract (art. 6(1)(b))",
    "legal_obligation": "legal obligation (art. 6(1)(c))",
    "vital_interest": "vital interest (art. 6(1)(d))",
    "public_task": "public task (art. 6(1)(e))",
    "legitimate_interest": "legitimate interest (art. 6(1)(f))",
}

_ROLE_TEXT = {
    "processor": "processor (verwerker, art. 28)",
    "controller": "independent controller (zelfstandig verwerkingsverantwoordelijke)",
    "joint_controller": "joint controller (gezamenlijk verwerkingsverantwoordelijke, art. 26)",
}

_TRANSFER_TEXT = {
    "adequacy": "adequacy decision (art. 45)",
    "scc": "standard contractual clauses (art. 46(2)(c))",
    "bcr": "binding corporate rules (art. 47)",
    "derogation": "derogation for a specific situation (art. 49)",
}

#: what GDPR art. 30(1) asks a register row for, by the key used in ``missing`` lists
ART30 = {
    "dpo": "the data protection officer's contact details (art. 30(1)(a))",
    "transfer": "the transfer mechanism for a recipient outside the EEA (art. 30(1)(e), art. 46)",
    "retention": "the time limit for erasure: no `retain` on the rule or its processing agreement (art. 30(1)(f))",
}

_ORDER_TEXT = {"==": "is", "!=": "is not", "<": "is below", "<=": "is at most", ">": "is above",
               ">=": "is at least"}
_FLIPPED = {"==": "==", "!=": "!=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}
_NEGATED = {"==": "!=", "!=": "==", "<": ">=", "<=": ">", ">": "<=", ">=": "<"}


# ---------------------------------------------------------------------------
# conditions in words

def _literal(lit: n.Literal) -> str:
    value = lit.value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime.date):
        return value.isoformat()
    return str(value)


def _operand(op: n.Operand) -> str:
    return op.name if isinstance(op, n.Ref) else _literal(op)


def _alternatives(values: Iterable[n.Literal], word: str) -> str:
    items = [_literal(v) for v in values]
    if not items:
        return "nothing"
    if len(items) == 1:
        return items[0]
    return ", ".join(items[:-1]) + f" {word} " + items[-1]


def _compare(op: str, left: n.Operand, right: n.Operand) -> str:
    if isinstance(left, n.Literal) and isinstance(right, n.Ref):
        left, right, op = right, left, _FLIPPED[op]
    if isinstance(left, n.Ref) and isinstance(right, n.Literal) and isinstance(right.value, bool):
        # `actief == true` reads as "actief", `actief == false` as "not actief"
        positive = (op == "==") == right.value
        return left.name if positive else f"not {left.name}"
    return f"{_operand(left)} {_ORDER_TEXT[op]} {_operand(right)}"


def _text(expr: n.Expr, parent: str | None) -> str:
    """``parent`` is "and"/"or" when the caller joins the result; a nested or/and gets brackets."""
    if isinstance(expr, n.Compare):
        return _compare(expr.op, expr.left, expr.right)
    if isinstance(expr, n.InList):
        if expr.negated:
            return f"{_operand(expr.operand)} is none of {_alternatives(expr.values, 'and')}"
        return f"{_operand(expr.operand)} is {_alternatives(expr.values, 'or')}"
    if isinstance(expr, n.InRange):
        span = f"{_literal(expr.low)} to {_literal(expr.high)}"
        return f"{_operand(expr.operand)} {'outside ' if expr.negated else ''}{span}"
    if isinstance(expr, n.InSet):
        verb = "does not include" if expr.negated else "includes"
        return f"{expr.container.name} {verb} {_operand(expr.element)}"
    if isinstance(expr, n.Not):
        inner = expr.operand
        # under three-valued logic `not a >= b` is exactly `a < b`: say it the short way
        if isinstance(inner, n.Compare):
            return _compare(_NEGATED[inner.op], inner.left, inner.right)
        if isinstance(inner, (n.InList, n.InRange, n.InSet)):
            return _text(type(inner)(**{**_fields(inner), "negated": not inner.negated}), parent)
        return f"not ({_text(inner, None)})"
    if isinstance(expr, (n.And, n.Or)):
        word = "and" if isinstance(expr, n.And) else "or"
        body = f" {word} ".join(_text(item, word) for item in expr.items)
        return f"({body})" if parent is not None and parent != word else body
    raise TypeError(f"not a condition: {type(expr).__name__}")


def _fields(node: n.Node) -> dict[str, Any]:
    return {a.name: getattr(node, a.name) for a in attrs.fields(type(node)) if a.init}


def condition_text(expr: n.Expr | None) -> str:
    """A ``students where`` condition in words, e.g. "school is 12AB and leerjaar 3 to 8"."""
    if expr is None:
        return "all students"
    return _text(expr, None)


# ---------------------------------------------------------------------------
# building the register (plain data)

def _iso(day: datetime.date | None) -> str | None:
    return day.isoformat() if day else None


def window_text(window: WindowInfo) -> str:
    if window.start is None and window.end is None:
        return "always"
    if window.start is None:
        return f"until {_iso(window.end)}"
    if window.end is None:
        return f"from {_iso(window.start)}"
    return f"{_iso(window.start)} to {_iso(window.end)}"


def _names_text(names: NameSet, what: str) -> str:
    listed = ", ".join(sorted(names.names))
    if names.everything:
        return f"all {what} except {listed}" if listed else f"all {what}"
    return listed


def _window_status(window: WindowInfo, today: datetime.date) -> tuple[str, int | None]:
    """("active" | "expiring" | "expired" | "not started", days until the end or None)."""
    days = (window.end - today).days if window.end else None
    if window.start and today < window.start:
        return "not started", days
    if window.end and today > window.end:
        return "expired", days
    if days is not None and days <= EXPIRING_DAYS:
        return "expiring", days
    return "active", days


def _merge(windows: Iterable[WindowInfo]) -> list[WindowInfo]:
    """The days these windows cover, as disjoint windows in date order (touching windows joined)."""
    ordered = sorted(windows, key=lambda w: w.start or datetime.date.min)
    out: list[WindowInfo] = []
    for w in ordered:
        if out:
            last = out[-1]
            if last.end is None:
                break  # the last one is open-ended: it covers everything after it
            if w.start is None or last.end == datetime.date.max or w.start <= last.end + datetime.timedelta(days=1):
                end = None if w.end is None else max(last.end, w.end)
                out[-1] = WindowInfo(last.start, end)
                continue
        out.append(w)
    return out


def _intersect(a: WindowInfo, b: WindowInfo) -> WindowInfo | None:
    starts = [d for d in (a.start, b.start) if d is not None]
    ends = [d for d in (a.end, b.end) if d is not None]
    w = WindowInfo(max(starts) if starts else None, min(ends) if ends else None)
    return None if w.start is not None and w.end is not None and w.start > w.end else w


def effective_windows(rule_window: WindowInfo, agreements: Iterable[WindowInfo]) -> list[WindowInfo]:
    """When a permit can take effect for a partner: its own window, within the partner's agreements.

    A partner without agreements is bounded by the rule's window alone; with agreements, by the
    days on which the rule's window and at least one agreement both hold (section 4, step 1).
    """
    agreements = list(agreements)
    if not agreements:
        return [rule_window]
    return _merge(w for w in (_intersect(rule_window, a) for a in agreements) if w is not None)


def windows_text(windows: list[WindowInfo]) -> str:
    return "; ".join(window_text(w) for w in windows) if windows else "never (outside every agreement)"


def _windows_status(windows: list[WindowInfo], today: datetime.date) -> tuple[str, int | None]:
    """The status of a set of disjoint windows: that of the one holding ``today``, else of the next one
    ("not started", also between two windows), else "expired" (or "never" when there is none)."""
    if not windows:
        return "never", None
    for w in windows:
        if w.contains_date(today) or (w.start is not None and today < w.start):
            return _window_status(w, today)
    return _window_status(windows[-1], today)


def _coverage(windows: list[WindowInfo], today: datetime.date) -> tuple[str | None, int | None]:
    """(last day of the unbroken agreement coverage that holds today, days left) or (None, None)."""
    for w in _merge(windows):
        if w.contains_date(today):
            return (_iso(w.end), (w.end - today).days) if w.end else (None, None)
    return None, None


#: UAVG art. 5 and EDPB Guidelines 05/2020 §147-149, as section 4 of the language decides consent
CONSENT_RULE = ("under 16 a parent or guardian consents, from 16 the student (UAVG art. 5); a parent's "
                "consent from before the 16th birthday keeps counting until withdrawn, and the student is "
                "told they may withdraw it (EDPB 05/2020 §147-149)")
CONSENT_RULE_RECONFIRM = ("under 16 a parent or guardian consents, from 16 the student (UAVG art. 5); stricter "
                          "for this topic (reconfirm_at_16): a parent's consent stops counting at 16")


def consent_rule(model: PolicyModel, topic: str | None) -> str | None:
    """Who may consent to ``topic`` at which age, in words (None without a topic)."""
    if topic is None:
        return None
    info = model.consents.get(topic)
    return CONSENT_RULE_RECONFIRM if info is not None and info.reconfirm_at_16 else CONSENT_RULE


def _gaps(windows: list[WindowInfo]) -> list[dict[str, str]]:
    """Periods between consecutive agreements during which none is valid."""
    out: list[dict[str, str]] = []
    ordered = sorted(windows, key=lambda w: w.start or datetime.date.min)
    covered_until: datetime.date | None = None  # the last day covered by the windows seen so far
    for i, w in enumerate(ordered):
        if i and covered_until is not None and w.start is not None \
                and w.start > covered_until + datetime.timedelta(days=1):
            out.append({"from": (covered_until + datetime.timedelta(days=1)).isoformat(),
                        "until": (w.start - datetime.timedelta(days=1)).isoformat()})
        if w.end is None or w.end == datetime.date.max:
            break  # open-ended (or ending on the last representable day): nothing after it can be a gap
        covered_until = w.end if covered_until is None else max(covered_until, w.end)
    return out


def _rule_location(rule: RuleInfo) -> str | None:
    return f"{rule.file}:{rule.line}" if rule.span else None


def _field_entry(model: PolicyModel, ref: str, transform: str | None) -> dict[str, Any]:
    info = model.catalogue.fields[ref]
    return {
        "ref": ref, "dataset": info.dataset, "field": info.name, "type": info.type, "role": info.role,
        "sensitivity": info.sensitivity, "marker": MARKERS.get(info.sensitivity),
        "special": info.sensitivity == "special", "national_id": info.sensitivity == "national_id",
        "transform": transform,
    }


def _blocks(forbid: RuleInfo, partner: str, purposes: NameSet, ref: str) -> bool:
    """True when an unconditional forbid always denies ``ref`` to ``partner`` for these purposes."""
    if forbid.condition is not None or forbid.window != WindowInfo(None, None):
        return False
    if not forbid.partners.matches(partner) or forbid.grant_for(ref) is None:
        return False
    if forbid.purposes.everything and not forbid.purposes.names:
        return True
    if purposes.everything:
        return False
    return all(forbid.purposes.matches(p) for p in purposes.names)


def _partner_gaps(model: PolicyModel, info: PartnerInfo) -> list[str]:
    """What art. 30(1) asks for that this partner's rows lack, apart from retention (per flow)."""
    gaps = [] if model.controller.dpo else ["dpo"]
    if info.location not in EEA and info.transfer is None:
        gaps.append("transfer")
    return gaps


def _flow(model: PolicyModel, rule: RuleInfo, partner: str, today: datetime.date) -> dict[str, Any]:
    """One permit rule as it reaches ``partner``."""
    info = model.partners[partner]
    forbids = [r for r in model.rules if r.effect == "forbid"]
    fields = []
    for grant in rule.grants:
        entry = _field_entry(model, grant.ref, grant.transform)
        entry["blocked_by"] = [f.name for f in forbids if _blocks(f, partner, rule.purposes, grant.ref)]
        fields.append(entry)
    agreements = [a.window for a in info.agreements]
    effective = effective_windows(rule.window, agreements)
    status, days = _windows_status(effective, today)
    # the agreements this rule falls under: those of the partner that cover one of its purposes
    under = [a for a in info.agreements
             if a.purposes is None or rule.purposes.everything or a.purposes & rule.purposes.names]
    retain = rule.retain_under(under)
    missing = _partner_gaps(model, info)
    if retain is None and _role(info) == "processor":
        missing.append("retention")
    return {
        "rule": rule.name,
        "purposes": sorted(rule.purposes.names) if not rule.purposes.everything else [],
        "purposes_text": _names_text(rule.purposes, "purposes"),
        "purpose_titles": {p: model.purposes[p].title for p in sorted(rule.purposes.names)
                           if not rule.purposes.everything and p in model.purposes},
        "purpose_kinds": {p: model.purposes[p].kind for p in sorted(rule.purposes.names)
                          if not rule.purposes.everything and p in model.purposes},
        "basis": rule.basis,
        "basis_text": _basis_text(rule),
        "law": rule.law,
        "consent_topic": rule.consent_topic,
        "art9": rule.art9,
        "art9_topic": rule.art9_topic,
        "dpia": rule.dpia_under(under),
        "students": condition_text(rule.condition),
        "consent_rule": consent_rule(model, rule.consent_topic or rule.art9_topic),
        # `from`, `until` and `text` are the rule's own window; `effective` is when it can take effect
        # for this partner (within its agreements); `status` and `days_until_end` are of `effective`
        "window": {"from": _iso(rule.window.start), "until": _iso(rule.window.end),
                   "text": window_text(rule.window),
                   "effective": [{"from": _iso(w.start), "until": _iso(w.end)} for w in effective],
                   "effective_text": windows_text(effective),
                   "bounded_by_agreements": bool(agreements) and effective != [rule.window],
                   "status": status, "days_until_end": days},
        "retain": str(rule.retain) if rule.retain else None,
        # the retention in force: the rule's own, else (a processor's) inherited from its agreement
        "retain_in_force": str(retain) if retain else None,
        "retain_source": None if retain is None else "rule" if rule.retain is not None else "agreement",
        # what GDPR art. 30(1) asks for that this row lacks (keys of ART30); `register --strict` fails on any
        "missing": missing,
        "note": rule.note,
        "location": _rule_location(rule),
        "fields": fields,
        "special": any(f["special"] for f in fields),
        "national_id": any(f["national_id"] for f in fields),
    }


def _role(info: PartnerInfo) -> str:
    """The partner's role: as declared, else a processor when it lists an agreement (spec 7.2)."""
    return info.role or ("processor" if info.agreements else "controller")


def _basis_text(rule: RuleInfo) -> str:
    """E.g. "legal obligation (art. 6(1)(c)): Leerplichtwet 1969, art. 21; art. 9(2): health care"."""
    if rule.basis is None:
        return ""
    text = _BASIS_TEXT.get(rule.basis, rule.basis)
    if rule.consent_topic:
        text = f"consent: {rule.consent_topic} (art. 6(1)(a))"
    if rule.law:
        text += f": {rule.law}"
    if rule.art9:
        ground = rule.art9.replace("_", " ")
        text += f"; art. 9(2): {ground}" + (f" ({rule.art9_topic})" if rule.art9_topic else "")
    return text


def _agreement_entry(model: PolicyModel, a: AgreementInfo, today: datetime.date) -> dict[str, Any]:
    status, days = _window_status(a.window, today)
    covers = sorted(a.covers) if a.covers is not None else None
    return {"reference": a.reference, "from": _iso(a.window.start), "until": _iso(a.window.end),
            "text": window_text(a.window), "status": status, "days_until_expiry": days,
            "model": a.model,
            "covers": covers,
            "covers_text": fields_text(model, covers) if covers is not None else "every field (no privacybijsluiter)",
            "purposes": sorted(a.purposes) if a.purposes is not None else None,
            "purposes_text": ", ".join(sorted(a.purposes)) if a.purposes is not None else "every purpose",
            "retain": str(a.retain) if a.retain else None,
            "breach": str(a.breach) if a.breach else None,
            "dpia": a.dpia}


def fields_text(model: PolicyModel, refs: Iterable[str]) -> str:
    """Field references grouped back by dataset: ``leerling.{bsn, roepnaam}, toets.*``."""
    by_ds: dict[str, list[str]] = {}
    for ref in refs:
        ds, _, name = ref.partition(".")
        by_ds.setdefault(ds, []).append(name)
    parts = []
    for ds, names in by_ds.items():
        every = [f.name for f in model.catalogue.datasets[ds].fields]
        if len(every) > 1 and set(names) == set(every):
            parts.append(f"{ds}.*")
        elif len(names) == 1:
            parts.append(f"{ds}.{names[0]}")
        else:
            parts.append(f"{ds}.{{{', '.join(names)}}}")
    return ", ".join(parts)


def _overlap(purposes: NameSet, rule: RuleInfo) -> bool:
    """Can a forbid over ``purposes`` meet a request that ``rule`` (a permit) covers?"""
    other = rule.purposes
    if purposes.everything and other.everything:
        return True
    if purposes.everything:
        return any(p not in purposes.names for p in other.names)
    if other.everything:
        return any(p not in other.names for p in purposes.names)
    return bool(purposes.names & other.names)


def _restriction_text(r: dict[str, Any]) -> str:
    """E.g. "not actief" or "purpose publicatie; all students"."""
    if r["purposes_text"] == "all purposes":
        return r["students"]
    return f"for {r['purposes_text']}; {r['students']}"


def _restriction(model: PolicyModel, rule: RuleInfo) -> dict[str, Any]:
    return {
        "rule": rule.name,
        "partners_text": _names_text(rule.partners, "partners"),
        "purposes_text": _names_text(rule.purposes, "purposes"),
        "fields": [_field_entry(model, g.ref, None) for g in rule.grants],
        "fields_text": fields_text(model, (g.ref for g in rule.grants)),
        "students": condition_text(rule.condition),
        "window": window_text(rule.window),
        "note": rule.note,
        "location": _rule_location(rule),
    }


def build_register(policy: Policy, *, today: datetime.date | None = None) -> dict[str, Any]:
    """The register of a loaded Policy as JSON-able data (dicts, lists, str, int, bool, None).

    ``today`` (default: today in the policy's time zone) is the date that agreement
    status and "days until expiry" are computed against.
    """
    model: PolicyModel = policy.model
    if today is None:
        today = datetime.datetime.now(policy.zone).date()
    elif isinstance(today, datetime.datetime):
        today = today.date()
    elif not isinstance(today, datetime.date):
        raise TypeError(f"today must be a datetime.date, not {type(today).__name__}")

    datasets = list(model.catalogue.datasets)
    permits = [r for r in model.rules if r.effect == "permit"]
    forbids = [r for r in model.rules if r.effect == "forbid"]

    partners = []
    for name in sorted(model.partners):
        info = model.partners[name]
        agreements = [_agreement_entry(model, a, today) for a in info.agreements]
        agreements.sort(key=lambda a: a["from"] or "")
        covered_until, coverage_days = _coverage([a.window for a in info.agreements], today)
        if not info.agreements:
            coverage = "no agreement required"
        elif any(a.window.contains_date(today) for a in info.agreements):
            coverage = "covered"
        else:
            coverage = "no valid agreement"
        flows = [_flow(model, r, name, today) for r in permits if r.partners.matches(name)]
        received: dict[str, list[str]] = {}
        for flow in flows:
            for f in flow["fields"]:
                if not f["blocked_by"] and f["field"] not in received.setdefault(f["dataset"], []):
                    received[f["dataset"]].append(f["field"])
        partners.append({
            "name": name, "title": info.title,
            "role": _role(info), "role_text": _ROLE_TEXT.get(_role(info), _role(info)),
            "role_declared": info.role is not None,
            "kind": info.kind, "location": info.location, "in_eea": info.location in EEA,
            "transfer": info.transfer,
            "transfer_text": _TRANSFER_TEXT.get(info.transfer, info.transfer) if info.transfer else
            ("none needed (inside the EEA)" if info.location in EEA else "MISSING"),
            "missing": _partner_gaps(model, info),
            "agreements": agreements, "agreement_status": coverage,
            # the last day of the unbroken coverage by agreements that holds today (None: open-ended
            # or not covered today), and the days until then: the header says "expiring" from this
            "covered_until": covered_until, "coverage_days_left": coverage_days,
            "gaps": _gaps([a.window for a in info.agreements]),
            "flows": flows,
            "restrictions": [_restriction(model, r) for r in forbids if r.partners.matches(name)
                             and (not flows or any(_overlap(r.purposes, f) for f in permits
                                                   if f.partners.matches(name)))],
            "purposes": sorted({p for fl in flows for p in fl["purposes"]}),
            "bases": sorted({fl["basis"] for fl in flows if fl["basis"]}),
            "datasets": {ds: received[ds] for ds in datasets if ds in received},
            "special": any(fl["special"] for fl in flows),
            "national_id": any(fl["national_id"] for fl in flows),
        })

    matrix_rows = []
    for p in partners:
        cells = {}
        for ds in datasets:
            names = p["datasets"].get(ds, [])
            classes = {model.catalogue.fields[f"{ds}.{f}"].sensitivity for f in names}
            worst = max(classes, key=SENSITIVITIES.index) if classes else None
            # every legal marker present (BSN, art. 9, art. 10); "sensitive" only when none of them is
            markers = [MARKERS[c] for c in ("national_id", "criminal", "special") if c in classes]
            if not markers and "sensitive" in classes:
                markers = [MARKERS["sensitive"]]
            cells[ds] = {"fields": names, "count": len(names), "worst": worst, "markers": markers}
        matrix_rows.append({"partner": p["name"], "cells": cells})

    expiring = [{"partner": p["name"], "reference": a["reference"], "until": a["until"],
                 "days_until_expiry": a["days_until_expiry"]}
                for p in partners for a in p["agreements"] if a["status"] == "expiring"]
    c = model.controller
    gaps = [{"partner": p["name"], "rule": fl["rule"], "missing": fl["missing"]}
            for p in partners for fl in p["flows"] if fl["missing"]]
    gaps += [{"partner": p["name"], "rule": None, "missing": p["missing"]}
             for p in partners if p["missing"] and not p["flows"]]
    return {
        "title": "Processing register",
        "today": today.isoformat(),
        "policy_version": policy.version,
        "timezone": policy.timezone,
        "controller": {"name": c.name, "declared": c.declared, "kind": c.kind, "dpo": c.dpo,
                       "breach_handling": str(c.breach_handling),
                       "missing": [] if c.dpo else ["dpo"]},
        # every row that lacks something GDPR art. 30(1) asks for (ART30 says what each key means)
        "art30_gaps": gaps,
        "summary": {
            "partners": len(partners),
            "permits": len(permits),
            "forbids": len(forbids),
            "purposes": len(model.purposes),
            "special_flows": sum(1 for p in partners for f in p["flows"] if f["special"]),
            "national_id_flows": sum(1 for p in partners for f in p["flows"] if f["national_id"]),
            "expiring_agreements": expiring,
            "partners_without_valid_agreement": [p["name"] for p in partners
                                                 if p["agreement_status"] == "no valid agreement"],
        },
        "partners": partners,
        "matrix": {"datasets": datasets, "rows": matrix_rows},
        "purposes": [{"name": u.name, "title": u.title, "kind": u.kind,
                      "partners": [p["name"] for p in partners if u.name in p["purposes"]]}
                     for u in sorted(model.purposes.values(), key=lambda u: u.name)],
        "consent_topics": [{"name": c.name, "title": c.title, "reconfirm_at_16": c.reconfirm_at_16}
                           for c in sorted(model.consents.values(), key=lambda c: c.name)],
        "catalogue": [
            {"name": d.name, "title": d.title, "subject": d.subject,
             "fields": [_field_entry(model, f.ref, None) for f in d.fields]}
            for d in model.catalogue.datasets.values()],
        "forbids": [_restriction(model, r) for r in forbids],
    }



def incomplete_rows(reg: dict[str, Any]) -> list[str]:
    """Each register row that lacks something GDPR art. 30(1) asks for, in words (``register --strict``)."""
    out = []
    if reg["controller"]["missing"]:
        out.append(f"the controller lacks {_gaps_text(reg['controller']['missing'])}")
    for g in reg["art30_gaps"]:
        where = f"flow {g['rule']} to {g['partner']}" if g["rule"] else f"partner {g['partner']}"
        out.append(f"{where} lacks {_gaps_text(g['missing'])}")
    return out


# ---------------------------------------------------------------------------
# rendering

def render(policy: Policy, fmt: str = "md", *, today: datetime.date | None = None) -> str:
    """The register as ``"md"``, ``"csv"``, ``"json"`` or ``"html"`` text."""
    _renderer(fmt)
    return render_data(build_register(policy, today=today), fmt)


def render_data(reg: dict[str, Any], fmt: str = "md") -> str:
    """Render a register already built by ``build_register`` (e.g. to also check ``incomplete_rows``)."""
    return _renderer(fmt)(reg)


def _renderer(fmt: str) -> Callable[[dict[str, Any]], str]:
    renderers: dict[str, Callable[[dict[str, Any]], str]] = {
        "md": _markdown, "csv": _csv, "json": _json, "html": _html}
    if fmt not in renderers:
        raise ValueError(f"unknown register format {fmt!r}; use one of {', '.join(FORMATS)}")
    return renderers[fmt]


def _json(reg: dict[str, Any]) -> str:
    return json.dumps(reg, indent=2, ensure_ascii=False) + "\n"


def _field_label(f: dict[str, Any], *, qualified: bool = True) -> str:
    label = f["ref"] if qualified else f["field"]
    if f.get("transform"):
        label += f" as {f['transform']}"
    return label


def _agreement_state(a: dict[str, Any]) -> str:
    """E.g. "active, 248 days left", "expiring, 36 days left", "expired 329 days ago"."""
    days = a["days_until_expiry"]
    if a["status"] == "expired":
        return f"expired {-days} days ago"
    if a["status"] == "not started":
        return f"starts {a['from']}"
    return f"{a['status']}, " + ("no end date" if days is None else f"{days} days left")


def _agreement_line(a: dict[str, Any]) -> str:
    return f"{a['text']} ({_agreement_state(a)})"


def _agreement_terms(a: dict[str, Any]) -> str:
    """What the agreement allows, e.g. "model convenant_4; covers leerling.{...}; for leermiddelen; ..."."""
    parts = [f"model {a['model']}"] if a["model"] else []
    parts += [f"covers {a['covers_text']}", f"for {a['purposes_text']}",
              f"retain {a['retain']}" if a["retain"] else "no retention agreed",
              f"breach reported within {a['breach']}" if a["breach"] else "no breach deadline"]
    if a["dpia"]:
        parts.append(f"DPIA: {a['dpia']}")
    return "; ".join(parts)


def _partner_facts(p: dict[str, Any]) -> str:
    """E.g. "processor (verwerker, art. 28); kind vendor; processes in US (outside the EEA): standard ..."."""
    where = f"processes in {p['location']}" + ("" if p["in_eea"] else " (outside the EEA)")
    if not p["in_eea"]:
        where += f"; transfer: {p['transfer_text']}"
    return f"{p['role_text']}; kind {p['kind']}; {where}"


def _gaps_text(missing: Iterable[str]) -> str:
    return "; ".join(ART30[m] for m in missing)


def _retain_text(fl: dict[str, Any]) -> str:
    if fl["retain_in_force"] is None:
        return "—"
    return fl["retain_in_force"] + (" (from the agreement)" if fl["retain_source"] == "agreement" else "")


# -- csv ---------------------------------------------------------------------

CSV_COLUMNS = ("partner", "partner_title", "role", "kind", "location", "transfer", "agreement_status",
               "agreements", "next_expiry_days", "rule", "purposes", "purpose_kinds", "basis", "law",
               "consent_topic", "art9", "dpia", "dataset", "field", "sensitivity", "marker", "transform",
               "blocked_by", "students", "rule_window", "effective_window", "retain", "retain_source",
               "controller", "dpo", "art30_missing", "note", "location_in_policy")


#: a cell starting with one of these is a formula (or DDE call) to Excel, LibreOffice and Google Sheets
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n", "\uff1d", "\uff0b", "\uff0d", "\uff20")


def _csv_cell(value: Any) -> Any:
    """A cell that no spreadsheet reads as a formula: text starting with ``= + - @`` (after any
    leading spaces) gets a leading ``'``, as OWASP advises; numbers and other text are unchanged."""
    if isinstance(value, str) and value.lstrip(" ").startswith(_FORMULA_STARTS):
        return "'" + value
    return value


class _SafeWriter:
    """``csv.writer`` whose every cell goes through ``_csv_cell``."""

    def __init__(self, out: io.StringIO) -> None:
        self._writer = csv.writer(out, lineterminator="\n")

    def writerow(self, row: Iterable[Any]) -> None:
        self._writer.writerow([_csv_cell(v) for v in row])


def _csv(reg: dict[str, Any]) -> str:
    out = io.StringIO()
    writer = _SafeWriter(out)
    writer.writerow(CSV_COLUMNS)
    controller = reg["controller"]
    for p in reg["partners"]:
        agreements = "; ".join(f"{a['reference']} {a['text']}" for a in p["agreements"])
        future = [a["days_until_expiry"] for a in p["agreements"]
                  if a["days_until_expiry"] is not None and a["days_until_expiry"] >= 0]
        next_expiry = min(future) if future else ""
        for fl in p["flows"]:
            for f in fl["fields"]:
                writer.writerow([
                    p["name"], p["title"] or "", p["role"], p["kind"], p["location"], p["transfer"] or "",
                    p["agreement_status"], agreements, next_expiry, fl["rule"],
                    fl["purposes_text"], " ".join(fl["purpose_kinds"].values()), fl["basis"], fl["law"] or "",
                    fl["consent_topic"] or "", fl["art9"] or "", fl["dpia"] or "",
                    f["dataset"], f["field"], f["sensitivity"], f["marker"] or "", f["transform"] or "",
                    " ".join(f["blocked_by"]), fl["students"], fl["window"]["text"],
                    fl["window"]["effective_text"], fl["retain_in_force"] or "", fl["retain_source"] or "",
                    controller["name"] or "", controller["dpo"] or "", " ".join(fl["missing"]),
                    fl["note"] or "", fl["location"] or ""])
    return out.getvalue()


# -- markdown ----------------------------------------------------------------

#: every character that ends a line in some renderer (CommonMark, GFM, HTML, Unicode line separators)
_LINE_BREAKS = str.maketrans({c: " " for c in "\r\n\v\f\x1c\x1d\x1e\x85\u2028\u2029"})

#: Markdown punctuation that can start emphasis, links, code, strike-through or a table cell; escaped
_MD_PUNCTUATION = str.maketrans({c: "\\" + c for c in "\\`*[]~|!#"})

#: an underscore that could open or close emphasis (one inside a word, as in ``uu_onderzoek``, cannot)
_MD_UNDERSCORE = re.compile(r"(?<![0-9A-Za-z])_|_(?![0-9A-Za-z])")


def _md(text: Any) -> str:
    """Policy text as inert inline Markdown: one line, no HTML, no emphasis, links or table breaks.

    Line breaks become spaces (a note cannot start a heading or a list), ``<``, ``>`` and ``&``
    become entities (no raw HTML reaches the page) and Markdown punctuation is backslash-escaped.
    """
    plain = str(text).translate(_LINE_BREAKS)
    plain = plain.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _MD_UNDERSCORE.sub(r"\\_", plain.translate(_MD_PUNCTUATION))


def _md_code(text: Any) -> str:
    """Policy text as a Markdown code span (one line; fenced by enough backticks; ``|`` escaped for tables)."""
    plain = str(text).translate(_LINE_BREAKS).replace("|", "\\|")
    run = fence = 0
    for ch in plain:
        run = run + 1 if ch == "`" else 0
        fence = max(fence, run)
    ticks = "`" * (fence + 1)
    pad = " " if plain.startswith("`") or plain.endswith("`") or not plain.strip(" ") else ""
    return f"{ticks}{pad}{plain}{pad}{ticks}"


def _md_field(f: dict[str, Any]) -> str:
    label = _md_code(_field_label(f, qualified=False))
    if f["marker"]:
        label += f" **[{f['marker']}]**"
    if f.get("blocked_by"):
        label += f" ~~blocked by {_md(', '.join(f['blocked_by']))}~~"
    return label


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def _markdown(reg: dict[str, Any]) -> str:
    """Every piece of policy text goes through ``_md`` (inline text) or ``_md_code`` (a code span)."""
    s = reg["summary"]
    lines = [
        f"# {_md(reg['title'])}",
        "",
        f"Policy version {_md_code(reg['policy_version'])}, status on {_md(reg['today'])} ({_md(reg['timezone'])}).",
        "",
        f"* {_count(s['partners'], 'partner')}, {_count(s['permits'], 'permit rule')}, "
        f"{_count(s['forbids'], 'forbid rule')}, {_count(s['purposes'], 'purpose')}",
        f"* {_count(s['special_flows'], 'flow')} with special-category data (art. 9), "
        f"{s['national_id_flows']} with the BSN",
    ]
    for e in s["expiring_agreements"]:
        lines.append(f"* agreement {_md_code(e['reference'])} with **{_md(e['partner'])}** ends {_md(e['until'])} "
                     f"({e['days_until_expiry']} days)")
    for name in s["partners_without_valid_agreement"]:
        lines.append(f"* **{_md(name)}** has no valid agreement today: it receives nothing")
    gaps = reg["art30_gaps"]
    if gaps or reg["controller"]["missing"]:
        lines.append(f"* **{len(gaps)} register rows lack what GDPR art. 30(1) asks for** (see the partners)")
    c = reg["controller"]
    lines += ["", "## Controller", "",
              f"* {_md(c['name'] or '(no controller declared: the defaults of a public school board apply)')}, "
              f"{_md(c['kind'])} (a public authority cannot rely on legitimate interest, art. 6(1))",
              f"* data protection officer: {_md(c['dpo'])}" if c["dpo"] else
              f"* data protection officer: **missing**: {_md(ART30['dpo'])}",
              f"* own time to assess a data breach: {_md(c['breach_handling'])} (of the 72 hours of art. 33)"]
    lines += ["", "## Partners", ""]
    for p in reg["partners"]:
        lines += [f"### {_md(p['name'])}" + (f" — {_md(p['title'])}" if p["title"] else ""), ""]
        lines.append(f"* {_md(_partner_facts(p))}")
        if "transfer" in p["missing"]:
            lines.append(f"* **missing**: {_md(ART30['transfer'])}")
        if p["agreements"]:
            for a in p["agreements"]:
                lines.append(f"* agreement {_md_code(a['reference'])}: {_md(_agreement_line(a))}; "
                             f"{_md(_agreement_terms(a))}")
            for g in p["gaps"]:
                lines.append(f"* **gap**: no agreement from {g['from']} to {g['until']}")
        else:
            lines.append("* no processing agreement (the partner is not a processor); rule windows apply")
        if not p["flows"]:
            lines.append("* receives nothing (no permit rule)")
        lines.append("")
        if p["flows"]:
            lines += ["| rule | purpose | basis | fields | students | window | retain | missing (art. 30) |",
                      "|---|---|---|---|---|---|---|---|"]
            for fl in p["flows"]:
                by_ds: dict[str, list[str]] = {}
                for f in fl["fields"]:
                    by_ds.setdefault(f["dataset"], []).append(_md_field(f))
                fields = "<br>".join(f"{_md(ds)}: {', '.join(v)}" for ds, v in by_ds.items())
                basis = fl["basis_text"] + (f"; DPIA: {fl['dpia']}" if fl["dpia"] else "") \
                    + (f"; who consents: {fl['consent_rule']}" if fl["consent_rule"] else "")
                purpose = fl["purposes_text"] + "".join(f" ({k})" for k in fl["purpose_kinds"].values())
                missing = f"**{_md(_gaps_text(fl['missing']))}**" if fl["missing"] else "—"
                window = fl["window"]["effective_text"]
                if fl["window"]["status"] in ("expired", "expiring", "not started", "never"):
                    window += f" ({fl['window']['status']})"
                if fl["window"]["bounded_by_agreements"]:
                    window += f"; within the agreements (rule: {fl['window']['text']})"
                lines.append(f"| {_md_code(fl['rule'])} | "
                             + " | ".join(_md(x) for x in (purpose, basis))
                             + f" | {fields} | "
                             + " | ".join(_md(x) for x in (fl["students"], window, _retain_text(fl)))
                             + f" | {missing} |")
            lines.append("")
        if p["restrictions"]:
            lines.append("* forbid rules that apply: " + "; ".join(
                f"{_md_code(r['rule'])} ({_md(_restriction_text(r))})" for r in p["restrictions"]))
        for fl in p["flows"]:
            if fl["note"]:
                lines.append(f"* {_md_code(fl['rule'])} ({_md(fl['location'])}): {_md(fl['note'])}")
        if lines[-1]:
            lines.append("")
    lines += ["## Partner × dataset", ""]
    datasets = reg["matrix"]["datasets"]
    lines += ["| partner | " + " | ".join(_md(d) for d in datasets) + " |", "|---" * (len(datasets) + 1) + "|"]
    for row in reg["matrix"]["rows"]:
        cells = []
        for ds in datasets:
            c = row["cells"][ds]
            text = str(c["count"]) if c["count"] else "—"
            text += "".join(f" [{m}]" for m in c["markers"])
            if c["fields"]:
                text += ": " + _md(", ".join(c["fields"]))
            cells.append(text)
        lines.append(f"| {_md(row['partner'])} | " + " | ".join(cells) + " |")
    lines += ["", "## Never shared (forbid rules)", ""]
    if not reg["forbids"]:
        lines.append("None.")
    for r in reg["forbids"]:
        lines.append(f"* {_md_code(r['rule'])}: {_md_code(r['fields_text'])} to {_md(r['partners_text'])} "
                     f"({_md(r['purposes_text'])}); students: {_md(r['students'])}"
                     + (f". {_md(r['note'])}" if r["note"] else ""))
    lines += ["", "## Consent topics", ""]
    if not reg["consent_topics"]:
        lines.append("None declared.")
    for c in reg["consent_topics"]:
        extra = " (parental consent stops counting at 16)" if c["reconfirm_at_16"] else ""
        lines.append(f"* {_md_code(c['name'])}: {_md(c['title'] or '')}{extra}")
    lines += ["", "## Purposes", "", "| purpose | kind | title | partners |", "|---|---|---|---|"]
    for u in reg["purposes"]:
        lines.append(f"| {_md_code(u['name'])} | {_md(u['kind'])} | {_md(u['title'] or '')} | "
                     f"{_md(', '.join(u['partners']) or '—')} |")
    lines += ["", "## Catalogue", "", "| dataset | field | type | sensitivity |", "|---|---|---|---|"]
    for d in reg["catalogue"]:
        for f in d["fields"]:
            mark = f" **[{f['marker']}]**" if f["marker"] else ""
            role = f" ({f['role']})" if f["role"] else ""
            lines.append(f"| {_md(d['name'])} | {_md_code(f['field'])}{_md(role)} | {_md(f['type'])} | "
                         f"{_md(f['sensitivity'])}{mark} |")
    return "\n".join(lines) + "\n"


# -- html --------------------------------------------------------------------

_CSS = """
:root { --ink: #1d2433; --muted: #5b6477; --line: #d9dee8; --bg: #f6f7fb; }
* { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; text-size-adjust: 100%; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, Arial, sans-serif; color: var(--ink);
       margin: 0; background: var(--bg); overflow-wrap: break-word; }
main { max-width: 1200px; margin: 0 auto; padding: 24px 32px 48px; background: #fff; }
h1 { font-size: 26px; margin: 0 0 4px; }
h2 { font-size: 19px; margin: 32px 0 10px; padding-bottom: 4px; border-bottom: 2px solid var(--ink); }
h3 { font-size: 16px; margin: 0; }
.sub { color: var(--muted); margin: 0 0 16px; }
.cards { display: flex; flex-wrap: wrap; gap: 10px; margin: 12px 0; }
.card { border: 1px solid var(--line); border-radius: 6px; padding: 8px 14px; min-width: 130px; }
.card b { display: block; font-size: 22px; }
.alert { border-left: 4px solid #c77700; background: #fff6e6; padding: 6px 12px; margin: 6px 0; }
.alert.bad { border-color: #b3261e; background: #fdecea; }
section.partner { border: 1px solid var(--line); border-radius: 8px; padding: 14px 16px; margin: 14px 0;
                  break-inside: avoid-page; }
.partner header { display: flex; justify-content: space-between; align-items: baseline; gap: 6px 12px;
                  flex-wrap: wrap; }
.partner header .badges { display: flex; flex-wrap: wrap; gap: 4px; }
.partner .title { color: var(--muted); }
.facts { margin: 6px 0 0; color: var(--ink); }
.facts span { margin-right: 14px; display: inline-block; }
ul.agreements { margin: 8px 0; padding-left: 18px; }
ul.agreements li { margin: 4px 0; }
table { border-collapse: collapse; width: 100%; margin: 8px 0; }
th, td { border: 1px solid var(--line); padding: 5px 7px; text-align: left; vertical-align: top; }
th { background: #eef1f7; font-weight: 600; }
tr.group th { background: #dde3ee; font-size: 14px; }
td.num { text-align: center; }
code { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 0.9em;
       overflow-wrap: anywhere; }
.badge { display: inline-block; border-radius: 10px; padding: 0 7px; font-size: 0.82em; font-weight: 600;
         line-height: 18px; white-space: nowrap; border: 1px solid transparent; }
.b-national_id { background: #b3261e; color: #fff; }
.b-criminal { background: #4a148c; color: #fff; }
.b-special { background: #e8710a; color: #fff; }
.b-sensitive { background: #fff3cd; color: #7a5a00; border-color: #e6c65c; }
.b-pseudonym { background: #e3f2fd; color: #0d47a1; }
.b-personal { background: #eef1f7; color: #3b4356; }
.b-anonymous { background: #e8f5e9; color: #1b5e20; }
.s-active { background: #e8f5e9; color: #1b5e20; }
.s-expiring { background: #fff3cd; color: #7a5a00; border-color: #e6c65c; }
.s-expired, .s-gap, .s-none, .s-never, .s-missing { background: #fdecea; color: #b3261e; border-color: #f2b8b5; }
.s-not-started { background: #eef1f7; color: #3b4356; }
.field { white-space: nowrap; margin-right: 6px; display: inline-block; }
.blocked { text-decoration: line-through; color: var(--muted); }
.ds { color: var(--muted); font-weight: 600; }
.note { color: var(--muted); font-size: 0.9em; }
.consent { font-size: 0.9em; margin-top: 4px; padding: 3px 6px; border-left: 3px solid #0d47a1;
           background: #f1f6fd; }
.missing { font-size: 0.9em; margin-top: 4px; padding: 3px 6px; border-left: 3px solid #b3261e;
           background: #fdecea; }
.matrix td { text-align: center; }
.matrix td:first-child, .matrix th:first-child { text-align: left; }
.matrix .names { display: block; font-size: 0.82em; color: var(--muted); text-align: left; line-height: 1.3;
                 margin-top: 2px; }
.legend .badge { margin-right: 6px; }
table.flows td[data-label="Window"] { min-width: 6.8em; }
table.flows td[data-label="Retain"] { min-width: 5em; }
dl.kv { display: grid; grid-template-columns: max-content 1fr; gap: 4px 14px; margin: 8px 0; }
dl.kv dt { font-weight: 600; }
dl.kv dd { margin: 0; }
/* a phone: every wide table becomes a list of cards, one per row, each cell labelled */
@media screen and (max-width: 760px) {
  main { padding: 14px 12px 32px; }
  h1 { font-size: 22px; }
  section.partner { padding: 10px 10px; }
  table.stack, table.stack tbody, table.stack tr, table.stack td { display: block; width: 100%; }
  table.stack thead { display: none; }
  table.stack { border: 0; }
  table.stack tr { border: 1px solid var(--line); border-radius: 6px; margin: 0 0 10px; }
  table.stack td { border: 0; border-top: 1px solid var(--line); text-align: left; }
  table.stack td:first-child { border-top: 0; background: #eef1f7; }
  table.stack td[data-label]::before { content: attr(data-label); display: block; font-size: 0.78em;
                                       font-weight: 600; color: var(--muted); text-transform: uppercase; }
  table.stack td.empty { display: none; }
  table.flows td[data-label] { min-width: 0; }
  dl.kv { grid-template-columns: 1fr; gap: 0; }
  dl.kv dd { margin-bottom: 6px; }
  .field { white-space: normal; }
}
@media print {
  body { background: #fff; font-size: 11px; }
  main { padding: 0; max-width: none; }
  section.partner { break-inside: avoid; }
  h2 { break-after: avoid; }
  tr { break-inside: avoid; }
  .field { white-space: normal; }
  .badge { font-size: 9.5px; line-height: 14px; padding: 0 5px; }
  a { color: inherit; text-decoration: none; }
}
"""


def _e(text: Any) -> str:
    return html.escape("" if text is None else str(text), quote=True)


def _badge(sensitivity: str | None, label: str | None = None) -> str:
    if not sensitivity:
        return ""
    return f'<span class="badge b-{_e(sensitivity)}">{_e(label or sensitivity)}</span>'


def _status_badge(status: str, text: str | None = None) -> str:
    cls = {"no valid agreement": "none", "not started": "not-started",
           "no agreement required": "not-started", "covered": "active"}.get(status, status)
    text = text or {"covered": "agreement valid"}.get(status, status)
    return f'<span class="badge s-{_e(cls)}">{_e(text)}</span>'


def _coverage_badge(p: dict[str, Any]) -> str:
    """The partner's agreement state in one badge that agrees with its agreement lines."""
    if p["agreement_status"] != "covered":
        return _status_badge(p["agreement_status"])
    days = p["coverage_days_left"]
    if days is None:
        return _status_badge("active", "agreement valid, no end date")
    if days <= EXPIRING_DAYS:
        return _status_badge("expiring", f"agreement expiring, {days} days left")
    return _status_badge("active", f"agreement valid until {p['covered_until']}")


def _html_field(f: dict[str, Any]) -> str:
    label = f"<code>{_e(_field_label(f, qualified=False))}</code>"
    if f["sensitivity"] in MARKERS:
        label += " " + _badge(f["sensitivity"], f["marker"])
    elif f["sensitivity"] == "pseudonym" or f.get("transform") == "pseudonym":
        label += " " + _badge("pseudonym", "pseudonym")
    if f.get("blocked_by"):
        # said in words, not only struck through: a phone and a printout have no hover
        return (f'<span class="field blocked">{label}</span>'
                f'<span class="note">(blocked by {_e(", ".join(f["blocked_by"]))})</span> ')
    return f'<span class="field">{label}</span>'


def _html_window(fl: dict[str, Any]) -> str:
    """The days a flow can take effect (within the partner's agreements), one window per line."""
    w = fl["window"]
    parts = [_e(window_text(_window_of(x))).replace(" to ", " to<br>") for x in w["effective"]] \
        or [_e(w["effective_text"])]
    text = "<br>".join(parts)
    if w["status"] in ("expired", "expiring", "not started", "never"):
        days = w["days_until_end"]
        label = f"expiring, {days} days left" if w["status"] == "expiring" else w["status"]
        text += " " + _status_badge(w["status"], label)
    if w["bounded_by_agreements"]:
        text += f'<div class="note">within the agreements (rule: {_e(w["text"])})</div>'
    return text


def _window_of(d: dict[str, Any]) -> WindowInfo:
    return WindowInfo(*(datetime.date.fromisoformat(d[k]) if d[k] else None for k in ("from", "until")))


def _html_partner(p: dict[str, Any]) -> str:
    out = [f'<section class="partner" id="partner-{_e(p["name"])}">', "<header>",
           f'<h3>{_e(p["name"])} <span class="title">{_e(p["title"] or "")}</span></h3>',
           '<div class="badges">']
    if p["special"]:
        out.append(_badge("special", "special data"))
    if p["national_id"]:
        out.append(_badge("national_id", "receives BSN"))
    out.append(_coverage_badge(p))
    out += ["</div>", "</header>", f'<p class="facts">{_e(_partner_facts(p))}</p>']
    if "transfer" in p["missing"]:
        out.append(f'<div class="missing"><b>Missing (GDPR art. 30(1)):</b> {_e(ART30["transfer"])}</div>')
    out.append('<ul class="agreements">')
    if not p["agreements"]:
        out.append("<li>No processing agreement (the partner is not a processor); the rule windows apply.</li>")
    for a in p["agreements"]:
        out.append(f"<li>Agreement <code>{_e(a['reference'])}</code>: {_e(a['text'])} "
                   f"{_status_badge(a['status'], _agreement_state(a))}"
                   f'<div class="note">{_e(_agreement_terms(a))}</div></li>')
    for g in p["gaps"]:
        out.append(f"<li>{_status_badge('gap', 'gap')} no valid agreement from {_e(g['from'])} "
                   f"to {_e(g['until'])}</li>")
    out.append("</ul>")
    if p["flows"]:
        out += ['<table class="stack flows">', "<thead><tr><th>Rule</th><th>Purpose</th><th>Basis</th>"
                "<th>Fields</th><th>Students</th><th>Window</th><th>Retain</th></tr></thead>", "<tbody>"]
        for fl in p["flows"]:
            by_ds: dict[str, list[str]] = {}
            for f in fl["fields"]:
                by_ds.setdefault(f["dataset"], []).append(_html_field(f))
            fields = "<br>".join(f'<span class="ds">{_e(ds)}</span> ' + " ".join(v) for ds, v in by_ds.items())
            titles = [t for t in fl["purpose_titles"].values() if t]
            purpose = f"<code>{_e(fl['purposes_text'])}</code>"
            purpose += "".join(f' <span class="badge s-not-started">{_e(k)}</span>'
                               for k in fl["purpose_kinds"].values())
            if titles:
                purpose += f'<div class="note">{_e("; ".join(titles))}</div>'
            basis = _e(fl["basis_text"])
            if fl["dpia"]:
                basis += f"<div class=\"note\">DPIA: {_e(fl['dpia'])}</div>"
            if fl["consent_rule"]:
                basis += f'<div class="consent"><b>Who consents:</b> {_e(fl["consent_rule"])}</div>'
            note = f'<div class="note">{_e(fl["note"])}</div>' if fl["note"] else ""
            loc = f'<div class="note">{_e(fl["location"])}</div>' if fl["location"] else ""
            if fl["missing"]:
                loc += (f'<div class="missing"><b>Missing (GDPR art. 30(1)):</b> '
                        f'{_e(_gaps_text(fl["missing"]))}</div>')
            out.append(f'<tr><td data-label="Rule"><code>{_e(fl["rule"])}</code>{loc}</td>'
                       f'<td data-label="Purpose">{purpose}</td><td data-label="Basis">{basis}</td>'
                       f'<td data-label="Fields">{fields}{note}</td>'
                       f'<td data-label="Students">{_e(fl["students"])}</td>'
                       f'<td data-label="Window">{_html_window(fl)}</td>'
                       f'<td data-label="Retain">{_e(_retain_text(fl))}</td></tr>')
        out += ["</tbody>", "</table>"]
    else:
        out.append('<p class="note">Receives nothing: no permit rule names this partner.</p>')
    if p["restrictions"]:
        items = "; ".join(f"<code>{_e(r['rule'])}</code> ({_e(_restriction_text(r))})"
                          for r in p["restrictions"])
        out.append(f'<p class="note">Forbid rules that apply: {items}</p>')
    out.append("</section>")
    return "\n".join(out)


def _html(reg: dict[str, Any]) -> str:
    s = reg["summary"]
    body = [f"<h1>{_e(reg['title'])}</h1>",
            f'<p class="sub">Policy version <code>{_e(reg["policy_version"])}</code> · status on '
            f"{_e(reg['today'])} ({_e(reg['timezone'])})</p>",
            '<div class="cards">']
    for label, value in (("partners", s["partners"]), ("permit rules", s["permits"]),
                         ("forbid rules", s["forbids"]), ("purposes", s["purposes"]),
                         ("flows with art. 9 data", s["special_flows"]),
                         ("flows with the BSN", s["national_id_flows"])):
        body.append(f'<div class="card"><b>{_e(value)}</b>{_e(label)}</div>')
    body.append("</div>")
    for e in s["expiring_agreements"]:
        body.append(f'<div class="alert">Agreement <code>{_e(e["reference"])}</code> with '
                    f'<a href="#partner-{_e(e["partner"])}">{_e(e["partner"])}</a> ends {_e(e["until"])} '
                    f"({_e(e['days_until_expiry'])} days).</div>")
    for name in s["partners_without_valid_agreement"]:
        body.append(f'<div class="alert bad"><a href="#partner-{_e(name)}">{_e(name)}</a> has no valid '
                    "agreement today and receives nothing.</div>")
    for g in reg["art30_gaps"]:
        where = f"flow <code>{_e(g['rule'])}</code> to " if g["rule"] else "partner "
        body.append(f'<div class="alert bad">Register row incomplete: {where}<a href="#partner-{_e(g["partner"])}">'
                    f'{_e(g["partner"])}</a> lacks {_e(_gaps_text(g["missing"]))}.</div>')
    c = reg["controller"]
    dpo = _e(c["dpo"]) if c["dpo"] else f'<span class="missing"><b>missing:</b> {_e(ART30["dpo"])}</span>'
    public = " (a public authority: no legitimate interest for its tasks, art. 6(1))" if c["kind"] == "public" else ""
    body += ["<h2>Controller</h2>", '<dl class="kv">',
             f'<dt>Controller</dt><dd>{_e(c["name"] or "(not declared: the defaults of a public school board apply)")}'
             "</dd>",
             f"<dt>Kind</dt><dd>{_e(c['kind'])}{_e(public)}</dd>",
             f"<dt>Data protection officer</dt><dd>{dpo}</dd>",
             f"<dt>Breach handling</dt><dd>{_e(c['breach_handling'])} to assess a breach; with a processor's "
             "deadline within the 72 hours of art. 33</dd>", "</dl>"]
    body.append('<p class="legend">Sensitivity: ' + " ".join(
        _badge(k, MARKERS.get(k, k)) for k in ("national_id", "criminal", "special", "sensitive",
                                                 "pseudonym", "personal", "anonymous")) + "</p>")

    datasets = reg["matrix"]["datasets"]
    body += ["<h2>Partner × dataset</h2>", '<table class="matrix stack">',
             "<thead><tr><th>Partner</th>" + "".join(f"<th>{_e(d)}</th>" for d in datasets) + "</tr></thead>",
             "<tbody>"]
    for row in reg["matrix"]["rows"]:
        cells = []
        for ds in datasets:
            c = row["cells"][ds]
            if not c["count"]:
                cells.append(f'<td class="num empty" data-label="{_e(ds)}">—</td>')
                continue
            badge = "".join(" " + _badge(_MARKER_CLASS[m], m) for m in c["markers"])
            names = f'<span class="names">{_e(", ".join(c["fields"]))}</span>'
            cells.append(f'<td class="num" data-label="{_e(ds)}">{c["count"]}{badge}{names}</td>')
        body.append(f'<tr><td><a href="#partner-{_e(row["partner"])}">{_e(row["partner"])}</a></td>'
                    + "".join(cells) + "</tr>")
    body += ["</tbody>", "</table>", '<p class="note">The fields each partner may receive, by dataset, with '
             "their number; badges mark BSN, art. 9 and art. 10 data, else sensitive data.</p>",
             "<h2>Partners</h2>"]
    body += [_html_partner(p) for p in reg["partners"]]

    body += ["<h2>Never shared (forbid rules)</h2>", '<table class="stack">',
             "<thead><tr><th>Rule</th><th>Partners</th><th>Purposes</th><th>Fields</th><th>Students</th>"
             "</tr></thead>", "<tbody>"]
    for r in reg["forbids"]:
        fields = f"<code>{_e(r['fields_text'])}</code>"
        note = f'<div class="note">{_e(r["note"])}</div>' if r["note"] else ""
        body.append(f'<tr><td data-label="Rule"><code>{_e(r["rule"])}</code></td>'
                    f'<td data-label="Partners">{_e(r["partners_text"])}</td>'
                    f'<td data-label="Purposes">{_e(r["purposes_text"])}</td>'
                    f'<td data-label="Fields">{fields}{note}</td>'
                    f'<td data-label="Students">{_e(r["students"])}</td></tr>')
    body += ["</tbody>", "</table>", "<h2>Consent topics</h2>",
             f'<p class="note">For every topic: {_e(CONSENT_RULE)}.</p>', "<ul>"]
    for c in reg["consent_topics"]:
        extra = " — stricter: parental consent stops counting at 16" if c["reconfirm_at_16"] else ""
        body.append(f"<li><code>{_e(c['name'])}</code>: {_e(c['title'] or '')}{_e(extra)}</li>")
    body += ["</ul>", "<h2>Purposes</h2>", '<table class="stack">',
             "<thead><tr><th>Purpose</th><th>Kind</th><th>Title</th><th>Partners</th></tr></thead>", "<tbody>"]
    for u in reg["purposes"]:
        body.append(f'<tr><td data-label="Purpose"><code>{_e(u["name"])}</code></td>'
                    f'<td data-label="Kind">{_e(u["kind"])}</td><td data-label="Title">{_e(u["title"] or "")}</td>'
                    f'<td data-label="Partners">{_e(", ".join(u["partners"]) or "—")}</td></tr>')
    body += ["</tbody>", "</table>", "<h2>Catalogue</h2>", "<table>",
             "<thead><tr><th>Field</th><th>Type</th><th>Sensitivity</th></tr></thead>", "<tbody>"]
    for d in reg["catalogue"]:
        title = f" · {d['title']}" if d["title"] else ""
        subject = " · subject (the students)" if d["subject"] else ""
        body.append(f'<tr class="group"><th colspan="3">{_e(d["name"])}{_e(title)}{_e(subject)}</th></tr>')
        for f in d["fields"]:
            role = f' <span class="badge s-not-started">{_e(f["role"])}</span>' if f["role"] else ""
            body.append(f"<tr><td><code>{_e(f['field'])}</code>{role}</td><td>{_e(f['type'])}</td>"
                        f"<td>{_badge(f['sensitivity'], f['sensitivity'])}</td></tr>")
    body += ["</tbody>", "</table>"]
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
            f"<title>{_e(reg['title'])} · {_e(reg['today'])}</title>\n<style>{_CSS}</style>\n</head>\n"
            "<body>\n<main>\n" + "\n".join(body) + "\n</main>\n</body>\n</html>\n")
