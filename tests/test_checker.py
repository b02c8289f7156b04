"""Checker: one failing snippet per diagnostic code, located at the offending name or clause."""

import datetime

import pytest
from spec_texts import (
    CONSENTS,
    DATASETS,
    DUS_I,
    GEEN_ZORGDATA,
    LEERMIDDELEN,
    PUBLICATIE,
    SCHOOLWEBSITE,
    SNAPPET,
    SNAPPET_LESMATERIAAL,
    TESTS,
)

from avgpolicy.checker import check, suggest
from avgpolicy.loader import analyse
from avgpolicy.parser import parse
from avgpolicy.source import Source

TODAY = datetime.date(2025, 10, 1)

BASE = """\
dataset leerling "Leerlinggegevens" subject {
    id            text  personal
    eckid         text  pseudonym
    roepnaam      text  personal
    geboortedatum date  personal
    school        text  personal
    leerjaar      int   personal
    lesgroepen    set   personal
    actief        bool  personal
    bsn           text  national_id
    zorgnotitie   text  special
    strafblad     text  criminal
    cijfer        int   sensitive
}
dataset absentie "Absentie" {
    datum date personal
    reden text special
}
partner snappet "Snappet" {
    kind vendor
    agreement "DPA-1" valid from 2025-08-01 until 2026-07-31 {
        covers leerling.*, absentie.*
        retain 1 year
        breach 24 hours
    }
}
partner dus-i "DUS-I" { role controller kind government }
partner website "Schoolwebsite" { role controller }
purpose leermiddelen
purpose publicatie
consent beeldmateriaal
"""

OK_PERMIT = "permit r { partner snappet purpose leermiddelen basis contract fields leerling.roepnaam }"


def diagnostics(text: str, base: str | None = BASE, today: datetime.date = TODAY) -> list:
    sources = ([Source("base.avg", base)] if base is not None else []) + [Source("t.avg", text)]
    _, diags = analyse(sources, today=today)
    return diags


def found(text: str, base: str | None = BASE, *, errors_only: bool = False) -> list[tuple[str, int, int]]:
    """(code, line, column) of every diagnostic, in order of position."""
    diags = diagnostics(text, base)
    out = sorted((d.file, d.line, d.column, d.code) for d in diags if d.is_error or not errors_only)
    return [(code, line, col) for _, line, col, code in out]


def test_base_and_a_plain_permit_are_clean():
    assert [] == found(OK_PERMIT)


