"""The gateway's engine-facing side: ZeroMQ sockets and the wire encoding, in one place.

Engine orders arrive on a PULL socket (GW_NEW_ORDER / GW_CANCEL / GW_REPLACE frames),
execution reports and gateway status leave on a PUSH socket, normalized market data
(GW_MARKET_DATA, top of book + last trade) leaves on a PUB socket through the compiled
:class:`~gateways.mdpub.MdPublisher` (``link.md``): it keeps the last published top per
instrument, packs the record in C and calls libzmq directly. Its ``seq`` counts market
data only (gap free), so a subscriber sees a frame the PUB dropped at its HWM as a jump;
events (exec reports, status) carry their own sequence. The encoding is ``bindings.wire``
(fixed-layout binary records); swapping it only touches this module and ``mdpub``.

ZeroMQ moves every message through its I/O thread, which a send wakes up. On a box with
few cores the woken I/O thread preempts the event loop's thread in the middle of the
message handler (measured: +50 us on a websocket round trip on 2 cores). The context made
by :func:`make_context` runs its I/O thread under ``SCHED_BATCH``, which the Linux
scheduler never lets preempt a running thread on wakeup; it still runs as soon as a core
is free, so throughput is unchanged.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import zmq
import zmq.asyncio

from bindings.libzmq import share_with_extensions
from bindings.security import client_keys_from_files
from bindings.wire import records as wire
from bindings.wire.spec import GW_STATUS_INTERVAL_MS, ExecType, GatewayState, HeaderFlag, MdFlag

from .config import EngineEndpoints

share_with_extensions()  # before loading mdpub, whose zmq_send is pyzmq's libzmq
from .mdpub import MdPublisher  # noqa: E402

__all__ = ["EngineLink", "ExecType", "GatewayState", "MdFlag", "ReconcileAnswer",
           "asset_map", "make_context", "order_id_of", "serve_orders", "trade_id_of"]

log = logging.getLogger("gateways.engine_link")

_EXEC = wire.CODECS["GW_EXEC_REPORT"]
_MD = wire.CODECS["GW_MARKET_DATA"]
_STATUS = wire.CODECS["GW_STATUS"]
_BALANCE = wire.CODECS["GW_BALANCE"]
_RECON_END = wire.CODECS["GW_RECONCILE_END"]
_ORDER_TYPES = {"GW_NEW_ORDER", "GW_CANCEL", "GW_REPLACE", "GW_RECONCILE"}
MD_SEQ_OFFSET = 8
"""Byte offset of the little-endian uint64 ``seq`` in a GW_MARKET_DATA frame (gap checks)."""


def make_context(io_sched_batch: bool | None = None) -> zmq.asyncio.Context:
    """Create a ZeroMQ context for a gateway, before any socket exists in it.

    With ``io_sched_batch`` (Linux; default on unless the environment variable
    ``OMS_ZMQ_SCHED_BATCH=0``) its I/O thread runs under ``SCHED_BATCH`` so that waking
    it on a send does not preempt the event loop's thread.
    """
    if io_sched_batch is None:
        io_sched_batch = os.environ.get("OMS_ZMQ_SCHED_BATCH", "1") != "0"
    ctx = zmq.asyncio.Context()
    policy = getattr(os, "SCHED_BATCH", None)
    if io_sched_batch and policy is not None:
        try:
            ctx.set(zmq.THREAD_SCHED_POLICY, policy)
        except zmq.ZMQError:  # libzmq built without thread scheduling options
            log.debug("THREAD_SCHED_POLICY not supported; I/O thread keeps its default")
    return ctx


def asset_map(cfg: Any, assets: dict[str, tuple[int, int]] | None = None
              ) -> dict[str, tuple[int, int]]:
    """Venue asset name -> (engine asset id, decimals): ``assets`` if given, else the
    gateway configuration's ``assets`` table."""
    src = assets if assets is not None else getattr(cfg, "assets", None) or {}
    return {str(k): (int(v[0]), int(v[1])) for k, v in src.items()}


