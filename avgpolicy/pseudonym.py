"""Transforms applied by ``filter``: keyed pseudonyms (``as pseudonym``) and ``as year``.

A pseudonym is HMAC-SHA256 under the policy's secret key over the partner, the field
reference and a typed encoding of the value, so it is stable for one partner and
field and differs between partners (two partners cannot link their data). The key
is never shown: not in output, reprs or error messages.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
from typing import Any

_MISSING = object()


def _encode(value: Any) -> bytes | None:
    """A typed, unambiguous encoding of a well-typed value; None for anything else."""
    t = type(value)
    if t is str:
        return b"s:" + value.encode("utf-8", "surrogatepass")
    if t is bool:
        return b"b:1" if value else b"b:0"
    if t is int:
        return b"i:" + str(value).encode()
    if t is datetime.date:
        return b"d:" + value.isoformat().encode()
    return None


class Pseudonymizer:
    """Keyed pseudonyms; ``repr`` never shows the key."""

    __slots__ = ("_key",)

    def __init__(self, key: bytes) -> None:
        if not isinstance(key, (bytes, bytearray)) or not key:
            raise TypeError("a pseudonym key must be non-empty bytes")
        self._key = bytes(key)

    def __repr__(self) -> str:
        return "<Pseudonymizer key=***>"

    def pseudonym(self, partner: str, field: str, value: Any) -> str | None:
        """The pseudonym of ``value`` for ``partner`` and ``field``; None if the value is ill-typed."""
        encoded = _encode(value)
        if encoded is None:
            return None
        msg = b"avgpolicy-pseudonym-v1\x00" + partner.encode() + b"\x00" + field.encode() + b"\x00" + encoded
        return hmac.new(self._key, msg, hashlib.sha256).hexdigest()


def year_of(value: Any) -> int | None:
    """``as year``: a date's year; None for anything that is not exactly a date."""
    return value.year if type(value) is datetime.date else None
