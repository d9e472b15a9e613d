"""Speed of the banditkit format: to_bytes/from_bytes of LinUCB d=387, 3 arms (six 387 x 387
symmetric matrices, 7.2 MB as full float64 matrices, 3.6 MB packed as saved), against one plain
copy of those 7.2 MB and pickle of the NumPy reference. Medians of many repeats (the machine is
shared; the fastest repeat is shown too). Run:
`PYTHONPATH=python python benches/format_speed.py` (figures in docs/format.md)."""

import copy
import pickle
import timeit

import numpy as np

import banditkit.python as py
import banditkit_rs as rs

d, k, n = 387, 3, 600
rng = np.random.default_rng(0)
X, R = rng.standard_normal((n, d)), rng.standard_normal(n)
arms = [i % k for i in range(n)]
rb = rs.LinUCB(list(range(k)), d, seed=1)
rb.partial_fit(X, arms, R)
pb = py.LinUCB(list(range(k)), d, seed=1)
pb.partial_fit(X, arms, R)
data = rb.to_bytes()
assert rs.LinUCB.from_bytes(data).to_bytes() == data


def timed(stmt, number=5, repeat=61):
    """(median, fastest) milliseconds per call."""
    runs = sorted(t / number * 1e3 for t in timeit.repeat(stmt, number=number, repeat=repeat))
    return runs[len(runs) // 2], runs[0]


full = bytes(8 * k * 2 * d * d)
state_pickle = pickle.dumps(pb.__dict__)  # the six matrices as full float64 matrices
cases = {
    "copy 7.2 MB once (bytearray(full matrices))": lambda: bytearray(full),
    "copy the file once (bytearray(data))": lambda: bytearray(data),
    "rust to_bytes": rb.to_bytes,
    "rust from_bytes": lambda: rs.LinUCB.from_bytes(data),
    "python to_bytes": pb.to_bytes,
    "python from_bytes": lambda: py.LinUCB.from_bytes(data),
    "pickle.dumps(NumPy object) [now via the format]": lambda: pickle.dumps(pb),
    "pickle.dumps(NumPy object state, pre-format pickling)": lambda: pickle.dumps(pb.__dict__),
    "pickle.loads(NumPy object state, pre-format pickling)": lambda: pickle.loads(state_pickle),
    "copy.deepcopy(rust object)": lambda: copy.deepcopy(rb),
}
print(f"file size: {len(data) / 1e6:.2f} MB; full matrices {len(full) / 1e6:.2f} MB")
results = {}
for name, f in cases.items():
    results[name] = med, low = timed(f)
    print(f"{name:55s} {med:8.3f} ms median ({low:.3f} fastest)")
copy_ms = results["copy 7.2 MB once (bytearray(full matrices))"][0]
for name, other in (("rust to_bytes", "dumps"), ("rust from_bytes", "loads")):
    med = results[name][0]
    pickle_ms = results[f"pickle.{other}(NumPy object state, pre-format pickling)"][0]
    ratios = f"{med / copy_ms:.2f}x one copy, {med / pickle_ms:.2f}x pre-format pickle.{other}"
    print(f"{name}: {ratios}")
