"""Benchmark peers: the same policy set and scenario in Cedar (cedarpy) and Casbin (casbin).

A loaded avgpolicy model is translated rule by rule, so a peer holds the same
number of rules as the set it is compared with. Both peers decide one field per
request (Cedar: a request per field, the action is the field; Casbin: an
``enforce`` per field) and deny-overrides, as the policy language does.

Student conditions keep the language's meaning in the peers' own terms: the
adapter that turns a student record into peer input leaves out missing and
ill-typed values (what a schema-checked import does), a permit needs its
condition to be *known true* (``has`` guards in Cedar, ``!= None`` in Casbin),
and a forbid applies when its condition is *possibly true* (true or unknown).
Age and consent are computed by the adapter, as a Cedar or Casbin user would,
because neither language computes them. The benchmarks time the peers' decision
calls only; the adapters run before the clock starts (a lower bound for peers).
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from avgpolicy import model as m
from avgpolicy import nodes as n

_PY_TYPES: dict[str, Callable[[Any], bool]] = {
    "text": lambda v: type(v) is str,
    "int": lambda v: type(v) is int,
    "bool": lambda v: type(v) is bool,
    "date": lambda v: type(v) is datetime.date,
    "set": lambda v: isinstance(v, (set, frozenset, list, tuple)) and all(type(x) is str for x in v),
}


def day_number(day: datetime.date) -> int:
    """A date as the integer ``YYYYMMDD``: ordered like the date, and a plain number in both peers."""
    return day.year * 10_000 + day.month * 100 + day.day


def _age(born: datetime.date, day: datetime.date) -> int:
    return day.year - born.year - ((day.month, day.day) < (born.month, born.day))


def clean_attributes(catalogue: m.Catalogue, student: Mapping[str, Any]) -> dict[str, Any]:
    """The subject fields present with the catalogue's type, dates as day numbers, sets as sorted lists."""
    out: dict[str, Any] = {}
    for name, info in catalogue.subject_fields.items():
        value = student.get(name)
        if value is None or not _PY_TYPES[info.type](value):
            continue
        if info.type == "date":
            value = day_number(value)
        elif info.type == "set":
            value = sorted(value)
        out[name] = value
    return out


def valid_consents(policy_model: m.PolicyModel, student: Mapping[str, Any], day: datetime.date) -> list[str]:
    """Topics with valid consent at ``day`` (spec section 4), as the application computes them for a peer."""
    born = student.get(m.BIRTHDATE_FIELD)
    consents = student.get("consents")
    if type(born) is not datetime.date or not isinstance(consents, Mapping):
        return []
    out = []
    for topic, c in consents.items():
        info = policy_model.consents.get(topic)
        get = c.get if isinstance(c, Mapping) else lambda k, c=c: getattr(c, k, None)
        given, withdrawn, by = get("given"), get("withdrawn"), get("by")
        if info is None or type(given) is not datetime.date or given > day:
            continue
        if withdrawn is not None and withdrawn <= day:
            continue
        adult_then = _age(born, given) >= 16
        if by != ("student" if adult_then else "parent"):
            continue
        if by == "parent" and info.reconfirm_at_16 and _age(born, day) >= 16:
            continue
        out.append(topic)
    return sorted(out)


# ---------------------------------------------------------------------------
# Conditions: T(e) is "e is known to be true", P(e) is "e is true or unknown".

