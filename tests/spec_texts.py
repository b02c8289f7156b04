"""Policy texts the tests share: the spec's examples, in pieces, and the small sets of the cli and plugin tests.

The spec examples are copied from the spec (language.md, sections 1-6); the tests do not read
the spec itself, so the project stands alone. Where v2 (section 7) makes a v1 example an error
or a warning, the piece carries the v2 addition (marked "v2:"): a role and kind on partners
without an agreement, a body on snappet's agreement, a law on `public_task`. Each test module
composes its own set from these pieces; where its text differs from a piece, a `str.replace` next to the use says how.
(benchmarks/gen.py keeps its own copy on purpose: the benchmarks do not import from tests/.)
"""

from __future__ import annotations

from pathlib import Path

# ---------------------------------------------------------------------------
# The spec's examples

# §3.1
DATASETS = """\
dataset leerling "Leerlinggegevens" subject {
    id            text      personal
    eckid         text      pseudonym
    roepnaam      text      personal
    achternaam    text      personal
    geboortedatum date      personal
    school        text      personal
    leerjaar      int       personal
    onderwijstype text      personal
    lesgroepen    set       personal
    bsn           text      national_id
    foto          text      personal
    zorgnotitie   text      special
}

dataset absentie "Absentiegegevens" {
    datum  date  personal
    reden  text  special
}
"""

# §3.2
SNAPPET = """\
partner snappet "Snappet B.V." {
    agreement "DPA-2025-031" valid from 2025-08-01 until 2026-07-31 {
        covers leerling.*
        retain 1 year
        breach 24 hours
    }
}
"""
# v2: the body of snappet's agreement (W011, W012 without), and dus-i's role and kind (E403, E405 without)
DUS_I = 'partner dus-i "DUS-I / DUO" { role controller kind government }\n'
PARTNERS = SNAPPET + DUS_I

# §3.3
LEERMIDDELEN = 'purpose leermiddelen "Levering en gebruik van digitaal leermateriaal"\n'
CONSENTS = """\
consent beeldmateriaal "Foto's en video's op website en sociale media"
consent onderzoek "Deelname aan wetenschappelijk onderzoek" reconfirm_at_16
"""
PURPOSES = LEERMIDDELEN + CONSENTS

# §3.5
SNAPPET_LESMATERIAAL = """\
permit snappet_lesmateriaal {
    partner  snappet
    purpose  leermiddelen
    basis    contract
    fields   leerling.{eckid, roepnaam, leerjaar, lesgroepen}, leerling.id as pseudonym
    students where school == "12AB" and leerjaar in 3..8
    valid    from 2025-08-01 until 2026-07-31
    retain   1 year
    note     "Alleen groepen 3 t/m 8 van De Regenboog"
}
"""
GEEN_ZORGDATA = """\
forbid geen_zorgdata_buiten_dus_i {
    partner  * except dus-i
    fields   leerling.zorgnotitie, absentie.reden
}
"""
RULES = SNAPPET_LESMATERIAAL + "\n" + GEEN_ZORGDATA

# §6
TESTS = """\
test snappet_ziet_groep_5 {
    at       2025-10-01
    partner  snappet
    purpose  leermiddelen
    student  { school: "12AB", leerjaar: 5, geboortedatum: 2016-03-01 }
    expect allow leerling.roepnaam, leerling.eckid
    expect deny  leerling.bsn because no_permit
}

test foto_met_toestemming {
    at       2026-01-15
    partner  schoolwebsite
    purpose  publicatie
    student  { geboortedatum: 2012-05-01 }
    consent  beeldmateriaal by parent on 2025-09-01
    expect allow leerling.foto
}
"""

# Not in the spec: the partner and purpose the second test names
SCHOOLWEBSITE = 'partner schoolwebsite "Website van de school" { role controller }\n'
PUBLICATIE = 'purpose publicatie "Publicatie op de website"\n'


# ---------------------------------------------------------------------------
# The small sets of the cli and plugin tests: snappet gets leerling.{roepnaam, leerjaar} for a subset


def snappet_permit(students: str) -> str:
    """The small sets' `snappet_lesmateriaal`: roepnaam and leerjaar, for the students `students` selects."""
    return f"""\
permit snappet_lesmateriaal {{
    partner  snappet
    purpose  leermiddelen
    basis    public_task("Wet op het primair onderwijs, art. 8")
    fields   leerling.{{roepnaam, leerjaar}}
    students where {students}
}}
"""


def snappet_test(name: str, school: str, *, extra: str = "") -> str:
    """A test block (7 lines, plus `extra`): snappet asks for a group-5 student's roepnaam, expects it allowed."""
    return f"""\
test {name} {{
    at       2025-10-01
    partner  snappet
    purpose  leermiddelen
    student  {{ school: "{school}", leerjaar: 5 }}
    expect allow leerling.roepnaam
{extra}}}
"""


def write_set(folder: Path, files: dict[str, str]) -> Path:
    """Write a policy set into `folder` (made as needed): file name (may hold sub-folders) -> text."""
    for name, text in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return folder
