"""`banditkit.serve`: an HTTP decision service over a banditkit store (`banditkit serve`).

`create_app(...)` gives the ASGI app, `ServeSettings` its settings and `Engine` the
experiments it serves (usable without HTTP). Imports are lazy so that `import banditkit.serve`
does not pull in FastAPI.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from banditkit.serve.app import create_app
    from banditkit.serve.engine import Engine
    from banditkit.serve.settings import ServeSettings

__all__ = ["create_app", "ServeSettings", "Engine"]

_WHERE = {
    "create_app": "banditkit.serve.app",
    "ServeSettings": "banditkit.serve.settings",
    "Engine": "banditkit.serve.engine",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        import importlib

        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'banditkit.serve' has no attribute {name!r}")
