"""The `banditkit` command: `simulate` end to end through subprocess, and `bench`'s extras."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import struct
import subprocess
import sys
import termios
import types
from pathlib import Path

import numpy as np
import pytest

from banditkit import cli
from banditkit.bench.plot import speedup_plot, speedups
from banditkit.simulate.envs import ENVIRONMENTS
from banditkit.simulate.policies import POLICIES

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def banditkit(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "banditkit.cli", *args],
        capture_output=True,
        text=True,
        timeout=300,
        **kw,
    )


def simulate_json(tmp_path: Path, *args: str, name: str = "out.json") -> dict:
    out = tmp_path / name
    proc = banditkit(
        "simulate", "--rounds", "300", "--repeats", "2", "--jobs", "1", "--json", str(out), *args
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(out.read_text())


# --- help ---


def test_help():
    top = banditkit("--help")
    assert top.returncode == 0 and "simulate" in top.stdout and "bench" in top.stdout
    sim = banditkit("simulate", "--help")
    assert sim.returncode == 0
    text = " ".join(sim.stdout.split())
    for word in [
        *ENVIRONMENTS,
        *POLICIES,
        "--batch",
        "--repeats",
        "--seed",
        "--plot",
        "--json",
        "--quiet",
        "--features",
        "--arms",
        "--rounds",
        "--policies",
    ]:
        assert word in text
    bench = banditkit("bench", "--help")
    assert bench.returncode == 0
    for option in ("--quick", "--json", "--markdown", "--plot", "--only"):
        assert option in bench.stdout


# --- runs, JSON schema, plot, determinism ---


def check_schema(doc: dict, env: str, policies: list[str], rounds: int, repeats: int) -> None:
    assert doc["schema"] == "banditkit.simulate/1"
    assert doc["environment"]["name"] == env and doc["environment"]["description"]
    assert doc["config"]["rounds"] == rounds and doc["config"]["repeats"] == repeats
    assert set(doc["versions"]) == {"banditkit", "backend", "python", "numpy"}
    marks = doc["checkpoints"]
    assert marks[-1] == rounds and marks == sorted(set(marks))
    assert doc["failures"] == {} and isinstance(doc["skipped"], dict)
    assert list(doc["policies"]) == policies
    for p in doc["policies"].values():
        fr = p["final_regret"]
        assert len(fr["per_repeat"]) == repeats
        assert fr["ci95_low"] <= fr["mean"] <= fr["ci95_high"]
        for key in ("mean", "ci95_low", "ci95_high"):
            assert len(p["regret_curve"][key]) == len(marks)
        assert p["regret_curve"]["mean"][-1] == pytest.approx(fr["mean"])
        assert 0.0 <= p["optimal_arm_rate"] <= 1.0
        assert p["decisions_per_second"] > 0 and p["repeats_completed"] == repeats
        mem = p["memory"]
        assert mem["peak_rss_mb"] > 1 and len(mem["rss_growth_curve_mb"]) == len(marks)
        assert isinstance(mem["grows_with_rounds"], bool)


@pytest.mark.parametrize("env", list(ENVIRONMENTS))
def test_each_environment_runs_every_applicable_policy(tmp_path, env):
    doc = simulate_json(tmp_path, "--env", env, "--features", "3")
    expected = [
        p
        for p in POLICIES
        if ENVIRONMENTS[env].binary_rewards or p not in ("ts", "logistic", "logistic-full")
    ]
    check_schema(doc, env, expected, 300, 2)
    assert doc["policies"]["oracle"]["final_regret"]["mean"] == 0.0


def test_inapplicable_policy_is_skipped_with_a_message(tmp_path):
    out = tmp_path / "g.json"
    proc = banditkit(
        "simulate",
        "--env",
        "gaussian",
        "--policies",
        "logistic,linear",
        "--rounds",
        "200",
        "--repeats",
        "1",
        "--json",
        str(out),
    )
    assert proc.returncode == 0
    assert "skipping logistic: needs 0/1 rewards" in proc.stderr
    doc = json.loads(out.read_text())
    assert list(doc["policies"]) == ["linear"] and "logistic" in doc["skipped"]
    assert "skipped logistic" in proc.stdout


def test_plot_is_a_real_png(tmp_path):
    png = tmp_path / "regret.png"
    proc = banditkit(
        "simulate",
        "--policies",
        "ts,linear,random",
        "--rounds",
        "500",
        "--repeats",
        "3",
        "--plot",
        str(png),
        "--quiet",
    )
    assert proc.returncode == 0, proc.stderr
    data = png.read_bytes()
    assert data[:8] == PNG_MAGIC and len(data) > 20_000
    import matplotlib.image

    height, width, _ = matplotlib.image.imread(str(png)).shape
    assert width >= 800 and height >= 500


def test_seed_is_repeatable_and_matters(tmp_path):
    # 3 x 3 x 20,000 rounds: enough to run on worker processes with --jobs 2.
    args = ("--policies", "ts,lints,random", "--rounds", "20000", "--repeats", "3", "--seed", "7")
    a = simulate_json(tmp_path, *args, "--jobs", "2", name="a.json")
    b = simulate_json(tmp_path, *args, "--jobs", "1", name="b.json")
    c = simulate_json(tmp_path, *args[:-1], "8", "--jobs", "2", name="c.json")
    for name in ("ts", "lints", "random"):
        assert a["policies"][name]["regret_curve"] == b["policies"][name]["regret_curve"]
        assert a["policies"][name]["optimal_arm_rate"] == b["policies"][name]["optimal_arm_rate"]
        assert a["policies"][name]["regret_curve"] != c["policies"][name]["regret_curve"]
    assert a["config"]["seed"] == 7 and c["config"]["seed"] == 8


def test_table_on_stdout_and_silence_on_stderr_when_not_a_tty():
    proc = banditkit("simulate", "--policies", "ts,random", "--rounds", "300", "--repeats", "2")
    assert proc.returncode == 0 and proc.stderr == ""
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("bernoulli: 5 arms, 300 rounds, batch 10, 2 repeats, seed 0")
    assert lines[1].split()[:2] == ["policy", "regret"]
    assert {line.split()[0] for line in lines[2:]} == {"ts", "random"}


def _stderr_on_a_terminal(*args: str) -> str:
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    proc = subprocess.Popen(
        [sys.executable, "-m", "banditkit.cli", *args], stdout=subprocess.DEVNULL, stderr=follower
    )
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # the terminal closed with the child
            break
        if not chunk:
            break
        chunks.append(chunk)
    assert proc.wait(timeout=300) == 0
    os.close(leader)
    return b"".join(chunks).decode(errors="replace")


def test_progress_bar_on_a_terminal_unless_quiet():
    args = ("simulate", "--policies", "ts", "--rounds", "2000", "--repeats", "1")
    shown = _stderr_on_a_terminal(*args)
    assert "simulate" in shown and "2.00k/2.00k" in shown
    assert _stderr_on_a_terminal(*args, "--quiet") == ""


# --- bad arguments: exit code 2 and a single line on stderr ---


BAD = [
    (["--policies", "ts,nope"], "unknown policy nope"),
    (["--env", "moon"], "unknown environment moon; choose from bernoulli"),
    (["--env", "bernoulli,moon"], "unknown environment moon"),
    (["--env", "linear,linear"], "an environment is listed twice in 'linear,linear'"),
    (["--rounds", "0"], "expected a positive integer, got '0'"),
    (["--rounds", "abc"], "expected a positive integer, got 'abc'"),
    (["--repeats", "-3"], "expected a positive integer"),
    (["--seed", "-1"], "expected an integer in [0, 2**32)"),
    (["--arms", "1"], "--arms must be at least 2, got 1"),
    (["--rounds", "50", "--batch", "100"], "--batch (100) cannot exceed --rounds (50)"),
    (["--plot", "regret.jpg"], "--plot writes a PNG file"),
    (["--json", "/no/such/dir/out.json"], "cannot write /no/such/dir/out.json"),
    (["--env", "gaussian", "--policies", "ts,logistic"], "no policy can run on the gaussian"),
    (["--policies", "ts,ts"], "a policy is listed twice"),
    (["--policies", ","], "--policies is empty"),
    (["--plot", "/tmp"], "--plot writes a PNG file"),
    (["--json", "/tmp"], "cannot write /tmp: it is a directory"),
    (["--backend", "fortran"], "invalid choice: 'fortran'"),
    (["--frobnicate"], "unrecognized arguments: --frobnicate"),
]


@pytest.mark.parametrize(("args", "message"), BAD)
def test_bad_arguments_give_one_line_and_exit_2(capsys, args, message):
    with pytest.raises(SystemExit) as exc:
        code = cli.main(["simulate", "--quiet", *args])
        raise SystemExit(code)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") <= 1 + err.count("skipping"), err
    last = err.strip().splitlines()[-1]
    assert last.startswith("banditkit simulate: error: ") and message in last, err


def test_bad_arguments_through_the_real_process():
    proc = banditkit("simulate", "--policies", "nope")
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.strip().count("\n") == 0
    assert proc.stderr.startswith("banditkit simulate: error: unknown policy nope")
    proc = banditkit("bench", "--only", "nope")
    assert proc.returncode == 2 and proc.stderr.startswith("banditkit bench: error: unknown topic")
    assert proc.stderr.strip().count("\n") == 0


# --- bench --plot ---

ROWS = [
    {
        "group": "linear.win_prop",
        "case": "10 arms x 100,000 draws",
        "impl": "rust",
        "median_s": 0.002,
    },
    {
        "group": "linear.win_prop",
        "case": "10 arms x 100,000 draws",
        "impl": "python",
        "median_s": 0.024,
    },
    {
        "group": "linear.win_prop",
        "case": "10 arms x 100,000 draws",
        "impl": "upstream",
        "median_s": 0.1,
    },
    {
        "group": "threads",
        "case": "10 arms x 1,000,000 draws",
        "impl": "rust-1-thread",
        "median_s": 0.03,
    },
    {
        "group": "threads",
        "case": "10 arms x 1,000,000 draws",
        "impl": "rust-2-thread",
        "median_s": 0.02,
    },
    {"group": "peer.only", "case": "no rust here", "impl": "python", "median_s": 1.0},
]


def test_speedups_are_same_run_ratios_against_the_rust_row_with_targets():
    bars = speedups(ROWS)
    assert [(b[1], b[2]) for b in bars] == [
        ("python", "rust"),
        ("upstream", "rust"),
        ("rust-1-thread", "rust-2-thread"),
    ]
    assert [b[3] for b in bars] == pytest.approx([12.0, 50.0, 1.5])
    assert [b[4] for b in bars] == [8.0, 30.0, 1.7]


def test_bench_plot_writes_a_png(tmp_path):
    png = tmp_path / "speedups.png"
    speedup_plot(
        ROWS, str(png), {"cpu": "test cpu", "cores": "2", "python": "3.x", "date": "today"}
    )
    data = png.read_bytes()
    assert data[:8] == PNG_MAGIC and len(data) > 10_000
    empty = tmp_path / "empty.png"
    speedup_plot(ROWS[-1:], str(empty))
    assert empty.read_bytes()[:8] == PNG_MAGIC


def test_bench_writes_header_json_markdown_and_plot(tmp_path, monkeypatch, capsys):
    # A stand-in topic module, so that the wiring is tested without timing anything.
    fake = types.ModuleType("banditkit.bench.thompson")
    fake.run = lambda quick: [dict(r) for r in ROWS]
    monkeypatch.setitem(sys.modules, "banditkit.bench.thompson", fake)
    out = {name: tmp_path / name for name in ("rows.json", "BENCHMARKS.md", "bars.png")}
    code = cli.main(
        [
            "bench",
            "--only",
            "thompson",
            "--quick",
            "--json",
            str(out["rows.json"]),
            "--markdown",
            str(out["BENCHMARKS.md"]),
            "--plot",
            str(out["bars.png"]),
        ]
    )
    assert code == 0
    stdout = capsys.readouterr().out
    header = stdout.splitlines()[0]
    assert header.startswith("banditkit bench: ")
    for key in ("cpu", "cores", "python", "numpy", "rustc", "banditkit"):
        assert f"{key} " in header
    doc = json.loads(out["rows.json"].read_text())
    assert doc["rows"] == ROWS and doc["machine"]["cores"]
    assert "12.0x (rust)" in stdout
    assert stdout.rstrip().endswith("docs/benchmarks.md in the banditkit repository.")
    assert "# Benchmarks" in out["BENCHMARKS.md"].read_text()
    assert out["bars.png"].read_bytes()[:8] == PNG_MAGIC


PAIRED = [
    {
        "group": "threads",
        "case": "10 arms x 1,000,000 draws",
        "impl": "rust-1-thread",
        "median_s": 0.03,
        "repeats": 61,
        "paired_with": "rust-2-thread",
        "ratio_spread": [0.8, 1.6, 1.8, 1.9, 2.05],
        "other_load": 0.4,
    },
    {
        "group": "threads",
        "case": "10 arms x 1,000,000 draws",
        "impl": "rust-2-thread",
        "median_s": 0.02,
        "repeats": 61,
    },
]


def test_paired_rows_report_the_median_pair_ratio_and_its_spread():
    from banditkit.bench import report

    # The median of the per-pair ratios (1.8), not the ratio of the medians (1.5).
    assert [b[3] for b in speedups(PAIRED)] == [1.8]
    spread = "61 pairs: min 0.80, quartiles 1.60-1.90, max 2.05; other processes 0.40 cores"
    assert f"1.8x (rust-2-thread); {spread}" in report.table(PAIRED)
    (target,) = [line for line in report.targets_table(PAIRED).splitlines() if "Thread" in line]
    assert f"1.8x ({spread})" in target and target.endswith("met")
    assert spread in report.markdown(PAIRED, "banditkit bench")


def test_thread_pairs_are_interleaved_measurements_of_the_same_answer():
    pytest.importorskip("banditkit_rs")
    from banditkit.bench import threads

    m = threads.measure(pairs=3)  # raises if the two pools' answers differ
    assert [len(m.samples[t]) for t in (1, 2)] == [3, 3]
    assert m.ratios == [a / b for a, b in zip(m.samples[1], m.samples[2], strict=True)]
    assert m.other_load is None or m.other_load >= 0
    assert threads.spread([3.0, 1.0, 2.0, 5.0, 4.0]) == [1.0, 2.0, 3.0, 4.0, 5.0]


def test_regret_figure_has_one_labelled_curve_per_policy_and_readable_axes():
    from banditkit.simulate import report
    from banditkit.simulate.plot import regret_figure
    from banditkit.simulate.runner import Config, run_all

    cfg = Config(env="bernoulli", policies=("ts", "linear", "random"), rounds=600, repeats=3)
    doc = report.summarise(cfg, run_all(cfg), {})
    (ax,) = regret_figure(doc).axes
    assert ax.get_xlabel() == "round" and "cumulative regret" in ax.get_ylabel()
    assert "bernoulli" in ax.get_title() and "95% interval" in ax.get_title()
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    finals = {n: p["final_regret"]["mean"] for n, p in doc["policies"].items()}
    # Highest final regret first; each label carries the final regret.
    assert [label.split()[0] for label in labels] == sorted(finals, key=lambda n: -finals[n])
    assert labels[0] == f"random  ({finals['random']:.1f})"  # under 100: one decimal
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert len(lines) == 3 and len(ax.collections) == 3  # a band per curve
    for label, line in lines.items():
        name = label.split()[0]
        np.testing.assert_allclose(
            line.get_ydata()[1:], doc["policies"][name]["regret_curve"]["mean"]
        )
        assert list(line.get_xdata()) == [0, *doc["checkpoints"]]
    assert ax.get_xlim() == (0, 600)
