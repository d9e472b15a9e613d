"""The tuned knobs as a `banditkit serve` config file (TOML).

    [serve]                      # what `banditkit serve --config FILE` reads: the same store
    store = "sqlite:////abs/banditkit.db"

    [experiment]                 # the body of POST /v1/experiments, knobs in params
    name = "linucb-regret"
    policy = "linucb"
    arms = [0, 1, 2, 3, 4]
    params = { n_features = 5, alpha = 0.31, l2_lambda = 2.4, window_size = 0, gamma = 1.0 }

`banditkit serve --config FILE` reads the `[serve]` table as its settings and creates the
`[experiment]` in the store unless it exists; `experiment_body(path)` returns that table.
"""

from __future__ import annotations

import json
import math
import re
import sys
from typing import Any
from urllib.parse import urlsplit, urlunsplit

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

_NAME_BAD = re.compile(r"[^A-Za-z0-9_.:-]")


def experiment_name(study: str) -> str:
    """A serve experiment name from a study name (letters, digits, `_ . : -`, <= 128)."""
    name = _NAME_BAD.sub("-", study).lstrip("_.:-")[:128]
    return name or "tuned"


def _value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        return repr(v) if math.isfinite(v) else ("inf" if v > 0 else "-inf")
    if isinstance(v, str):
        return json.dumps(v)  # a JSON string is a TOML basic string
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{k} = {_value(x)}" for k, x in v.items()) + " }"
    raise TypeError(f"cannot write {type(v).__name__} to TOML")


def without_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", "@", 1)))


def render(store: str, experiment: dict[str, Any], comments: list[str]) -> str:
    """The TOML text; checked by parsing it back (a config that serve cannot read is a bug)."""
    shown = without_password(store)
    lines = [f"# {c}" for c in comments]
    if shown != store:
        lines.append("# the store's password is left out: add it, or set PGPASSWORD")
    lines += ["", "[serve]", f"store = {_value(shown)}", "", "[experiment]"]
    lines += [f"{k} = {_value(v)}" for k, v in experiment.items()]
    text = "\n".join(lines) + "\n"
    parsed = tomllib.loads(text)
    assert parsed["experiment"] == json.loads(json.dumps(experiment)), "TOML round trip"
    return text


def experiment_body(path: str) -> dict[str, Any]:
    """The `[experiment]` table of a config written by `banditkit tune`."""
    with open(path, "rb") as f:
        return tomllib.load(f)["experiment"]
