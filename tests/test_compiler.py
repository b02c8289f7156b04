"""Compiler and cache: generated code (ast only), specialisation, epochs, sharing, the LRU cache."""

from __future__ import annotations

import ast
import datetime as dt
import gc
import linecache
import threading

import pytest
from engine_strategies import SCHOOL

import avgpolicy

D = dt.date
OCT = D(2025, 10, 1)
GROEP5 = {"school": "12AB", "leerjaar": 5, "roepnaam": "Sanne"}


@pytest.fixture
def policy() -> avgpolicy.Policy:
    return avgpolicy.loads(SCHOOL, cache_size=4)


def test_compiled_function_exposes_source_and_code_tree(policy):
    check = policy.compile("snappet", "leermiddelen", ["leerling.roepnaam"])
    check(GROEP5, OCT)
    assert isinstance(check.code_tree, ast.Module)
    assert ast.dump(ast.parse(check.source)) == ast.dump(check.code_tree)
    assert "def check(s, at=None)" in check.source
    assert "'12AB'" in check.source and "3 <= " in check.source
    # the generated code compiles on its own (no pasted text)
    compile(check.code_tree, "<test>", "exec")


def test_only_rules_for_the_partner_purpose_and_fields_are_compiled(policy):
    check = policy.compile("snappet", "leermiddelen", ["leerling.roepnaam"])
    check(GROEP5, OCT)
    assert "12AB" in check.source
    assert "plusklas" not in check.source          # snappet_plusklas is about achternaam
    assert "vavo" not in check.source              # dus-i's rule
    assert "_consent" not in check.source


def test_hyphenated_identifiers_never_become_python_names(policy):
    check = policy.compile("dus-i", "bekostiging", ["leerling.bsn", "leerling.zorgnotitie"])
    d = check({"onderwijstype": "po"}, OCT)
    assert d.allowed
    for node in ast.walk(check.code_tree):
        if isinstance(node, ast.Name):
            assert node.id.isidentifier() and "-" not in node.id
        if isinstance(node, ast.FunctionDef):
            assert node.name.isidentifier()


def test_generated_code_has_no_builtins_and_only_ast_constants(policy):
    check = policy.compile("snappet", "leermiddelen", ["leerling.roepnaam", "leerling.zorgnotitie"])
    check(GROEP5, OCT)
    for node in ast.walk(check.code_tree):
        if isinstance(node, ast.Constant):
            assert node.value is None or type(node.value) in (str, int, bool, tuple)
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
            locals_ = {"s", "at", "day"}
            assert node.id.startswith("_") or node.id in locals_ or node.id[0] == "f"


def test_source_is_registered_in_linecache_and_forgotten_with_the_function(policy):
    before = set(linecache.cache)
    check = policy.compile("snappet", "leermiddelen", ["leerling.roepnaam"])
    check(GROEP5, OCT)
    names = [f for f in set(linecache.cache) - before if f.startswith("<avgpolicy snappet/leermiddelen")]
    assert names
    assert any("def check(s, at=None)" in "".join(linecache.cache[f][2]) for f in names)
    policy._cache.clear()
    del check
    gc.collect()
    assert not [f for f in linecache.cache if f in names]


def test_allowed_decisions_are_shared_objects(policy):
    check = policy.compile("snappet", "leermiddelen", ["leerling.roepnaam"])
    first = check(GROEP5, OCT)
    assert first is check({**GROEP5, "roepnaam": "Other"}, OCT)
    assert first is check(GROEP5, D(2025, 11, 1))
    denied = check({**GROEP5, "school": "x"}, OCT)
    assert denied is check({**GROEP5, "school": "y"}, OCT)


def test_held_function_is_never_stale_across_boundaries(policy):
    check = policy.compile("snappet", "leermiddelen", ["leerling.roepnaam", "leerling.achternaam"])
    student = {**GROEP5, "actief": True}
    days = [D(2025, 7, 31), D(2025, 8, 1), D(2025, 8, 31), D(2025, 9, 1), D(2026, 6, 30), D(2026, 7, 1),
            D(2026, 7, 31), D(2026, 8, 1), D(2025, 8, 1)]
    for day in days:
        cold = avgpolicy.loads(SCHOOL).decide("snappet", "leermiddelen",
                                              ["leerling.roepnaam", "leerling.achternaam"], student, at=day)
        assert cold == check(student, day)
        assert cold == check(student, at=day)
    assert (D(2025, 8, 1), D(2025, 9, 1), D(2026, 7, 1), D(2026, 8, 1)) == check.boundaries


