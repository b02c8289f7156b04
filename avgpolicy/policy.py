"""Policy: an immutable, loaded policy set; decide/compile/filter live here."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from zoneinfo import ZoneInfo

from .errors import Diagnostic
from .model import PolicyModel


class Policy:
    """A validated policy set. Immutable and safe to share between threads."""

    def __init__(self, model: PolicyModel, *, version: str, zone: ZoneInfo,
                 warnings: tuple[Diagnostic, ...] = (), sources: Mapping[str, str] | None = None,
                 pseudonym_key: bytes | None = None, cache_size: int = 1024) -> None:
        self.model = model
        self.version = version
        self.zone = zone
        self.warnings = warnings
        self.sources: Mapping[str, str] = MappingProxyType(dict(sources or {}))
        self._pseudonym_key = pseudonym_key
        self._cache_size = cache_size

    @property
    def timezone(self) -> str:
        return self.zone.key

    @property
    def has_pseudonym_key(self) -> bool:
        return self._pseudonym_key is not None

    def __repr__(self) -> str:
        m = self.model
        return (f"<Policy {self.version} rules={len(m.rules)} partners={len(m.partners)} "
                f"purposes={len(m.purposes)} tz={self.timezone}>")
