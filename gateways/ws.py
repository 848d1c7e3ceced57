"""Websocket connection management around picows (cold code around a thin hot callback).

:class:`WsConnection` keeps one websocket alive: it connects, hands every text/binary
payload (bytes) to ``on_message``, lets picows answer pings and send idle pings
(heartbeat), notices a dead peer, reconnects with exponential backoff and full jitter,
and calls ``on_connected`` after every (re)connect so the owner can resubscribe and
resynchronise. ``url`` may be a callable so a user-data stream can fetch a new listenKey.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from picows import WSFrame, WSListener, WSMsgType, WSTransport, ws_connect

from oms_core.backoff import Backoff

__all__ = ["WsConnection"]

log = logging.getLogger("gateways.ws")

OnMessage = Callable[[bytes], None]
OnConnected = Callable[["WsConnection"], Awaitable[None]]


class _Listener(WSListener):
    __slots__ = ("_on_message", "_conn")

    def __init__(self, conn: WsConnection) -> None:
        self._conn = conn
        self._on_message = conn.on_message

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        t = frame.msg_type
        if t is WSMsgType.TEXT or t is WSMsgType.BINARY:
            self._conn.last_recv_ns = time.monotonic_ns()
            self._on_message(frame.get_payload_as_bytes())
        elif t is WSMsgType.CLOSE:
            transport.disconnect()

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        self._conn._disconnected()


class WsConnection:
    """One auto-reconnecting websocket.

    Parameters
    ----------
    name : str
        For logs and status.
    url : str or callable returning str (may be async)
        Where to connect; called before every connect.
    on_message : callable(bytes)
        Called for every text/binary message, in the event loop; must not raise
        (exceptions are counted and logged, the connection stays).
    on_connected : async callable(WsConnection), optional
        Called after every successful connect (resubscribe / resync here).
    on_disconnected : callable(WsConnection), optional
        Called when the socket goes down (mark books stale, report RECONNECTING).
    """

    def __init__(self, name: str, url: str | Callable[[], str | Awaitable[str]],
                 on_message: OnMessage, on_connected: OnConnected | None = None,
                 on_disconnected: Callable[[WsConnection], None] | None = None,
                 backoff: Backoff | None = None, ping_idle_s: float = 10.0,
                 ping_reply_s: float = 10.0, healthy_after_s: float = 5.0) -> None:
        self.name = name
        self._url = url
        self.on_message = self._guard(on_message)
        self._on_connected = on_connected
        self._on_disconnected = on_disconnected
        self.backoff = backoff or Backoff()
        self.ping_idle_s = ping_idle_s
        self.ping_reply_s = ping_reply_s
        self.healthy_after_s = healthy_after_s
        self.transport: WSTransport | None = None
        self.connected = asyncio.Event()
        self.last_recv_ns = 0
        self.n_connects = 0
        self.n_handler_errors = 0
        self._stop = False
        self._task: asyncio.Task[None] | None = None

    def _guard(self, fn: OnMessage) -> OnMessage:
        def guarded(payload: bytes) -> None:
            try:
                fn(payload)
            except Exception:  # one bad message must not kill the stream
                self.n_handler_errors += 1
                log.exception("%s: message handler failed on %d bytes", self.name, len(payload))
        return guarded

    def start(self) -> asyncio.Task[None]:
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"ws-{self.name}")
        return self._task

    async def stop(self) -> None:
        self._stop = True
        if self.transport is not None:
            self.transport.disconnect()
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass

    def send(self, payload: bytes) -> None:
        """Send a text message; raises ConnectionError when down."""
        t = self.transport
        if t is None or t.is_disconnected:
            raise ConnectionError(f"{self.name}: not connected")
        t.send(WSMsgType.TEXT, payload)

    def drop(self) -> None:
        """Drop the socket now (stale data, tests); the run loop reconnects."""
        if self.transport is not None:
            self.transport.disconnect(graceful=False)

    def _disconnected(self) -> None:
        self.connected.clear()
        if self._on_disconnected is not None:
            try:
                self._on_disconnected(self)
            except Exception:
                log.exception("%s: on_disconnected failed", self.name)

    async def _resolve_url(self) -> str:
        u = self._url
        if callable(u):
            u = u()
            if asyncio.iscoroutine(u):
                u = await u
        return str(u)

    async def _run(self) -> None:
        while not self._stop:
            t0 = time.monotonic()
            try:
                url = await self._resolve_url()
                transport, _ = await ws_connect(
                    lambda: _Listener(self), url, enable_auto_ping=True,
                    auto_ping_idle_timeout=self.ping_idle_s,
                    auto_ping_reply_timeout=self.ping_reply_s,
                    websocket_handshake_timeout=5.0, logger_name=f"gw.{self.name}")
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                delay = self.backoff.next_delay()
                log.warning("%s: connect failed (%s); retry in %.2fs", self.name,
                            type(exc).__name__, delay)
                await asyncio.sleep(delay)
                continue
            self.transport = transport
            self.n_connects += 1
            self.last_recv_ns = time.monotonic_ns()
            log.info("%s: connected (#%d)", self.name, self.n_connects)
            try:
                if self._on_connected is not None:
                    await self._on_connected(self)
                self.connected.set()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("%s: on_connected failed; reconnecting", self.name)
                transport.disconnect()
            await transport.wait_disconnected()
            self.connected.clear()
            self.transport = None
            if self._stop:
                break
            if time.monotonic() - t0 >= self.healthy_after_s:
                self.backoff.reset()
            delay = self.backoff.next_delay()
            log.warning("%s: disconnected; reconnect in %.2fs", self.name, delay)
            await asyncio.sleep(delay)
