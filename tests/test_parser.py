"""Parser: spec examples parse to the expected nodes; syntax errors are located and recovered."""

import datetime

import pytest

from avgpolicy import nodes as n
from avgpolicy.parser import MAX_DEPTH, get_parser, keywords, parse, split_declarations
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
    # the missing `}` is supplied after reporting it, so rule `a` is still checked
    assert ["a", "b"] == [d.name.value for d in f.declarations]
    assert "x" == f.declarations[0].partner.names[0].value


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


# ---------------------------------------------------------------------------
# the fast path builds exactly the nodes (spans included) that Lark builds

import attrs  # noqa: E402
from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from avgpolicy import fastparse  # noqa: E402

_names = st.sampled_from(["a", "dus-i", "x_1", "leerling", "leerjaar", "school", "permit", "student", "in", "age",
                          "kind", "role", "controller", "key", "dpia", "covers"])
_ws = st.sampled_from([" ", "\n", "  ", "\t", " # comment\n", "\r\n"])
_literals = st.one_of(
    st.integers(-20, 2030).map(str), st.sampled_from(['"12AB"', '"a \\"q\\" b"', '""', "true", "false",
                                                       "2025-08-01", "2025-02-30", "9" * 5000]))
_ops = st.sampled_from(["==", "!=", "<", "<=", ">", ">="])


def _join(draw, parts):
    return "".join(p + draw(_ws) for p in parts)


@st.composite
def _atom(draw):
    x, lit = draw(_names), draw(_literals)
    form = draw(st.integers(0, 5))
    neg = draw(st.sampled_from(["", "not "]))
    if form == 0:
        return f"{x} {draw(_ops)} {lit}" if draw(st.booleans()) else f"{lit} {draw(_ops)} {x}"
    if form == 1:
        return f"{x} {neg}in [{', '.join(draw(st.lists(_literals, max_size=3)))}]"
    if form == 2:
        return f"{x} {neg}in {lit}..{draw(_literals)}"
    if form == 3:
        return f"{lit} {neg}in {x}"
    if form == 4:
        return f"{x} = {lit}"  # a common mistake: a syntax error
    return f"{x} {neg}in {x}"


_conditions = st.recursive(_atom(), lambda inner: st.one_of(
    st.tuples(inner, st.sampled_from([" and ", " or ", "\nand "]), inner).map("".join),
    inner.map(lambda e: f"not {e}"),
    inner.map(lambda e: f"({e})")), max_leaves=6)

_clauses = st.one_of(
    st.builds(lambda k, s: f"{k} {s}", st.sampled_from(["partner", "purpose"]),
              st.sampled_from(["snappet", "*", "* except dus-i, x", "a, b", "a b", "permit"])),
    st.sampled_from(["fields leerling.{roepnaam, id}, leerling.id as pseudonym, absentie.*",
                     "fields leerling.roepnaam", "fields leerling.", "basis consent(beeld)", "basis contract",
                     "basis consent", "art9 health_care", "valid from 2025-08-01 until 2026-07-31",
                     "valid until 2026-07-31", "valid", "retain 2 years", "retain -1 day", 'note "n"',
                     'basis legal_obligation("WPO, art. 178a")', 'basis public_task("a \\"b\\"")',
                     "basis public_task()", "basis legal_obligation(wet)", "art9 explicit_consent(zorg)",
                     "art9 explicit_consent()", 'dpia "DPIA-1"', "dpia x", "retain 5 hours"]),
    _conditions.map(lambda c: f"students where {c}"))

_test_clauses = st.sampled_from([
    "at 2025-10-01", "at 2025-10-01T14:30", "at 2025-10-01T25:30", "partner snappet", "purpose p",
    "partner *", 'student { school: "12AB", leerjaar: 5, geboortedatum: 2016-03-01, g: ["a", "b"], }',
    "student { }", "student { a: 1 a: 2 }", 'student { a: 1, a: 2 }', "student { g: [1] }",
    "consent beeld by parent on 2025-09-01", "consent beeld by student on 2025-09-01 withdrawn 2026-01-01",
    "expect allow leerling.roepnaam, leerling.eckid", "expect deny leerling.bsn because no_permit",
    "expect deny leerling.*", "expect maybe leerling.x"])


