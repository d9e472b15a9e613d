"""Fixtures of the store tests: every store test runs on SQLite and on PostgreSQL.

PostgreSQL comes from `BANDITKIT_TEST_POSTGRES_URL` (set by `.ci/run` through
`.ci/postgres.sh`). Without it, a developer's run starts a throw-away cluster itself when
`initdb` is installed, and otherwise skips the PostgreSQL tests with the reason; under CI
(`CI=true`) a missing server fails them instead. Each test gets its own PostgreSQL schema
(through `search_path` in the URL), dropped afterwards, so tests never see each other's rows.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
STORE_BACKENDS = ["sqlite", "postgresql"]


def _unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"PostgreSQL store tests must run under CI: {reason}")
    pytest.skip(f"PostgreSQL store tests skipped: {reason}")


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """The URL of a PostgreSQL database the tests may create schemas in."""
    try:
        import psycopg  # noqa: F401
        import psycopg_pool  # noqa: F401
    except ImportError as exc:
        _unavailable(f"{exc.name} is not installed (pip install '.[postgres]')")
    url = os.environ.get("BANDITKIT_TEST_POSTGRES_URL")
    if url:
        yield url
        return
    if os.environ.get("CI", "").lower() == "true":
        _unavailable("BANDITKIT_TEST_POSTGRES_URL is not set (.ci/run starts the server)")
    started = subprocess.run(
        ["bash", str(ROOT / ".ci" / "postgres.sh"), "start", "--no-install"],
        capture_output=True,
        text=True,
    )
    if started.returncode != 0:
        _unavailable(
            "BANDITKIT_TEST_POSTGRES_URL is not set and no local cluster could be started "
            f"({started.stderr.strip().splitlines()[-1] if started.stderr.strip() else '?'})"
        )
    env = {}
    for line in started.stdout.splitlines():
        key, _, value = line.removeprefix("export ").partition("=")
        env[key] = shlex.split(value)[0]
    try:
        yield env["BANDITKIT_TEST_POSTGRES_URL"]
    finally:
        subprocess.run(["bash", str(ROOT / ".ci" / "postgres.sh"), "stop", env["BANDITKIT_PG_DIR"]])


def with_search_path(url: str, schema: str) -> str:
    sep = "&" if "?" in url else "?"
    return f"{url}{sep}options=-csearch_path%3D{schema}"


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """A URL whose tables live in a fresh schema of their own, dropped after the test."""
    import psycopg

    schema = f"bk_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        yield with_search_path(postgres_server, schema)
    finally:
        with psycopg.connect(postgres_server, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture(params=STORE_BACKENDS)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A URL of an empty store, once per store backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def store(store_url: str):
    from banditkit.store import open_store

    with open_store(store_url) as s:
        yield s
