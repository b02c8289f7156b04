"""The fast paths of the hot loop decide exactly as the slow ones: shared groups with different
transforms, the filter's projection plans, and the compile cache's lock-free front."""

from __future__ import annotations

import pytest

import avgpolicy
from benchmarks import baseline, gen
from benchmarks.support import PSEUDONYM_KEY, records

STUDENTS = records()[:300]


@pytest.fixture(scope="module")
def pol() -> avgpolicy.Policy:
    return avgpolicy.loads(gen.policy_texts(10), pseudonym_key=PSEUDONYM_KEY, today=gen.AT)


@pytest.mark.parametrize("q", gen.QUERIES, ids=lambda q: q.name)
def test_compiled_equals_interpreted_on_the_scenario(pol, q) -> None:
    check = pol.compile(q.partner, q.purpose, list(q.fields))
    for s in STUDENTS:
        expected = pol.decide(q.partner, q.purpose, list(q.fields), s, at=gen.AT, engine="interpreted")
        assert expected.to_dict() == check(s, gen.AT).to_dict()


def test_fields_of_one_rule_with_different_transforms_share_a_group_but_keep_their_transform(pol) -> None:
    fields = ["leerling.achternaam", "leerling.geboortedatum"]
    check = pol.compile("snappet", "leermiddelen", fields)
    assert 1 == check.source.count('"""fields ') or "def _epoch" not in check.source
    allowed = [d for d in (check(s, gen.AT) for s in STUDENTS) if d.allowed]
    assert allowed
    for d in allowed:
        assert d.fields["leerling.achternaam"].transform is None
        assert d.fields["leerling.geboortedatum"].transform == "year"


def test_filter_equals_the_hand_written_loop_and_the_decisions(pol) -> None:
    q = gen.FILTER
    rows = list(pol.filter(q.partner, q.purpose, list(q.fields), STUDENTS, at=gen.AT))
    assert list(baseline.filter_gemengd(STUDENTS, gen.AT)) == rows
    assert [list(r) for r in rows] == [list(r) for r in baseline.filter_gemengd(STUDENTS, gen.AT)]


def test_front_of_the_cache_never_skips_argument_checks(pol) -> None:
    pol.decide("snappet", "leermiddelen", list("leerling.roepnaam"[:1]), STUDENTS[0], at=gen.AT)
    with pytest.raises(TypeError):
        pol.decide("snappet", "leermiddelen", "l", STUDENTS[0], at=gen.AT)
    with pytest.raises(TypeError):
        pol.decide("snappet", "leermiddelen", {"l": 1}, STUDENTS[0], at=gen.AT)


def test_front_of_the_cache_follows_evictions_and_recency() -> None:
    small = avgpolicy.loads(gen.policy_texts(10), cache_size=2, today=gen.AT)
    a, b, c = (["leerling.roepnaam"], ["leerling.eckid"], ["leerling.achternaam"])
    for fields in (a, b, a, b):
        small.decide("snappet", "leermiddelen", fields, STUDENTS[0], at=gen.AT)
    assert (2, 2) == (small.cache_info().misses, small.cache_info().currsize)
    small.decide("snappet", "leermiddelen", a, STUDENTS[0], at=gen.AT)  # a is now the most recently used
    small.decide("snappet", "leermiddelen", c, STUDENTS[0], at=gen.AT)  # evicts b
    assert 3 == small.cache_info().misses
    assert set(small._cache.front) == {("snappet", "leermiddelen", tuple(a)), ("snappet", "leermiddelen", tuple(c))}
    small.decide("snappet", "leermiddelen", a, STUDENTS[0], at=gen.AT)
    assert 3 == small.cache_info().misses
    small.decide("snappet", "leermiddelen", b, STUDENTS[0], at=gen.AT)
    assert 4 == small.cache_info().misses
    assert 2 == small.cache_info().currsize == len(small._cache.front)