_partner_clauses = st.sampled_from([
    "role processor", "role controller", "role joint_controller", "kind vendor", "kind", "location NL",
    "location US", "transfer scc", "transfer", "rol processor", "kind a, b", 'kind "x"', "role permit"])
_agreement_clauses = st.sampled_from([
    "model convenant_4", "covers leerling.{eckid, roepnaam}, leerling.id, lesgroep.*", "covers leerling",
    "covers leerling.id as pseudonym", "purposes leermiddelen, toets", "purposes", "retain 1 year",
    "retain 2", "breach 24 hours", "breach 1 hour", "breach 24", 'dpia "DPIA-1"', "dpia", "modell own",
    "covers leerling.a, b", "breach 24 hours, 2 days"])
_controller_clauses = st.sampled_from([
    "kind public", "kind private", 'dpo "fg@school.nl"', "dpo fg", "breach_handling 24 hours",
    "breach_handling 1 day", "breach_handling", "kind", "knd public", "kind public"])


@st.composite
def _declarations(draw):
    kind = draw(st.integers(0, 7))
    if kind == 0:
        fields = draw(st.lists(st.tuples(_names, _names, _names, st.sampled_from(["", "key", "left", "kind"]))
                               .map(" ".join), max_size=3))
        return _join(draw, ["dataset", draw(_names), draw(st.sampled_from(['"L"', ""])),
                            draw(st.sampled_from(["subject", ""])), "{", *fields, "}"])
    if kind == 1:
        agreements = draw(st.lists(st.sampled_from(['agreement "A" valid from 2025-08-01 until 2026-07-31',
                                                    'agreement "B" valid until 2026-07-31', "agreement X",
                                                    'agreement "C" valid from 2025-08-01 {' + _join(
                                                        draw, draw(st.lists(_agreement_clauses, max_size=4)))
                                                    + "}"]),
                                   max_size=2))
        agreements += draw(st.lists(_partner_clauses, max_size=3))
        agreements = draw(st.permutations(agreements))
        body = ["{", *agreements, "}"] if draw(st.booleans()) else []
        return _join(draw, ["partner", draw(_names), draw(st.sampled_from(['"T"', ""])), *body])
    if kind == 2:
        return _join(draw, ["purpose", draw(_names), draw(st.sampled_from(['"T"', ""])),
                            draw(st.sampled_from(["", "kind education", "kind", "soort x", "kind controller"]))])
    if kind == 7:
        body = ["{", *draw(st.lists(_controller_clauses, max_size=4)), "}"] if draw(st.booleans()) else []
        return _join(draw, ["controller", draw(st.sampled_from(['"Stichting"', "x", '""'])), *body])
    if kind == 3:
        return _join(draw, ["consent", draw(_names), draw(st.sampled_from(['"T"', ""])),
                            draw(st.sampled_from(["reconfirm_at_16", ""]))])
    if kind == 6:
        return _join(draw, ["test", draw(_names), "{", *draw(st.lists(_test_clauses, max_size=6)), "}"])
    return _join(draw, [draw(st.sampled_from(["permit", "forbid"])), draw(_names), "{",
                        *draw(st.lists(_clauses, max_size=6)), draw(st.sampled_from(["}", "", "} }"]))])


@given(st.lists(_declarations(), min_size=1, max_size=4), st.data())
def test_fast_path_equals_lark(decls, data):
    text = "\n".join(decls)
    if data.draw(st.booleans()):  # a random cut or stray character
        i = data.draw(st.integers(0, len(text)))
        text = text[:i] + data.draw(st.sampled_from(["", "{", "}", ",", "(", "=", "'", "\v"])) + text[i + 1:]
    fast, fast_diags = parse(Source("t.avg", text))
    slow, slow_diags = parse(Source("t.avg", text), fast=False)
    assert attrs.asdict(slow) == attrs.asdict(fast)
    assert slow_diags == fast_diags


