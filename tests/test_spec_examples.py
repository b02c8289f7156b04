"""Spec examples: every example of the language spec parses and validates as the spec says.

The example texts are copied verbatim from the spec (language.md, v1) into spec_texts.py;
the tests do not read the spec itself, so the project stands alone.
"""

import datetime

import pytest
from spec_texts import DATASETS, PARTNERS, PUBLICATIE, PURPOSES, RULES, SCHOOLWEBSITE, TESTS

import avgpolicy
from avgpolicy import nodes as n
from avgpolicy.loader import analyse
from avgpolicy.parser import parse
from avgpolicy.source import Source

TODAY = datetime.date(2025, 10, 1)

# §3.6
CONDITION = ('students where school in ["12AB", "34CD"] and (leerjaar >= 3 or "plusklas" in lesgroepen) '
             "and not age >= 16")

# Not in the spec: the partner and purpose the second test names, so the examples form one set.
SUPPLEMENT = SCHOOLWEBSITE + PUBLICATIE + """\
permit website_foto {
    partner schoolwebsite
    purpose publicatie
    basis   consent(beeldmateriaal)
    fields  leerling.foto
}
"""

SPEC_SET = {"catalogue.avg": DATASETS, "partners.avg": PARTNERS, "purposes.avg": PURPOSES,
            "rules.avg": RULES, "tests/spec.avg": TESTS, "extra.avg": SUPPLEMENT}


def diagnostics(files, today=TODAY):
    _, diags = analyse([Source(name, text) for name, text in files.items()], today=today)
    return [(d.file, d.code, d.line, d.column) for d in diags]


@pytest.mark.parametrize("text", [DATASETS, PARTNERS, PURPOSES, RULES, TESTS, SUPPLEMENT])
def test_each_example_parses_without_syntax_errors(text):
    _, diags = parse(Source("x.avg", text))
    assert [] == diags


def test_the_examples_together_validate_clean():
    assert [] == diagnostics(SPEC_SET)


def test_the_examples_load():
    policy = avgpolicy.loads(SPEC_SET)
    rule = next(r for r in policy.model.rules if r.name == "snappet_lesmateriaal")
    assert ["leerling.eckid", "leerling.roepnaam", "leerling.leerjaar", "leerling.lesgroepen",
            "leerling.id"] == [g.ref for g in rule.grants]
    assert "pseudonym" == rule.grant_for("leerling.id").transform
    assert "1 year" == str(rule.retain)
    assert ["snappet_ziet_groep_5", "foto_met_toestemming"] == sorted(
        (t.name.value for t in policy.model.tests), reverse=True)
    assert policy.model.consents["onderzoek"].reconfirm_at_16
    forbid = next(r for r in policy.model.rules if r.effect == "forbid")
    assert forbid.partners.matches("snappet") and not forbid.partners.matches("dus-i")
    assert forbid.purposes.everything and not forbid.purposes.names  # optional purpose defaults to `*`


def test_the_rule_window_has_ended_after_its_end_date():
    assert [("rules.avg", "W005", 7, 5)] == diagnostics(SPEC_SET, today=datetime.date(2026, 8, 1))


@pytest.mark.parametrize("window", ["valid from 2025-08-01 until 2026-07-31", "valid from 2025-08-01",
                                    "valid until 2026-07-31"])
def test_section_3_4_window_forms(window):
    rules = f"forbid w {{\n    partner dus-i\n    fields leerling.bsn\n    {window}\n}}\n"
    assert [] == diagnostics({**SPEC_SET, "w.avg": rules})


def test_section_3_4_a_window_ending_before_it_starts_is_an_error():
    rules = "forbid w {\n    partner dus-i\n    fields leerling.bsn\n    valid from 2026-07-31 until 2025-08-01\n}\n"
    assert [("w.avg", "E303", 4, 5)] == diagnostics({**SPEC_SET, "w.avg": rules})


def test_section_3_6_condition():
    rule = ("permit c {\n    partner snappet\n    purpose leermiddelen\n    basis contract\n"
            f"    fields leerling.roepnaam\n    {CONDITION}\n}}\n")
    assert [] == diagnostics({**SPEC_SET, "c.avg": rule})
    f, _ = parse(Source("c.avg", rule))
    cond = f.declarations[0].condition
    assert isinstance(cond, n.And) and 3 == len(cond.items)
    assert isinstance(cond.items[1], n.Or) and isinstance(cond.items[1].items[1], n.InSet)
    assert isinstance(cond.items[2], n.Not)


LAW = 'legal_obligation("Wet op het primair onderwijs, art. 178a")'
PERMIT = ("permit x {{\n    partner {partner}\n    purpose leermiddelen\n    basis {basis}\n    fields {fields}\n"
          "{extra}}}\n")


def permit(fields, basis="contract", partner="snappet", extra=""):
    return PERMIT.format(partner=partner, basis=basis, fields=fields, extra=extra)


