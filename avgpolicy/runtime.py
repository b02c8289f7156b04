"""Runtime semantics shared by both engines: local days, age, type guards, consent, reasons.

The interpreter and the compiler decide the same way because the parts that are
easy to get subtly wrong live here once:

* ``local_day(at, zone)``: the local calendar day a moment falls on (windows are
  whole local days, so this is all a decision needs of ``at``).
* ``age_on(birth, day)``: whole years on a local date. A 29 February birthday
  counts from 1 March in non-leap years: we compare (month, day) tuples, and
  (2, 28) < (2, 29) <= (3, 1).
* value guards: a value is well-typed if its type is exactly the declared one
  (``bool`` is not an ``int``, a ``str`` subclass is not text); a ``set`` value
  is a set/frozenset/list/tuple of exact ``str``. Only when that check fails, a
  value that means the same without loss is converted (``to_int``: an integral
  number that is not a bool; ``to_date``: a ``datetime``, aware ones read in the
  policy's zone; ``to_consent_date``: also an ISO ``YYYY-MM-DD`` str) and the
  converted exact ``int``/``date`` is used. Anything else counts as missing
  (*unknown* in conditions), and its reason names its type (``missing_detail``).
  Comparisons only see exact values, so no user code (``__eq__``, ``__hash__``)
  ever runs on student data; a conversion runs the value's own ``__index__`` /
  ``utcoffset`` / ``astimezone`` inside a guard, and never raises.
* ``consent_status``: spec section 4, returning one of the ``CONSENT_*`` codes.
* reason specs: both engines describe a field's outcome as a tuple of specs
  ``(code, rule, detail)``; ``field_decision`` turns them into a FieldDecision with
  the same messages whichever engine produced them.

Canonical reason order for one field (both engines):

1. ``unknown_partner``, ``unknown_purpose``, ``unknown_field`` (those that apply); else
2. ``agreement_inactive`` (the partner has agreements, none in force) or
   ``outside_agreement`` (none in force covers both the field and the purpose); else
3. ``missing_attribute`` (no rule) when the student record is not a mapping; else
4. for each forbid in rule-name order that applies: ``forbidden`` [+ ``missing_attribute``
   when an unknown value made it apply]; if there is any, the field is denied; else
5. ``no_permit`` when no permit covers (partner, purpose, field); else
6. ``left_school`` when the student's ``left`` date is before the day and the purpose's
   kind is not ``transfer`` or ``archive`` (``missing_attribute``, no rule, when that
   date is ill-typed); else
7. ``permitted`` [+ ``inform_student`` per consent topic that needs it] from the first
   permit (rule-name order) that grants the field; else
8. one reason per covering permit in rule-name order: the first of its checks that failed,
   in the order ``outside_window``, ``not_in_subset`` / ``missing_attribute``,
   ``no_consent`` (the basis's topic, then the topic of ``art9 explicit_consent(TOPIC)``,
   which applies to the permit's ``special`` fields).
"""

from __future__ import annotations

import datetime
import difflib
import functools
import os
import re
import weakref
from collections.abc import Mapping
from typing import Any
from zoneinfo import ZoneInfo

from . import nodes as n
from .decision import Consent, FieldDecision, Location, Reason
from .model import AGE, BIRTHDATE_FIELD, AgreementInfo, FieldInfo, RuleInfo

_date = datetime.date
_datetime = datetime.datetime
AGE_OF_CONSENT = 16
SET_TYPES = (set, frozenset, list, tuple)


# ---------------------------------------------------------------------------
# Time

def local_day(at: Any, zone: ZoneInfo) -> datetime.date:
    """The local calendar day of ``at``: a date is that day, a naive datetime is local time,
    an aware datetime is converted to ``zone``, None is now. Anything else is a TypeError."""
    if at is None:
        return _datetime.now(zone).date()
    if type(at) is _date:
        return at
    if isinstance(at, _datetime):
        if at.tzinfo is None or at.utcoffset() is None:
            return _date(at.year, at.month, at.day)
        try:
            local = at.astimezone(zone)
        except OverflowError:  # 9999-12-31 late in UTC-5 is past date.max in Amsterdam: a bad call
            raise ValueError(f"at {at.isoformat()} falls outside the dates Python can represent in time zone "
                             f"{zone.key}") from None
        return _date(local.year, local.month, local.day)
    if isinstance(at, _date):
        return _date(at.year, at.month, at.day)
    raise TypeError(f"at must be a datetime.date, a datetime.datetime or None, not {type(at).__name__}")


def age_on(birth: datetime.date, day: datetime.date) -> int:
    """Whole years on ``day`` (a 29 February birthday counts from 1 March in non-leap years)."""
    return day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))


