"""Policy tests: run a set's ``test`` blocks, measure rule coverage, and assert decisions from Python.

``run(policy)`` decides every ``test`` block of a loaded set and reports, per test,
whether each ``expect`` held, with the actual outcome and reasons of the fields that
did not, plus which rules no test exercised. ``assert_allowed`` / ``assert_denied``
are the same checks for hand-written Python tests. Hypothesis strategies live in
``avgpolicy.testing.strategies`` (imported on demand, so this module works without
hypothesis installed).
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import attrs

from .. import nodes as n
from ..model import REASON_CODES, expand_refs

if TYPE_CHECKING:
    from ..policy import Policy

__all__ = ["FieldOutcome", "TestReport", "TestResult", "assert_allowed", "assert_denied",
           "expected_fields", "request_for", "run", "run_test"]


@attrs.frozen
class FieldOutcome:
    """One field of one ``expect`` clause: what the test expected and what the policy decided."""

    field: str
    expected_allow: bool
    because: str | None
    actual_allow: bool | None          # None: the test could not be decided (see TestResult.error)
    rule: str | None = None            # the deciding rule, if any
    reasons: tuple[tuple[str, str], ...] = ()   # (code, message) of that field's reasons
    line: int | None = None            # line of the ``expect`` clause

    @property
    def passed(self) -> bool:
        if self.actual_allow is None:
            return False
        verdict_ok = self.actual_allow if self.expected_allow else not self.actual_allow
        # `because CODE` asks for that code among the field's reasons, on an allow too
        # (e.g. `expect allow leerling.foto because inform_student`)
        return verdict_ok and (self.because is None or self.because in self.codes)

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(code for code, _ in self.reasons)

    def expected_text(self) -> str:
        verdict = "allow" if self.expected_allow else "deny"
        return verdict if self.because is None else f"{verdict} because {self.because}"

    def actual_text(self) -> str:
        if self.actual_allow is None:
            return "no decision"
        verdict = "allow" if self.actual_allow else "deny"
        return f"{verdict} ({', '.join(self.codes) or 'no reasons'})"

    def to_dict(self) -> dict[str, Any]:
        return {"field": self.field, "passed": self.passed, "line": self.line,
                "expected": self.expected_text(),
                "actual": None if self.actual_allow is None else ("allow" if self.actual_allow else "deny"),
                "rule": self.rule,
                "reasons": [{"code": c, "message": m} for c, m in self.reasons]}


@attrs.frozen
class TestResult:
    """The outcome of one ``test`` block."""

    __test__ = False  # not a pytest test class

    name: str
    file: str | None
    line: int | None
    outcomes: tuple[FieldOutcome, ...]
    request: Mapping[str, Any] = attrs.field(eq=False, repr=False, factory=dict)
    error: str | None = None           # the request could not be decided (e.g. missing partner)
    explanation: str | None = attrs.field(default=None, eq=False, repr=False)

    @property
    def passed(self) -> bool:
        return self.error is None and all(o.passed for o in self.outcomes)

    @property
    def failures(self) -> tuple[FieldOutcome, ...]:
        return tuple(o for o in self.outcomes if not o.passed)

    @property
    def location(self) -> tuple[str | None, int | None]:
        return (self.file, self.line)

    def where(self) -> str:
        return f"{self.file}:{self.line}" if self.file else "<unknown>"

    def describe_failure(self) -> str:
        """Expected against actual for every failed expectation, with the actual reasons."""
        lines = [f"test `{self.name}` failed at {self.where()}"]
        req = self.request
        if req:
            at = req.get("at")
            if isinstance(at, datetime.datetime) and at.time() == datetime.time(0, 0) and at.tzinfo is None:
                when = at.date().isoformat()
            else:
                when = at.isoformat() if at is not None else "now"
            lines.append(f"  request: partner {req.get('partner')}, purpose {req.get('purpose')}, at {when}")
        if self.error is not None:
            lines.append(f"  error: {self.error}")
        for o in self.failures:
            where = f" (line {o.line})" if o.line else ""
            lines.append(f"  {o.field}{where}: expected {o.expected_text()}, got {o.actual_text()}")
            if o.rule:
                lines.append(f"      deciding rule: {o.rule}")
            for code, message in o.reasons:
                lines.append(f"      {code}: {message}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "passed": self.passed, "file": self.file, "line": self.line,
                "error": self.error, "failures": [o.to_dict() for o in self.failures],
                "expectations": len(self.outcomes)}


@attrs.frozen
class TestReport:
    """Every test's result, and rule coverage: the rules no test exercised."""

    __test__ = False

    results: tuple[TestResult, ...]
    rules: tuple[str, ...]                 # every rule of the set, by name
    exercised: frozenset[str]              # rules that decided a field or gave a reason in some test

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.results)

    @property
    def failures(self) -> tuple[TestResult, ...]:
        return tuple(r for r in self.results if not r.passed)

    @property
    def untested(self) -> tuple[str, ...]:
        return tuple(r for r in self.rules if r not in self.exercised)

    @property
    def coverage(self) -> float:
        """The share of rules exercised (1.0 for a set without rules)."""
        return 1.0 if not self.rules else (len(self.rules) - len(self.untested)) / len(self.rules)

    def __getitem__(self, name: str) -> TestResult:
        for r in self.results:
            if r.name == name:
                return r
        raise KeyError(name)

    def summary(self) -> str:
        failed = len(self.failures)
        return (f"{len(self.results) - failed} passed, {failed} failed; "
                f"rule coverage {len(self.rules) - len(self.untested)}/{len(self.rules)}")

    def to_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "tests": [r.to_dict() for r in self.results],
                "coverage": {"rules": len(self.rules), "exercised": sorted(self.exercised & set(self.rules)),
                             "untested": list(self.untested)}}


