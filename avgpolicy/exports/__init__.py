"""The export log: who received what, about whom, when (API contract v2, "the export log").

``ExportLog`` records every export made through ``policy.export(...)``; ``access`` renders the
GDPR art. 15 answer for one student and ``dashboard`` the one-page overview. Importing this
subpackage never loads the policy engine; the engine never imports it.
"""

from __future__ import annotations

from .log import Export, ExportLog, Problem, VerifyReport
from .record import Entry, ExportLogError, ExportRecord, Grant
from .store import JSONLinesStore, SQLiteStore, Store

__all__ = ["Entry", "Export", "ExportLog", "ExportLogError", "ExportRecord", "Grant", "JSONLinesStore", "Problem",
           "SQLiteStore", "Store", "VerifyReport"]
