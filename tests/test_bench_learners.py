"""`banditkit bench --only learners` at toy sizes: its rows, and learners a backend lacks
skipped with a note (nothing here is timed)."""

from __future__ import annotations

from banditkit.bench import learners
from banditkit.cli import BENCH_TOPICS


def test_rows_for_present_learners_and_notes_for_missing(monkeypatch, capsys):
    assert "learners" in BENCH_TOPICS
    monkeypatch.setattr(learners, "CLASSES", ("LinUCB", "NoSuchLearner"))
    monkeypatch.setattr(learners, "D", 6)
    monkeypatch.setattr(learners, "WARMUP", 50)
    monkeypatch.setattr(learners, "N_CONTEXTS", 50)
    monkeypatch.setattr(learners, "PROPENSITY_ROWS", 200)
    monkeypatch.setattr(learners, "updates", lambda backend, quick: 2000)
    rows = learners.run(quick=True)
    err = capsys.readouterr().err
    assert "NoSuchLearner skipped: not in the python backend yet" in err
    backends = {r["impl"] for r in rows}
    assert "python" in backends
    for impl in backends:
        cases = {r["case"] for r in rows if r["impl"] == impl}
        assert {
            "LinUCB select, d=6, 10 arms",
            "LinUCB update, d=6, 10 arms",
            "LinUCB memory, 2,000 updates",
            "LinUCB.propensities, 20 x d=6, 10 arms",
            "LinTS.propensities, 20 x d=6, 10 arms",
        } <= cases
    memory = [r for r in rows if "memory" in r["case"]]
    assert all("growth" in r["note"] and r["per"] == 2000 for r in memory)
    assert all(r["group"] == "learners" and r["median_s"] > 0 for r in rows)
