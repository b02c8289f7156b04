"""Checker, spec v2 (section 7): for each rule a policy that breaks it (the exact diagnostic, located)
and one that keeps it (no diagnostic at all)."""

import datetime

import pytest

from avgpolicy import analysis, law
from avgpolicy.loader import analyse
from avgpolicy.parser import parse
from avgpolicy.source import Source

TODAY = datetime.date(2025, 10, 1)

BASE = """\
controller "Stichting Openbaar Onderwijs Rivierland" {
    kind             public
    dpo              "Functionaris gegevensbescherming, fg@rivierland.nl"
    breach_handling  24 hours
}
dataset leerling "Leerlinggegevens" subject {
    id              text  personal  key
    eckid           text  pseudonym
    roepnaam        text  personal
    geboortedatum   date  personal
    leerjaar        int   personal
    lesgroepen      set   personal
    bsn             text  national_id
    zorgnotitie     text  special
    strafblad       text  criminal
    cijfer          int   sensitive
    uitschrijfdatum date  personal  left
}
dataset absentie "Absentie" {
    datum date personal
    reden text special
}
partner snappet "Snappet B.V." {
    role  processor
    kind  vendor
    agreement "DPA-1" valid from 2025-08-01 until 2026-07-31 {
        model     convenant_4
        covers    leerling.{id, eckid, roepnaam, leerjaar, cijfer}
        purposes  leermiddelen
        retain    1 year
        breach    24 hours
    }
}
partner duo "DUO" { role controller kind government }
partner ggd "GGD" { role controller kind care }
partner website "Schoolwebsite" { role controller }
partner cloud "Cloud Inc." {
    kind vendor  location US  transfer scc
    agreement "C-1" valid from 2025-01-01 { covers leerling.roepnaam retain 1 year breach 24 hours }
}
purpose leermiddelen "Digitaal leermateriaal" kind education
purpose bekostiging "Bekostiging" kind funding
purpose zorg "Ondersteuning" kind care
purpose ouders "Ouders informeren" kind parent_information
purpose publicatie "Website" kind publication
purpose onderzoek "Onderzoek" kind research
consent beeldmateriaal "Foto's"
consent zorgdeling "Zorgnotities delen"
"""

LAW = 'legal_obligation("Wet op het primair onderwijs, art. 178a")'


def diagnostics(text: str, base: str = BASE) -> list:
    _, diags = analyse([Source("base.avg", base), Source("t.avg", text)], today=TODAY)
    return diags


def found(text: str, base: str = BASE) -> list[tuple[str, int, int]]:
    """(code, line, column) of every diagnostic in t.avg and base.avg, in order of position."""
    return [(d.code, d.line, d.column) for d in sorted(diagnostics(text, base),
                                                       key=lambda d: (d.file, d.line, d.column, d.code))]


def at(text: str, needle: str) -> tuple[int, int]:
    """Line and column (1-based) of the first ``needle`` in ``text``."""
    offset = text.index(needle)
    line = text.count("\n", 0, offset) + 1
    return line, offset - (text.rfind("\n", 0, offset) + 1) + 1


def test_the_base_is_clean():
    assert [] == found("")


