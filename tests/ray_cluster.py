"""A real local Ray cluster for the distributed tests: a head node and a second worker node.

Both are started with `ray start` (the head with `--head`, the worker with `--address`), one CPU
each, no dashboard, on a loopback address and free ports, with their temporary files under a
directory of their own. Each `ray start` runs in a new session, so its daemons (GCS, raylet,
workers) share one process group: stopping the cluster signals those groups only, never another
user's Ray (`ray stop` would stop every Ray on the machine).

Without Ray installed the tests that use `ray_cluster` are skipped with the reason; under CI
(`CI=true`) they fail instead, as the PostgreSQL and Chromium tests do.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import banditkit

# Ray turns 127.0.0.1 into the machine's routable address (services.resolve_ip_for_localhost);
# another loopback address keeps every node address on this machine's loopback interface.
NODE_IP = "127.0.0.2"
CPUS_PER_NODE = 1
OBJECT_STORE_BYTES = 100 * 1024 * 1024
START_TIMEOUT_S = 120.0
STOP_GRACE_S = 3.0
# Where the banditkit under test lives (and banditkit_rs beside it): the workers import it.
PACKAGE_ROOT = str(Path(banditkit.__file__).resolve().parent.parent)
# Unix socket paths are limited to 107 bytes and Ray nests them deep under its temp dir.
MAX_TEMP_DIR_CHARS = 40
# Notice a killed node within a second or two instead of the default ~30 s, so tasks it ran are
# retried at once (RayConfig entries, read from the environment of the GCS and raylets).
FAST_FAILURE_DETECTION = {
    "RAY_health_check_initial_delay_ms": "500",
    "RAY_health_check_period_ms": "500",
    "RAY_health_check_timeout_ms": "1000",
    "RAY_health_check_failure_threshold": "3",
}


def ray_unavailable(reason: str) -> None:
    """Skip (a developer's run) or fail (CI) a test that needs Ray."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"Ray tests must run under CI: {reason}")
    pytest.skip(f"Ray tests skipped: {reason}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _group_alive(pgid: int) -> bool:
    """Whether any process of the group is still running (zombies do not count)."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


def _kill_group(pgid: int, grace_s: float | None) -> None:
    """SIGTERM a process group, then SIGKILL what is left after `grace_s` seconds (None: SIGKILL
    at once)."""
    for sig in (signal.SIGTERM, signal.SIGKILL) if grace_s is not None else (signal.SIGKILL,):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + (grace_s or STOP_GRACE_S)
        while time.monotonic() < deadline and _group_alive(pgid):
            time.sleep(0.1)
        if not _group_alive(pgid):
            return


class RayCluster:
    """A running local cluster: `.address` to connect to, worker node kill/add for fault tests."""

    def __init__(self, temp_dir: Path) -> None:
        self.temp_dir = temp_dir
        self.port = _free_port()
        self.address = f"{NODE_IP}:{self.port}"
        self._head: int | None = None  # process group of the head node's daemons
        self._workers: list[int] = []  # process groups of live worker nodes
        self._env = {**os.environ, **FAST_FAILURE_DETECTION, "RAY_USAGE_STATS_ENABLED": "0"}
        self._env["PYTHONPATH"] = os.pathsep.join(
            p for p in (PACKAGE_ROOT, os.environ.get("PYTHONPATH")) if p
        )
        self._env.pop("RAY_ADDRESS", None)

    def _ray_start(self, args: list[str], log_name: str) -> int:
        """Run `ray start ARGS` in a new session; returns that session's process group."""
        log = self.temp_dir / f"{log_name}.log"
        cmd = [sys.executable, "-m", "ray.scripts.scripts", "start", *args]
        cmd += [
            f"--node-ip-address={NODE_IP}",
            f"--num-cpus={CPUS_PER_NODE}",
            "--num-gpus=0",
            f"--object-store-memory={OBJECT_STORE_BYTES}",
            f"--temp-dir={self.temp_dir}",
            f"--dashboard-agent-listen-port={_free_port()}",
            f"--runtime-env-agent-port={_free_port()}",
            f"--metrics-export-port={_free_port()}",
            "--disable-usage-stats",
            # Forwards workers' prints to drivers: nothing the tests read, one process less.
            "--include-log-monitor=false",
        ]
        with open(log, "w") as out:
            proc = subprocess.Popen(
                cmd, stdout=out, stderr=subprocess.STDOUT, env=self._env, start_new_session=True
            )
            try:
                code = proc.wait(timeout=START_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                code = None
        if code != 0:
            _kill_group(proc.pid, STOP_GRACE_S)
            tail = log.read_text().strip().splitlines()[-5:]
            raise RuntimeError(f"`ray start` ({log_name}) failed with {code}: " + " | ".join(tail))
        return proc.pid

    def start(self) -> None:
        self._head = self._ray_start(
            [
                "--head",
                f"--port={self.port}",
                "--include-dashboard=false",
                f"--dashboard-port={_free_port()}",
                # The Ray Client server (on by default at port 10001 when grpcio is installed,
                # i.e. `ray[client]`): a free port, or none with the minimal `ray`.
                *(
                    [f"--ray-client-server-port={_free_port()}"]
                    if importlib.util.find_spec("grpc")
                    else []
                ),
            ],
            "head",
        )
        self.add_worker()

    def add_worker(self) -> None:
        """Start one more worker node and wait until the cluster counts it."""
        self._workers.append(
            self._ray_start([f"--address={self.address}"], f"worker{len(self._workers)}")
        )
        self.wait_for_nodes(1 + len(self._workers))

    def kill_worker(self) -> None:
        """SIGKILL the newest worker node (raylet and its workers), as a machine lost would."""
        _kill_group(self._workers.pop(), None)

    def alive_nodes(self) -> int:
        """Nodes the GCS counts alive (asked through a short-lived `ray status`-like query)."""
        code = (
            "import ray, sys\n"
            "ray.init(address=sys.argv[1], logging_level='ERROR', log_to_driver=False)\n"
            "print('alive-nodes', sum(n['Alive'] for n in ray.nodes()))\n"
        )
        out = subprocess.run(
            [sys.executable, "-c", code, self.address],
            capture_output=True,
            text=True,
            env=self._env,
            timeout=START_TIMEOUT_S,
            cwd=self.temp_dir,
        )
        # Ray may print its own notices (a node marked dead, ...) on stdout too: find our line.
        counts = [line.split()[1] for line in out.stdout.splitlines() if line.startswith("alive-")]
        return int(counts[-1]) if out.returncode == 0 and counts else -1

    def wait_for_nodes(self, count: int) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while (alive := self.alive_nodes()) != count:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the Ray cluster has {alive} live nodes, expected {count}")
            time.sleep(0.5)

    def stop(self) -> None:
        try:
            import ray

            if ray.is_initialized():
                ray.shutdown()
        except ImportError:
            pass
        for pgid in [*self._workers, *([self._head] if self._head else [])]:
            _kill_group(pgid, STOP_GRACE_S)
        self._workers, self._head = [], None


@pytest.fixture(scope="session")
def ray_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RayCluster]:
    """A local Ray cluster of two nodes (head + worker, one CPU each), stopped after the session.

    Connect with `ray.init(address=ray_cluster.address)` (the cluster fixture shuts a driver
    left connected down at the end) or pass the address to `banditkit ... --ray ADDRESS`.
    `kill_worker()` kills the worker node; `add_worker()` starts another one (a test that kills
    must add one back for the tests after it).
    """
    try:
        import ray  # noqa: F401
    except ImportError:
        ray_unavailable("ray is not installed (pip install 'banditkit[distributed]')")
    base = tmp_path_factory.mktemp("ray")
    own_dir = len(str(base)) > MAX_TEMP_DIR_CHARS
    temp_dir = Path(tempfile.mkdtemp(prefix="bkray-")) if own_dir else base
    cluster = RayCluster(temp_dir)
    try:
        cluster.start()
    except RuntimeError as exc:
        cluster.stop()
        ray_unavailable(str(exc))
    try:
        yield cluster
    finally:
        cluster.stop()
        if own_dir:
            shutil.rmtree(temp_dir, ignore_errors=True)
