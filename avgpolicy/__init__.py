"""avgpolicy: decide, field by field, which student data may go to which partner under the AVG.

The public names are re-exported here and imported on first use (PEP 562), so that
importing a submodule (the pytest plugin, the CLI) does not load the parser.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from .decision import Consent as Consent
    from .decision import Decision as Decision
    from .decision import FieldDecision as FieldDecision
    from .decision import FilterReport as FilterReport
    from .decision import Reason as Reason
    from .errors import Diagnostic as Diagnostic
    from .errors import PolicyError as PolicyError
    from .errors import UnknownNameError as UnknownNameError
    from .exports import ExportLog as ExportLog
    from .exports import ExportLogError as ExportLogError
    from .loader import load as load
    from .loader import loads as loads
    from .policy import Policy as Policy
    from .sql.errors import NotTranslatable as NotTranslatable
    from .sql.plan import Plan as Plan
    from .store import PolicyStore as PolicyStore

_EXPORTS = {
    "Consent": ".decision", "Decision": ".decision", "FieldDecision": ".decision", "FilterReport": ".decision",
    "Reason": ".decision",
    "Diagnostic": ".errors", "PolicyError": ".errors", "UnknownNameError": ".errors",
    "ExportLog": ".exports", "ExportLogError": ".exports",
    "load": ".loader", "loads": ".loader",
    "Policy": ".policy", "PolicyStore": ".store",
    "NotTranslatable": ".sql.errors", "Plan": ".sql.plan",
}

__all__ = ["Consent", "Decision", "Diagnostic", "FieldDecision", "FilterReport", "NotTranslatable", "Plan", "Policy",
           "PolicyError", "PolicyStore", "Reason", "__version__", "load", "loads"]

__all__ += ["ExportLog", "ExportLogError"]  # the export log (avgpolicy/exports)
__all__ += ["UnknownNameError"]  # compile/filter/plan/export of an undeclared partner or purpose


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'avgpolicy' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
