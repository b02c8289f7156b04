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
partner dus-i { role controller kind government }
partner duo { role controller kind government }
partner zorgapp { agreement "Z-1" valid from 2025-01-01 until 2026-12-31 }
partner snappet { role controller }
purpose bekostiging
purpose zorg kind care
consent zorgdeling
permit bsn_naar_dus_i {
    partner dus-i
    purpose bekostiging
    basis legal_obligation("Wet op het primair onderwijs, art. 178a")
    fields leerling.bsn, leerling.strafblad
    students where bsn != "000000000" and leerjaar >= 1
    valid until 2026-12-31
    dpia "DPIA-bekostiging"
}
# v2: a national id and a pseudonym never go to one partner (E419), so the pseudonym goes to duo
permit pseudoniem_naar_duo {
    partner duo
    purpose bekostiging
    basis legal_obligation("Wet op het primair onderwijs, art. 178a")
    fields leerling.id as pseudonym
    students where bsn != "000000000" and leerjaar >= 1
    valid until 2026-12-31
}
permit zorg_naar_app {
    partner zorgapp
    purpose zorg
    basis consent(zorgdeling)
    art9 explicit_consent(zorgdeling) dpia "DPIA-zorg"
    fields leerling.zorgnotitie, leerling.diagnoses, leerling.id as pseudonym
    students where zorgnotitie != "geen" and not "adhd" in diagnoses and bsn in ["1", "2"]
}
permit zorg_legal {
    partner zorgapp
    purpose zorg
    basis legal_obligation("Wet op het primair onderwijs, art. 178a")
    art9 health_care
    fields leerling.id
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


REQUESTS = [(p, u) for p in ("dus-i", "duo", "zorgapp", "snappet", "onbekend") for u in ("bekostiging", "zorg", "nope")]
MOMENTS = [datetime.date(2024, 6, 1), datetime.date(2025, 10, 1), datetime.date(2027, 2, 1)]


def outputs(policy: avgpolicy.Policy) -> Iterator[tuple[str, str]]:
    """Every text the engine can show for the requests, students and moments above."""
    yield "repr(policy)", repr(policy)
    yield "str(policy)", str(policy)
    for partner, purpose in REQUESTS:
        try:
            check = policy.compile(partner, purpose, FIELDS)
        except avgpolicy.UnknownNameError as exc:  # nothing is compiled for an undeclared name
            yield "the unknown name error", f"{exc} {exc!r}"
        else:
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
    rows = list(policy.filter("duo", "bekostiging", ["leerling.id"], students(), at=at))
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
        policy.filter("duo", "bekostiging", ["leerling.id"], students())
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


# -- reasons never reveal a protected value, through any operator (issue 15 item 2) -------------
# The student's protected values are planted EQUAL to the literals the conditions test, so a
# reason that quotes a failed condition would show the value itself.

LIT_ZORG, LIT_BSN, LIT_STRAF, LIT_DIAG = "LIT-ZORG-adhd", "LIT-BSN-123456782", "LIT-STRAF-diefstal", "LIT-DIAG-autisme"
LIT_NUMMER, LIT_DATUM = 918273645, datetime.date(2019, 3, 14)
LITERALS = [LIT_ZORG, LIT_BSN, LIT_STRAF, LIT_DIAG, str(LIT_NUMMER), LIT_DATUM.isoformat()]
PROTECTED = """
dataset leerling subject {
    id text personal
    leerjaar int personal
    bsn text national_id
    bsnnummer int national_id
    zorgnotitie text special
    diagnosedatum date special
    diagnoses set special
    strafblad text criminal
}
partner zorgapp { role controller }
purpose zorg kind care
""" + "".join(f"""
permit p{i} {{
    partner zorgapp
    purpose zorg
    basis legal_obligation("Wet op het primair onderwijs, art. 178a")
    art9 health_care
    fields leerling.id
    students where {condition}
}}
""" for i, condition in enumerate([
    f'zorgnotitie != "{LIT_ZORG}"', f'not zorgnotitie == "{LIT_ZORG}"', f'zorgnotitie not in ["{LIT_ZORG}"]',
    'zorgnotitie in ["geen", "x"]', f'bsn != "{LIT_BSN}"',
    f'bsn not in ["x", "{LIT_BSN}"]', f'bsnnummer != {LIT_NUMMER}', f'bsnnummer < {LIT_NUMMER}',
    f'bsnnummer not in {LIT_NUMMER}..{LIT_NUMMER}', f'diagnosedatum != {LIT_DATUM.isoformat()}',
    f'diagnosedatum > {LIT_DATUM.isoformat()}', f'not "{LIT_DIAG}" in diagnoses', f'"{LIT_DIAG}" not in diagnoses',
    f'strafblad != "{LIT_STRAF}"', f'leerjaar >= 1 and (strafblad != "{LIT_STRAF}" or leerjaar > 100)',
    f'leerjaar >= 1 and bsn != "{LIT_BSN}"',
]))
PLANTED = {"id": "s1", "leerjaar": 5, "bsn": LIT_BSN, "bsnnummer": LIT_NUMMER, "zorgnotitie": LIT_ZORG,
           "diagnosedatum": LIT_DATUM, "diagnoses": {LIT_DIAG, "iets"}, "strafblad": LIT_STRAF}


def test_reasons_never_quote_a_condition_on_a_protected_field() -> None:
    policy = avgpolicy.loads(PROTECTED)
    not_in_subset = 0
    for engine in ("compiled", "interpreted"):
        d = policy.decide("zorgapp", "zorg", ["leerling.id"], PLANTED, at=datetime.date(2025, 10, 1), engine=engine)
        assert False is d.allowed
        codes = [r.code for r in d.reasons]
        assert ["not_in_subset"] * 16 == codes  # every permit's condition failed, none was unknown
        not_in_subset += len(codes)
        texts = [d.explain(), json.dumps(d.to_dict(), default=str), repr(d), str(d),
                 *(f"{r} {r!r} {r.message} {r.to_dict()}" for r in d.reasons)]
        for text in texts:
            assert_clean(f"a decision ({engine})", text, LITERALS)
        assert "a condition on zorgnotitie does not hold" in d.explain()
    assert 32 == not_in_subset
    rows = list(policy.filter("zorgapp", "zorg", ["leerling.id"], [PLANTED], at=datetime.date(2025, 10, 1)))
    assert [] == rows


def test_a_condition_on_an_ordinary_field_is_still_quoted() -> None:
    policy = avgpolicy.loads(PROTECTED.replace("students where bsn != ", "students where leerjaar > 7 and bsn != "))
    d = policy.decide("zorgapp", "zorg", ["leerling.id"], PLANTED, at=datetime.date(2025, 10, 1))
    messages = [r.message for r in d.reasons if r.rule == "p4"]
    assert ["the student is outside the subset of rule p4: `leerjaar > 7` does not hold"] == messages


# -- the pseudonym key is not kept, and no frame an exception carries holds it (issue 15 item 12) --

def _holds(value: Any, key: bytes, depth: int = 0, seen: set[int] | None = None) -> bool:
    """Whether ``value`` is, contains or refers (attributes, slots, items; 4 levels) to the key."""
    seen = set() if seen is None else seen
    if id(value) in seen or depth > 4:
        return False
    seen.add(id(value))
    if isinstance(value, (bytes, bytearray, memoryview)):
        return key in bytes(value)
    if isinstance(value, str):
        return any(form in value for form in key_forms())
    if isinstance(value, dict):
        items: list[Any] = [*value.keys(), *value.values()]
    elif isinstance(value, (list, tuple, set, frozenset)):
        items = list(value)
    elif type(value).__module__.startswith(("avgpolicy", "hmac", "functools")):
        items = list(getattr(value, "__dict__", {}).values())
        items += [getattr(value, s) for c in type(value).__mro__ for s in getattr(c, "__slots__", ())
                  if isinstance(s, str) and hasattr(value, s)]
    else:
        return False
    return any(_holds(item, key, depth + 1, seen) for item in items)


def _frames_holding_the_key(exc: BaseException) -> list[str]:
    out = []
    tb = exc.__traceback__
    while tb is not None:
        frame = tb.tb_frame
        for name, value in frame.f_locals.items():
            if _holds(value, KEY):
                out.append(f"{frame.f_code.co_name}: {name}")
        tb = tb.tb_next
    return out


def test_no_frame_of_a_failed_load_holds_the_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "beleid.avg").write_text(POLICY, encoding="utf-8")
    with pytest.raises(PolicyError) as broken:
        avgpolicy.loads(POLICY + "permit kapot {", pseudonym_key=KEY)
    assert [] == _frames_holding_the_key(broken.value)

    def boom(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("the checker failed")

    monkeypatch.setattr("avgpolicy.loader.check", boom)  # an unexpected error deep inside loading
    for load in (lambda: avgpolicy.load(tmp_path, pseudonym_key=KEY),
                 lambda: avgpolicy.loads(POLICY, pseudonym_key=KEY),
                 lambda: PolicyStore(tmp_path, pseudonym_key=KEY)):
        with pytest.raises(RuntimeError) as info:
            load()
        assert [] == _frames_holding_the_key(info.value)


def test_a_policy_and_a_store_keep_only_what_derives_pseudonyms(tmp_path: Path) -> None:
    (tmp_path / "beleid.avg").write_text(POLICY, encoding="utf-8")
    policy = avgpolicy.loads(POLICY, pseudonym_key=KEY)
    store = PolicyStore(tmp_path, pseudonym_key=KEY)
    assert True is policy.has_pseudonym_key
    assert False is _holds(vars(policy), KEY)
    assert False is _holds(vars(store), KEY)
    # and the keyed function gives the pseudonyms it always gave: HMAC-SHA256(key, message)
    import hashlib
    import hmac
    row = next(iter(policy.filter("duo", "bekostiging", ["leerling.id"], [students()[0]],
                                  at=datetime.date(2025, 10, 1))))
    message = b"avgpolicy-pseudonym-v1\x00duo\x00leerling.id\x00s:s1"
    assert hmac.new(KEY, message, hashlib.sha256).hexdigest() == row["leerling.id"]