def age_of(value: Any, day: datetime.date, zone: ZoneInfo | None = None) -> int | None:
    """The built-in ``age``: whole years from a birth date (a date, or a datetime read as its
    date in ``zone``: ``to_date``), else None (unknown)."""
    if type(value) is not _date:
        value = to_date(value, zone)
        if value is None:
            return None
    return day.year - value.year - ((day.month, day.day) < (value.month, value.day))


def age_function(zone: ZoneInfo | None) -> Any:
    """``age(value, day)`` for generated code: ``age_of`` with the policy's zone bound (the exact
    date is tested first, as in ``age_of``; a closure costs no more than a plain function)."""
    def age(value: Any, day: datetime.date) -> int | None:
        if type(value) is not _date:
            value = to_date(value, zone)
            if value is None:
                return None
        return day.year - value.year - ((day.month, day.day) < (value.month, value.day))
    return age


# ---------------------------------------------------------------------------
# Values

def is_str_set(value: Any) -> bool:
    return type(value) in SET_TYPES and all(type(e) is str for e in value)


_GUARDS: dict[str, Any] = {"text": str, "int": int, "bool": bool, "date": _date}


class _NoType:
    """The exact type of no value: what ``exact_type`` gives for a type name it does not know."""


def exact_type(field_type: str) -> type:
    """The exact Python type of a (non-set) catalogue type's values."""
    return _GUARDS.get(field_type, _NoType)  # type: ignore[no-any-return]


def well_typed(value: Any, field_type: str) -> bool:
    """Whether ``value`` is exactly of the catalogue type ``field_type``."""
    if field_type == "set":
        return is_str_set(value)
    return type(value) is _GUARDS.get(field_type)


# -- lossless conversions: the slow path, taken only when the exact-type check failed
#
# Both engines and filter's generated loop test the exact type first (the hot path, unchanged);
# only a value that fails it is handed to one of these, which return the value as the exact type
# when it means the same thing without loss, else None (unknown: denied with missing_attribute).
# They never raise: the student's own code (``__index__``, ``utcoffset``) runs inside a try.

#: exact types that are never an integral number (rejected without looking further)
_NOT_INTEGRAL = frozenset({type(None), str, bytes, bool, float, complex, _date, _datetime, list, tuple, dict, set,
                           frozenset})


def to_int(value: Any) -> int | None:
    """An int field's value from an integral number that is not a bool (a numpy ``int64``, an
    object whose ``__index__`` gives an int), else None."""
    cls = type(value)
    if cls in _NOT_INTEGRAL:
        return None
    try:
        if issubclass(cls, (bool, str, bytes, float, complex)) or cls.__name__ in ("bool_", "bool"):
            return None  # (numpy's bool_ has an __index__ in old releases: a bool is not a number here)
        index = getattr(cls, "__index__", None)
        if index is None:
            return None
        result = index(value)  # the type's own __index__, called directly: an exact int or nothing
    except Exception:
        return None
    return result if type(result) is int else None


def to_date(value: Any, zone: ZoneInfo | None) -> datetime.date | None:
    """A date field's value from a ``datetime`` (or subclass: pandas' Timestamp): an aware one is
    read as its date in the policy's time zone ``zone``, a naive one as its own date; else None."""
    cls = type(value)
    if cls in _NOT_INTEGRAL and cls is not _datetime:  # (the common wrong types: no datetime)
        return None
    try:
        if not issubclass(cls, _datetime):
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            return _date(value.year, value.month, value.day)
        if zone is None:
            return None
        local = value.astimezone(zone)
        if not isinstance(local, _datetime):
            return None
        return _date(local.year, local.month, local.day)
    except Exception:  # a broken tzinfo or datetime subclass, a date past 9999-12-31 in the zone
        return None


_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def to_consent_date(value: Any, zone: ZoneInfo | None) -> datetime.date | None:
    """A consent's ``given``/``withdrawn`` date from a ``datetime`` (as ``to_date``) or an ISO
    ``YYYY-MM-DD`` string (exactly that form: not ``20250901``, not a time), else None."""
    if type(value) is str:
        if len(value) != 10 or not _ISO_DATE.fullmatch(value):
            return None
        try:
            return _date.fromisoformat(value)
        except ValueError:  # 2025-02-30, 0000-01-01
            return None
    return to_date(value, zone)


def converter(field_type: str, zone: ZoneInfo | None) -> Any:
    """The slow-path conversion of a catalogue type (``value -> value or None``), or None when the
    type has none (text, bool and set values must be exactly of their type)."""
    if field_type == "int":
        return to_int
    if field_type == "date":
        return functools.partial(to_date, zone=zone)
    return None


