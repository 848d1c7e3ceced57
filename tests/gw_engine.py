"""The engine's side of the gateway link for integration tests (real ZeroMQ on loopback)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import zmq
import zmq.asyncio

from bindings.wire import records as wire
from gateways.config import EngineEndpoints
from gateways.engine_link import ExecType


class Engine:
    """The engine side of the link: binds the sockets the gateway connects to."""

    def __init__(self) -> None:
        self.ctx = zmq.asyncio.Context()
        self.orders = self.ctx.socket(zmq.PUSH)
        self.events = self.ctx.socket(zmq.PULL)
        self.md = self.ctx.socket(zmq.SUB)
        self.md.setsockopt(zmq.SUBSCRIBE, b"")
        eps = []
        for s in (self.orders, self.events, self.md):
            s.setsockopt(zmq.LINGER, 0)
            s.bind("tcp://127.0.0.1:*")
            eps.append(s.getsockopt(zmq.LAST_ENDPOINT).decode())
        self.endpoints = EngineEndpoints(orders=eps[0], events=eps[1], market_data=eps[2])
        self.received: list[Any] = []
        self.md_received: list[Any] = []

    async def send_order(self, **fields: Any) -> None:
        await self.orders.send(wire.encode("GW_NEW_ORDER", **fields))

    async def wait_event(self, pred: Callable[[Any], bool], timeout: float = 5.0) -> Any:
        for ev in self.received:
            if pred(ev):
                return ev
        async with asyncio.timeout(timeout):
            while True:
                ev = wire.decode(await self.events.recv())
                self.received.append(ev)
                if pred(ev):
                    return ev

    async def join(self, pub: zmq.Socket, timeout: float = 5.0) -> None:
        """Wait until ``pub`` (the gateway's PUB) reaches our SUB.

        ZeroMQ drops what a PUB sends before the subscription has arrived ("slow
        joiner"): probe until one probe comes through. Probes are skipped by wait_md.
        """
        async with asyncio.timeout(timeout):
            while True:
                pub.send(b"probe")
                try:
                    async with asyncio.timeout(0.05):
                        await self.md.recv()
                        return
                except TimeoutError:
                    pass

    async def wait_md(self, pred: Callable[[Any], bool], timeout: float = 5.0) -> Any:
        async with asyncio.timeout(timeout):
            while True:
                frame = await self.md.recv()
                if frame == b"probe":
                    continue
                ev = wire.decode(frame)
                self.md_received.append(ev)
                if pred(ev):
                    return ev

    async def drain(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            try:
                async with asyncio.timeout(left):
                    self.received.append(wire.decode(await self.events.recv()))
            except TimeoutError:
                break

    def execs(self, exec_type: ExecType) -> list[Any]:
        return [e for e in self.received
                if e.msg_type.name == "GW_EXEC_REPORT" and e.exec_type == exec_type]

    def close(self) -> None:
        self.ctx.destroy(0)