# (code, breaking text, the text the diagnostic points at, a text that keeps the rule)
CASES = [
    # 7.1 the controller
    ("E401", 'controller "Tweede bestuur"', 'controller "Tweede', ""),
    ("E402", "permit r { partner duo purpose bekostiging basis legitimate_interest fields leerling.leerjaar }",
     "legitimate_interest",
     "permit r { partner duo purpose bekostiging basis public_task(\"WPO, art. 118\") fields leerling.leerjaar }"),
    # 7.2 partners
    ("E403", 'partner nieuw "Nieuw"', "nieuw", 'partner nieuw "Nieuw" { role controller }'),
    ("E404", 'partner nieuw "Nieuw" { role processor }', "processor",
     'partner nieuw "Nieuw" { role joint_controller }'),
    ("E405", "permit r { partner website purpose bekostiging basis " + LAW + "\n"
             "  fields leerling.bsn valid until 2026-07-31 }", "leerling.bsn",
     "permit r { partner duo purpose bekostiging basis " + LAW + "\n"
     "  fields leerling.bsn valid until 2026-07-31 }"),
    ("E406", 'partner nieuw { role controller location CN }', "CN",
     'partner nieuw { role controller location CN transfer scc }'),
    ("E407", 'partner nieuw { role controller location CN transfer adequacy }', "adequacy",
     'partner nieuw { role controller location JP transfer adequacy }'),
    # 7.3 agreements
    ("E408", 'partner nieuw { agreement "N-1" valid from 2025-01-01 { covers leerling.id breach 3 days } }',
     "breach 3", 'partner nieuw { agreement "N-1" valid from 2025-01-01 { covers leerling.id breach 48 hours } }'),
    ("E409", 'partner nieuw {\n  agreement "N-1" valid until 2025-12-31 { covers leerling.id breach 1 day }\n'
             '  agreement "N-1" valid from 2026-01-01 { covers leerling.id breach 1 day }\n}',
     'agreement "N-1" valid from',
     'partner nieuw {\n  agreement "N-1" valid until 2025-12-31 { covers leerling.id breach 1 day }\n'
     '  agreement "N-2" valid from 2026-01-01 { covers leerling.id breach 1 day }\n}'),
    ("E410", "permit r { partner snappet purpose leermiddelen basis contract fields leerling.geboortedatum }",
     "leerling.geboortedatum",
     "permit r { partner snappet purpose leermiddelen basis contract fields leerling.roepnaam }"),
    ("E410", "permit r { partner snappet purpose bekostiging basis contract fields leerling.roepnaam }",
     "bekostiging basis",
     "permit r { partner snappet purpose leermiddelen basis contract fields leerling.roepnaam }"),
    ("E411", "permit r { partner snappet purpose leermiddelen basis contract fields leerling.roepnaam\n"
             "  retain 2 years }", "retain 2",
     "permit r { partner snappet purpose leermiddelen basis contract fields leerling.roepnaam\n"
     "  retain 6 months }"),
    ("W011", 'partner nieuw { agreement "N-1" valid from 2025-01-01 { breach 1 day } }', 'agreement "N-1"',
     'partner nieuw { agreement "N-1" valid from 2025-01-01 { covers leerling.id breach 1 day } }'),
    ("W012", 'partner nieuw { agreement "N-1" valid from 2025-01-01 { covers leerling.id } }', 'agreement "N-1"',
     'partner nieuw { role controller agreement "N-1" valid from 2025-01-01 { covers leerling.id } }'),
    ("W013", 'partner nieuw { agreement "N-1" valid from 2025-01-01 { covers leerling.roepnaam breach 1 day } }\n'
             "permit r { partner nieuw purpose leermiddelen basis contract fields leerling.roepnaam }", "r {",
     'partner nieuw { agreement "N-1" valid from 2025-01-01 { covers leerling.roepnaam breach 1 day } }\n'
     "permit r { partner nieuw purpose leermiddelen basis contract fields leerling.roepnaam retain 1 year }"),
    # 7.4 laws
    ("E412", "permit r { partner duo purpose bekostiging basis legal_obligation fields leerling.leerjaar }",
     "legal_obligation",
     "permit r { partner duo purpose bekostiging basis " + LAW + " fields leerling.leerjaar }"),
    ("E412", "permit r { partner duo purpose bekostiging basis public_task fields leerling.leerjaar }",
     "public_task", "permit r { partner duo purpose bekostiging basis public_task(\"WVO 2020, art. 2.2\") "
                    "fields leerling.leerjaar }"),
    ("E412", "permit r { partner duo purpose bekostiging basis public_task(\"  \") fields leerling.leerjaar }",
     "public_task", ""),
    ("E412", "permit r { partner duo purpose bekostiging basis contract(\"BW\") fields leerling.leerjaar }",
     "contract", "permit r { partner duo purpose bekostiging basis contract fields leerling.leerjaar }"),
    # 7.5 purpose kinds
    ("W014", "permit r { partner snappet purpose leermiddelen basis consent(beeldmateriaal) fields leerling.roepnaam }",
     "consent(", ""),
    ("E413", "permit r { partner website purpose publicatie basis public_task(\"WPO\") fields leerling.roepnaam }",
     "public_task",
     "permit r { partner website purpose publicatie basis consent(beeldmateriaal) fields leerling.roepnaam }"),
    ("E414", "permit r { partner website purpose ouders basis public_task(\"WVO art. 23b\") fields leerling.roepnaam\n"
             "  students where leerjaar > 3 }", "leerjaar > 3",
     "permit r { partner website purpose ouders basis public_task(\"WVO art. 23b\") fields leerling.roepnaam\n"
     "  students where leerjaar > 3 and age < 18 }"),
    ("E414", "permit r { partner website purpose ouders basis public_task(\"WVO art. 23b\") fields leerling.roepnaam }",
     "r {", "permit r { partner website purpose ouders basis consent(beeldmateriaal) fields leerling.roepnaam }"),
    # 7.6 special categories
    ("E415", "permit r { partner ggd purpose zorg basis public_task(\"Wet publieke gezondheid\")\n"
             "  art9 explicit_consent fields leerling.zorgnotitie\n"
             "  students where leerjaar > 3 dpia \"DPIA-zorg\" }", "explicit_consent",
     "permit r { partner ggd purpose zorg basis public_task(\"Wet publieke gezondheid\")\n"
     "  art9 explicit_consent(zorgdeling) valid until 2026-07-31\n"
     "  fields leerling.zorgnotitie students where leerjaar > 3 dpia \"DPIA-zorg\" }"),
    ("E415", "permit r { partner ggd purpose zorg basis public_task(\"Wet publieke gezondheid\")\n"
             "  art9 health_care(zorgdeling)\n"
             "  fields leerling.zorgnotitie students where leerjaar > 3 dpia \"DPIA-zorg\" }", "zorgdeling)", ""),
    ("E103", "permit r { partner ggd purpose zorg basis public_task(\"Wet publieke gezondheid\")\n"
             "  art9 explicit_consent(zorgdelen)\n"
             "  fields leerling.zorgnotitie students where leerjaar > 3 dpia \"DPIA-zorg\" }", "zorgdelen", ""),
    ("E416", "permit r { partner ggd purpose bekostiging basis public_task(\"Wet publieke gezondheid\")\n"
             "  art9 health_care fields leerling.zorgnotitie students where leerjaar > 3 dpia \"DPIA-zorg\" }",
     "health_care",
     "permit r { partner ggd purpose zorg basis public_task(\"Wet publieke gezondheid\") valid until 2026-07-31\n"
     "  art9 health_care fields leerling.zorgnotitie students where leerjaar > 3 dpia \"DPIA-zorg\" }"),
    ("E417", "permit r { partner website purpose zorg basis public_task(\"Wet publieke gezondheid\")\n"
             "  art9 health_care fields leerling.zorgnotitie students where leerjaar > 3 dpia \"DPIA-zorg\" }",
     "leerling.zorgnotitie",
     "permit r { partner website purpose zorg basis public_task(\"Wet publieke gezondheid\")\n"
     "  art9 explicit_consent(zorgdeling) fields leerling.zorgnotitie students where leerjaar > 3 dpia \"D\"\n"
     "  valid until 2026-07-31 }"),
    ("E418", "permit r { partner ggd purpose zorg basis public_task(\"Wet publieke gezondheid\")\n"
             "  art9 health_care fields leerling.zorgnotitie students where leerjaar > 3 }", "leerling.zorgnotitie",
     'partner nieuw { kind care agreement "N-1" valid from 2025-01-01 until 2026-07-31 {\n'
     '  covers leerling.zorgnotitie breach 1 day retain 1 year dpia "DPIA-zorg" } }\n'
     "permit r { partner nieuw purpose zorg basis public_task(\"Wet publieke gezondheid\")\n"
     "  art9 health_care fields leerling.zorgnotitie students where leerjaar > 3 }"),
    ("E418", "permit r { partner duo purpose bekostiging basis " + LAW + "\n"
             "  fields leerling.strafblad students where leerjaar > 3 }", "leerling.strafblad",
     "permit r { partner duo purpose bekostiging basis " + LAW + "\n"
     "  fields leerling.strafblad students where leerjaar > 3 dpia \"DPIA-2025\" }"),
    ("E419", "permit r { partner duo purpose bekostiging basis " + LAW + "\n"
             "  fields leerling.bsn valid until 2026-07-31 }\n"
             "permit q { partner duo purpose bekostiging basis " + LAW + " fields leerling.id as pseudonym }",
     "leerling.bsn",
     "permit r { partner duo purpose bekostiging basis " + LAW + "\n"
     "  fields leerling.bsn valid until 2026-07-31 }\n"
     "permit q { partner duo purpose bekostiging basis " + LAW + " fields leerling.leerjaar }"),
    # 7.7 field roles
    ("E420", 'dataset extra "x" {\n  a text personal key\n}', "key", 'dataset extra "x" {\n  a text personal\n}'),
    # unknown names of v2
    ("E116", 'partner nieuw { role verwerker }', "verwerker", ""),
    ("E117", 'partner nieuw { role controller kind leverancier }', "leverancier", ""),
    ("E118", 'partner nieuw { role controller location UK transfer adequacy }', "UK", ""),
    ("E119", 'partner nieuw { role controller location CN transfer sccs }', "sccs", ""),
    ("E120", 'purpose extra kind onderwijs', "onderwijs", 'purpose extra kind education'),
    ("E121", 'partner nieuw { agreement "N-1" valid from 2025-01-01 { covers leerling.id breach 1 day '
             'model convenant_5 } }', "convenant_5", ""),
    # issue 15: conditions that test protected fields
    ("W017", "forbid f { partner website fields leerling.roepnaam students where zorgnotitie == \"ADHD\" }",
     "zorgnotitie ==", "forbid f { partner website fields leerling.roepnaam students where leerjaar == 3 }"),
]


