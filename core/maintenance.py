"""The maintenance vocabulary shared by the store and the prescriber: work-order priorities."""

from __future__ import annotations

from typing import Literal, get_args

__all__ = ["PRIORITIES", "Priority"]

#: A work order's priority.
Priority = Literal["low", "medium", "high", "urgent"]
#: Work-order priorities, lowest first.
PRIORITIES: tuple[Priority, ...] = get_args(Priority)
