"""Python clients of the OMS engine: blocking :class:`OmsClient`, asyncio :class:`AsyncOmsClient`.

Both talk to the engine's ROUTER over one DEALER socket with the binary records of
``bindings.wire`` (see docs/protocol.md). Every command carries a fresh request id; the
engine's answer (ACK, REJECT, HEARTBEAT, query rows + QUERY_RESULT, PROTOCOL_ERROR) echoes it
and is matched back to the call. Everything else that arrives (order updates, fills,
positions, ...) is an event of this client and is queued for :meth:`OmsClient.events`.

Given the OMS configuration (``config=`` an ``OmsConfig`` or the TOML path) the client speaks
in names and decimals: ``client="alice"``, ``strategy="trend"``, ``instrument="BTCUSDT"``,
prices and quantities as decimal strings or ``Decimal`` (converted exactly at the
instrument's precisions; :func:`bindings.decimals.to_raw`), and :meth:`OmsClient.signal`
answers one :class:`ClientAnswer` per client. Raw int ids and raw int64 amounts are accepted
everywhere too (``precisions={instrument: (price_decimals, qty_decimals)}`` without a
configuration). docs/client.md is the guide.

This module holds the two socket fronts; the commands they share are in
:mod:`bindings.commands`, the sans-IO session (request ids, encoding, matching answers) in
:mod:`bindings.session`, the answers and errors in :mod:`bindings.results` (re-exported here).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping
from dataclasses import replace
from typing import Any

import zmq
import zmq.asyncio

from bindings.commands import Commands
from bindings.names import Names
from bindings.results import (
    Ack,
    AlertRow,
    ClientAnswer,
    GatewayRow,
    OmsError,
    OmsTimeout,
    ProtocolError,
    QueryResult,
    Rejected,
    RejectedError,
    SignalResult,
    alert_text,
    order_reject_text,
    reject_reason,
    reply_of,
    venue_reason,
)
from bindings.security import CurveClientKeys
from bindings.session import Session
from bindings.wire.records import CODECS, FrameBuilder


def _session(endpoint: str | None, config: Any, client: str | None,
             account: str | int | None, strategy: str | int | None,
             precisions: Mapping[int, tuple[int, int]] | None, max_events: int,
             curve: CurveClientKeys | None = None, user: str | None = None,
             ) -> tuple[Session, str, CurveClientKeys | None]:
    """The session of a new client, the endpoint it connects to and its CURVE keys (with
    ``config`` and security on: the keys of ``user``, by default the operator's)."""
    if isinstance(config, str | os.PathLike):
        from oms_core.config import load_config

        config = load_config(config)
    if curve is None and config is not None and hasattr(config, "security"):
        from oms_core import security

        if security.security_on(config):
            curve = security.client_keys(config, user or security.OPERATOR_KEY)
    names = Names.from_config(config) if config is not None else Names()
    if precisions:
        names = replace(names, precisions={**names.precisions, **precisions})
    if client is not None:
        if account is not None:
            raise ValueError("give client= (a name) or account=, not both")
        account = names.account(client)
    if endpoint is None:
        if not names.commands:
            raise ValueError("no endpoint: pass endpoint= or config=")
        from oms_core.engine.config import shard_endpoint

        endpoint = shard_endpoint(names.commands, names.shards.get(client or "", 0))
    return Session(names, account, strategy, max_events), endpoint, curve


def _configure(sock: zmq.Socket, curve: CurveClientKeys | None, identity: bytes | None) -> None:
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.SNDHWM, 100_000)
    sock.setsockopt(zmq.RCVHWM, 100_000)
    if identity:
        sock.setsockopt(zmq.ROUTING_ID, identity)
    if curve is not None:
        curve.apply(sock)


# ---------------------------------------------------------------------------------------------
# Blocking client
# ---------------------------------------------------------------------------------------------


