"""The in-memory journal for tests: :class:`oms_core.journal.MemoryJournal`, a compiled
implementation of the journal stage the engine loop journals through (no durability)."""

from __future__ import annotations

from oms_core.journal import MemoryJournal

__all__ = ["MemoryJournal"]
