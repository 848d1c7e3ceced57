"""Crash recovery: snapshots, journal replay and reconciliation with the exchanges.

Restart = newest valid snapshot (``OmsCore.restore``) + replay of the journal inputs after it,
through ONE apply path, the engine loop's: ``Engine.apply_input`` of the engine being
started (:func:`oms_core.engine.startup.recover_engine`), or of an engine without sockets
around the core (:func:`oms_core.engine.offline.offline_engine`) for tools and tests that
have only an OmsCore. Then :func:`reconcile`
compares the core with each gateway's view and books the differences as journaled inputs;
trading resumes only after it, or after an admin override (:func:`admin_override`, journaled
too).
"""

from __future__ import annotations

import json
import os
import struct
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bindings.wire import records as wire
from bindings.wire.spec import MAGIC, VERSION, ExecType, MsgType
from oms_core.engine.kinds import (
    KIND_ADMIN_OVERRIDE,
    KIND_MARK_TO_MARKET,
    KIND_RECON_ALERT,
    KIND_RECON_BALANCE,
    KIND_RECON_DONE,
    KIND_START_OF_DAY,
    KIND_TIMER,
)
from oms_core.enums import Alert, Limit, OrderStatus
from oms_core.journal import (
    INPUT,
    JournalError,
    JournalGapError,
    JournalReader,
    TailReport,
    crc32c_bytes,
    journal_end,
    list_segments,
)

ApplyFn = Callable[[int, int, bytes], Any]

_TERMINAL = {int(s) for s in (OrderStatus.FILLED, OrderStatus.CANCELED, OrderStatus.REJECTED,
                              OrderStatus.EXPIRED)}


# ---------------------------------------------------------------------------------------------
# Snapshots
# ---------------------------------------------------------------------------------------------

# the file's own magic, distinct from the magic of the core body inside it
# (``oms_core.core.SNAPSHOT_MAGIC``): a file headed by any other is unreadable and skipped
SNAPSHOT_FILE_MAGIC = b"OMSSNPF1"
_SNAP_HDR = struct.Struct("<8sQQQQI4x")  # magic, journal seq, event seq, core len, extra len, crc


@dataclass(frozen=True)
class Snapshot:
    path: str
    seq: int  # last journal sequence the snapshot covers
    event_seq: int  # engine event sequence at that point
    core: bytes
    extra: dict[str, Any]


def snapshot_name(seq: int) -> str:
    return f"snapshot-{seq:020d}.snap"


def write_snapshot(journal_dir: str, core: Any, seq: int, event_seq: int,
                   extra: dict[str, Any] | None = None) -> str:
    """Write ``core.snapshot()`` covering journal records up to ``seq`` (call at a commit
    boundary, events drained). Atomic: temp file, fsync, rename, fsync of the directory."""
    return write_snapshot_bytes(journal_dir, core.snapshot(), seq, event_seq, extra)


def write_snapshot_bytes(journal_dir: str, body: bytes, seq: int, event_seq: int,
                         extra: dict[str, Any] | None = None) -> str:
    """Write a snapshot from ``OmsCore.snapshot()`` bytes taken earlier at a commit boundary
    (the engine takes the bytes on its thread and writes them from another)."""
    ext = json.dumps(extra or {}).encode()
    crc = crc32c_bytes(body + ext)
    path = os.path.join(journal_dir, snapshot_name(seq))
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(_SNAP_HDR.pack(SNAPSHOT_FILE_MAGIC, seq, event_seq, len(body), len(ext), crc))
        f.write(body)
        f.write(ext)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    dfd = os.open(journal_dir, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)
    return path


