"""The off-policy bootstrap kernels: the NumPy reference for the Rust kernels of the same names.

A resample draws `n` event indices uniformly with replacement. Resamples are cut into chunks of
`CHUNK_RESAMPLES`, chunk `c` drawing from `default_rng([seed, c])`, like the Rust kernel's
streams: the answer depends on the seed only. The two backends draw different random numbers,
so they agree in distribution, not draw for draw (tests/test_ope_bootstrap.py checks that).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import numpy.typing as npt

CHUNK_RESAMPLES = 4
_MAX_EVENTS = 2**32 - 1

FloatArray = npt.NDArray[np.float64]


def _finite(name: str, values: npt.ArrayLike) -> FloatArray:
    arr = np.ascontiguousarray(values, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} must be finite")
    return arr


def _resamples(n_bootstrap: int) -> int:
    if isinstance(n_bootstrap, bool) or not isinstance(n_bootstrap, (int, np.integer)):
        raise TypeError(f"n_bootstrap must be an integer, got {n_bootstrap!r}")
    if n_bootstrap <= 0:
        raise ValueError(f"n_bootstrap must be positive, got {n_bootstrap}")
    return int(n_bootstrap)


def _seed(seed: int | None) -> int:
    if seed is None:
        return int(np.random.SeedSequence().entropy % 2**64)  # type: ignore[operator]
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**64:
        raise ValueError(f"seed must be a non-negative integer below 2**64, got {seed!r}")
    return int(seed)


def _check_events(n: int) -> None:
    if n == 0:
        raise ValueError("cannot bootstrap an empty log")
    if n > _MAX_EVENTS:
        raise ValueError(f"the bootstrap takes at most {_MAX_EVENTS} events, got {n}")


def _chunk_indices(
    n: int, n_bootstrap: int, seed: int
) -> Iterator[tuple[int, npt.NDArray[np.int64]]]:
    """(first resample, indices of shape (resamples in the chunk, n)) chunk by chunk."""
    for chunk, start in enumerate(range(0, n_bootstrap, CHUNK_RESAMPLES)):
        size = min(CHUNK_RESAMPLES, n_bootstrap - start)
        rng = np.random.default_rng([seed, chunk])
        yield start, rng.integers(0, n, size=(size, n))


def bootstrap_means(terms: npt.ArrayLike, n_bootstrap: int, seed: int | None = None) -> FloatArray:
    """The means of `terms` over `n_bootstrap` resamples drawn with replacement."""
    terms = _finite("terms", terms)
    b, s = _resamples(n_bootstrap), _seed(seed)
    _check_events(terms.size)
    out = np.empty(b)
    for start, idx in _chunk_indices(terms.size, b, s):
        out[start : start + len(idx)] = terms[idx].mean(axis=1)
    return out


def bootstrap_self_normalised(
    base: npt.ArrayLike,
    numer: npt.ArrayLike,
    denom: npt.ArrayLike,
    n_bootstrap: int,
    seed: int | None = None,
) -> FloatArray:
    """`mean(base) + sum(numer) / sum(denom)` over `n_bootstrap` resamples, an event's three
    values drawn together (NaN for a resample whose `denom` sums to zero)."""
    base, numer, denom = _finite("base", base), _finite("numer", numer), _finite("denom", denom)
    if not base.size == numer.size == denom.size:
        raise ValueError(
            "base, numer and denom must have the same length, "
            f"got {base.size}, {numer.size} and {denom.size}"
        )
    b, s = _resamples(n_bootstrap), _seed(seed)
    _check_events(base.size)
    out = np.empty(b)
    for start, idx in _chunk_indices(base.size, b, s):
        d = denom[idx].sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = np.where(d == 0.0, np.nan, numer[idx].sum(axis=1) / np.where(d == 0, 1, d))
        out[start : start + len(idx)] = base[idx].mean(axis=1) + ratio
    return out
