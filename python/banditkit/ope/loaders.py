"""Logged bandit feedback: the mapping OBP users already have, checked, and loaders for it.

A log is a mapping with NumPy arrays `context` (n, d) (d may be 0), `action` (n,) arm indices in
[0, n_actions), `reward` (n,), `pscore` (n,) the logging policy's probability of the logged
action, and `n_actions`; optionally `arms` (the arm labels, index -> label) and `action_dist`
(n, K) of an evaluation policy and `behaviour_dist` (n, K), the logging policy's whole
distribution (the `logged` evaluation policy needs it for the model-based estimators).
Files: NPZ (every key), CSV (columns `action`, `reward`, `pscore`, `x0`, `x1`, ...), Parquet
(the same columns; needs pyarrow: `pip install 'banditkit[ope]'`); and the store's event log
(`from_store`).
"""

from __future__ import annotations

import csv
import json
import os
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from banditkit.ope import _inputs

Logged = dict[str, Any]
_CONTEXT_COLUMN = re.compile(r"^(?:x|context_)(\d+)$")
_PARQUET_HINT = "reading and writing Parquet needs pyarrow: pip install 'banditkit[ope]'"


def _n_actions(value: Any, action: npt.NDArray[np.intp]) -> int:
    if value is None:
        return int(action.max()) + 1
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"n_actions must be a positive integer, got {value!r}")
    return int(value)


def check_logged(logged: Mapping[str, Any], n_actions: int | None = None) -> Logged:
    """The log with every array checked and shaped: `ValueError` naming the field otherwise.
    `n_actions` comes from the argument, the log's `n_actions`, its `arms`, its `action_dist`,
    or else the largest logged action + 1."""
    if not isinstance(logged, Mapping):
        raise TypeError(f"a log is a mapping of arrays, got {type(logged).__name__}")
    missing = [k for k in ("action", "reward", "pscore") if k not in logged]
    if missing:
        raise ValueError(f"the log lacks {', '.join(missing)}")
    reward = _inputs.vector("reward", logged["reward"])
    pscore = _inputs.pscores(logged["pscore"])
    action = _inputs.actions(logged["action"])
    if reward.size == 0:
        raise ValueError("reward is empty: the log has no events")
    arms = logged.get("arms")
    if arms is not None:
        arms = [a.item() if isinstance(a, np.generic) else a for a in list(arms)]
    dist = logged.get("action_dist")
    if n_actions is None:
        n_actions = logged.get("n_actions")
        if n_actions is None and arms is not None:
            n_actions = len(arms)
        if n_actions is None and dist is not None:
            n_actions = _inputs.matrix("action_dist", dist).shape[1]
    k = _n_actions(n_actions, action)
    _inputs.actions(action, k)
    if arms is not None and len(arms) != k:
        raise ValueError(f"arms has {len(arms)} labels but n_actions is {k}")
    context = logged.get("context")
    if context is None:
        context = np.zeros((reward.size, 0))
    context = _inputs.matrix("context", context)
    named = {"reward": reward.size, "action": action.size, "pscore": pscore.size}
    named["context"] = context.shape[0]
    out: Logged = {
        "context": context,
        "action": action,
        "reward": reward,
        "pscore": pscore,
        "n_actions": k,
    }
    if arms is not None:
        out["arms"] = arms
    for key in ("action_dist", "behaviour_dist"):
        if logged.get(key) is not None:
            out[key] = _inputs.probabilities(key, logged[key])
            named[key] = out[key].shape[0]
            if out[key].shape[1] != k:
                raise ValueError(f"{key} has {out[key].shape[1]} arms, the log {k}")
    _inputs.same_length(named)
    return out


def _columns_to_logged(columns: Mapping[str, np.ndarray], n_actions: int | None) -> Logged:
    ctx = sorted(
        ((int(m.group(1)), name) for name in columns if (m := _CONTEXT_COLUMN.match(name))),
    )
    logged: Logged = {k: columns[k] for k in ("action", "reward", "pscore") if k in columns}
    if ctx:
        logged["context"] = np.column_stack([np.asarray(columns[name], float) for _, name in ctx])
    return check_logged(logged, n_actions)


def _read_csv(path: str) -> dict[str, np.ndarray]:
    with open(path, newline="") as f:
        reader = csv.reader(f)
        try:
            header = next(reader)
        except StopIteration:
            raise ValueError(f"{path} is empty") from None
        rows = list(reader)
    try:
        values = np.array(rows, dtype=float).reshape(len(rows), len(header))
    except ValueError as exc:
        raise ValueError(f"{path}: every cell must be a number ({exc})") from None
    return {name.strip(): values[:, j] for j, name in enumerate(header)}


def _pyarrow() -> Any:
    try:
        import pyarrow
        import pyarrow.parquet
    except ImportError:
        raise ImportError(_PARQUET_HINT) from None
    return pyarrow