def test_fast_path_is_taken_for_valid_declarations_and_not_for_errors():
    ok = 'permit r { partner a purpose b basis contract fields l.x students where (x == 1 or y in 2..3) }'
    assert isinstance(fastparse.parse_declaration("t", ok, 1, keywords()), n.Rule)
    for bad in ["purpose permit", "permit r { partner a partner b }", 'purpose p "x', "permit r { valid }",
                "permit r { students where " + "not " * 100 + "a == 1 }", "test t { at 2025-02-30 }"]:
        with pytest.raises(fastparse.Fallback):
            fastparse.parse_declaration("t", bad, 1, keywords())


def test_keywords_read_from_the_grammar_text_equal_larks_terminals():
    from avgpolicy.parser import lark_keywords

    assert lark_keywords() == keywords()
    assert {"permit", "student", "not", "true", "reconfirm_at_16"} <= keywords()


# the character-by-character splitter the regex one replaced: the reference for it
def _reference_split(text):
    import re

    ident = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
    keywords_ = ("dataset", "partner", "purpose", "consent", "permit", "forbid", "test")
    always_top = {"dataset", "permit", "forbid", "test"}
    starts = [(0, 1)]
    depth, line, i, length, at_line_start = 0, 1, 0, len(text), True
    while i < length:
        ch = text[i]
        if ch == "\n":
            line += 1
            at_line_start = True
            i += 1
            continue
        if ch in " \t\r\f\v":
            i += 1
            continue
        if at_line_start:
            at_line_start = False
            m = ident.match(text, i)
            if m and m.group() in keywords_ and (depth <= 0 or m.group() in always_top):
                line_start = text.rfind("\n", 0, i) + 1
                if line_start > starts[-1][0]:
                    starts.append((line_start, line))
                else:
                    starts[-1] = (line_start, line)
                depth = 0
        if ch == "#":
            j = text.find("\n", i)
            i = length if j < 0 else j
            continue
        if ch == '"':
            j = i + 1
            while j < length and text[j] != '"':
                if text[j] == "\\" and j + 1 < length:
                    j += 1
                if text[j] == "\n":
                    line += 1
                j += 1
            i = j + 1
            continue
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        i += 1
    out = []
    for k, (start, first_line) in enumerate(starts):
        end = starts[k + 1][0] if k + 1 < len(starts) else length
        if re.sub(r"#[^\n]*", "", text[start:end]).strip():
            out.append((start, end, first_line))
    return out


_split_pieces = st.sampled_from(["permit", "forbid", "partner", "test", "dataset", "purpose", "consent", "x", " ",
                                 "\n", "\t", "\v", "{", "}", '"', '\\"', "\\", "#", "# permit\n", '"a\nb"', "\r\n"])


@given(st.lists(_split_pieces, max_size=40).map("".join))
def test_split_declarations_matches_the_reference(text):
    assert _reference_split(text) == list(split_declarations(text))


