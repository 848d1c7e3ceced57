"""pytest-benchmark micro costs of the compiled core's Python API (submit, cancel, fill).

For the record only: nothing here asserts speed, and the default ``pytest`` run does not see
this file (testpaths = tests). Run with ``pytest benchmarks/ --benchmark-only``. Each round
times one call; its arguments (and the order it acts on) are made by an untimed setup, so the
timer's own cost (tens of ns) is inside every number. The same workload as bench_core.py: every
risk check on, spot balance check, self-trade prevention against seeded resting orders.
"""

from __future__ import annotations

import itertools

import pytest

from benchmarks.bench_core import (
    FEE,
    GTC,
    LIMIT_TYPE,
    QTY,
    QUOTE,
    STEP,
    STRATEGY,
    TS0,
    new_core,
    new_reference,
    order_shape,
)
from oms_core.core import OmsCore

N_ACC, N_INST = 4, 4
ROUNDS_CORE = 5_000
ROUNDS_REFERENCE = 100  # its self-trade check scans live orders; keep its book small
pytestmark = pytest.mark.benchmark(disable_gc=True, warmup=False)


class Flow:
    """Fresh order arguments, one per call, with increasing client ids and timestamps."""

    def __init__(self, model: object) -> None:
        self.m = model
        self.k = itertools.count()

    def order_args(self) -> tuple:
        k = next(self.k)
        a, i, side, price = order_shape(k, N_ACC, N_INST)
        return (a, STRATEGY, i, k + 1, side, LIMIT_TYPE, GTC, price, 0, QTY, 0, 0,
                TS0 + 1_000 + k * STEP)

    def live_order(self, ack: bool) -> tuple[int, int, int, int]:
        """Submit (and maybe ack) one order; return (account, order id, price, ts)."""
        args = self.order_args()
        code, oid = self.m.submit(*args)
        assert code == 0, code
        if ack:
            assert self.m.on_ack(oid, args[12] + 1) == 0
        self.m.drain_events()
        return args[0], oid, args[7], args[12] + 2


@pytest.fixture(params=["core", "reference"])
def flow(request: pytest.FixtureRequest) -> Flow:
    make = new_core if request.param == "core" else new_reference
    return Flow(make(1 << 16, N_ACC, N_INST))


def rounds_for(flow: Flow) -> int:
    return ROUNDS_CORE if isinstance(flow.m, OmsCore) else ROUNDS_REFERENCE


def test_submit(benchmark, flow: Flow) -> None:
    def setup():
        flow.m.drain_events()
        return flow.order_args(), {}

    rounds = rounds_for(flow)
    code, _ = benchmark.pedantic(flow.m.submit, setup=setup, rounds=rounds, iterations=1)
    assert code == 0


def test_cancel(benchmark, flow: Flow) -> None:
    def setup():
        account, oid, _, ts = flow.live_order(ack=True)
        return (account, oid, ts), {}

    rounds = rounds_for(flow)
    assert benchmark.pedantic(flow.m.cancel, setup=setup, rounds=rounds, iterations=1) == 0


def test_fill(benchmark, flow: Flow) -> None:
    trade = itertools.count(1)

    def setup():
        _, oid, price, ts = flow.live_order(ack=True)
        return (oid, next(trade), QTY, price, FEE, QUOTE, 1, ts), {}

    rounds = rounds_for(flow)
    assert benchmark.pedantic(flow.m.on_fill, setup=setup, rounds=rounds, iterations=1) == 0