# (code, snippet, line, column); each snippet has exactly this one error
ERRORS = [
    # syntax (parser)
    ("E001", "permit r {\n  partner snappet snappet\n}", 2, 19),
    ("E002", "purpose p 'publicatie'", 1, 11),
    ("E003", "permit r { partner snappet purpose leermiddelen basis contract fields leerling.id\n"
             "  valid from 2025-02-30 }", 2, 14),
    ("E004", "purpose permit", 1, 9),
    ("E005", "forbid r { partner snappet fields leerling.id students where " + "not " * 70 + "actief == true }",
     1, 47),
    ("E006", "forbid r {\n  partner snappet\n  partner dus-i\n  fields leerling.id\n}", 3, 3),
    ("E007", "forbid r { partner snappet fields leerling.id students where leerjaar == " + "9" * 5000 + " }",
     1, 74),
    # unknown names
    ("E101", "forbid r { partner snapet fields leerling.id }", 1, 20),
    ("E101", "forbid r { partner * except dus-j fields leerling.id }", 1, 29),
    ("E102", "permit r { partner snappet purpose leermidelen basis contract fields leerling.id }", 1, 36),
    ("E103", "permit r { partner website purpose publicatie basis consent(foto) fields leerling.roepnaam }",
     1, 61),
    ("E104", "forbid r { partner snappet fields leering.id }", 1, 35),
    ("E105", "forbid r { partner snappet fields leerling.naam }", 1, 44),
    ("E106", 'dataset extra "x" {\n  nummer integer personal\n}', 2, 10),
    ("E107", 'dataset extra "x" {\n  nummer int persoonlijk\n}', 2, 14),
    ("E108", "permit r { partner snappet purpose leermiddelen basis contrakt fields leerling.id }", 1, 55),
    ("E109", "permit r { partner dus-i purpose leermiddelen basis legal_obligation(\"WPO\") dpia \"D\"\n"
             "  art9 health students where leerjaar > 3 fields leerling.zorgnotitie }", 2, 8),
    ("E110", "permit r { partner snappet purpose leermiddelen basis contract fields leerling.id as hash }",
     1, 86),
    ("E111", OK_PERMIT[:-1] + " retain 2 yaers }", 1, 99),
    ("E112", "test t { at 2025-10-01 partner snappet purpose leermiddelen\n"
             "  expect deny leerling.bsn because not_permitted }", 2, 36),
    ("E113", OK_PERMIT[:-1] + " students where klas == 3 }", 1, 105),
    ("E114", "test t { at 2025-10-01 partner website purpose publicatie\n"
             "  consent beeldmateriaal by mother on 2025-01-01\n  expect allow leerling.roepnaam }", 2, 29),
    # declarations
    ("E201", "purpose leermiddelen", 1, 9),
    ("E201", "partner dus-i { role controller }", 1, 9),
    ("E201", "consent beeldmateriaal", 1, 9),
    ("E201", 'dataset absentie "again" { x text personal }', 1, 9),
    ("E201", 'dataset extra "x" {\n  a text personal\n  a int personal\n}', 3, 3),
    ("E201", OK_PERMIT + "\nforbid r { partner dus-i fields leerling.bsn }", 2, 8),
    ("E201", "test t { at 2025-10-01 partner snappet purpose leermiddelen expect deny leerling.bsn }\n"
             "test t { at 2025-10-01 partner snappet purpose leermiddelen expect deny leerling.bsn }", 2, 6),
    ("E201", "test t { at 2025-10-01 partner snappet purpose leermiddelen\n"
             "  student { leerjaar: 3, leerjaar: 4 } expect deny leerling.bsn }", 2, 26),
    ("E201", "permit r { partner snappet purpose leermiddelen basis contract\n"
             "  fields absentie.*, absentie.datum as year students where leerjaar > 1 art9 vital_interest dpia \"D\" }",
     2, 22),
    ("E203", 'dataset extra "x" subject { a text personal }', 1, 9),
    # conditions
    ("E301", OK_PERMIT[:-1] + ' students where leerjaar == "5" }', 1, 117),
    ("E301", OK_PERMIT[:-1] + ' students where school < "B" }', 1, 105),
    ("E301", OK_PERMIT[:-1] + ' students where actief > false }', 1, 105),
    ("E301", OK_PERMIT[:-1] + ' students where lesgroepen == "3a" }', 1, 105),
    ("E301", OK_PERMIT[:-1] + ' students where "3a" in school }', 1, 113),
    ("E301", OK_PERMIT[:-1] + " students where 3 in lesgroepen }", 1, 105),
    ("E301", OK_PERMIT[:-1] + " students where leerjaar in 3..2025-01-01 }", 1, 120),
    ("E301", OK_PERMIT[:-1] + ' students where school in "a".."b" }', 1, 115),
    ("E301", OK_PERMIT[:-1] + " students where geboortedatum in 3..5 }", 1, 122),
    ("E301", OK_PERMIT[:-1] + ' students where leerjaar in [3, "4"] }', 1, 121),
    ("E301", OK_PERMIT[:-1] + ' students where lesgroepen in ["a"] }', 1, 105),
    ("E303", OK_PERMIT[:-1] + " valid from 2026-01-01 until 2025-12-31 }", 1, 90),
    ("E303", 'partner p "x" {\n  agreement "A" valid from 2026-01-01 until 2025-12-31\n}', 2, 17),
    ("E303", "test t { at 2025-10-01 partner website purpose publicatie\n"
             "  consent beeldmateriaal by parent on 2025-09-01 withdrawn 2025-08-01\n"
             "  expect deny leerling.roepnaam }", 2, 3),
    # clauses
    ("E304", "permit r { purpose leermiddelen basis contract fields leerling.roepnaam }", 1, 8),
    ("E304", "permit r { partner snappet basis contract fields leerling.roepnaam }", 1, 8),
    ("E304", "permit r { partner snappet purpose leermiddelen basis contract }", 1, 8),
    ("E304", "permit r { partner snappet purpose leermiddelen fields leerling.roepnaam }", 1, 8),
    ("E304", "forbid r { fields leerling.roepnaam }", 1, 8),
    ("E304", "forbid r { partner snappet }", 1, 8),
    ("E304", "test t { partner snappet purpose leermiddelen expect deny leerling.bsn }", 1, 6),
    ("E304", "test t { at 2025-10-01 purpose leermiddelen expect deny leerling.bsn }", 1, 6),
    ("E304", "test t { at 2025-10-01 partner snappet expect deny leerling.bsn }", 1, 6),
    ("E304", "test t { at 2025-10-01 partner snappet purpose leermiddelen }", 1, 6),
    ("E305", "forbid r {\n  partner snappet\n  fields leerling.id\n  basis contract\n}", 4, 3),
    ("E305", "forbid r {\n  partner snappet\n  fields leerling.id\n  retain 1 year\n}", 4, 3),
    ("E305", "forbid r {\n  partner snappet\n  fields leerling.id\n  art9 health_care\n}", 4, 3),
    # sensitivity and transforms
    ("E306", "permit r { partner dus-i purpose leermiddelen basis public_task(\"WPO\")\n"
             "  fields leerling.roepnaam, leerling.bsn students where leerjaar > 3 valid until 2026-01-01 }", 2, 29),
    ("E307", "permit r { partner dus-i purpose leermiddelen basis contract\n"
             "  fields leerling.strafblad students where leerjaar > 3 dpia \"D\" }", 2, 10),
    ("E308", "permit r { partner dus-i purpose leermiddelen basis legal_obligation(\"WPO\")\n"
             "  fields absentie.* students where leerjaar > 3 valid until 2026-01-01 dpia \"D\" }", 2, 10),
    ("E309", "permit r { partner snappet purpose leermiddelen basis contract fields leerling.leerjaar as year }",
     1, 92),
    ("E310", "forbid r { partner snappet fields leerling.id as pseudonym }", 1, 50),
    ("E310", "forbid r { partner snappet fields absentie.* as year }", 1, 49),
    ("E310", "forbid r { partner snappet fields leerling.{id, eckid} as pseudonym }", 1, 59),
    ("E310", "permit r { partner snappet purpose leermiddelen basis contract\n"
             "  fields leerling.lesgroepen as pseudonym }", 2, 33),
    ("E311", "test t { at 2025-10-01 partner snappet purpose leermiddelen\n"
             "  student { klas: 3 } expect deny leerling.bsn }", 2, 13),
    ("E311", "test t { at 2025-10-01 partner snappet purpose leermiddelen\n"
             '  student { leerjaar: "3" } expect deny leerling.bsn }', 2, 13),
    ("E311", "test t { at 2025-10-01 partner snappet purpose leermiddelen\n"
             "  student { lesgroepen: [\"a\"], geboortedatum: 3 } expect deny leerling.bsn }", 2, 32),
    ("E311", "test t { at 2025-10-01 partner snappet purpose leermiddelen expect deny leerling.naam }", 1, 82),
    ("E311", "test t { at 2025-10-01 partner snappet purpose leermiddelen expect deny lln.bsn }", 1, 73),
    ("E312", OK_PERMIT[:-1] + " retain 0 days }", 1, 90),
]