def load_logged(
    source: Mapping[str, Any] | str | os.PathLike[str], n_actions: int | None = None
) -> Logged:
    """A checked log from a mapping or a `.npz`, `.csv` or `.parquet` file."""
    if isinstance(source, Mapping):
        return check_logged(source, n_actions)
    path = os.fspath(source)
    ext = os.path.splitext(path)[1].lower()
    if ext == ".npz":
        with np.load(path, allow_pickle=False) as data:
            logged: Logged = {k: data[k] for k in data.files}
        if "arms" in logged:
            logged["arms"] = json.loads(str(logged["arms"]))
        return check_logged(logged, n_actions)
    if ext == ".csv":
        return _columns_to_logged(_read_csv(path), n_actions)
    if ext in (".parquet", ".pq"):
        pa = _pyarrow()
        table = pa.parquet.read_table(path)
        columns = {name: table.column(name).to_numpy() for name in table.column_names}
        meta = table.schema.metadata or {}
        if n_actions is None and b"banditkit.n_actions" in meta:
            n_actions = int(meta[b"banditkit.n_actions"])
        return _columns_to_logged(columns, n_actions)
    raise ValueError(f"cannot read {path}: give a .npz, .csv or .parquet file")


def save_logged(logged: Mapping[str, Any], path: str | os.PathLike[str]) -> None:
    """Write a log as `.npz` (everything), `.csv` or `.parquet` (the columns; Parquet also
    keeps n_actions). Checked first: nothing is written for a bad log."""
    log = check_logged(logged)
    path = os.fspath(path)
    ext = os.path.splitext(path)[1].lower()
    columns = {"action": log["action"], "reward": log["reward"], "pscore": log["pscore"]}
    for j in range(log["context"].shape[1]):
        columns[f"x{j}"] = log["context"][:, j]
    if ext == ".npz":
        arrays = {k: v for k, v in log.items() if k != "arms"}
        if "arms" in log:  # labels of mixed types: JSON keeps them as they were
            arrays["arms"] = np.array(json.dumps(log["arms"]))
        np.savez(path, **arrays)
    elif ext == ".csv":
        with open(path, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(list(columns))
            for row in zip(*(col.tolist() for col in columns.values()), strict=True):
                writer.writerow([repr(v) for v in row])
    elif ext in (".parquet", ".pq"):
        pa = _pyarrow()
        table = pa.table(columns).replace_schema_metadata(
            {"banditkit.n_actions": str(log["n_actions"])}
        )
        pa.parquet.write_table(table, path)
    else:
        raise ValueError(f"cannot write {path}: give a .npz, .csv or .parquet file")


def from_events(events: Sequence[Any], arms: Sequence[Any] | None = None) -> Logged:
    """A log from store events (`Event`s or their dicts): each decision with its rewards (those
    whose `decision_id` names it, summed when there are several). Decisions with no reward yet
    and rewards naming no known decision are left out. Arms are indexed in `arms` order, by
    default in order of first appearance."""
    decisions: dict[str, dict[str, Any]] = {}
    rewards: dict[str, float] = {}
    for ev in events:
        kind, eid, data = (
            (ev.kind, ev.id, ev.data) if hasattr(ev, "data") else (ev["kind"], ev["id"], ev)
        )
        if kind == "decision":
            decisions[eid] = data
        elif kind == "reward" and data.get("decision_id") is not None:
            did = data["decision_id"]
            rewards[did] = rewards.get(did, 0.0) + float(data["reward"])
    rewarded = [(did, d) for did, d in decisions.items() if did in rewards]
    if not rewarded:
        raise ValueError(
            "the event log has no decision with a reward "
            "(a reward names its decision by decision_id)"
        )
    labels: list[Any] = list(arms) if arms is not None else []
    index = {label: i for i, label in enumerate(labels)}
    action = []
    for did, d in rewarded:
        if d["arm"] not in index:
            if arms is not None:
                raise ValueError(f"decision {did!r}: arm {d['arm']!r} is not in arms")
            index[d["arm"]] = len(labels)
            labels.append(d["arm"])
        action.append(index[d["arm"]])
    contexts = [d.get("context") for _, d in rewarded]
    logged: Logged = {
        "action": np.array(action, dtype=np.intp),
        "reward": np.array([rewards[did] for did, _ in rewarded]),
        "pscore": np.array([d["propensity"] for _, d in rewarded], dtype=float),
        "arms": labels,
        "n_actions": len(labels),
    }
    if any(c is not None for c in contexts):
        if any(c is None for c in contexts) or len({len(c) for c in contexts}) != 1:
            raise ValueError("context: every rewarded decision needs a context of the same length")
        logged["context"] = np.array(contexts, dtype=float)
    return check_logged(logged)


def from_store(store: Any, name: str, arms: Sequence[Any] | None = None) -> Logged:
    """A log from the event log of `name` in a store (a `banditkit.store` Store or its URL)."""
    if isinstance(store, str):
        from banditkit.store import open_store

        with open_store(store, create=False) as opened:
            return from_events(list(opened.events(name)), arms)
    return from_events(list(store.events(name)), arms)
