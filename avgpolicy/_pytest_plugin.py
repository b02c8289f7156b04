"""pytest plugin (entry point ``pytest11``): collects the ``test`` blocks of ``.avg`` files as test items.

Which files: ``.avg`` files under the paths given on the command line
(``pytest policies/``). Files reached only through ``testpaths`` or a bare
``pytest`` are left alone unless the ini option ``avgpolicy_collect`` is
``always``; ``never`` switches collection off. (A project's own ``pytest`` run
therefore never trips over ``.avg`` fixtures in its ``tests/`` folder.)

Which set a file belongs to: the nearest folder, from the file's own folder up
(not above the invocation folder, a project root or eight levels),
whose ``.avg`` files (recursively) declare the ``subject`` dataset, i.e. hold
the catalogue. That whole folder tree is loaded once, and
each file yields the tests written in it. A set that does not load becomes one
failing item showing every diagnostic.

``--avg-coverage`` lists, after the run, the rules of each set that no test that
ran exercised (as ``avgpolicy test --coverage`` does).

Kept light: avgpolicy itself is imported only when an ``.avg`` file is collected.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

_SUBJECT = re.compile(r'^\s*dataset\s+[A-Za-z_][A-Za-z0-9_-]*\s*(?:"(?:[^"\\]|\\.)*"\s*)?subject\b', re.M)
_MODES = ("auto", "always", "never")
_sets_key = pytest.StashKey[dict[Path, Any]]()
_reported_key = pytest.StashKey[set[Path]]()
_exercised_key = pytest.StashKey[dict[Path, set[str]]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("avgpolicy", "avgpolicy policy tests")
    group.addoption("--avg-coverage", action="store_true", default=False,
                    help="after the run, list the rules of each policy set that no test exercised")
    parser.addini("avgpolicy_collect",
                  "collect `test` blocks of .avg files: auto (only under paths given on the command line), "
                  "always, never", default="auto")


def pytest_configure(config: pytest.Config) -> None:
    _mode(config)  # a wrong value is a usage error before anything is collected


def _mode(config: pytest.Config) -> str:
    value = str(config.getini("avgpolicy_collect")).strip().lower()
    value = {"true": "always", "1": "always", "yes": "always", "on": "always",
             "false": "never", "0": "never", "no": "never", "off": "never"}.get(value, value)
    if value not in _MODES:
        raise pytest.UsageError(f"avgpolicy_collect = {value!r}: use one of {', '.join(_MODES)}")
    return value


def _explicit(config: pytest.Config, path: Path) -> bool:
    """Is ``path`` at or under a path given on the command line?"""
    if config.args_source != pytest.Config.ArgsSource.ARGS:
        return False
    base = Path(config.invocation_params.dir)
    for arg in config.args:
        given = (base / arg.split("::")[0]).resolve()
        if path.resolve().is_relative_to(given):
            return True
    return False


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if file_path.suffix != ".avg":
        return None
    mode = _mode(parent.config)
    if mode == "never" or (mode == "auto" and not _explicit(parent.config, file_path)):
        return None
    return AvgFile.from_parent(parent, path=file_path)


def _declares_subject(folder: Path) -> bool:
    for p in folder.rglob("*.avg"):
        try:
            if _SUBJECT.search(p.read_text(encoding="utf-8", errors="replace")):
                return True
        except OSError:
            continue
    return False


_PROJECT_MARKERS = (".git", "pyproject.toml", "setup.py", "setup.cfg", "tox.ini", "pytest.ini")
_MAX_LEVELS = 8


def set_root(path: Path, *bounds: Path) -> Path:
    """The folder whose tree is the policy set of ``path`` (see the module docstring).

    Walks up from the file's folder and stops at the first folder whose ``.avg`` files
    declare the subject dataset; it never goes above the highest of ``bounds`` (the
    invocation folder) that holds the file, a project root (``.git``, ``pyproject.toml``,
    ``pytest.ini``, ...), the home folder or eight levels. (pytest's rootdir is no bound:
    without an ini file it is the deepest common folder of the arguments.) Without a catalogue the
    file's own folder is the set (which then fails to load with a clear diagnostic).
    """
    path = path.resolve()
    folder = path.parent
    limits = [b.resolve() for b in bounds if path.is_relative_to(b.resolve())]
    top = min(limits, key=lambda b: len(b.parts)) if limits else None
    stops = {Path.home().resolve(), Path(folder.anchor)}
    for _ in range(_MAX_LEVELS):
        if folder in stops:
            break
        if _declares_subject(folder):
            return folder
        if folder == top or any((folder / m).exists() for m in _PROJECT_MARKERS):
            break
        folder = folder.parent
    return path.parent


def _load(config: pytest.Config, root: Path) -> Any:
    """The loaded policy for ``root`` (cached per session), or the exception loading raised."""
    sets = config.stash.setdefault(_sets_key, {})
    if root not in sets:
        import avgpolicy

        # load through a path relative to the invocation folder when possible, so that
        # reasons and failures show short file names
        base = Path(config.invocation_params.dir).resolve()
        where = root.relative_to(base) if root.is_relative_to(base) else root
        try:
            sets[root] = avgpolicy.load(where if where != Path(".") else base)
        except Exception as exc:  # a set that does not load becomes a failing item
            sets[root] = exc
    return sets[root]


class AvgFile(pytest.File):
    """One ``.avg`` file: its ``test`` blocks, decided against the whole set it belongs to."""

    def collect(self) -> Iterator[pytest.Item]:
        root = set_root(self.path, Path(self.config.invocation_params.dir))
        loaded = _load(self.config, root)
        if isinstance(loaded, Exception):
            reported = self.config.stash.setdefault(_reported_key, set())
            if root not in reported:
                reported.add(root)
                yield AvgLoadItem.from_parent(self, name=f"load[{root.name}]", error=loaded, root=root)
            return
        here = self.path.resolve()
        base = Path(self.config.invocation_params.dir)
        for test in loaded.model.tests:
            if test.span is not None and (base / test.span.file).resolve() == here:
                yield AvgTestItem.from_parent(self, name=test.name.value, policy=loaded, test=test, root=root)


class AvgTestFailed(Exception):
    """A ``test`` block whose expectations did not hold."""


class AvgTestItem(pytest.Item):
    """One ``test`` block."""

    def __init__(self, *, policy: Any, test: Any, root: Path, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.policy = policy
        self.test = test
        self.root = root
        self.result: Any = None

    def runtest(self) -> None:
        from avgpolicy.testing import run_test

        self.result, exercised = run_test(self.policy, self.test)
        self.config.stash.setdefault(_exercised_key, {}).setdefault(self.root, set()).update(exercised)
        if not self.result.passed:
            raise AvgTestFailed(self.result.describe_failure())

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, AvgTestFailed):
            text = str(excinfo.value)
            if self.result is not None and self.result.explanation:
                text += "\n\nthe decision:\n" + self.result.explanation
            return text
        return str(super().repr_failure(excinfo, style=style))

    def reportinfo(self) -> tuple[Path, int | None, str]:
        line = self.test.span.line - 1 if self.test.span else None
        return self.path, line, f"avg test {self.name}"


class AvgLoadItem(pytest.Item):
    """A policy set that did not load: fails with every diagnostic."""

    def __init__(self, *, error: Exception, root: Path, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.error = error
        self.root = root

    def runtest(self) -> None:
        raise self.error

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        return f"the policy set in {self.root} does not load:\n\n{excinfo.value}"

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, f"avg policy set {self.root}"


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    """With ``--avg-coverage``: per policy set, the rules no test that ran exercised."""
    if not config.getoption("avg_coverage"):
        return
    exercised = config.stash.get(_exercised_key, {})
    for root, loaded in sorted(config.stash.get(_sets_key, {}).items()):
        if isinstance(loaded, Exception):
            continue
        rules = loaded.model.rules
        untested = [r for r in rules if r.name not in exercised.get(root, set())]
        terminalreporter.write_sep("-", f"avgpolicy rule coverage: {root}")
        terminalreporter.write_line(f"{len(rules) - len(untested)}/{len(rules)} rules exercised")
        for r in untested:
            where = f"  {r.span.file}:{r.span.line}" if r.span else ""
            terminalreporter.write_line(f"  untested {r.name}{where}")