@pytest.mark.parametrize(("code", "text", "line", "column"), ERRORS,
                         ids=[f"{c}-{i}" for i, (c, *_rest) in enumerate(ERRORS)])
def test_each_error_is_reported_once_where_it_is(code, text, line, column):
    assert [(code, line, column)] == found(text, errors_only=True)


def test_unknown_test_partner_is_allowed_when_the_test_expects_unknown_partner():
    ok = "test t { at 2025-10-01 partner nobody purpose leermiddelen expect deny leerling.id because unknown_partner }"
    assert [] == found(ok)
    bad = "test t { at 2025-10-01 partner nobody purpose leermiddelen expect deny leerling.id }"
    assert [("E101", 1, 32)] == found(bad)


def test_expecting_an_unknown_field_is_allowed_with_because_unknown_field():
    ok = "test t { at 2025-10-01 partner snappet purpose leermiddelen expect deny leerling.naam because unknown_field }"
    assert [] == found(ok)


def test_by_student_consent_is_accepted():
    text = ("test t { at 2026-10-01 partner website purpose publicatie\n"
            "  consent beeldmateriaal by student on 2026-09-01\n  expect deny leerling.roepnaam }")
    assert [] == found(text)


def test_no_subject_dataset():
    base = BASE.replace('"Leerlinggegevens" subject', '"Leerlinggegevens"')
    assert [("E202", 1, 9)] == found("", base)


def test_no_subject_and_no_dataset_at_all():
    assert [("E202", 1, 1)] == found("purpose p", None)


def test_age_without_birth_date():
    base = BASE.replace("geboortedatum date", "geboortedatum text")
    text = OK_PERMIT[:-1] + " students where age >= 12 }"
    assert [("E302", 1, 105)] == found(text, base)
    assert [] == found(text)


def test_many_problems_in_many_files_are_reported_together():
    sources = [Source("base.avg", BASE),
               Source("a.avg", "forbid a { partner snapet fields leerling.id }"),
               Source("b.avg", "permit b { partner snappet purpose x basis contract fields leerling.naam }\n"
                               "permit c { partner snappet\n")]
    _, diags = analyse(sources, today=TODAY)
    # `permit c` lacks its `}` (supplied by the parser, so the rule is still checked) and its clauses
    assert [("a.avg", "E101"), ("b.avg", "E001"), ("b.avg", "E102"), ("b.avg", "E105"), ("b.avg", "E304"),
            ("b.avg", "E304"), ("b.avg", "E304")] == sorted((d.file, d.code) for d in diags)


