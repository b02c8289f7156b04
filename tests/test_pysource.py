"""pysource.unparse: the display source of generated code means what ast.unparse gives (the same tree)."""

from __future__ import annotations

import ast
import datetime

import pytest

import avgpolicy
from avgpolicy.pysource import unparse
from benchmarks import gen
from benchmarks.compile_cases import PARTNER, PURPOSE, STUDENT, cases
from tests.test_codegen_safety import IDENTS, compiled


def same_code(tree: ast.Module) -> None:
    text = unparse(tree)
    assert ast.dump(ast.parse(ast.unparse(tree))) == ast.dump(ast.parse(text)), text


def generated_trees() -> list[ast.Module]:
    trees = []
    pol = avgpolicy.loads(gen.policy_texts(100), pseudonym_key=b"k" * 32, today=gen.AT)
    for q in gen.QUERIES:
        check = pol.compile(q.partner, q.purpose, list(q.fields))
        check.specialise_all()
        trees.append(check.code_tree)
        for report in (False, True):
            rows = check.filter_for(gen.AT, report=report)
            if rows is not None:
                trees.append(rows.code_tree)
    for case in cases():
        check = avgpolicy.loads(case.text).compile(PARTNER, PURPOSE, list(case.fields))
        check(STUDENT, case.at)
        trees.append(check.code_tree)
    _, hostile = compiled(IDENTS)
    trees.append(hostile.code_tree)
    rows = hostile.filter_for(datetime.date(2025, 10, 1))
    if rows is not None:
        trees.append(rows.code_tree)
    return trees


def test_generated_code_unparses_to_the_same_tree() -> None:
    trees = generated_trees()
    assert len(trees) > 10
    for tree in trees:
        same_code(tree)


@pytest.mark.parametrize("source", [
    "x = a and (b and c) and not (d or e)",
    "x = (a or b) and c or not d",
    "x = not not a < b <= c",
    "x = (a < b) < c",
    "x = a + b + (c + d) - (e - f)",
    "x = 1 << (a | b) | c",
    "x = (a if b else c) if (d if e else f) else g if h else i",
    "x = f((y := g(1)), (2,), (), ((1, 2), None)[k])",
    "x = (3).real + (-3) + 'a\\u2028\"\\'b'[0]",
    "x = {}",
    "def f(s, at=None):\n    '''doc \"\"\" with quotes'''\n    'not a docstring'\n    yield s",
    "def f(a, b=1, *c, d, **e):\n    return\n",
    "for s in t:\n    try:\n        continue\n    finally:\n        x += 1\n",
    "if a:\n    pass\nelif b:\n    pass\nelse:\n    if c:\n        pass\n    x = 1\n",
    "x = f(a, key=1)\nwhile a:\n    break\n",
])
def test_unparse_keeps_precedence_and_falls_back_for_other_nodes(source: str) -> None:
    same_code(ast.parse(source))
