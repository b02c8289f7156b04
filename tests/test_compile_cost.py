"""Compile cost (issue 15 items 3-4) and the engines' context (issue 15, the import cycle).

What the compiler does per epoch, counted rather than timed (timings are in benchmarks/bench_compile.py):
each epoch's code is generated once, an epoch's generation costs what is in force in it (not the
square of the rules), long outcomes are not spelled out in the code, the atom budget is per epoch, and
the interpreter that serves an epoch over the budget agrees with the compiled path. The engines take an
``EngineContext``, never the ``Policy``, and do not import ``policy.py``.
"""

from __future__ import annotations

import ast
import datetime as dt
import inspect
import linecache
from pathlib import Path

import pytest

import avgpolicy
from avgpolicy import compiler, interpreter
from avgpolicy.engine import EngineContext
from avgpolicy.model import WindowInfo
from avgpolicy.policy import Policy
from benchmarks.compile_cases import HEAD, PARTNER, PURPOSE, STUDENT, atoms, boundaries, monthly

PACKAGE = Path(avgpolicy.__file__).parent
STUDENTS = [STUDENT, {**STUDENT, "school": "S3"}, {**STUDENT, "jaar": 9}, {"naam": "x", "school": "S1"},
            {**STUDENT, "jaar": "5"}, None]


def request_of(check):  # the compiler's request behind a held function
    return check.__globals__["_resolve"].__self__


def interpreted(policy, fields, student, at):
    return policy.decide(PARTNER, PURPOSE, list(fields), student, at=at, engine="interpreted")


# -- the engines and their context -------------------------------------------------------

def imported_modules(module: str) -> set[str]:
    """Every module ``avgpolicy/<module>.py`` imports, anywhere in the file (TYPE_CHECKING blocks too),
    as absolute names."""
    tree = ast.parse((PACKAGE / f"{module}.py").read_text(encoding="utf-8"))
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = "avgpolicy." * (node.level > 0) + (node.module or "")
            out.add(base.rstrip("."))
            out.update(f"{base}.{a.name}".replace("..", ".") for a in node.names)
    return out


@pytest.mark.parametrize("module", ["compiler", "interpreter", "runtime", "cache", "engine"])
def test_engines_never_import_the_policy_or_a_subpackage(module: str) -> None:
    imported = imported_modules(module)
    later = {"avgpolicy.policy", "avgpolicy.loader", "avgpolicy.store"}
    assert set() == {m for m in imported if m in later or m.startswith(("avgpolicy.policy.", "avgpolicy.sql",
                                                                          "avgpolicy.server", "avgpolicy.exports"))}


def test_the_engines_take_an_engine_context() -> None:
    for fn in (interpreter.decide, interpreter.field_specs, compiler.compile_request):
        first = next(iter(inspect.signature(fn).parameters.values()))
        assert ("engine", "EngineContext") == (first.name, first.annotation), fn.__name__


def test_a_held_function_reaches_the_engine_context_not_the_policy() -> None:
    policy = avgpolicy.loads(monthly(3).text, pseudonym_key=b"k" * 32)
    check = policy.compile(PARTNER, PURPOSE, ["l.naam"])
    check(STUDENT, dt.date(2020, 2, 3))
    req = request_of(check)
    assert isinstance(req.engine, EngineContext)
    assert (policy.model, policy.zone, policy.version) == (req.engine.model, req.engine.zone, req.engine.version)
    assert not any(isinstance(v, Policy) for v in (*vars(req).values(), *check.__globals__.values()))
    # the context derives pseudonyms as the policy does, and holds no key
    assert policy._pseudonym_function(PARTNER, "l.naam")(3) == req.engine.pseudonym_function(PARTNER, "l.naam")(3)
    assert b"k" * 32 not in repr(req.engine).encode()


