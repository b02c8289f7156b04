"""Tests for the demo: the synthetic school board generator, the feeds and the overview."""

from __future__ import annotations

import datetime
import io
import sys
from collections import Counter
from pathlib import Path

import pytest

import avgpolicy
from avgpolicy.decision import Consent
from avgpolicy.demo import (
    BUNDLED_MOMENT,
    DEMO_PSEUDONYM_KEY,
    DemoResult,
    bundled_policy_path,
    feeds,
    generate_students,
    run_demo,
)
from avgpolicy.exports import ExportLog

ROOT = Path(__file__).resolve().parent.parent
TODAY = datetime.date(2026, 3, 2)


@pytest.fixture(scope="module")
def policy() -> avgpolicy.Policy:
    return avgpolicy.load(bundled_policy_path(), pseudonym_key=DEMO_PSEUDONYM_KEY)


@pytest.fixture(scope="module")
def students(policy: avgpolicy.Policy) -> list[dict[str, object]]:
    return generate_students(policy, 3000, seed=11, today=TODAY)


def _age(birth: object) -> int | None:
    if type(birth) is not datetime.date:
        return None
    return TODAY.year - birth.year - ((TODAY.month, TODAY.day) < (birth.month, birth.day))


def test_the_bundled_set_is_found_in_a_source_checkout() -> None:
    assert (ROOT / "policies").resolve() == bundled_policy_path().resolve()


def test_generation_is_deterministic(policy: avgpolicy.Policy, students: list[dict[str, object]]) -> None:
    assert students[:50] == generate_students(policy, 50, seed=11, today=TODAY)
    assert students[:50] != generate_students(policy, 50, seed=12, today=TODAY)


def test_the_school_board_has_a_realistic_spread(students: list[dict[str, object]]) -> None:
    # (a bad record may hold a list where a text belongs: only well-typed values are counted)
    schools = Counter(school for s in students if type(school := s.get("school")) is str)
    assert {"12AB", "34CD"} <= set(schools)
    assert min(schools["12AB"], schools["34CD"]) > 900
    assert {"po", "vmbo", "havo", "vwo", "vavo"} <= {v for s in students if type(v := s.get("onderwijstype")) is str}
    assert set(range(1, 9)) <= {v for s in students
                                if s.get("school") == "12AB" and type(v := s.get("leerjaar")) is int}
    ages = [a for s in students if (a := _age(s.get("geboortedatum"))) is not None]
    assert min(ages) <= 5 and max(ages) >= 18
    assert sum(a >= 16 for a in ages) > 100
    inactive = sum(s.get("actief") is False for s in students)
    assert 30 < inactive < 300
    # the unenrolment date (the catalogue's `left` field) is set for students who left, before today, and
    # None for the others: most students are at the school
    left = [s["uitschrijfdatum"] for s in students if s["uitschrijfdatum"] is not None]
    assert 30 < len(left) < 300
    assert all(type(d) is datetime.date and d < TODAY for d in left)
    assert all((s["uitschrijfdatum"] is None) == (s.get("actief") is not False) for s in students
               if type(s.get("actief")) is bool)
    assert any("plusklas" in s.get("lesgroepen", ()) for s in students if isinstance(s.get("lesgroepen"), frozenset))


def test_consents_come_from_parents_and_students(students: list[dict[str, object]]) -> None:
    consents = [c for s in students for c in s.get("consents", {}).values()]  # type: ignore[attr-defined]
    assert all(isinstance(c, Consent) for c in consents)
    assert {"parent", "student"} == {c.by for c in consents}
    assert any(c.withdrawn is not None for c in consents)


