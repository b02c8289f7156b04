"""EngineContext: what the engines need of a loaded policy, and nothing more.

The compiler and the reference interpreter take this object, never the ``Policy`` that owns them
(issue 15: no import cycle between ``policy``, ``compiler`` and ``interpreter``). ``Policy`` builds
one per loaded version and hands it to both engines: the model, the time zone local days are
taken in, the version decisions carry, and the keyed function that derives pseudonyms (never the
key). It also keeps, per partner and purpose, the rules about them (worked out on first use), so
each request compiled later scans only those.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo

import attrs

from .model import PolicyModel, RuleInfo

#: ``(partner, field reference, value) -> pseudonym`` (None for a value that cannot be pseudonymised)
PseudonymFunction = Callable[[str, str, Any], "str | None"]


@attrs.frozen(eq=False)
class EngineContext:
    """The model, time zone, version and pseudonym function of one loaded policy version. Immutable
    (bar a cache of rules per partner and purpose, filled under the GIL with ``dict.setdefault``)."""

    model: PolicyModel
    zone: ZoneInfo
    version: str
    #: derives a pseudonym (``Pseudonymizer.pseudonym``); None when the policy was loaded without a key
    pseudonym: PseudonymFunction | None = attrs.field(default=None, repr=False)
    _rules: dict[tuple[str, str], tuple[RuleInfo, ...]] = attrs.field(init=False, factory=dict, repr=False)

    def pseudonym_function(self, partner: str, ref: str) -> Callable[[Any], str | None] | None:
        """``value -> pseudonym`` for field ``ref`` sent to ``partner``; None without a pseudonym key."""
        if self.pseudonym is None:
            return None
        return functools.partial(self.pseudonym, partner, ref)

    def rules_for(self, partner: str, purpose: str) -> tuple[RuleInfo, ...]:
        """The rules about ``partner`` and ``purpose`` (whatever their fields, windows and conditions), in
        policy order. Kept for declared names only: an unknown name is scanned each time and never cached."""
        key = (partner, purpose)
        found = self._rules.get(key)
        if found is None:
            found = tuple(r for r in self.model.rules if r.partners.matches(partner) and r.purposes.matches(purpose))
            if partner in self.model.partners and purpose in self.model.purposes:
                found = self._rules.setdefault(key, found)
        return found
