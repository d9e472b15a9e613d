"""`banditkit serve`: the HTTP decision service on uvicorn (docs/serve.md).

Every setting is a flag, a `BANDITKIT_<SETTING>` environment variable and a key of the
`--config` TOML file (flags win over variables, variables over the file).
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from banditkit.serve.settings import (
    FIELDS,
    ServeSettings,
    SettingsError,
    env_name,
    load_settings,
    read_experiments,
)

DESCRIPTION = """\
Serve bandit experiments over HTTP: batch recommendations with exact propensities, reward
feedback, crash-safe state in a store (SQLite by default, PostgreSQL to share it between
servers), Prometheus metrics at /metrics and a live dashboard at /.

examples:
  banditkit serve                                   # http://127.0.0.1:8000, ./banditkit.db
  BANDITKIT_TOKEN=secret banditkit serve --host 0.0.0.0 --store postgresql://bk@db/bandits
  banditkit serve --config serve.toml --workers 2"""


def add_parser(sub: Any) -> None:
    """Add `serve` to the `banditkit` command's subparsers."""
    p = sub.add_parser(
        "serve",
        help="serve experiments over HTTP (recommend, rewards, metrics, dashboard)",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--config", metavar="FILE.toml", help="settings file (keys as the flags)")
    for name, field in ServeSettings.model_fields.items():
        default = "none" if field.default is None else field.default
        if name == "token":
            default = "none; prefer the variable, a flag shows in the process list"
        p.add_argument(
            "--" + name.replace("_", "-"),
            dest=name,
            metavar=name.upper(),
            help=f"{field.description} (default: {default}; {env_name(name)})",
        )
    p.set_defaults(func=serve_command, subparser=p)


def _fail(message: str) -> int:
    print(f"banditkit serve: error: {message}", file=sys.stderr)
    return 2


def shown_url(url: str) -> str:
    """The store URL without its password, for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def check_store(url: str) -> str | None:
    """Why the store at `url` cannot be opened, or None: said in one line before uvicorn starts,
    rather than as a traceback from inside the app's startup."""
    from banditkit.store import open_store

    # A PostgreSQL server that does not answer is reported after 10 s, not the pool's 30.
    options = {"timeout": 10.0} if url.lower().startswith("postgres") else {}
    try:
        open_store(url, **options).close()
    except ImportError as exc:
        return f"the store {shown_url(url)} needs {exc.name}: pip install 'banditkit[postgres]'"
    except Exception as exc:  # the driver's errors (psycopg.OperationalError, sqlite3, OSError)
        text = str(exc).replace(url, shown_url(url))  # never print the password
        return text if shown_url(url) in text else f"cannot open the store {shown_url(url)}: {text}"
    return None


def serve_command(args: argparse.Namespace) -> int:
    try:
        settings = load_settings(args.config, os.environ, {f: getattr(args, f) for f in FIELDS})
        settings.check_exposure()
        experiments = read_experiments(args.config) if args.config else []
    except SettingsError as exc:
        return _fail(str(exc))
    if problem := check_store(settings.store):
        return _fail(problem)
    if experiments and (problem := create_experiments(settings, experiments)):
        return _fail(problem)
    print(banner(settings), file=sys.stderr, flush=True)
    run(settings)
    return 0


def create_experiments(settings: ServeSettings, experiments: list[dict[str, Any]]) -> str | None:
    """Create the config's experiments in the store before serving (an experiment that exists
    is kept as it is: its learned state is what gets served). A problem as one line, or None."""
    from banditkit.serve.engine import Engine
    from banditkit.serve.errors import ExperimentExists, ServeError

    engine = Engine(settings.store, poll_interval=3600.0, seed=settings.seed)
    engine.start()
    try:
        for body in experiments:
            try:
                engine.create(body["name"], body["policy"], body["arms"], body.get("params", {}))
                print(f"created experiment {body['name']!r}", file=sys.stderr)
            except ExperimentExists:
                print(f"experiment {body['name']!r} exists: serving it as stored", file=sys.stderr)
            except ServeError as exc:
                return f"experiment {body.get('name')!r} in the config: {exc}"
    finally:
        engine.close()
    return None


def banner(settings: ServeSettings) -> str:
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    workers = f"{settings.workers} worker{'s' if settings.workers > 1 else ''}"
    writes = (
        "writes need the bearer token"
        if settings.token
        else "no token: listening on the loopback only, any local process may write"
    )
    where = f"http://{host}:{settings.port}" if settings.port else f"{host}, a free port"
    return (
        f"banditkit serve: {where} (dashboard at /), store "
        f"{shown_url(settings.store)}, {workers}; {writes}"
    )


def log_config(level: str) -> dict[str, Any]:
    """uvicorn's logging setup, with banditkit's own lines (slow calls, store trouble) printed
    the same way as uvicorn's."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"]["banditkit"] = {
        "handlers": ["default"],
        "level": level.upper(),
        "propagate": False,
    }
    return config


def run(settings: ServeSettings) -> None:
    """Serve until SIGINT/SIGTERM; uvicorn then runs the app's shutdown (final snapshots)."""
    import uvicorn

    options: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "log_level": settings.log_level,
        "log_config": log_config(settings.log_level),
        # One log line per request costs more than a batched decision: only when debugging.
        "access_log": settings.log_level == "debug",
        "timeout_graceful_shutdown": 30,
    }
    if settings.workers == 1:
        from banditkit.serve.app import create_app

        uvicorn.run(create_app(settings), **options)
        return
    from banditkit.serve.app import SETTINGS_ENV

    # Worker processes import the app by name, so the settings travel in their environment.
    os.environ[SETTINGS_ENV] = settings.model_dump_json()
    uvicorn.run(
        "banditkit.serve.app:app_from_env", factory=True, workers=settings.workers, **options
    )
