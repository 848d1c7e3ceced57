"""The writer loop: drain engine event frames over ZeroMQ into DuckDB, exactly once.

Start: read ``last_seq`` from DuckDB, catch up from the journal segments (every event with a
larger sequence), then go live. Live frames at or below the committed sequence are dropped
(duplicates); a gap (a frame dropped by the engine's non-blocking send, or the writer being
away) is filled from the journal before going on.

When the database cannot be written (disk full, file too large, I/O error) the writer alerts
ONCE, drops what it holds (the journal keeps it), ignores live frames and retries with
back-off (0.5 s doubling to 15 s): each retry reopens the file, re-reads the committed sequence
from it and catches up from the journal, so DuckDB ends with every event exactly once. It does
not exit; see docs/schema.md, "Failures".
"""

from __future__ import annotations

import logging
import os
import signal
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import zmq

from bindings.security import client_keys_from_files
from oms_core.backoff import Backoff
from oms_core.journal import events_after
from writer._split import split_frame
from writer.priority import leave_idle
from writer.store import SPECS, Store, StoreError, export_parquet

log = logging.getLogger("writer")

# database outage: first retry after RETRY_FIRST_S, doubling up to RETRY_MAX_S; an ERROR line
# reminds every REMINDER_S while it lasts (the ALERT itself is logged once per outage)
RETRY_FIRST_S = 0.5
RETRY_MAX_S = 15.0
REMINDER_S = 60.0


def alert(msg: str) -> None:
    """A writer alert: logged at ERROR with a fixed prefix that monitoring greps for."""
    log.error("ALERT writer: %s", msg)


class Batcher:
    """Pending event records per type, in preallocated bytearrays, until the next flush."""

    def __init__(self) -> None:
        self.bufs: dict[int, bytearray] = {mt: bytearray() for mt in SPECS}
        self._by_type: list[bytearray | None] = [self.bufs.get(mt) for mt in range(256)]
        self.rows = 0
        self.last_seq = 0

    def add_frame(self, frame: Any, committed: int) -> int:
        """Add the records of one frame with seq > max(committed, pending). Return the
        first missing sequence when a gap is found (the rest of the frame is left), else 0."""
        last = self.last_seq if self.last_seq > committed else committed
        last, gap, rows, bad = split_frame(frame, last, self._by_type)
        self.rows += rows
        self.last_seq = last
        if bad >= 0:
            alert(f"malformed frame from the engine at byte {bad}; rest of the frame dropped")
        return gap

    def add_records(self, kinds: np.ndarray, records: np.ndarray) -> None:
        """Add event records read from the journal (an :data:`oms_core.journal.EventBatch`'s
        ``kind`` and ``records``), in sequence order."""
        for mt in np.unique(kinds).tolist():
            spec = SPECS.get(mt)
            if spec is None:
                continue
            sel = records[kinds == mt, :spec.size]
            self.bufs[mt] += np.ascontiguousarray(sel).tobytes()
            self.rows += len(sel)

    def arrays(self) -> dict[int, np.ndarray]:
        return {mt: np.frombuffer(bytes(b), dtype=SPECS[mt].dtype)
                for mt, b in self.bufs.items() if b}

    def clear(self) -> None:
        for b in self.bufs.values():
            del b[:]
        self.rows = 0


