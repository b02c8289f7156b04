"""Code generation safety: hostile names and strings compile into inert code.

Policy identifiers that are Python builtins, dunders or the compiler's own local
names, and strings with quotes, backslashes, U+2028/U+2029, NUL, 100,000
characters or Python code in them, go through the compiler. The generated
``ast.Module`` is inspected: policy values appear only as ``ast.Constant`` values
or behind generated namespace names, no ``Name`` equals a policy identifier, there
is no import, no dunder attribute and no call of anything but the namespace's
helpers. Renaming every identifier leaves the code's shape unchanged, and the
decisions are still right (and equal the interpreter's).
"""

from __future__ import annotations

import ast
import datetime
import re

import pytest
from fuzz_strategies import Layout, policy_specs, rename_spec, render, requests_for
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import avgpolicy

AT = datetime.date(2025, 10, 1)
HOSTILE = '"); __import__(\'os\').system(\'echo pwned\') #\u2028\u2029\x00\\ \'\'\' """ {x} %s \\x41 \r\n\t'
LONG = ("A\\\"'\u2028" * 25_000)[:100_000]
HUGE = int("9" * 4000)

# identifiers that are Python builtins, dunders, modules, or names the compiler uses itself
IDENTS = {
    "dataset": "__class__", "partner": "__import__", "partner2": "os", "purpose": "__subclasses__",
    "purpose2": "exec", "topic": "__globals__", "rule": "eval", "rule2": "__builtins__",
    "f_text": "__import__", "f_int": "exec", "f_set": "os", "f_date": "__dict__", "f_bool": "print",
    "f_clash1": "_v0", "f_clash2": "s", "f_clash3": "_decision", "f_clash4": "g", "f_clash5": "_type",
    "f_special": "getattr",
}


def escape(s: str) -> str:
    return s.replace("\\", "\\\\").replace('"', '\\"')


def policy_text(ids: dict[str, str]) -> str:
    i = ids
    return f"""
dataset {i['dataset']} "{escape(HOSTILE)}" subject {{
    {i['f_text']} text personal
    {i['f_int']} int personal
    {i['f_set']} set personal
    {i['f_date']} date personal
    {i['f_bool']} bool personal
    {i['f_clash1']} text personal
    {i['f_clash2']} text personal
    {i['f_clash3']} text personal
    {i['f_clash4']} int personal
    {i['f_clash5']} text personal
    {i['f_special']} text special
    geboortedatum date personal
}}
partner {i['partner']} "{escape(HOSTILE)}" {{ agreement "{escape(HOSTILE)}" valid from 2025-01-01 until 2026-12-31 }}
partner {i['partner2']} "{escape(LONG)}" {{ role controller }}
purpose {i['purpose']} "{escape(HOSTILE)}"
purpose {i['purpose2']}
consent {i['topic']} "{escape(HOSTILE)}"
permit {i['rule']} {{
    partner {i['partner']}, {i['partner2']}
    purpose {i['purpose']}
    basis consent({i['topic']})
    art9 explicit_consent({i['topic']}) dpia "{escape(HOSTILE)}"
    fields {i['dataset']}.{{{i['f_text']}, {i['f_int']}, {i['f_set']}, {i['f_bool']}, {i['f_clash1']}}},
           {i['dataset']}.{i['f_clash2']}, {i['dataset']}.{i['f_clash3']}, {i['dataset']}.{i['f_clash4']},
           {i['dataset']}.{i['f_clash5']}, {i['dataset']}.{i['f_special']},
           {i['dataset']}.{i['f_date']} as year
    students where ({i['f_text']} != "{escape(HOSTILE)}" or {i['f_text']} in ["{escape(LONG)}", "x"])
        and {i['f_int']} < {HUGE} and {i['f_int']} not in [-{HUGE}, {HUGE}]
        and not "{escape(HOSTILE)}" in {i['f_set']}
        and {i['f_clash1']} != "{escape(HOSTILE)}" and {i['f_clash4']} in -{HUGE}..{HUGE}
        and {i['f_bool']} == true and {i['f_date']} >= 2000-01-01 and age >= 5
    valid from 2025-08-01 until 2026-07-31
    note "{escape(LONG)}"
}}
forbid {i['rule2']} {{
    partner {i['partner2']}
    fields {i['dataset']}.{i['f_special']}
    students where {i['f_clash2']} == "{escape(HOSTILE)}"
    note "{escape(HOSTILE)}"
}}
"""


