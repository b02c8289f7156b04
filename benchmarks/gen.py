"""Benchmark data: realistic school-board policy sets of N rules, student records and the request scenario.

A set of any size holds the same catalogue and the same *core* (the partners,
purposes and rules the benchmark scenario asks about), plus ``N - len(CORE)``
filler rules in the style of a school board: publishers, test providers and
apps, each with a processing agreement, permits with conditions on school,
leerjaar, lesgroepen and age, windows, consent bases, transforms and forbids.
Filler rule ``i`` depends only on ``i``, so the set of 100 rules is contained
in the set of 1,000, and every size gives the scenario the same answers: that
is what lets the benchmarks show the cost of a decision against the size of
the set.
"""

from __future__ import annotations

import datetime
import random
import re
from collections.abc import Iterator
from typing import Any, NamedTuple

#: the moment every scenario decision is taken at (inside every window below)
AT = datetime.date(2026, 10, 1)
SIZES = (10, 100, 1_000, 10_000)
SCHOOLS = ("12AB", "34CD", "56EF", "78GH")
RULES_PER_FILE = 500

CATALOGUE = """\
# Datacatalogus van Stichting Voorbeeld Onderwijs (benchmark set, language v2)
controller "Stichting Voorbeeld Onderwijs" {
    kind             public
    dpo              "Functionaris gegevensbescherming, fg@voorbeeld.nl"
    breach_handling  24 hours
}

dataset leerling "Leerlinggegevens" subject {
    id            text      personal  key
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
    uitschrijfdatum date    personal  left
}

dataset absentie "Absentiegegevens" {
    datum  date  personal
    reden  text  special
}

dataset resultaat "Toetsresultaten" {
    vak     text  personal
    cijfer  int   sensitive
}

consent beeldmateriaal "Foto's en video's op website en sociale media"
consent onderzoek "Deelname aan wetenschappelijk onderzoek" reconfirm_at_16

purpose leermiddelen "Levering en gebruik van digitaal leermateriaal" kind education
purpose toetsing "Afname en verwerking van toetsen" kind education
purpose bekostiging "Bekostiging door de overheid" kind funding
"""

CORE_PARTNERS = """\
partner snappet "Snappet B.V." {
    role  processor
    kind  vendor
    agreement "DPA-2025-031" valid from 2025-08-01 until 2030-07-31 {
        model     convenant_4
        covers    leerling.{eckid, roepnaam, achternaam, geboortedatum, leerjaar, lesgroepen, school}
        purposes  leermiddelen
        retain    1 year
        breach    24 hours
    }
}
partner toetsplatform "Toetsplatform Nederland" {
    role  processor
    kind  exam
    agreement "VO-2025-117" valid from 2025-08-01 until 2030-07-31 {
        covers    leerling.{eckid, roepnaam, achternaam, leerjaar, onderwijstype}, resultaat.*
        purposes  toetsing
        retain    2 years
        breach    24 hours
    }
}
partner dus-i "DUS-I / DUO" {
    role  controller
    kind  government
    agreement "WET-BEKOSTIGING" valid from 2020-01-01 until 2035-12-31 {
        covers    leerling.{bsn, geboortedatum, school, onderwijstype}
        purposes  bekostiging
    }
}
"""