@pytest.mark.parametrize(("code", "text", "needle", "keep"), CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_each_rule_broken_is_one_located_diagnostic(code, text, needle, keep):
    line, column = at(text, needle)
    assert [(code, line, column)] == found(text)


@pytest.mark.parametrize(("code", "text", "needle", "keep"), [c for c in CASES if c[3]],
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES) if c[3]])
def test_each_rule_kept_is_clean(code, text, needle, keep):
    assert [] == found(keep)


def test_messages_say_what_to_do_and_cite_the_article():
    for code, text, _needle, _keep in CASES:
        for d in diagnostics(text):
            assert d.message == d.message.strip() and "\n" not in d.message and not d.message.endswith(".")
            assert d.help, code
            if code[1] == "4" or code in ("W011", "W012", "W013", "W014", "W015", "W016", "W017"):
                assert "art." in d.help or "§7" in d.help, (code, d.help)


# ---------------------------------------------------------------------------
# 7.1


def test_legitimate_interest_is_no_diagnostic_for_a_private_controller():
    base = BASE.replace("kind             public", "kind             private")
    assert [] == found("permit r { partner duo purpose bekostiging basis legitimate_interest "
                       "fields leerling.leerjaar }", base)


def test_legitimate_interest_without_a_controller_is_an_error_too():
    base = BASE[BASE.index("dataset leerling"):]
    assert ["E402"] == [d.code for d in diagnostics(
        "permit r { partner duo purpose bekostiging basis legitimate_interest fields leerling.leerjaar }", base)]