def test_messages_are_cedar_style():
    for _code, text, _line, _col in ERRORS:
        for d in diagnostics(text):
            assert d.message == d.message.strip()
            assert not d.message.endswith(".")
            assert "\n" not in d.message
            assert d.message[0].islower() or d.message[0] in "`\"'"


def test_did_you_mean():
    (d,) = diagnostics("forbid r { partner snapet fields leerling.id }")
    assert "unknown partner `snapet`" == d.message
    assert "did you mean `snappet`?" == d.help
    (d,) = diagnostics(OK_PERMIT[:-1] + " students where leerjar == 3 }")
    assert d.help is not None and d.help.startswith("did you mean `leerjaar`?")
    assert suggest("zzz", ["snappet"]) is None


def test_check_never_raises_on_an_empty_set():
    assert ["E202"] == [d.code for d in check([])]


# ---------------------------------------------------------------------------
# warnings

WARNINGS = [
    ("W001", "forbid f { partner snappet fields leerling.roepnaam }\n" + OK_PERMIT, 2, 8),
    ("W002", OK_PERMIT[:-1] + " valid from 2026-08-01 }", 1, 90),
    ("W003", OK_PERMIT[:-1] + " students where leerjaar in 5..3 }", 1, 105),
    ("W004", "permit r { partner * purpose leermiddelen basis contract fields leerling.roepnaam }", 1, 20),
    ("W005", OK_PERMIT[:-1] + " valid until 2025-09-30 }", 1, 90),
    ("W006", "permit r { partner dus-i purpose leermiddelen basis legal_obligation(\"W\") fields leerling.bsn\n"
             "  students where leerjaar > 3 }", 1, 82),
    ("W007", OK_PERMIT + "\npermit q { partner snappet purpose leermiddelen basis consent(beeldmateriaal)"
             " fields leerling.roepnaam }", 2, 55),
    ("W010", "permit r { partner snappet purpose leermiddelen basis contract fields leerling.cijfer }", 1, 71),
]


@pytest.mark.parametrize(("code", "text", "line", "column"), WARNINGS, ids=[w[0] for w in WARNINGS])
def test_each_warning_is_reported_once_where_it_is(code, text, line, column):
    assert [(code, line, column)] == found(text)


def test_w001_two_forbids_together_shadow_by_time_and_condition():
    text = ("forbid a { partner snappet fields leerling.roepnaam valid until 2025-12-31 }\n"
            "forbid b { partner snappet fields leerling.roepnaam students where leerjaar >= 3 }\n"
            "forbid c { partner snappet fields leerling.roepnaam students where leerjaar < 3 }\n"
            "permit r { partner snappet purpose leermiddelen basis contract fields leerling.roepnaam }\n")
    (d,) = diagnostics(text)
    assert ("W001", 4) == (d.code, d.line)
    assert "`b`, `c`" in d.message


def test_w001_condition_implication():
    text = ("forbid f { partner snappet fields leerling.roepnaam students where leerjaar >= 3 }\n"
            "permit r { partner snappet purpose leermiddelen basis contract fields leerling.roepnaam\n"
            "  students where leerjaar in 4..8 and school == \"12AB\" }\n")
    assert [("W001", 2, 8)] == found(text)


@pytest.mark.parametrize("forbid", [
    "forbid f { partner snappet fields leerling.roepnaam students where leerjaar >= 5 }",
    "forbid f { partner snappet fields leerling.roepnaam valid from 2026-01-01 }",
    "forbid f { partner snappet purpose publicatie fields leerling.roepnaam }",
    "forbid f { partner dus-i fields leerling.roepnaam }",
    "forbid f { partner snappet fields leerling.eckid }",
])
def test_w001_not_when_the_permit_still_applies_somewhere(forbid):
    permit = ("permit r { partner snappet purpose leermiddelen basis contract fields leerling.roepnaam\n"
              "  students where leerjaar in 3..8 }")
    assert [] == found(forbid + "\n" + permit)


def test_w001_ignores_moments_outside_the_partners_agreements():
    # the forbid covers the agreement's whole period; outside it snappet receives nothing anyway
    text = ("forbid f { partner snappet fields leerling.roepnaam valid from 2025-01-01 until 2026-12-31 }\n"
            + OK_PERMIT)
    assert [("W001", 2, 8)] == found(text)