def test_the_interpreter_decides_from_an_engine_context() -> None:
    policy = avgpolicy.loads(monthly(3).text)
    engine = EngineContext(policy.model, policy.zone, policy.version)
    at = dt.date(2020, 2, 3)
    assert interpreted(policy, ["l.naam"], STUDENT, at) == \
        interpreter.decide(engine, PARTNER, PURPOSE, ("l.naam",), STUDENT, at)


def test_rules_for_keeps_declared_names_only() -> None:
    policy = avgpolicy.loads(monthly(3).text)
    engine = policy._engine
    assert 3 == len(engine.rules_for(PARTNER, PURPOSE))
    assert engine.rules_for(PARTNER, PURPOSE) is engine.rules_for(PARTNER, PURPOSE)
    assert () == engine.rules_for("nobody", PURPOSE)
    assert {(PARTNER, PURPOSE)} == set(engine._rules)


# -- each epoch once, and at the cost of what is in force in it -----------------------------

def test_weekly_decisions_generate_each_epoch_once_and_agree_with_the_interpreter() -> None:
    case = monthly(24)
    policy = avgpolicy.loads(case.text)
    check = policy.compile(PARTNER, PURPOSE, list(case.fields))
    before = set(linecache.cache)
    used = set()
    for at in case.weeks:
        for s in STUDENTS:
            assert interpreted(policy, case.fields, s, at) == check(s, at), (at, s)
        used.add(request_of(check).epoch_of(at)[1])
    for at in case.weeks[::-3]:  # again, backwards: nothing more is generated
        assert interpreted(policy, case.fields, STUDENT, at) == check(STUDENT, at)
    req = request_of(check)
    assert len(used) == len(req.filenames) == sum(fn is not None for fn in req.table)
    assert len(used) == len(set(linecache.cache) - before)


def test_compiling_a_request_generates_no_code() -> None:
    policy = avgpolicy.loads(monthly(12).text)
    before = set(linecache.cache)
    check = policy.compile(PARTNER, PURPOSE, ["l.naam"])
    assert set() == set(linecache.cache) - before
    assert [] == request_of(check).filenames
    check(STUDENT, dt.date(2020, 5, 5))
    assert 1 == len(request_of(check).filenames)
    assert check.__code__ is request_of(check).table[request_of(check).epoch_of(dt.date(2020, 5, 5))[1]].__code__


def test_an_epoch_of_a_thousand_boundaries_looks_at_each_window_a_bounded_number_of_times(monkeypatch) -> None:
    """Issue 15 item 4: generating one epoch walked the later permits again at every permit (quadratic:
    about 125,000 window tests for 500 permits); now each permit's window is tested once per epoch."""
    case = boundaries()
    policy = avgpolicy.loads(case.text)
    check = policy.compile(PARTNER, PURPOSE, list(case.fields))
    calls = []
    original = WindowInfo.contains_date

    def counted(self, day):
        calls.append(day)
        return original(self, day)

    monkeypatch.setattr(WindowInfo, "contains_date", counted)
    assert interpreted(policy, case.fields, STUDENT, case.at) == check(STUDENT, case.at)
    generated = len(calls)
    calls.clear()
    interpreted(policy, case.fields, STUDENT, case.at)
    assert generated <= 2 * case.rules + len(calls), (generated, len(calls))


def test_long_outcomes_are_names_not_tuples_in_the_code() -> None:
    case = boundaries()
    policy = avgpolicy.loads(case.text)
    check = policy.compile(PARTNER, PURPOSE, list(case.fields))
    for s in STUDENTS:
        assert interpreted(policy, case.fields, s, case.at) == check(s, case.at)
    long = [node for node in ast.walk(check.code_tree) if isinstance(node, ast.Constant)
            and isinstance(node.value, tuple) and len(node.value) > compiler.PREBUILT_SPECS]
    assert [] == long
    assert not [node for node in ast.walk(check.code_tree) if isinstance(node, ast.Tuple)
                and len(node.elts) > compiler.PREBUILT_SPECS + 1]
    assert 2 * case.rules > len(request_of(check).specs)  # one outside_window reason per permit, not per epoch


