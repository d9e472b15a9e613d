"""Speed of the banditkit format: to_bytes/from_bytes of LinUCB d=387, 3 arms (7.2 MB), against
one plain copy of the bytes and pickle of the NumPy reference. Run:
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


def best(stmt, number=20, repeat=7):
    return min(timeit.repeat(stmt, number=number, repeat=repeat)) / number * 1e3


cases = {
    "copy the bytes once (bytearray(data))": lambda: bytearray(data),
    "copy the bytes once (memoryview.tobytes)": lambda: memoryview(data).tobytes(),
    "rust to_bytes": rb.to_bytes,
    "rust from_bytes": lambda: rs.LinUCB.from_bytes(data),
    "python to_bytes": pb.to_bytes,
    "python from_bytes": lambda: py.LinUCB.from_bytes(data),
    "pickle.dumps(NumPy object) [now via the format]": lambda: pickle.dumps(pb),
    "pickle.dumps(NumPy object state, pre-format pickling)": lambda: pickle.dumps(pb.__dict__),
    "copy.deepcopy(rust object)": lambda: copy.deepcopy(rb),
}
print(f"file size: {len(data) / 1e6:.2f} MB")
for name, f in cases.items():
    print(f"{name:55s} {best(f):8.3f} ms")