def field_value(value: Any, field_type: str, zone: ZoneInfo | None) -> tuple[bool, Any]:
    """(known, value) of a student value for a catalogue type: the value itself when it is exactly
    of the type, the converted value when it converts without loss, else (False, value)."""
    if field_type == "set":
        return is_str_set(value), value
    if type(value) is _GUARDS.get(field_type):
        return True, value
    convert = converter(field_type, zone)
    converted = convert(value) if convert is not None else None
    return (False, value) if converted is None else (True, converted)


#: how a reason names what the policy declares, per catalogue type
EXPECTED = {"text": "text (a str)", "int": "int (a whole number, not a bool)",
            "bool": "bool (True or False)", "date": "date (a datetime.date, or a datetime.datetime)",
            "set": "set (a set, frozenset, list or tuple of str)"}
_NAME_OF = type.__dict__["__name__"].__get__  # a class's own name: no metaclass property runs


def type_name(value: Any) -> str:
    """The name of a value's type, for a reason (never the value: it may be protected data)."""
    try:
        name = _NAME_OF(type(value))
    except Exception:
        return "object"
    if type(name) is not str:
        return "object"
    return name if len(name) <= 60 else name[:60] + "..."


def received(value: Any, field_type: str) -> str:
    """What a reason says a student value is, when it is not usable as ``field_type``."""
    name = type_name(value)
    try:
        cls = type(value)
        if field_type == "set" and cls in SET_TYPES:
            return f"{name} with an element that is not a str"
        if field_type == "date" and issubclass(cls, _datetime):
            return f"{name} whose date cannot be read"
        if field_type == "int" and not issubclass(cls, bool) and getattr(cls, "__index__", None) is not None:
            return f"{name} that gives no whole number"
    except Exception:
        pass
    return name


def missing_detail(attrs: tuple[str, ...], record: Mapping[Any, Any],
                   types: Mapping[str, str]) -> tuple[Any, ...]:
    """The detail of a ``missing_attribute`` reason: per attribute, its name when it is absent or
    None, else ``(name, what it is, the declared type)`` (a type, never the value). ``types`` maps
    an attribute to its catalogue type (``date`` when it is not in it: the birth date of ``age``)."""
    out: list[Any] = []
    for name in attrs:
        value = record.get(name)
        if value is None:
            out.append(name)
        else:
            t = types.get(name, "date")
            out.append((name, received(value, t), t))
    return tuple(out)


def attribute_types(subject: Mapping[str, FieldInfo]) -> dict[str, str]:
    """Subject attribute -> catalogue type (what ``missing_detail`` needs)."""
    return {name: f.type for name, f in subject.items()}


_PACKAGE = os.path.dirname(os.path.abspath(__file__)) + os.sep


def raised_by_record(exc: BaseException) -> bool:
    """Whether an exception came from the student record's own code (a key's ``__eq__`` or
    ``__hash__``, a mapping's method): its innermost frame is neither avgpolicy's nor generated
    code's. Such a record is decided as one that is not a mapping; anything else is a bug."""
    tb = exc.__traceback__
    if tb is None:
        return False
    while tb.tb_next is not None:
        tb = tb.tb_next
    filename = tb.tb_frame.f_code.co_filename
    return not (filename.startswith("<avgpolicy ") or os.path.abspath(filename).startswith(_PACKAGE))


def as_record(value: Any) -> dict[Any, Any] | None:
    """A plain dict with the mapping's items, or None when ``value`` is not a usable mapping."""
    if type(value) is dict:
        return value
    if isinstance(value, Mapping):
        try:
            return dict(value.items())
        except Exception:  # a broken mapping is bad data: deny, never raise
            return None
    return None


def operand_type(op: n.Literal | n.Ref, subject: Mapping[str, FieldInfo]) -> str | None:
    """The static type of an operand: a literal's type, ``int`` for age, a field's type, else None."""
    if isinstance(op, n.Literal):
        return op.type
    fi = subject.get(op.name)
    if fi is not None:
        return fi.type
    return "int" if op.name == AGE else None


def is_age(ref: n.Ref, subject: Mapping[str, FieldInfo]) -> bool:
    """Whether a name is the built-in ``age`` (a subject field of that name would win)."""
    return ref.name == AGE and AGE not in subject


def attribute_of(ref: n.Ref, subject: Mapping[str, FieldInfo]) -> str:
    """The student attribute a reference reads (``age`` reads the birth date)."""
    return BIRTHDATE_FIELD if is_age(ref, subject) else ref.name


def atom_refs(atom: n.Expr) -> tuple[n.Ref, ...]:
    if isinstance(atom, n.Compare):
        ops: tuple[Any, ...] = (atom.left, atom.right)
    elif isinstance(atom, (n.InList, n.InRange)):
        ops = (atom.operand,)
    elif isinstance(atom, n.InSet):
        ops = (atom.element, atom.container)
    else:
        raise TypeError(f"not an atom: {type(atom).__name__}")
    return tuple(o for o in ops if isinstance(o, n.Ref))


