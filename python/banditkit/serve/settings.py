"""`ServeSettings`: every knob of `banditkit serve`, and `load_settings`, which merges them.

Precedence, lowest first: the defaults below < a TOML file (`--config FILE`) <
`BANDITKIT_<FIELD>` environment variables < command-line flags. pydantic checks the merged
result once, so a bad value is reported with the place it came from.
"""

from __future__ import annotations

import ipaddress
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

if sys.version_info >= (3, 11):
    import tomllib
else:  # the same parser, before it joined the standard library
    import tomli as tomllib

ENV_PREFIX = "BANDITKIT_"
LOOPBACK_NAMES = ("localhost",)


class SettingsError(ValueError):
    """A setting that cannot be used; the message names it and where it came from."""


class ServeSettings(BaseModel):
    """The settings of one server (every worker process gets the same)."""

    # Lax (not strict) on purpose: environment variables and flags arrive as strings.
    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = Field("127.0.0.1", min_length=1, description="address to listen on")
    port: int = Field(8000, ge=0, le=65535, description="TCP port (0: any free port)")
    store: str = Field(
        "sqlite:///banditkit.db",
        min_length=1,
        description="store URL: sqlite:///path.db or postgresql://user@host/db",
    )
    workers: int = Field(1, ge=1, le=64, description="server processes sharing the store")
    # repr=False keeps the token out of logs and tracebacks that print the settings.
    token: str | None = Field(
        None,
        min_length=1,
        repr=False,
        description="bearer token that writes (POST, DELETE) must carry",
    )
    threads: int = Field(8, ge=1, le=256, description="threads running model and store work")
    max_body_bytes: int = Field(
        1 << 20, ge=1024, description="largest request body accepted (413 above it)"
    )
    max_batch: int = Field(
        1000, ge=1, description="most requests per recommend call / rewards per rewards call"
    )
    snapshot_every_events: int = Field(
        1000, ge=1, description="snapshot an experiment after this many new events"
    )
    snapshot_every_seconds: float = Field(
        30.0, gt=0, allow_inf_nan=False, description="or after this many seconds with changes"
    )
    poll_interval: float = Field(
        0.5,
        gt=0,
        allow_inf_nan=False,
        description="seconds between reads of the events other servers logged",
    )
    keep_snapshots: int = Field(5, ge=1, description="model versions kept per experiment")
    seed: int | None = Field(
        None, ge=0, lt=2**32, description="seed of the decision draws (default: from the OS)"
    )
    slow_recommend_ms: float = Field(
        50.0, gt=0, allow_inf_nan=False, description="a recommend call slower than this is logged"
    )
    slow_update_ms: float = Field(
        20.0, gt=0, allow_inf_nan=False, description="a rewards call slower than this is logged"
    )
    log_level: Literal["critical", "error", "warning", "info", "debug"] = Field(
        "info", description="uvicorn's and banditkit's log level"
    )

    def is_loopback(self) -> bool:
        """Whether `host` only accepts connections from this machine."""
        if self.host.lower() in LOOPBACK_NAMES:
            return True
        try:
            return ipaddress.ip_address(self.host.strip("[]")).is_loopback
        except ValueError:  # a host name other than localhost may resolve to anything
            return False

    def check_exposure(self) -> None:
        """Refuse to listen beyond this machine without a token: anyone could write."""
        if not self.is_loopback() and not self.token:
            raise SettingsError(
                f"refusing to listen on {self.host} without a token: anyone who can reach it "
                "could change the experiments. Set BANDITKIT_TOKEN (or --token), or listen on "
                "127.0.0.1"
            )


FIELDS = tuple(ServeSettings.model_fields)


def env_name(field: str) -> str:
    return ENV_PREFIX + field.upper()


def read_toml(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The settings of a TOML file: top-level keys, or those of a `[serve]` table."""
    try:
        with open(path, "rb") as f:
            doc = tomllib.load(f)
    except OSError as exc:
        raise SettingsError(f"cannot read the config file {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"the config file {path} is not valid TOML: {exc}") from None
    experiments = ("experiment", "experiments")  # read by read_experiments
    table = doc.get("serve", {k: v for k, v in doc.items() if k not in experiments})
    if not isinstance(table, dict):
        raise SettingsError(f"[serve] in {path} must be a table")
    return table


def read_experiments(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The experiments a config file declares: an `[experiment]` table (what `banditkit tune`
    writes) and/or `[[experiments]]` tables, each the body of `POST /v1/experiments`."""
    try:
        with open(path, "rb") as f:
            doc = tomllib.load(f)
    except OSError as exc:
        raise SettingsError(f"cannot read the config file {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"the config file {path} is not valid TOML: {exc}") from None
    one, many = doc.get("experiment"), doc.get("experiments", [])
    found = ([] if one is None else [one]) + (many if isinstance(many, list) else [many])
    for i, body in enumerate(found):
        if not isinstance(body, dict) or not {"name", "policy", "arms"} <= body.keys():
            raise SettingsError(
                f"experiment {i} in {path} must be a table with name, policy, arms (and params)"
            )
    return found


def read_env(environ: Mapping[str, str]) -> dict[str, str]:
    """`BANDITKIT_<FIELD>` variables (others, like BANDITKIT_BACKEND, are not ours).

    An empty variable counts as unset, so `BANDITKIT_TOKEN=` does not set an empty token."""
    return {f: environ[env_name(f)] for f in FIELDS if environ.get(env_name(f), "") != ""}


def load_settings(
    config: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> ServeSettings:
    """Merge defaults < TOML file < environment < `overrides` (the CLI flags that were given)."""
    layers: list[tuple[str, dict[str, Any]]] = []
    if config is not None:
        layers.append((f"the config file {Path(config)}", read_toml(config)))
    env = read_env(os.environ if environ is None else environ)
    layers.append(("the environment", env))
    layers.append(
        ("the command line", {k: v for k, v in (overrides or {}).items() if v is not None})
    )

    merged: dict[str, Any] = {}
    source: dict[str, str] = {}
    for where, values in layers:
        for key, value in values.items():
            merged[key] = value
            source[key] = env_name(key) if values is env else where
    try:
        return ServeSettings(**merged)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = str(err["loc"][0]) if err["loc"] else "?"
        if err["type"] == "extra_forbidden":
            raise SettingsError(
                f"unknown setting {key!r} in {source.get(key, 'the settings')}; "
                f"known: {', '.join(FIELDS)}"
            ) from None
        shown = "***" if key == "token" else repr(merged.get(key))
        raise SettingsError(
            f"bad value {shown} for {key} (from {source.get(key, 'the defaults')}): {err['msg']}"
        ) from None
