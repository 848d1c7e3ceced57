"""Binance market data: one combined stream (``<sym>@depth@100ms``, ``<sym>@trade``,
``<sym>@bookTicker`` per instrument) into the compiled :class:`~gateways.book.L2Book` per
instrument, with Binance's snapshot + diff sequence rules; top of book and last trade go to
the engine as GW_MARKET_DATA through the compiled publisher. A part of
:class:`~gateways.binance.gateway.BinanceGateway` (its status and malformed-message count)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque

import orjson

from oms_core.backoff import Backoff

from ..book import BookResult, L2Book, parse_fixed
from ..config import GatewayConfig, Instrument
from ..engine_link import EngineLink, GatewayState, MdFlag
from ..ratelimit import Banned
from ..ws import WsConnection
from .rest import BinanceRest, OutcomeUnknown, RateLimited
from .state import DETAIL_BOOK, DETAIL_MARKET_DATA

log = logging.getLogger("gateways.binance")


class BookState:
    """One instrument's book, the diffs held while it is not synced, and its slot in the
    compiled publisher."""

    __slots__ = ("inst", "book", "buffer", "stale", "resyncing", "slot", "pub")

    def __init__(self, inst: Instrument, capacity: int, link: EngineLink) -> None:
        self.inst = inst
        self.book = L2Book(inst.symbol, inst.price_decimals, inst.qty_decimals,
                           capacity=capacity)
        self.buffer: deque[bytes] = deque(maxlen=10_000)  # diffs held while unsynced
        self.stale = True
        self.resyncing = False
        # the last published top of book and last trade live in the compiled publisher
        self.pub = link.md
        self.slot = link.md_slot(inst.id)

    @property
    def top(self) -> tuple[int, int, int, int]:
        """Last published ``(bid, bid_qty, ask, ask_qty)``."""
        return self.pub.top(self.slot)[:4]


class MarketData:
    """The market-data part of the gateway: the books (``md``, by upper-case symbol), the
    stream's connection (``md_conn``) and the snapshots' keyless REST client (``md_rest``)."""

    cfg: GatewayConfig
    md: dict[str, BookState]
    md_conn: WsConnection
    md_rest: BinanceRest
    n_md: int
    n_malformed: int

    def _md_url(self) -> str:
        streams = []
        for sym in self.md:
            s = sym.lower()
            streams += [f"{s}@depth@100ms", f"{s}@trade", f"{s}@bookTicker"]
        return f"{self.cfg.ws_url.rstrip('/')}/stream?streams={'/'.join(streams)}"

    async def _md_connected(self, conn: WsConnection) -> None:
        # diffs start flowing now and are buffered until each snapshot arrives
        for st in self.md.values():
            st.book.invalidate()
            st.buffer.clear()
            self._start_resync(st)

    def _md_disconnected(self, conn: WsConnection) -> None:
        for st in self.md.values():
            st.book.invalidate()
            self._mark_stale(st)
        self._status_soon(GatewayState.RECONNECTING, DETAIL_MARKET_DATA)

    def _start_resync(self, st: BookState) -> None:
        if not st.resyncing:
            st.resyncing = True
            asyncio.get_running_loop().create_task(self._resync(st))

    async def _resync(self, st: BookState) -> None:
        """Fetch a snapshot, apply it, replay buffered diffs (Binance's documented procedure)."""
        backoff = Backoff(0.2, 5.0)
        try:
            while self.md_conn.connected.is_set() or self.md_conn.transport is not None:
                try:
                    snap = await self.md_rest.depth_snapshot(st.inst.symbol,
                                                             self.cfg.snapshot_limit)
                except (OutcomeUnknown, RateLimited, Banned) as exc:
                    log.warning("%s: snapshot failed: %s", st.inst.symbol, exc)
                    await asyncio.sleep(backoff.next_delay())
                    continue
                book = st.book
                if book.apply_snapshot(snap) != BookResult.BOOK_OK:
                    self.n_malformed += 1
                    log.warning("%s: malformed snapshot (%d bytes)", st.inst.symbol, len(snap))
                    await asyncio.sleep(backoff.next_delay())
                    continue
                ok = True
                while st.buffer:
                    rc = book.apply_depth_update(st.buffer.popleft())
                    if rc == BookResult.BOOK_GAP:
                        # snapshot older than the first buffered diff: fetch again
                        ok = False
                        break
                if ok and book.synced:
                    log.info("%s: book synced at %d", st.inst.symbol, book.last_update_id)
                    st.pub.top_from_book(st.slot, book)
                    if st.stale:
                        self._unstale(st)
                    self._publish(st, time.time_ns())
                    return
                await asyncio.sleep(backoff.next_delay())
        finally:
            st.resyncing = False

    def on_md_message(self, payload: bytes) -> None:
        """Route one combined-stream message (hot path)."""
        self.n_md += 1
        if payload.startswith(b'{"stream":"'):
            # exact stream name -> (handler, state): one slice and one dict lookup
            route = self._routes.get(payload[11:payload.find(b'"', 11)])
            if route is not None:
                route[0](route[1], payload)
                return
            at = payload.find(b"@", 11)
            if at > 11:
                st = self.md.get(payload[11:at].decode().upper())
                if st is not None:
                    kind = payload[at + 1]
                    if kind == 100:  # d: depth
                        self._on_depth(st, payload)
                        return
                    if kind == 116:  # t: trade
                        self._on_trade(st, payload)
                        return
                    if kind == 98:  # b: bookTicker
                        self._on_ticker(st, payload)
                        return
        self._on_other(payload)

    def _on_depth(self, st: BookState, payload: bytes) -> None:
        book = st.book
        rc = book.apply_depth_update(payload)
        if rc == 0:
            if st.stale:
                self._unstale(st)
            # compare with the last published top and publish if it moved, all in C
            st.pub.publish_book(st.slot, book, time.time_ns(), 0)
        elif rc == BookResult.BOOK_NOT_SYNCED:
            st.buffer.append(payload)
            self._start_resync(st)
        elif rc == BookResult.BOOK_GAP:
            log.warning("%s: sequence gap after %d; resync", st.inst.symbol, book.last_update_id)
            st.buffer.clear()
            st.buffer.append(payload)
            self._mark_stale(st)
            self._start_resync(st)
        elif rc != BookResult.BOOK_STALE_DIFF:
            self._malformed(payload, f"depth rc={rc}")

    def _on_trade(self, st: BookState, payload: bytes) -> None:
        try:
            d = orjson.loads(payload)["data"]
            st.pub.set_last(st.slot, parse_fixed(d["p"], st.inst.price_decimals),
                            parse_fixed(d["q"], st.inst.qty_decimals))
            self._publish(st, time.time_ns(), d.get("T", 0) * 1_000_000, MdFlag.TRADE)
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            self._malformed(payload, f"trade {type(exc).__name__}")

    def _on_ticker(self, st: BookState, payload: bytes) -> None:
        # bookTicker shares the depth updateId sequence: use it only when newer than the book
        try:
            d = orjson.loads(payload)["data"]
            if not st.book.synced or d["u"] <= st.book.last_update_id:
                return
            inst = st.inst
            top = (parse_fixed(d["b"], inst.price_decimals), parse_fixed(d["B"], inst.qty_decimals),
                   parse_fixed(d["a"], inst.price_decimals), parse_fixed(d["A"], inst.qty_decimals))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            self._malformed(payload, f"bookTicker {type(exc).__name__}")
            return
        if st.pub.set_top(st.slot, *top):
            self._publish(st, time.time_ns())

    def _on_other(self, payload: bytes) -> None:
        try:
            d = orjson.loads(payload)
        except orjson.JSONDecodeError:
            self._malformed(payload, "not JSON")
            return
        if isinstance(d, dict) and ("result" in d or "id" in d):
            return  # subscription answers
        self._malformed(payload, "unrouted")

    def _malformed(self, payload: bytes, why: str) -> None:
        self.n_malformed += 1
        if self.n_malformed <= 20 or self.n_malformed % 1000 == 0:
            log.warning("malformed exchange message #%d (%s): %r", self.n_malformed, why,
                        payload[:120])

    def _publish(self, st: BookState, now_ns: int, exch_ns: int = 0, flags: int = 0) -> None:
        """``flags``: MdFlag.TRADE when the record reports a new trade (the engine's bars)."""
        st.pub.publish(st.slot, exch_ns or st.book.event_time_ms * 1_000_000, now_ns,
                       flags | (MdFlag.STALE if st.stale else 0))

    def _mark_stale(self, st: BookState) -> None:
        if not st.stale:
            st.stale = True
            self._publish(st, time.time_ns())
            self._status_soon(GatewayState.STALE, DETAIL_BOOK + st.inst.id)

    def _unstale(self, st: BookState) -> None:
        st.stale = False
        self._status_soon(GatewayState.HEALTHY, DETAIL_BOOK + st.inst.id)

    async def _stale_watch(self) -> None:
        limit_ns = int(self.cfg.stale_after_s * 1e9)
        while True:
            await asyncio.sleep(self.cfg.stale_after_s / 4)
            now = time.monotonic_ns()
            for st in self.md.values():
                if not st.stale and (not st.book.synced or st.book.age_ns(now) > limit_ns):
                    log.warning("%s: book stale (no update for %.1fs)", st.inst.symbol,
                                st.book.age_ns(now) / 1e9)
                    self._mark_stale(st)
            # a silent socket (no message at all) for 3 limits: drop it and reconnect
            c = self.md_conn
            if c.transport is not None and now - c.last_recv_ns > 3 * limit_ns:
                log.warning("market data socket silent; reconnecting")
                c.drop()

    async def _md_refresh(self) -> None:
        """Republish the current top of every synced book (stale flag included)."""
        while True:
            await asyncio.sleep(self.cfg.md_refresh_s)
            now = time.time_ns()
            for st in self.md.values():
                if st.book.synced:
                    self._publish(st, now)


__all__ = ["BookState", "MarketData"]