def atom_is_typed(atom: n.Expr, subject: Mapping[str, FieldInfo]) -> bool:
    """Whether an atom's operand types fit (a policy that passed the checker always does).

    An atom that does not fit is *unknown* for every student, in both engines."""
    if isinstance(atom, n.Compare):
        t = operand_type(atom.left, subject)
        return t is not None and t != "set" and t == operand_type(atom.right, subject)
    if isinstance(atom, n.InList):
        t = operand_type(atom.operand, subject)
        return t is not None and t != "set"
    if isinstance(atom, n.InRange):
        t = operand_type(atom.operand, subject)
        return t is not None and t != "set" and t == atom.low.type == atom.high.type
    if isinstance(atom, n.InSet):
        return operand_type(atom.element, subject) == "text" and operand_type(atom.container, subject) == "set"
    raise TypeError(f"not an atom: {type(atom).__name__}")


def list_values(atom: n.InList, subject: Mapping[str, FieldInfo]) -> frozenset[Any]:
    """The list literals of the operand's type (others can never be equal to a well-typed value)."""
    t = operand_type(atom.operand, subject)
    return frozenset(v.value for v in atom.values if v.type == t)


# ---------------------------------------------------------------------------
# Condition text (for not_in_subset messages): canonical .avg syntax, never student values

def literal_text(lit: n.Literal) -> str:
    v = lit.value
    if lit.type == "text":
        return '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'
    if lit.type == "bool":
        return "true" if v else "false"
    if lit.type == "date":
        return v.isoformat()  # type: ignore[union-attr]
    return str(v)


def condition_text(e: n.Expr | n.Literal | n.Ref) -> str:
    """The condition (part) as .avg text."""
    if isinstance(e, n.Literal):
        return literal_text(e)
    if isinstance(e, n.Ref):
        return e.name
    if isinstance(e, n.Compare):
        return f"{condition_text(e.left)} {e.op} {condition_text(e.right)}"
    neg = "not in" if getattr(e, "negated", False) else "in"
    if isinstance(e, n.InList):
        return f"{condition_text(e.operand)} {neg} [{', '.join(literal_text(v) for v in e.values)}]"
    if isinstance(e, n.InRange):
        return f"{condition_text(e.operand)} {neg} {literal_text(e.low)}..{literal_text(e.high)}"
    if isinstance(e, n.InSet):
        return f"{condition_text(e.element)} {neg} {e.container.name}"
    if isinstance(e, n.And):
        return " and ".join(f"({condition_text(i)})" if isinstance(i, n.Or) else condition_text(i)
                            for i in e.items)
    if isinstance(e, n.Or):
        return " or ".join(condition_text(i) for i in e.items)
    if isinstance(e, n.Not):
        inner = condition_text(e.operand)
        return f"not ({inner})" if isinstance(e.operand, (n.And, n.Or)) else f"not {inner}"
    raise TypeError(f"not a condition: {type(e).__name__}")


# ---------------------------------------------------------------------------
# Protected values: a reason never quotes a condition on a special, criminal or national_id field
#
# A failed `zorgnotitie != "ADHD"` quoted in a not_in_subset reason would tell the reader the
# student's health note. Reasons are built from (rule, failed part) by both engines, without the
# catalogue; so each Policy registers, per rule, the subject attributes whose conditions must not
# be quoted (``protect_values``), and ``reason_message`` looks the rule up. A rule nobody
# registered (a model used without a Policy) has every attribute protected: fail closed.

PROTECTED_SENSITIVITIES = ("special", "criminal", "national_id")
_PROTECTED: dict[int, tuple[Any, frozenset[str]]] = {}  # id(rule) -> (weakref to it, protected names)


def protected_attributes(subject: Mapping[str, FieldInfo]) -> frozenset[str]:
    """The subject attributes a reason must never quote a condition on (``age`` when the birth
    date is protected)."""
    names = {name for name, f in subject.items() if f.sensitivity in PROTECTED_SENSITIVITIES}
    if BIRTHDATE_FIELD in names and AGE not in subject:
        names.add(AGE)
    return frozenset(names)


def protect_values(model: Any) -> None:
    """Register the protected attributes of every rule of ``model`` (called by ``Policy``)."""
    protected = protected_attributes(model.catalogue.subject_fields)
    for rule in model.rules:
        key = id(rule)
        entry = _PROTECTED.get(key)
        if entry is not None and entry[0]() is rule:
            _PROTECTED[key] = (entry[0], entry[1] | protected)  # one rule in two policies: both count
            continue

        def forget(ref: Any, key: int = key) -> None:
            if (current := _PROTECTED.get(key)) is not None and current[0] is ref:
                _PROTECTED.pop(key, None)

        _PROTECTED[key] = (weakref.ref(rule, forget), protected)


