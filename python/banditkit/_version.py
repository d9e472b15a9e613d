"""The package version (in its own module so that both backends can read it at import time)."""

__version__ = "0.1.0"
