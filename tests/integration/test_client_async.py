"""AsyncOmsClient against the stub engine, on the asyncio loop and on uvloop."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
import uvloop
import zmq
import zmq.asyncio

from bindings import Ack, AsyncOmsClient, MsgType, OmsTimeout, Rejected
from bindings.stub_engine import StubEngine
from oms_core.enums import Reject, Side

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(params=["asyncio", "uvloop"])
def run(request: pytest.FixtureRequest) -> Iterator:
    def runner(coro_fn):  # type: ignore[no-untyped-def]
        if request.param == "uvloop":
            with asyncio.Runner(loop_factory=uvloop.new_event_loop) as r:
                return r.run(coro_fn())
        with asyncio.Runner() as r:
            return r.run(coro_fn())

    yield runner


@pytest.fixture
def engine() -> Iterator[StubEngine]:
    with StubEngine() as e:
        yield e


def test_async_commands(run, engine: StubEngine) -> None:  # type: ignore[no-untyped-def]
    async def main() -> None:
        ctx = zmq.asyncio.Context()
        try:
            async with AsyncOmsClient(engine.endpoint, account=1, context=ctx,
                                      timeout=3.0, heartbeat_interval=0.05) as c:
                assert isinstance(await c.hello([1]), Ack)
                ack = await c.submit(7, Side.BUY, 10, 100)
                assert ack.ok and ack.order_id
                rej = await c.submit(7, Side.BUY, -1, 100)
                assert isinstance(rej, Rejected) and rej.code == Reject.INVALID_QUANTITY
                # concurrent requests are matched by request id
                res = await asyncio.gather(*(c.submit(7, Side.SELL, i + 1, 100)
                                             for i in range(50)))
                assert all(r.ok for r in res)
                assert len({r.order_id for r in res}) == 50
                q = await c.orders()
                assert len(q.rows) == 51
                assert (await c.cancel(ack.order_id)).ok
                batch = await c.submit_many(
                    [{"instrument": 7, "side": 1, "quantity": 1, "price": 1}] * 300)
                assert len(batch) == 300 and all(b.ok for b in batch)
                assert await c.heartbeat() > 0
                await asyncio.sleep(0.15)  # let the heartbeat task run
                assert c.engine_alive and c.last_heartbeat_rtt_ns > 0
                seen = [ev async for ev in c.events(timeout=0.3)]
                kinds = {e.msg_type for e in seen}
                assert kinds == {MsgType.ORDER_UPDATE}
                assert len(seen) == 1 + 50 + 1 + 300
        finally:
            ctx.term()

    run(main)


def test_async_timeout(run) -> None:  # type: ignore[no-untyped-def]
    async def main() -> None:
        ctx = zmq.asyncio.Context()
        silent = ctx.socket(zmq.ROUTER)
        port = silent.bind_to_random_port("tcp://127.0.0.1")
        try:
            async with AsyncOmsClient(f"tcp://127.0.0.1:{port}", account=1, context=ctx,
                                      timeout=0.2) as c:
                with pytest.raises(OmsTimeout):
                    await c.submit(7, Side.BUY, 1, 1)
        finally:
            silent.close(linger=0)
            ctx.term()

    run(main)