def _refs_of(e: Any) -> list[str]:
    if isinstance(e, (n.And, n.Or)):
        return [name for item in e.items for name in _refs_of(item)]
    if isinstance(e, n.Not):
        return _refs_of(e.operand)
    try:
        return [r.name for r in atom_refs(e)]
    except TypeError:
        return []


def protected_in(rule: RuleInfo | None, part: Any) -> tuple[str, ...]:
    """The protected attributes a condition part tests, in order (every attribute it tests when
    the rule was not registered by a Policy)."""
    entry = _PROTECTED.get(id(rule)) if rule is not None else None
    names = _refs_of(part)
    if entry is None or entry[0]() is not rule:
        return tuple(dict.fromkeys(names)) or ("?",)
    return tuple(dict.fromkeys(name for name in names if name in entry[1]))


# ---------------------------------------------------------------------------
# Consent (spec section 4)

CONSENT_OK = 0          # valid
CONSENT_INFORM = 1      # valid parental consent, student now 16 or older: allowed + inform_student
CONSENT_NONE = 2
CONSENT_NOT_YET = 3     # given after the moment of the decision
CONSENT_WITHDRAWN = 4
CONSENT_NO_BIRTHDATE = 5
CONSENT_PARENT_AFTER_16 = 6
CONSENT_STUDENT_BEFORE_16 = 7
CONSENT_RECONFIRM = 8   # reconfirm_at_16 topic, parental consent, student 16 or older
CONSENT_INVALID = 9     # ill-typed consents mapping or entry
CONSENT_STATUSES = tuple(range(10))

_CONSENT_WHY = {
    CONSENT_NONE: "the student record holds no consent for topic {t}",
    CONSENT_NOT_YET: "consent for topic {t} was given only after this day",
    CONSENT_WITHDRAWN: "consent for topic {t} was withdrawn",
    CONSENT_NO_BIRTHDATE: ("consent for topic {t} cannot be checked: the birth date (" + BIRTHDATE_FIELD
                           + ") is missing or not a date, so the party entitled to give it is unknown"),
    CONSENT_PARENT_AFTER_16: ("consent for topic {t} was given by a parent on or after the student's 16th "
                              "birthday (given by the wrong party: from 16 only the student can consent)"),
    CONSENT_STUDENT_BEFORE_16: ("consent for topic {t} was given by the student before their 16th birthday "
                                "(given by the wrong party: a parent must consent below 16)"),
    CONSENT_RECONFIRM: ("consent for topic {t} was given by a parent and the topic needs reconfirmation at 16: "
                        "the student is 16 or older and must give it personally"),
    CONSENT_INVALID: ("the consent for topic {t} is not a Consent or a mapping with 'by' (parent or student), "
                      "'given' (a date, a datetime or an ISO 'YYYY-MM-DD' str) and 'withdrawn' (the same, or None)"),
}


#: what a consent's parts must be, for the reasons of an unusable consent
_GIVEN_EXPECTED = "a date (a datetime.date, a datetime.datetime or an ISO 'YYYY-MM-DD' str)"
_PARTY_TEXT = ("is a str that is not 'parent' or 'student' (the only spellings: not 'ouder', 'leerling' "
               "or another language or case)")


def _consent_date(m: Mapping[Any, Any], key: str, zone: ZoneInfo | None,
                  optional: bool) -> tuple[datetime.date | None, str | None]:
    """(date, None) or (None, what is wrong) for a consent mapping's ``given``/``withdrawn``."""
    value = m.get(key)
    if type(value) is _date:
        return value, None
    if value is None:
        return None, None if optional else f"'{key}' is missing or None"
    day = to_consent_date(value, zone)
    if day is not None:
        return day, None
    what = type_name(value)
    if type(value) is str:
        return None, f"'{key}' is a str that is not an ISO date 'YYYY-MM-DD'"
    if issubclass(type(value), _datetime):
        return None, f"'{key}' is a {what} whose date cannot be read"
    return None, f"'{key}' has type {what}, expected {_GIVEN_EXPECTED}" + (" or None" if optional else "")