def test_specialise_all_generates_every_epoch(policy):
    check = policy.compile("snappet", "leermiddelen", ["leerling.roepnaam"])
    check.specialise_all()
    epochs = {node.comparators[0].value for node in ast.walk(check.code_tree)
              if isinstance(node, ast.Compare) and isinstance(node.left, ast.Name) and node.left.id == "_e"}
    assert set(range(len(check.boundaries) + 1)) == epochs  # each epoch's check passes other epochs on


def test_each_epoch_is_generated_once_and_the_held_function_runs_its_code():
    """Issue 15 items 3-4: a policy with 1,000 window boundaries, every epoch used: no RecursionError,
    one module per epoch (never a rebuild of the ones before), and the same answers as the interpreter."""
    rules = "\n".join(f"permit w{i} {{ partner p purpose u basis contract fields l.naam "
                      f"students where jaar >= {i % 5} valid from {D(2020, 1, 1) + dt.timedelta(days=2 * i)} "
                      f"until {D(2020, 1, 1) + dt.timedelta(days=2 * i)} }}" for i in range(500))
    policy = avgpolicy.loads('dataset l "L" subject {\n naam text personal\n jaar int personal\n}\n'
                             'partner p "P" { role controller }\npurpose u "U"\n' + rules)
    before = set(linecache.cache)
    check = policy.compile("p", "u", ["l.naam"])
    assert 1000 == len(check.boundaries)
    student = {"naam": "x", "jaar": 3}
    for i in range(0, 1001, 1):
        day = D(2020, 1, 1) + dt.timedelta(days=i)
        assert policy.decide("p", "u", ["l.naam"], student, at=day, engine="interpreted") == check(student, day)
    check.specialise_all()
    mine = [f for f in set(linecache.cache) - before if f.startswith("<avgpolicy p/u")]
    assert len(check.boundaries) + 1 == len(mine)  # one per epoch (the first function's code is shared)
    assert check(student, D(2020, 1, 3)).allowed and not check({"naam": "x", "jaar": 0}, D(2020, 1, 3)).allowed


def test_a_request_over_the_atom_budget_is_served_by_the_interpreter():
    """Issue 15 item 4: 8 rules of 498 atoms are under the per-condition limit but over the request's budget."""
    rules = "\n".join(f"permit r{r} {{ partner p purpose u basis contract fields l.naam students where "
                      + " or ".join(f"jaar == {r * 1000 + i}" for i in range(498)) + " }" for r in range(8))
    policy = avgpolicy.loads('dataset l "L" subject {\n naam text personal\n jaar int personal\n}\n'
                             'partner p "P" { role controller }\npurpose u "U"\n' + rules)
    check = policy.compile("p", "u", ["l.naam"])
    assert check({"naam": "x", "jaar": 7003}, OCT).allowed
    assert not check({"naam": "x", "jaar": -1}, OCT).allowed
    assert "_interpret(s, day)" in check.source
    assert policy.decide("p", "u", ["l.naam"], {"jaar": "x"}, at=OCT, engine="interpreted") == \
        check({"jaar": "x"}, OCT)


def test_cost_does_not_depend_on_unrelated_rules():
    extra = "\n".join(f'partner x{i} "X" {{ role controller }}\n'
                      f'permit extra_{i} {{\n partner x{i}\n purpose leermiddelen\n'
                      f' basis contract\n fields leerling.roepnaam\n students where school == "S{i}"\n}}'
                      for i in range(50))
    policy = avgpolicy.loads(SCHOOL + extra)
    check = policy.compile("snappet", "leermiddelen", ["leerling.roepnaam"])
    check(GROEP5, OCT)
    small = avgpolicy.loads(SCHOOL).compile("snappet", "leermiddelen", ["leerling.roepnaam"])
    small(GROEP5, OCT)
    assert small.source == check.source


# -- cache ------------------------------------------------------------------------------

