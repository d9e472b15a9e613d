"""The README's Python examples run as written (on the default backend), and its simulate tables
are exactly what the commands shown above them print (the seeded columns)."""

from __future__ import annotations

import importlib.util
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"
TEXT = README.read_text()
BLOCKS = re.findall(r"```python\n(.*?)```", TEXT, re.S)
# A `banditkit simulate` command block followed by the table it prints.
SIMULATE_RUNS = re.findall(r"```bash\n(banditkit simulate .*?)```\s*```text\n(.*?)```", TEXT, re.S)
# Timing and memory (decisions/s, peak RSS, RSS growth) depend on the machine: not compared.
SEEDED_COLUMNS = 4


def test_readme_has_examples():
    assert len(BLOCKS) >= 4


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_example_runs(index):
    exec(compile(BLOCKS[index], f"README.md[python block {index}]", "exec"), {})


def _seeded_part(table: str) -> list[list[str]]:
    """The title line, and per row of the table its policy, regret, interval and optimal-arm
    share. Columns are split on runs of 2+ spaces (the interval contains single spaces)."""
    title, _header, *rows = table.strip().splitlines()
    return [[title]] + [re.split(r" {2,}", r.strip())[:SEEDED_COLUMNS] for r in rows]


def test_readme_shows_both_simulate_runs():
    envs = [shlex.split(cmd.replace("\\\n", " "))[3] for cmd, _ in SIMULATE_RUNS]
    assert envs == ["bernoulli", "drifting"]


@pytest.mark.parametrize("index", range(len(SIMULATE_RUNS)))
def test_readme_simulate_table_is_what_its_command_prints(index, tmp_path):
    command, printed = SIMULATE_RUNS[index]
    args = shlex.split(command.replace("\\\n", " "))
    assert args[:2] == ["banditkit", "simulate"] and "--seed" in args
    pytest.importorskip("banditkit_rs")
    # The same invocation, with the figure written to a scratch file instead of docs/.
    plot = args.index("--plot")
    if importlib.util.find_spec("matplotlib") is None:
        del args[plot : plot + 2]
    else:
        args[plot + 1] = str(tmp_path / "figure.png")
    proc = subprocess.run(
        [sys.executable, "-m", "banditkit.cli", *args[1:], "--quiet"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert _seeded_part(proc.stdout) == _seeded_part(printed)


ROOT = README.parent
DOCS = [README, ROOT / "BENCHMARKS.md", ROOT / "benches" / "README.md", *ROOT.glob("docs/*.md")]


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_point_inside_the_repository(doc):
    for target in re.findall(r"\]\(([^)#\s]+)\)", doc.read_text()):
        if "://" not in target:
            assert (doc.parent / target).exists(), f"{doc.name} links to missing {target}"


def test_no_reference_to_specs_outside_the_repository():
    # The design specs live outside the repository; what a reader needs is in docs/.
    files = [*DOCS, *ROOT.glob("python/**/*.py"), *ROOT.glob("benches/**/*.*")]
    offenders = [str(f.relative_to(ROOT)) for f in files if "spec/" in f.read_text()]
    assert offenders == []