def test_a_few_records_are_bad(policy: avgpolicy.Policy, students: list[dict[str, object]]) -> None:
    subject = policy.model.catalogue.subject_fields
    types = {"text": str, "int": int, "bool": bool, "date": datetime.date, "set": frozenset}
    left = policy.model.catalogue.left  # None there means "has not left" (spec 7.7), not a missing value
    bad = [s for s in students if any(type(s.get(k)) is not types[fi.type] for k, fi in subject.items()
                                      if not (k == left and s.get(k) is None))]
    assert 5 <= len(bad) <= 100


def test_unknown_catalogue_fields_get_values_of_their_type() -> None:
    policy = avgpolicy.loads("""
dataset kind "Kinderen" subject {
    nummer     text  personal
    klas       int   personal
    zwemdiploma bool personal
    start      date  personal
    clubs      set   personal
}
dataset extra "Extra" { score int sensitive }
partner p "P" { role controller }
purpose u "U"
permit r { partner p  purpose u  basis contract  fields kind.nummer  students where klas >= 2 }
""")
    [student] = generate_students(policy, 1, seed=1)
    types = {"nummer": str, "klas": int, "zwemdiploma": bool, "start": datetime.date, "clubs": frozenset,
             "extra.score": int}
    assert types == {k: type(v) for k, v in student.items()}


def test_feeds_cover_every_permit(policy: avgpolicy.Policy) -> None:
    all_feeds = {(f.partner, f.purpose): f.fields for f in feeds(policy)}
    for rule in policy.model.rules:
        if rule.effect == "permit":
            for partner in (p for p in policy.model.partners if rule.partners.matches(p)):
                for purpose in (u for u in policy.model.purposes if rule.purposes.matches(u)):
                    assert {g.ref for g in rule.grants} <= set(all_feeds[partner, purpose])


def test_run_demo_figures_add_up(tmp_path: Path) -> None:
    out = io.StringIO()
    demo = run_demo(students=400, seed=3, out=out, folder=tmp_path, bulk=False)
    n_feeds = len(demo.feeds)
    assert 400 * n_feeds == demo.decisions
    assert all(0 <= f.students_shared <= 400 for f in demo.feeds)
    snappet = next(f for f in demo.feeds if f.feed.partner == "snappet")
    assert snappet.students_shared > 0
    assert snappet.denials["not_in_subset"] > 0
    assert demo.denials["forbidden"] > 0 and demo.denials["no_consent"] > 0
    assert 0 == demo.tests_failed
    assert sum(f.informed for f in demo.feeds) > 0  # students over 16 on a parent's earlier consent
    assert all(len(f.fields_shared) <= len(f.feed.fields) for f in demo.feeds)
    text = out.getvalue()
    assert "400 synthetic students" in text
    assert "decisions/s" in text
    assert f"{snappet.students_shared}" in next(line for line in text.splitlines() if line.startswith("snappet"))


def test_pseudonyms_in_the_feed_are_not_the_student_ids(policy: avgpolicy.Policy,
                                                       students: list[dict[str, object]]) -> None:
    rows = list(policy.filter("snappet", "leermiddelen", ["leerling.id", "leerling.roepnaam"], students,
                              at=datetime.datetime(2026, 3, 2, 10, 0)))
    ids = {s["id"] for s in students}
    assert rows
    assert not ({r["leerling.id"] for r in rows if "leerling.id" in r} & ids)


def test_progress_goes_to_the_given_stream_only(tmp_path: Path) -> None:
    progress, out = io.StringIO(), io.StringIO()
    run_demo(students=20, seed=1, out=out, progress=progress, folder=tmp_path, bulk=False)
    assert "feed 1/" in progress.getvalue()
    assert "feed 1/" not in out.getvalue()


OWN_POLICY = """
dataset kind "Kinderen" subject {
    id       text personal
    klas     int  personal
    naam     text personal
}
partner app "Leer-app B.V." {
    agreement "A-1" valid from 2024-01-01 until 2024-12-31
}
purpose les "Lessen"
permit app_les {
    partner app
    purpose les
    basis contract
    fields kind.naam
    students where klas in 3..5
}
"""