@pytest.mark.parametrize(("text", "where", "message", "help"), [
    ("permit r partner snappet }", (1, 10), "unexpected `partner`; expected `{`",
     "the body of a declaration goes between `{` and `}`"),
    ('permit r { students where school = "12AB" }', (1, 34), "`=` is not an operator", "compare with `==`"),
    ("permit r { fields leerling.a leerling.b }", (1, 30),
     "unexpected `leerling`; expected `,`, `as`, `}` or the next clause", "separate the items of a list with `,`"),
    ("permit r { partner a b }", (1, 22), "unexpected `b`; expected `,`, `}` or the next clause",
     "separate the items of a list with `,`"),
    ("permit r { partner a, }", (1, 23), "unexpected `}`; expected a name", "remove the `,` after the last item"),
    ("purpose p 'x'", (1, 11), "strings are written in double quotes", 'write `"text"`'),
    ("permit r { partner a\n", (1, 20), "declaration ends too early; expected `,`, `}` or the next clause",
     "a `}` is missing at the end of the declaration"),
    ("permit r { partners a }", (1, 12), "unexpected `partners`; expected `}` or the next clause",
     "did you mean `partner`?"),
    ("permit r { students where a == 1 && b == 2 }", (1, 34), "`&` is not an operator",
     "combine conditions with `and`"),
    ("permit r { students where x in 3-8 }", (1, 33), "unexpected `-8`; expected `..`",
     "write a range with two dots: `in 3..8`"),
    ('permit r { students where x in "a", "b" }', (1, 35), "unexpected `,`; expected `..`",
     'write a list of values in brackets: `in ["a", "b"]`'),
    ("permit r { valid 2025-01-01 }", (1, 18), "unexpected `2025-01-01`; expected `from` or `until`",
     "write `valid from DATE until DATE` (either part may be left out)"),
    ("permit r { partner a @ }", (1, 22), "unexpected character `@`; expected `,`, `}` or the next clause",
     "remove the character, or put the text in double quotes"),
    ("hello", (1, 1),
     "unexpected `hello`; expected `consent`, `controller`, `dataset`, `forbid`, `partner`, `permit`, "
     "`purpose` or `test`",
     "a declaration starts with one of these keywords"),
])
def test_syntax_errors_say_what_was_expected_in_words(text, where, message, help):
    (d,) = parse(Source("t.avg", text))[1]
    assert (where, message, help) == ((d.line, d.column), d.message, d.help)


def test_a_keyword_is_not_a_prefix_of_a_longer_word():
    # `partnersnappet` is one (unexpected) name, never `partner snappet`
    _, diags = parse(Source("t.avg", "permit r { partnersnappet }"))
    assert [("E001", 1, 12)] == [(d.code, d.line, d.column) for d in diags]
    _, diags = parse(Source("t.avg", "permit r { partner snappet }"), fast=False)
    assert [] == diags


def test_a_keyword_as_a_name_costs_only_that_name():
    text = 'dataset d "x" subject {\n  at date personal\n  roepnaam text personal\n}\n'
    f, diags = parse(Source("t.avg", text))
    assert [("E004", 2, 3)] == [(d.code, d.line, d.column) for d in diags]
    (ds,) = f.declarations
    assert ["at", "roepnaam"] == [fd.name.value for fd in ds.fields]


@pytest.mark.parametrize("fast", [True, False])
def test_several_declarations_on_one_line(fast):
    text = 'purpose a purpose b "B" consent c reconfirm_at_16 permit r { partner x } forbid s { fields l.x }\n'
    f, diags = parse(Source("t.avg", text), fast=fast)
    assert [] == diags
    assert ["a", "b", "c", "r", "s"] == [d.name.value for d in f.declarations]
    assert [1, 11, 25, 51, 74] == [d.span.column for d in f.declarations]


# ---------------------------------------------------------------------------
# v2 syntax (spec 7)

V2_TEXT = """controller "Stichting Openbaar Onderwijs Rivierland" {
    kind             public
    dpo              "fg@rivierland.nl"
    breach_handling  24 hours
}
dataset leerling "Leerlinggegevens" subject {
    id               text  personal  key
    uitschrijfdatum  date  personal  left
    kind             text  personal
}
partner snappet "Snappet B.V." {
    kind      vendor
    agreement "VO4-2025-031" valid from 2025-08-01 until 2026-07-31 {
        model     convenant_4
        covers    leerling.{id, kind}, leerling.uitschrijfdatum, lesgroep.*
        purposes  leermiddelen, toetsing
        retain    1 year
        breach    24 hours
        dpia      "DPIA-leermiddelen-2025"
    }
    role      processor
    location  US
    transfer  scc
    agreement "VO4-2024-007" valid until 2025-07-31
}
partner dus-i { role controller kind government }
purpose leermiddelen "Levering en gebruik van digitaal leermateriaal" kind education
permit zorg {
    partner  dus-i
    purpose  leermiddelen
    basis    legal_obligation("Wet op het primair onderwijs, art. 178a")
    art9     explicit_consent(zorg)
    fields   leerling.kind
    dpia     "DPIA-zorg"
    retain   36 hours
}
"""