def _consent_parts(entry: Any, zone: ZoneInfo | None) -> tuple[str, datetime.date, datetime.date | None] | str:
    """(by, given, withdrawn) of a consent entry, or a str saying what is wrong with it (types and
    expectations only, never a value)."""
    if type(entry) is Consent:
        return entry.by, entry.given, entry.withdrawn
    m = as_record(entry)
    if m is None:
        return f"the entry has type {type_name(entry)}, expected a Consent or a mapping"
    by = m.get("by")
    if type(by) is not str:
        problem = "'by' is missing or None" if by is None else f"'by' has type {type_name(by)}, expected a str"
        return problem + ", 'parent' or 'student'"
    if by not in ("parent", "student"):
        return "'by' " + _PARTY_TEXT
    given, problem = _consent_date(m, "given", zone, optional=False)
    if problem is not None:
        return problem
    withdrawn, problem = _consent_date(m, "withdrawn", zone, optional=True)
    if problem is not None:
        return problem
    assert given is not None
    return by, given, withdrawn


def consent_status(record: Mapping[Any, Any], topic: str, reconfirm_at_16: bool, day: datetime.date,
                   zone: ZoneInfo | None = None) -> int:
    """Whether the record holds valid consent for ``topic`` on local ``day`` (a CONSENT_* code).
    ``zone`` (the policy's) reads aware datetimes in a consent or the birth date as local dates."""
    consents = record.get("consents")
    if consents is None:
        return CONSENT_NONE
    consents = as_record(consents)
    if consents is None:
        return CONSENT_INVALID
    entry = consents.get(topic)
    if entry is None:
        return CONSENT_NONE
    parts = _consent_parts(entry, zone)
    if type(parts) is str:
        return CONSENT_INVALID
    by, given, withdrawn = parts
    if given > day:
        return CONSENT_NOT_YET
    if withdrawn is not None and withdrawn <= day:
        return CONSENT_WITHDRAWN
    birth = record.get(BIRTHDATE_FIELD)
    if type(birth) is not _date:
        birth = to_date(birth, zone)
        if birth is None:
            return CONSENT_NO_BIRTHDATE
    if by == "parent":
        if age_on(birth, given) >= AGE_OF_CONSENT:
            return CONSENT_PARENT_AFTER_16
        if age_on(birth, day) >= AGE_OF_CONSENT:
            return CONSENT_RECONFIRM if reconfirm_at_16 else CONSENT_INFORM
        return CONSENT_OK
    if age_on(birth, given) < AGE_OF_CONSENT:
        return CONSENT_STUDENT_BEFORE_16
    return CONSENT_OK


def consent_problem(record: Mapping[Any, Any], topic: str, zone: ZoneInfo | None = None) -> str:
    """What is wrong with a consent that ``consent_status`` calls CONSENT_INVALID (types, never values)."""
    consents = as_record(record.get("consents"))
    if consents is None:
        return f"the record's 'consents' has type {type_name(record.get('consents'))}, expected a mapping " \
               "of consent topic to consent"
    parts = _consent_parts(consents.get(topic), zone)
    return parts if type(parts) is str else "the consent cannot be read"


# ---------------------------------------------------------------------------
# Reason specs -> Reasons and FieldDecisions (one definition for both engines)

#: ``(code, rule or None, detail)``; detail depends on the code: a name (unknown_*), an Expr
#: (not_in_subset), attribute names (missing_attribute), ``(status, topic)`` (no_consent), a
#: topic (inform_student), ``(transform, covering agreements)`` (permitted), the agreements in
#: force (outside_agreement), the date the student left (left_school).
Spec = tuple[str, RuleInfo | None, Any]
NOT_A_MAPPING = "<student record>"


def location_of(rule: RuleInfo | None) -> Location | None:
    if rule is None or rule.span is None:
        return None
    return Location(rule.span.file, rule.span.line)


def _window_text(rule: RuleInfo) -> str:
    w = rule.window
    parts = ([f"from {w.start.isoformat()}"] if w.start else []) + ([f"until {w.end.isoformat()}"] if w.end else [])
    return " ".join(parts) or "always"


def _rule_text(rule: RuleInfo) -> str:
    return f"rule {rule.name}" + (f" ({rule.note})" if rule.note else "")