def test_breach_handling_alone_over_72_hours():
    base = BASE.replace("breach_handling  24 hours", "breach_handling  4 days")
    (d, *rest) = [d for d in diagnostics("", base) if d.code == "E408"]
    assert at(base, "breach_handling  4 days") == (d.line, d.column)
    assert "breach_handling 4 days" in d.message
    # and every agreement's breach deadline is then over too
    assert 2 == len(rest)


def test_breach_plus_handling_names_the_room_left():
    (d,) = diagnostics('partner nieuw { agreement "N-1" valid from 2025-01-01 { covers leerling.id breach 49 hours } }')
    assert "E408" == d.code
    assert "`breach 48 hours`" in d.help


def test_unknown_controller_kind():
    base = BASE.replace("kind             public", "kind             publiek")
    assert [("E115", 2, 22)] == found("", base)


# ---------------------------------------------------------------------------
# 7.2


def test_a_v1_partner_without_anything_says_what_to_add():
    (d,) = diagnostics('partner dus-i "DUS-I / DUO"')
    assert ("E403", "partner `dus-i` has no processing agreement and no role") == (d.code, d.message)
    assert "`role controller`" in d.help and "GDPR art. 28(3)" in d.help


def test_location_outside_the_eea_with_an_adequacy_decision_suggests_it():
    (d,) = diagnostics("partner nieuw { role controller location CH }")
    assert "E406" == d.code
    assert "`transfer adequacy`" in d.help


