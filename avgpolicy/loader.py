"""Loader: load()/loads() collect .avg texts, parse and check them all, and build a Policy."""

from __future__ import annotations

import datetime
import hashlib
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from . import __version__ as _pkg_version
from . import model, nodes
from .checker import check
from .errors import Diagnostic, PolicyError
from .parser import parse
from .policy import Policy
from .pseudonym import Pseudonymizer, seal_key
from .source import Source

DEFAULT_TIMEZONE = "Europe/Amsterdam"
LANGUAGE_VERSION = "1"


def collect_paths(paths: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """Files as given, and every ``*.avg`` below each folder (sorted, recursively)."""
    out: list[Path] = []
    for p in paths:
        path = Path(p)
        if path.is_dir():
            out.extend(sorted(q for q in path.rglob("*.avg") if q.is_file()))
        elif path.exists():
            out.append(path)
        else:
            raise FileNotFoundError(f"no such policy file or folder: {str(path)!r}")
    return out


def read_sources(paths: Iterable[str | os.PathLike[str]]) -> list[Source]:
    sources = []
    for path in collect_paths(paths):
        raw = path.read_bytes()
        text = raw.decode("utf-8", errors="replace")
        sources.append(Source(str(path), text))
    return sources


def content_version(sources: Iterable[Source], timezone: str) -> str:
    """A hash of the set's content, independent of file names and order."""
    digests = sorted(hashlib.sha256(s.text.encode("utf-8")).hexdigest() for s in sources)
    h = hashlib.sha256()
    h.update(f"avgpolicy {_pkg_version} language {LANGUAGE_VERSION} tz {timezone}\n".encode())
    for d in digests:
        h.update(d.encode() + b"\n")
    return h.hexdigest()[:16]


def _zone(timezone: str) -> ZoneInfo:
    if not isinstance(timezone, str):
        raise TypeError(f"timezone must be a str such as 'Europe/Amsterdam', not {type(timezone).__name__}")
    try:
        return ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {timezone!r}; use an IANA name such as 'Europe/Amsterdam'") from exc


def analyse(sources: list[Source], *, today: datetime.date | None = None
            ) -> tuple[list[nodes.File], list[Diagnostic]]:
    """Parse and check: the files and every diagnostic (errors and warnings)."""
    files: list[nodes.File] = []
    diagnostics: list[Diagnostic] = []
    for source in sources:
        f, diags = parse(source)
        files.append(f)
        diagnostics.extend(diags)
    diagnostics.extend(check(files, today=today))
    # the one place every diagnostic passes: an identical one is reported once (issue 16, item 3)
    return files, list(dict.fromkeys(diagnostics))


def build_policy(sources: list[Source], *, timezone: str = DEFAULT_TIMEZONE,
                 pseudonym_key: bytes | Pseudonymizer | None = None, cache_size: int = 1024,
                 today: datetime.date | None = None) -> Policy:
    sealed = seal_key(pseudonym_key)  # from here on no frame holds the key's bytes
    del pseudonym_key
    zone = _zone(timezone)
    if today is not None and (not isinstance(today, datetime.date) or isinstance(today, datetime.datetime)):
        raise TypeError("today must be a datetime.date")
    if not sources:
        raise ValueError("no policy text given: name at least one .avg file or folder")
    with model.paused_gc():  # one pause over parse, check and build, not one per phase
        files, diagnostics = analyse(sources, today=today)
        text_by_file = {s.file: s.text for s in sources}
        if any(d.is_error for d in diagnostics):
            raise PolicyError(diagnostics, text_by_file)
        resolved = model.build(files)
    warnings = tuple(sorted((d for d in diagnostics if not d.is_error),
                            key=lambda d: (d.file, d.line, d.column, d.code)))
    return Policy(resolved, version=content_version(sources, timezone), zone=zone, warnings=warnings,
                  sources=text_by_file, pseudonym_key=sealed, cache_size=cache_size)


def _attach_export_log(policy: Policy, log: object) -> Policy:
    """``load(..., export_log=)``: the log ``policy.export`` records in (the subpackage is imported
    only when a log is given)."""
    if log is not None:
        from .exports.log import ExportLog

        policy.export_log = log if isinstance(log, ExportLog) else ExportLog(log)  # type: ignore[arg-type]
    return policy


def load(*paths: str | os.PathLike[str], timezone: str = DEFAULT_TIMEZONE,
         pseudonym_key: bytes | None = None, cache_size: int = 1024,
         today: datetime.date | None = None, export_log: object = None) -> Policy:
    """Load a policy set from files and folders (every ``*.avg`` below a folder).

    ``export_log`` (an ``avgpolicy.ExportLog`` or its path/DSN) is where ``policy.export`` records.

    ``today`` is the date the "window has ended" warning (W005) is judged against;
    by default the current date. The ``pseudonym_key`` is turned into the keyed function
    that derives pseudonyms before anything else happens, and not kept.
    """
    sealed = seal_key(pseudonym_key)
    del pseudonym_key
    if not paths:
        raise TypeError("load() needs at least one file or folder")
    return _attach_export_log(build_policy(read_sources(paths), timezone=timezone, pseudonym_key=sealed,
                                           cache_size=cache_size, today=today), export_log)


def loads(text: str | Mapping[str, str], *, timezone: str = DEFAULT_TIMEZONE,
          pseudonym_key: bytes | None = None, cache_size: int = 1024,
          today: datetime.date | None = None, export_log: object = None) -> Policy:
    """Load a policy set from one text, or from a mapping of names to texts (see ``load``)."""
    sealed = seal_key(pseudonym_key)
    del pseudonym_key
    if isinstance(text, str):
        sources = [Source("<policy>", text)]
    elif isinstance(text, Mapping):
        sources = []
        for name, body in text.items():
            if not isinstance(name, str) or not isinstance(body, str):
                raise TypeError("loads() takes a mapping of file names (str) to policy texts (str)")
            sources.append(Source(name, body))
    else:
        raise TypeError(f"loads() takes a str or a mapping of str to str, not {type(text).__name__}")
    return _attach_export_log(build_policy(sources, timezone=timezone, pseudonym_key=sealed,
                                           cache_size=cache_size, today=today), export_log)