class _Condition:
    """Writes a condition in a peer's expression syntax (subclasses give the syntax)."""

    AND, OR, TRUE, FALSE = " && ", " || ", "true", "false"

    def __init__(self, catalogue: m.Catalogue) -> None:
        self.types = {name: f.type for name, f in catalogue.subject_fields.items()}

    def neg(self, text: str) -> str:
        return f"!({text})"

    def literal(self, lit: n.Literal) -> str:
        if lit.type == "date":
            assert isinstance(lit.value, datetime.date)
            return str(day_number(lit.value))
        if lit.type == "bool":
            return self.TRUE if lit.value else self.FALSE
        return json.dumps(lit.value) if lit.type == "text" else str(lit.value)

    def ref(self, name: str) -> str:
        raise NotImplementedError

    def known(self, name: str) -> str:
        raise NotImplementedError

    def member(self, element: str, container: str) -> str:
        raise NotImplementedError

    def one_of(self, operand: str, values: Sequence[str]) -> str:
        raise NotImplementedError

    def operand(self, op: n.Literal | n.Ref) -> str:
        return self.ref(op.name) if isinstance(op, n.Ref) else self.literal(op)

    def atom(self, e: n.Expr) -> tuple[str, list[str]]:
        """A comparison's text, and the names it reads."""
        if isinstance(e, n.Compare):
            refs = [o.name for o in (e.left, e.right) if isinstance(o, n.Ref)]
            return f"{self.operand(e.left)} {e.op} {self.operand(e.right)}", refs
        if isinstance(e, n.InList):
            refs = [e.operand.name] if isinstance(e.operand, n.Ref) else []
            text = self.one_of(self.operand(e.operand), [self.literal(v) for v in e.values])
        elif isinstance(e, n.InRange):
            refs = [e.operand.name] if isinstance(e.operand, n.Ref) else []
            x = self.operand(e.operand)
            text = f"{x} >= {self.literal(e.low)}{self.AND}{x} <= {self.literal(e.high)}"
        elif isinstance(e, n.InSet):
            refs = [o.name for o in (e.element, e.container) if isinstance(o, n.Ref)]
            text = self.member(self.operand(e.element), self.ref(e.container.name))
        else:
            raise TypeError(f"not a comparison: {e!r}")
        return (self.neg(text) if e.negated else f"({text})"), refs

    def expr(self, e: n.Expr, sure: bool) -> str:
        """``sure``: the text of T(e); otherwise of P(e)."""
        if isinstance(e, n.And):
            return "(" + self.AND.join(self.expr(x, sure) for x in e.items) + ")"
        if isinstance(e, n.Or):
            return "(" + self.OR.join(self.expr(x, sure) for x in e.items) + ")"
        if isinstance(e, n.Not):
            return self.neg(self.expr(e.operand, not sure))
        text, refs = self.atom(e)
        if not refs:
            return text
        return self.guard(self.AND.join(self.known(r) for r in dict.fromkeys(refs)), text, sure)

    def guard(self, known: str, text: str, sure: bool) -> str:
        """``text`` where ``known`` holds; else false (``sure``) or true (unknown counts as possibly true)."""
        if sure:
            return f"({known}{self.AND}{text})"
        return f"({self.neg(known)}{self.OR}{text})"


def _window_text(w: m.WindowInfo, day: str, and_: str) -> list[str]:
    parts = []
    if w.start is not None:
        parts.append(f"{day} >= {day_number(w.start)}")
    if w.end is not None:
        parts.append(f"{day} <= {day_number(w.end)}")
    return parts


# ---------------------------------------------------------------------------
# Cedar

class _CedarCondition(_Condition):
    def ref(self, name: str) -> str:
        return "context.age" if name == m.AGE else f"resource.{name}"

    def known(self, name: str) -> str:
        return "context has age" if name == m.AGE else f"resource has {name}"

    def member(self, element: str, container: str) -> str:
        return f"{container}.contains({element})"

    def guard(self, known: str, text: str, sure: bool) -> str:
        # Cedar's validator follows `has` into `if` and `&&`, not into `!has || ...`
        return f"(if {known} then {text} else {self.TRUE if not sure else self.FALSE})"

    def one_of(self, operand: str, values: Sequence[str]) -> str:
        return f"[{', '.join(values)}].contains({operand})"


_CEDAR_TYPES = {"text": "String", "int": "Long", "bool": "Bool", "date": "Long", "set": "Set<String>"}


def _cedar_uid(kind: str, name: str) -> str:
    return f"{kind}::{json.dumps(name)}"