def order_id_of(prefix: str, cid: str) -> int:
    """The engine order id in one of our client order ids (``prefix`` + id), else 0."""
    if cid and cid.startswith(prefix) and cid[len(prefix):].isdigit():
        return int(cid[len(prefix):])
    return 0


def trade_id_of(venue_trade_id: Any) -> int:
    """A venue trade id as the engine's int64 trade id, the same in every process.

    Numeric ids are kept; any other id is hashed with BLAKE2b (stable across processes,
    unlike ``hash()``), so a restarted gateway reports a trade under the id the engine's
    duplicate check already holds.
    """
    s = str(venue_trade_id)
    if s.isdigit() and int(s) < 1 << 63:
        return int(s)
    return int.from_bytes(hashlib.blake2b(s.encode(), digest_size=8).digest(),
                          "little") & 0x7FFFFFFFFFFFFFFF


OrderHandler = Callable[[Any], Awaitable[None]]


async def serve_orders(link: EngineLink, handlers: dict[str, OrderHandler]) -> None:
    """Run ``handlers[msg_type name](record)`` for every order record from the engine, each
    as its own task.

    A GW_RECONCILE starts reading the venue only once every order action received before
    it has finished: its answer is then a picture taken after them, so an order the engine
    sent before asking is listed (read too early, a working order would look "not at the
    venue" and be closed in the engine while it rests at the venue)."""
    loop = asyncio.get_running_loop()
    actions: set[asyncio.Task[None]] = set()
    reconciles: set[asyncio.Task[None]] = set()  # strong references until done

    async def after(earlier: set[asyncio.Task[None]], work: Awaitable[None]) -> None:
        if earlier:
            await asyncio.wait(earlier)
        await work

    async for rec in link.orders():
        name = rec.msg_type.name
        handler = handlers.get(name)
        if handler is None:
            continue
        if name == "GW_RECONCILE":
            task = loop.create_task(after(set(actions), handler(rec)))
            reconciles.add(task)
            task.add_done_callback(reconciles.discard)
        else:
            task = loop.create_task(handler(rec))
            actions.add(task)
            task.add_done_callback(actions.discard)


async def reconcile_each_account(link: EngineLink, request: Any, sessions: dict[int, Any],
                                 reconcile_one: Any, no_account_code: int) -> None:
    """Answer one GW_RECONCILE once per venue account it asks for (``ANY_ID``: every
    session, in turn); an account with no session here gets an empty answer ending with
    ``no_account_code``. ``reconcile_one(request, session)`` answers one account."""
    from bindings.wire.spec import ANY_ID

    if request.account == ANY_ID:
        for sess in sessions.values():
            await reconcile_one(request, sess)
    elif request.account in sessions:
        await reconcile_one(request, sessions[request.account])
    else:
        await ReconcileAnswer(link, request, request.account).end(no_account_code)


