"""Benchmark support: the generated sets are valid, the baseline and peers decide as avgpolicy, the cache is bounded.

No timing here: these tests make sure the benchmarks compare like with like.
"""

from __future__ import annotations

import itertools
import json

import pytest

import avgpolicy
from benchmarks import baseline, gen, report
from benchmarks.support import assert_avgpolicy_agrees, interleaved, policy, records, sample


@pytest.mark.parametrize("size", [10, 100, 1_000])
def test_generated_set_is_valid_and_has_exactly_that_many_rules(size: int) -> None:
    pol = avgpolicy.loads(gen.policy_texts(size), today=gen.AT)  # judged on the scenario's day, not the clock's
    assert size == len(pol.model.rules)
    assert () == pol.warnings


def test_smaller_sets_are_contained_in_larger_ones() -> None:
    small, large = gen.policy_texts(100), gen.policy_texts(1_000)
    assert small["catalogue.avg"] == large["catalogue.avg"]
    assert small["rules/kern.avg"] == large["rules/kern.avg"]
    assert large["partners.avg"].startswith(small["partners.avg"])
    small_rules = small["rules/leveranciers-000.avg"]
    assert large["rules/leveranciers-000.avg"].startswith(small_rules)


def test_a_set_cannot_be_smaller_than_its_core() -> None:
    with pytest.raises(ValueError, match="core"):
        gen.policy_texts(gen.CORE_RULE_COUNT - 1)


def test_records_include_flawed_ones() -> None:
    flawed = [s for s in records() if gen.is_flawed(s)]
    assert 30 < len(flawed) < 200
    assert 12 == sum(gen.is_flawed(s) for s in sample(24))


@pytest.mark.parametrize("size", [10, 1_000])
def test_compiled_interpreted_and_baseline_agree_on_the_scenario(size: int) -> None:
    assert_avgpolicy_agrees(size, records()[:400])


def test_scenario_gets_the_same_answers_at_every_size() -> None:
    small, large = policy(10), policy(1_000)
    for q in gen.QUERIES:
        for s in records()[:200]:
            a = small.decide(partner=q.partner, purpose=q.purpose, fields=list(q.fields), student=s, at=gen.AT)
            b = large.decide(partner=q.partner, purpose=q.purpose, fields=list(q.fields), student=s, at=gen.AT)
            assert [(r.code, r.field, r.rule) for r in a.reasons] == [(r.code, r.field, r.rule) for r in b.reasons]


def test_the_scenario_allows_and_denies() -> None:
    verdicts = [baseline.BY_QUERY[q.name](s, gen.AT)[f] for q in gen.QUERIES for s in records() for f in q.fields]
    assert 0.2 < sum(verdicts) / len(verdicts) < 0.9


def test_filter_equals_the_hand_written_loop() -> None:
    pol, q = policy(100), gen.FILTER
    rows = list(pol.filter(q.partner, q.purpose, list(q.fields), records(), at=gen.AT))
    assert list(baseline.filter_gemengd(records(), gen.AT)) == rows
    assert any("leerling.geboortedatum" in r for r in rows)


def test_compile_cache_stays_within_its_size_under_distinct_requests() -> None:
    pol = avgpolicy.loads(gen.policy_texts(10), cache_size=8, pseudonym_key=b"k" * 32)
    student = records()[0]
    for partner, purpose, fields in itertools.islice(gen.distinct_requests(), 100):
        d = pol.decide(partner=partner, purpose=purpose, fields=fields, student=student, at=gen.AT)
        rows = list(pol.filter(partner, purpose, fields, [student], at=gen.AT))  # same request: a hit
        assert all(set(row) <= {f for f, fd in d.fields.items() if fd.allowed} for row in rows)
        assert pol.cache_info().currsize <= 8
    info = pol.cache_info()
    assert 8 == info.maxsize
    assert 100 == info.misses
    assert 100 == info.hits
    assert 8 == info.currsize


def test_evicted_requests_decide_as_before() -> None:
    pol = avgpolicy.loads(gen.policy_texts(10), cache_size=2)
    q, student = gen.HOT, records()[1]
    first = pol.decide(partner=q.partner, purpose=q.purpose, fields=list(q.fields), student=student, at=gen.AT)
    for partner, purpose, fields in itertools.islice(gen.distinct_requests(), 5):
        pol.compile(partner=partner, purpose=purpose, fields=fields)
    again = pol.decide(partner=q.partner, purpose=q.purpose, fields=list(q.fields), student=student, at=gen.AT)
    assert first.to_dict() == again.to_dict()


def test_cedar_translation_validates_and_decides_as_avgpolicy() -> None:
    pytest.importorskip("cedarpy")
    from benchmarks.peers import CedarPeer

    peer = CedarPeer(policy(100).model, validate=True)
    students = records()[:300]
    entities = peer.entities(students)
    for q in gen.QUERIES:
        for i, s in enumerate(students):
            hand = baseline.BY_QUERY[q.name](s, gen.AT)
            assert [hand[f] for f in q.fields] == peer.decide(
                peer.requests(i, s, q.partner, q.purpose, q.fields, gen.AT), entities)


