"""`banditkit store ls|show|history|export|import URL [NAME]`: look into a store, and move a
model (and its event log) between stores, e.g. from SQLite to PostgreSQL.

File formats: `export -o FILE` writes the stored state exactly as stored: the banditkit model
format (`banditkit.load(FILE)` reads it, `banditkit.save` writes it). `--events FILE` writes
the event log as JSON Lines, one event per line as `Event.as_dict()` gives it (`id`, `kind`,
`time` and the event's fields), oldest first; `import --events FILE` appends such a file
(idempotent: ids already in the log are skipped).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import tempfile
from collections.abc import Callable
from typing import Any

from banditkit.store import ModelNotFound, Store, StoreError, open_store

COMMANDS = {
    "ls": "list the models: latest version, size, when written, events",
    "show": "a model's latest (or --version) state, loaded",
    "history": "every version of a model, with its time and size",
    "export": "write a model's state to a file (and its events to JSON Lines)",
    "import": "store a model file as the next version of NAME (and append events)",
}


def when(seconds: float) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def columns(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(x) for x in col) for col in zip(header, *rows, strict=True)]
    return "\n".join("  ".join(f"{x:<{w}}" for x, w in zip(r, widths, strict=True)).rstrip()
                     for r in [header, *rows])  # fmt: skip


def _ls(store: Store, args: argparse.Namespace) -> int:
    rows = []
    for name in store.names():
        last = store.versions(name)[-1]
        rows.append(
            [
                name,
                str(last.version),
                f"{last.size:,}",
                when(last.created_at),
                f"{store.count_events(name):,}",
            ]  # fmt: skip
        )
    if not rows:
        print(f"no models in {store.url}")
        return 0
    print(columns(["name", "version", "bytes", "written", "events"], rows))
    return 0


def _show(store: Store, args: argparse.Namespace) -> int:
    info = store.versions(args.name)
    version = args.version or info[-1].version
    chosen = next((v for v in info if v.version == version), None)
    if chosen is None:
        raise ModelNotFound(args.name, version)
    obj = store.get(args.name, version)
    print(
        f"{args.name} version {version} of {info[-1].version}, written {when(chosen.created_at)},"
        f" {chosen.size:,} bytes, {store.count_events(args.name):,} events"
    )
    print(repr(obj))
    return 0


def _history(store: Store, args: argparse.Namespace) -> int:
    rows = [[str(v.version), when(v.created_at), f"{v.size:,}"] for v in store.versions(args.name)]
    print(columns(["version", "written", "bytes"], rows))
    print(f"events: {store.count_events(args.name):,}")
    return 0


def _write_atomically(path: str, write: Callable[[Any], None], mode: str) -> None:
    """Write `path` through a temporary file in the same folder: a failed export leaves no
    half-written file behind."""
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".banditkit-export-")
    try:
        with os.fdopen(fd, mode) as f:
            write(f)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def _export(store: Store, args: argparse.Namespace) -> int:
    blob = store.get_bytes(args.name, args.version)
    version = args.version or store.latest_version(args.name)
    _write_atomically(args.output, lambda f: f.write(blob), "wb")
    print(f"wrote {args.name} version {version} ({len(blob):,} bytes) to {args.output}")
    if args.events:
        log = store.events(args.name)

        def lines(f: Any) -> None:
            for e in log:
                f.write(json.dumps(e.as_dict(), allow_nan=False) + "\n")

        _write_atomically(args.events, lines, "w")
        print(f"wrote {len(log):,} events to {args.events}")
    return 0


def _read_events(path: str) -> list[dict[str, Any]]:
    out = []
    with open(path) as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path} line {number} is not JSON: {exc}") from None
    return out


def _import(store: Store, args: argparse.Namespace) -> int:
    import banditkit

    with open(args.input, "rb") as f:
        blob = f.read()
    banditkit.loads(blob)  # refuse what banditkit cannot read before storing anything
    events = _read_events(args.events) if args.events else None
    if events is not None:  # checked before the model is written
        from banditkit.store.events import validate

        validate(events)
    version = store.put_bytes(args.name, blob, expected_version=args.expected_version)
    print(f"stored {args.input} as {args.name} version {version}")
    if events is not None:
        new = store.append_events(args.name, events)
        print(f"appended {new:,} new events of {len(events):,} from {args.events}")
    return 0


HANDLERS = {"ls": _ls, "show": _show, "history": _history, "export": _export, "import": _import}


def _version(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a version (an integer >= 1), got {text!r}")
    return value


def add_parser(sub: Any, parser_class: type[argparse.ArgumentParser]) -> None:
    """Add `store` and its subcommands to the `banditkit` command's subparsers."""
    store = sub.add_parser(
        "store",
        help="look into a model store and move models between stores",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = store.add_subparsers(dest="action", required=True, parser_class=parser_class)
    for action, help_text in COMMANDS.items():
        p = actions.add_parser(action, help=help_text, description=help_text)
        p.add_argument("url", metavar="URL", help="sqlite:///path.db or postgresql://...")
        if action != "ls":
            p.add_argument("name", metavar="NAME", help="the model's name in the store")
        if action in ("show", "export"):
            p.add_argument("--version", type=_version, help="this version (default: the latest)")
        if action == "export":
            p.add_argument("-o", "--output", required=True, metavar="FILE", help="model file")
        if action == "import":
            p.add_argument("-i", "--input", required=True, metavar="FILE", help="model file")
            p.add_argument(
                "--expected-version",
                type=int,
                metavar="V",
                help="store only if V is the latest version (0: only if NAME is new)",
            )
        if action in ("export", "import"):
            p.add_argument("--events", metavar="FILE.jsonl", help="the event log, JSON Lines")
        p.set_defaults(func=run, subparser=p)


def run(args: argparse.Namespace) -> int:
    """Run one `banditkit store` subcommand; errors (a bad URL, a missing store, name or file,
    a file banditkit cannot read: `banditkit.FormatError` is a ValueError) are one line on
    stderr and exit status 2."""
    try:
        with open_store(args.url, create=args.action == "import") as store:
            return HANDLERS[args.action](store, args)
    except (StoreError, ValueError, KeyError, OSError) as exc:
        print(f"banditkit store {args.action}: error: {exc}", file=sys.stderr)
        return 2
