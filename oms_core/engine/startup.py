"""Engine start with a journal: recover, snapshot periodically.

Cold code, run once at start (and, for snapshots, once every N records or S seconds)::

    journal = open_journal(dir)                       # truncates a torn tail
    engine = Engine(core, journal=journal, config=cfg)
    res = recover_engine(engine, dir)                 # snapshot + replay via Engine.apply_input
    journal.snapshots = EngineSnapshots(engine, dir)  # after each commit, when one is due
    gate_after_restart(engine, res)                   # optional (oms_core/engine/reconcile.py):
    engine.bind(); engine.run(ready)                  # global HALT until reconciled

Recovery uses the engine's OWN apply path (``Engine.apply_input``, the compiled
``EngineLoop.apply_input`` with answers and sends suppressed), so the replayed state is
what the live engine built: core, event sequence, the loop's generated client order ids,
strategy on/off flags and the reference prices sampled for signal sizing.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from typing import Any

from oms_core import recovery
from oms_core.journal import Journal, JournalStage, SnapshotTrigger

log = logging.getLogger("oms.engine.startup")


# ---------------------------------------------------------------------------------------------
# The engine's own state beside the core's snapshot
# ---------------------------------------------------------------------------------------------


def engine_state(engine: Any) -> dict[str, Any]:
    """The engine's small state a snapshot keeps beside ``OmsCore.snapshot()`` (JSON)."""
    return {
        "loop": dict(engine.loop.engine_state()),
        "strategy_enabled": {str(k): bool(v) for k, v in engine.strategy_enabled.items()},
        "closes": {str(k): list(v) for k, v in getattr(engine, "_closes", {}).items()},
        "trade_bars": engine.bars.state() if getattr(engine, "bars", None) is not None else {},
    }


def restore_engine_state(engine: Any, extra: dict[str, Any]) -> None:
    """Put back what :func:`engine_state` saved (called after the core is restored)."""
    from collections import deque

    if "loop" in extra:
        engine.loop.restore_engine_state(dict(extra["loop"]))
    for k, v in extra.get("strategy_enabled", {}).items():
        engine.strategy_enabled[int(k)] = bool(v)
    closes = getattr(engine, "_closes", None)
    if closes is not None:
        closes.clear()
        for k, v in extra.get("closes", {}).items():
            closes[int(k)] = deque((int(x) for x in v), maxlen=1024)
    bars = getattr(engine, "bars", None)
    if bars is not None:  # an interval no strategy uses any more is dropped
        bars.restore(dict(extra.get("trade_bars", {})))


# ---------------------------------------------------------------------------------------------
# Recovery
# ---------------------------------------------------------------------------------------------


def recover_engine(engine: Any, journal_dir: str) -> recovery.RecoveryResult:
    """Rebuild ``engine`` (fresh, built from the same configuration) from ``journal_dir``.

    Newest valid snapshot (core + :func:`engine_state`), then every journaled input after it
    through ``engine.apply_input``. The event sequence must end where the journal's does; if
    it does not (a non-deterministic input handler), the engine continues after the journal's
    so that no event sequence number is ever given twice, and the mismatch is logged.
    """
    # the engine's journal on this directory is already open (its tail cut): its end spares
    # recover() a second read of the last segment (~0.15 s for a full 64 MB segment)
    j = engine.journal
    end_seq = None
    if isinstance(j, Journal) and os.path.abspath(j.path) == os.path.abspath(journal_dir):
        end_seq = j.committed_seq
    res = recovery.recover(journal_dir, engine.core, engine.apply_input,
                           on_snapshot=lambda s: restore_engine_state(engine, s.extra),
                           end_seq=end_seq)
    loop = engine.loop
    res.replayed_event_seq = int(loop.seq)
    if loop.seq != res.last_event_seq:
        log.error("replay ended at event seq %d but the journal at %d; continuing after the "
                  "larger", loop.seq, res.last_event_seq)
        if res.last_event_seq > loop.seq:
            loop.restore_engine_state({"seq": res.last_event_seq,
                                       "gen_cl_ord_id": loop.gen_cl_ord_id})
    log.info("recovered from %s: snapshot %s (seq %d), %d inputs replayed in %.3f s, "
             "journal seq %d, event seq %d%s", journal_dir, res.snapshot, res.snapshot_seq,
             res.inputs, res.seconds, res.last_seq, loop.seq,
             f", dropped tail: {res.tail}" if res.tail is not None else "")
    return res