def test_w002_names_only_the_blocked_partner():
    text = ("permit r { partner snappet, dus-i purpose leermiddelen basis contract fields leerling.roepnaam\n"
            "  valid from 2026-08-01 }")
    (d,) = diagnostics(text)
    assert "W002" == d.code
    assert "never takes effect for `snappet`" in d.message


def test_w003_is_not_reported_for_a_satisfiable_condition():
    assert [] == found(OK_PERMIT[:-1] + " students where leerjaar in 3..5 and not leerjaar == 4 }")
    assert [("W003", 1, 105)] == found(OK_PERMIT[:-1] + " students where age < 0 or (actief and not actief) }"
                                       .replace("actief and not actief", "actief == true and actief == false"))


def test_w005_also_for_forbids_and_not_for_a_window_ending_today():
    assert [("W005", 1, 45)] == found("forbid f { partner dus-i fields leerling.id valid until 2025-09-30 }")
    assert [] == found("forbid f { partner dus-i fields leerling.id valid until 2025-10-01 }")


def test_w006_not_when_an_agreement_or_window_ends():
    text = ("permit r { partner dus-i purpose leermiddelen basis legal_obligation(\"W\") fields leerling.bsn\n"
            "  students where leerjaar > 3 valid until 2026-07-31 }")
    assert [] == found(text)


def test_w007_not_when_windows_or_students_are_disjoint():
    a = OK_PERMIT[:-1] + " valid until 2025-12-31 }\n"
    b = ("permit q { partner snappet purpose leermiddelen basis consent(beeldmateriaal) fields leerling.roepnaam\n"
         "  valid from 2026-01-01 }")
    assert [] == found(a + b)
    a = OK_PERMIT[:-1] + " students where age >= 16 }\n"
    b = ("permit q { partner snappet purpose leermiddelen basis consent(beeldmateriaal) fields leerling.roepnaam\n"
         "  students where age < 16 }")
    assert [] == found(a + b)


def test_w010_not_with_a_student_subset():
    text = OK_PERMIT.replace("leerling.roepnaam", "leerling.cijfer")[:-1] + " students where leerjaar > 3 }"
    assert [] == found(text)


def test_warnings_are_skipped_for_rules_with_errors():
    text = "permit r { partner snappet purpose leermiddelen basis contract fields leerling.naam\n" \
           "  students where leerjaar in 5..3 }"
    assert [("E105", 1, 80)] == found(text)


# ---------------------------------------------------------------------------
# a realistic small school loads clean

# the spec's examples (spec_texts.py) with more partners, purposes, rules and tests around them
SCHOOL = {
    "catalogue.avg": "# De Regenboog: leerlinggegevens\n" + (
        DATASETS.replace("    onderwijstype text      personal\n", "")
        .replace("    zorgnotitie   text      special\n",
                 "    zorgnotitie   text      special\n    toets_score   int       sensitive\n")
        .replace("}\n\ndataset", "}\ndataset")),
    # v2: each agreement with its privacybijsluiter, breach deadline and retention; partners without
    # an agreement say they are controllers
    "partners.avg": SNAPPET.replace("leerling.*", "leerling.{eckid, roepnaam, leerjaar, lesgroepen, id}\n"
                                    "        purposes leermiddelen") + """\
partner cito "Cito" {
    kind exam
    agreement "DPA-2024-007" valid from 2024-08-01 until 2027-07-31 {
        covers leerling.{eckid, leerjaar, school, geboortedatum, toets_score} retain 5 years breach 24 hours
    }
}
partner parro "Parro (ParnasSys)" {
    agreement "DPA-2025-011" valid from 2025-01-01 until 2026-12-31 {
        covers leerling.{roepnaam, achternaam, lesgroepen} retain 1 year breach 24 hours
    }
}
""" + DUS_I + SCHOOLWEBSITE + "\n" + LEERMIDDELEN + """\
purpose toetsing "Leerlingvolgsysteem en toetsen"
purpose communicatie "Communicatie met ouders"
purpose bekostiging "Bekostiging en verantwoording"
""" + PUBLICATIE + "\n" + CONSENTS,
    "rules.avg": SNAPPET_LESMATERIAAL + """
permit cito_toetsen {
    partner  cito
    purpose  toetsing
    basis    public_task("Wet op het primair onderwijs, art. 8")
    fields   leerling.{eckid, leerjaar, school}, leerling.geboortedatum as year, leerling.toets_score
    students where leerjaar in 3..8
    retain   5 years
}

permit parro_ouders {
    partner  parro
    purpose  communicatie
    basis    public_task("Wet op het primair onderwijs, art. 11")
    fields   leerling.{roepnaam, achternaam, lesgroepen}
}

permit bekostiging_duo {
    partner  dus-i
    purpose  bekostiging
    basis    legal_obligation("Wet op het primair onderwijs, art. 178a")
    fields   leerling.{bsn, geboortedatum, school, leerjaar}
    valid    from 2025-01-01 until 2026-12-31
}

permit website_foto {
    partner  schoolwebsite
    purpose  publicatie
    basis    consent(beeldmateriaal)
    fields   leerling.{foto, roepnaam}
    students where not "anoniem" in lesgroepen
}

""" + GEEN_ZORGDATA,
    # the spec's two tests with lesgroepen (for website_foto's condition) and a time of day, and a third
    "tests/school.avg": TESTS.replace("geboortedatum: 2016-03-01 }", 'geboortedatum: 2016-03-01, lesgroepen: ["5a"] }')
    .replace("at       2026-01-15\n", "at       2026-01-15T09:00\n")
    .replace("{ geboortedatum: 2012-05-01 }", "{ geboortedatum: 2012-05-01, lesgroepen: [] }") + """
test foto_door_leerling_zelf {
    at       2026-01-15
    partner  schoolwebsite
    purpose  publicatie
    student  { geboortedatum: 2009-05-01 }
    consent  beeldmateriaal by student on 2025-09-01 withdrawn 2025-12-01
    expect deny leerling.foto because no_consent
}
""",
}


