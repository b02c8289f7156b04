"""Tests for the demo: the synthetic school board generator, the feeds and the overview."""

from __future__ import annotations

import datetime
import io
from collections import Counter
from pathlib import Path

import pytest

import avgpolicy
from avgpolicy.decision import Consent
from avgpolicy.demo import DEMO_PSEUDONYM_KEY, bundled_policy_path, feeds, generate_students, run_demo

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
    schools = Counter(s.get("school") for s in students)
    assert {"12AB", "34CD"} <= set(schools)
    assert min(schools["12AB"], schools["34CD"]) > 900
    assert {"po", "vmbo", "havo", "vwo", "vavo"} <= {s.get("onderwijstype") for s in students}
    assert set(range(1, 9)) <= {s.get("leerjaar") for s in students if s.get("school") == "12AB"}
    ages = [a for s in students if (a := _age(s.get("geboortedatum"))) is not None]
    assert min(ages) <= 5 and max(ages) >= 18
    assert sum(a >= 16 for a in ages) > 100
    inactive = sum(s.get("actief") is False for s in students)
    assert 30 < inactive < 300
    assert any("plusklas" in s.get("lesgroepen", ()) for s in students if isinstance(s.get("lesgroepen"), frozenset))


def test_consents_come_from_parents_and_students(students: list[dict[str, object]]) -> None:
    consents = [c for s in students for c in s.get("consents", {}).values()]  # type: ignore[attr-defined]
    assert all(isinstance(c, Consent) for c in consents)
    assert {"parent", "student"} == {c.by for c in consents}
    assert any(c.withdrawn is not None for c in consents)


def test_a_few_records_are_bad(policy: avgpolicy.Policy, students: list[dict[str, object]]) -> None:
    subject = policy.model.catalogue.subject_fields
    types = {"text": str, "int": int, "bool": bool, "date": datetime.date, "set": frozenset}
    bad = [s for s in students if any(type(s.get(k)) is not types[fi.type] for k, fi in subject.items())]
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


def test_run_demo_figures_add_up() -> None:
    out = io.StringIO()
    demo = run_demo(students=400, seed=3, out=out)
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


def test_progress_goes_to_the_given_stream_only() -> None:
    progress, out = io.StringIO(), io.StringIO()
    run_demo(students=20, seed=1, out=out, progress=progress)
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
    demo = run_demo(students=300, paths=[str(tmp_path)], out=out)
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
    demo = run_demo(students=50, paths=[str(tmp_path)], out=out, at=datetime.date(2025, 6, 1))
    assert "feeds at 2025-06-01 (Europe/Amsterdam): given" in out.getvalue()
    assert {"agreement_inactive": 50} == dict(demo.feeds[0].left_out)
    assert "no processing agreement in force (50)" in out.getvalue()
