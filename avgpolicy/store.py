"""Reloading: a PolicyStore serves the newest valid version of a policy folder, swapped atomically.

``PolicyStore("policies/")`` loads the set once (raising ``PolicyError`` if it is
broken: there is nothing to serve yet). ``refresh()`` looks for changes: file
names, sizes and modification times are the cheap test, a hash of the content
confirms. A changed set is loaded in full from the bytes that were hashed and
only then swapped in, by one reference assignment, so a reader sees either the
old or the new ``Policy``, never a mix. A set with errors is not swapped in: the
previous version keeps serving, the problem is kept in ``last_error`` and passed
to ``on_error`` (and logged), once per distinct broken content. ``start(interval)``
polls in a daemon thread; ``stop()`` ends it.

The store never shows the pseudonym key: it passes ``load_kwargs`` to the loader
and keeps them out of its repr, its errors and its log lines.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from .decision import Decision
from .errors import PolicyError
from .loader import build_policy, collect_paths
from .policy import Policy
from .source import Source

log = logging.getLogger("avgpolicy.store")

#: (path, size, mtime_ns) per file, in collection order: the cheap change test.
Fingerprint = tuple[tuple[str, int, int], ...]
ErrorHandler = Callable[[BaseException], object]


class PolicyStore:
    """The current version of a policy set read from files and folders, reloaded when it changes."""

    def __init__(self, *paths: str | os.PathLike[str], on_error: ErrorHandler | None = None,
                 **load_kwargs: Any) -> None:
        if not paths:
            raise TypeError("PolicyStore() needs at least one file or folder")
        unknown = set(load_kwargs) - {"timezone", "pseudonym_key", "cache_size"}
        if unknown:
            raise TypeError(f"PolicyStore() got unexpected keyword argument(s): {', '.join(sorted(unknown))}")
        if on_error is not None and not callable(on_error):
            raise TypeError("on_error must be a callable taking the exception")
        self._paths: tuple[Path, ...] = tuple(Path(p) for p in paths)
        self._load_kwargs = dict(load_kwargs)
        self._on_error = on_error
        self._lock = threading.Lock()  # one refresh at a time; readers never take it
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_error: BaseException | None = None
        self._failed_digest: str | None = None
        self.reloads = 0
        fingerprint, sources, digest = self._read()
        self._policy: Policy = self._build(sources)  # raises PolicyError: nothing to serve yet
        self._fingerprint, self._digest = fingerprint, digest

    # -- the current version ----------------------------------------------------

    @property
    def policy(self) -> Policy:
        """The Policy currently served (a complete, validated set)."""
        return self._policy

    @property
    def version(self) -> str:
        return self._policy.version

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

    def refresh(self, *, force: bool = False) -> bool:
        """Reload if the files changed; True when a new version was swapped in.

        ``force=True`` skips the cheap size/mtime test and compares content hashes (for files
        rewritten within one timestamp tick at the same size). Never raises for a broken or
        unreadable set: the previous version stays, and the problem is in ``last_error``
        (cleared by the next successful load, or when the files are back to the served content).
        """
        with self._lock:
            try:
                if not force and self._stat() == self._fingerprint:
                    return False
                fingerprint, sources, digest = self._read()
            except (OSError, ValueError) as exc:
                self._report(exc, None)
                return False
            if digest == self._digest:  # touched, not changed
                self._fingerprint = fingerprint
                self._recovered()
                return False
            if digest == self._failed_digest:  # the same broken content: reported already
                return False
            try:
                policy = self._build(sources)
            except (PolicyError, ValueError, TypeError) as exc:
                self._report(exc, digest)
                return False
            self._policy = policy  # the swap: one reference assignment of a complete Policy
            self._fingerprint, self._digest = fingerprint, digest
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

    def _poll(self, interval: float) -> None:
        while not self._stop.wait(interval):
            try:
                self.refresh()
            except Exception as exc:  # pragma: no cover - refresh reports what it expects itself
                self._report(exc, None)

    def _files(self) -> list[Path]:
        return collect_paths(self._paths)

    def _stat(self) -> Fingerprint:
        out = []
        for path in self._files():
            st = path.stat()
            out.append((str(path), st.st_size, st.st_mtime_ns))
        return tuple(out)

    def _read(self) -> tuple[Fingerprint, list[Source], str]:
        """Fingerprint, sources and content hash, read so that the three agree.

        A file that changes while it is read (its size or mtime moved) is read again, a
        few times; what is hashed is exactly what is loaded.
        """
        for _ in range(5):
            before = self._stat()
            sources: list[Source] = []
            h = hashlib.sha256()
            for name, _size, _mtime in before:
                raw = Path(name).read_bytes()
                h.update(len(name.encode()).to_bytes(8, "big") + name.encode())
                h.update(len(raw).to_bytes(8, "big") + raw)
                sources.append(Source(name, raw.decode("utf-8", errors="replace")))
            if self._stat() == before:
                return before, sources, h.hexdigest()
        raise OSError("the policy files kept changing while they were read; will retry")

    def _build(self, sources: Sequence[Source]) -> Policy:
        return build_policy(list(sources), **self._load_kwargs)

    def _report(self, exc: BaseException, digest: str | None) -> None:
        self.last_error = exc
        self._failed_digest = digest
        if isinstance(exc, PolicyError):
            headlines = "; ".join(d.headline() for d in exc.errors[:5])
            more = len(exc.errors) - 5
            log.warning("policy set not reloaded (still serving %s): %s%s", self._policy_version(), headlines,
                        f"; and {more} more" if more > 0 else "")
        else:
            log.warning("policy set not reloaded (still serving %s): %s: %s", self._policy_version(),
                        type(exc).__name__, exc)
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