def test_a_realistic_school_has_no_errors_and_no_warnings():
    sources = [Source(name, text) for name, text in SCHOOL.items()]
    _, diags = analyse(sources, today=TODAY)
    assert [] == diags


def test_the_school_loads():
    import avgpolicy

    policy = avgpolicy.loads(SCHOOL)
    assert 6 == len(policy.model.rules)
    assert not any(d.is_error for d in policy.warnings)


def test_parse_errors_do_not_hide_semantic_errors_in_other_declarations():
    text = "forbid a { partner snappet fields }\nforbid b { partner snapet fields leerling.id }"
    file, syntax = parse(Source("t.avg", text))
    assert ["E001"] == [d.code for d in syntax]
    assert [("E101", 2, 20)] == [(d.code, d.line, d.column) for d in check([parse(Source("b", BASE))[0], file])
                                 if d.file == "t.avg"]


def test_every_code_is_documented_and_tested():
    import pathlib
    import re

    root = pathlib.Path(__file__).resolve().parent.parent
    emitted = set()
    for module in ("checker.py", "parser.py"):
        emitted |= set(re.findall(r'"([EW]\d{3})"', (root / "avgpolicy" / module).read_text()))
    documented = set(re.findall(r"\b([EW]\d{3})\b", (root / "docs" / "diagnostics.md").read_text()))
    from test_checker_v2 import CASES

    tested = {c for c, *_ in ERRORS} | {c for c, *_ in WARNINGS} | {c for c, *_ in CASES} | {
        "E202", "E302", "E999",
        "E115",  # test_checker_v2.test_unknown_controller_kind
        "W015", "W016"}  # test_checker_v2: research without a DPIA, partner * outside an agreement
    assert emitted - {"E999"} <= tested
    assert set() == emitted - documented


@pytest.mark.parametrize(("forbid", "shadowed"), [
    ("forbid f { partner * except dus-i fields leerling.roepnaam }", True),
    ("forbid f { partner * except snappet fields leerling.roepnaam }", False),
    ("forbid f { partner * purpose * except publicatie fields leerling.roepnaam }", True),
    ("forbid f { partner * purpose * except leermiddelen fields leerling.roepnaam }", False),
    ("forbid f { partner snappet, dus-i fields leerling.* }", True),
    ("forbid f { partner snappet fields leerling.roepnaam students where not (leerjaar in 3..8) }", False),
    ("forbid f { partner snappet fields leerling.roepnaam students where leerjaar > 2 and leerjaar < 9 }", True),
])
def test_w001_reasons_over_selectors(forbid, shadowed):
    permit = ("permit r { partner snappet purpose leermiddelen basis contract fields leerling.roepnaam\n"
              "  students where leerjaar in 3..8 }")
    expected = [("W001", 2, 8)] if shadowed else []
    assert expected == found(forbid + "\n" + permit)


def test_w001_needs_every_partner_of_the_permit_covered():
    text = ("forbid f { partner snappet fields leerling.roepnaam }\n"
            "permit r { partner snappet, website purpose leermiddelen basis contract fields leerling.roepnaam }")
    assert [] == found(text)


