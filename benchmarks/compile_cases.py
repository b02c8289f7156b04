"""The compile-cost cases of issue 15 (items 3-4): policies whose first compiled decision used to cost
seconds, and the request, student and moments each is asked about.

* ``atoms``: 8 permits of 498 atoms each (``jaar == 0 or jaar == 1 or ...``): every condition is under
  the per-condition limit, together they are over the per-epoch budget (the interpreter serves).
* ``monthly-60`` / ``monthly-120``: a permit per calendar month (5 and 10 years), each for one school's
  years 3 to 8, two fields; asked once a week over the whole span (a new month is a new epoch).
* ``boundaries``: 500 permits of one-day windows two days apart: 1,000 window boundaries.

Used by ``benchmarks/bench_compile.py`` (timings) and ``tests/test_compile_cost.py`` (behaviour).
"""

from __future__ import annotations

import datetime
from typing import Any, NamedTuple

HEAD = ('dataset l "L" subject {\n naam text personal\n jaar int personal\n school text personal\n}\n'
        'partner p "P" { role controller }\npurpose u "U"\n')
PARTNER, PURPOSE = "p", "u"
STUDENT: dict[str, Any] = {"naam": "x", "jaar": 5, "school": "S1"}


class Case(NamedTuple):
    name: str
    label: str  # how the performance page names it
    text: str
    rules: int
    fields: tuple[str, ...]
    at: datetime.date  # the moment of the first decision
    other: datetime.date  # a moment in another epoch (the first decision in a new epoch)
    weeks: tuple[datetime.date, ...]  # weekly decisions over the policy's span (empty: not asked)


def _month(i: int) -> tuple[datetime.date, datetime.date]:
    y, m = 2020 + i // 12, i % 12 + 1
    start = datetime.date(y, m, 1)
    return start, datetime.date(y + (m == 12), m % 12 + 1, 1) - datetime.timedelta(days=1)


def monthly(n: int) -> Case:
    rules = []
    for i in range(n):
        start, end = _month(i)
        rules.append(f'permit m{i} {{ partner p purpose u basis contract fields l.{{naam, jaar}} '
                     f'students where school == "S{i % 7}" and jaar in 3..8 valid from {start} until {end} }}')
    first, last = _month(0)[0], _month(n - 1)[1]
    weeks = tuple(first + datetime.timedelta(days=7 * k) for k in range((last - first).days // 7 + 1))
    return Case(f"monthly-{n}", f"{n} monthly permits", HEAD + "\n".join(rules), n,
                ("l.naam", "l.jaar"), _month(n // 2)[0] + datetime.timedelta(days=8),
                _month(n // 2 + 1)[0] + datetime.timedelta(days=8), weeks)


def atoms(rules: int = 8, size: int = 498) -> Case:
    text = HEAD + "\n".join(f"permit r{r} {{ partner p purpose u basis contract fields l.naam students where "
                            + " or ".join(f"jaar == {r * 1000 + i}" for i in range(size)) + " }"
                            for r in range(rules))
    return Case("atoms", f"{rules} permits of {size} atoms", text, rules, ("l.naam",), datetime.date(2025, 1, 1),
                datetime.date(2025, 1, 1), ())


def boundaries(rules: int = 500) -> Case:
    day0 = datetime.date(2020, 1, 1)
    text = HEAD + "\n".join(f"permit w{i} {{ partner p purpose u basis contract fields l.naam "
                            f"students where jaar >= {i % 5} valid from {day0 + datetime.timedelta(days=2 * i)} "
                            f"until {day0 + datetime.timedelta(days=2 * i)} }}" for i in range(rules))
    return Case("boundaries", f"{2 * rules:,} window boundaries", text, rules, ("l.naam",),
                day0 + datetime.timedelta(days=rules), day0 + datetime.timedelta(days=rules + 2), ())


def cases() -> list[Case]:
    return [atoms(), monthly(60), monthly(120), boundaries()]