CORE_RULES = """\
permit snappet_lesmateriaal {
    partner  snappet
    purpose  leermiddelen
    basis    contract
    fields   leerling.{eckid, roepnaam, leerjaar, lesgroepen}
    students where school in ["12AB", "34CD"] and leerjaar in 3..8
    valid    from 2025-08-01 until 2030-07-31
    retain   1 year
    note     "Alleen groepen 3 t/m 8 van De Regenboog en Het Baken"
}

permit snappet_plusklas {
    partner  snappet
    purpose  leermiddelen
    basis    contract
    fields   leerling.achternaam, leerling.geboortedatum as year
    students where school == "12AB" and ("plusklas" in lesgroepen or age >= 10)
    retain   1 year
}

permit toets_afname {
    partner  toetsplatform
    purpose  toetsing
    basis    public_task("WPO, art. 9b")
    fields   leerling.{eckid, roepnaam, achternaam, leerjaar, onderwijstype}, resultaat.{vak, cijfer}
    students where leerjaar >= 6 and onderwijstype != "vso"
    valid    from 2025-08-01 until 2030-07-31
    retain   2 years
}

forbid geen_cijfers_jonge_kinderen {
    partner  toetsplatform
    fields   resultaat.cijfer
    students where age < 9
}

forbid geen_zorgdata_buiten_dus_i {
    partner  * except dus-i
    fields   leerling.zorgnotitie, absentie.reden
}

permit dus_i_bekostiging {
    partner  dus-i
    purpose  bekostiging
    basis    legal_obligation("Wet op het primair onderwijs, art. 178a")
    fields   leerling.{bsn, geboortedatum, school, onderwijstype}
    valid    from 2020-01-01 until 2035-12-31
    retain   7 years
}
"""
CORE_RULE_COUNT = len(re.findall(r"^(?:permit|forbid) ", CORE_RULES, re.MULTILINE))

#: rules per filler partner; a filler partner's rules are consecutive
_PER_PARTNER = 4
_GROUPS = ("groep3a", "groep4b", "groep5a", "groep6b", "groep7a", "groep8b", "plusklas", "taalklas")


class Query(NamedTuple):
    """One request of the scenario: a partner asks for fields for a purpose."""

    name: str
    partner: str
    purpose: str
    fields: tuple[str, ...]


#: the scenario: the same requests at every size
QUERIES = (
    Query("lesmateriaal", "snappet", "leermiddelen",
          ("leerling.eckid", "leerling.roepnaam", "leerling.leerjaar", "leerling.lesgroepen")),
    Query("gemengd", "snappet", "leermiddelen",
          ("leerling.roepnaam", "leerling.achternaam", "leerling.geboortedatum", "leerling.zorgnotitie")),
    Query("toets", "toetsplatform", "toetsing",
          ("leerling.eckid", "leerling.roepnaam", "leerling.leerjaar", "resultaat.cijfer")),
    Query("bekostiging", "dus-i", "bekostiging",
          ("leerling.bsn", "leerling.geboortedatum", "leerling.school")),
)
#: the request the single-function benchmarks hold on to
HOT = QUERIES[0]
#: the request filter benchmarks project (a transform and a forbid included)
FILTER = QUERIES[1]


def _filler_purpose(k: int, template: int) -> str:
    return f"doel_{(k * 3 + template) % 60:02d}"


def _filler_partner(k: int) -> str:
    return f"uitgever-{k:04d}"


def _window(rng: random.Random) -> str:
    start = datetime.date(2025, 8, 1) + datetime.timedelta(days=rng.randrange(0, 300))
    end = datetime.date(2029, 7, 31) + datetime.timedelta(days=rng.randrange(0, 365))
    return f"valid    from {start.isoformat()} until {end.isoformat()}"