# ---------------------------------------------------------------------------
# Building a request from a test block

def _consent(c: n.ConsentGiven) -> Any:
    from ..decision import Consent
    return Consent(by=c.by.value, given=c.given, withdrawn=c.withdrawn)


def expected_fields(test: n.Test, policy: Policy) -> tuple[str, ...]:
    """Every field named in the test's ``expect`` clauses (``dataset.*`` expanded), in order."""
    out: dict[str, None] = {}
    for e in test.expects:
        for ref in _expect_refs(e, policy):
            out.setdefault(ref)
    return tuple(out)


def _expect_refs(e: n.Expect, policy: Policy) -> list[str]:
    cat = policy.model.catalogue
    refs: list[str] = []
    for ref in e.fields:
        if ref.field.value == "*" and ref.dataset.value in cat.datasets:
            refs.extend(g.ref for g in expand_refs([ref], cat))
        else:
            refs.append(ref.ref)
    return refs


def request_for(test: n.Test, policy: Policy) -> dict[str, Any]:
    """The keyword arguments of ``policy.decide`` that a ``test`` block describes.

    ``at`` is the test's date (start of that day, policy time zone) or its naive
    date and time (also local); a test without ``at`` is decided at the current moment.
    """
    student: dict[str, Any] = {sv.key.value: sv.value for sv in test.student}
    consents = {c.topic.value: _consent(c) for c in test.consents}
    if consents:
        student["consents"] = consents
    at = test.at
    if isinstance(at, datetime.date) and not isinstance(at, datetime.datetime):
        at = datetime.datetime.combine(at, datetime.time(0, 0))
    return {"partner": test.partner.value if test.partner else None,
            "purpose": test.purpose.value if test.purpose else None,
            "fields": list(expected_fields(test, policy)), "student": student, "at": at}


# ---------------------------------------------------------------------------
# Running tests

def _name(rule: Any) -> str | None:
    if rule is None:
        return None
    return str(getattr(rule, "name", rule))


def _rules_in(decision: Any) -> set[str]:
    names: set[str] = set()
    for fd in decision.fields.values():
        if (r := _name(fd.rule)) is not None:
            names.add(r)
        for reason in fd.reasons:
            if (r := _name(reason.rule)) is not None:
                names.add(r)
    for reason in decision.reasons:
        if (r := _name(reason.rule)) is not None:
            names.add(r)
    return names


