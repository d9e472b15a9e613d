"""`banditkit serve` settings: defaults < TOML < BANDITKIT_* < flags, bad values named with their
source, the loopback rule, and pydantic's errors turned into the API's field paths."""

from __future__ import annotations

from pathlib import Path

import pytest

from banditkit.cli import build_parser
from banditkit.serve.cli import banner, shown_url
from banditkit.serve.settings import ServeSettings, SettingsError, load_settings
from banditkit.serve.validation import describe_validation_error, field_path


def test_defaults() -> None:
    s = load_settings(environ={})
    assert (s.host, s.port, s.store, s.workers, s.token) == (
        "127.0.0.1",
        8000,
        "sqlite:///banditkit.db",
        1,
        None,
    )
    assert (s.max_body_bytes, s.max_batch, s.threads) == (1 << 20, 1000, 8)
    assert (s.slow_recommend_ms, s.slow_update_ms) == (50, 20)


def test_precedence_file_env_flags(tmp_path: Path) -> None:
    config = tmp_path / "serve.toml"
    config.write_text('[serve]\nport = 9000\nmax_batch = 10\nstore = "sqlite:///file.db"\n')
    env = {"BANDITKIT_PORT": "9100", "BANDITKIT_MAX_BATCH": "20", "BANDITKIT_BACKEND": "rust"}
    s = load_settings(config, env, {"port": "9200", "host": None})
    assert (s.port, s.max_batch, s.store, s.host) == (9200, 20, "sqlite:///file.db", "127.0.0.1")
    # A file without a [serve] table is read at the top level; an empty variable is unset.
    config.write_text("seed = 3\n")
    assert load_settings(config, {"BANDITKIT_SEED": ""}).seed == 3


@pytest.mark.parametrize(
    ("toml", "env", "flags", "words"),
    [
        ("", {"BANDITKIT_PORT": "http"}, {}, ["port", "BANDITKIT_PORT", "'http'"]),
        ("max_batch = 0\n", {}, {}, ["max_batch", "serve.toml", "greater than or equal to 1"]),
        ("prot = 1\n", {}, {}, ["unknown setting 'prot'", "serve.toml"]),
        ("", {}, {"workers": "0"}, ["workers", "command line"]),
        ("", {}, {"snapshot_every_seconds": "nan"}, ["snapshot_every_seconds", "finite"]),
        ("", {}, {"log_level": "loud"}, ["log_level", "'debug'"]),
        ("port = [\n", {}, {}, ["not valid TOML"]),
    ],
)
def test_bad_settings_name_the_setting_and_its_source(
    tmp_path: Path, toml: str, env: dict[str, str], flags: dict[str, str], words: list[str]
) -> None:
    config = tmp_path / "serve.toml"
    config.write_text(toml)
    with pytest.raises(SettingsError) as err:
        load_settings(config, env, flags)
    for word in words:
        assert word in str(err.value)


def test_a_missing_config_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="nope.toml"):
        load_settings(tmp_path / "nope.toml", {})


def test_the_token_never_shows() -> None:
    s = ServeSettings(token="s3cret")
    assert "s3cret" not in repr(s) and "s3cret" not in banner(s)
    with pytest.raises(SettingsError) as err:
        load_settings(environ={"BANDITKIT_TOKEN": "s3cret", "BANDITKIT_PORT": "x"})
    assert "s3cret" not in str(err.value)
    assert shown_url("postgresql://bk:pw@db:5432/x") == "postgresql://bk:***@db:5432/x"


@pytest.mark.parametrize(
    ("host", "token", "allowed"),
    [
        ("127.0.0.1", None, True),
        ("localhost", None, True),
        ("::1", None, True),
        ("127.0.0.2", None, True),
        ("0.0.0.0", None, False),
        ("::", None, False),
        ("10.1.2.3", None, False),
        ("example.org", None, False),
        ("0.0.0.0", "t", True),
    ],
)
def test_only_loopback_without_a_token(host: str, token: str | None, allowed: bool) -> None:
    s = ServeSettings(host=host, token=token)
    if allowed:
        s.check_exposure()
    else:
        with pytest.raises(SettingsError, match="without a token"):
            s.check_exposure()


def test_every_setting_is_a_flag() -> None:
    args = build_parser().parse_args(["serve", "--max-batch", "7", "--slow-update-ms", "5"])
    assert args.max_batch == "7" and args.slow_update_ms == "5" and args.port is None
    assert args.func.__name__ == "serve_command"


@pytest.mark.parametrize(
    ("loc", "field"),
    [
        (("body", "requests", 3, "context"), "requests[3].context"),
        (("body", "requests", 0, "candidates", 1, "str"), "requests[0].candidates[1]"),
        (("body", "rewards", 2, "arm", "int"), "rewards[2].arm"),
        (("body",), "body"),
        (("query", "seconds"), "seconds"),
        (("path", "name"), "name"),
    ],
)
def test_field_paths(loc: tuple[str | int, ...], field: str) -> None:
    assert field_path(loc) == field


def test_union_errors_are_one_message() -> None:
    errors = [
        {"loc": ("body", "arms", 1, "str"), "type": "string_type", "input": 1.5,
         "msg": "Input should be a valid string"},
        {"loc": ("body", "arms", 1, "int"), "type": "int_type", "input": 1.5,
         "msg": "Input should be a valid integer"},
    ]  # fmt: skip
    assert describe_validation_error(errors) == (
        "arms[1]",
        "Input should be a valid string or integer, got 1.5",
    )


def test_a_store_that_cannot_be_opened_is_one_line_without_its_password(tmp_path: Path) -> None:
    from banditkit.serve.cli import check_store

    assert check_store(f"sqlite:///{tmp_path / 'ok.db'}") is None
    assert "unable to open" in (check_store(f"sqlite:///{tmp_path / 'no' / 'x.db'}") or "")
    pytest.importorskip("psycopg")
    problem = check_store("postgresql://bk:hunter2@127.0.0.1:1/nowhere") or ""
    assert "hunter2" not in problem and "bk:***@127.0.0.1:1" in problem
