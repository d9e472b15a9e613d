"""Persistence: the model codec and the durable store (issue 12).

Groups (case names below):
- `store.to_bytes` / `store.from_bytes`, case "LinUCB d=387, 3 arms" (three 387 x 387 Gram
  matrices and their inverses, after 200 updates, about 7.2 MB): `to_bytes` and
  `from_bytes` of each backend, against `memcpy` (`bytearray(matrices)`: one allocation and
  one copy of the three Gram matrices and inverses as full float64 matrices, 7.2 MB),
  `memcpy-file` (the same for the file's bytes, 3.6 MB: it keeps them as packed triangles),
  `pickle-numpy` (`pickle.dumps`/`loads` of the NumPy reference object, which goes through
  its `to_bytes` since issue 12) and `pickle-arrays` (`pickle.dumps`/`loads`, protocol 5, of
  the reference object's arrays: what pickling the state cost before the format). `per` = the
  file's bytes.
- `store.put` / `store.get`, cases "LinUCB d=387, 3 arms" and "TSPar 10 arms": p50 and p99 of
  single calls (`sqlite p50`, `sqlite p99`, `postgresql p50`, ...) with the current backend's
  model: put = `to_bytes` + one committed transaction (fsync), get = one read + `loads`.
- `store.append_events`, cases "batch of 1" and "batch of 1,000": one committed
  `append_events` call (`per` = events, so ns/unit is the time per event).

SQLite runs on a temporary file. PostgreSQL runs when `BANDITKIT_BENCH_POSTGRES_URL` names a
server (the bench works in a schema of its own and drops it), else its rows are skipped.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from banditkit.bench.timing import Row, backends, row

D = 387
ARMS = ["a", "b", "c"]
UPDATES = 200
CODEC_CASE = f"LinUCB d={D}, {len(ARMS)} arms"
TSPAR_CASE = "TSPar 10 arms"
URL_VAR = "BANDITKIT_BENCH_POSTGRES_URL"


def linucb(mod: Any) -> Any:
    model = mod.LinUCB(ARMS, D, alpha=1.0, seed=0)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((UPDATES, D))
    model.partial_fit(x, [ARMS[i % 3] for i in range(UPDATES)], rng.normal(size=UPDATES))
    return model


def tspar(mod: Any) -> Any:
    model = mod.TSPar(seed=0)
    model.update({f"arm{k}": [10_000, 100 + 10 * k] for k in range(10)})
    return model


def codec_rows(quick: bool) -> list[Row]:
    rows: list[Row] = []
    reference = None
    for impl, mod in backends().items():
        if not hasattr(mod.LinUCB, "from_bytes"):
            print(
                f"[store] {impl} codec rows skipped: {impl} LinUCB has no to_bytes", file=sys.stderr
            )
            continue
        model = linucb(mod)
        blob = model.to_bytes()
        per = float(len(blob))
        rows.append(row("store.to_bytes", CODEC_CASE, impl, model.to_bytes, quick=quick, per=per,
                        unit="byte"))  # fmt: skip
        rows.append(
            row(
                "store.from_bytes",
                CODEC_CASE,
                impl,
                lambda m=mod, b=blob: m.LinUCB.from_bytes(b),
                quick=quick,
                per=per,
                unit="byte",
            )  # fmt: skip
        )
        if impl == "python":
            reference = model
    if reference is None:
        return rows
    blob = reference.to_bytes()
    per = float(len(blob))
    # The baseline: one copy of the model's matrices and inverses as full float64
    # matrices (7.2 MB). The file keeps them as packed triangles (3.6 MB): copying the file's
    # bytes once is reported beside it, as `memcpy-file`.
    matrices = b"".join(m.A.tobytes() + m.a_inv.tobytes() for m in reference._models)
    for group in ("store.to_bytes", "store.from_bytes"):
        for impl, data in (("memcpy", matrices), ("memcpy-file", blob)):
            rows.append(row(group, CODEC_CASE, impl, lambda d=data: bytearray(d), quick=quick,
                            per=per, unit="byte"))  # fmt: skip
    pickled = pickle.dumps(reference, protocol=5)
    arrays = [(m.A, m.a_inv, m.b, m.theta) for m in reference._models]
    pickled_arrays = pickle.dumps(arrays, protocol=5)
    for impl, dump, load in (
        (
            "pickle-numpy",
            lambda: pickle.dumps(reference, protocol=5),
            lambda: pickle.loads(pickled),
        ),
        (
            "pickle-arrays",
            lambda: pickle.dumps(arrays, protocol=5),
            lambda: pickle.loads(pickled_arrays),
        ),
    ):
        rows.append(
            row("store.to_bytes", CODEC_CASE, impl, dump, quick=quick, per=per, unit="byte")
        )
        rows.append(
            row("store.from_bytes", CODEC_CASE, impl, load, quick=quick, per=per, unit="byte")
        )
    return rows


@contextlib.contextmanager
def stores() -> Iterator[tuple[str, Any]]:
    """(impl, store) for SQLite on a temporary file, then PostgreSQL if configured."""
    from banditkit.store import open_store

    with (
        tempfile.TemporaryDirectory() as folder,
        open_store(f"sqlite:///{os.path.join(folder, 'bench.db')}") as sqlite,
    ):
        found: list[tuple[str, Any]] = [("sqlite", sqlite)]
        url = os.environ.get(URL_VAR)
        if not url:
            print(
                f"[store] postgresql rows skipped: set {URL_VAR}=postgresql://...", file=sys.stderr
            )
            yield found
            return
        import psycopg

        schema = f"bk_bench_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {schema}")
        sep = "&" if "?" in url else "?"
        try:
            with open_store(f"{url}{sep}options=-csearch_path%3D{schema}") as pg:
                yield [*found, ("postgresql", pg)]
        finally:
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute(f"DROP SCHEMA {schema} CASCADE")


def percentiles(
    fn: Callable[[], object], calls: int, between: Callable[[int], None]
) -> list[float]:
    times = []
    for i in range(calls):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
        between(i)
    return [statistics.median(times), float(np.percentile(times, 99))]


def store_rows(quick: bool) -> list[Row]:
    import banditkit

    rows: list[Row] = []
    models = [(CODEC_CASE, linucb(banditkit), 10 if quick else 50),
              (TSPAR_CASE, tspar(banditkit), 50 if quick else 400)]  # fmt: skip
    with stores() as found:
        for impl, store in found:
            for case, model, calls in models:
                name = f"bench-{case}"

                def trim(i: int, s: Any = store, n: str = name) -> None:
                    if i % 10 == 9:  # keep the database small: untimed
                        s.delete(n)

                p_put = percentiles(lambda s=store, n=name, m=model: s.put(n, m), calls, trim)
                store.put(name, model)
                p_get = percentiles(lambda s=store, n=name: s.get(n), calls, lambda i: None)
                store.delete(name)
                for group, (p50, p99) in (("store.put", p_put), ("store.get", p_get)):
                    note = f"{calls} calls"
                    rows.append({"group": group, "case": case, "impl": f"{impl} p50",
                                 "median_s": p50, "repeats": calls, "note": note})  # fmt: skip
                    rows.append({"group": group, "case": case, "impl": f"{impl} p99",
                                 "median_s": p99, "repeats": calls, "note": note})  # fmt: skip
            rows += event_rows(impl, store, quick)
    return rows


def event_rows(impl: str, store: Any, quick: bool) -> list[Row]:
    """Median time of one committed append of a new batch (batches built before timing)."""
    rows: list[Row] = []
    ids = iter(range(1 << 62))
    for size, case, calls in ((1, "batch of 1", 200), (1000, "batch of 1,000", 30)):
        calls = calls // 4 if quick else calls
        batches = [
            [
                {
                    "id": f"e{next(ids)}",
                    "kind": "decision",
                    "arm": "a",
                    "propensity": 0.5,
                    "context": [0.5] * 8,
                    "policy_version": 1,
                }  # fmt: skip
                for _ in range(size)
            ]
            for _ in range(calls)
        ]
        times = []
        for events in batches:
            t0 = time.perf_counter()
            store.append_events("bench-events", events)
            times.append(time.perf_counter() - t0)
        rate = size / statistics.median(times)
        print(f"[store] {impl} append_events, {case}: {rate:,.0f} events/s", file=sys.stderr)
        rows.append({"group": "store.append_events", "case": case, "impl": impl,
                     "median_s": statistics.median(times), "repeats": calls, "per": float(size),
                     "unit": "event"})  # fmt: skip
    store.delete("bench-events")
    return rows


def run(quick: bool) -> list[Row]:
    return codec_rows(quick) + store_rows(quick)
