"""Tests for the pytest plugin: .avg test blocks as pytest items (run through pytester)."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import pytest
from spec_texts import snappet_permit, snappet_test, write_set

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parent.parent


def _installed() -> bool:
    return any(ep.value == "avgpolicy._pytest_plugin" for ep in importlib.metadata.entry_points(group="pytest11"))


#: load the plugin explicitly unless the installed package's entry point already does
PLUGIN = () if _installed() else ("-p", "avgpolicy._pytest_plugin")

CATALOGUE = """
dataset leerling "Leerlingen" subject {
    roepnaam  text  personal
    achternaam text personal
    school    text  personal
    leerjaar  int   personal
}
partner snappet "Snappet" { role controller }
partner parro "Parro" { role controller }
purpose leermiddelen "Leermiddelen"

""" + snappet_permit('school == "12AB"') + """
permit parro_namen {
    partner  parro
    purpose  leermiddelen
    basis    public_task("Wet op het primair onderwijs, art. 8")
    fields   leerling.roepnaam
}
"""

# `test faalt_expres` on line 11, its `expect allow leerling.roepnaam` on line 16 (the tests below name both)
TESTS = ("\n" + snappet_test("groep_5", "12AB", extra="    expect deny  leerling.achternaam because no_permit\n")
         + "\n" + snappet_test("faalt_expres", "34CD"))


@pytest.fixture
def school(pytester: pytest.Pytester) -> pytest.Pytester:
    write_set(pytester.path / "policies", {"catalogue.avg": CATALOGUE, "tests/snappet.avg": TESTS})
    return pytester


def test_test_blocks_become_items_named_after_the_test(school: pytest.Pytester) -> None:
    result = school.runpytest(*PLUGIN, "policies", "--collect-only", "-q")
    assert ["policies/tests/snappet.avg::faalt_expres", "policies/tests/snappet.avg::groep_5"] == \
        sorted(line for line in result.outlines if "::" in line)


def test_passing_and_failing_tests_are_reported(school: pytest.Pytester) -> None:
    result = school.runpytest(*PLUGIN, "policies", "-rA")
    result.assert_outcomes(passed=1, failed=1)
    text = result.stdout.str()
    assert "test `faalt_expres` failed at" in text
    assert "failed at policies/tests/snappet.avg:11" in text
    assert "request: partner snappet, purpose leermiddelen, at 2025-10-01" in text
    assert "leerling.roepnaam (line 16): expected allow, got deny (not_in_subset)" in text
    assert "not_in_subset: the student is outside the subset of rule snappet_lesmateriaal" in text
    assert "DENIED: partner snappet" in text  # the decision's explain()
    assert 1 == result.ret


def test_a_single_test_file_still_loads_its_whole_set(school: pytest.Pytester) -> None:
    result = school.runpytest(*PLUGIN, "policies/tests/snappet.avg", "-k", "groep_5")
    result.assert_outcomes(passed=1, deselected=1)


def test_a_set_that_does_not_load_is_one_failing_item(school: pytest.Pytester) -> None:
    (school.path / "policies" / "broken.avg").write_text("permit kapot {\n  partner nobody\n}\n",
                                                         encoding="utf-8")
    result = school.runpytest(*PLUGIN, "policies")
    result.assert_outcomes(failed=1)
    text = result.stdout.str()
    assert "does not load" in text
    assert "broken.avg:" in text and "error[" in text


def test_avg_files_under_testpaths_are_not_collected_by_default(school: pytest.Pytester) -> None:
    school.makeini("[pytest]\ntestpaths = policies\n")
    school.makepyfile(test_other="def test_x():\n    pass\n")
    result = school.runpytest(*PLUGIN)
    assert 5 == result.ret  # nothing collected: the .avg files were reached only through testpaths


def test_the_ini_option_turns_collection_on_and_off(school: pytest.Pytester) -> None:
    school.makeini("[pytest]\ntestpaths = policies\navgpolicy_collect = always\n")
    school.runpytest(*PLUGIN).assert_outcomes(passed=1, failed=1)
    school.makeini("[pytest]\navgpolicy_collect = never\n")
    assert 5 == school.runpytest(*PLUGIN, "policies").ret
    school.makeini("[pytest]\navgpolicy_collect = sometimes\n")
    assert "avgpolicy_collect" in school.runpytest(*PLUGIN, "policies").stderr.str()


def test_the_plugin_does_not_import_the_engine_until_an_avg_file_is_collected(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    pytester.makepyfile(test_mod="import sys\n"
                        "def test_lazy():\n"
                        "    assert 'avgpolicy._pytest_plugin' in sys.modules\n"
                        "    loaded = {'avgpolicy.testing', 'avgpolicy.compiler', 'avgpolicy.interpreter'}\n"
                        "    assert set() == loaded & set(sys.modules)\n")
    result = pytester.runpytest_subprocess(*PLUGIN, "test_mod.py", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_the_bundled_example_set_passes(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest(*PLUGIN, str(ROOT / "policies"), "-q", f"--rootdir={ROOT}")
    outcomes = result.parseoutcomes()
    assert 0 == outcomes.get("failed", 0), result.stdout.str()
    assert outcomes.get("passed", 0) >= 10


def test_avg_coverage_lists_the_untested_rules(school: pytest.Pytester) -> None:
    result = school.runpytest(*PLUGIN, "policies", "--avg-coverage")
    text = result.stdout.str()
    assert "1/2 rules exercised" in text
    assert "untested parro_namen  policies/catalogue.avg:" in text
    assert "untested snappet_lesmateriaal" not in text


def test_the_set_root_is_the_nearest_folder_holding_the_catalogue(tmp_path: Path) -> None:
    from avgpolicy._pytest_plugin import set_root

    write_set(tmp_path, {"boards/a/catalogue.avg": CATALOGUE, "boards/a/tests/t.avg": TESTS,
                         "los/b/losse_test.avg": TESTS})
    a, b = tmp_path / "boards" / "a", tmp_path / "los" / "b"
    assert a.resolve() == set_root(a / "tests" / "t.avg", tmp_path / "elsewhere")  # invoked elsewhere
    assert (a / "tests").resolve() == set_root(a / "tests" / "t.avg", a / "tests")  # never above the bound
    assert a.resolve() == set_root(a / "catalogue.avg", tmp_path)
    assert b.resolve() == set_root(b / "losse_test.avg", tmp_path / "los")  # no catalogue: its own folder


def test_a_single_test_file_without_an_ini_file(school: pytest.Pytester) -> None:
    # without an ini file pytest's rootdir is the file's own folder; the set is still found
    result = school.runpytest(*PLUGIN, "policies/tests/snappet.avg", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)
