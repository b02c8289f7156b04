"""The bundled example school board (policies/): it loads cleanly, is complete, and its tests pass."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest

import avgpolicy
from avgpolicy import nodes as n
from avgpolicy.model import PolicyModel, RuleInfo

POLICIES = Path(__file__).resolve().parent.parent / "policies"


@pytest.fixture(scope="module")
def policy() -> avgpolicy.Policy:
    return avgpolicy.load(POLICIES)


@pytest.fixture(scope="module")
def model(policy: avgpolicy.Policy) -> PolicyModel:
    return policy.model


#: the example's reference date: the checker's "window has ended" warning depends on today
REFERENCE_DAY = datetime.date(2026, 11, 25)


def test_loads_without_warnings() -> None:
    from avgpolicy.loader import build_policy, read_sources

    policy = build_policy(read_sources([POLICIES]), today=REFERENCE_DAY)
    assert [] == [w.headline() for w in policy.warnings]


def test_layout_catalogue_partners_rules_tests() -> None:
    files = {p.relative_to(POLICIES).as_posix() for p in POLICIES.rglob("*.avg")}
    assert {"controller.avg", "catalogue.avg", "partners.avg", "purposes.avg"} <= files
    assert any(f.startswith("rules/") for f in files)
    assert any(f.startswith("tests/") for f in files)


def test_at_least_eight_partners_with_agreements(model: PolicyModel) -> None:
    assert len(model.partners) >= 8
    with_agreements = [p for p in model.partners.values() if p.agreements]
    assert len(with_agreements) >= 8
    # one partner has two agreements with a gap between them (zermelo, January 2026)
    zermelo = sorted(model.partners["zermelo"].agreements, key=lambda a: a.window.start)
    assert 2 == len(zermelo)
    assert zermelo[0].window.end is not None and zermelo[1].window.start is not None
    assert zermelo[1].window.start - zermelo[0].window.end > datetime.timedelta(days=1)
    # the funding authority is a controller: no processing agreement
    assert () == model.partners["duo"].agreements


def test_catalogue_datasets_and_subject_fields(model: PolicyModel) -> None:
    cat = model.catalogue
    assert {"leerling", "lesgroep", "medewerker", "rooster", "toets", "absentie"} <= set(cat.datasets)
    assert "leerling" == cat.subject
    subject = {name: (f.type, f.sensitivity) for name, f in cat.subject_fields.items()}
    assert ("date", "personal") == subject["geboortedatum"]
    assert "text" == subject["school"][0]
    assert "int" == subject["leerjaar"][0]
    assert "set" == subject["lesgroepen"][0]
    assert ("bool", "personal") == subject["actief"]
    expected_classes = {
        "leerling.bsn": "national_id", "leerling.eckid": "pseudonym", "leerling.zorgnotitie": "special",
        "leerling.medische_notitie": "special", "leerling.dyslexieverklaring": "special",
        "absentie.reden": "special", "toets.resultaat": "sensitive", "leerling.adres": "sensitive",
        "leerling.foto": "personal",
    }
    assert expected_classes == {ref: cat.fields[ref].sensitivity for ref in expected_classes}


def _literals(rule: RuleInfo) -> set[object]:
    if rule.condition is None:
        return set()
    return {lit.value for lit in rule.condition.find_all(n.Literal)}


def test_two_schools(model: PolicyModel) -> None:
    schools = {"12AB", "34CD"}
    used = set().union(*(_literals(r) for r in model.rules))
    assert schools <= used
    tested = {sv.value for t in model.tests for sv in t.student if sv.key.value == "school"}
    assert schools <= tested


def test_uses_transforms_consent_topics_and_forbids(model: PolicyModel) -> None:
    transforms = {g.transform for r in model.rules for g in r.grants if g.transform}
    assert {"pseudonym", "year"} == transforms
    assert any(c.reconfirm_at_16 for c in model.consents.values())
    assert any(r.basis == "consent" for r in model.rules)
    assert any(r.art9 for r in model.rules)
    forbidden = {g.ref for r in model.rules if r.effect == "forbid" for g in r.grants}
    assert {"leerling.bsn", "leerling.zorgnotitie", "absentie.reden"} <= forbidden
    bsn_partners = {p for r in model.rules if r.effect == "permit" and r.grant_for("leerling.bsn")
                    for p in r.partners.names}
    assert "duo" in bsn_partners
    assert all(r.basis == "legal_obligation" for r in model.rules if r.grant_for("leerling.bsn")
               and r.effect == "permit")


# ---------------------------------------------------------------------------
# every rule is exercised by test blocks, statically: an allow case and a deny case

def _expected(test: n.Test, model: PolicyModel, allow: bool) -> set[str]:
    refs: set[str] = set()
    for e in test.expects:
        if e.allow != allow:
            continue
        for ref in e.fields:
            if ref.field.value == "*":
                refs |= {f.ref for f in model.catalogue.datasets[ref.dataset.value].fields}
            else:
                refs.add(ref.ref)
    return refs


def _about(test: n.Test, rule: RuleInfo) -> bool:
    return (test.partner is not None and test.purpose is not None
            and rule.partners.matches(test.partner.value) and rule.purposes.matches(test.purpose.value))


def _cases(model: PolicyModel, rule: RuleInfo) -> tuple[list[str], list[str]]:
    """Tests that exercise ``rule``: (allow cases, deny cases)."""
    granted = {g.ref for g in rule.grants}
    allows, denies = [], []
    for t in model.tests:
        if not _about(t, rule):
            continue
        allowed, denied = _expected(t, model, True) & granted, _expected(t, model, False) & granted
        if rule.effect == "permit":
            if allowed:
                allows.append(t.name.value)
            if denied:
                denies.append(t.name.value)
        else:
            # a forbid's "deny" case is one that expects `forbidden`; its "allow" case is a field it
            # covers that a partner it excepts, or a student outside its subset, still receives
            if any(e.because is not None and e.because.value == "forbidden"
                   and {r.ref for r in e.fields} & granted for e in t.expects):
                denies.append(t.name.value)
    if rule.effect == "forbid":
        for t in model.tests:
            if t.partner is None or not (_expected(t, model, True) & granted):
                continue
            purpose = t.purpose.value if t.purpose is not None else None
            if (not rule.partners.matches(t.partner.value) or purpose is None
                    or not rule.purposes.matches(purpose) or rule.condition is not None):
                allows.append(t.name.value)
    return allows, denies


def test_every_rule_has_an_allow_and_a_deny_test(model: PolicyModel) -> None:
    missing = {}
    for rule in model.rules:
        allows, denies = _cases(model, rule)
        if not allows or not denies:
            missing[rule.name] = (len(allows), len(denies))
    assert {} == missing


def test_consent_cases_are_covered(model: PolicyModel) -> None:
    consents = [(c.by.value, c.withdrawn is not None) for t in model.tests for c in t.consents]
    assert ("parent", False) in consents
    assert ("student", False) in consents
    assert ("parent", True) in consents
    becauses = {e.because.value for t in model.tests for e in t.expects if e.because}
    assert {"no_consent", "agreement_inactive", "not_in_subset", "forbidden", "no_permit",
            "outside_window", "missing_attribute"} <= becauses


# ---------------------------------------------------------------------------
# the engine agrees with every expectation the authors wrote

@pytest.mark.parametrize("engine", ["compiled", "interpreted"])
def test_all_test_blocks_pass(policy: avgpolicy.Policy, engine: str) -> None:
    from avgpolicy.testing import run

    report = run(policy, engine=engine)
    assert [] == [f.describe_failure() for f in report.failures]
    assert len(policy.model.tests) == len(report.results)
    assert () == report.untested


def _website_request(consent: avgpolicy.Consent, at: datetime.date) -> dict[str, object]:
    return {"partner": "schoolwebsite", "purpose": "publicatie", "fields": ["leerling.foto"], "at": at,
            "student": {"school": "34CD", "geboortedatum": datetime.date(2010, 1, 10), "actief": True,
                        "consents": {"beeldmateriaal": consent}}}


def test_parental_consent_after_16_informs_the_student(policy: avgpolicy.Policy) -> None:
    parent = avgpolicy.Consent(by="parent", given=datetime.date(2025, 9, 1))
    before = policy.decide(**_website_request(parent, datetime.date(2025, 12, 1)))
    after = policy.decide(**_website_request(parent, datetime.date(2026, 2, 1)))
    assert (True, True) == (before.allowed, after.allowed)
    assert "inform_student" not in {r.code for r in before.reasons}
    assert "inform_student" in {r.code for r in after.reasons}


def test_reconfirm_at_16_topic_drops_parental_consent(policy: avgpolicy.Policy) -> None:
    student = {"id": "L1", "school": "34CD", "leerjaar": 3, "onderwijstype": "havo", "actief": True,
               "geboortedatum": datetime.date(2010, 1, 10),
               "consents": {"deelname_onderzoek": avgpolicy.Consent(by="parent", given=datetime.date(2025, 10, 15))}}
    request = {"partner": "uu_onderzoek", "purpose": "onderzoek", "fields": ["toets.schaalscore"],
               "student": student}
    assert policy.decide(**request, at=datetime.date(2026, 1, 9)).allowed
    late = policy.decide(**request, at=datetime.date(2026, 1, 10))
    assert not late.allowed
    assert "no_consent" in {r.code for r in late.reasons}


def test_language_guide_examples_parse() -> None:
    """Every complete declaration shown in docs/language.md parses (fragments with `...` excepted)."""
    import re

    from avgpolicy.parser import parse
    from avgpolicy.source import Source

    guide = (POLICIES.parent / "docs" / "language.md").read_text(encoding="utf-8")
    blocks = [b for b in re.findall(r"```\n(.*?)```", guide, re.S)
              if re.match(r"(#.*\n)*(dataset|partner|purpose|consent|permit|forbid|test)\b", b)
              and "..." not in b]
    assert len(blocks) >= 8
    errors = []
    for i, block in enumerate(blocks):
        _, diagnostics = parse(Source(f"language.md block {i}", block))
        errors += [d.headline() for d in diagnostics if d.is_error]
    assert [] == errors


# ---------------------------------------------------------------------------
# the example is a v2 policy set (spec section 7)

def test_controller_with_a_dpo(model: PolicyModel) -> None:
    c = model.controller
    assert c.declared and "public" == c.kind and c.dpo
    assert 24 == c.breach_handling.hours


def test_every_partner_has_role_and_kind(model: PolicyModel) -> None:
    from avgpolicy.law import EEA

    for p in model.partners.values():
        role = p.role or ("processor" if p.agreements else None)
        assert role in {"processor", "controller", "joint_controller"}, p.name
        assert "other" != p.kind, p.name
        if not p.agreements:
            assert role in {"controller", "joint_controller"}, p.name
    outside = [p for p in model.partners.values() if p.location not in EEA]
    assert ["padlet"] == [p.name for p in outside]
    assert "scc" == outside[0].transfer


def test_agreements_carry_their_privacybijsluiter(model: PolicyModel) -> None:
    agreements = [a for p in model.partners.values() for a in p.agreements]
    assert len(agreements) >= 12
    for a in agreements:
        assert a.covers and a.purposes and a.retain and a.breach and a.model, a.reference
        assert a.breach.hours + model.controller.breach_handling.hours <= 72, a.reference
    assert any(a.dpia for a in agreements)


def test_laws_purpose_kinds_and_dpias(model: PolicyModel) -> None:
    from avgpolicy.model import LAW_BASES

    for r in model.rules:
        if r.basis in LAW_BASES:
            assert r.law, r.name
    laws = " ".join(r.law for r in model.rules if r.law)
    for law in ("WPO", "WVO 2020", "Leerplichtwet 1969", "Wet op het onderwijstoezicht", "Wet pseudonimisering",
                "Wet register onderwijsdeelnemers", "Wet publieke gezondheid"):
        assert law in laws, law
    assert all(u.kind != "other" for u in model.purposes.values())
    assert "transfer" == model.purposes["overstap"].kind
    for r in model.rules:
        special = [g.ref for g in r.grants if model.catalogue.fields[g.ref].sensitivity in ("special", "criminal")]
        if r.effect == "permit" and special:
            partner = model.partners[next(iter(r.partners.names))]
            assert r.dpia_under(partner.agreements), r.name


def test_key_and_left_fields(model: PolicyModel) -> None:
    assert ("id", "uitschrijfdatum") == (model.catalogue.key, model.catalogue.left)
    becauses = {e.because.value for t in model.tests for e in t.expects if e.because}
    assert {"left_school", "outside_agreement"} <= becauses
    # a student who left is still transferred (a `transfer` purpose), and refused elsewhere
    left = [t for t in model.tests if any(sv.key.value == "uitschrijfdatum" for sv in t.student)]
    assert {"overstap", "leermiddelen", "bekostiging"} <= {t.purpose.value for t in left if t.purpose}