def test_equal_requests_hit_the_cache(policy):
    assert (0, 0, 4, 0) == tuple(policy.cache_info())
    a = policy.compile("snappet", "leermiddelen", ["leerling.roepnaam"])
    b = policy.compile("snappet", "leermiddelen", ["leerling.roepnaam"])
    assert a is b
    policy.decide("snappet", "leermiddelen", ["leerling.roepnaam"], GROEP5, at=OCT)
    policy.decide("snappet", "leermiddelen", ("leerling.roepnaam",), GROEP5, at=OCT)
    info = policy.cache_info()
    assert (3, 1, 4, 1) == (info.hits, info.misses, info.maxsize, info.currsize)
    # field order is part of the request
    policy.compile("snappet", "leermiddelen", ["leerling.eckid", "leerling.roepnaam"])
    policy.compile("snappet", "leermiddelen", ["leerling.roepnaam", "leerling.eckid"])
    assert 3 == policy.cache_info().misses


def test_cache_maxsize_is_honoured(policy):
    fields = ["leerling.roepnaam", "leerling.eckid", "leerling.id", "leerling.leerjaar", "leerling.lesgroepen",
              "leerling.bsn"]
    for f in fields:
        policy.compile("snappet", "leermiddelen", [f])
    assert 4 == policy.cache_info().currsize
    assert 6 == policy.cache_info().misses
    policy.compile("snappet", "leermiddelen", [fields[0]])   # evicted (least recently used): compiled again
    assert 7 == policy.cache_info().misses
    policy.compile("snappet", "leermiddelen", [fields[-1]])  # still cached
    assert 7 == policy.cache_info().misses


def test_warm_cache_across_a_window_boundary_equals_a_cold_one(policy):
    student = {**GROEP5, "actief": True}
    request = ("snappet", "leermiddelen", ["leerling.achternaam", "leerling.roepnaam"])
    for day in (D(2025, 8, 31), D(2025, 9, 1), D(2026, 6, 30), D(2026, 7, 1), D(2026, 8, 1)):
        warm = policy.decide(*request, student, at=day)
        cold = avgpolicy.loads(SCHOOL, cache_size=4).decide(*request, student, at=day)
        assert cold == warm


def test_cache_size_is_checked():
    with pytest.raises(ValueError):
        avgpolicy.loads(SCHOOL, cache_size=0)
    with pytest.raises(TypeError):
        avgpolicy.loads(SCHOOL, cache_size="big")


def test_concurrent_decisions_agree_with_the_interpreter(policy):
    days = [D(2025, 7, 31) + dt.timedelta(days=i * 37) for i in range(12)]
    students = [GROEP5, {**GROEP5, "school": "x"}, {}, {"leerjaar": True}, None]
    fields = ["leerling.roepnaam", "leerling.achternaam", "leerling.zorgnotitie"]
    expected = {(i, j): policy.decide("snappet", "leermiddelen", fields, s, at=day, engine="interpreted")
                for i, day in enumerate(days) for j, s in enumerate(students)}
    errors: list[str] = []

    def work() -> None:
        for _ in range(20):
            for (i, j), want in expected.items():
                got = policy.decide("snappet", "leermiddelen", fields, students[j], at=days[i])
                if got != want:
                    errors.append(f"{i} {j}")

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [] == errors


def _race_new_epochs() -> None:
    policy = avgpolicy.loads(SCHOOL)
    fields = ["leerling.roepnaam", "leerling.achternaam"]
    check = policy.compile("snappet", "leermiddelen", fields)
    student = {**GROEP5, "actief": True}
    days = [D(2025, 7, 31), D(2025, 8, 1), D(2025, 9, 1), D(2026, 7, 1), D(2026, 8, 1)] * 2
    expected = [policy.decide("snappet", "leermiddelen", fields, student, at=day, engine="interpreted")
                for day in days]
    barrier = threading.Barrier(len(days))
    results: dict[int, object] = {}

    def work(i: int) -> None:
        barrier.wait()
        for _ in range(50):
            results[i] = check(student, at=days[i])
            if results[i] != expected[i]:
                return

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(days))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert expected == [results[i] for i in range(len(days))]


def test_concurrent_first_calls_in_new_epochs_never_recurse_or_go_stale():
    for _ in range(5):
        _race_new_epochs()