class OmsClient(Commands):
    """Blocking client over a DEALER socket; one call at a time (not thread-safe).

    Parameters
    ----------
    endpoint : str, optional
        The engine's ROUTER endpoint, e.g. ``"tcp://127.0.0.1:5555"`` or ``"ipc:///run/oms"``;
        default: the ``[engine] commands`` endpoint of the client's shard in ``config``.
    config : OmsConfig or path, optional
        The OMS configuration: names, ids and precisions (:class:`bindings.names.Names`).
    client : str, optional
        The client (``[clients.<name>]``) whose account commands use by default.
    account, strategy : str or int, optional
        Defaults for commands that take them (names need ``config``); without an account
        every order command must name one.
    timeout : float
        Seconds to wait for each answer before raising :class:`OmsTimeout`.
    raise_on_reject : bool
        Raise :class:`RejectedError` instead of returning :class:`Rejected`.
    curve : CurveClientKeys, optional
        CURVE keys (client pair + server public key) for an authenticated, encrypted link;
        with ``config`` and security on, the keys of ``user`` from ``[security] keys_dir``.
    user : str, optional
        The key to use from the configuration's keys (a ``[security.users.<name>]``);
        default ``operator`` (admin).
    precisions : mapping, optional
        ``{instrument: (price_decimals, qty_decimals)}`` to accept decimal strings.
    """

    def __init__(
        self, endpoint: str | None = None, *, config: Any = None, client: str | None = None,
        account: str | int | None = None, strategy: str | int | None = None,
        timeout: float = 5.0, raise_on_reject: bool = False,
        curve: CurveClientKeys | None = None, user: str | None = None,
        precisions: Mapping[int, tuple[int, int]] | None = None,
        context: zmq.Context | None = None, identity: bytes | None = None,
        max_events: int = 100_000,
    ) -> None:
        self._s, endpoint, curve = _session(endpoint, config, client, account, strategy,
                                            precisions, max_events, curve, user)
        self.timeout = timeout
        self.raise_on_reject = raise_on_reject
        self._ctx = context or zmq.Context.instance()
        self._sock = self._ctx.socket(zmq.DEALER)
        _configure(self._sock, curve, identity)
        self._sock.setsockopt(zmq.SNDTIMEO, max(1, int(timeout * 1000)))
        self._sock.connect(endpoint)
        self._poller = zmq.Poller()
        self._poller.register(self._sock, zmq.POLLIN)
        self._done: dict[int, Any] = {}
        self._fb = FrameBuilder(1 << 20)

    # -- plumbing -------------------------------------------------------------------------
    def close(self) -> None:
        self._sock.close(linger=0)

    def __enter__(self) -> OmsClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _pump(self, timeout_ms: int) -> bool:
        """Receive and decode every frame available within ``timeout_ms``; True if any."""
        if not self._poller.poll(timeout_ms):
            return False
        got = False
        while True:
            try:
                frame = self._sock.recv(zmq.NOBLOCK, copy=True)
            except zmq.Again:
                return got
            got = True
            for rid, res in self._s.feed(frame):
                self._done[rid] = res

    def _wait(self, rids: list[int], timeout: float | None = None) -> list[Any]:
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        want = set(rids)
        while True:
            if 0 in self._done:  # malformed frame from the engine
                raise self._done.pop(0)
            if want.issubset(self._done.keys()):
                break
            for rid in want & self._done.keys():
                if isinstance(self._done[rid], ProtocolError):
                    raise self._done.pop(rid)
            left = deadline - time.monotonic()
            if left <= 0:
                self._s.forget(want - self._done.keys())
                for rid in want:
                    self._done.pop(rid, None)
                missing = len(want - self._done.keys())
                raise OmsTimeout(f"no answer from the engine for {missing} request(s)")
            self._pump(max(1, int(left * 1000)))
        out = [self._done.pop(r) for r in rids]
        for r in out:
            if isinstance(r, ProtocolError):
                raise r
            if self.raise_on_reject and isinstance(reply_of(r), Rejected):
                raise RejectedError(reply_of(r))
        return out

    def _send(self, data: Any, rids: Iterable[int]) -> None:
        try:
            self._sock.send(data, copy=True)
        except zmq.Again:  # SNDTIMEO: no connected engine (down, or CURVE handshake refused)
            self._s.forget(rids)
            raise OmsTimeout("could not send to the engine within the timeout") from None

    def _call(self, name: str, fields: dict[str, Any], rows: bool = False) -> Any:
        rid, data = self._s.encode(name, fields, rows)
        self._send(data, (rid,))
        return self._wait([rid])[0]

    # -- extras ---------------------------------------------------------------------------
    def heartbeat(self) -> int:
        """Send a HEARTBEAT and wait for its echo; return the round trip in ns."""
        rid, data = self._s.encode("HEARTBEAT", {"last_seq": 0, "echo_ns": 0})
        self._send(data, (rid,))
        return self._wait([rid])[0]

    def submit_many(self, orders: Iterable[Mapping[str, Any]]) -> list[Any]:
        """Send many orders batched in as few frames as possible; return answers in order.

        Each item holds the keywords of :meth:`submit` (``instrument``, ``side``,
        ``quantity``, ``price``, ...).
        """
        fb = self._fb
        codec = CODECS["NEW_ORDER"]
        rids: list[int] = []
        fb.reset()
        for o in orders:
            if not fb.room(codec):
                self._send(fb.view(), rids)
                fb.reset()
            kw = dict(o)
            rids.append(self._s.add(fb, "NEW_ORDER", self._s.new_order(
                kw.pop("instrument"), kw.pop("side"), kw.pop("quantity"), kw.pop("price", 0),
                **kw)))
        if len(fb):
            self._send(fb.view(), rids)
            fb.reset()
        timeout = self.timeout + len(rids) * 1e-4
        return self._wait(rids, timeout)

    def events(self, timeout: float = 0.0) -> Iterator[Any]:
        """Yield this client's events (decoded records) until none arrives for ``timeout`` s."""
        ev = self._s.events
        while True:
            while ev:
                yield ev.popleft()
            if not self._pump(int(timeout * 1000)):
                if not ev:
                    return

    def send_raw(self, frame: bytes) -> None:
        """Send a raw frame (tests, tools); answers land in events / pending results."""
        self._send(frame, ())