def test_demo_on_a_policy_of_ones_own_picks_a_moment_inside_its_agreements(tmp_path) -> None:
    (tmp_path / "own.avg").write_text(OWN_POLICY, encoding="utf-8")
    out = io.StringIO()
    demo = run_demo(students=300, paths=[str(tmp_path)], out=out, folder=tmp_path / "out")
    text = out.getvalue()
    # the only agreement ended in 2024: a moment inside it is chosen, and the output says so and why
    assert "feeds at 2024-12-31 10:00:00" in text
    assert "1 of 1 feeds can take effect then" in text
    # students come from the policy's own catalogue, many inside the rule's `klas in 3..5`
    (feed,) = demo.feeds
    assert 0 < feed.students_shared < 300
    # the plain-words summary comes first, the developer figures after it
    assert text.index("What goes where:") < text.index("For developers:") < text.index("decisions/s")
    assert f"Leer-app B.V. (app) receives naam about {feed.students_shared} of 300 students" in text
    assert f"Not about the other {300 - feed.students_shared}: not among the students the rule is for" in text


def test_an_explicit_moment_is_kept_and_said_to_be_given(tmp_path) -> None:
    (tmp_path / "own.avg").write_text(OWN_POLICY, encoding="utf-8")
    out = io.StringIO()
    demo = run_demo(students=50, paths=[str(tmp_path)], out=out, at=datetime.date(2025, 6, 1),
                    folder=tmp_path / "out", bulk=False)
    assert "feeds at 2025-06-01 (Europe/Amsterdam): given" in out.getvalue()
    assert {"agreement_inactive": 50} == dict(demo.feeds[0].left_out)
    assert "no processing agreement in force (50)" in out.getvalue()


# ---------------------------------------------------------------------------
# the export log, the dashboard, the art. 15 answer and the bulk feed inside DuckDB

@pytest.fixture(scope="module")
def full_demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, DemoResult, str]:
    folder = tmp_path_factory.mktemp("demo")
    out = io.StringIO()
    demo = run_demo(students=1500, seed=7, out=out, folder=folder)
    return folder, demo, out.getvalue()


def test_the_demo_writes_its_feeds_through_a_log_that_verifies(full_demo: tuple[Path, DemoResult, str]) -> None:
    folder, demo, text = full_demo
    log = ExportLog(folder / "exports.sqlite")
    records = log.exports()
    assert log.verify().ok and not log.verify().problems
    nightly = [r for r in records if r.channel == "nightly-feed"]
    assert [(f.feed.partner, f.feed.purpose) for f in demo.feeds] == [(r.partner, r.purpose) for r in nightly]
    assert [f.students_shared for f in demo.feeds] == [r.students for r in nightly]
    [manual] = [r for r in records if r.channel == "manual"]
    assert ("m.bakker", 3, "completed") == (manual.actor, manual.students, manual.status)
    assert demo.recorded is not None and len(records) == demo.recorded.exports
    assert f"{len(records)} exports recorded in {folder / 'exports.sqlite'}" in text
    assert "the log verifies" in text


def test_the_demo_writes_the_dashboard(full_demo: tuple[Path, DemoResult, str]) -> None:
    folder, _, text = full_demo
    page = (folder / "dashboard.html").read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") or page.lower().startswith("<!doctype html>")
    assert "Snappet B.V." in page and "m.bakker" in page  # a partner, and the staff member's export
    assert f"The dashboard for the privacy officer: {folder / 'dashboard.html'}" in text


