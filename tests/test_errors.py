"""Errors: how PolicyError renders diagnostics (file:line:col, source line, caret, help)."""

import pickle

import pytest

import avgpolicy
from avgpolicy.errors import Diagnostic, PolicyError

BASE = """\
dataset leerling "L" subject {
    roepnaam text personal
    leerjaar int  personal
}
partner snappet { role controller }
purpose leermiddelen
"""


def error_of(text):
    with pytest.raises(PolicyError) as info:
        avgpolicy.loads(text)
    return info.value


def test_one_file():
    err = error_of(BASE + "permit r {\n    partner snapet\n    purpose leermiddelen\n"
                          "    basis contract\n    fields leerling.roepnaam\n}\n")
    expected = (
        "<policy>:8:13: error[E101]: unknown partner `snapet`\n"
        "    partner snapet\n"
        "            ^^^^^^\n"
        "help: did you mean `snappet`?\n"
        "\n"
        "1 error in the policy set"
    )
    assert expected == str(err)
    (d,) = err.diagnostics
    assert ("E101", "error", "<policy>", 8, 13) == (d.code, d.severity, d.file, d.line, d.column)


def test_several_files_every_problem_in_order():
    err = error_of({
        "catalogue.avg": BASE,
        "rules/r.avg": "forbid f {\n  partner snappet\n  fields leerling.naam\n}\n",
        "rules/s.avg": "permit s { partner snappet purpose x basis contract fields leerling.roepnaam }\n",
    })
    expected = (
        "rules/r.avg:3:19: error[E105]: unknown field `leerling.naam`: dataset `leerling` has no field `naam`\n"
        "  fields leerling.naam\n"
        "                  ^^^^\n"
        "help: did you mean `roepnaam`?\n"
        "\n"
        "rules/s.avg:1:36: error[E102]: unknown purpose `x`\n"
        "permit s { partner snappet purpose x basis contract fields leerling.roepnaam }\n"
        "                                   ^\n"
        "help: declare it with `purpose NAME`\n"
        "\n"
        "2 errors in the policy set"
    )
    assert expected == str(err)


def test_errors_come_before_warnings_and_warnings_are_shown():
    err = error_of({
        "a.avg": BASE + "permit p { partner * purpose leermiddelen basis contract fields leerling.roepnaam }\n",
        "b.avg": "purpose leermiddelen\n",
    })
    assert ["E201", "W004"] == [d.code for d in err.diagnostics]
    assert ["E201"] == [d.code for d in err.errors]
    text = str(err)
    assert text.index("error[E201]") < text.index("warning[W004]")
    assert "b.avg:1:9: error[E201]: purpose `leermiddelen` is declared more than once" in text
    assert text.endswith("1 error in the policy set")


def test_syntax_error_caret_and_tabs():
    err = error_of(BASE + "permit r {\n\tpartner snappet snappet\n}\n")
    (d,) = err.diagnostics
    assert ("E001", 8, 18) == (d.code, d.line, d.column)
    assert "\tpartner snappet snappet\n\t                ^^^^^^^" in str(err)


def test_caret_on_a_multi_line_span_marks_one_character():
    d = Diagnostic("E999", "error", "m", "f.avg", 2, 3, 4, 1)
    assert "f.avg:2:3: error[E999]: m\nab cd\n  ^" == d.render({"f.avg": "x\nab cd\n"})


def test_a_diagnostic_for_an_unknown_file_renders_its_headline_only():
    d = Diagnostic("W005", "warning", "m", "gone.avg", 1, 1, 1, 2, help="h")
    assert "gone.avg:1:1: warning[W005]: m\nhelp: h" == d.render({})


def test_policy_error_pickles_with_its_sources():
    err = error_of(BASE + "purpose leermiddelen\n")
    again = pickle.loads(pickle.dumps(err))
    assert str(err) == str(again)


def test_json_shape_of_a_diagnostic():
    err = error_of(BASE + "purpose leermiddelen\n")
    assert {"code": "E201", "severity": "error", "file": "<policy>", "line": 7, "column": 9} == {
        k: v for k, v in err.diagnostics[0].to_dict().items() if k in ("code", "severity", "file", "line", "column")}


def test_version_does_not_depend_on_file_order_but_on_content():
    files = {"catalogue.avg": BASE,
             "rules.avg": "permit r { partner snappet purpose leermiddelen basis contract fields leerling.roepnaam\n"
                          "  students where leerjaar > 3 }\n"}
    forward = avgpolicy.loads(files)
    backward = avgpolicy.loads(dict(reversed(list(files.items()))))
    assert forward.version == backward.version
    changed = avgpolicy.loads({**files, "rules.avg": files["rules.avg"].replace("> 3", "> 4")})
    assert forward.version != changed.version
    assert avgpolicy.loads(files, timezone="UTC").version != forward.version
