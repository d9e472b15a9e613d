"""A real `banditkit serve` process for the serve tests: `python -m banditkit serve` on a free
127.0.0.1 port, started from the banditkit the tests imported (through PYTHONPATH), with its
output kept in a log file that a failing test shows."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

import banditkit

ROOT = Path(__file__).resolve().parent.parent
# Where the banditkit under test lives (and banditkit_rs beside it), for server subprocesses.
PACKAGE_ROOT = str(Path(banditkit.__file__).resolve().parent.parent)
TOKEN = "test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The test's environment without the developer's BANDITKIT_* serve settings (a token in
    their shell must not change what the test sees), with the folder of the banditkit this
    test imported first: the worktree's python/ in development, site-packages once installed
    (where the compiled extension is)."""
    from banditkit.serve.settings import FIELDS, env_name

    env = {k: v for k, v in os.environ.items() if k not in {env_name(f) for f in FIELDS}}
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (PACKAGE_ROOT, os.environ.get("PYTHONPATH")) if p
    )
    env.update(extra or {})
    return env


def serve_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "banditkit", "serve", *args]


class Server:
    """One server process; `start()` returns once `/readyz` answers 200."""

    def __init__(self, store: str, log_dir: Path, *args: str, token: str | None = TOKEN) -> None:
        self.store = store
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.args = ["--port", str(self.port), "--store", store, *args]
        if token is not None:
            self.args += ["--token", token]
        self.log = log_dir / f"server-{self.port}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.client = httpx.Client(base_url=self.url, timeout=30)

    def start(self, timeout: float = 60) -> Server:
        return self.spawn().wait_ready(timeout)

    def spawn(self) -> Server:
        """Start the process without waiting (servers that start together start faster)."""
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                serve_command(*self.args), env=server_env(), stdout=log, stderr=log
            )
        return self

    def wait_ready(self, timeout: float = 60) -> Server:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"the server exited with {self.proc.returncode}:\n{self.output()}"
                )
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        self.kill()
        raise RuntimeError(f"the server was not ready within {timeout} s:\n{self.output()}")

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, as in a crash or an OOM kill."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def terminate(self, timeout: float = 30) -> int:
        """SIGTERM, as an orchestrator stops a pod: returns the exit status."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def close(self) -> None:
        self.client.close()
        self.kill()

    # The API, raising on an unexpected status so that a test's failure says what happened.
    def call(self, method: str, path: str, expect: int = 200, **kwargs: Any) -> Any:
        response = self.client.request(method, path, headers=AUTH, **kwargs)
        assert response.status_code == expect, (response.status_code, response.text)
        return response.json()

    def create(self, name: str, policy: str, arms: list[Any], **params: Any) -> dict[str, Any]:
        body = {"name": name, "policy": policy, "arms": arms, "params": params}
        return self.call("POST", "/v1/experiments", 201, json=body)

    def describe(self, name: str) -> dict[str, Any]:
        return self.call("GET", f"/v1/experiments/{name}")

    def recommend(self, name: str, requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return self.call("POST", f"/v1/experiments/{name}/recommend", json={"requests": requests})[
            "results"
        ]

    def reward(self, name: str, rewards: list[dict[str, Any]]) -> int:
        return self.call("POST", f"/v1/experiments/{name}/rewards", json={"rewards": rewards})[
            "accepted"
        ]
