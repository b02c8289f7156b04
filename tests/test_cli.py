"""Tests for the command line: every subcommand, exit codes 0/1/2, JSON output, colour rules."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from spec_texts import snappet_permit, snappet_test, write_set

from avgpolicy import cli
from avgpolicy.cli import main

ROOT = Path(__file__).resolve().parent.parent
POLICIES = str(ROOT / "policies")

SMALL = """
dataset leerling "Leerlingen" subject {
    roepnaam      text  personal
    achternaam    text  personal
    geboortedatum date  personal
    school        text  personal
    leerjaar      int   personal
    lesgroepen    set   personal
    foto          text  personal
}
partner snappet "Snappet" { role controller }
partner website "Website" { role controller }
purpose leermiddelen "Leermiddelen"
purpose publicatie "Publicatie"
consent beeldmateriaal "Foto's"

""" + snappet_permit('school == "12AB" and ("plusklas" in lesgroepen or leerjaar >= 3)') + """
permit website_fotos {
    partner  website
    purpose  publicatie
    basis    consent(beeldmateriaal)
    fields   leerling.foto
}

""" + snappet_test("groep_5", "12AB")

# `test faalt` on line 2, its `expect allow leerling.roepnaam` on line 7 (the tests below name both)
FAILING_TEST = "\n" + snappet_test("faalt", "34CD")


@pytest.fixture
def small(tmp_path: Path) -> Path:
    return write_set(tmp_path / "set", {"school.avg": SMALL})


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# -- check -------------------------------------------------------------------

def test_check_a_clean_set(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "check", POLICIES)
    assert 0 == code
    assert "0 errors" in out


def test_check_reports_errors_with_exit_1(capsys: pytest.CaptureFixture[str], small: Path) -> None:
    (small / "kapot.avg").write_text("permit kapot {\n    partner onbekend\n}\n", encoding="utf-8")
    code, out, _ = run(capsys, "check", str(small))
    assert 1 == code
    assert "kapot.avg:" in out and "error[" in out
    code, out, _ = run(capsys, "check", str(small), "--format", "json")
    data = json.loads(out)
    assert 1 == code
    assert data["errors"] >= 1
    assert all({"code", "severity", "message", "file", "line", "column"} <= set(d) for d in data["diagnostics"])


def test_missing_path_is_wrong_usage(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    for command in ("check", "test", "register"):
        code, _, err = run(capsys, command, str(tmp_path / "nergens"))
        assert (2, True) == (code, "nergens" in err), command


def test_a_folder_without_policy_files_is_wrong_usage(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    for command in ("check", "test", "register"):
        code, _, err = run(capsys, command, str(tmp_path))
        assert 2 == code, command
        assert err.startswith(f"avgpolicy {command}: "), err


def test_bad_arguments_are_wrong_usage(capsys: pytest.CaptureFixture[str]) -> None:
    assert 2 == run(capsys, "frobnicate")[0]
    assert 2 == run(capsys, "check")[0]
    assert 2 == run(capsys, "register", POLICIES, "--format", "pdf")[0]
    assert 2 == run(capsys, "explain", POLICIES, "--partner", "snappet")[0]
    assert 0 == run(capsys, "--help")[0]


# -- test --------------------------------------------------------------------

def test_test_passes_on_the_bundled_set(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "test", POLICIES)
    assert 0 == code, out
    assert "0 failed" in out


def test_test_reports_a_failing_test_with_exit_1(capsys: pytest.CaptureFixture[str], small: Path) -> None:
    write_set(small, {"faalt.avg": FAILING_TEST})
    code, out, _ = run(capsys, "test", str(small))
    assert 1 == code
    assert "FAIL faalt" in out
    assert "faalt.avg:2" in out
    assert "leerling.roepnaam (line 7): expected allow, got deny (not_in_subset" in out
    assert "1 test passed, 1 failed" in out


def test_test_coverage_lists_untested_rules(capsys: pytest.CaptureFixture[str], small: Path) -> None:
    code, out, _ = run(capsys, "test", str(small), "--coverage")
    assert 0 == code
    assert "rule coverage: 1/2 rules exercised (50%)" in out
    assert "untested website_fotos" in out
    assert "snappet_lesmateriaal" not in out.split("rule coverage")[1]


def test_test_json(capsys: pytest.CaptureFixture[str], small: Path) -> None:
    write_set(small, {"faalt.avg": FAILING_TEST})
    code, out, _ = run(capsys, "test", str(small), "--format", "json")
    data = json.loads(out)
    assert 1 == code
    assert {"faalt": False, "groep_5": True} == {t["name"]: t["passed"] for t in data["tests"]}
    [failed] = [t for t in data["tests"] if not t["passed"]]
    assert "not_in_subset" in [r["code"] for r in failed["failures"][0]["reasons"]]
    assert ["website_fotos"] == [u["rule"] for u in data["coverage"]["untested"]]


def test_test_on_a_broken_set_exits_1_with_diagnostics(capsys: pytest.CaptureFixture[str], small: Path) -> None:
    (small / "kapot.avg").write_text("permit kapot {\n    partner onbekend\n}\n", encoding="utf-8")
    code, _, err = run(capsys, "test", str(small))
    assert 1 == code
    assert "kapot.avg:" in err and "error[" in err
    code, out, _ = run(capsys, "test", str(small), "--format", "json")
    data = json.loads(out)
    assert (1, False) == (code, data["loaded"])
    assert any(d["file"].endswith("kapot.avg") for d in data["diagnostics"])


# -- explain -----------------------------------------------------------------

def _student(tmp_path: Path, data: object) -> str:
    path = tmp_path / "student.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return str(path)


def test_explain_converts_json_dates_sets_and_consents(capsys: pytest.CaptureFixture[str], small: Path,
                                                      tmp_path: Path) -> None:
    student = _student(tmp_path, {"school": "12AB", "leerjaar": 1, "lesgroepen": ["1A", "plusklas"],
                                  "geboortedatum": "2019-03-01",
                                  "consents": {"beeldmateriaal": {"by": "parent", "given": "2025-09-01",
                                                                  "withdrawn": None}}})
    code, out, _ = run(capsys, "explain", str(small), "--partner", "snappet", "--purpose", "leermiddelen",
                       "--fields", "leerling.roepnaam, leerling.achternaam", "--student", student,
                       "--at", "2025-10-01")
    assert 0 == code
    assert "leerling.roepnaam: allowed by snappet_lesmateriaal" in out  # the list became a set
    assert "leerling.achternaam: denied" in out
    code, out, _ = run(capsys, "explain", str(small), "--partner", "website", "--purpose", "publicatie",
                       "--fields", "leerling.foto", "--student", student, "--at", "2025-10-01T12:00",
                       "--format", "json")
    data = json.loads(out)
    assert (0, True) == (code, data["allowed"])  # consent dates became dates
    assert "website_fotos" == data["fields"]["leerling.foto"]["rule"]


def test_explain_bad_input_is_wrong_usage(capsys: pytest.CaptureFixture[str], small: Path, tmp_path: Path) -> None:
    base = ["explain", str(small), "--partner", "snappet", "--purpose", "leermiddelen", "--fields",
            "leerling.roepnaam"]
    bad_json = tmp_path / "bad.json"
    bad_json.write_text("{not json", encoding="utf-8")
    code, _, err = run(capsys, *base, "--student", str(bad_json))
    assert (2, True) == (code, "not valid JSON" in err)
    assert 2 == run(capsys, *base, "--student", str(tmp_path / "missing.json"))[0]
    assert 2 == run(capsys, *base, "--student", _student(tmp_path, [1, 2]))[0]
    code, _, err = run(capsys, *base, "--student", _student(tmp_path, {}), "--at", "gisteren")
    assert (2, True) == (code, "--at" in err)


def test_explain_ill_typed_student_values_are_denied_not_an_error(capsys: pytest.CaptureFixture[str], small: Path,
                                                                 tmp_path: Path) -> None:
    student = _student(tmp_path, {"school": "12AB", "leerjaar": "vijf", "geboortedatum": "1 maart"})
    code, out, _ = run(capsys, "explain", str(small), "--partner", "snappet", "--purpose", "leermiddelen",
                       "--fields", "leerling.roepnaam", "--student", student, "--at", "2025-10-01",
                       "--format", "json")
    data = json.loads(out)
    assert (0, False) == (code, data["allowed"])
    assert "missing_attribute" in [r["code"] for r in data["reasons"]]


# -- register ----------------------------------------------------------------

@pytest.mark.parametrize("fmt", ["md", "csv", "json", "html"])
def test_register_formats(capsys: pytest.CaptureFixture[str], fmt: str) -> None:
    code, out, _ = run(capsys, "register", POLICIES, "--format", fmt, "--today", "2026-03-02")
    assert 0 == code
    assert "snappet" in out
    if fmt == "json":
        json.loads(out)


def test_register_to_a_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    target = tmp_path / "register.md"
    code, out, _ = run(capsys, "register", POLICIES, "-o", str(target), "--today", "2026-03-02")
    assert (0, "") == (code, out)
    assert "snappet" in target.read_text(encoding="utf-8")


# -- demo --------------------------------------------------------------------

def test_demo_runs_end_to_end(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, err = run(capsys, "demo", "--students", "300", "--seed", "7", "--folder", str(tmp_path))
    assert 0 == code
    assert "300 synthetic students" in out
    assert "decisions/s" in out
    assert "snappet" in out and "forbidden" in out
    assert "" == err  # no progress output when stderr is not a terminal
    # --folder: the log, the dashboard and the art. 15 answer are where the caller asked
    assert {"exports.sqlite", "dashboard.html"} <= {p.name for p in tmp_path.iterdir()}
    assert str(tmp_path / "dashboard.html") in out


def test_demo_on_another_policy_set(capsys: pytest.CaptureFixture[str], small: Path, tmp_path: Path) -> None:
    code, out, _ = run(capsys, "demo", str(small), "--students", "50", "--at", "2025-10-01",
                       "--folder", str(tmp_path), "--no-bulk")
    assert 0 == code
    assert "50 synthetic students" in out
    assert {"snappet", "website"} <= {line.split()[0] for line in out.splitlines() if line.startswith(("sn", "we"))}


def test_register_bad_today_is_wrong_usage(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "register", POLICIES, "--today", "morgen")
    assert (2, True) == (code, "--today 'morgen'" in err)


def test_demo_rejects_zero_students(capsys: pytest.CaptureFixture[str]) -> None:
    assert 2 == run(capsys, "demo", "--students", "0")[0]


# -- colour ------------------------------------------------------------------

class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_colour_only_on_a_terminal_and_never_with_no_color(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm")
    assert cli._use_colour(_Tty())
    assert not cli._use_colour(io.StringIO())
    monkeypatch.setenv("NO_COLOR", "1")
    assert not cli._use_colour(_Tty())


def test_plain_output_has_no_escape_codes(capsys: pytest.CaptureFixture[str], small: Path) -> None:
    write_set(small, {"faalt.avg": FAILING_TEST})
    _, out, _ = run(capsys, "test", str(small), "--coverage")
    assert "\033[" not in out


def test_version_prints_the_package_and_language_versions(capsys):
    import avgpolicy

    with pytest.raises(SystemExit) as exc:
        cli.build_parser().parse_args(["--version"])
    assert 0 == exc.value.code
    assert f"avgpolicy {avgpolicy.__version__} (policy language v2)" == capsys.readouterr().out.strip()
