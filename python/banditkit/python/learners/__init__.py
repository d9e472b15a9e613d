"""Learners for logged and live contextual feedback (NumPy reference)."""

from __future__ import annotations

from .context_tree import ContextTree

__all__ = ["ContextTree"]