def test_warnings_scale_to_many_rules():
    partners = "\n".join(f"partner p{i} {{ role controller }}" for i in range(20))
    rules = "\n".join(
        f"permit r{i} {{ partner p{i % 20} purpose leermiddelen basis contract fields leerling.roepnaam "
        f"students where leerjaar in {i % 5}..{i % 5 + 3} }}\n"
        f"forbid f{i} {{ partner p{i % 20} fields leerling.roepnaam students where leerjaar >= {i % 20 % 7} }}"
        for i in range(2000))
    diags = diagnostics(partners + "\n" + rules)
    assert not any(d.is_error for d in diags)
    # permit i is shadowed exactly when its lowest leerjaar reaches its partner's forbid threshold
    expected = sorted(f"r{i}" for i in range(2000) if i % 5 >= i % 20 % 7)
    assert expected == sorted(d.message.split("`")[1] for d in diags if d.code == "W001")


# ---------------------------------------------------------------------------
# robustness: whatever parses, the checker reports on without failing itself

from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_words = st.sampled_from(["snappet", "dus-i", "leermiddelen", "leerling", "absentie", "roepnaam", "leerjaar",
                          "geboortedatum", "lesgroepen", "bsn", "zorgnotitie", "school", "actief", "age", "x",
                          "beeldmateriaal", "contract", "legal_obligation", "consent", "pseudonym", "year"])
_values = st.sampled_from(['"12AB"', "3", "-1", "true", "2025-08-01", "2026-07-31", '"a"'])
_ops = st.sampled_from(["==", "!=", "<", ">=", "in", "not in"])


@st.composite
def _conditions(draw, depth=0):
    if depth < 2 and draw(st.booleans()):
        join = draw(st.sampled_from([" and ", " or "]))
        left, right = draw(_conditions(depth + 1)), draw(_conditions(depth + 1))
        return f"({left}{join}{right})" if draw(st.booleans()) else f"not {left}{join}{right}"
    op = draw(_ops)
    if op in ("in", "not in"):
        rhs = draw(st.sampled_from(["[1, 2]", '["a"]', "3..5", "5..3", "2025-01-01..2025-12-31", "lesgroepen",
                                    "school"]))
        return f"{draw(st.one_of(_words, _values))} {op} {rhs}"
    return f"{draw(_words)} {op} {draw(_values)}"


@st.composite
def _rules(draw):
    clauses = [f"partner {draw(st.sampled_from(['snappet', 'dus-i', '*', '* except dus-i', 'x']))}"]
    if draw(st.booleans()):
        clauses.append(f"purpose {draw(st.sampled_from(['leermiddelen', 'publicatie', '*', 'y']))}")
    fields = draw(st.lists(st.sampled_from(["leerling.roepnaam", "leerling.bsn", "leerling.zorgnotitie",
                                            "leerling.geboortedatum as year", "leerling.id as pseudonym",
                                            "absentie.*", "leerling.strafblad", "leerling.naam", "x.y"]),
                           min_size=1, max_size=3))
    clauses.append("fields " + ", ".join(fields))
    if draw(st.booleans()):
        basis = draw(st.sampled_from(["contract", "legal_obligation", "public_task", "consent(beeldmateriaal)",
                                      "legitimate_interest"]))
        clauses.append(f"basis {basis}")
    if draw(st.booleans()):
        clauses.append(f"art9 {draw(st.sampled_from(['health_care', 'healthcare']))}")
    if draw(st.booleans()):
        clauses.append(f"students where {draw(_conditions())}")
    if draw(st.booleans()):
        clauses.append(draw(st.sampled_from(["valid from 2025-08-01", "valid until 2025-09-01",
                                             "valid from 2026-01-01 until 2025-01-01",
                                             "valid from 2026-08-01 until 2027-01-01"])))
    effect = draw(st.sampled_from(["permit", "forbid"]))
    name = draw(st.sampled_from(["r1", "r2", "r3", "r4"]))
    return f"{effect} {name} {{\n  " + "\n  ".join(clauses) + "\n}\n"


@given(st.lists(_rules(), max_size=6))
def test_the_checker_never_fails_and_locates_everything(rules):
    diags = diagnostics("".join(rules))
    assert [] == [d for d in diags if d.code == "E999"]
    for d in diags:
        assert d.line >= 1 and d.column >= 1 and d.message and d.code[0] in "EW"


# ---------------------------------------------------------------------------
# issue 16: one mistake reports once, and says what to do