@pytest.mark.parametrize("fast", [True, False])
def test_v2_declarations_parse_to_nodes_with_spans(fast):
    f, diags = parse(Source("t.avg", V2_TEXT), fast=fast)
    assert [] == diags
    ctrl, ds, snappet, dus_i, purpose, rule = f.declarations
    assert isinstance(ctrl, n.Controller)
    assert ("Stichting Openbaar Onderwijs Rivierland", "public", "fg@rivierland.nl") == (
        ctrl.title, ctrl.kind.value, ctrl.dpo)
    assert (24, "hours") == (ctrl.breach_handling.amount, ctrl.breach_handling.unit.value)
    assert ["kind", "dpo", "breach_handling"] == [k for k, _ in ctrl.clauses]
    assert 4 == ctrl.clause_span("breach_handling").line
    assert [("id", "key"), ("uitschrijfdatum", "left"), ("kind", None)] == [
        (fd.name.value, fd.role and fd.role.value) for fd in ds.fields]
    assert (7, 38) == (ds.fields[0].role.span.line, ds.fields[0].role.span.column)
    assert ("processor", "vendor", "US", "scc") == (snappet.role.value, snappet.kind.value,
                                                    snappet.location.value, snappet.transfer.value)
    assert ["kind", "role", "location", "transfer"] == [k for k, _ in snappet.clauses]
    a, old = snappet.agreements
    assert ["leerling.id", "leerling.kind", "leerling.uitschrijfdatum", "lesgroep.*"] == [r.ref for r in a.covers]
    assert ["leermiddelen", "toetsing"] == [p.value for p in a.purposes]
    assert ((1, "year"), (24, "hours")) == ((a.retain.amount, a.retain.unit.value),
                                            (a.breach.amount, a.breach.unit.value))
    assert ("DPIA-leermiddelen-2025", "convenant_4") == (a.dpia, a.model.value)
    assert 15 == a.clause_span("covers").line and 14 == a.clause_span("model").line
    assert (None, None, None, None) == (old.covers, old.purposes, old.dpia, old.model)
    assert ("controller", "government", None) == (dus_i.role.value, dus_i.kind.value, dus_i.location)
    assert "education" == purpose.kind.value
    assert ("legal_obligation", "Wet op het primair onderwijs, art. 178a") == (rule.basis.kind.value,
                                                                              rule.basis.law)
    assert ("explicit_consent", "zorg", "DPIA-zorg") == (rule.art9.value, rule.art9_topic.value, rule.dpia)
    assert (36, "hours") == (rule.retain.amount, rule.retain.unit.value)
    assert 34 == rule.clause_span("dpia").line


def test_the_fast_path_parses_every_v2_form_itself():
    from avgpolicy import fastparse as fp

    for start, end, line in split_declarations(V2_TEXT):
        fp.parse_declarations("t", V2_TEXT[start:end], line, keywords())  # no Fallback


def test_v1_texts_keep_using_v2_clause_words_as_names():
    f = parse_ok('dataset kind subject { role text personal\n model int personal transfer date personal }\n'
                 'purpose covers "c"\npartner location { role controller }\n'
                 'permit breach { partner location purpose covers fields kind.role basis contract }')
    assert ["kind", "covers", "location", "breach"] == [d.name.value for d in f.declarations]


def test_bare_bases_and_ground_parse_for_the_checker_to_report():
    f = parse_ok("permit r { basis legal_obligation art9 explicit_consent }")
    (rule,) = f.declarations
    assert (None, None) == (rule.basis.law, rule.art9_topic)


