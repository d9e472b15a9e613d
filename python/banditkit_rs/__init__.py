"""banditkit's Rust backend: drop-in `LinearBandit`, `TSPar`, `LogisticBandit` and friends.

`from banditkit_rs import LinearBandit` works for code written against orts. The classes and
kernels live in the private native module `banditkit_rs._banditkit_rs`; this file re-exports them.
"""

import importlib

from banditkit_rs import _banditkit_rs as _native
from banditkit_rs._banditkit_rs import *  # noqa: F403

# After the classes: importing banditkit imports this package back (backend selection).
FormatError = importlib.import_module("banditkit._errors").FormatError

__version__: str = _native.__version__
__all__ = sorted([*(name for name in dir(_native) if not name.startswith("_")), "FormatError"])
