"""AsyncOmsClient against the real engine process, on the asyncio loop and on uvloop."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvloop
import zmq
import zmq.asyncio

from bindings import Ack, AsyncOmsClient, MsgType, OmsTimeout, Rejected
from oms_core.engine.process import EngineProcess, base_config
from oms_core.enums import OrderStatus, Reject, Side

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
def engine(tmp_path: Path) -> Iterator[EngineProcess]:
    with EngineProcess(base_config(tmp_path, "tcp"), tmp_path) as e:
        yield e


def test_async_commands(run, engine: EngineProcess) -> None:  # type: ignore[no-untyped-def]
    async def main() -> None:
        ctx = zmq.asyncio.Context()
        try:
            async with AsyncOmsClient(engine.endpoints["client"], account=1, strategy=1,
                                      context=ctx, timeout=5.0, heartbeat_interval=0.05,
                                      precisions={1: (2, 5)}) as c:
                assert isinstance(await c.hello([1]), Ack)
                ack = await c.submit(1, Side.BUY, "0.0001", "49900.00")
                assert ack.ok and ack.order_id
                rej = await c.submit(1, Side.BUY, -1, 4_990_000)
                assert isinstance(rej, Rejected) and rej.code == Reject.INVALID_QUANTITY
                # concurrent requests are matched by request id
                res = await asyncio.gather(*(c.submit(1, Side.SELL, i + 1, 5_010_000)
                                             for i in range(50)))
                assert all(r.ok for r in res)
                assert len({r.order_id for r in res}) == 50
                q = await c.orders()
                assert len(q.rows) == 51
                assert (await c.cancel(ack.order_id)).ok
                batch = await c.submit_many(
                    [{"instrument": 1, "side": 1, "quantity": 1, "price": 4_980_000}] * 300)
                assert len(batch) == 300 and all(b.ok for b in batch)
                sig = await c.signal(1, 1, price=4_970_000)
                assert sig.ok and sig.order_id
                br = await c.bracket(1, Side.BUY, 100, entry_price=4_960_000,
                                     tp_price=5_100_000, sl_trigger_price=4_900_000)
                assert br.ok and br.leg3_order_id
                assert await c.heartbeat() > 0
                await asyncio.sleep(0.15)  # let the heartbeat task run
                assert c.engine_alive and c.last_heartbeat_rtt_ns > 0
                seen = [ev async for ev in c.events(timeout=0.3)]
                # one update per new order (1 + 50 + 300, the signal's, the bracket's entry)
                # and the cancel's PENDING_CANCEL
                updates = [(e.order_id, e.status) for e in seen
                           if e.msg_type == MsgType.ORDER_UPDATE]
                assert len({oid for oid, _ in updates}) == 1 + 50 + 300 + 1 + 1
                assert (ack.order_id, OrderStatus.PENDING_CANCEL) in updates
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