@pytest.mark.parametrize(("text", "expected"), [
    ("partner p { rol processor }", ("E001", 1, 13,
     "unknown clause `rol` in partner `p`; expected `role`, `kind`, `location`, `transfer` or `agreement`",
     "did you mean `role`?")),
    ("partner p { role processor role controller }", ("E006", 1, 28,
     "clause `role` appears more than once in partner `p`", "keep one `role` clause")),
    ('partner p { kind "vendor" }', ("E001", 1, 13, "`kind` in partner `p` takes one name",
                                     "write e.g. `kind public`")),
    ("partner p { location NL, DE }", ("E001", 1, 13, "`location` in partner `p` takes one name",
                                       "write e.g. `location NL`")),
    ('partner p { agreement "A" valid from 2025-01-01 { covers leerling } }', ("E001", 1, 51,
     '`covers` in agreement "A" takes fields as `dataset.field`', "write e.g. `covers leerling.{eckid, roepnaam}`")),
    ('partner p { agreement "A" valid from 2025-01-01 { breach 24 } }', ("E001", 1, 61,
     "unexpected `}`; expected a name", None)),
    ('partner p { agreement "A" valid from 2025-01-01 { dpia "x" dpia "y" } }', ("E006", 1, 60,
     'clause `dpia` appears more than once in agreement "A"', "keep one `dpia` clause")),
    ('controller "S" { kind public dpo fg }', ("E001", 1, 30, "`dpo` in the controller takes one string",
                                              'write e.g. `dpo "fg@school.nl"`')),
    ('controller "S" { knd public }', ("E001", 1, 18,
     "unknown clause `knd` in the controller; expected `kind`, `dpo` or `breach_handling`", "did you mean `kind`?")),
    ('purpose p "t" soort education', ("E001", 1, 15, "unexpected `soort` after a purpose; expected `kind`",
                                      "write the purpose's kind as `kind KIND`, e.g. `kind education`")),
    ('purpose controller', ("E004", 1, 9, "`controller` is a keyword and cannot be used as a name",
                            "choose another name, e.g. add a prefix or suffix")),
])
def test_v2_syntax_errors(text, expected):
    for fast in (True, False):
        (d,) = parse(Source("t.avg", text), fast=fast)[1]
        assert expected == (d.code, d.line, d.column, d.message, d.help)


# ---------------------------------------------------------------------------
# One mistake reports once (issue 16, items 3 and 4)

import avgpolicy  # noqa: E402
from avgpolicy.loader import analyse  # noqa: E402

SMALL_SET = '''dataset leerling "Leerlinggegevens" subject {
    id            text  personal  key
    roepnaam      text  personal
    leerjaar      int   personal
    school        text  personal
}
partner snappet "Snappet B.V." {
    kind vendor
    agreement "VO4-1" valid from 2025-08-01 until 2026-07-31 {
        covers leerling.{roepnaam, leerjaar} purposes leermiddelen retain 1 year breach 24 hours
    }
}
purpose leermiddelen "Digitaal leermateriaal" kind education
permit snappet_les {
    partner snappet
    purpose leermiddelen
    basis   public_task("WPO, art. 8")
    fields  leerling.{roepnaam, leerjaar}
    students where school == "12AB" and leerjaar in 3..8
    retain  6 months
}
test snappet_groep_5 {
    at 2025-10-01
    partner snappet
    purpose leermiddelen
    student { school: "12AB", leerjaar: 5 }
    expect allow leerling.roepnaam
}
'''


def load_errors(text: str) -> list[tuple[str, int, int, str]]:
    with pytest.raises(avgpolicy.PolicyError) as info:
        avgpolicy.loads(text)
    return [(d.code, d.line, d.column, d.message) for d in info.value.errors]


def test_the_small_set_is_clean():
    assert () == avgpolicy.loads(SMALL_SET).warnings


