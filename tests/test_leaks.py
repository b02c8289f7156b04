"""Nothing leaks: the pseudonym key and the values of `special` and `national_id` fields.

Distinctive secrets are planted (a key, a BSN, a health note, also as ill-typed
values, which is where messages are tempted to quote what they got) and every
output is searched: reprs, str, explain(), to_dict(), reasons, errors, generated
source, log records, the store's reports.
"""

from __future__ import annotations

import base64
import datetime
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import avgpolicy
from avgpolicy import PolicyError
from avgpolicy.decision import Consent
from avgpolicy.store import PolicyStore

KEY = b"SECRET-KEY-\x00\xff-7f3a9c1e5b2d4f60"
BSN = "SECRET-BSN-123456782"
ZORG = "SECRET-ZORG-diabetes-type-1"
BSN_INT = 918273645501  # an ill-typed BSN (int for a text field)
STRAF = "SECRET-STRAF-veroordeling"

POLICY = """
dataset leerling subject {
    id text personal
    school text personal
    leerjaar int personal
    geboortedatum date personal
    bsn text national_id
    zorgnotitie text special
    strafblad text criminal
    diagnoses set special
}
partner dus-i
partner zorgapp { agreement "Z-1" valid from 2025-01-01 until 2026-12-31 }
partner snappet
purpose bekostiging
purpose zorg
consent zorgdeling
permit bsn_naar_dus_i {
    partner dus-i
    purpose bekostiging
    basis legal_obligation
    fields leerling.bsn, leerling.id as pseudonym, leerling.strafblad
    students where bsn != "000000000" and leerjaar >= 1
    valid until 2026-12-31
}
permit zorg_naar_app {
    partner zorgapp
    purpose zorg
    basis consent(zorgdeling)
    art9 explicit_consent
    fields leerling.zorgnotitie, leerling.diagnoses, leerling.id as pseudonym
    students where zorgnotitie != "geen" and not "adhd" in diagnoses and bsn in ["1", "2"]
}
permit zorg_legal {
    partner zorgapp
    purpose zorg
    basis legal_obligation
    art9 health_care
    fields leerling.bsn
    students where zorgnotitie == "x"
}
forbid geen_zorg_snappet {
    partner snappet
    fields leerling.zorgnotitie, leerling.bsn, leerling.diagnoses
    students where zorgnotitie != "niets"
}
"""
SECRETS = [BSN, ZORG, STRAF, str(BSN_INT), "SECRET-"]
FIELDS = ["leerling.bsn", "leerling.zorgnotitie", "leerling.diagnoses", "leerling.id", "leerling.strafblad",
          "leerling.school"]


def key_forms() -> list[str]:
    return [KEY.decode("latin-1"), KEY.hex(), KEY.hex().upper(), base64.b64encode(KEY).decode(),
            "SECRET-KEY", repr(KEY)[2:-1]]


def students() -> list[Any]:
    base = {"id": "s1", "school": "12AB", "leerjaar": 5, "geboortedatum": datetime.date(2010, 1, 1),
            "consents": {"zorgdeling": Consent(by="parent", given=datetime.date(2025, 1, 1))}}
    return [
        {**base, "bsn": BSN, "zorgnotitie": ZORG, "strafblad": STRAF, "diagnoses": {ZORG, "adhd"}},
        {**base, "bsn": BSN_INT, "zorgnotitie": [ZORG], "strafblad": {STRAF: 1}, "diagnoses": ZORG},
        {**base, "bsn": BSN.encode(), "zorgnotitie": (ZORG,), "strafblad": STRAF, "diagnoses": [ZORG, 3]},
        {**base, "bsn": BSN, "zorgnotitie": ZORG, "diagnoses": frozenset({ZORG}), "leerjaar": "5"},
        {**base, "bsn": None, "zorgnotitie": ZORG + "\u2028", "strafblad": None, "diagnoses": {BSN}},
    ]


REQUESTS = [(p, u) for p in ("dus-i", "zorgapp", "snappet", "onbekend") for u in ("bekostiging", "zorg", "nope")]
MOMENTS = [datetime.date(2024, 6, 1), datetime.date(2025, 10, 1), datetime.date(2027, 2, 1)]


def outputs(policy: avgpolicy.Policy) -> Iterator[tuple[str, str]]:
    """Every text the engine can show for the requests, students and moments above."""
    yield "repr(policy)", repr(policy)
    yield "str(policy)", str(policy)
    for partner, purpose in REQUESTS:
        check = policy.compile(partner, purpose, FIELDS)
        check.specialise_all()
        yield "check.source", check.source
        yield "repr(check)", repr(check)
        for student in students():
            for at in MOMENTS:
                for engine in ("compiled", "interpreted"):
                    d = policy.decide(partner, purpose, FIELDS, student, at=at, engine=engine)
                    where = f"{partner}/{purpose}/{at}/{engine}"
                    yield f"explain {where}", d.explain()
                    yield f"to_dict {where}", json.dumps(d.to_dict(), default=str, ensure_ascii=False)
                    yield f"repr {where}", repr(d)
                    yield f"str {where}", str(d)
                    for r in d.reasons:
                        yield f"reason {where}", f"{r} {r!r} {r.message} {r.to_dict()}"
                    for fd in d.fields.values():
                        yield f"field {where}", f"{fd!r} {fd.to_dict()}"