# -- the atom budget, per epoch --------------------------------------------------------------

def test_a_request_over_the_budget_is_interpreted_and_agrees() -> None:
    case = atoms()
    policy = avgpolicy.loads(case.text)
    check = policy.compile(PARTNER, PURPOSE, list(case.fields))
    for s in [*STUDENTS, {"naam": "x", "jaar": 7003}, {"naam": "x", "jaar": 497}, {"naam": 3, "jaar": 1000}]:
        assert interpreted(policy, case.fields, s, case.at) == check(s, case.at), s
    assert "_interpret(s, day)" in check.source
    assert request_of(check).too_large(request_of(check).epoch_of(case.at)[1])


def test_the_budget_counts_the_rules_in_force_in_the_epoch() -> None:
    """Eight permits of 400 atoms are 3,200 atoms in all, but each is in force in its own month: every
    epoch is under the budget and gets code; a ninth permit over all months makes them too large."""
    rules = []
    for r in range(8):
        start = dt.date(2021, r + 1, 1)
        end = dt.date(2021, r + 2, 1) - dt.timedelta(days=1)
        rules.append(f"permit r{r} {{ partner p purpose u basis contract fields l.naam students where "
                     + " or ".join(f"jaar == {r * 1000 + i}" for i in range(400))
                     + f" valid from {start} until {end} }}")
    policy = avgpolicy.loads(HEAD + "\n".join(rules))
    check = policy.compile(PARTNER, PURPOSE, ["l.naam"])
    for r in range(8):
        at = dt.date(2021, r + 1, 15)
        for s in [{"naam": "x", "jaar": r * 1000 + 399}, {"naam": "x", "jaar": r * 1000 + 400}, STUDENT, None]:
            assert interpreted(policy, ["l.naam"], s, at) == check(s, at), (r, s)
    assert "_interpret" not in check.source
    wide = avgpolicy.loads(HEAD + "\n".join(rules) + "\npermit all { partner p purpose u basis contract "
                           "fields l.naam students where " + " or ".join(f"jaar == {-i}" for i in range(250)) + " }")
    check = wide.compile(PARTNER, PURPOSE, ["l.naam"])
    at = dt.date(2021, 3, 15)
    for s in [{"naam": "x", "jaar": 2005}, {"naam": "x", "jaar": -7}, STUDENT]:
        assert interpreted(wide, ["l.naam"], s, at) == check(s, at), s
    assert "_interpret(s, day)" in check.source  # 400 + 250 atoms in force in March: over the budget
    assert interpreted(wide, ["l.naam"], STUDENT, dt.date(2022, 1, 1)) == check(STUDENT, dt.date(2022, 1, 1))


@pytest.mark.parametrize(("size", "interpreted_epoch"), [(300, False), (301, True)])
def test_a_rule_deciding_two_groups_counts_twice(size: int, interpreted_epoch: bool) -> None:
    """The budget is per generated code: a permit deciding two groups of fields is generated twice
    (300 atoms x 2 = 600, at the budget; 301 x 2 is over it), and no condition is over 500."""
    condition = " or ".join(f"jaar == {i}" for i in range(size))
    text = HEAD + (f"permit big {{ partner p purpose u basis contract fields l.{{naam, jaar}} students where "
                   f"{condition} }}\npermit small {{ partner p purpose u basis contract fields l.naam }}")
    policy = avgpolicy.loads(text)
    check = policy.compile(PARTNER, PURPOSE, ["l.naam", "l.jaar"])
    at = dt.date(2025, 1, 1)
    for s in [STUDENT, {"naam": "x", "jaar": size - 1}, {"naam": "x", "jaar": size}, None]:
        assert interpreted(policy, ["l.naam", "l.jaar"], s, at) == check(s, at), s
    assert 2 == len(request_of(check).groups)
    assert interpreted_epoch == ("_interpret(s, day)" in check.source)