BLAND = {k: f"n{j}" for j, k in enumerate(IDENTS)}
BLAND["f_text"], BLAND["f_int"], BLAND["f_set"] = "n_text", "n_int", "n_set"  # the same name twice above


def student(ids: dict[str, str], **overrides: object) -> dict[str, object]:
    record: dict[str, object] = {
        ids["f_text"]: HOSTILE + "!", ids["f_int"]: 7, ids["f_set"]: frozenset({"a", LONG}),
        ids["f_date"]: datetime.date(2010, 5, 1), ids["f_bool"]: True, ids["f_clash1"]: LONG,
        ids["f_clash2"]: "x\x00y", ids["f_clash3"]: HOSTILE, ids["f_clash4"]: -3, ids["f_clash5"]: "",
        ids["f_special"]: "geheim", "geboortedatum": datetime.date(2010, 5, 1),
        "consents": {ids["topic"]: avgpolicy.decision.Consent(by="parent", given=datetime.date(2025, 1, 1))},
    }
    record.update(overrides)
    return record


def fields_of(ids: dict[str, str]) -> list[str]:
    return [f"{ids['dataset']}.{ids[k]}" for k in ("f_text", "f_int", "f_set", "f_date", "f_bool", "f_clash1",
                                                   "f_clash2", "f_clash3", "f_clash4", "f_clash5", "f_special")]


def compiled(ids: dict[str, str], partner_key: str = "partner"):
    policy = avgpolicy.loads(policy_text(ids), pseudonym_key=b"k" * 32)
    check = policy.compile(ids[partner_key], ids["purpose"], fields_of(ids))
    check.specialise_all()
    return policy, check


def names_used(tree: ast.AST) -> tuple[set[str], set[str]]:
    """(every identifier the code binds or reads, the ones it reads without binding)."""
    bound: set[str] = set()
    loaded: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            (bound if isinstance(node.ctx, ast.Store) else loaded).add(node.id)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(node.name)
    return bound | loaded, loaded - bound


def shape(tree: ast.AST) -> str:
    """The tree with every constant blanked out: what policy *values* cannot influence."""
    tree = ast.parse(ast.unparse(tree))
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant):
            node.value = "·" if isinstance(node.value, str) else node.value
            if isinstance(node.value, int) and not isinstance(node.value, bool) and abs(node.value) > 10**6:
                node.value = 0
    return ast.dump(tree)


def generated(check, kind: str) -> tuple[ast.Module, str]:
    """(tree, source) of the held decision function, or of filter's generated loop."""
    if kind == "decide":
        return check.code_tree, check.source
    rows = check.filter_for(AT)
    assert rows is not None and rows.code_tree is not None
    return rows.code_tree, rows.source


@pytest.mark.parametrize("kind", ["decide", "filter"])
@pytest.mark.parametrize("partner_key", ["partner", "partner2"])
def test_generated_code_is_inert(partner_key: str, kind: str) -> None:
    _, check = compiled(IDENTS, partner_key)
    tree, source = generated(check, kind)
    assert isinstance(tree, ast.Module) and tree.body
    names, free = names_used(tree)
    hostile_idents = {v for k, v in IDENTS.items() if not k.startswith("f_clash")}
    assert set() == names & hostile_idents
    # every free name is a generated namespace entry (`_v3`, `_type`, `_decision`, ...)
    assert all(re.fullmatch(r"_[a-z]+\d*", x) for x in free), free
    for node in ast.walk(tree):
        assert not isinstance(node, (ast.Import, ast.ImportFrom, ast.Global, ast.Nonlocal, ast.Lambda,
                                     ast.ClassDef, ast.Delete, ast.With, ast.Try, ast.Raise))
        if isinstance(node, ast.Attribute):
            assert not node.attr.startswith("__"), node.attr
            assert node.attr not in hostile_idents, node.attr
        if isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Subscript):
                # a table of generated functions, indexed by a generated name (the per-epoch table)
                assert isinstance(func.value, ast.Name) and re.fullmatch(r"_[a-z]+\d*", func.value.id), ast.dump(func)
                assert isinstance(func.slice, ast.Name) and re.fullmatch(r"_[a-z]+\d*", func.slice.id), ast.dump(func)
                func = func.value
            target = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None
            assert target is not None and target not in {"eval", "exec", "compile", "getattr", "__import__",
                                                         "open", "setattr", "globals", "vars"}, ast.dump(func)
        # the only strings in the code are constants, so policy text can only be data
        for field_name, value in ast.iter_fields(node):
            if isinstance(value, str) and not isinstance(node, ast.Constant):
                assert value not in (HOSTILE, LONG) and "\x00" not in value and "\u2028" not in value, \
                    (type(node).__name__, field_name)
    # the source is valid Python and means the same tree
    assert ast.dump(ast.parse(source)) == ast.dump(ast.parse(ast.unparse(tree)))