# §5 errors, in the order the spec lists them
@pytest.mark.parametrize(("text", "code"), [
    ("permit x {\n    partner snappet snappet\n}\n", "E001"),
    (permit("leerling.roepnaam", partner="snapet"), "E101"),
    (permit("leerling.roepnaam").replace("leermiddelen", "leermidelen"), "E102"),
    (permit("leerling.foto", basis="consent(fotos)"), "E103"),
    (permit("leerlingen.roepnaam"), "E104"),
    (permit("leerling.naam"), "E105"),
    ("purpose leermiddelen\n", "E201"),
    ('dataset extra "x" subject {\n    a text personal\n}\n', "E203"),
    (permit("leerling.roepnaam", extra='    students where leerjaar == "5"\n'), "E301"),
    ("permit x {\n    partner snappet\n    purpose leermiddelen\n    fields leerling.roepnaam\n}\n", "E304"),
    ("forbid x {\n    partner snappet\n    fields leerling.roepnaam\n    retain 1 year\n}\n", "E305"),
    (permit("leerling.bsn", partner="dus-i", basis='public_task("WVO 2020, art. 2.2")',
            extra="    students where leerjaar > 3\n"), "E306"),
    (permit("leerling.zorgnotitie", basis='public_task("WVO 2020, art. 2.2")',
            extra="    students where leerjaar > 3\n    dpia \"DPIA-zorg\"\n"), "E308"),
    (permit("leerling.leerjaar as year"), "E309"),
])
def test_section_5_errors(text, code):
    assert [code] == [c for _f, c, _l, _c in diagnostics({**SPEC_SET, "x.avg": text}) if c.startswith("E")]


def test_section_5_no_subject_dataset_and_age_without_birth_date():
    no_subject = {**SPEC_SET, "catalogue.avg": DATASETS.replace(" subject {", " {")}
    assert "E202" in [c for _f, c, _l, _c in diagnostics(no_subject)]
    no_birth = {**SPEC_SET, "catalogue.avg": DATASETS.replace("geboortedatum date", "geboortedatum text"),
                "tests/spec.avg": "", "x.avg": permit("leerling.roepnaam", extra="    students where age < 12\n")}
    assert [("x.avg", "E302", 6, 20)] == diagnostics(no_birth)


def test_section_5_criminal_data():
    files = {**SPEC_SET, "catalogue.avg": DATASETS.replace("zorgnotitie   text      special",
                                                           "zorgnotitie   text      criminal"),
             "x.avg": permit("leerling.zorgnotitie", extra="    students where leerjaar > 3\n    dpia \"D\"\n")}
    assert ["E307"] == [c for _f, c, _l, _c in diagnostics(files) if c.startswith("E")]


# §5 warnings, in the order the spec lists them
@pytest.mark.parametrize(("text", "code"), [
    ("forbid f {\n    partner snappet\n    fields leerling.achternaam\n}\n" + permit("leerling.achternaam"),
     "W001"),
    (permit("leerling.roepnaam", extra="    valid from 2026-08-01\n"), "W002"),
    (permit("leerling.roepnaam", extra="    students where leerjaar in 5..3\n"), "W003"),
    (permit("leerling.roepnaam", partner="*"), "W004"),
    (permit("leerling.roepnaam", extra="    valid from 2025-08-01 until 2025-09-30\n"), "W005"),
    (permit("leerling.bsn", partner="dus-i", basis=LAW, extra="    students where leerjaar > 3\n"), "W006"),
    (permit("leerling.roepnaam", basis="consent(beeldmateriaal)"), "W007"),
    # v2 (spec 7.1, 7.8): W008 is error E402 under a public controller (the default), W009 is error E419
    (permit("leerling.achternaam", basis="legitimate_interest"), "E402"),
    (permit("leerling.bsn, leerling.eckid", partner="dus-i", basis=LAW,
            extra="    students where leerjaar > 3\n    valid until 2026-07-31\n"), "E419"),
    (permit("absentie.reden", partner="dus-i", basis=LAW,
            extra="    art9 vital_interest\n    valid until 2026-07-31\n    dpia \"DPIA-verzuim\"\n"), "W010"),
])
def test_section_5_warnings(text, code):
    # W007 needs a second permit for roepnaam to snappet: snappet_lesmateriaal (basis contract) is one
    assert [code] == [c for _f, c, _l, _c in diagnostics({**SPEC_SET, "x.avg": text})]


def test_section_2_lexical_rules():
    text = ('# a comment\npurpose p-1 "say \\"hi\\" \\\\ ok" # trailing comment\n'
            "permit r { partner dus-i purpose p-1 basis legal_obligation(\"WPO\") fields leerling.roepnaam "
            "students where leerjaar in -1..8 retain 2 years }\n")
    assert [] == diagnostics({**SPEC_SET, "x.avg": text})
    f, _ = parse(Source("x.avg", text))
    assert 'say "hi" \\ ok' == f.declarations[0].title
