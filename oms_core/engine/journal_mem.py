"""An in-memory journal with the engine's journal interface (tests; no durability)."""

from __future__ import annotations


class MemoryJournal:
    """Keeps inputs and events in lists; ``commit`` marks what is durable.

    Attributes
    ----------
    inputs : list of (kind, ts, payload)
    events : list of event records (bytes)
    committed_inputs, committed_events : int
        How many of each were covered by the last ``commit``.
    """

    def __init__(self) -> None:
        self.inputs: list[tuple[int, int, bytes]] = []
        self.events: list[bytes] = []
        self.committed_inputs = 0
        self.committed_events = 0
        self.n_commits = 0
        self.closed = False

    def append_input(self, kind: int, ts: int, payload: bytes) -> None:
        self.inputs.append((kind, ts, bytes(payload)))

    def append_event(self, record: bytes) -> None:
        self.events.append(bytes(record))

    def commit(self) -> None:
        self.committed_inputs = len(self.inputs)
        self.committed_events = len(self.events)
        self.n_commits += 1

    def close(self) -> None:
        self.commit()
        self.closed = True


__all__ = ["MemoryJournal"]
