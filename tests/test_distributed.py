"""banditkit on a real local Ray cluster (tests/ray_cluster.py): same numbers as a local run."""

from __future__ import annotations

import pytest

from ray_cluster import RayCluster


def test_cluster_runs_tasks_on_both_nodes(ray_cluster: RayCluster) -> None:
    ray = pytest.importorskip("ray")
    ray.init(address=ray_cluster.address, logging_level="ERROR", log_to_driver=False)
    try:

        @ray.remote(num_cpus=1)
        def node_of(_: int) -> str:
            import time

            time.sleep(0.5)  # hold the CPU, so the other task has to go to the other node
            return ray.get_runtime_context().get_node_id()

        assert len(set(ray.get([node_of.remote(i) for i in range(2)]))) == 2
    finally:
        ray.shutdown()
