"""Transforms applied by ``filter``: keyed pseudonyms (``as pseudonym``) and ``as year``.

A pseudonym is HMAC-SHA256 under the policy's secret key over the partner, the field
reference and a typed encoding of the value, so it is stable for one partner and
field and differs between partners (two partners cannot link their data). The key
is never shown: not in output, reprs or error messages, and never kept: a
``Pseudonymizer`` holds only a keyed HMAC state (``hmac.new(key)``, copied for each
pseudonym), and ``seal_key`` turns the caller's bytes into one at the very start
of ``load``/``loads``/``PolicyStore``, so that no frame of the library keeps the key
as a local that a traceback could carry.
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
        try:
            return b"i:" + str(value).encode()
        except ValueError:  # beyond the str(int) digit limit (4,300): its two's-complement bytes
            return b"I:" + value.to_bytes((value.bit_length() + 8) // 8, "big", signed=True)
    if t is datetime.date:
        return b"d:" + value.isoformat().encode()
    return None


class Pseudonymizer:
    """Keyed pseudonyms; it keeps the keyed HMAC state, never the key, and ``repr`` shows neither."""

    __slots__ = ("_mac",)

    def __init__(self, key: bytes | bytearray) -> None:
        if not isinstance(key, (bytes, bytearray)) or not key:
            raise TypeError("a pseudonym key must be non-empty bytes")
        self._mac = hmac.new(bytes(key), digestmod=hashlib.sha256)  # the key's pads, not the key

    def __repr__(self) -> str:
        return "<Pseudonymizer key=***>"

    def pseudonym(self, partner: str, field: str, value: Any) -> str | None:
        """The pseudonym of ``value`` for ``partner`` and ``field``; None if the value is ill-typed."""
        encoded = _encode(value)
        if encoded is None:
            return None
        mac = self._mac.copy()
        mac.update(b"avgpolicy-pseudonym-v1\x00" + partner.encode() + b"\x00" + field.encode() + b"\x00" + encoded)
        return mac.hexdigest()


def seal_key(key: Any) -> Pseudonymizer | None:
    """The Pseudonymizer of a ``pseudonym_key`` argument (None stays None; a Pseudonymizer passes).

    Raises TypeError for a key that is not bytes and ValueError for an empty one; the messages
    never show the key.
    """
    if key is None or type(key) is Pseudonymizer:
        return key
    if not isinstance(key, (bytes, bytearray)):
        raise TypeError(f"pseudonym_key must be bytes, not {type(key).__name__}")
    if not key:
        raise ValueError("pseudonym_key is empty; use a secret of 32 random bytes (secrets.token_bytes(32))")
    return Pseudonymizer(key)


def year_of(value: Any) -> int | None:
    """``as year``: a date's year; None for anything that is not exactly a date."""
    return value.year if type(value) is datetime.date else None