def _cedar_selector(sel: m.NameSet, var: str, kind: str | None) -> list[str]:
    def item(x: str) -> str:
        return _cedar_uid(kind, x) if kind else json.dumps(x)
    names = sorted(sel.names)
    if not names:
        return [] if sel.everything else ["false"]
    listed = f"[{', '.join(item(x) for x in names)}]"
    if len(names) == 1:
        test = f"{var} == {item(names[0])}"
    else:
        test = f"{var} in {listed}" if kind else f"{listed}.contains({var})"
    return [f"!({test})"] if sel.everything else [test]


def cedar_schema(policy_model: m.PolicyModel) -> str:
    """A Cedar schema for the translated set: partners, students and one action per field."""
    attrs = ", ".join(f'"{name}"?: {_CEDAR_TYPES[f.type]}'
                      for name, f in policy_model.catalogue.subject_fields.items())
    actions = ", ".join(json.dumps(ref) for ref in policy_model.catalogue.fields)
    return (
        "entity Partner;\n"
        f"entity Student {{ {attrs} }};\n"
        'type Ctx = { "purpose": String, "day": Long, "age"?: Long, "consents": Set<String>, "gone": Bool };\n'
        f"action {actions} appliesTo {{ principal: Partner, resource: Student, context: Ctx }};\n"
    )


def cedar_policies(policy_model: m.PolicyModel) -> str:
    """The set as Cedar policies: one per rule, plus one forbid per partner with agreements."""
    cond = _CedarCondition(policy_model.catalogue)
    out = []
    for r in policy_model.rules:
        if not r.grants:
            continue
        actions = ", ".join(_cedar_uid("Action", g.ref) for g in r.grants)
        head, when = "principal", []
        if not r.partners.everything and len(r.partners.names) == 1:
            (only,) = r.partners.names
            head = f"principal == {_cedar_uid('Partner', only)}"
        else:
            when += _cedar_selector(r.partners, "principal", "Partner")
        when += (
            _cedar_selector(r.purposes, "context.purpose", None) + _window_text(r.window, "context.day", " && "))
        if r.consent_topic:
            when.append(f"context.consents.contains({json.dumps(r.consent_topic)})")
        if r.condition is not None:
            when.append(cond.expr(r.condition, sure=r.effect == "permit"))
        body = f"when {{ {' && '.join(when)} }}" if when else ""
        out.append(f"// {r.name}\n{r.effect}({head}, action in [{actions}], resource) {body};")
    for p in policy_model.partners.values():
        if not p.agreements:
            continue
        valid = " || ".join("(" + " && ".join(_window_text(a.window, "context.day", " && ") + (
            [f"[{', '.join(json.dumps(u) for u in sorted(a.purposes))}].contains(context.purpose)"]
            if a.purposes is not None else []) + (
            [f"action in [{', '.join(_cedar_uid('Action', f) for f in sorted(a.covers))}]"]
            if a.covers is not None else []) or ["true"]) + ")" for a in p.agreements)
        out.append(f"// agreements of {p.name} (in force, covering the field and the purpose)\n"
                   f"forbid(principal == {_cedar_uid('Partner', p.name)}, action, resource) unless {{ {valid} }};")
    if policy_model.catalogue.left is not None:
        exempt = _after_leaving(policy_model)
        unless = f" && ![{', '.join(json.dumps(u) for u in exempt)}].contains(context.purpose)" if exempt else ""
        out.append(f"// students who left\nforbid(principal, action, resource) when {{ context.gone{unless} }};")
    return "\n\n".join(out) + "\n"


def _after_leaving(policy_model: m.PolicyModel) -> list[str]:
    """The purposes that still receive a student who left (kinds transfer and archive, spec 7.7)."""
    return sorted(u for u, info in policy_model.purposes.items() if info.kind in ("transfer", "archive"))