def test_eea_countries_need_no_transfer():
    for country in ("NO", "IS", "LI", "DE", "GR"):
        assert [] == found(f"partner nieuw {{ role controller location {country} }}")


def test_the_adequacy_list_is_kept_with_its_date():
    assert law.ADEQUACY_AS_OF.year >= 2025
    assert {"CH", "GB", "JP", "KR", "NZ", "US", "CA"} <= set(law.ADEQUACY)
    assert not set(law.ADEQUACY) & law.EEA
    assert 30 == len(law.EEA)


def test_unknown_country_suggests_the_iso_code():
    (d,) = diagnostics("partner nieuw { role controller location nl }")
    assert ("E118", "did you mean `NL`?") == (d.code, d.help)


def test_national_id_to_a_partner_of_kind_school_swv_or_exam():
    for kind in ("school", "swv", "exam", "government"):
        text = (f"partner nieuw {{ role controller kind {kind} }}\n"
                f"permit r {{ partner nieuw purpose bekostiging basis {LAW}\n"
                "  fields leerling.bsn valid until 2026-07-31 }")
        assert [] == found(text)


# ---------------------------------------------------------------------------
# 7.3


def test_field_outside_the_agreement_names_what_it_covers():
    (d,) = diagnostics("permit r { partner snappet purpose leermiddelen basis contract fields leerling.geboortedatum }")
    assert "E410" == d.code
    assert "`DPA-1` (covers leerling.cijfer, leerling.eckid, leerling.id, leerling.leerjaar ...; purposes " \
           "leermiddelen)" in d.message
    assert "GDPR art. 28(3)(a)" in d.help


def test_coverage_is_the_union_of_overlapping_agreements():
    partner = ('partner nieuw {\n'
               '  agreement "N-1" valid from 2025-01-01 until 2025-12-31 {\n'
               '    covers leerling.id breach 1 day retain 1 year }\n'
               '  agreement "N-2" valid from 2025-06-01 { covers leerling.roepnaam breach 1 day retain 1 year }\n}\n')
    both = "permit r { partner nieuw purpose leermiddelen basis contract fields leerling.{id, roepnaam} }"
    assert [] == found(partner + both)
    # a permit that starts after N-1 ended: only N-2 is in force during its window
    late = both[:-1] + " valid from 2026-01-01 }"  # the permit's line is line 6
    assert [("E410", *at(partner + late, "leerling.{"))] == found(partner + late)


def test_coverage_of_a_field_and_a_purpose_together():
    partner = ('partner nieuw {\n'
               '  agreement "N-1" valid from 2025-01-01 { covers leerling.id purposes leermiddelen breach 1 day\n'
               '    retain 1 year }\n'
               '  agreement "N-2" valid from 2025-01-01 { covers leerling.id, leerling.roepnaam purposes zorg\n'
               '    breach 1 day retain 1 year }\n}\n')
    # both fields and both purposes are covered, but never roepnaam for leermiddelen
    text = "permit r { partner nieuw purpose leermiddelen, zorg basis contract fields leerling.id, leerling.roepnaam }"
    (d,) = diagnostics(partner + text)
    assert ("E410", *at(partner + text, "leerling.roepnaam }")) == (d.code, d.line, d.column)
    assert "gives `leerling.roepnaam` to `nieuw` for `leermiddelen`" in d.message


def test_purpose_star_outside_the_agreement_is_one_error_at_the_clause():
    (d,) = [d for d in diagnostics("permit r { partner snappet purpose * basis contract fields leerling.roepnaam }")
            if d.code == "E410"]
    assert ("E410", 1, 36) == (d.code, d.line, d.column)
    assert "`purpose leermiddelen`" in d.help


def test_partner_star_outside_an_agreement_is_a_warning_per_partner():
    text = "permit r { partner * purpose leermiddelen basis contract fields leerling.geboortedatum }"
    got = diagnostics(text)
    assert ["W004", "W016", "W016"] == sorted(d.code for d in got)
    assert {"`cloud`", "`snappet`"} == {d.message.split(" to ")[1].split(",")[0] for d in got if d.code == "W016"}


def test_a_permit_outside_every_agreement_window_is_w002_only():
    text = "permit r { partner snappet purpose leermiddelen basis contract fields leerling.geboortedatum\n" \
           "  valid from 2026-08-01 }"
    assert ["W002"] == [d.code for d in diagnostics(text)]


