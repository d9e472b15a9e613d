"""Shared fixtures: every contract test runs once per backend."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"

BACKENDS = ["python", "rust"]


def backend_module(name: str):
    """The module holding a backend's classes: `banditkit.python` or `banditkit_rs`."""
    return importlib.import_module("banditkit.python" if name == "python" else "banditkit_rs")


@pytest.fixture(params=BACKENDS)
def bk(request):
    """The backend module (classes LinearBandit, TSPar, LogisticBandit, ...)."""
    return backend_module(request.param)


@pytest.fixture
def py_bk():
    return backend_module("python")


@pytest.fixture
def rs_bk():
    return backend_module("rust")


# Fixtures kept in their own modules: the distributed tests' local Ray cluster (head + one
# worker node), the store tests' SQLite and PostgreSQL.
from ray_cluster import ray_cluster  # noqa: E402, F401
from store_fixtures import postgres_server, postgres_url, store, store_url  # noqa: E402, F401