def filler_rule(i: int) -> str:
    """Filler rule ``i``: the same text whatever the size of the set."""
    rng = random.Random(i)
    k, template = divmod(i, _PER_PARTNER)
    partner = _filler_partner(k)
    school_a, school_b = rng.sample(SCHOOLS, 2)
    low = rng.randrange(1, 6)
    if template == 0:
        return (f"permit lesstof_{i:05d} {{\n"
                f"    partner  {partner}\n"
                f"    purpose  {_filler_purpose(k, 0)}\n"
                f"    basis    contract\n"
                f"    fields   leerling.{{eckid, roepnaam, leerjaar}}\n"
                f'    students where school in ["{school_a}", "{school_b}"] and leerjaar in {low}..{low + 2}\n'
                f"    {_window(rng)}\n"
                f"    retain   1 year\n"
                f"}}\n")
    if template == 1:
        group = rng.choice(_GROUPS)
        return (f"permit rooster_{i:05d} {{\n"
                f"    partner  {partner}\n"
                f"    purpose  {_filler_purpose(k, 1)}\n"
                f'    basis    public_task("WPO, art. 8")\n'
                f"    fields   leerling.{{roepnaam, achternaam, lesgroepen}}, leerling.geboortedatum as year\n"
                f'    students where "{group}" in lesgroepen or (school == "{school_a}" and age >= {low + 5})\n'
                f"    retain   6 months\n"
                f'    note     "Roosters en groepsindeling"\n'
                f"}}\n")
    if template == 2:
        return (f"permit onderzoek_{i:05d} {{\n"
                f"    partner  {partner}\n"
                f"    purpose  {_filler_purpose(k, 2)}\n"
                f"    basis    consent(onderzoek)\n"
                f"    fields   leerling.eckid as pseudonym, resultaat.{{vak, cijfer}}\n"
                f'    students where age >= {low + 7} and onderwijstype != "vso" and school != "{school_b}"\n'
                f"    {_window(rng)}\n"
                f"    retain   3 months\n"
                f"}}\n")
    return (f"forbid geen_foto_{i:05d} {{\n"
            f"    partner  {partner}\n"
            f"    fields   leerling.foto, leerling.geboortedatum\n"
            f"    students where age < {low + 6} or not school in [\"{school_a}\", \"{school_b}\"]\n"
            f"}}\n")


def filler_partner(k: int) -> str:
    rng = random.Random(-1 - k)
    start = datetime.date(2025, 8, 1) + datetime.timedelta(days=rng.randrange(0, 60))
    end = datetime.date(2030, 7, 31) + datetime.timedelta(days=rng.randrange(0, 365))
    return (f'partner {_filler_partner(k)} "Leverancier {k}" {{\n'
            f"    role  processor\n"
            f"    kind  vendor\n"
            f'    agreement "DPA-{k:04d}" valid from {start.isoformat()} until {end.isoformat()} {{\n'
            f"        covers  leerling.{{eckid, roepnaam, achternaam, leerjaar, lesgroepen, geboortedatum}}, "
            f"resultaat.*\n"
            f"        retain  1 year\n"
            f"        breach  24 hours\n"
            f"    }}\n"
            f"}}\n")