def test_retention_compares_across_units():
    assert law.certainly_longer((13, "months"), (1, "year"))
    assert not law.certainly_longer((12, "months"), (1, "year"))
    assert not law.certainly_longer((31, "days"), (1, "month"))
    assert law.certainly_longer((32, "days"), (1, "month"))
    assert law.certainly_longer((367, "days"), (1, "year"))
    assert not law.certainly_longer((52, "weeks"), (1, "year"))
    assert law.certainly_longer((49, "hours"), (2, "days"))
    assert (72, 72) == law.hours_range(3, "day")
    assert law.hours_range(1, "fortnight") is None


def test_a_processor_flow_with_retention_on_the_agreement_is_clean():
    text = "permit r { partner snappet purpose leermiddelen basis contract fields leerling.roepnaam }"
    assert [] == found(text)


def test_agreement_covers_and_purposes_are_checked_names():
    text = ('partner nieuw { agreement "N-1" valid from 2025-01-01 {\n'
            '  covers leerling.naam, leering.id purposes leermidelen breach 1 day } }')
    assert [("E105", 2, 19), ("E104", 2, 25), ("E102", *at(text, "leermidelen"))] == [
        (d.code, d.line, d.column) for d in diagnostics(text) if d.is_error]


# ---------------------------------------------------------------------------
# 7.4


def test_a_bare_legal_obligation_says_the_syntax_and_an_example_law():
    (d,) = diagnostics("permit r { partner duo purpose bekostiging basis legal_obligation fields leerling.leerjaar }")
    assert "`legal_obligation` names no law" in d.message and "GDPR art. 6(3)" in d.message
    assert 'write the law and article, e.g. `basis legal_obligation("Wet op het primair onderwijs, art. 178a")`' \
        == d.help


# ---------------------------------------------------------------------------
# 7.5


def test_parent_information_the_analysis_cannot_prove():
    text = ("permit r { partner website purpose ouders basis public_task(\"WVO art. 23b\") fields leerling.roepnaam\n"
            "  students where leerjaar == cijfer }")
    (d,) = diagnostics(text)
    assert ("E414", 2, 18) == (d.code, d.line, d.column)
    assert "the analysis could not prove" in d.message


@pytest.mark.parametrize("condition", ["age < 12", "age in 4..17", "not age >= 18", "age <= 17 or age < 3",
                                       "leerjaar > 3 and age != 18 and age < 19"])
def test_parent_information_conditions_that_imply_under_18(condition):
    text = ("permit r { partner website purpose ouders basis public_task(\"WVO art. 23b\") fields leerling.roepnaam\n"
            f"  students where {condition} }}")
    assert [] == found(text)


def test_publication_under_purpose_star_suggests_leaving_it_out():
    text = "permit r { partner website purpose * basis public_task(\"WPO\") fields leerling.roepnaam }"
    got = [d for d in diagnostics(text) if d.code == "E413"]
    assert 1 == len(got) and "`purpose * except publicatie`" in got[0].help


def test_implication_analysis():
    types = {"age": "age", "leerjaar": "int", "cijfer": "int"}
    cond = parse(Source("x", "forbid f { partner p fields a.b students where leerjaar > 3 }"))[0] \
        .declarations[0].condition
    under = analysis.age_below(18)
    assert analysis.implication(cond, under, types=types) is False
    assert analysis.implication(under, under, types=types) is True
    opaque = parse(Source("x", "forbid f { partner p fields a.b students where leerjaar == cijfer }"))[0] \
        .declarations[0].condition
    assert analysis.implication(opaque, under, types=types) is None


# ---------------------------------------------------------------------------
# 7.6


def test_bare_explicit_consent_names_a_declared_topic_in_the_help():
    text = ("permit r { partner ggd purpose zorg basis public_task(\"Wet publieke gezondheid\") art9 explicit_consent\n"
            "  fields leerling.zorgnotitie students where leerjaar > 3 dpia \"DPIA-zorg\" }")
    (d,) = diagnostics(text)
    assert "without any consent" in d.message
    assert "`art9 explicit_consent(beeldmateriaal)`" in d.help and "GDPR art. 9(2)(a)" in d.help