def test_the_demo_ends_with_the_art15_answer_naming_the_students_recipients(
        full_demo: tuple[Path, DemoResult, str]) -> None:
    folder, demo, text = full_demo
    assert demo.recorded is not None
    key = demo.recorded.student
    log = ExportLog(folder / "exports.sqlite")
    received = {r.partner_title for r in log.student(key)}
    assert len(received) >= 3
    answer = text[text.index(f"for student {key}:"):]
    named = {line[4:].split(", 20")[0] for line in answer.splitlines() if line.startswith("  - ")}
    assert received == named  # every recipient named, and no other organisation
    assert text.rstrip().endswith(f"--student {key} --lang nl)")  # the answer is how the demo ends
    assert f"{key}" in (folder / f"access-{key}.html").read_text(encoding="utf-8")


def test_the_duckdb_feed_equals_filters_rows(full_demo: tuple[Path, DemoResult, str], policy: avgpolicy.Policy
                                             ) -> None:
    pytest.importorskip("duckdb")
    _, demo, text = full_demo
    bulk = demo.bulk
    assert bulk is not None and bulk.feed is not None, bulk
    students = generate_students(policy, 1500, seed=7, today=TODAY)
    rows = list(policy.filter(bulk.feed.partner, bulk.feed.purpose, list(bulk.feed.fields), students,
                              at=BUNDLED_MOMENT))
    assert len(rows) > 1000

    def canonical(rs: list[dict[str, object]]) -> list[list[tuple[str, object]]]:
        return sorted(sorted(r.items()) for r in rs)  # type: ignore[type-var]

    assert canonical(rows) == canonical(bulk.rows)
    assert ("duo", "bekostiging") == (bulk.feed.partner, bulk.feed.purpose)  # the widest feed SQL can decide
    assert f"{len(rows):,} rows in" in text and "the same rows as filter" in text


def test_without_duckdb_the_demo_says_how_to_get_it_and_goes_on(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "duckdb", None)  # import duckdb raises ImportError
    out = io.StringIO()
    demo = run_demo(students=200, seed=2, out=out, folder=tmp_path)
    assert demo.bulk is not None and demo.bulk.feed is None
    text = out.getvalue()
    assert "skipped: DuckDB is not installed: pip install 'avgpolicy[sql]' (in a checkout: pip install '.[sql]')" \
        in text
    assert "What the school can show:" in text  # and the demo went on


def test_without_sqlglot_the_demo_says_how_to_get_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("duckdb")
    monkeypatch.setitem(sys.modules, "sqlglot", None)  # import sqlglot raises ImportError
    out = io.StringIO()
    demo = run_demo(students=50, seed=2, out=out, folder=tmp_path, bulk=True)
    assert demo.bulk is not None and demo.bulk.feed is None
    assert "skipped: sqlglot is not installed: pip install 'avgpolicy[sql]'" in out.getvalue()


def test_a_policy_without_a_key_field_runs_without_an_export_log(tmp_path: Path) -> None:
    (tmp_path / "own.avg").write_text(OWN_POLICY.replace("id       text personal", "nummer   text personal"),
                                      encoding="utf-8")
    out = io.StringIO()
    demo = run_demo(students=100, paths=[str(tmp_path)], out=out, folder=tmp_path / "out", bulk=False)
    assert demo.feeds[0].students_shared > 0  # sent with filter
    assert "No export log: the catalogue has no key field" in out.getvalue()
    assert not (tmp_path / "out" / "exports.sqlite").exists()


def test_the_summary_says_which_fields_go_as_a_pseudonym_or_only_the_year(
        full_demo: tuple[Path, DemoResult, str]) -> None:
    """'receives id' would tell a school the raw student number goes out; the permits send a pseudonym."""
    _, _, out = full_demo
    summary = out[out.index("What goes where:"):out.index("For developers")] if "For developers" in out else out
    lines = {line.split("(")[1].split(")")[0]: line for line in summary.splitlines() if " receives " in line}
    assert "id (as a pseudonym)" in lines["snappet"] and "id," not in lines["snappet"].replace("eckid,", "")
    assert "geboortedatum (only the year)" in lines["uu_onderzoek"]
    assert "roepnaam" in lines["snappet"] and "roepnaam (" not in lines["snappet"]