def _problem(test: n.Test, request: Mapping[str, Any], expects: list[tuple[n.Expect, str]]) -> str | None:
    """Why a test cannot be decided (the checker rejects such tests in .avg files), or None."""
    if request["partner"] is None or request["purpose"] is None:
        return "the test names no partner or no purpose"
    if not expects:
        return "the test has no `expect` clause"
    for e in test.expects:
        if e.because is not None and e.because.value not in REASON_CODES:
            return f"`{e.because.value}` is not a reason code (one of: {', '.join(REASON_CODES)})"
    return None


def run_test(policy: Policy, test: n.Test, **decide_options: Any) -> tuple[TestResult, set[str]]:
    """Decide one ``test`` block: its result and the rules it exercised."""
    span = test.span
    file, line = (span.file, span.line) if span else (None, None)
    expects = [(e, ref) for e in test.expects for ref in _expect_refs(e, policy)]

    def outcomes(decision: Any) -> tuple[FieldOutcome, ...]:
        out = []
        for e, ref in expects:
            because = e.because.value if e.because else None
            where = e.span.line if e.span else None
            fd = decision.fields.get(ref) if decision is not None else None
            if fd is None:
                out.append(FieldOutcome(ref, e.allow, because, None, line=where))
            else:
                out.append(FieldOutcome(ref, e.allow, because, bool(fd.allowed), rule=_name(fd.rule),
                                        reasons=tuple((r.code, r.message) for r in fd.reasons), line=where))
        return tuple(out)

    def failed(request: Mapping[str, Any], error: str) -> tuple[TestResult, set[str]]:
        return TestResult(test.name.value, file, line, outcomes(None), request, error=error), set()

    try:
        request = request_for(test, policy)
    except (TypeError, ValueError) as exc:  # e.g. a consent by a party that is not parent/student
        return failed({}, f"the test's request is not valid: {exc}")
    problem = _problem(test, request, expects)
    if problem is not None:
        return failed(request, problem)
    try:
        decision = policy.decide(**request, **decide_options)
    except (TypeError, ValueError) as exc:
        return failed(request, str(exc))
    result = TestResult(test.name.value, file, line, outcomes(decision), request,
                        explanation=decision.explain())
    return result, _rules_in(decision)


def run(policy: Policy, *, tests: Iterable[str] | None = None, **decide_options: Any) -> TestReport:
    """Run the set's ``test`` blocks (or only those named in ``tests``) and measure rule coverage.

    ``decide_options`` pass through to ``policy.decide`` (e.g. ``engine="interpreted"``).
    """
    wanted = None if tests is None else set(tests)
    results: list[TestResult] = []
    exercised: set[str] = set()
    for test in policy.model.tests:
        if wanted is not None and test.name.value not in wanted:
            continue
        result, rules = run_test(policy, test, **decide_options)
        results.append(result)
        exercised |= rules
    return TestReport(tuple(results), tuple(r.name for r in policy.model.rules), frozenset(exercised))


# ---------------------------------------------------------------------------
# Assertions for Python tests

def assert_allowed(policy: Policy, **request: Any) -> Any:
    """Decide ``request`` (the keywords of ``policy.decide``); fail unless every field is allowed.

    Returns the decision, so a test can look further.
    """
    decision = policy.decide(**request)
    if not decision.allowed:
        denied = [f for f, fd in decision.fields.items() if not fd.allowed]
        raise AssertionError(f"expected allow, but denied: {', '.join(denied)}\n{decision.explain()}")
    return decision


def assert_denied(policy: Policy, because: str | None = None, **request: Any) -> Any:
    """Decide ``request``; fail unless it is denied (and, with ``because``, some denied field gives that code).

    Returns the decision.
    """
    if because is not None and because not in REASON_CODES:
        raise ValueError(f"because={because!r} is not a reason code; use one of {', '.join(REASON_CODES)}")
    decision = policy.decide(**request)
    if decision.allowed:
        raise AssertionError(f"expected deny, but allowed\n{decision.explain()}")
    if because is not None:
        codes = {r.code for fd in decision.fields.values() if not fd.allowed for r in fd.reasons}
        if because not in codes:
            raise AssertionError(f"expected deny because {because}, but the reasons are "
                                 f"{', '.join(sorted(codes)) or 'none'}\n{decision.explain()}")
    return decision