@pytest.mark.parametrize(("ground", "kind", "fits"), [
    ("health_care", "care", True), ("health_care", "education", False), ("public_health", "care", True),
    ("substantial_public_interest", "transfer", True), ("substantial_public_interest", "research", False),
    ("archiving", "archive", True), ("archiving", "care", False), ("employment", "organisation", True),
    ("employment", "education", False), ("vital_interest", "other", True), ("legal_claims", "funding", True),
])
def test_the_art9_ground_table(ground, kind, fits):
    text = (f"purpose p kind {kind}\n"
            "permit r { partner ggd purpose p basis public_task(\"Wet\") dpia \"D\"\n"
            f"  art9 {ground} fields leerling.zorgnotitie students where leerjaar > 3 }}")
    codes = [d.code for d in diagnostics(text) if d.is_error]
    assert ([] if fits else ["E416"]) == codes


def test_dpia_on_an_agreement_that_does_not_cover_the_field_does_not_count():
    text = ('partner nieuw { kind care agreement "N-1" valid from 2025-01-01 until 2026-07-31 {\n'
            '  breach 1 day retain 1 year dpia "DPIA-zorg" } }\n'
            "permit r { partner nieuw purpose zorg basis public_task(\"Wet publieke gezondheid\")\n"
            "  art9 health_care fields leerling.zorgnotitie students where leerjaar > 3 }")
    # no covers: the agreement covers every field (W011), so its DPIA counts
    assert ["W011"] == [d.code for d in diagnostics(text)]
    narrow = text.replace("breach 1 day", "covers leerling.roepnaam breach 1 day")
    assert ["E410", "E418"] == sorted(d.code for d in diagnostics(narrow) if d.is_error)


def test_sensitive_data_of_every_student_to_research_without_a_dpia():
    text = ('partner nieuw { kind research role controller }\n'
            "permit r { partner nieuw purpose onderzoek basis public_task(\"WHW\") fields leerling.cijfer }")
    where = at(text, "leerling.cijfer")
    assert [("W010", *where), ("W015", *where)] == [(d.code, d.line, d.column) for d in diagnostics(text)]
    assert ["W010"] == [d.code for d in diagnostics(text[:-1] + ' dpia "DPIA-onderzoek" }')]


# ---------------------------------------------------------------------------
# 7.7


@pytest.mark.parametrize("field", ["nummer text personal key", "verlaten date personal left",
                                   "ingeschreven bool personal key"])
def test_field_roles(field):
    base = BASE.replace("left\n", f"left\n    {field}\n")
    line, col = at(base, field)
    assert [("E420", line, col + field.rindex(" ") + 1)] == found("", base)


def test_left_must_be_a_date():
    base = BASE.replace("uitschrijfdatum date  personal  left", "uitschrijfdatum text  personal  left")
    assert [("E420", 17, 37)] == found("", base)


# ---------------------------------------------------------------------------
# warnings only for rules without errors; nothing crashes on odd input


def test_v2_warnings_are_skipped_for_rules_with_errors():
    text = "permit r { partner * purpose leermiddelen basis contrakt fields leerling.geboortedatum }"
    assert ["E108"] == [d.code for d in diagnostics(text) if d.code != "W004"]


@pytest.mark.parametrize("text", [
    'controller "" { kind x dpo "" breach_handling 0 hours }',
    'controller "a" { breach_handling 99999999999999999999 years }',
    'partner p { location x transfer y role z kind w agreement "" valid until 2025-01-01 { covers a.* purposes b '
    'retain -1 days breach 0 weeks dpia "" model m } }',
    'partner p { agreement "A" valid from 2026-01-01 until 2025-01-01 { covers leerling.id as pseudonym } }',
    "permit r { partner * except nobody purpose * except nobody basis legal_obligation(\"\") art9 explicit_consent(x)"
    " fields leerling.*, absentie.* students where zorgnotitie == bsn dpia \"\" retain 5 hours }",
    "permit r { partner snappet purpose ouders basis contract fields leerling.roepnaam students where "
    + " or ".join(f"leerjaar == {i}" for i in range(3000)) + " }",
])
def test_odd_input_never_crashes_the_checker(text):
    diags = diagnostics(text)
    assert [] == [d for d in diags if d.code == "E999"]
    for d in diags:
        assert d.line >= 1 and d.column >= 1 and d.message
