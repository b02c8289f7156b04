"""Parser: spec examples parse to the expected nodes; syntax errors are located and recovered."""

import datetime

import pytest

from avgpolicy import nodes as n
from avgpolicy.parser import MAX_DEPTH, get_parser, parse, split_declarations
from avgpolicy.source import Source


def parse_ok(text: str) -> n.File:
    f, diags = parse(Source("t.avg", text))
    assert [] == diags
    return f


def test_grammar_is_conflict_free_under_strict_lark():
    get_parser(strict=True)


def test_rule_clauses_and_field_group_expand():
    f = parse_ok("""
permit snappet_lesmateriaal {
    partner  snappet
    purpose  leermiddelen
    basis    contract
    fields   leerling.{eckid, roepnaam}, leerling.id as pseudonym
    students where school == "12AB" and leerjaar in 3..8
    valid    from 2025-08-01 until 2026-07-31
    retain   1 year
    note     "Alleen groepen 3 t/m 8"
}""")
    (rule,) = f.declarations
    assert isinstance(rule, n.Rule)
    assert ["leerling.eckid", "leerling.roepnaam", "leerling.id"] == [r.ref for r in rule.fields]
    assert "pseudonym" == rule.fields[2].transform.value
    assert n.Window(datetime.date(2025, 8, 1), datetime.date(2026, 7, 31)) == rule.window
    assert isinstance(rule.condition, n.And)
    assert rule.span is not None and (2, 1) == (rule.span.line, rule.span.column)
    assert rule.clause_span("students").line == 7


def test_and_binds_tighter_than_or_and_not_tighter_than_and():
    f = parse_ok('permit r { students where a == 1 or not b == 2 and c == 3 }')
    cond = f.declarations[0].condition
    assert isinstance(cond, n.Or)
    assert isinstance(cond.items[1], n.And)
    assert isinstance(cond.items[1].items[0], n.Not)


def test_string_escapes():
    f = parse_ok(r'purpose p "say \"hi\" \\ there"')
    assert 'say "hi" \\ there' == f.declarations[0].title


def test_syntax_error_is_located_and_parsing_resumes():
    text = "permit a {\n  partner x y\n}\npermit b {\n  fields leerling.\n}\npurpose ok\n"
    f, diags = parse(Source("t.avg", text))
    assert [("E001", 2, 13), ("E001", 6, 1)] == [(d.code, d.line, d.column) for d in diags]
    assert ["ok"] == [d.name.value for d in f.declarations if isinstance(d, n.Purpose)]


def test_missing_brace_does_not_swallow_the_next_rule():
    text = "permit a {\n  partner x\n\npermit b {\n  partner y\n}\n"
    f, diags = parse(Source("t.avg", text))
    assert ["E001"] == [d.code for d in diags]
    assert ["b"] == [d.name.value for d in f.declarations]


def test_keyword_as_name_is_reported():
    _, diags = parse(Source("t.avg", "purpose permit"))
    assert [("E004", 1, 9)] == [(d.code, d.line, d.column) for d in diags]


def test_invalid_date_is_reported():
    _, diags = parse(Source("t.avg", "partner p { agreement \"a\" valid from 2025-02-30 }"))
    assert [("E003", 1, 38)] == [(d.code, d.line, d.column) for d in diags]


def test_deep_nesting_gets_a_diagnostic_not_a_recursion_error():
    cond = "not " * 1000 + "a == 1"
    _, diags = parse(Source("t.avg", f"permit r {{ students where {cond} }}"))
    assert ["E005"] == [d.code for d in diags]
    alternating = "(" * 1000 + "a == 1" + " and b == 2) or c == 3" * 1000
    _, diags = parse(Source("t.avg", f"permit r {{ students where {alternating} }}"))
    assert ["E005"] == [d.code for d in diags]


def test_redundant_parentheses_are_not_nesting():
    f = parse_ok("permit r { students where " + "(" * 500 + "a == 1" + ")" * 500 + " }")
    assert isinstance(f.declarations[0].condition, n.Compare)


def test_nesting_up_to_the_limit_is_fine():
    parse_ok("permit r { students where " + "not " * (MAX_DEPTH - 1) + "a == 1 }")


def test_split_ignores_keywords_in_strings_and_comments():
    text = 'purpose a "x\npermit y"\n# permit z\npurpose b\n'
    assert [(0, 1), (34, 4)] == [(s, line) for s, _, line in split_declarations(text)]


@pytest.mark.parametrize("text", ["", "   \n# only a comment\n"])
def test_empty_text_has_no_declarations(text):
    assert () == parse_ok(text).declarations
