"""Fixtures of the serve engine's in-process tests: the backend under test is installed as
`banditkit`'s public classes (what the policies use), for the length of one test."""

from __future__ import annotations

import pytest

import banditkit
from banditkit import _saving

NAMES = (
    "LinearBandit",
    "TSPar",
    "LogisticBandit",
    "LinUCB",
    "LinTS",
    "DoublyRobust",
    "ContextTree",
    "prob_best_gaussian",
    "prob_best_beta",
    "prob_best_mvn",
)


@pytest.fixture
def serve_bk(bk, monkeypatch: pytest.MonkeyPatch):
    """The `bk` backend module, installed as the active backend of `banditkit`."""
    for name in NAMES:
        monkeypatch.setattr(banditkit, name, getattr(bk, name))
    monkeypatch.setattr(_saving, "MODULE", bk)
    return bk
