"""Type stubs: the public names have the Rust backend's types (the Python backend matches)."""

from banditkit_rs import LinearBandit as LinearBandit
from banditkit_rs import LinTS as LinTS
from banditkit_rs import LinUCB as LinUCB
from banditkit_rs import LogisticBandit as LogisticBandit
from banditkit_rs import TSPar as TSPar
from banditkit_rs import prob_best_beta as prob_best_beta
from banditkit_rs import prob_best_gaussian as prob_best_gaussian
from banditkit_rs import prob_best_mvn as prob_best_mvn

__version__: str

def backend() -> str: ...
