"""Benchmark baseline: the scenario's checks and projections written by hand in plain Python.

This is what a developer would write instead of a policy set: one function per
request, with the agreement window, the rule window, the student conditions and
the forbids spelled out, careful with missing and ill-typed values the way the
policy language is (a permit needs its condition to be true; a forbid applies
when its condition is true or cannot be known). Each function answers with the
per-field verdicts, ``{field: allowed}``; the whole request is allowed when all
are. ``filter_gemengd`` is the hand-written check-and-project loop.

Language v2 adds two checks a developer would write as well: the processing
agreement must cover the field and the purpose (fixed per agreement, so written as
constants, as the compiled engine fixes them per window epoch), and a student whose
``uitschrijfdatum`` lies before the day has left: nothing goes out (an ill-typed date
cannot be known, so nothing goes out either).
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

_date = datetime.date

SNAPPET_FROM, SNAPPET_UNTIL = _date(2025, 8, 1), _date(2030, 7, 31)
TOETS_FROM, TOETS_UNTIL = _date(2025, 8, 1), _date(2030, 7, 31)
DUS_I_FROM, DUS_I_UNTIL = _date(2020, 1, 1), _date(2035, 12, 31)
LESMATERIAAL_SCHOOLS = frozenset(("12AB", "34CD"))
#: every field the scenario asks for is covered by its partner's agreement, bar ``leerling.zorgnotitie``
#: (outside snappet's agreement, and forbidden): a hand-written check knows that when it is written

def _present(student: Mapping[str, Any], day: datetime.date) -> bool:
    """The student has not left before ``day`` (no date, or None: not left; ill-typed: unknown, so no)."""
    left = student.get("uitschrijfdatum")
    return left is None or (type(left) is _date and not left < day)


def _age(student: Mapping[str, Any], day: datetime.date) -> int | None:
    born = student.get("geboortedatum")
    if type(born) is not _date:
        return None
    return day.year - born.year - ((day.month, day.day) < (born.month, born.day))


def _lesmateriaal(student: Mapping[str, Any]) -> bool:
    """``school in ["12AB", "34CD"] and leerjaar in 3..8`` is true."""
    school = student.get("school")
    leerjaar = student.get("leerjaar")
    return (type(school) is str and school in LESMATERIAAL_SCHOOLS
            and type(leerjaar) is int and 3 <= leerjaar <= 8)


def _plusklas(student: Mapping[str, Any], day: datetime.date) -> bool:
    """``school == "12AB" and ("plusklas" in lesgroepen or age >= 10)`` is true."""
    if student.get("school") != "12AB":
        return False
    groups = student.get("lesgroepen")
    if isinstance(groups, (set, frozenset, list, tuple)) and "plusklas" in groups:
        return True
    age = _age(student, day)
    return age is not None and age >= 10


def lesmateriaal(student: Mapping[str, Any], day: datetime.date) -> dict[str, bool]:
    ok = SNAPPET_FROM <= day <= SNAPPET_UNTIL and _present(student, day) and _lesmateriaal(student)
    return {"leerling.eckid": ok, "leerling.roepnaam": ok, "leerling.leerjaar": ok, "leerling.lesgroepen": ok}


def gemengd(student: Mapping[str, Any], day: datetime.date) -> dict[str, bool]:
    agreement = SNAPPET_FROM <= day <= SNAPPET_UNTIL and _present(student, day)
    basis = agreement and _lesmateriaal(student)
    plus = agreement and _plusklas(student, day)
    # forbid geen_zorgdata_buiten_dus_i (and outside the agreement): zorgnotitie never goes to snappet
    return {"leerling.roepnaam": basis, "leerling.achternaam": plus, "leerling.geboortedatum": plus,
            "leerling.zorgnotitie": False}


def toets(student: Mapping[str, Any], day: datetime.date) -> dict[str, bool]:
    leerjaar = student.get("leerjaar")
    soort = student.get("onderwijstype")
    ok = (TOETS_FROM <= day <= TOETS_UNTIL and _present(student, day) and type(leerjaar) is int and leerjaar >= 6
          and type(soort) is str and soort != "vso")
    # forbid geen_cijfers_jonge_kinderen: age < 9, or an age that cannot be known
    age = _age(student, day)
    cijfer = ok and age is not None and age >= 9
    return {"leerling.eckid": ok, "leerling.roepnaam": ok, "leerling.leerjaar": ok, "resultaat.cijfer": cijfer}


def bekostiging(student: Mapping[str, Any], day: datetime.date) -> dict[str, bool]:
    ok = DUS_I_FROM <= day <= DUS_I_UNTIL and _present(student, day)
    return {"leerling.bsn": ok, "leerling.geboortedatum": ok, "leerling.school": ok}


#: the hand-written function for each scenario request, by ``Query.name``
BY_QUERY: dict[str, Callable[[Mapping[str, Any], datetime.date], dict[str, bool]]] = {
    "lesmateriaal": lesmateriaal, "gemengd": gemengd, "toets": toets, "bekostiging": bekostiging,
}


def filter_gemengd(students: Iterable[Mapping[str, Any]], day: datetime.date) -> Iterator[dict[str, Any]]:
    """The ``gemengd`` request as a check-and-project loop: permitted fields only, birth date as a year."""
    agreement = SNAPPET_FROM <= day <= SNAPPET_UNTIL
    if not agreement:
        return
    for student in students:
        left = student.get("uitschrijfdatum")
        if left is not None and (type(left) is not _date or left < day):
            continue
        row: dict[str, Any] = {}
        # a permitted value that is missing or ill-typed is left out
        if _lesmateriaal(student) and type(name := student.get("roepnaam")) is str:
            row["leerling.roepnaam"] = name
        if _plusklas(student, day):
            if type(surname := student.get("achternaam")) is str:
                row["leerling.achternaam"] = surname
            if type(born := student.get("geboortedatum")) is _date:
                row["leerling.geboortedatum"] = born.year
        if row:
            yield row