def reason_message(spec: Spec, field: str, partner: str, purpose: str) -> str:
    code, rule, detail = spec
    if code == "unknown_partner":
        return f"partner {shown_name(partner)} is not declared in this policy set" + \
            (f"; did you mean {detail!r}?" if detail else "")
    if code == "unknown_purpose":
        return f"purpose {shown_name(purpose)} is not declared in this policy set" + \
            (f"; did you mean {detail!r}?" if detail else "")
    if code == "unknown_field":
        return f"field {field!r} is not in the data catalogue"
    if code == "agreement_inactive":
        return f"partner {partner} has no processing agreement in force on this day"
    if code == "outside_agreement":
        return (f"no processing agreement of partner {partner} in force on this day covers {field} for purpose "
                f"{purpose}; in force: " + "; ".join(agreement_text(a) for a in detail))
    if code == "left_school":
        return (f"the student left the school on {detail.isoformat()}: after that day only purposes of kind "
                "transfer or archive may receive their data")
    if code == "forbidden":
        return f"forbidden by {_rule_text(rule)}"  # type: ignore[arg-type]
    if code == "missing_attribute":
        if detail == (NOT_A_MAPPING,):
            return "the student record is not a mapping"
        if rule is None:  # the only rule-less attribute: the `left` date (spec 7.7)
            entry = detail[0]
            what = f"has type {entry[1]}, but the policy declares {EXPECTED['date']} or None" \
                if isinstance(entry, tuple) else "is not a date or None"
            return (f"student attribute {_entry_name(entry)} (the date the student left the school) {what}, "
                    "so whether the student has left cannot be decided")
        what = "forbid" if rule.effect == "forbid" else "permit"
        return (f"student attribute {'; '.join(_entry_text(e) for e in detail)}, so the condition of {what} "
                f"rule {rule.name} cannot be decided")
    if code == "permitted":
        assert rule is not None
        transform, covering = detail
        extra = (f", as {transform}" if transform else "") + (f", retain {rule.retain}" if rule.retain else "") + \
            (f", under agreement {covering[0].reference}" if covering else "")
        return f"permitted by {_rule_text(rule)}, basis {basis_text(rule)}{extra}"
    if code == "inform_student":
        return (f"relies on consent for topic {detail} given by a parent before the student turned 16: "
                "inform the student that they may confirm or withdraw it")
    if code == "no_permit":
        return f"no permit rule gives {field} to partner {partner} for purpose {purpose}"
    if code == "outside_window":
        assert rule is not None
        return f"rule {rule.name} is not in force on this day (valid {_window_text(rule)})"
    if code == "not_in_subset":
        protected = protected_in(rule, detail)
        if protected:  # never quote a condition on a special, criminal or national_id attribute
            return (f"the student is outside the subset of rule {rule.name if rule else '?'}: a condition on "
                    f"{', '.join(protected)} does not hold (a protected attribute: the condition and the "
                    "value are not shown)")
        return f"the student is outside the subset of rule {rule.name if rule else '?'}: " \
               f"`{condition_text(detail)}` does not hold"
    if code == "no_consent":
        assert rule is not None
        status, topic = detail[0], detail[1]
        explicit = " (explicit consent for special category data, GDPR art. 9(2)(a))" \
            if topic == rule.art9_topic and topic != rule.consent_topic else ""
        problem = f": {detail[2]}" if len(detail) > 2 else ""
        return _CONSENT_WHY[status].format(t=topic) + problem + explicit + f" (rule {rule.name})"
    raise ValueError(f"unknown reason code {code!r}")


def _entry_name(entry: Any) -> str:
    return entry[0] if isinstance(entry, tuple) else entry  # type: ignore[no-any-return]


def _entry_text(entry: Any) -> str:
    """One attribute of a missing_attribute detail (see ``missing_detail``)."""
    if isinstance(entry, tuple):
        name, what, t = entry
        return f"{name} has type {what}, but the policy declares {EXPECTED.get(t, t)}"
    return f"{entry} is missing or None"


def make_reason(spec: Spec, field: str, partner: str, purpose: str) -> Reason:
    rule = spec[1]
    return Reason(code=spec[0], message=reason_message(spec, field, partner, purpose), field=field,
                  rule=rule.name if rule else None, location=location_of(rule))


def field_decision(field: str, specs: tuple[Spec, ...], partner: str, purpose: str) -> FieldDecision:
    """A FieldDecision from its specs: allowed when the first is ``permitted``."""
    reasons = tuple(make_reason(s, field, partner, purpose) for s in specs)
    first = specs[0] if specs else None
    if first is not None and first[0] == "permitted":
        rule = first[1]
        assert rule is not None
        transform, covering = first[2]
        dpia = rule.dpia or next((a.dpia for a in covering if a.dpia), None)
        return FieldDecision(field=field, allowed=True, reasons=reasons, rule=rule.name, basis=basis_text(rule),
                             transform=transform, retain=str(rule.retain) if rule.retain else None,
                             law=rule.law, agreement=covering[0].reference if covering else None, dpia=dpia)
    return FieldDecision(field=field, allowed=False, reasons=reasons)


def basis_text(rule: RuleInfo) -> str | None:
    """The basis as FieldDecision.basis gives it: ``consent(TOPIC)`` or the basis's name."""
    return f"consent({rule.consent_topic})" if rule.basis == "consent" else rule.basis


def agreement_text(a: AgreementInfo) -> str:
    """``REF (covers FIELDS for purposes IDS)``, for outside_agreement messages."""
    fields = "every field" if a.covers is None else ", ".join(sorted(a.covers)) or "no field"
    purposes = "every purpose" if a.purposes is None else ", ".join(sorted(a.purposes)) or "no purpose"
    return f"{a.reference} (covers {fields} for {purposes})"


