"""Analysis: satisfiable/implies agree with brute-force evaluation over small exact domains."""

import datetime
import itertools

from hypothesis import given
from hypothesis import strategies as st

from avgpolicy import analysis
from avgpolicy import nodes as n
from avgpolicy.model import WindowInfo

D0 = datetime.date(2025, 1, 1)
TYPES = analysis.condition_types({"x": "int", "d": "date", "t": "text", "b": "bool", "s": "set"})

# Literals come from small pools; every region between (and beyond) them has a representative
# below, so evaluating over these domains is exact for the expressions generated here.
INTS = range(5)
DATES = [D0 + datetime.timedelta(days=i) for i in range(5)]
TEXTS = ["a", "b", "c"]
DOMAINS = {
    "x": list(range(-1, 6)),
    "age": list(range(6)),
    "d": [D0 - datetime.timedelta(days=1), *DATES, D0 + datetime.timedelta(days=5)],
    "t": [*TEXTS, "z"],
    "b": [True, False],
    "s": [frozenset(c) for r in range(4) for c in itertools.combinations(TEXTS, r)],
}


def ref(name):
    return n.Ref(name)


def lit(value):
    kind = {bool: "bool", int: "int", str: "text", datetime.date: "date"}[type(value)]
    return n.Literal(value, kind)


ops = st.sampled_from(["==", "!=", "<", "<=", ">", ">="])
eq_ops = st.sampled_from(["==", "!="])
ints, dates, texts = st.sampled_from(list(INTS)), st.sampled_from(DATES), st.sampled_from(TEXTS)


def ordered_atoms(var, values):
    def compare(op, v, flip):
        return n.Compare(op, lit(v), ref(var)) if flip else n.Compare(op, ref(var), lit(v))

    compare = st.builds(compare, ops, values, st.booleans())
    in_list = st.builds(lambda vs, neg: n.InList(ref(var), tuple(lit(v) for v in vs), neg),
                        st.lists(values, max_size=3), st.booleans())
    in_range = st.builds(lambda lo, hi, neg: n.InRange(ref(var), lit(lo), lit(hi), neg), values, values, st.booleans())
    return st.one_of(compare, in_list, in_range)


exact_atoms = st.one_of(
    ordered_atoms("x", ints),
    ordered_atoms("age", ints),
    ordered_atoms("d", dates),
    st.builds(lambda op, v: n.Compare(op, ref("t"), lit(v)), eq_ops, texts),
    st.builds(lambda vs, neg: n.InList(ref("t"), tuple(lit(v) for v in vs), neg), st.lists(texts, max_size=3),
              st.booleans()),
    st.builds(lambda op, v: n.Compare(op, ref("b"), lit(v)), eq_ops, st.booleans()),
    st.builds(lambda v, neg: n.InSet(lit(v), ref("s"), neg), texts, st.booleans()),
    st.builds(lambda op, a, c: n.Compare(op, lit(a), lit(c)), ops, ints, ints),
)
# atoms the analysis reads as free booleans: it may only err on the side of "satisfiable"
opaque_atoms = st.one_of(
    st.builds(lambda op: n.Compare(op, ref("x"), ref("age")), ops),
    st.builds(lambda neg: n.InSet(ref("t"), ref("s"), neg), st.booleans()),
)


def expressions(atoms):
    return st.recursive(atoms, lambda inner: st.one_of(
        st.builds(lambda items: n.And(tuple(items)), st.lists(inner, min_size=2, max_size=3)),
        st.builds(lambda items: n.Or(tuple(items)), st.lists(inner, min_size=2, max_size=3)),
        st.builds(n.Not, inner)), max_leaves=8)


def value(op, env):
    return op.value if isinstance(op, n.Literal) else env[op.name]


