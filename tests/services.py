"""Real services for the tests: PostgreSQL, a Java runtime for Spark, headless Chromium.

Locally a test that needs a missing service skips with a message saying how to start it; in CI
(`AVG_REQUIRE_SERVICES=1`, set by `.ci/run`) it fails instead, so a service that did not start
can never hide behind a skip.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

REQUIRED = os.environ.get("AVG_REQUIRE_SERVICES") == "1"


def unavailable(what: str, how: str) -> None:
    """Skip (locally) or fail (in CI) because ``what`` is missing; ``how`` says how to get it."""
    message = f"{what} is not available: {how}"
    if REQUIRED:
        pytest.fail(message + " (AVG_REQUIRE_SERVICES=1: CI must run this test)", pytrace=False)
    pytest.skip(message)


def postgres_dsn() -> str:
    """The DSN of the test PostgreSQL server (``AVG_TEST_POSTGRES_DSN``), after checking it answers."""
    dsn = os.environ.get("AVG_TEST_POSTGRES_DSN")
    how = 'run `eval "$(bash .ci/postgres start)"` (needs the Debian package postgresql)'
    if not dsn:
        unavailable("PostgreSQL (AVG_TEST_POSTGRES_DSN unset)", how)
    try:
        import psycopg
    except ImportError:
        unavailable("psycopg", "pip install '.[postgres]'")
    try:
        with psycopg.connect(dsn, connect_timeout=5) as conn:
            conn.execute("select 1")
    except psycopg.Error as exc:
        unavailable(f"PostgreSQL at {dsn} ({exc.__class__.__name__}: {exc})", how)
    return dsn  # type: ignore[return-value]


def java_for_spark() -> None:
    """Skip (or fail in CI) unless pyspark and a Java runtime are installed."""
    try:
        import pyspark  # noqa: F401
    except ImportError:
        unavailable("pyspark", "pip install '.[spark]'")
    java = shutil.which("java")
    if java is None:
        unavailable("a Java runtime for Spark", "apt-get install -y default-jre-headless")
    probe = subprocess.run([java, "-version"], capture_output=True, timeout=60)
    if probe.returncode != 0:
        unavailable("a working Java runtime", "apt-get install -y default-jre-headless")


def chromium() -> str:
    """The path of a headless Chromium."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    unavailable("Chromium", "apt-get install -y chromium")
    raise AssertionError("unreachable")


CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--hide-scrollbars")