@pytest.mark.parametrize("reorder", [False, True])
def test_a_missing_brace_in_the_subject_dataset_reports_once(reorder):
    text = SMALL_SET.replace("    school        text  personal\n}\n", "    school        text  personal\n", 1)
    if reorder:  # the declaration after it is a dataset (always a new declaration)
        text = text.replace("partner snappet", 'dataset extra { x text personal }\npartner snappet', 1)
    assert [("E001", 5, 32, "declaration ends too early; expected `key`, `left`, `}` or a name")] \
        == load_errors(text)


def test_a_missing_brace_in_a_partner_does_not_swallow_the_next_partner():
    dus_i = 'partner dus-i "DUS-I" { role controller kind government }'
    text = SMALL_SET.replace("    }\n}\npurpose", f"    }}\n{dus_i}\npurpose", 1)
    f, diags = parse(Source("t.avg", text))
    assert [("E001", 11, 5)] == [(d.code, d.line, d.column) for d in diags]
    assert ["leerling", "snappet", "dus-i"] == [d.name.value for d in f.declarations[:3]]
    assert "a `}` is missing at the end of the declaration" == diags[0].help


@pytest.mark.parametrize("bad", ["2025-8-01", "01-08-2025", "2025-08-1x"])
def test_a_bad_date_in_a_partner_reports_once_and_the_partner_stays_known(bad):
    text = SMALL_SET.replace("valid from 2025-08-01", f"valid from {bad}", 1)
    assert [("E003", 9, 34, f"`{bad}` is not a valid date")] == load_errors(text)


def test_a_missing_brace_at_the_end_of_a_rule_hides_no_field_typo():
    text = SMALL_SET.replace("leerling.{roepnaam, leerjaar}\n", "leerling.{roepnaam, leerjaat}\n", 1)
    text = text.replace("    retain  6 months\n}\n", "    retain  6 months\n", 1)
    assert ["E105", "E001"] == [code for code, *_ in load_errors(text)]
    assert "leerjaat" in load_errors(text)[0][3]


def test_an_unrepairable_declaration_keeps_its_name_in_recovered():
    text = 'partner snappet "S" {\n  kind vendor\n  agreement "A" valid 2025-01-01 until 2026-01-01\n}\n'
    f, diags = parse(Source("t.avg", text))
    assert [("E001", 3, 23)] == [(d.code, d.line, d.column) for d in diags]
    assert () == f.declarations
    (rec,) = f.recovered
    assert ("partner", "snappet", 1) == (rec.keyword, rec.name.value, rec.name.span.line)
    assert isinstance(rec.node, n.Partner) and "vendor" == rec.node.kind.value  # what parsed before line 3
    assert [] == list(f.walk())[1:]  # a walk does not reach recovered nodes


def test_a_recovered_dataset_says_whether_it_is_the_subject():
    text = 'dataset leerling "L" subject {\n  id text personal\n  roepnaam text personal\n  x text personal;\n}\n'
    f, diags = parse(Source("t.avg", text))
    assert [("E002", 4, 18)] == [(d.code, d.line, d.column) for d in diags]
    (rec,) = f.recovered
    assert ("dataset", "leerling", True) == (rec.keyword, rec.name.value, rec.subject)
    assert ["id", "roepnaam"] == [fd.name.value for fd in rec.node.fields]


def test_identical_diagnostics_are_reported_once():
    bad = Source("x.avg", "permit r { partner a b }\n")
    _, diags = analyse([bad, Source("x.avg", bad.text)])
    assert 1 == sum(d.code == "E001" for d in diags)


@pytest.mark.parametrize("after", ["\n  students where leerjaar == 3\n}", " }", "\n  basis contract\n}", " # niets\n}",
                                   ""])
def test_an_empty_field_list_says_so(after):
    (d,) = parse(Source("t.avg", f"permit r {{\n  partner a\n  fields{after}"))[1]
    assert ("E001", 3, 3, "the field list of `fields` is empty") == (d.code, d.line, d.column, d.message)
    assert "list the fields after `fields`" in d.help
