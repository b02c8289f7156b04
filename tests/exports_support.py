"""Shared pieces of the export-log tests: a small policy, planted student records, log factories."""

from __future__ import annotations

import datetime
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import avgpolicy

AT = datetime.date(2026, 3, 2)
FIELDS = ["leerling.roepnaam", "leerling.leerjaar", "leerling.id"]
KEY = b"export-log test pseudonym key, 32b"

# Valid as language v1 and v2: a processor with an agreement, bases that name no law, no
# special-category or national_id field permitted (they are in the records, planted, all the same).
POLICY_TEXT = '''
dataset leerling "Leerlingen" subject {
    id             text  personal
    roepnaam       text  personal
    achternaam     text  personal
    bsn            text  national_id
    geboortedatum  date  personal
    leerjaar       int   personal
    medisch        text  special
    lesgroepen     set   personal
}
partner snappet "Snappet B.V." {
    agreement "VO4-2025-031" valid from 2025-08-01 until 2026-07-31
}
partner malmberg "Malmberg B.V." {
    agreement "VO4-2024-MALM-0877" valid from 2024-08-01 until 2026-04-30
}
purpose leermiddelen "Levering en gebruik van digitaal leermateriaal"
purpose rooster "Onderwijsorganisatie: rooster en lesgroepen"
permit snappet_basis {
    partner  snappet
    purpose  leermiddelen
    basis    contract
    fields   leerling.{roepnaam, leerjaar}, leerling.id as pseudonym
    students where leerjaar >= 3
}
permit snappet_achternaam_bovenbouw {
    partner  snappet
    purpose  leermiddelen
    basis    contract
    fields   leerling.achternaam
    students where leerjaar >= 6
}
permit malmberg_rooster {
    partner  malmberg
    purpose  rooster
    basis    contract
    fields   leerling.{roepnaam, lesgroepen}
}
'''


def policy(**options: Any) -> avgpolicy.Policy:
    return avgpolicy.loads(POLICY_TEXT, pseudonym_key=KEY, **options)


#: distinctive values planted in every field but the key: none may ever reach the log or an output
PLANTED = {
    "roepnaam": "Zyxwvroepnaam", "achternaam": "Qqachternaamqq", "bsn": "999887776",
    "geboortedatum": datetime.date(1987, 6, 5), "medisch": "Plantedmedischgeheim", "lesgroepen": "Plantedgroep",
}


def planted_students(n: int, *, prefix: str = "L") -> list[dict[str, Any]]:
    """``n`` students keyed ``L0``.. with planted values; leerjaar runs 1..8 so some are denied."""
    out = []
    for i in range(n):
        out.append({"id": f"{prefix}{i}", "roepnaam": f"{PLANTED['roepnaam']}{i}",
                    "achternaam": f"{PLANTED['achternaam']}{i}", "bsn": f"{PLANTED['bsn']}{i % 10}",
                    "geboortedatum": PLANTED["geboortedatum"], "leerjaar": 1 + i % 8,
                    "medisch": f"{PLANTED['medisch']}{i}", "lesgroepen": frozenset({f"{PLANTED['lesgroepen']}{i}"})})
    return out


def planted_needles(students: list[dict[str, Any]]) -> list[str]:
    """Every planted value as text (each student's own), for searching files and outputs."""
    needles = {PLANTED["roepnaam"], PLANTED["achternaam"], PLANTED["medisch"], PLANTED["lesgroepen"],
               PLANTED["bsn"], PLANTED["geboortedatum"].isoformat()}
    # the birth year (what `as year` would release) as a value in JSON, CSV, text or HTML; bare "1987"
    # is not a needle: four digits turn up by chance in the hex of the hash chain
    year = str(PLANTED["geboortedatum"].year)
    needles.update(f"{a}{year}{b}" for a in ':[," >' for b in ',]}" <')
    for s in students:
        needles.update(str(v) for k, v in s.items() if k not in ("id", "leerjaar", "lesgroepen", "geboortedatum"))
    return sorted(needles)


def unique_table() -> str:
    return f"t_{os.getpid()}_{uuid.uuid4().hex[:10]}"


def sqlite_files(path: Path) -> Iterator[Path]:
    for suffix in ("", "-wal", "-shm", "-journal"):
        p = Path(str(path) + suffix)
        if p.exists():
            yield p