def assert_clean(label: str, text: str, secrets: list[str]) -> None:
    for secret in secrets:
        assert secret not in text, f"{secret!r} leaked into {label}: {text[:300]!r}"


@pytest.fixture
def policy() -> avgpolicy.Policy:
    return avgpolicy.loads(POLICY, pseudonym_key=KEY)


def test_nothing_leaks_from_decisions_explanations_and_generated_code(
        policy: avgpolicy.Policy, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG):
        seen = 0
        for label, text in outputs(policy):
            assert_clean(label, text, SECRETS + key_forms())
            seen += 1
    assert seen > 1000
    assert_clean("the log", caplog.text, SECRETS + key_forms())


def test_the_decisions_above_do_cover_allow_and_deny(policy: avgpolicy.Policy) -> None:
    """Guard for the test above: the secrets were really in play (allowed and denied paths)."""
    at = datetime.date(2025, 10, 1)
    good = students()[0]
    d = policy.decide("dus-i", "bekostiging", ["leerling.bsn", "leerling.strafblad"], good, at=at)
    assert True is d.allowed
    z = policy.decide("zorgapp", "zorg", ["leerling.zorgnotitie"], good, at=at)
    assert False is z.allowed  # "adhd" in diagnoses: not_in_subset, with the failed condition
    assert "not_in_subset" in {r.code for r in z.reasons}
    bad = policy.decide("zorgapp", "zorg", ["leerling.zorgnotitie"], students()[1], at=at)
    assert "missing_attribute" in {r.code for r in bad.reasons}


def test_filter_output_pseudonymises_and_errors_do_not_show_the_key(policy: avgpolicy.Policy) -> None:
    at = datetime.date(2025, 10, 1)
    rows = list(policy.filter("dus-i", "bekostiging", ["leerling.id", "leerling.bsn"], students(), at=at))
    assert rows and all("leerling.id" not in r or r["leerling.id"] != "s1" for r in rows)
    for row in rows:
        assert_clean("a filtered row", repr(row), key_forms())
    for bad_call in (lambda: policy.decide(5, "zorg", FIELDS, {}),
                     lambda: policy.decide("dus-i", "zorg", "leerling.bsn", {}),
                     lambda: policy.decide("dus-i", "zorg", FIELDS, {}, at="2025-01-01"),
                     lambda: policy.decide("dus-i", "zorg", FIELDS, {}, engine="fast"),
                     lambda: list(policy.filter("dus-i", "zorg", FIELDS, students()[0]))):
        with pytest.raises((TypeError, ValueError)) as info:
            bad_call()
        assert_clean("an error", f"{info.value} {info.value!r}", SECRETS + key_forms())


def test_filter_without_a_key_says_so_without_values() -> None:
    policy = avgpolicy.loads(POLICY)
    with pytest.raises(ValueError) as info:
        policy.filter("dus-i", "bekostiging", ["leerling.id"], students())
    assert "pseudonym" in str(info.value)
    assert_clean("the no-key error", str(info.value), SECRETS)


def test_a_broken_set_loaded_with_a_key_does_not_show_it(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG), pytest.raises(PolicyError) as info:
        avgpolicy.loads(POLICY + "permit kapot { partner nergens }", pseudonym_key=KEY)
    err = info.value
    texts = [str(err), repr(err), *(json.dumps(d.to_dict()) for d in err.diagnostics), caplog.text]
    for text in texts:
        assert_clean("a PolicyError", text, key_forms())
    with pytest.raises(TypeError) as info2:
        avgpolicy.loads(POLICY, pseudonym_key="SECRET-KEY-as-a-str")
    assert_clean("a key type error", str(info2.value), ["SECRET-KEY"])


def test_the_store_reports_without_the_key(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "beleid.avg").write_text(POLICY, encoding="utf-8")
    reported: list[BaseException] = []
    store = PolicyStore(tmp_path, pseudonym_key=KEY, on_error=reported.append)
    (tmp_path / "beleid.avg").write_text(POLICY + "permit kapot {", encoding="utf-8")
    with caplog.at_level(logging.DEBUG):
        assert False is store.refresh(force=True)
    texts = [repr(store), str(store), caplog.text, *(f"{e} {e!r}" for e in reported), repr(store.policy)]
    assert reported
    for text in texts:
        assert_clean("the store", text, key_forms())
