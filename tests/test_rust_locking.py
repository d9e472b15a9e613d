"""Rust backend: the per-object lock is never waited for while holding the GIL. Labels whose
`__eq__`/`__hash__` release the GIL (run Python that sleeps) make a thread give up the GIL while
it holds an object's lock; other threads then wait for that lock: with the GIL held this would
deadlock. The calls must all complete, and the result must be that of the same calls in turn."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

banditkit_rs = pytest.importorskip("banditkit_rs")

THREADS, CALLS, D = 4, 40, 5


class SlowLabel:
    """An arm label whose comparisons release the GIL."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __hash__(self) -> int:
        time.sleep(0)
        return hash(self.name)

    def __eq__(self, other: object) -> bool:
        time.sleep(0)
        return isinstance(other, SlowLabel) and other.name == self.name

    def __repr__(self) -> str:
        return f"SlowLabel({self.name!r})"


@pytest.mark.parametrize("cls", ["LinUCB", "LinTS"])
def test_labels_that_release_the_gil_do_not_deadlock(cls):
    labels = [SlowLabel(n) for n in "abc"]
    x = np.linspace(-1.0, 1.0, D)

    def make():
        return getattr(banditkit_rs, cls)(labels, D, seed=1)

    shared, errors = make(), []

    def work(k: int) -> None:
        try:
            for i in range(CALLS):
                shared.update(labels[(k + i) % 3], x * (i % 3 + 1), float(k))
                shared.theta(labels[i % 3])
                shared.get_stats()
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "deadlock"
    assert not errors
    stats = shared.get_stats()
    assert stats["total_pulls"] == THREADS * CALLS
    # Gram matrices are sums of the same rank-1 terms whatever the order: equal to rounding.
    sequential = make()
    for k in range(THREADS):
        for i in range(CALLS):
            sequential.update(labels[(k + i) % 3], x * (i % 3 + 1), float(k))
    for label in labels:
        np.testing.assert_allclose(shared.gram(label), sequential.gram(label), rtol=1e-12)
        np.testing.assert_allclose(shared.b(label), sequential.b(label), rtol=1e-12, atol=1e-12)