class Writer:
    """Drains events into a :class:`Store`; the journal directory is the source of truth."""

    def __init__(self, store: Store, journal_dir: str | None, batch_rows: int = 50_000,
                 flush_ms: int = 50) -> None:
        self.store = store
        self.journal_dir = journal_dir
        self.batch = Batcher()
        self.batch_rows = batch_rows
        self.flush_s = flush_ms / 1000
        self.last_flush = time.monotonic()
        self.failures = 0
        # database outage: since when (monotonic, 0 = none; the ALERT is logged when it
        # starts), whether writes wait for the next retry, when, and the current back-off
        self.down_since = 0.0
        self.paused = False
        self.retry_at = 0.0
        self.retry_backoff = Backoff(RETRY_FIRST_S, RETRY_MAX_S, jitter=False)
        self.backoff_s = RETRY_FIRST_S
        self.last_error = ""
        self._next_reminder = 0.0

    @property
    def down(self) -> bool:
        """True while the database is not writable (the writer retries with back-off)."""
        return self.paused

    @property
    def committed(self) -> int:
        return self.store.last_seq

    def flush(self) -> int:
        """Commit the pending batch; on a database error alert, drop it (the journal keeps
        it) and return -1 so the caller catches up later."""
        self.last_flush = time.monotonic()
        if self.batch.rows == 0 and self.batch.last_seq <= self.committed:
            return 0
        if self.down:  # the journal keeps them; retry() catches up
            self._drop_pending()
            return -1
        try:
            n = self.store.commit_batch(self.batch.arrays(),
                                        max(self.batch.last_seq, self.committed))
        except StoreError as e:
            self._failed(e)
            return -1
        self.batch.clear()
        return n

    def _drop_pending(self) -> None:
        self.batch.clear()
        self.batch.last_seq = self.committed

    def _failed(self, e: StoreError) -> None:
        """A write or reopen failed: alert once per outage, then back off."""
        self.failures += 1
        self._drop_pending()
        now = time.monotonic()
        self.last_error = str(e)
        self.paused = True
        if not self.down_since:
            self.down_since = now
            self.retry_backoff.reset()
            self.backoff_s = self.retry_backoff.next_delay()
            self._next_reminder = now + REMINDER_S
            alert(f"{e}. Database not writable: last committed event seq {self.committed}; "
                  f"the events after it stay in the journal; retrying with back-off and "
                  f"catching up from the journal when it works")
        else:
            self.backoff_s = self.retry_backoff.next_delay()
            if now >= self._next_reminder:  # a reminder, not a storm
                self._next_reminder = now + REMINDER_S
                log.error("writer: database still not writable after %.0f s (%d attempts): %s",
                          now - self.down_since, self.failures, e)
        # a failed COMMIT can leave DuckDB invalidated: the next attempt reopens the file
        self.store.close()
        self.retry_at = now + self.backoff_s

    def retry(self) -> bool:
        """While down and the back-off has passed: reopen, catch up. True when writable."""
        if not self.down:
            return True
        if time.monotonic() < self.retry_at:
            return False
        try:
            self.store.reopen()
            # a real write (the WAL) before calling it writable: opening alone writes nothing
            self.store.commit_batch({}, self.committed)
        except StoreError as e:
            self._failed(e)
            return False
        self.paused = False
        self.batch.last_seq = self.committed
        n = self.catch_up()
        if self.down:
            return False
        t0, self.down_since = self.down_since, 0.0
        log.warning("writer: database %s writable again after %.1f s (%d failed attempts); "
                    "caught up %d rows from the journal, last seq %d", self.store.path,
                    time.monotonic() - t0, self.failures, n, self.committed)
        self.failures = 0
        return True

    def catch_up(self, upto: int | None = None) -> int:
        """Read every event with sequence in (committed, upto] from the journal and commit
        it. Return the rows written."""
        if not self.journal_dir or self.down:
            return 0
        if self.batch.rows:
            self.flush()
        events = events_after(self.journal_dir, self.committed, upto)
        total = 0
        last = self.committed
        batches = events.batches(16384)
        try:
            for b in batches:
                if b.seq[0] != last + 1:
                    alert(f"journal is missing events {last + 1}..{int(b.seq[0]) - 1}")
                self.batch.add_records(b.kind, b.records)
                last = int(b.seq[-1])
                self.batch.last_seq = last
                if self.batch.rows >= self.batch_rows:
                    r = self.flush()
                    if r < 0:
                        return total
                    total += r
        finally:
            batches.close()
        if self.batch.rows or self.batch.last_seq > self.committed:
            r = self.flush()
            total += max(r, 0)
        if events.tail is not None:
            log.debug("journal tail not committed yet: %s", events.tail)
        return total

    def on_frame(self, frame: Any) -> None:
        if self.down:  # every event is in the journal: retry() catches up
            return
        gap = self.batch.add_frame(frame, self.committed)
        while gap and not self.down:
            # fill [gap, ...] from the journal, then take the rest of the frame
            self.flush()
            self.catch_up()
            before = self.batch.last_seq
            gap = self.batch.add_frame(frame, self.committed)
            if gap and self.batch.last_seq == before and self.committed < gap:
                alert(f"event {gap} is neither in the journal nor live yet; waiting")
                time.sleep(0.05)
        if self.batch.rows >= self.batch_rows:
            self.flush()


