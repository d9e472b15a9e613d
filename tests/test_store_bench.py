"""`banditkit bench --only store` produces every row its targets and README promise (a small
model stands in for d=387 to keep this quick; nothing here is timed)."""

from __future__ import annotations

import pytest

from banditkit.bench import report
from banditkit.bench import store as bench_store


@pytest.fixture
def small(monkeypatch):
    monkeypatch.setattr(bench_store, "D", 16)
    monkeypatch.delenv(bench_store.URL_VAR, raising=False)


def impls(rows, group: str, case: str) -> set[str]:
    return {r["impl"] for r in rows if r["group"] == group and r["case"] == case}


def test_rows_and_targets_on_sqlite(small, capsys):
    rows = bench_store.run(quick=True)
    err = capsys.readouterr().err
    assert f"postgresql rows skipped: set {bench_store.URL_VAR}" in err
    codec = {"rust", "python", "memcpy", "memcpy-file", "pickle-numpy", "pickle-arrays"}
    for group in ("store.to_bytes", "store.from_bytes"):
        assert impls(rows, group, bench_store.CODEC_CASE) == codec
    for group in ("store.put", "store.get"):
        for case in (bench_store.CODEC_CASE, bench_store.TSPAR_CASE):
            assert impls(rows, group, case) == {"sqlite p50", "sqlite p99"}
    for case in ("batch of 1", "batch of 1,000"):
        assert impls(rows, "store.append_events", case) == {"sqlite"}
    assert all(r["median_s"] > 0 for r in rows)
    store_targets = [
        (t, v) for t, v, _ in report.target_results(rows) if t.group.startswith("store")
    ]
    assert len(store_targets) == 4 and all(v is not None for _, v in store_targets)
    assert "sqlite append_events, batch of 1,000:" in err


def test_postgresql_rows_when_configured(small, postgres_server, monkeypatch, capsys):
    import psycopg

    monkeypatch.setenv(bench_store.URL_VAR, postgres_server)
    rows = bench_store.store_rows(quick=True)
    assert impls(rows, "store.put", bench_store.TSPAR_CASE) == {
        "sqlite p50", "sqlite p99", "postgresql p50", "postgresql p99"
    }  # fmt: skip
    assert impls(rows, "store.append_events", "batch of 1") == {"sqlite", "postgresql"}
    with psycopg.connect(postgres_server) as conn:  # the bench's schema is gone
        left = conn.execute(
            "SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'bk_bench_%'"
        ).fetchone()[0]
    assert left == 0
