"""Reloading: a PolicyStore serves the newest complete version of a policy folder, swapped atomically.

``PolicyStore("policies/")`` loads the set once (raising ``PolicyError`` if it is
broken: there is nothing to serve yet). ``refresh()`` looks for changes and
``start(interval)`` polls for them in a daemon thread (``stop()`` ends it).

A version is only served once it is known to be complete (docs/cookbook.md,
"Deploying a policy change safely"):

* **Atomic deploys are read atomically.** Each configured path is resolved
  (symlinks followed) once per read, and every file is read from that resolved
  place; so switching a symlink (``current -> releases/v42``) or renaming a
  finished file over the old one moves the store from one complete set to the
  next, never to a mix.
* **Everything else must settle.** A set that changed is served only when it has
  stayed the same for ``settle`` seconds (default 1.0): the content read now must
  equal, byte for byte and stat for stat (size, modification and change time,
  inode), what was read when the change was first seen, and every read in
  between. A file being written in place, or deleted and recreated, keeps changing,
  so none of its torn states is served; a file that is briefly missing during a
  deploy comes back before the set settles, and its rules never drop out.
* A set with errors is never served: the previous version keeps serving, the
  problem is kept in ``last_error`` (and ``status()``), passed to ``on_error`` and
  logged, once per distinct broken content.

A new version is swapped in by one reference assignment of a fully built
``Policy``, so a reader sees either the old or the new one. The store never shows
the pseudonym key: it keeps only the keyed function that derives pseudonyms, and
keeps it out of its repr, its errors and its log lines.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .decision import Decision
from .errors import PolicyError
from .loader import build_policy, collect_paths
from .policy import Policy
from .pseudonym import seal_key
from .source import Source

log = logging.getLogger("avgpolicy.store")

#: (path, size, mtime_ns, ctime_ns, inode) per file, in collection order: the cheap change test.
#: ctime cannot be set by a writer (os.utime sets only atime and mtime), so two different writes
#: never share a fingerprint.
Fingerprint = tuple[tuple[str, int, int, int, int], ...]
ErrorHandler = Callable[[BaseException], object]
DEFAULT_SETTLE = 1.0


@dataclass(frozen=True)
class _Snapshot:
    fingerprint: Fingerprint
    sources: tuple[Source, ...]
    digest: str


@dataclass(frozen=True)
class StoreStatus:
    """What a health check needs to know about a PolicyStore (``store.status()``).

    ``ok`` is False while the files on disk hold a set that could not be loaded (the
    previous version keeps serving); ``error`` then says why, in one line without the key.
    ``pending`` is True while a change was seen and is waiting to settle.
    """

    version: str
    ok: bool
    error: str | None
    error_type: str | None
    reloads: int
    pending: bool
    loaded_at: float
    checked_at: float | None
    polling: bool

    def to_dict(self) -> dict[str, Any]:
        return {"version": self.version, "ok": self.ok, "error": self.error, "error_type": self.error_type,
                "reloads": self.reloads, "pending": self.pending, "loaded_at": self.loaded_at,
                "checked_at": self.checked_at, "polling": self.polling}


def describe_error(exc: BaseException) -> str:
    """One line about a reload error: the first diagnostics of a PolicyError, else the exception."""
    if isinstance(exc, PolicyError):
        headlines = "; ".join(d.headline() for d in exc.errors[:5])
        more = len(exc.errors) - 5
        return headlines + (f"; and {more} more" if more > 0 else "")
    return f"{type(exc).__name__}: {exc}"


class _Changing(OSError):
    """The files changed while they were read (a write in progress): not settled, not an error."""


class PolicyStore:
    """The current version of a policy set read from files and folders, reloaded when it changes."""

    def __init__(self, *paths: str | os.PathLike[str], on_error: ErrorHandler | None = None,
                 settle: float = DEFAULT_SETTLE, **load_kwargs: Any) -> None:
        # first of all: seal the key, so that no frame below (nor this one) holds it as bytes
        sealed = seal_key(load_kwargs.pop("pseudonym_key", None))
        if not paths:
            raise TypeError("PolicyStore() needs at least one file or folder")
        unknown = set(load_kwargs) - {"timezone", "cache_size"}
        if unknown:
            raise TypeError(f"PolicyStore() got unexpected keyword argument(s): {', '.join(sorted(unknown))}")
        if on_error is not None and not callable(on_error):
            raise TypeError("on_error must be a callable taking the exception")
        if not isinstance(settle, (int, float)) or isinstance(settle, bool) or not settle >= 0:
            raise ValueError("settle must be a number of seconds >= 0")
        self._paths: tuple[Path, ...] = tuple(Path(p) for p in paths)
        self._load_kwargs: dict[str, Any] = dict(load_kwargs, pseudonym_key=sealed)
        self._on_error = on_error
        self._settle = float(settle)
        self._lock = threading.Lock()  # one refresh at a time; readers never take it
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_error: BaseException | None = None
        self._failed_digest: str | None = None
        self._pending: tuple[_Snapshot, float] | None = None  # a change seen, and since when
        self._checked_at: float | None = None
        self.reloads = 0
        snap = self._read()
        self._policy: Policy = self._build(snap.sources)  # raises PolicyError: nothing to serve yet
        self._fingerprint, self._digest = snap.fingerprint, snap.digest
        self._loaded_at = time.time()

    # -- the current version ----------------------------------------------------

    @property
    def policy(self) -> Policy:
        """The Policy currently served (a complete, validated set)."""
        return self._policy

    @property
    def version(self) -> str:
        return self._policy.version

    @property
    def settle(self) -> float:
        """Seconds a changed set must stay unchanged before it is loaded."""
        return self._settle

    def status(self) -> StoreStatus:
        """The version served, whether the files on disk loaded, and if not why (for /readyz)."""
        err = self.last_error
        return StoreStatus(version=self._policy.version, ok=err is None,
                           error=None if err is None else describe_error(err),
                           error_type=None if err is None else type(err).__name__,
                           reloads=self.reloads, pending=self._pending is not None, loaded_at=self._loaded_at,
                           checked_at=self._checked_at, polling=self.polling)

    def decide(self, *args: Any, **kwargs: Any) -> Decision:
        """``Policy.decide`` on the current version; the decision carries its ``policy_version``."""
        return self._policy.decide(*args, **kwargs)

    def compile(self, *args: Any, **kwargs: Any) -> Any:
        """``Policy.compile`` on the current version (the function stays bound to that version)."""
        return self._policy.compile(*args, **kwargs)

    def filter(self, *args: Any, **kwargs: Any) -> Iterator[dict[str, Any]]:
        """``Policy.filter`` on the current version: one batch is filtered under one version."""
        return self._policy.filter(*args, **kwargs)

    # -- reloading ---------------------------------------------------------------

    def refresh(self, *, force: bool = False, wait: bool = True) -> bool:
        """Reload if the files changed and settled; True when a new version was swapped in.

        A change is loaded only once the files have stayed the same for ``settle`` seconds.
        With ``wait=True`` (the default) this call waits that long itself and reads again;
        with ``wait=False`` (what the polling thread does) it notes the change and returns
        False, and a later call loads it if nothing changed meanwhile.

        ``force=True`` skips the cheap stat test and compares content hashes. Never raises for
        a broken or unreadable set: the previous version stays, and the problem is in
        ``last_error`` (cleared by the next successful load, or when the files are back to the
        served content).
        """
        with self._lock:
            self._checked_at = time.time()
            try:
                if not force and self._pending is None and self._stat_listed() == self._fingerprint:
                    return False
                snap = self._read()
            except _Changing:  # a write in progress: the set has not settled
                self._pending = None
                return False
            except (OSError, ValueError) as exc:
                self._pending = None
                self._report(exc, None)
                return False
            if snap.digest == self._digest:  # touched, or back to the served content
                self._fingerprint = snap.fingerprint
                self._pending = None
                self._recovered()
                return False
            settled = self._settled(snap, wait)
            if settled is None:
                return False
            if settled.digest == self._failed_digest:  # the same broken content: reported already
                return False
            try:
                policy = self._build(settled.sources)
            except (PolicyError, ValueError, TypeError) as exc:
                self._report(exc, settled.digest)
                return False
            self._policy = policy  # the swap: one reference assignment of a complete Policy
            self._fingerprint, self._digest = settled.fingerprint, settled.digest
            self._loaded_at = time.time()
            self.reloads += 1
            self._recovered()
            log.info("policy set reloaded: version %s (%d rules)", policy.version, len(policy.model.rules))
            return True

    def start(self, interval: float = 2.0) -> PolicyStore:
        """Poll for changes every ``interval`` seconds in a daemon thread (until ``stop()``)."""
        if not isinstance(interval, (int, float)) or isinstance(interval, bool) or not interval > 0:
            raise ValueError("interval must be a positive number of seconds")
        if self._thread is not None and self._thread.is_alive():
            raise RuntimeError("this PolicyStore is already polling; call stop() first")
        self._stop.clear()
        self._thread = threading.Thread(target=self._poll, args=(float(interval),),
                                        name="avgpolicy-store", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float | None = None) -> None:
        """Stop polling and wait for the polling thread to end."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    @property
    def polling(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def __enter__(self) -> PolicyStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        paths = ", ".join(str(p) for p in self._paths)
        state = " (last reload failed)" if self.last_error is not None else ""
        return f"<PolicyStore {paths}: version {self._policy.version}{state}>"

    # -- internals ---------------------------------------------------------------

    def _settled(self, snap: _Snapshot, wait: bool) -> _Snapshot | None:
        """``snap`` when it has been the same for the settle interval (waiting for that if
        ``wait``), else None (the change is noted as pending). Called with the lock held."""
        if self._settle <= 0:
            return snap
        now = time.monotonic()
        pending = self._pending
        if pending is None or pending[0].fingerprint != snap.fingerprint or pending[0].digest != snap.digest:
            self._pending = pending = (snap, now)  # a new change: its quiet interval starts now
        remaining = pending[1] + self._settle - now
        if remaining > 0:
            if not wait:
                return None
            time.sleep(remaining)
            try:
                again = self._read()
            except _Changing:
                self._pending = None
                return None
            except (OSError, ValueError) as exc:
                self._pending = None
                self._report(exc, None)
                return None
            if again.fingerprint != snap.fingerprint or again.digest != snap.digest:
                self._pending = (again, time.monotonic())  # still changing: start over
                return None
        self._pending = None
        return snap

    def _poll(self, interval: float) -> None:
        while not self._stop.wait(interval):
            try:
                self.refresh(wait=False)
            except Exception as exc:  # pragma: no cover - refresh reports what it expects itself
                self._report(exc, None)

    def _files(self) -> list[Path]:
        # resolve each configured path once, so that every file of one read comes from the same
        # target of a symlink, even if the link is switched while the files are read
        return collect_paths([Path(os.path.realpath(p)) for p in self._paths])

    def _stat(self) -> Fingerprint:
        out = []
        for path in self._files():
            st = path.stat()
            out.append((str(path), st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino))
        return tuple(out)

    def _read(self) -> _Snapshot:
        """Fingerprint, sources and content hash, read so that the three agree.

        A file that changes while it is read (its stat moved, or it vanished after it was
        listed) is read again, a few times; what is hashed is exactly what is loaded. Still
        changing after that: ``_Changing`` (a write in progress, not an error).
        """
        for _ in range(5):
            before = self._stat_listed()
            if before is None:
                continue
            sources: list[Source] = []
            h = hashlib.sha256()
            try:
                for name, *_ in before:
                    raw = Path(name).read_bytes()
                    h.update(len(name.encode()).to_bytes(8, "big") + name.encode())
                    h.update(len(raw).to_bytes(8, "big") + raw)
                    sources.append(Source(name, raw.decode("utf-8", errors="replace")))
            except FileNotFoundError:
                continue
            if self._stat_listed() == before:
                return _Snapshot(before, tuple(sources), h.hexdigest())
        raise _Changing("the policy files kept changing while they were read")

    def _stat_listed(self) -> Fingerprint | None:
        """``_stat()``, or None when a listed file vanished before its stat (a change in progress);
        a configured path that is missing is an error (FileNotFoundError)."""
        try:
            return self._stat()
        except FileNotFoundError:
            for p in self._paths:
                if not os.path.exists(p):
                    raise
            return None

    def _build(self, sources: Sequence[Source]) -> Policy:
        return build_policy(list(sources), **self._load_kwargs)

    def _report(self, exc: BaseException, digest: str | None) -> None:
        self.last_error = exc
        self._failed_digest = digest
        log.warning("policy set not reloaded (still serving %s): %s", self._policy_version(), describe_error(exc))
        if self._on_error is not None:
            try:
                self._on_error(exc)
            except Exception:
                log.exception("the on_error callback of a PolicyStore raised")

    def _recovered(self) -> None:
        self.last_error = None
        self._failed_digest = None

    def _policy_version(self) -> str:
        policy = getattr(self, "_policy", None)
        return policy.version if policy is not None else "nothing"