def gone(policy_model: m.PolicyModel, student: Mapping[str, Any], day: datetime.date) -> bool:
    """The student left before ``day``, or the date cannot be known (ill-typed): nothing goes out."""
    left = policy_model.catalogue.left
    value = student.get(left) if left is not None else None
    return value is not None and (type(value) is not datetime.date or value < day)


class CedarPeer:
    """The translated set in cedarpy, with parsed handles reused across calls (the fast way to call it)."""

    def __init__(self, policy_model: m.PolicyModel, *, validate: bool = True) -> None:
        import cedarpy

        self._cedar = cedarpy
        self.model = policy_model
        self.schema_text = cedar_schema(policy_model)
        self.policy_text = cedar_policies(policy_model)
        if validate:
            result = cedarpy.validate_policies(self.policy_text, self.schema_text)
            if not result.validation_passed:
                raise ValueError(f"Cedar rejects the translated set: {result.errors[:3]}")
        self.policies = cedarpy.PolicySet.from_str(self.policy_text)

    def entities(self, students: Iterable[Mapping[str, Any]]) -> Any:
        """One Entities handle for the students (ids are their position) and the partners."""
        ents = [{"uid": {"type": "Student", "id": str(i)}, "parents": [],
                 "attrs": clean_attributes(self.model.catalogue, s)} for i, s in enumerate(students)]
        ents += [{"uid": {"type": "Partner", "id": p}, "attrs": {}, "parents": []} for p in self.model.partners]
        return self._cedar.Entities.from_json_str(json.dumps(ents))

    def requests(self, index: int, student: Mapping[str, Any], partner: str, purpose: str,
                 fields: Sequence[str], day: datetime.date) -> list[dict[str, Any]]:
        context: dict[str, Any] = {"purpose": purpose, "day": day_number(day),
                                   "consents": valid_consents(self.model, student, day),
                                   "gone": gone(self.model, student, day)}
        born = student.get(m.BIRTHDATE_FIELD)
        if type(born) is datetime.date:
            context["age"] = _age(born, day)
        return [{"principal": {"type": "Partner", "id": partner}, "action": {"type": "Action", "id": f},
                 "resource": {"type": "Student", "id": str(index)}, "context": context} for f in fields]

    def decide(self, requests: list[dict[str, Any]], entities: Any) -> list[bool]:
        """Per-field verdicts for one prepared decision (one Cedar request per field, in one batch)."""
        return [r.allowed for r in self._cedar.is_authorized_batch(requests, self.policies, entities)]


# ---------------------------------------------------------------------------
# Casbin

CASBIN_MODEL = """\
[request_definition]
r = partner, purpose, field, stu, day

[policy_definition]
p = partner, purpose, field, rule, eft

[policy_effect]
e = some(where (p.eft == allow)) && !some(where (p.eft == deny))

[matchers]
m = (p.partner == r.partner || p.partner == "*") && (p.purpose == r.purpose || p.purpose == "*") \
&& (p.field == r.field || p.field == "*") && eval(p.rule)
"""


class _CasbinCondition(_Condition):
    AND, OR, TRUE, FALSE = " and ", " or ", "True", "False"

    def neg(self, text: str) -> str:
        return f"not ({text})"

    def ref(self, name: str) -> str:
        return f"r.stu.{name}"

    def known(self, name: str) -> str:
        return f"r.stu.{name} != None"

    def member(self, element: str, container: str) -> str:
        return f"{element} in {container}"

    def one_of(self, operand: str, values: Sequence[str]) -> str:
        return f"{operand} in ({', '.join(values)},)"


def _casbin_selector(sel: m.NameSet, var: str) -> tuple[list[str], list[str]]:
    """(the values for the policy column, extra conditions for the rule expression)."""
    names = sorted(sel.names)
    if sel.everything:
        return ["*"], ([f"{var} not in ({', '.join(json.dumps(x) for x in names)},)"] if names else [])
    return names, []