class ReconcileAnswer:
    """The answer to one GW_RECONCILE, sent row by row (shared by every gateway).

    Every row carries the request's id and the QUERY_ROW flag: :meth:`open_order` (an
    GW_EXEC_REPORT STATUS), :meth:`fill` (a GW_EXEC_REPORT FILL), :meth:`balance` (a
    GW_BALANCE); :meth:`end` closes the answer with the row counts and a code (0:
    complete). The gateway only asks its venue and maps the venue's rows to these calls.
    """

    def __init__(self, link: EngineLink, request: Any, account: int) -> None:
        self.link = link
        self.request_id = int(request.request_id)
        self.account = account
        self.since_ms = max(0, int(request.since_ns) // 1_000_000)
        """Report the venue's trades from this time on (ms since the epoch)."""
        self.n_orders = self.n_fills = self.n_balances = 0

    async def open_order(self, order_id: int, exch_order_id: int, instrument: int,
                         quantity: int, cum_qty: int, price: int, status: int,
                         exch_ts_ns: int = 0) -> None:
        """One order of ours open at the venue (quantities raw at the instrument's lot)."""
        await self.link.send_exec(
            self.request_id, int(HeaderFlag.QUERY_ROW), order_id=order_id,
            exch_order_id=exch_order_id, account=self.account, instrument=instrument,
            exec_type=int(ExecType.STATUS), cum_qty=cum_qty,
            leaves_qty=max(0, quantity - cum_qty), status=status, price=price,
            quantity=quantity, exch_ts_ns=exch_ts_ns)
        self.n_orders += 1

    async def fill(self, order_id: int, exch_order_id: int, instrument: int, trade_id: int,
                   qty: int, price: int, fee: int, fee_asset: int, liquidity: int,
                   exch_ts_ns: int = 0) -> None:
        """One trade of ours since :attr:`since_ms` (the engine drops the ones it has)."""
        await self.link.send_exec(
            self.request_id, int(HeaderFlag.QUERY_ROW), order_id=order_id,
            exch_order_id=exch_order_id, account=self.account, instrument=instrument,
            exec_type=int(ExecType.FILL), trade_id=trade_id, last_qty=qty, last_price=price,
            fee=fee, fee_asset=fee_asset, liquidity=liquidity, exch_ts_ns=exch_ts_ns)
        self.n_fills += 1

    async def balance(self, asset: int, free: int, locked: int, exch_ts_ns: int = 0) -> None:
        """The venue's balance of one asset (raw at the asset's precision)."""
        await self.link.send_balance(self.request_id, self.account, asset, free + locked,
                                     free, locked, exch_ts_ns)
        self.n_balances += 1

    async def end(self, code: int = 0) -> None:
        """Close the answer; ``code`` 0 when every row was sent, else the venue's error."""
        await self.link.send_reconcile_end(self.request_id, self.account, self.n_orders,
                                           self.n_fills, self.n_balances, code)
        log.info("reconcile %d answered: %d open orders, %d fills, %d balances, code %d",
                 self.request_id, self.n_orders, self.n_fills, self.n_balances, code)


class EngineLink:
    """ZeroMQ sockets to the engine. Create inside the running event loop."""

    def __init__(self, endpoints: EngineEndpoints, gateway_id: int,
                 ctx: zmq.asyncio.Context | None = None, max_instruments: int = 256) -> None:
        self.gateway_id = gateway_id
        self._own_ctx = ctx is None
        self.ctx = ctx if ctx is not None else make_context()
        self._orders = self.ctx.socket(zmq.PULL)
        self._events = self.ctx.socket(zmq.PUSH)
        # market data goes through a plain (non-async) PUB: PUB never blocks, it drops at HWM
        self._sync_ctx = zmq.Context.shadow(self.ctx.underlying)
        self._md = self._sync_ctx.socket(zmq.PUB)
        curve = client_keys_from_files(endpoints.curve_secret_file,
                                       endpoints.server_public_file)
        for s in (self._orders, self._events, self._md):
            s.setsockopt(zmq.LINGER, 0)
            if curve is not None:
                curve.apply(s)
        self._events.setsockopt(zmq.SNDHWM, 100_000)
        self._md.setsockopt(zmq.SNDHWM, 100_000)
        how = "bind" if endpoints.bind else "connect"
        getattr(self._orders, how)(endpoints.orders)
        getattr(self._events, how)(endpoints.events)
        getattr(self._md, how)(endpoints.market_data)
        self._seq = 0
        self.md = MdPublisher(self._md, max_instruments)
        """The market data publisher (hot path; one slot per instrument)."""
        self._md_slots: dict[int, int] = {}
        self.n_bad_frames = 0
        self._last_status: tuple[GatewayState, int] | None = None

    # ---- engine -> gateway -------------------------------------------------

    async def orders(self) -> AsyncIterator[Any]:
        """Yield decoded order records (namedtuples with ``msg_type``) as they arrive."""
        while True:
            frame = await self._orders.recv()
            try:
                _n, err, _off = wire.check_frame_py(frame)
                if err:
                    raise ValueError(f"wire error {err}")
                recs = wire.decode_frame(frame)
            except (ValueError, KeyError) as exc:
                self.n_bad_frames += 1
                log.warning("bad order frame from engine (%d bytes): %s", len(frame), exc)
                continue
            for rec in recs:
                if rec.msg_type.name in _ORDER_TYPES:
                    yield rec
                else:
                    self.n_bad_frames += 1
                    log.warning("unexpected record %s from engine", rec.msg_type.name)

    # ---- gateway -> engine -------------------------------------------------

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    async def send_exec(self, request_id: int = 0, flags: int = 0, **fields: Any) -> None:
        """Send one GW_EXEC_REPORT; fields as in bindings.wire.spec (missing are 0).

        A row of a GW_RECONCILE answer passes the request's ``request_id`` and
        ``flags=HeaderFlag.QUERY_ROW``.
        """
        fields.setdefault("gw_recv_ns", time.time_ns())
        await self._events.send(_EXEC.encode(request_id=request_id, seq=self._next_seq(),
                                             send_ns=time.time_ns(), flags=flags, **fields))

    async def send_balance(self, request_id: int, account: int, asset: int, total: int,
                           free: int, locked: int, exch_ts_ns: int = 0) -> None:
        """Send one GW_BALANCE row of the GW_RECONCILE answer ``request_id``."""
        await self._events.send(_BALANCE.encode(
            request_id=request_id, seq=self._next_seq(), send_ns=time.time_ns(),
            flags=int(HeaderFlag.QUERY_ROW), total=total, free=free, locked=locked,
            exch_ts_ns=exch_ts_ns, account=account, asset=asset))

    async def send_reconcile_end(self, request_id: int, account: int, n_orders: int,
                                 n_fills: int, n_balances: int, code: int = 0) -> None:
        """Close the GW_RECONCILE answer ``request_id`` (code 0: complete)."""
        await self._events.send(_RECON_END.encode(
            request_id=request_id, seq=self._next_seq(), send_ns=time.time_ns(),
            exch_ts_ns=time.time_ns(), n_orders=n_orders, n_fills=n_fills,
            n_balances=n_balances, account=account, gateway_id=self.gateway_id, code=code))

    async def send_status(self, state: GatewayState, detail: int = 0) -> None:
        """Send one GW_STATUS (and repeat it from :meth:`repeat_status` until the next)."""
        self._last_status = (state, detail)
        await self._events.send(_STATUS.encode(
            seq=self._next_seq(), send_ns=time.time_ns(), ts_ns=time.time_ns(),
            gateway_id=self.gateway_id, detail=detail, state=int(state)))

    async def repeat_status(self) -> None:
        """Repeat the last GW_STATUS every GW_STATUS_INTERVAL_MS until cancelled: the engine
        tells a gateway that went silent (killed, hung) from one whose last word was
        HEALTHY."""
        while True:
            await asyncio.sleep(GW_STATUS_INTERVAL_MS / 1000)
            if self._last_status is not None:
                await self.send_status(*self._last_status)

    @property
    def n_md_published(self) -> int:
        """GW_MARKET_DATA handed to ZeroMQ (a PUB drops silently at its HWM: subscribers
        detect loss by gaps in ``seq``)."""
        return self.md.n_published

    def md_slot(self, instrument: int) -> int:
        """The publisher slot of an instrument (added on first use)."""
        slot = self._md_slots.get(instrument)
        if slot is None:
            slot = self._md_slots[instrument] = self.md.add(instrument)
        return slot

    def publish_md(self, instrument: int, bid: int, bid_qty: int, ask: int, ask_qty: int,
                   last: int, last_qty: int, exch_ts_ns: int, gw_ts_ns: int,
                   flags: int = 0) -> None:
        """Publish one GW_MARKET_DATA with these values (never blocks).

        The Binance gateway's hot path uses ``link.md`` (compare-and-publish in C) instead.
        """
        slot = self.md_slot(instrument)
        md = self.md
        md.set_top(slot, bid, bid_qty, ask, ask_qty)
        md.set_last(slot, last, last_qty)
        md.publish(slot, exch_ts_ns, gw_ts_ns, flags)

    def close(self) -> None:
        for s in (self._orders, self._events, self._md):
            s.close(0)
        if self._own_ctx:
            self.ctx.term()