# ---------------------------------------------------------------------------------------------
# asyncio client
# ---------------------------------------------------------------------------------------------


class AsyncOmsClient(Commands):
    """asyncio client (works on uvloop); the same commands as :class:`OmsClient`, awaited.

    Use ``async with AsyncOmsClient(endpoint) as c:``. A reader task matches answers to
    futures by request id and queues events; with ``heartbeat_interval`` > 0 a task sends
    heartbeats and :attr:`engine_alive` turns False when none was answered for 3 intervals.
    """

    def __init__(
        self, endpoint: str | None = None, *, config: Any = None, client: str | None = None,
        account: str | int | None = None, strategy: str | int | None = None,
        timeout: float = 5.0, raise_on_reject: bool = False,
        curve: CurveClientKeys | None = None, user: str | None = None,
        precisions: Mapping[int, tuple[int, int]] | None = None,
        context: zmq.asyncio.Context | None = None, identity: bytes | None = None,
        heartbeat_interval: float = 0.0, max_events: int = 100_000,
    ) -> None:
        self._s, endpoint, curve = _session(endpoint, config, client, account, strategy,
                                            precisions, max_events, curve, user)
        self.timeout = timeout
        self.raise_on_reject = raise_on_reject
        self.heartbeat_interval = heartbeat_interval
        self._endpoint = endpoint
        self._ctx = context or zmq.asyncio.Context.instance()
        self._sock = self._ctx.socket(zmq.DEALER)
        _configure(self._sock, curve, identity)
        self._futures: dict[int, asyncio.Future[Any]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._event_signal: asyncio.Event | None = None
        self._fb = FrameBuilder(1 << 20)
        self.last_heartbeat_rtt_ns = 0

    async def __aenter__(self) -> AsyncOmsClient:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def connect(self) -> None:
        self._sock.connect(self._endpoint)
        self._event_signal = asyncio.Event()
        self._tasks.append(asyncio.create_task(self._reader()))
        if self.heartbeat_interval > 0:
            self._tasks.append(asyncio.create_task(self._heartbeats()))

    async def close(self) -> None:
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            try:
                await t
            except (asyncio.CancelledError, Exception):  # noqa: PERF203 - shutdown only
                pass
        self._tasks.clear()
        for f in self._futures.values():
            if not f.done():
                f.cancel()
        self._sock.close(linger=0)

    @property
    def engine_alive(self) -> bool:
        if self.heartbeat_interval <= 0:
            return True
        return time.time_ns() - self._s.last_recv_ns < 3 * self.heartbeat_interval * 1e9

    async def _reader(self) -> None:
        while True:
            frame = await self._sock.recv(copy=True)
            for rid, res in self._s.feed(frame):
                fut = self._futures.pop(rid, None)
                if fut is not None and not fut.done():
                    if isinstance(res, OmsError):
                        fut.set_exception(res)
                    else:
                        fut.set_result(res)
                elif rid == 0 and isinstance(res, OmsError):
                    for f in self._futures.values():
                        if not f.done():
                            f.set_exception(res)
                    self._futures.clear()
            if self._s.events and self._event_signal is not None:
                self._event_signal.set()

    async def _heartbeats(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_interval)
            try:
                self.last_heartbeat_rtt_ns = await self.heartbeat()
            except OmsTimeout:
                pass

    async def _await(self, rids: list[int], timeout: float | None = None) -> list[Any]:
        loop = asyncio.get_running_loop()
        futs = []
        for rid in rids:
            fut = self._futures.get(rid)
            if fut is None:
                fut = self._futures[rid] = loop.create_future()
            futs.append(fut)
        try:
            async with asyncio.timeout(self.timeout if timeout is None else timeout):
                out = list(await asyncio.gather(*futs))
        except TimeoutError:
            for rid in rids:
                self._futures.pop(rid, None)
            self._s.forget(rids)
            raise OmsTimeout(f"no answer from the engine for {len(rids)} request(s)") from None
        if self.raise_on_reject:
            for r in out:
                if isinstance(reply_of(r), Rejected):
                    raise RejectedError(reply_of(r))
        return out

    async def _call_async(self, name: str, fields: dict[str, Any], rows: bool) -> Any:
        rid, data = self._s.encode(name, fields, rows)
        self._futures[rid] = asyncio.get_running_loop().create_future()
        await self._send(data, (rid,))
        return (await self._await([rid]))[0]

    async def _send(self, data: Any, rids: Iterable[int]) -> None:
        try:
            async with asyncio.timeout(self.timeout):
                await self._sock.send(data)
        except TimeoutError:  # no connected engine (down, or CURVE handshake refused)
            for rid in rids:
                self._futures.pop(rid, None)
            self._s.forget(rids)
            raise OmsTimeout("could not send to the engine within the timeout") from None

    def _call(self, name: str, fields: dict[str, Any], rows: bool = False) -> Any:
        return self._call_async(name, fields, rows)

    async def heartbeat(self) -> int:
        """Send a HEARTBEAT and await its echo; return the round trip in ns."""
        return await self._call_async("HEARTBEAT", {"last_seq": 0, "echo_ns": 0}, False)

    async def submit_many(self, orders: Iterable[Mapping[str, Any]]) -> list[Any]:
        """Send many orders batched into frames; return the answers in order."""
        fb = self._fb
        codec = CODECS["NEW_ORDER"]
        loop = asyncio.get_running_loop()
        rids: list[int] = []
        fb.reset()
        for o in orders:
            if not fb.room(codec):
                await self._send(fb.tobytes(), rids)
                fb.reset()
            kw = dict(o)
            rid = self._s.add(fb, "NEW_ORDER", self._s.new_order(
                kw.pop("instrument"), kw.pop("side"), kw.pop("quantity"), kw.pop("price", 0),
                **kw))
            self._futures[rid] = loop.create_future()
            rids.append(rid)
        if len(fb):
            await self._send(fb.tobytes(), rids)
            fb.reset()
        return await self._await(rids, self.timeout + len(rids) * 1e-4)

    async def events(self, timeout: float | None = None) -> AsyncIterator[Any]:
        """Yield this client's events; stop after ``timeout`` s without one (None: never)."""
        ev = self._s.events
        assert self._event_signal is not None, "connect() first"
        while True:
            while ev:
                yield ev.popleft()
            self._event_signal.clear()
            try:
                async with asyncio.timeout(timeout):
                    await self._event_signal.wait()
            except TimeoutError:
                if not ev:
                    return

    async def send_raw(self, frame: bytes) -> None:
        await self._send(frame, ())


__all__ = [
    "Ack", "AlertRow", "AsyncOmsClient", "ClientAnswer", "GatewayRow", "Names", "OmsClient",
    "OmsError", "OmsTimeout", "ProtocolError", "QueryResult", "Rejected", "RejectedError",
    "SignalResult", "alert_text", "order_reject_text", "reject_reason", "venue_reason",
]