def casbin_policies(policy_model: m.PolicyModel) -> list[list[str]]:
    """The set as Casbin policy lines ``partner, purpose, field, rule, eft``: one per rule, partner and field."""
    cond = _CasbinCondition(policy_model.catalogue)
    lines = []
    for r in policy_model.rules:
        partners, extra_p = _casbin_selector(r.partners, "r.partner")
        purposes, extra_u = _casbin_selector(r.purposes, "r.purpose")
        parts = extra_p + extra_u + _window_text(r.window, "r.day", " and ")
        if r.consent_topic:
            parts.append(f"{json.dumps(r.consent_topic)} in r.stu.consents")
        if r.condition is not None:
            parts.append(cond.expr(r.condition, sure=r.effect == "permit"))
        rule = " and ".join(parts) or "True"
        eft = "allow" if r.effect == "permit" else "deny"
        lines += [[p, u, g.ref, rule, eft] for p in partners for u in purposes for g in r.grants]
    for p in policy_model.partners.values():
        if p.agreements:
            valid = " or ".join("(" + (" and ".join(_window_text(a.window, "r.day", " and ") + (
                [f"r.purpose in {tuple(sorted(a.purposes))!r}"] if a.purposes is not None else []) + (
                [f"r.field in {tuple(sorted(a.covers))!r}"] if a.covers is not None else [])) or "True") + ")"
                for a in p.agreements)
            lines.append([p.name, "*", "*", f"not ({valid})", "deny"])
    if policy_model.catalogue.left is not None:
        exempt = _after_leaving(policy_model)
        lines.append(["*", "*", "*", "r.stu.gone" + (f" and r.purpose not in {tuple(exempt)!r}" if exempt else ""),
                      "deny"])
    return lines


class CasbinStudent:
    """A student as Casbin sees it: an object whose attributes are the clean fields (None when unknown)."""

    def __init__(self, names: Iterable[str], attributes: Mapping[str, Any], age: int | None,
                 consents: list[str], gone: bool = False) -> None:
        for name in names:
            setattr(self, name, attributes.get(name))
        self.age = age
        self.consents = tuple(consents)
        self.gone = gone


class CasbinPeer:
    """The translated set in a pycasbin Enforcer (model from text, policies added programmatically)."""

    def __init__(self, policy_model: m.PolicyModel) -> None:
        import casbin

        self.model = policy_model
        cm = casbin.model.Model()
        cm.load_model_from_text(CASBIN_MODEL)
        self.enforcer = casbin.Enforcer(cm)
        self.lines = casbin_policies(policy_model)
        self.enforcer.add_policies(self.lines)

    def student(self, student: Mapping[str, Any], day: datetime.date) -> CasbinStudent:
        attributes = clean_attributes(self.model.catalogue, student)
        born = student.get(m.BIRTHDATE_FIELD)
        age = _age(born, day) if type(born) is datetime.date else None
        return CasbinStudent(self.model.catalogue.subject_fields, attributes, age,
                             valid_consents(self.model, student, day), gone(self.model, student, day))

    def decide(self, stu: CasbinStudent, partner: str, purpose: str, fields: Sequence[str],
               day: int) -> list[bool]:
        enforce = self.enforcer.enforce
        return [enforce(partner, purpose, f, stu, day) for f in fields]


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m benchmarks.peers [SIZE]``: print the Cedar and Casbin translations of a generated set."""
    import sys

    from avgpolicy import loads
    from benchmarks import gen

    args = list(sys.argv[1:] if argv is None else argv)
    size = int(args[0]) if args else 10
    pm = loads(gen.policy_texts(size)).model
    print("// ---- Cedar schema\n" + cedar_schema(pm))
    print("// ---- Cedar policies\n" + cedar_policies(pm))
    print("# ---- Casbin model\n" + CASBIN_MODEL)
    print("# ---- Casbin policy (partner, purpose, field, rule, eft)")
    for line in casbin_policies(pm):
        print("p, " + ", ".join(line[:3]) + f', "{line[3]}", ' + line[4])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
