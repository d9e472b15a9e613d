"""`banditkit store ls|show|history|export|import`, on SQLite and PostgreSQL: moving a model and
its events between the two is an export from one and an import into the other."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import banditkit
from banditkit import cli
from banditkit.python import _format
from banditkit.store import open_store


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = cli.main(["store", *args])
    out, err = capsys.readouterr()
    return code, out, err


def model(successes: int):
    m = banditkit.TSPar(seed=4)
    m.update({"a": [100, successes], "b": [100, 50]})
    return m


EVENTS = [
    {"id": "d1", "kind": "decision", "arm": "a", "propensity": 0.4, "context": [1.0, 2.0],
     "policy_version": 1, "time": 1_700_000_000.0},
    {"id": "r1", "kind": "reward", "reward": 1.0, "decision_id": "d1", "time": 1_700_000_001.0},
]  # fmt: skip


@pytest.fixture
def filled(store_url: str) -> str:
    with open_store(store_url) as s:
        s.put("home", model(10))
        s.put("home", model(20))
        s.put("away", model(30))
        s.append_events("home", EVENTS)
    return store_url


def test_ls(filled, capsys):
    code, out, _ = run(capsys, "ls", filled)
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["name", "version", "bytes", "written", "events"]
    assert [line.split()[:2] for line in lines[1:]] == [["away", "1"], ["home", "2"]]
    assert lines[2].split()[-1] == "2" and lines[1].split()[-1] == "0"


def test_ls_of_an_empty_store(store_url, capsys):
    open_store(store_url).close()
    assert run(capsys, "ls", store_url)[:2] == (0, f"no models in {store_url}\n")


def test_show(filled, capsys):
    code, out, _ = run(capsys, "show", filled, "home")
    assert code == 0
    head, body = out.splitlines()[0], "\n".join(out.splitlines()[1:])
    assert head.startswith("home version 2 of 2, written ") and head.endswith(", 2 events")
    with open_store(filled) as s:
        assert body == repr(s.get("home"))
    code, out, _ = run(capsys, "show", filled, "home", "--version", "1")
    assert code == 0 and out.startswith("home version 1 of 2")


def test_history(filled, capsys):
    code, out, _ = run(capsys, "history", filled, "home")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["version", "written", "bytes"]
    assert [line.split()[0] for line in lines[1:3]] == ["1", "2"]
    assert lines[-1] == "events: 2"


@pytest.mark.parametrize("direction", ["sqlite-to-here", "here-to-sqlite"])
def test_export_then_import_moves_a_model_and_its_events(filled, tmp_path, capsys, direction):
    other = f"sqlite:///{tmp_path / 'other.db'}"
    source, target = (filled, other) if direction == "here-to-sqlite" else (other, filled)
    if direction == "sqlite-to-here":  # fill the SQLite source the same way
        with open_store(other) as s:
            s.put("home", model(10))
            s.append_events("home", EVENTS)
    file, log = tmp_path / "home.bkit", tmp_path / "home.jsonl"
    code, out, err = run(capsys, "export", source, "home", "-o", str(file), "--events", str(log))
    assert code == 0, err
    with open_store(source) as s:
        blob, events = s.get_bytes("home"), [e.as_dict() for e in s.events("home")]
    assert file.read_bytes() == blob
    assert banditkit.load(file).to_bytes() == blob  # the file is a banditkit model file
    assert [json.loads(line) for line in log.read_text().splitlines()] == events

    with open_store(target) as s:
        before = s.latest_version("home") if "home" in s.names() else 0
    code, out, err = run(capsys, "import", target, "home", "-i", str(file), "--events", str(log))
    assert code == 0, err
    assert f"as home version {before + 1}" in out
    assert f"appended {0 if before else 2} new events of 2" in out
    with open_store(target) as s:
        assert s.get_bytes("home") == blob
        assert [e.as_dict() for e in s.events("home")] == events
    # into a name the target does not have: the events are new there
    code, out, err = run(capsys, "import", target, "copy", "-i", str(file), "--events", str(log))
    assert code == 0 and "as copy version 1" in out and "appended 2 new events of 2" in out


def test_export_of_one_version(filled, tmp_path, capsys):
    file = tmp_path / "v1.bkit"
    assert run(capsys, "export", filled, "home", "--version", "1", "-o", str(file))[0] == 0
    with open_store(filled) as s:
        assert file.read_bytes() == s.get_bytes("home", 1)


def test_import_refuses_what_banditkit_cannot_read(filled, tmp_path, capsys):
    with open_store(filled) as s:
        before = [v.version for v in s.versions("home")]
    bad = tmp_path / "bad.bkit"
    for content in (b"not a model", _format.encode("Pwned", {"arms": []}, [])):
        bad.write_bytes(content)
        code, _, err = run(capsys, "import", filled, "home", "-i", str(bad))
        assert code == 2 and err.startswith("banditkit store import: error: ")
    events = tmp_path / "bad.jsonl"
    events.write_text('{"id": "x", "kind": "decision"}\n')
    good = tmp_path / "good.bkit"
    good.write_bytes(model(1).to_bytes())
    code, _, err = run(capsys, "import", filled, "home", "-i", str(good), "--events", str(events))
    assert code == 2 and "missing" in err
    with open_store(filled) as s:
        assert [v.version for v in s.versions("home")] == before
        assert len(s.events("home")) == 2


def test_import_with_a_stale_expected_version(filled, tmp_path, capsys):
    file = tmp_path / "m.bkit"
    file.write_bytes(model(1).to_bytes())
    code, _, err = run(capsys, "import", filled, "home", "-i", str(file), "--expected-version", "1")
    assert code == 2 and "expected version 1" in err
    code, out, _ = run(capsys, "import", filled, "home", "-i", str(file), "--expected-version", "2")
    assert code == 0 and "home version 3" in out


@pytest.mark.parametrize("action", ["show", "history", "export"])
def test_a_missing_name(filled, tmp_path, capsys, action):
    extra = ["-o", str(tmp_path / "x.bkit")] if action == "export" else []
    code, _, err = run(capsys, action, filled, "nope", *extra)
    assert (
        code == 2
        and err == f"banditkit store {action}: error: no model named 'nope' in the store\n"
    )
    assert not (tmp_path / "x.bkit").exists()


def test_a_missing_sqlite_file_is_not_created(tmp_path: Path, capsys):
    path = tmp_path / "typo.db"
    code, _, err = run(capsys, "ls", f"sqlite:///{path}")
    assert code == 2 and "no SQLite store at" in err
    assert not path.exists()


def test_an_unsupported_url(capsys):
    code, _, err = run(capsys, "ls", "mysql://localhost/db")
    assert code == 2 and "unsupported store URL" in err


def test_usage_errors(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["store", "export", "sqlite:///x.db", "m"])  # no -o
    assert exit_.value.code == 2
    assert "required: -o/--output" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["store", "show", "sqlite:///x.db", "m", "--version", "0"])
    assert "expected a version" in capsys.readouterr().err