def policy_texts(n_rules: int) -> dict[str, str]:
    """A policy set of exactly ``n_rules`` rules, as named texts for ``avgpolicy.loads``."""
    if n_rules < CORE_RULE_COUNT:
        raise ValueError(f"a generated set holds at least the {CORE_RULE_COUNT} core rules")
    fillers = n_rules - CORE_RULE_COUNT
    partners = -(-fillers // _PER_PARTNER)
    purposes = sorted({_filler_purpose(i // _PER_PARTNER, i % _PER_PARTNER)
                       for i in range(fillers) if i % _PER_PARTNER < 3})
    texts = {
        "catalogue.avg": CATALOGUE,
        "partners.avg": CORE_PARTNERS + "\n".join(filler_partner(k) for k in range(partners)),
        "purposes.avg": "".join(f'purpose {p} "Doel {p[5:]}"\n' for p in purposes),
        "rules/kern.avg": CORE_RULES,
    }
    for start in range(0, fillers, RULES_PER_FILE):
        stop = min(start + RULES_PER_FILE, fillers)
        texts[f"rules/leveranciers-{start // RULES_PER_FILE:03d}.avg"] = "\n".join(
            filler_rule(i) for i in range(start, stop))
    return texts


def write_policy(n_rules: int, folder: str) -> list[str]:
    """Write the set of ``n_rules`` under ``folder`` (for ``avgpolicy.load``); the paths written."""
    import pathlib
    root = pathlib.Path(folder)
    out = []
    for name, text in policy_texts(n_rules).items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        out.append(str(path))
    return out


def _birthdate(rng: random.Random, leerjaar: int) -> datetime.date:
    # groep 3 children are about 6 on 1 October; ages spread over a year
    year = AT.year - (leerjaar + 3) - rng.randrange(0, 2)
    return datetime.date(year, 1, 1) + datetime.timedelta(days=rng.randrange(0, 365))


def student(i: int) -> dict[str, Any]:
    """Student record ``i``: mostly clean; about 1 in 12 has a missing, None or ill-typed value."""
    rng = random.Random(10_000 + i)
    leerjaar = rng.randrange(1, 9)
    groups = {f"groep{leerjaar}{rng.choice('ab')}"}
    if rng.random() < 0.15:
        groups.add("plusklas")
    if rng.random() < 0.05:
        groups.add("taalklas")
    record: dict[str, Any] = {
        "id": f"s{i:06d}",
        "eckid": f"https://ketenid.nl/201703/{rng.getrandbits(64):016x}",
        "roepnaam": rng.choice(("Sanne", "Daan", "Fatima", "Noah", "Mila", "Sem", "Yara", "Luuk")),
        "achternaam": rng.choice(("de Vries", "Jansen", "El Amrani", "Bakker", "Visser", "Yilmaz")),
        "geboortedatum": _birthdate(rng, leerjaar),
        "school": rng.choice(SCHOOLS),
        "leerjaar": leerjaar,
        "onderwijstype": "vso" if rng.random() < 0.1 else "po",
        "lesgroepen": frozenset(groups),
        "bsn": f"{rng.randrange(10**8, 10**9)}",
        "foto": f"foto/{i}.jpg",
        "zorgnotitie": "",
        "uitschrijfdatum": None,
    }
    leaving = rng.random()
    if leaving < 0.04:  # left before the moment of the scenario (spec 7.7): nothing goes out any more
        record["uitschrijfdatum"] = AT - datetime.timedelta(days=rng.randrange(1, 300))
    elif leaving < 0.08:  # leaves later
        record["uitschrijfdatum"] = AT + datetime.timedelta(days=rng.randrange(0, 300))
    elif leaving < 0.5:
        del record["uitschrijfdatum"]
    flaw = rng.random()
    if flaw < 0.03:
        del record[rng.choice(("school", "leerjaar", "geboortedatum", "lesgroepen", "onderwijstype"))]
    elif flaw < 0.05:
        record[rng.choice(("school", "leerjaar", "geboortedatum"))] = None
    elif flaw < 0.08:
        bad = {"leerjaar": str(leerjaar), "geboortedatum": record["geboortedatum"].isoformat(),
               "school": 12, "lesgroepen": "plusklas"}
        key = rng.choice(tuple(bad))
        record[key] = bad[key]
    return record


_CLEAN_TYPES = {"school": str, "leerjaar": int, "geboortedatum": datetime.date, "lesgroepen": frozenset,
                "onderwijstype": str}


def is_flawed(record: dict[str, Any]) -> bool:
    """Does the record have a missing, None or ill-typed value (as about 1 in 12 do)?"""
    return any(type(record.get(k)) is not t for k, t in _CLEAN_TYPES.items())


def students(n: int) -> list[dict[str, Any]]:
    """The first ``n`` student records (the same at every size of the set)."""
    return [student(i) for i in range(n)]


def distinct_requests() -> Iterator[tuple[str, str, list[str]]]:
    """An endless stream of distinct (partner, purpose, fields) requests over the core partners.

    Field lists are permutations and sub-lists of the catalogue, so equal ones come
    back rarely; the cache must still stay within its size.
    """
    fields = ["leerling.eckid", "leerling.roepnaam", "leerling.achternaam", "leerling.leerjaar",
              "leerling.lesgroepen", "leerling.geboortedatum", "leerling.school", "leerling.bsn",
              "resultaat.vak", "resultaat.cijfer", "absentie.datum"]
    targets = [(q.partner, q.purpose) for q in QUERIES]
    rng = random.Random(7)
    seen: set[tuple[str, str, tuple[str, ...]]] = set()
    while True:
        partner, purpose = rng.choice(targets)
        chosen = tuple(rng.sample(fields, rng.randrange(1, len(fields) + 1)))
        if (partner, purpose, chosen) in seen:
            continue
        seen.add((partner, purpose, chosen))
        yield partner, purpose, list(chosen)
