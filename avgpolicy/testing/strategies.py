"""Hypothesis strategies over a loaded policy set: students, consents, moments and requests.

Everything is built from the set itself: student records have one value per
field of the subject dataset, typed by the catalogue and drawn partly from the
values the rules' conditions mention (so generated students fall inside and
outside every subset); requests range over the set's partners, purposes and
fields. Only this module imports hypothesis.
"""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING, Any

from hypothesis import strategies as st

from ._values import condition_values, window_dates

if TYPE_CHECKING:
    from ..model import FieldInfo
    from ..policy import Policy

__all__ = ["consents", "field_values", "moments", "requests", "students"]

_FIRST_DAY = datetime.date(1990, 1, 1)
_LAST_DAY = datetime.date(2035, 12, 31)
_BAD_VALUES = st.one_of(st.none(), st.integers(), st.text(max_size=5), st.booleans(), st.floats(allow_nan=True),
                        st.dates(), st.lists(st.integers(), max_size=2), st.just(object()))


def field_values(field: FieldInfo, hints: list[Any] | None = None) -> st.SearchStrategy[Any]:
    """Well-typed values for one catalogue field; ``hints`` are values worth trying often."""
    hints = hints or []
    base: st.SearchStrategy[Any]
    if field.type == "int":
        base = st.integers(min_value=-5, max_value=40)
        typed = [h for h in hints if isinstance(h, int) and not isinstance(h, bool)]
    elif field.type == "bool":
        return st.booleans()
    elif field.type == "date":
        base = st.dates(min_value=_FIRST_DAY, max_value=_LAST_DAY)
        typed = [h for h in hints if isinstance(h, datetime.date)]
    elif field.type == "set":
        words = [h for h in hints if isinstance(h, str)]
        element = st.sampled_from(words) | st.text(max_size=8) if words else st.text(max_size=8)
        return st.frozensets(element, max_size=4)
    else:
        base = st.text(max_size=12)
        typed = [h for h in hints if isinstance(h, str)]
    return st.sampled_from(typed) | base if typed else base


def consents(policy: Policy) -> st.SearchStrategy[dict[str, Any]]:
    """A student's ``consents``: for some of the set's topics a Consent by a parent or the student."""
    from ..decision import Consent

    topics = sorted(policy.model.consents)
    if not topics:
        return st.just({})

    @st.composite
    def one(draw: st.DrawFn) -> Any:
        given = draw(st.dates(min_value=datetime.date(2015, 1, 1), max_value=datetime.date(2030, 12, 31)))
        withdrawn = draw(st.none() | st.dates(min_value=given, max_value=datetime.date(2031, 12, 31)))
        return Consent(by=draw(st.sampled_from(["parent", "student"])), given=given, withdrawn=withdrawn)

    return st.dictionaries(st.sampled_from(topics), one(), max_size=len(topics))


def students(policy: Policy, *, bad_values: bool = False, with_consents: bool = True
             ) -> st.SearchStrategy[dict[str, Any]]:
    """Student records for the set's subject dataset.

    By default every subject field is present and well typed. With
    ``bad_values=True`` fields may also be missing, ``None`` or of the wrong type
    (what ``decide`` must deny without raising).
    """
    hints = condition_values(policy)
    cat = policy.model.catalogue
    good: dict[str, st.SearchStrategy[Any]] = {
        name: field_values(fi, hints.get(name)) for name, fi in cat.subject_fields.items()}
    extra: dict[str, st.SearchStrategy[Any]] = {}
    if with_consents and policy.model.consents:
        extra["consents"] = consents(policy)
    if not bad_values:
        return st.fixed_dictionaries(good, optional=extra)
    optional = {name: s | _BAD_VALUES for name, s in good.items()}
    return st.fixed_dictionaries({}, optional={**optional, **extra})


def moments(policy: Policy) -> st.SearchStrategy[Any]:
    """Decision moments: dates, naive and aware datetimes, often on a window or agreement boundary."""
    boundaries = window_dates(policy)
    days = st.dates(min_value=datetime.date(2015, 1, 1), max_value=datetime.date(2032, 12, 31))
    if boundaries:
        days = st.sampled_from(boundaries) | days
    times = st.times() | st.sampled_from([datetime.time(0, 0), datetime.time(23, 59, 59, 999999)])
    naive = st.builds(datetime.datetime.combine, days, times)
    aware = st.builds(lambda d, t: datetime.datetime.combine(d, t, tzinfo=policy.zone), days, times)
    return days | naive | aware


def requests(policy: Policy, *, bad_values: bool = False, max_fields: int = 6) -> st.SearchStrategy[dict[str, Any]]:
    """Keyword arguments for ``policy.decide``: partner, purpose, fields, student and at."""
    m = policy.model
    partners, purposes, fields = sorted(m.partners), sorted(m.purposes), sorted(m.catalogue.fields)
    if not (partners and purposes and fields):
        raise ValueError("requests() needs a set with at least one partner, purpose and field")
    return st.fixed_dictionaries({
        "partner": st.sampled_from(partners),
        "purpose": st.sampled_from(purposes),
        "fields": st.lists(st.sampled_from(fields), min_size=1, max_size=max_fields, unique=True),
        "student": students(policy, bad_values=bad_values),
        "at": moments(policy),
    })
