"""Type stubs: the public names have the Rust backend's types (the Python backend matches)."""

import os
from typing import Any

from banditkit._errors import FormatError as FormatError
from banditkit.ensemble import BootstrapRidge as BootstrapRidge
from banditkit.ensemble import BootstrapTS as BootstrapTS
from banditkit_rs import ContextTree as ContextTree
from banditkit_rs import DoublyRobust as DoublyRobust
from banditkit_rs import LinearBandit as LinearBandit
from banditkit_rs import LinTS as LinTS
from banditkit_rs import LinUCB as LinUCB
from banditkit_rs import LogisticBandit as LogisticBandit
from banditkit_rs import OffsetTree as OffsetTree
from banditkit_rs import TSPar as TSPar
from banditkit_rs import prob_best_beta as prob_best_beta
from banditkit_rs import prob_best_gaussian as prob_best_gaussian
from banditkit_rs import prob_best_gaussian_rows as prob_best_gaussian_rows
from banditkit_rs import prob_best_mvn as prob_best_mvn

__version__: str

def backend() -> str: ...
def dumps(obj: Any) -> bytes: ...
def loads(data: bytes | bytearray | memoryview) -> Any: ...
def save(obj: Any, path: str | os.PathLike[str]) -> None: ...
def load(path: str | os.PathLike[str]) -> Any: ...