def read_snapshot(path: str) -> Snapshot:
    """Read and check one snapshot file; raise ValueError when it is damaged."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < _SNAP_HDR.size:
        raise ValueError(f"snapshot {path} is truncated")
    magic, seq, event_seq, n_core, n_extra, crc = _SNAP_HDR.unpack_from(data)
    if magic != SNAPSHOT_FILE_MAGIC or len(data) != _SNAP_HDR.size + n_core + n_extra:
        raise ValueError(f"snapshot {path} has a bad header or length")
    body = data[_SNAP_HDR.size:]
    if crc32c_bytes(body) != crc:
        raise ValueError(f"snapshot {path} fails its checksum")
    return Snapshot(path, seq, event_seq, bytes(body[:n_core]),
                    json.loads(body[n_core:]) if n_extra else {})


def list_snapshots(journal_dir: str) -> list[tuple[int, str]]:
    out = []
    for name in os.listdir(journal_dir) if os.path.isdir(journal_dir) else []:
        if name.startswith("snapshot-") and name.endswith(".snap"):
            out.append((int(name[9:29]), os.path.join(journal_dir, name)))
    return sorted(out)


def prune(journal_dir: str, keep_snapshots: int = 2, writer_seq: int | None = None) -> list[str]:
    """Delete snapshots beyond the newest ``keep_snapshots`` and journal segments wholly
    covered by the oldest kept snapshot (and, when given, by the writer's journal seq)."""
    removed = []
    snaps = list_snapshots(journal_dir)
    for _, p in snaps[:-keep_snapshots] if keep_snapshots else []:
        os.unlink(p)
        removed.append(p)
    snaps = list_snapshots(journal_dir)
    if not snaps:
        return removed
    covered = snaps[0][0] if writer_seq is None else min(snaps[0][0], writer_seq)
    segs = list_segments(journal_dir)
    for (_first, p), (nxt, _) in zip(segs, segs[1:], strict=False):
        if nxt - 1 <= covered:
            os.unlink(p)
            removed.append(p)
    return removed


# ---------------------------------------------------------------------------------------------
# Replay
# ---------------------------------------------------------------------------------------------


@dataclass
class RecoveryResult:
    snapshot: str | None  # snapshot file used, if any
    snapshot_seq: int
    last_seq: int  # last journal sequence applied (or covered by the snapshot)
    last_event_seq: int  # engine event sequence at the end of the journal
    inputs: int  # inputs replayed after the snapshot
    records: int  # journal records read after the snapshot
    tail: TailReport | None  # torn / uncommitted tail that was dropped
    seconds: float
    skipped_snapshots: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    replayed_event_seq: int = -1  # the engine's own event seq after the replay (-1: not set)
    last_input_ts: int = 0  # the newest ts of the inputs replayed (0: none)


def recover(journal_dir: str, core: Any, apply: ApplyFn | None = None,
            use_snapshot: bool = True,
            on_snapshot: Callable[[Snapshot], Any] | None = None,
            end_seq: int | None = None) -> RecoveryResult:
    """Rebuild ``core`` (fresh, configured like the one that wrote the journal).

    Restores the newest valid snapshot when the core supports it, then feeds every journaled
    input after it to ``apply(kind, ts, payload)``. With an engine, pass its own apply path
    (``Engine.apply_input``; :func:`oms_core.engine.startup.recover_engine` does); by
    default the inputs go through an engine without sockets around ``core``
    (:func:`oms_core.engine.offline.offline_engine`), for tools and tests that have only a
    core.
    ``on_snapshot(snapshot)`` runs after the core is restored and before the replay (the
    engine restores its own small state from ``snapshot.extra`` there).
    ``end_seq``: the journal's last committed sequence when the caller already has the
    journal open (``Journal.committed_seq``, after its torn tail was cut); it spares reading
    the last segment a second time to check that the snapshot is not newer than the journal.
    Raises JournalCorruptError / JournalGapError on damage before the tail; a torn or
    uncommitted tail is dropped and returned in ``tail``.
    """
    t0 = time.perf_counter()
    if apply is None:
        from oms_core.engine.offline import offline_engine
        from oms_core.engine.startup import restore_engine_state

        engine = offline_engine(core)
        apply = engine.apply_input
        if on_snapshot is None:
            def on_snapshot(s: Snapshot) -> None:
                restore_engine_state(engine, s.extra)
    snap: Snapshot | None = None
    skipped: list[str] = []
    if use_snapshot and hasattr(core, "restore"):
        for _, p in reversed(list_snapshots(journal_dir)):
            try:
                snap = read_snapshot(p)
                break
            except ValueError:
                skipped.append(p)
    start = 1
    if snap is not None:
        if end_seq is None:
            end_seq, _, _ = journal_end(journal_dir)
        if end_seq < snap.seq:
            raise JournalGapError(end_seq + 1, snap.seq, None, snap.path)
        core.restore(snap.core)
        if on_snapshot is not None:
            on_snapshot(snap)
        start = snap.seq + 1
    reader = JournalReader(journal_dir, start)
    inputs = records = last_input_ts = 0
    for kind, ts, payload in _iter_inputs(reader):
        apply(kind, ts, payload)
        inputs += 1
        if ts > last_input_ts:
            last_input_ts = ts
    records = max(0, reader.next_seq - start)
    last_seq = reader.next_seq - 1 if reader.next_seq > start else start - 1
    last_event = reader.last_event_seq
    if snap is not None and last_event < snap.event_seq:
        last_event = snap.event_seq
    return RecoveryResult(
        snap.path if snap else None, snap.seq if snap else 0, last_seq, last_event, inputs,
        records, reader.tail, time.perf_counter() - t0, skipped, snap.extra if snap else {},
        last_input_ts=last_input_ts)


def _iter_inputs(reader: JournalReader) -> Iterable[tuple[int, int, bytes]]:
    """Yield (kind, ts, payload) of the input records, reading in bulk."""
    while True:
        batch = reader.read_batch(8192)
        if len(batch) == 0:
            return
        inp = batch[batch["rtype"] == INPUT]
        if len(inp) == 0:
            continue
        kinds = inp["kind"].tolist()
        tss = inp["ts"].tolist()
        lens = inp["length"].tolist()
        raw = inp["payload"].tobytes()
        step = inp.dtype.fields["payload"][0].itemsize
        _check_version(inp, raw, step)
        for i in range(len(kinds)):
            off = i * step
            yield kinds[i], tss[i], raw[off:off + lens[i]]


class JournalVersionError(JournalError):
    """The journal holds wire records of another protocol VERSION: this engine would misread
    them (a layout changed), so it refuses to replay them instead."""


def _check_version(inp: Any, raw: bytes, step: int) -> None:
    """Every wire record among the input rows of one batch is of this protocol VERSION."""
    rows = np.frombuffer(raw, np.uint8).reshape(len(inp), step)
    wire_rows = (inp["kind"] < KIND_TIMER) & (inp["length"] >= 32) & (
        rows[:, 0] == MAGIC & 0xFF) & (rows[:, 1] == MAGIC >> 8)
    other = wire_rows & (rows[:, 2] != VERSION)
    if other.any():
        found = int(rows[other.argmax(), 2])
        raise JournalVersionError(
            f"the journal was written with wire protocol version {found}; this engine "
            f"speaks version {VERSION} and would misread it. Recover it with the release "
            "that wrote it, or start this one on a new journal directory")


# ---------------------------------------------------------------------------------------------
# Reconciliation with the exchanges
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VenueOrder:
    order_id: int  # engine order id (the gateway maps venue ids back)
    exch_order_id: int
    cum_qty: int
    leaves_qty: int


@dataclass(frozen=True)
class VenueFill:
    order_id: int
    trade_id: int
    qty: int
    price: int
    fee: int
    fee_asset: int
    liquidity: int
    exch_ts_ns: int


@dataclass
class GatewayView:
    """What one gateway reports after reconnecting: open orders, recent fills, balances."""

    account: int
    instrument_ids: set[int]  # instruments this gateway trades (its exchange)
    open_orders: list[VenueOrder]
    fills: list[VenueFill]
    balances: dict[int, int]  # asset id -> total (free + locked), raw
    # base and quote assets of ``instrument_ids``: the balances the engine keeps itself (with
    # CHECK_BALANCE), compared with the venue's; see :func:`reconcile_balances`
    traded_assets: set[int] = field(default_factory=set)
    adopt: bool = True  # adopt the venue's other balances (False: the view is partial)


@dataclass
class ReconReport:
    closed_unknown: list[tuple[int, str]] = field(default_factory=list)  # (order id, reason)
    booked_fills: list[int] = field(default_factory=list)  # trade ids booked
    # (account, asset, engine total, venue total) of compared balances that differ
    balance_diffs: list[tuple[int, int, int, int]] = field(default_factory=list)
    # (account, asset, engine total before, venue total) of balances taken from the venue
    adopted: list[tuple[int, int, int, int]] = field(default_factory=list)
    # (account, asset, venue total) reported for an account that does not track balances
    untracked: list[tuple[int, int, int]] = field(default_factory=list)
    alerts: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # INFO: what was adopted or left alone

    @property
    def clean(self) -> bool:
        return not (self.closed_unknown or self.booked_fills or self.balance_diffs)


def _exec_report(order_id: int, exec_type: int, ts: int, **kw: Any) -> bytes:
    return wire.encode("GW_EXEC_REPORT", order_id=order_id, exec_type=exec_type,
                       gw_recv_ns=ts, **kw)


def alert_record(account: int, instrument: int, order_id: int, a: int, b: int, ts: int,
                 alert: int = int(Alert.RECONCILIATION_DIFFERENCE)) -> bytes:
    """A RISK_ALERT record (the payload of a KIND_RECON_ALERT input)."""
    return wire.encode("RISK_ALERT", order_id=order_id, a=a, b=b, event_ns=ts, account=account,
                       strategy=0, instrument=instrument, alert=alert)


# detail ``a`` of a RECONCILIATION_DIFFERENCE alert (``b`` is the detail's value)
RECON_MISSED_FILL = 1  # b = trade id booked as a reconciliation fill
RECON_CLOSED_UNKNOWN = 2  # an order open in the engine is not open at the venue; b = 0
RECON_BALANCE = 3  # instrument field = asset id; b = venue total - engine total
RECON_VENUE_ONLY = 4  # an order open at the venue is not live in the engine; b = venue leaves
RECON_NO_ANSWER = 5  # the gateway did not answer; instrument field = exchange id
RECON_UNKNOWN_FILL = 6  # a venue fill for an order the engine does not know; b = trade id


def tracks_balances(core: Any, account: int) -> bool:
    """Whether the engine keeps ``account``'s balances the way the venue does.

    Only a spot account with the free-balance check (``CHECK_BALANCE``) moves base and quote
    balances with its fills (docs/core.md, Ledger). Any other account keeps a fill in its
    position (quantity and cost) and only the fee in its balances, so its balances are a
    cash ledger beside the positions, not the venue's wallet.
    """
    try:
        return core.get_limit(account, int(Limit.CHECK_BALANCE)) != 0
    except (KeyError, ValueError, IndexError):
        return False


def balance_record(account: int, asset: int, total: int, locked: int = 0,
                   exch_ts_ns: int = 0) -> bytes:
    """A GW_BALANCE record (the payload of a KIND_RECON_BALANCE input)."""
    return wire.encode("GW_BALANCE", total=total, free=total - locked, locked=locked,
                       exch_ts_ns=exch_ts_ns, account=account, asset=asset)


def adopt_balance(core: Any, payload: bytes) -> tuple[int, int, int]:
    """Apply a KIND_RECON_BALANCE input: the account's total of the asset becomes the venue's.

    Deterministic on replay (the change is the venue total minus the core's total at that
    point of the journal). Return ``(account, asset, new total)``.
    """
    r = wire.decode(payload)
    total, _locked = core.balance(r.account, r.asset)
    core.deposit(r.account, r.asset, int(r.total) - total)
    return int(r.account), int(r.asset), int(r.total)


def reconcile_balances(core: Any, view: GatewayView, ts: int, put: ApplyFn,
                       alert: Callable[[int, int, int, int, str], None],
                       rep: ReconReport) -> None:
    """Compare the venue's balances with what the engine is meant to know (after the fills).

    * An account that tracks balances (:func:`tracks_balances`), an asset it trades at this
      venue (``view.traded_assets``): the engine's total (free + locked) must equal the
      venue's total; a difference is a RECON_BALANCE alert and changes nothing (someone must
      look: a deposit, a withdrawal or a fill booked wrong).
    * The same account, any other asset the venue reports (a fee asset, idle money): the
      venue is the authority; its total is adopted (a journaled KIND_RECON_BALANCE input)
      and noted at INFO, unless ``view.adopt`` is False (a partial view).
    * An account that does not track balances: its balances cannot be compared with the
      venue's wallet, nor replaced by it (the position already holds what was traded);
      nothing changes, the venue's figures are noted at INFO (``rep.untracked``).
    """
    account = view.account
    tracked = tracks_balances(core, account)
    for asset, venue_total in sorted(view.balances.items()):
        try:
            total, _locked = core.balance(account, asset)
        except KeyError:
            continue
        if not tracked:
            rep.untracked.append((account, asset, venue_total))
            rep.notes.append(f"account {account} does not track balances: asset {asset} "
                             f"venue {venue_total} (engine cash ledger {total}) left as is")
        elif asset in view.traded_assets:
            if total != venue_total:
                rep.balance_diffs.append((account, asset, total, venue_total))
                alert(asset, 0, RECON_BALANCE, venue_total - total,
                      f"balance differs: account {account} asset {asset} "
                      f"engine {total} venue {venue_total}")
        elif total != venue_total and view.adopt:
            put(KIND_RECON_BALANCE, balance_record(account, asset, venue_total))
            rep.adopted.append((account, asset, total, venue_total))
            rep.notes.append(f"account {account} asset {asset} not traded here: venue "
                             f"balance {venue_total} adopted (engine had {total})")


def reconcile(core: Any, view: GatewayView, ts: int, apply: ApplyFn,
              journal: Any | None = None, live_order_ids: Iterable[int] = (),
              in_doubt_rejected: bool = True) -> ReconReport:
    """Bring ``core`` in line with a gateway's view; every change is an input.

    * fills the venue reports that the core never booked -> GW_EXEC_REPORT FILL inputs
      (the core drops trade ids it already has, so known fills are no-ops);
    * orders the core holds open (``live_order_ids``, of this account and gateway) that the
      venue does not list -> GW_EXEC_REPORT CANCELED (reason: unknown at the venue after
      restart);
    * of those, an order in doubt (UNKNOWN, nothing filled) -> REJECT: it never got there;
      after an engine restart (``in_doubt_rejected`` False) it is closed CANCELED like the
      others, since the venue may have held it and canceled it while the engine was down;
    * venue open orders the engine does not hold open -> alerts only; no automatic change;
    * balances: :func:`reconcile_balances` (compared where the engine keeps them itself,
      adopted from the venue where it does not, left alone for accounts without balances).

    Every difference is also a KIND_RECON_ALERT input (a RISK_ALERT RECONCILIATION_DIFFERENCE
    record the engine emits as an event). ``apply`` is either the engine's replay path
    ``Engine.apply_input`` (then pass ``journal``: each input is journaled before it is
    applied and committed after) or its live journaling path
    (:func:`oms_core.engine.offline.apply_live`; then ``journal`` is None). Finally
    KIND_RECON_DONE is applied.
    """
    rep = ReconReport()

    def put(kind: int, payload: bytes) -> Any:
        if journal is not None:
            journal.append_input(kind, ts, payload)
        out = apply(kind, ts, payload)
        if journal is not None:
            journal.commit()
        return out

    def alert(instrument: int, order_id: int, a: int, b: int, text: str) -> None:
        rep.alerts.append(text)
        put(KIND_RECON_ALERT, alert_record(view.account, instrument, order_id, a, b, ts))

    for f in view.fills:
        o = core.order(f.order_id)
        rec = _exec_report(f.order_id, ExecType.FILL, ts, trade_id=f.trade_id, last_qty=f.qty,
                           last_price=f.price, fee=f.fee, fee_asset=f.fee_asset,
                           liquidity=f.liquidity, exch_ts_ns=f.exch_ts_ns,
                           account=view.account)
        before = core.duplicate_fills
        filled = o["filled"] if o is not None else 0
        put(MsgType.GW_EXEC_REPORT, rec)
        after = core.order(f.order_id)
        booked = (core.duplicate_fills == before and after is not None
                  and after["filled"] > filled)
        if booked:
            rep.booked_fills.append(f.trade_id)
            alert(o["instrument"] if o else 0, f.order_id, RECON_MISSED_FILL, f.trade_id,
                  f"missed fill booked: order {f.order_id} trade {f.trade_id} "
                  f"qty {f.qty} @ {f.price}")
        elif o is None:
            alert(0, f.order_id, RECON_UNKNOWN_FILL, f.trade_id,
                  f"venue fill for unknown order {f.order_id} trade {f.trade_id}")
    venue_open = {o.order_id for o in view.open_orders}
    for oid in sorted(set(live_order_ids)):
        o = core.order(oid)
        if o is None or o["status"] in _TERMINAL or oid in venue_open:
            continue
        if o["account"] != view.account or o["instrument"] not in view.instrument_ids:
            continue
        if o.get("hold", 0):
            continue  # held by the engine (stop / child), never sent: nothing to close
        if o["status"] == OrderStatus.UNKNOWN and not o["filled"] and in_doubt_rejected:
            # a submit in doubt that the venue neither lists nor traded: it never got there
            put(MsgType.GW_EXEC_REPORT, _exec_report(oid, ExecType.REJECT, ts,
                                                     account=view.account))
            reason = "submit in doubt, not at the venue: rejected"
            rep.closed_unknown.append((oid, reason))
            alert(o["instrument"], oid, RECON_CLOSED_UNKNOWN, 0, f"order {oid} closed: {reason}")
            continue
        put(MsgType.GW_EXEC_REPORT, _exec_report(oid, ExecType.CANCELED, ts,
                                                 account=view.account))
        reason = "not open at the venue after restart"
        rep.closed_unknown.append((oid, reason))
        alert(o["instrument"], oid, RECON_CLOSED_UNKNOWN, 0, f"order {oid} closed: {reason}")
    for vo in view.open_orders:
        o = core.order(vo.order_id)
        if o is not None and o["status"] == OrderStatus.UNKNOWN:
            # a submit in doubt that the venue holds: it was accepted
            put(MsgType.GW_EXEC_REPORT, _exec_report(vo.order_id, ExecType.ACK, ts,
                                                     exch_order_id=vo.exch_order_id,
                                                     account=view.account))
            rep.notes.append(f"order {vo.order_id} in doubt is open at the venue: accepted")
            continue
        if o is None or o["status"] in _TERMINAL:
            alert(o["instrument"] if o else 0, vo.order_id, RECON_VENUE_ONLY, vo.leaves_qty,
                  f"order {vo.order_id} is open at the venue but not in the engine")
    reconcile_balances(core, view, ts, put, alert, rep)
    summary = json.dumps({"account": view.account, "closed": len(rep.closed_unknown),
                          "fills": len(rep.booked_fills),
                          "balance_diffs": len(rep.balance_diffs),
                          "adopted": len(rep.adopted)}).encode()
    put(KIND_RECON_DONE, summary[:160])
    return rep


class TradingGate:
    """Trading resumes only after reconciliation of every gateway, or an admin override.

    Replaying the journal replays the decision: KIND_RECON_DONE / KIND_ADMIN_OVERRIDE inputs
    are seen by :meth:`observe`, but a restart starts closed again (the venue may have moved
    while the engine was down), so the gate is opened by the reconciliation of this run.
    """

    def __init__(self, gateways: Iterable[int]) -> None:
        self.pending = set(gateways)
        self.override: dict[str, Any] | None = None

    @property
    def open(self) -> bool:
        return not self.pending or self.override is not None

    def reconciled(self, account_or_gateway: int) -> None:
        self.pending.discard(account_or_gateway)

    def observe(self, kind: int, payload: bytes) -> None:
        if kind == KIND_ADMIN_OVERRIDE:
            self.override = json.loads(payload)


def admin_override(gate: TradingGate, journal: Any, ts: int, who: str, why: str) -> None:
    """Open the gate without reconciling; journaled (KIND_ADMIN_OVERRIDE) before it acts."""
    payload = json.dumps({"who": who[:40], "why": why[:80]}).encode()[:160]
    journal.append_input(KIND_ADMIN_OVERRIDE, ts, payload)
    journal.commit()
    gate.observe(KIND_ADMIN_OVERRIDE, payload)


__all__ = [
    "KIND_ADMIN_OVERRIDE", "KIND_MARK_TO_MARKET", "KIND_RECON_ALERT",
    "KIND_RECON_BALANCE", "KIND_RECON_DONE", "RECON_BALANCE", "RECON_CLOSED_UNKNOWN",
    "RECON_MISSED_FILL",
    "RECON_NO_ANSWER", "RECON_UNKNOWN_FILL", "RECON_VENUE_ONLY", "alert_record",
    "KIND_START_OF_DAY", "KIND_TIMER", "GatewayView", "JournalVersionError", "ReconReport",
    "RecoveryResult", "SNAPSHOT_FILE_MAGIC",
    "Snapshot", "TradingGate", "VenueFill", "VenueOrder", "adopt_balance",
    "admin_override", "balance_record", "reconcile_balances", "tracks_balances",
    "list_snapshots", "prune", "read_snapshot", "reconcile", "recover", "write_snapshot",
    "write_snapshot_bytes",
]