def run(engine: str, journal_dir: str | None, db_path: str, socket_type: str = "pull",
        bind: bool = False, batch_rows: int = 50_000, flush_ms: int = 50,
        lock_timeout_s: float = 10.0, parquet_dir: str | None = None,
        export_every_s: float = 0.0, max_seconds: float = 0.0,
        stop_requested: Callable[[], bool] | None = None, curve_secret_file: str = "",
        server_public_file: str = "") -> int:
    """The writer process. Return an exit status (0 after SIGTERM/SIGINT or max_seconds).
    ``stop_requested``: a stop signal arrived before this function installed its handlers."""
    try:
        store = Store(db_path, lock_timeout_s)
    except StoreError as e:
        alert(str(e))
        return 3
    w = Writer(store, journal_dir, batch_rows, flush_ms)
    ctx = zmq.Context.instance()
    sock = ctx.socket(zmq.SUB if socket_type == "sub" else zmq.PULL)
    if socket_type == "sub":
        sock.setsockopt(zmq.SUBSCRIBE, b"")
    sock.setsockopt(zmq.RCVHWM, 100_000)
    sock.setsockopt(zmq.LINGER, 0)
    curve = client_keys_from_files(curve_secret_file, server_public_file)
    if curve is not None:  # the engine's writer feed opens only to the writer's key
        curve.apply(sock)
    if bind:
        sock.bind(engine)
    else:
        sock.connect(engine)
    stop = False
    want_export = False

    def _stop(*_: Any) -> None:
        nonlocal stop
        stop = True
        leave_idle()

    def _export(*_: Any) -> None:
        nonlocal want_export
        want_export = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGUSR1, _export)
    if stop_requested is not None and stop_requested():
        stop = True
    n = w.catch_up()
    log.info("writer: caught up %d rows from the journal; last seq %d", n, w.committed)
    t_end = time.monotonic() + max_seconds if max_seconds else 0.0
    next_export = time.monotonic() + export_every_s if export_every_s else 0.0
    poller = zmq.Poller()
    poller.register(sock, zmq.POLLIN)
    timeout_ms = max(1, flush_ms)
    while not stop:
        if poller.poll(timeout_ms):
            for _ in range(1000):
                try:
                    frame = sock.recv(zmq.NOBLOCK, copy=False)
                except zmq.Again:
                    break
                w.on_frame(frame.buffer)
        now = time.monotonic()
        if w.down:
            w.retry()
        elif now - w.last_flush >= w.flush_s:
            w.flush()
        if parquet_dir and not w.down and (
                want_export or (next_export and now >= next_export)):
            want_export = False
            next_export = now + export_every_s if export_every_s else 0.0
            w.flush()
            try:
                export_parquet(store.con, parquet_dir)
            except Exception as e:  # noqa: BLE001 - reported, never fatal
                alert(f"Parquet export to {parquet_dir} failed: {e}")
        if t_end and now >= t_end:
            break
    status = 0
    if w.down:
        w.retry_at = 0.0
        w.retry()
    if not w.down:
        w.flush()
    if not w.down:
        try:
            store.checkpoint()
        except StoreError as e:
            log.warning("writer: %s (the WAL holds every commit; DuckDB replays it at open)", e)
    if w.down:
        alert(f"stopping with the database not writable ({w.last_error}); events after seq "
              f"{w.committed} are in the journal only: the next writer run catches up")
        status = 4
    store.close()
    sock.close()
    log.info("writer: stopped at seq %d", w.committed)
    return status


def pid_file(path: str) -> None:
    with open(path, "w") as f:
        f.write(str(os.getpid()))