def test_because_suggests_codes_that_fit_the_expectation():
    (d,) = diagnostics("test t { at 2025-10-01 partner snappet purpose leermiddelen\n"
                       "  expect deny leerling.bsn because not_permitted }")
    assert ("E112", "unknown reason code `not_permitted`") == (d.code, d.message)
    assert d.help is not None and d.help.startswith("did you mean `no_permit`?")
    assert "`permitted`" not in d.help and "expect deny` takes one of agreement_inactive" in d.help


def test_because_with_a_code_of_the_other_outcome_can_never_pass():
    (d,) = diagnostics("test t { at 2025-10-01 partner snappet purpose leermiddelen\n"
                       "  expect deny leerling.bsn because permitted }")
    assert ("E112", 2, 36) == (d.code, d.line, d.column)
    assert "can never pass" in d.message
    (d,) = diagnostics("test t { at 2025-10-01 partner snappet purpose leermiddelen\n"
                       "  expect allow leerling.roepnaam because no_permit }")
    assert ("E112", "`expect allow` takes one of permitted, inform_student") == (d.code, d.help)
    ok = ("test t { at 2025-10-01 partner snappet purpose leermiddelen\n"
          "  expect allow leerling.roepnaam because permitted expect deny leerling.bsn because no_permit }")
    assert [] == [d for d in diagnostics(ok) if d.code == "E112"]


def test_a_list_of_wrongly_typed_values_is_one_error():
    (d,) = diagnostics(OK_PERMIT[:-1] + ' students where leerjaar in ["3", "4", "5"] }')
    assert ("E301", 1, 118) == (d.code, d.line, d.column)
    assert '3 values in the list (`"3"`, `"4"`, `"5"`) are text, but `leerjaar` is int' == d.message
    assert d.help is not None and d.help.endswith("e.g. `leerjaar in [3, 4, 5]`")


def test_student_value_help_says_an_int():
    (d,) = diagnostics("test t { at 2025-10-01 partner snappet purpose leermiddelen\n"
                       '  student { leerjaar: "3" } expect deny leerling.bsn }')
    assert "write an int value, e.g. `leerjaar: 5`" == d.help


def test_an_unknown_dataset_named_in_braces_is_reported_once():
    assert [("E104", 1, 35)] == found("forbid r { partner snappet fields leering.{id, eckid, roepnaam} }")


def test_one_file_of_a_folder_says_once_that_the_catalogue_is_elsewhere():
    sources = [Source("policies/rules/x.avg",
                      "permit r { partner snappet purpose leermiddelen basis contract\n"
                      "  fields leerling.{id, roepnaam} students where leerjaar > 3 }\n"
                      "test t { at 2025-10-01 partner snappet purpose leermiddelen expect deny leerling.bsn }")]
    _, diags = analyse(sources, today=TODAY)
    (d,) = diags
    assert ("E202", "policies/rules/x.avg", 1, 1) == (d.code, d.file, d.line, d.column)
    assert "the catalogue is probably in another file" in d.message
    assert "unknown names not reported" in d.message
    assert d.help is not None and "`avgpolicy check policies/`" in d.help


def test_a_file_with_partners_but_no_catalogue_still_reports_its_own_unknown_partner():
    sources = [Source("rules.avg", 'partner snappet "S" { agreement "A" valid from 2025-01-01 }\n'
                                   "forbid r { partner snapet fields leerling.id }")]
    _, diags = analyse(sources, today=TODAY)
    assert ["E101", "E202"] == sorted(d.code for d in diags if d.is_error)


def test_names_of_a_declaration_that_failed_to_parse_are_known():
    # issue 16 item 3: the parser keeps what it recovered (nodes.File.recovered); no "unknown" follows
    text = ('partner nieuw { role controller agreement "A" valid from 2025-01-01 { covers leerling.id breach } }\n'
            "permit r { partner nieuw purpose leermiddelen basis contract fields leerling.roepnaam }\n"
            "test t { at 2025-10-01 partner nieuw purpose leermiddelen expect deny leerling.bsn }")
    assert ["E001"] == [d.code for d in diagnostics(text)]
    text = ('dataset extra "x" {\n  a text personal\n  b int personal zzz\n  c int personal\n}\n'
            "forbid f { partner snappet fields extra.c, extra.a, extra.q }\n"
            "test t { at 2025-10-01 partner snappet purpose leermiddelen expect deny extra.a }")
    assert ["E001"] == [d.code for d in diagnostics(text)]


def test_a_subject_dataset_that_failed_to_parse_is_no_missing_subject():
    base = BASE.replace("    actief        bool  personal\n", "    actief        bool  personal extra\n")
    codes = [d.code for d in diagnostics(OK_PERMIT, base)]
    assert "E202" not in codes and "E104" not in codes and codes.count("E001") == 1