# ---------------------------------------------------------------------------------------------
# Periodic snapshots
# ---------------------------------------------------------------------------------------------


class EngineSnapshots(SnapshotTrigger):
    """The engine's periodic snapshots: the post-commit hook of its journal stage.

    Attached with ``journal.snapshots = EngineSnapshots(engine, ...)`` once recovery is done.
    After a commit, every ``every_records`` journal records or ``every_s`` seconds (whichever
    comes first; 0 turns a trigger off; the check is the journal's, in C), it takes
    ``OmsCore.snapshot()`` and the engine's state on the engine thread (about 10 ms for a
    65,536-order core: that one ack waits) and writes the file from a background thread
    (temp file, fsync, rename). Old snapshots beyond ``keep`` are deleted; journal segments
    are never deleted here (the writer may still need them). Closing the journal after a
    clean stop takes a last one.
    """

    def __init__(self, engine: Any, directory: str, every_records: int = 1_000_000,
                 every_s: float = 60.0, keep: int = 2) -> None:
        super().__init__(every_records, every_s)
        self.engine = engine
        self.directory = directory
        self.keep = keep
        self.n_snapshots = 0
        self.n_skipped = 0
        self._thread: threading.Thread | None = None
        self.error: BaseException | None = None
        self.restart(engine.loop.journal.committed_seq)
        for name in os.listdir(directory):  # left by a crash in the middle of a write
            if name.startswith("snapshot-") and name.endswith(".snap.tmp"):
                os.unlink(os.path.join(directory, name))

    def snapshot(self, stage: JournalStage, wait: bool = False) -> bool:
        """Take a snapshot now (at a commit boundary); False when one is still being written."""
        t = self._thread
        if t is not None and t.is_alive():
            self.n_skipped += 1
            return False
        engine = self.engine
        seq = stage.committed_seq
        event_seq = int(engine.loop.seq)
        body = engine.core.snapshot()
        extra = engine_state(engine)
        self.restart(seq)
        self._thread = threading.Thread(target=self._write, args=(body, seq, event_seq, extra),
                                        name="oms-snapshot", daemon=True)
        self._thread.start()
        if wait:
            self._thread.join()
        return True

    def _write(self, body: bytes, seq: int, event_seq: int, extra: dict[str, Any]) -> None:
        try:
            path = recovery.write_snapshot_bytes(self.directory, body, seq, event_seq, extra)
            recovery.prune(self.directory, keep_snapshots=self.keep, writer_seq=0)
            self.n_snapshots += 1
            log.info("snapshot %s (journal seq %d, event seq %d)", path, seq, event_seq)
        except OSError as e:  # never fatal: the journal alone still recovers everything
            self.error = e
            log.error("ALERT snapshot at journal seq %d failed: %s", seq, e)
            # a partial temp file on a full disk would take the journal's last free space
            tmp = os.path.join(self.directory, recovery.snapshot_name(seq)) + ".tmp"
            try:
                os.unlink(tmp)
            except OSError:
                pass

    def closing(self, stage: JournalStage) -> None:
        """Wait for a snapshot being written; take a last one on a clean stop."""
        t = self._thread
        if t is not None:
            t.join(30)
        # after a journal write failure the engine's memory holds an unjournaled group: no
        # snapshot of it (recovery would adopt what was never acknowledged)
        if stage.committed_seq != self.last_seq and (
                self.every_records or self.every_ns) and stage.failure is None:
            try:
                self.snapshot(stage, wait=True)
            except Exception as e:  # noqa: BLE001 - the journal still has everything
                log.error("ALERT final snapshot failed: %s", e)


def describe(res: recovery.RecoveryResult) -> str:
    """One line of JSON about a recovery (printed by ``python -m oms_core.engine``)."""
    return json.dumps({"snapshot": res.snapshot, "snapshot_seq": res.snapshot_seq,
                       "last_seq": res.last_seq, "last_event_seq": res.last_event_seq,
                       "replayed_event_seq": res.replayed_event_seq,
                       "inputs": res.inputs, "seconds": round(res.seconds, 4),
                       "tail_dropped": res.tail is not None,
                       "skipped_snapshots": res.skipped_snapshots})


__all__ = ["EngineSnapshots", "describe", "engine_state", "recover_engine",
           "restore_engine_state"]
