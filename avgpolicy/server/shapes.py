"""Reading request bodies: JSON -> checked Python values, each mistake a ``Problem`` naming the member.

AuthZEN 1.0 (OpenID Authorization API) shapes map onto a decision like this:

* ``subject``  ``{"type": "partner", "id": PARTNER}``
* ``action``   ``{"name": PURPOSE}``
* ``resource`` ``{"type": "student", "id": KEY, "properties": RECORD}``
* ``context``  ``{"fields": [FIELD, ...], "at": WHEN}`` (``time`` is read when ``at`` is absent)

Unknown members are ignored (AuthZEN: receivers MUST ignore unknown fields). The record is JSON: ISO
dates become dates and lists become sets where the catalogue says so, exactly as ``avgpolicy explain
--student FILE.json`` reads it; a value that still has the wrong type reaches ``decide`` as it is and is
denied there with a reason.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .problems import Problem, bad

if TYPE_CHECKING:
    from ..policy import Policy

JSON_TYPES = ("application/json",)
Moment = datetime.date | datetime.datetime | None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON (RFC 8259 has no NaN or Infinity)")


def parse_json(body: bytes, content_type: str | None) -> Any:
    """The parsed body; 415 for another media type, 400 for text that is not JSON."""
    if content_type is not None:
        media = content_type.split(";", 1)[0].strip().lower()
        if media not in JSON_TYPES and not media.endswith("+json"):
            raise Problem(415, f"send the body as JSON with `Content-Type: application/json`, not `{media}`",
                          kind="unsupported-media-type")
    if not body:
        raise bad("the request body is empty; send a JSON object")
    try:
        return json.loads(body, parse_constant=_no_constant)
    except RecursionError:
        raise bad("the JSON is nested too deeply") from None
    except UnicodeDecodeError as exc:
        raise bad(f"the body is not UTF-8 text: {exc.reason} at byte {exc.start}") from None
    except json.JSONDecodeError as exc:
        raise bad(f"the body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except ValueError as exc:  # NaN/Infinity, an integer of more than 4,300 digits
        raise bad(f"the body is not acceptable JSON: {exc}") from None


def kind_of(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def need_object(value: Any, pointer: str, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise bad(f"{pointer or 'the body'} must be an object ({what}), not {kind_of(value)}", pointer)
    return value


def member(obj: Mapping[str, Any], name: str, pointer: str, what: str, *, kind: type = str) -> Any:
    """A required member of the given JSON type (str, dict, list)."""
    if name not in obj:
        raise bad(f"{pointer}/{name} is missing: {what}", f"{pointer}/{name}")
    value = obj[name]
    if kind is str and (type(value) is not str or not value):
        raise bad(f"{pointer}/{name} must be a non-empty string ({what}), not {kind_of(value)}",
                  f"{pointer}/{name}")
    if kind is dict and not isinstance(value, dict):
        raise bad(f"{pointer}/{name} must be an object ({what}), not {kind_of(value)}", f"{pointer}/{name}")
    if kind is list and not isinstance(value, list):
        raise bad(f"{pointer}/{name} must be an array ({what}), not {kind_of(value)}", f"{pointer}/{name}")
    return value


def optional_str(obj: Mapping[str, Any], name: str, pointer: str, what: str) -> str | None:
    if obj.get(name) is None:
        return None
    return member(obj, name, pointer, what)  # type: ignore[no-any-return]


def parse_fields(value: Any, pointer: str) -> list[str]:
    if not isinstance(value, list) or not value:
        raise bad(f"{pointer} must be a non-empty array of field names such as \"leerling.roepnaam\", "
                  f"not {kind_of(value) if value != [] else 'an empty array'}", pointer)
    for i, f in enumerate(value):
        if type(f) is not str or not f:
            raise bad(f"{pointer}/{i} must be a field name such as \"leerling.roepnaam\", not {kind_of(f)}",
                      f"{pointer}/{i}")
    return value


def parse_moment(value: Any, pointer: str) -> Moment:
    """``YYYY-MM-DD`` (the start of that day in the policy's time zone) or an ISO 8601 date and time."""
    if value is None:
        return None
    if type(value) is not str:
        raise bad(f"{pointer} must be a date (YYYY-MM-DD) or an ISO 8601 date and time, not {kind_of(value)}",
                  pointer)
    try:
        if len(value) == 10:
            return datetime.date.fromisoformat(value)
        return datetime.datetime.fromisoformat(value)
    except ValueError:
        raise bad(f"{pointer} {value!r} is not a date (YYYY-MM-DD) or an ISO 8601 date and time "
                  "(YYYY-MM-DDTHH:MM[:SS][+HH:MM])", pointer) from None


_TYPES: dict[str, tuple[Any, dict[str, str | None], str | None]] = {}  # policy version -> (policy, types, key)


def _catalogue(policy: Policy) -> tuple[dict[str, str | None], str | None]:
    """Field name or reference -> type, and the key field, worked out once per policy version."""
    hit = _TYPES.get(policy.version)
    if hit is not None and hit[0] is policy:
        return hit[1], hit[2]
    catalogue = policy.model.catalogue
    types: dict[str, str | None] = {ref: info.type for ref, info in catalogue.fields.items()}
    types.update({name: info.type for name, info in catalogue.subject_fields.items()})
    key = getattr(catalogue, "key", None)
    if not isinstance(key, str):  # before the model names a key field (spec 7.7): a field named id
        key = "id" if "id" in catalogue.subject_fields else None
    if len(_TYPES) > 8:
        _TYPES.clear()
    _TYPES[policy.version] = (policy, types, key)
    return types, key


def key_field(policy: Policy) -> str | None:
    """The bare name of the subject's key field (spec 7.7), or ``id`` before the model names one."""
    return _catalogue(policy)[1]


_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", re.ASCII)


def _iso_date(value: Any) -> datetime.date:
    """Exactly ``YYYY-MM-DD``, as the Python API reads a consent date (``date.fromisoformat`` alone also
    takes ``20250901`` and week dates); else ValueError (the consent is passed on and denied)."""
    if type(value) is not str or not _ISO_DATE.fullmatch(value):
        raise ValueError(value)
    return datetime.date.fromisoformat(value)


def _consent(value: Any) -> Any:
    from ..decision import Consent

    if not isinstance(value, dict):
        return value
    try:
        given = _iso_date(value["given"])
        withdrawn = value.get("withdrawn")
        withdrawn = _iso_date(withdrawn) if withdrawn is not None else None
        return Consent(by=value["by"], given=given, withdrawn=withdrawn)
    except (KeyError, TypeError, ValueError):
        return value  # passed on as written: an invalid consent is denied with a reason


def student_record(record: Any, policy: Policy, pointer: str) -> dict[str, Any]:
    """The student record a JSON object describes, read as ``avgpolicy explain --student`` reads it:
    ISO date strings become dates and arrays of strings become sets where the catalogue says so,
    ``consents`` maps a topic to ``{by, given, withdrawn}``; anything else stays as sent (an ill-typed
    value is denied by ``decide`` with a reason)."""
    need_object(record, pointer, "the student record: field name -> value, and optionally \"consents\"")
    types, _ = _catalogue(policy)
    out: dict[str, Any] = {}
    for name, value in record.items():
        if type(value) is str:
            if types.get(name) == "date":
                with contextlib.suppress(ValueError):  # else it stays ill-typed: denied with a reason
                    value = datetime.date.fromisoformat(value)
        elif type(value) is list:
            if types.get(name) == "set" and all(type(v) is str for v in value):
                value = frozenset(value)
        elif type(value) is dict and name == "consents":
            value = {topic: _consent(c) for topic, c in value.items()}
        out[name] = value
    return out


class Evaluation:
    """One AuthZEN evaluation, read: what ``policy.decide`` needs (``fields`` None: none were named)."""

    __slots__ = ("at", "fields", "partner", "purpose", "record")

    def __init__(self, partner: str, purpose: str, fields: list[str] | None, record: dict[str, Any],
                 at: Moment) -> None:
        self.partner, self.purpose, self.fields, self.record, self.at = partner, purpose, fields, record, at


class ContextMemo:
    """Reads each distinct ``context`` object of one request once (a batch usually shares one)."""

    def __init__(self) -> None:
        self._seen: dict[int, tuple[Any, list[str] | None, Moment]] = {}

    def read(self, context: Any, pointer: str) -> tuple[list[str] | None, Moment]:
        hit = self._seen.get(id(context))
        if hit is not None and hit[0] is context:
            return hit[1], hit[2]
        ctx = need_object({} if context is None else context, pointer, "the context: {\"fields\": [...], \"at\": WHEN}")
        # no fields named (AuthZEN makes the context optional): a well-formed request, denied (NO_FIELDS)
        fields = None if ctx.get("fields") is None else parse_fields(ctx["fields"], f"{pointer}/fields")
        at_key = "at" if ctx.get("at") is not None else "time"
        at = parse_moment(ctx.get(at_key), f"{pointer}/{at_key}")
        self._seen[id(context)] = (context, fields, at)
        return fields, at


def read_evaluation(item: Mapping[str, Any], defaults: Mapping[str, Any], policy: Policy, pointer: str,
                    contexts: ContextMemo) -> Evaluation:
    """One evaluation: the item's own subject/action/resource/context, else the request's defaults."""

    def pick(name: str) -> tuple[Any, str]:
        if name in item:
            return item[name], f"{pointer}/{name}"
        if name in defaults:
            return defaults[name], f"/{name}"
        return None, f"{pointer}/{name}"

    subject, where = pick("subject")
    if subject is None:
        raise bad(f"{where} is missing: the partner asking, {{\"type\": \"partner\", \"id\": \"snappet\"}}", where)
    subject = need_object(subject, where, "{\"type\": \"partner\", \"id\": PARTNER}")
    if member(subject, "type", where, "\"partner\"") != "partner":
        raise bad(f"{where}/type must be \"partner\" (the organisation receiving the data), "
                  f"not {subject['type']!r}", f"{where}/type")
    partner = member(subject, "id", where, "the partner's name as the policy declares it")

    action, where = pick("action")
    if action is None:
        raise bad(f"{where} is missing: the purpose, {{\"name\": \"leermiddelen\"}}", where)
    action = need_object(action, where, "{\"name\": PURPOSE}")
    purpose = member(action, "name", where, "the purpose's name as the policy declares it")

    resource, where = pick("resource")
    if resource is None:
        raise bad(f"{where} is missing: the student, {{\"type\": \"student\", \"id\": KEY, \"properties\": {{...}}}}",
                  where)
    resource = need_object(resource, where, "{\"type\": \"student\", \"id\": KEY, \"properties\": RECORD}")
    if member(resource, "type", where, "\"student\"") != "student":
        raise bad(f"{where}/type must be \"student\", not {resource['type']!r}", f"{where}/type")
    student_id = member(resource, "id", where, "the student's key")
    props = resource.get("properties")
    record = student_record({} if props is None else props, policy, f"{where}/properties")
    types, key = _catalogue(policy)
    if key is not None:
        if key not in record:
            record[key] = (int(student_id) if types.get(key) == "int" and student_id.isascii()
                           and student_id.isdigit() and len(student_id) < 19 else student_id)
        elif str(record[key]) != student_id:
            raise bad(f"{where}/id {student_id!r} and {where}/properties/{key} {record[key]!r} name different "
                      "students; send one key", f"{where}/properties/{key}")

    context, where = pick("context")
    fields, at = contexts.read(context, where)
    return Evaluation(partner, purpose, fields, record, at)