def agreement_covers(a: AgreementInfo, purpose: str, field: str) -> bool:
    """Whether an agreement covers both the field and the purpose (None is everything)."""
    return (a.covers is None or field in a.covers) and (a.purposes is None or purpose in a.purposes)


def agreement_check(model: Any, partner: str, purpose: str, field: str,
                    day: datetime.date) -> tuple[Spec | None, tuple[AgreementInfo, ...]]:
    """(failure spec or None, the agreements in force on ``day`` that cover the field and purpose).

    A partner without agreements is not limited: (None, ()). Spec v2 section 7.3, "Deciding"."""
    agreements = model.partners[partner].agreements
    if not agreements:
        return None, ()
    in_force = tuple(a for a in agreements if a.window.contains_date(day))
    if not in_force:
        return AGREEMENT_INACTIVE, ()
    covering = tuple(a for a in in_force if agreement_covers(a, purpose, field))
    if not covering:
        return ("outside_agreement", None, in_force), ()
    return None, covering


#: purpose kinds that still receive the data of a student who left (spec 7.7)
AFTER_LEAVING = ("transfer", "archive")


def left_applies(model: Any, purpose: str) -> str | None:
    """The record key of the subject's ``left`` date when it limits this purpose, else None."""
    left = model.catalogue.left
    if left is None or model.purposes[purpose].kind in AFTER_LEAVING:
        return None
    return left  # type: ignore[no-any-return]


def left_spec(record: Mapping[Any, Any], left: str, day: datetime.date, zone: ZoneInfo | None = None) -> Spec | None:
    """None while the student has not left on ``day`` (absent or None: not left); left_school
    with the date when it is before ``day``; missing_attribute (naming the value's type) when the
    value is not a date and does not convert to one (``to_date``)."""
    value = record.get(left)
    if value is None:
        return None
    if type(value) is not _date:
        converted = to_date(value, zone)
        if converted is None:
            return ("missing_attribute", None, ((left, received(value, "date"), "date"),))
        value = converted
    return ("left_school", None, value) if value < day else None


def consent_topics(model: Any, rule: RuleInfo, field: str) -> tuple[str, ...]:
    """The consent topics a permit needs for a field: its consent basis's topic, then the topic of
    ``art9 explicit_consent(TOPIC)`` for a ``special`` field (spec 7.6), each once."""
    topics = (rule.consent_topic,) if rule.basis == "consent" and rule.consent_topic else ()
    art9 = rule.art9_topic
    if art9 is not None and art9 not in topics and model.catalogue.fields[field].sensitivity == "special":
        topics += (art9,)
    return topics


def covers(rule: RuleInfo, partner: str, purpose: str, field: str) -> bool:
    """Whether a rule is about this partner, purpose and field (windows and subsets aside)."""
    return rule.partners.matches(partner) and rule.purposes.matches(purpose) and \
        rule.grant_for(field) is not None


def suggest(name: str, declared: Any) -> str | None:
    """The declared name closest to an unknown ``name`` (same letters in another case, else
    difflib's best match), or None; names longer than 100 characters get no suggestion (cheap)."""
    if type(name) is not str or len(name) > 100:
        return None
    return _suggest(name, tuple(declared))


@functools.lru_cache(maxsize=512)
def _suggest(name: str, declared: tuple[str, ...]) -> str | None:
    folded = name.casefold()
    for candidate in declared:
        if candidate.casefold() == folded:
            return candidate
    close = difflib.get_close_matches(name, declared, n=1, cutoff=0.6)
    return close[0] if close else None


def shown_name(name: str) -> str:
    """A name as messages quote it: repr, cut after 80 characters."""
    return repr(name) if len(name) <= 80 else repr(name[:80]) + f"... ({len(name)} characters)"


def static_specs(model: Any, partner: str, purpose: str, field: str) -> tuple[Spec, ...]:
    """The unknown_partner/unknown_purpose/unknown_field specs of a request field (may be empty);
    the detail of an unknown partner or purpose is the declared name it is closest to, or None."""
    out: list[Spec] = []
    if partner not in model.partners:
        out.append(("unknown_partner", None, suggest(partner, model.partners)))
    if purpose not in model.purposes:
        out.append(("unknown_purpose", None, suggest(purpose, model.purposes)))
    if field not in model.catalogue.fields:
        out.append(("unknown_field", None, field))
    return tuple(out)


AGREEMENT_INACTIVE: Spec = ("agreement_inactive", None, None)
NOT_MAPPING_SPEC: Spec = ("missing_attribute", None, (NOT_A_MAPPING,))
NO_PERMIT: Spec = ("no_permit", None, None)