@pytest.mark.parametrize("kind", ["decide", "filter"])
def test_identifiers_do_not_shape_the_code(kind: str) -> None:
    """Renaming every identifier (builtins, dunders, clashes with compiler locals -> n0, n1, ...)
    changes only constants of the generated code, never its structure or names."""
    _, hostile = compiled(IDENTS)
    _, bland = compiled(BLAND)
    assert shape(generated(bland, kind)[0]) == shape(generated(hostile, kind)[0])


def test_decisions_under_hostile_names_are_right() -> None:
    policy, check = compiled(IDENTS)
    fields = fields_of(IDENTS)
    good = student(IDENTS)
    d = check(good, at=AT)
    assert True is d.allowed, d.explain()
    assert policy.decide(IDENTS["partner"], IDENTS["purpose"], fields, good, at=AT, engine="interpreted") == d
    # every part of the condition still bites
    for key, bad_value in [("f_text", HOSTILE), ("f_int", HUGE), ("f_set", frozenset({HOSTILE})),
                           ("f_clash1", HOSTILE), ("f_bool", False), ("f_clash4", HUGE + 1)]:
        record = student(IDENTS, **{IDENTS[key]: bad_value})
        denied = check(record, at=AT)
        assert False is denied.allowed, key
        assert {"not_in_subset"} == {r.code for r in denied.reasons if r.code != "permitted"}, key
        assert denied == policy.decide(IDENTS["partner"], IDENTS["purpose"], fields, record, at=AT,
                                       engine="interpreted")
    # the forbid matches on a NUL-free hostile value for partner2 only
    record = student(IDENTS, **{IDENTS["f_clash2"]: HOSTILE})
    d2 = policy.decide(IDENTS["partner2"], IDENTS["purpose"], fields, record, at=AT)
    assert "forbidden" == d2.fields[f"{IDENTS['dataset']}.{IDENTS['f_special']}"].reasons[0].code
    assert d2 == policy.decide(IDENTS["partner2"], IDENTS["purpose"], fields, record, at=AT, engine="interpreted")
    # the year transform and values with NUL and U+2028 pass through filter as data
    (row,) = policy.filter(IDENTS["partner"], IDENTS["purpose"], fields, [good], at=AT)
    assert 2010 == row[f"{IDENTS['dataset']}.{IDENTS['f_date']}"]
    assert LONG == row[f"{IDENTS['dataset']}.{IDENTS['f_clash1']}"]
    assert "x\x00y" == row[f"{IDENTS['dataset']}.{IDENTS['f_clash2']}"]


@settings(max_examples=40, deadline=None)
@given(policy_specs(max_rules=5, with_tests=False), st.data())
def test_generated_sets_compile_to_inert_code(spec, data: st.DataObject) -> None:
    """Any generated set: the names in the generated code do not depend on the policy's
    identifiers (renaming them all gives the same names), and free names are namespace entries."""
    renamed = rename_spec(spec, lambda name: "q" + name)
    partner, purpose, fields = data.draw(requests_for(spec))
    assume("onbekend" not in (partner, purpose))  # an undeclared name is never compiled (UnknownNameError)
    codes = []
    for s, (p, u) in ((spec, (partner, purpose)), (renamed, ("q" + partner, "q" + purpose))):
        policy = avgpolicy.loads(render(s, Layout(1)))
        refs = [".".join("q" + x if s is renamed and x not in ("geboortedatum",) else x for x in f.split("."))
                for f in fields]
        check = policy.compile(p, u, refs)
        check.specialise_all()
        codes.append(check.code_tree)
        rows = check.filter_for(AT)
        codes.append(rows.code_tree if rows is not None and hasattr(rows, "code_tree") else ast.Module([], []))
    for original, other in ((codes[0], codes[2]), (codes[1], codes[3])):  # decide, filter
        (names, free), (renamed_names, _) = names_used(original), names_used(other)
        assert renamed_names == names
        assert all(re.fullmatch(r"_[a-z]+\d*", x) for x in free), free