def test_casbin_translation_decides_as_avgpolicy() -> None:
    pytest.importorskip("casbin")
    from benchmarks.peers import CasbinPeer, day_number

    peer = CasbinPeer(policy(10).model)
    for q in gen.QUERIES:
        for s in sample(24):
            hand = baseline.BY_QUERY[q.name](s, gen.AT)
            got = peer.decide(peer.student(s, gen.AT), q.partner, q.purpose, q.fields, day_number(gen.AT))
            assert [hand[f] for f in q.fields] == got


def test_interleaved_runs_each_in_turn_and_keeps_the_fastest() -> None:
    calls: list[str] = []
    best = interleaved({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}, rounds=3)
    assert ["a", "b", "b", "a", "a", "b"] == calls
    assert {"a", "b"} == set(best)
    assert all(0 <= t < float("inf") for t in best.values())


def _bench(case: str, size: int, engine: str, seconds: float, units: int) -> dict[str, object]:
    return {"extra_info": {"case": case, "size": size, "engine": engine, "units": units},
            "stats": {"min": seconds, "median": seconds, "mean": seconds}}


def _interleaved(case: str, size: int, per_unit: dict[str, float]) -> dict[str, object]:
    """An interleaved benchmark's entry: its per-unit times by ``measure@size`` in ``extra_info``."""
    return {"extra_info": {"case": case, "size": size, "engine": "all", "units": 1, "per_unit": per_unit},
            "stats": {"min": 1.0, "median": 1.0, "mean": 1.0}}


def test_report_divides_by_units_and_judges_against_targets(tmp_path) -> None:  # type: ignore[no-untyped-def]
    data = {"benchmarks": [
        _bench("compiled lesmateriaal", 100, "avgpolicy", 2e-3, 1000),
        _bench("baseline lesmateriaal", 100, "baseline", 1e-3, 1000),
        _bench("latency decide", 10, "avgpolicy", 3e-3, 1000),
        _bench("latency decide", 10_000, "avgpolicy", 3.3e-3, 1000),
        _bench("cedar decision", 10, "cedar", 0.6, 1000),
        _interleaved("interleaved", 100, {"compiled lesmateriaal@100": 1.2e-6, "baseline lesmateriaal@100": 1e-6}),
    ], "machine_info": {}, "commit_info": {}}
    path = tmp_path / "run.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    run = report.Run(json.loads(path.read_text(encoding="utf-8")))
    by_measure = {r[0]: r for r in report.rows(run)}
    held = by_measure["held compiled function / hand-written, `lesmateriaal`"]
    assert ["2.00 µs", "1.00 µs", "2.00x", "1.20x", "≤ 1.5x", "**missed**"] == held[1:]
    latency = by_measure["decide per decision, 10,000 rules / 10 rules"]
    assert ["1.10x", "–", "≤ 1.2x", "met"] == latency[3:]
    cedar = by_measure["cedar / avgpolicy `decide`, per decision, 10 rules"]
    assert ["200x", "–", "≥ 100x", "met"] == cedar[3:]
    out = tmp_path / "performance.md"
    assert 0 == report.main([str(path), "--write", str(out)])
    assert "| held compiled function" in out.read_text(encoding="utf-8")


def test_report_write_keeps_hand_sections_and_adds_compile_rows(tmp_path) -> None:  # type: ignore[no-untyped-def]
    data = {"benchmarks": [
        _bench("first compiled decision", 60, "avgpolicy", 2e-3, 1),
        _bench("interpreted decision", 60, "interpreter", 4e-4, 1),
        _interleaved("compile interleaved", 0,
                     {"first compiled decision@60": 1.8e-3, "interpreted decision@60": 3e-4}),
    ], "machine_info": {}, "commit_info": {}}
    path = tmp_path / "run.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    by_measure = {r[0]: r for r in report.rows(report.Run(data))}
    first = by_measure["first compiled decision / interpreted, 60 rules"]
    assert ["2.00 ms", "400.00 µs", "5.00x", "6.00x", "≤ 10x", "met"] == first[1:]
    notes = tmp_path / "notes.md"
    notes.write_text("## From the notes\n\nnoted\n", encoding="utf-8")
    out = tmp_path / "performance.md"
    out.write_text("# Performance\n\nold table\n\n## Hand before\n\nkept 1\n\n```\n## not a heading\n```\n\n"
                   "## What is measured\n\nold\n\n## From the notes\n\nold notes\n\n## Machine\n\nold\n\n"
                   "## Reproduce\n\nold\n\n## Hand after\n\nkept 2\n", encoding="utf-8")
    assert 0 == report.main([str(path), "--write", str(out), "--notes", str(notes)])
    text = out.read_text(encoding="utf-8")
    assert "old table" not in text and "old notes" not in text and "\nold\n" not in text
    assert 1 == text.count("## Hand before") == text.count("## not a heading") == text.count("## Hand after")
    assert text.index("noted") < text.index("kept 1") < text.index("## Machine") < text.index("kept 2")
    assert text.index("## Reproduce") < text.index("## Hand after")
    again = tmp_path / "again.md"
    again.write_text(text, encoding="utf-8")
    assert 0 == report.main([str(path), "--write", str(again), "--notes", str(notes)])
    assert text == again.read_text(encoding="utf-8")  # a rerun changes nothing written by hand
