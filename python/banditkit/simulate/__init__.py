"""`banditkit simulate`: policies against simulated environments, regret and memory reports.

`envs` (the worlds), `policies` (adapters from the library's bandits), `runner` (one task and
the parallel run), `report` (statistics, table, JSON), `plot` (regret curves).
"""

from banditkit.simulate.envs import ENVIRONMENTS
from banditkit.simulate.policies import POLICIES
from banditkit.simulate.report import summarise, table
from banditkit.simulate.runner import Config, run_all, run_task

__all__ = ["ENVIRONMENTS", "POLICIES", "Config", "run_all", "run_task", "summarise", "table"]
