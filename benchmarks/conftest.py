"""Benchmark collection and fixtures: ``benchmarks/bench_*.py`` are collected here, and only here.

Run with (the JSON's folder must exist)::

    mkdir -p .benchmarks && python -m pytest benchmarks -p no:cacheprovider --benchmark-json=.benchmarks/run.json

The plain ``python -m pytest`` run (``testpaths = ["tests"]``) never sees these files.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any

import pytest

import avgpolicy
from benchmarks.support import assert_avgpolicy_agrees, policy, records


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Module | None:
    # a file named on the command line is collected by pytest's python plugin already
    if file_path.suffix == ".py" and file_path.name.startswith("bench_") and not parent.session.isinitpath(file_path):
        return pytest.Module.from_parent(parent, path=file_path)
    return None


@pytest.fixture(scope="session")
def agreed() -> set[int]:
    """Sizes whose scenario has been checked (engines against the baseline) in this run."""
    return set()


@pytest.fixture
def checked(agreed: set[int]):  # type: ignore[no-untyped-def]
    """``checked(size)``: the set of that size, after its scenario answers were checked once."""
    def get(size: int) -> avgpolicy.Policy:
        if size not in agreed:
            assert_avgpolicy_agrees(size, records())
            agreed.add(size)
        return policy(size)
    return get


_LOAD_AT_START: list[float] = []


def pytest_configure(config: pytest.Config) -> None:
    if hasattr(os, "getloadavg"):
        _LOAD_AT_START[:] = os.getloadavg()


def pytest_benchmark_update_machine_info(config: pytest.Config, machine_info: dict[str, Any]) -> None:
    """Record what the report needs about the machine: cores, CPU model, package versions."""
    from importlib import metadata

    model = "?"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "?")
    except OSError:
        model = platform.processor() or "?"
    packages = {}
    for name in ("cedarpy", "casbin", "lark", "pytest-benchmark"):
        try:
            packages[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            packages[name] = "not installed"
    packages["avgpolicy"] = avgpolicy.__version__
    load = list(os.getloadavg()) if hasattr(os, "getloadavg") else []
    machine_info["avgpolicy"] = {"nproc": os.cpu_count(), "cpu_model": model, "packages": packages,
                                 "loadavg_start": _LOAD_AT_START, "loadavg_end": load}
