"""The bootstrap kernels: deterministic per seed whatever the thread count (Rust), the Rust
kernels and their NumPy references agree in distribution, and both refuse the same inputs."""

from __future__ import annotations

import math
import os
import subprocess
import sys

import numpy as np
import pytest

import banditkit.python as ref

rs = pytest.importorskip("banditkit_rs")
BACKENDS = {"rust": rs, "python": ref}


@pytest.fixture(scope="module")
def terms():
    rng = np.random.default_rng(0)
    return rng.exponential(size=3000) * (rng.random(3000) < 0.3)


@pytest.mark.parametrize("mod", BACKENDS.values(), ids=BACKENDS.keys())
def test_same_seed_same_means(mod, terms):
    a = mod.bootstrap_means(terms, 64, seed=5)
    assert np.array_equal(a, mod.bootstrap_means(terms, 64, seed=5))
    assert not np.array_equal(a, mod.bootstrap_means(terms, 64, seed=6))
    # The first resamples do not depend on how many follow (fixed chunks).
    assert np.array_equal(a[:16], mod.bootstrap_means(terms, 16, seed=5))


def test_rust_means_do_not_depend_on_the_thread_count(terms):
    code = (
        "import numpy as np, banditkit_rs as rs, sys\n"
        "t = np.frombuffer(sys.stdin.buffer.read())\n"
        "a = rs.bootstrap_means(t, 37, seed=9)\n"
        "b = rs.bootstrap_self_normalised(t, t * 2, t + 1, 37, seed=9)\n"
        "sys.stdout.buffer.write(a.tobytes() + b.tobytes())\n"
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    outs = []
    for threads in ("1", "3"):
        env["RAYON_NUM_THREADS"] = threads
        done = subprocess.run(
            [sys.executable, "-c", code],
            input=terms.tobytes(),
            capture_output=True,
            env=env,
            check=True,
        )
        outs.append(np.frombuffer(done.stdout))
    here = np.concatenate(
        [
            rs.bootstrap_means(terms, 37, seed=9),
            rs.bootstrap_self_normalised(terms, terms * 2, terms + 1, 37, seed=9),
        ]
    )
    assert np.array_equal(outs[0], outs[1])
    assert np.array_equal(outs[0], here)


def _moments(means: np.ndarray) -> tuple[float, float]:
    return float(means.mean()), float(means.std(ddof=1))


@pytest.mark.parametrize("kind", ["means", "self_normalised"])
def test_rust_and_numpy_agree_in_distribution(terms, kind):
    b = 4000
    n = terms.size
    weights = 0.5 + np.random.default_rng(1).random(n)
    if kind == "means":
        out = {k: m.bootstrap_means(terms, b, seed=3) for k, m in BACKENDS.items()}
        centre = terms.mean()
        spread = terms.std() / math.sqrt(n)
    else:
        out = {
            k: m.bootstrap_self_normalised(terms, terms * weights, weights, b, seed=3)
            for k, m in BACKENDS.items()
        }
        ratio = (terms * weights).sum() / weights.sum()
        centre = terms.mean() + ratio
        infl = terms - terms.mean() + (terms * weights - ratio * weights) / weights.mean()
        spread = infl.std() / math.sqrt(n)
    for means in out.values():
        mean, sd = _moments(means)
        # Bootstrap means centre on the sample value; their sd is the standard error.
        assert abs(mean - centre) < 5 * sd / math.sqrt(b)
        # sd of a sample sd of b near-normal values: about sd / sqrt(2 b).
        assert abs(sd / spread - 1) < 5 / math.sqrt(2 * b) + 0.02
    (m1, s1), (m2, s2) = _moments(out["rust"]), _moments(out["python"])
    assert abs(m1 - m2) < 5 * math.hypot(s1, s2) / math.sqrt(b)
    assert abs(s1 / s2 - 1) < 5 / math.sqrt(b)
    q = [0.025, 0.5, 0.975]
    np.testing.assert_allclose(
        np.quantile(out["rust"], q), np.quantile(out["python"], q), atol=0.15 * s1 * 2
    )


def test_self_normalised_resamples_take_an_events_values_together():
    # numer == denom on every event: every resample's ratio is exactly 1 only if they are
    # drawn together.
    x = np.arange(1.0, 101.0)
    for mod in BACKENDS.values():
        got = mod.bootstrap_self_normalised(np.zeros(100), x, x, 50, seed=1)
        np.testing.assert_allclose(got, 1.0, rtol=1e-12)


def test_zero_denominator_resample_is_nan():
    for mod in BACKENDS.values():
        got = mod.bootstrap_self_normalised(np.zeros(1), np.zeros(1), np.zeros(1), 4, seed=1)
        assert np.isnan(got).all()


@pytest.mark.parametrize("mod", BACKENDS.values(), ids=BACKENDS.keys())
def test_bad_inputs_are_refused_alike(mod):
    with pytest.raises(ValueError, match="empty"):
        mod.bootstrap_means(np.zeros(0), 10, seed=0)
    with pytest.raises(ValueError, match="finite"):
        mod.bootstrap_means(np.array([1.0, np.nan]), 10, seed=0)
    with pytest.raises(ValueError, match="same length"):
        mod.bootstrap_self_normalised(np.zeros(2), np.zeros(3), np.zeros(2), 10, seed=0)
    with pytest.raises(ValueError, match="n_bootstrap"):
        mod.bootstrap_means(np.ones(3), 0, seed=0)
    with pytest.raises(TypeError, match="n_bootstrap"):
        mod.bootstrap_means(np.ones(3), 2.5, seed=0)
    with pytest.raises(ValueError, match="seed"):
        mod.bootstrap_means(np.ones(3), 10, seed=-1)