def evaluate(e, env):
    """Plain two-valued evaluation: the reference the analysis is checked against."""
    if isinstance(e, n.And):
        return all(evaluate(i, env) for i in e.items)
    if isinstance(e, n.Or):
        return any(evaluate(i, env) for i in e.items)
    if isinstance(e, n.Not):
        return not evaluate(e.operand, env)
    if isinstance(e, n.Compare):
        a, b = value(e.left, env), value(e.right, env)
        return {"==": a == b, "!=": a != b, "<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[e.op]
    if isinstance(e, n.InList):
        return (value(e.operand, env) in [v.value for v in e.values]) != e.negated
    if isinstance(e, n.InRange):
        return (e.low.value <= value(e.operand, env) <= e.high.value) != e.negated
    if isinstance(e, n.InSet):
        return (value(e.element, env) in env[e.container.name]) != e.negated
    raise AssertionError(e)


def variables(*exprs):
    return sorted({x.name for e in exprs for x in e.find_all(n.Ref)})


def models(*exprs):
    names = variables(*exprs)
    for combo in itertools.product(*(DOMAINS[v] for v in names)):
        yield dict(zip(names, combo, strict=True))


@given(expressions(exact_atoms))
def test_satisfiable_matches_brute_force(expr):
    brute = any(evaluate(expr, env) for env in models(expr))
    assert brute == analysis.satisfiable(expr, TYPES)
    assert brute == analysis.solve([expr], types=TYPES)


@given(expressions(exact_atoms), expressions(exact_atoms))
def test_implies_matches_brute_force(a, b):
    brute = all(evaluate(b, env) for env in models(a, b) if evaluate(a, env))
    assert brute == analysis.implies(a, b, TYPES)


@given(expressions(st.one_of(exact_atoms, opaque_atoms)), expressions(st.one_of(exact_atoms, opaque_atoms)))
def test_opaque_atoms_never_give_a_false_unsatisfiable_or_a_false_implication(a, b):
    if any(evaluate(a, env) for env in models(a)):
        assert analysis.satisfiable(a, TYPES)
    if analysis.implies(a, b, TYPES):
        assert all(evaluate(b, env) for env in models(a, b) if evaluate(a, env))


def test_age_is_never_negative_and_ranges_can_be_empty():
    assert not analysis.satisfiable(n.Compare("<", ref("age"), lit(0)), TYPES)
    assert not analysis.satisfiable(n.InRange(ref("x"), lit(5), lit(3)), TYPES)
    assert analysis.satisfiable(n.InRange(ref("x"), lit(5), lit(3), negated=True), TYPES)


def test_int_intervals_with_holes():
    expr = n.And((n.InRange(ref("x"), lit(3), lit(4)), n.Compare("!=", ref("x"), lit(3)),
                  n.InList(ref("x"), (lit(4),), negated=True)))
    assert not analysis.satisfiable(expr, TYPES)
    assert analysis.satisfiable(n.Compare("!=", ref("x"), lit(3)), TYPES)


def test_dates_are_bounded_by_the_calendar():
    assert not analysis.satisfiable(n.Compare(">", ref("d"), lit(datetime.date.max)), TYPES)
    assert analysis.satisfiable(n.Compare(">=", ref("d"), lit(datetime.date.max)), TYPES)


def test_unknown_names_are_treated_as_anything():
    assert analysis.satisfiable(n.Compare("==", ref("nope"), lit(3)), TYPES)


def test_budget_exhaustion_answers_maybe():
    # 2**30 satisfiable choices first, and a contradiction that shows only once all are made
    choices = tuple(n.Or((n.InSet(lit(f"v{i}"), ref("s")), n.InSet(lit(f"w{i}"), ref("s")))) for i in range(30))
    contradiction = n.Or((n.Compare("<", ref("age"), lit(0)), n.InRange(ref("x"), lit(5), lit(3))))
    expr = n.And((*choices, contradiction))
    assert analysis.solve([expr], types=TYPES, budget=1000) is None
    assert analysis.satisfiable(expr, TYPES, budget=1000)
    assert not analysis.implies(expr, n.Compare("==", ref("x"), lit(99)), TYPES, budget=1000)
    small = n.And((*choices[:4], contradiction))
    assert analysis.solve([small], types=TYPES) is False


def test_none_means_all_students():
    assert analysis.satisfiable(None, TYPES)
    assert analysis.implies(n.Compare("==", ref("x"), lit(1)), None, TYPES)
    assert not analysis.implies(None, n.Compare("==", ref("x"), lit(1)), TYPES)
    assert analysis.covers(None, [n.Compare(">=", ref("x"), lit(1)), n.Compare("<", ref("x"), lit(1))], TYPES)


def test_a_wide_flat_condition_is_handled_without_recursion():
    expr = n.And(tuple(n.Compare("!=", ref("x"), lit(i)) for i in range(5000)))
    assert analysis.satisfiable(expr, TYPES)


def test_segments_cut_a_window_at_other_windows_edges():
    day = datetime.date
    window = WindowInfo(day(2025, 1, 1), day(2025, 12, 31))
    other = WindowInfo(day(2025, 3, 1), day(2025, 5, 31))
    assert [(day(2025, 1, 1), day(2025, 2, 28)), (day(2025, 3, 1), day(2025, 5, 31)),
            (day(2025, 6, 1), day(2025, 12, 31))] == analysis.segments(window, [other])
    assert [0] == analysis.active_on([other], day(2025, 3, 1))
    assert not analysis.overlaps(window, WindowInfo(day(2026, 1, 1), None))
    assert analysis.overlaps(window, WindowInfo(None, day(2025, 1, 1)))


def test_expand_name_sets_to_declared_names():
    from avgpolicy.model import NameSet

    declared = {"a": 1, "b": 2, "c": 3}
    assert frozenset({"a", "c"}) == analysis.expand(NameSet(False, frozenset({"a", "c", "zz"})), declared)
    assert frozenset({"b", "c"}) == analysis.expand(NameSet(True, frozenset({"a"})), declared)
    assert frozenset({"a", "b", "c"}) == analysis.expand(NameSet(True, frozenset()), list(declared))


def test_paused_gc_restores_the_collector_state():
    import gc

    from avgpolicy.model import paused_gc

    assert gc.isenabled()
    with paused_gc():
        assert not gc.isenabled()
    assert gc.isenabled()
    gc.disable()
    try:
        with paused_gc():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_paused_gc_leaves_an_applications_frozen_objects_frozen():
    import gc

    from avgpolicy.model import paused_gc

    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        with paused_gc():
            pass
        assert frozen == gc.get_freeze_count()
    finally:
        gc.unfreeze()
    with paused_gc():
        pass
    assert 0 == gc.get_freeze_count()


def test_rule_grant_lookup_is_indexed_and_keeps_the_first_form():
    import attrs

    from avgpolicy.model import ALWAYS, Grant, NameSet, RuleInfo

    grants = (*(Grant(f"d.f{i}") for i in range(10_000)), Grant("d.f1", "pseudonym"))
    rule = RuleInfo("r", "permit", NameSet(True, frozenset()), NameSet(True, frozenset()), grants, "contract",
                    None, None, None, ALWAYS, None, None)
    assert Grant("d.f1") == rule.grant_for("d.f1")
    assert rule.grant_for("d.nope") is None
    assert attrs.evolve(rule, grants=(Grant("d.x", "year"),)).grant_for("d.x") == Grant("d.x", "year")
