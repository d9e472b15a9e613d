"""Learners from logged or live bandit feedback (docs/learners.md), NumPy reference."""

from __future__ import annotations

from .context_tree import ContextTree
from .doubly_robust import DoublyRobust
from .offset_tree import OffsetTree

__all__ = ["ContextTree", "DoublyRobust", "OffsetTree"]
