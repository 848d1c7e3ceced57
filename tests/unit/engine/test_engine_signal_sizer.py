"""One signal sizer: a SIGNAL to the minimal engine (tests/minimal_engine.py) is sized by
``oms_core.signals``: each following account's ``fixed_qty``, entered as a limit at the
signal's price."""

from __future__ import annotations

import time

from minimal_engine import engine_config

from bindings.wire import records as wire
from bindings.wire.spec import MsgType, SignalMode
from oms_core.engine import Engine, build_core
from oms_core.engine.offline import event_records
from oms_core.enums import OrderStatus, OrderType, Side

ANY = 0xFFFFFFFF


def _engine() -> Engine:
    cfg = engine_config()
    return Engine(build_core(cfg), config=cfg)


def _signal(e: Engine, rid: int, value: int, mode: SignalMode = SignalMode.DIRECTION,
            price: int = 4_990_000, account: int = ANY) -> list:
    frame = wire.encode("SIGNAL", rid, rid, 0, value=value, price=price, account=account,
                        strategy=1, instrument=1, mode=int(mode))
    lp = e.loop
    lp.begin(3, (1 << 64) - 1, 0b110, False)
    lp.on_client_frame(frame, time.time_ns())
    lp.commit()
    return [wire.decode(r) for r in event_records(e)]


def _live(e: Engine, account: int) -> list[tuple[int, int, int, int]]:
    return [(o["side"], o["order_type"], o["price"], o["qty"])
            for o in map(e.core.order, e.core.live_orders(account))]


def test_each_following_account_gets_its_own_answer_and_order() -> None:
    e = _engine()
    events = _signal(e, 1, 1)
    acks = [(r.account, r.cmd_type) for r in events
            if r.msg_type == MsgType.ACK and r.account != ANY]  # ANY: the reply itself
    assert sorted(acks) == [(1, MsgType.SIGNAL), (2, MsgType.SIGNAL)]
    buy = (int(Side.BUY), int(OrderType.LIMIT), 4_990_000, 100)
    assert _live(e, 1) == [buy] and _live(e, 2) == [buy]


def test_a_new_signal_replaces_the_working_entry() -> None:
    e = _engine()
    _signal(e, 1, 1, account=2)
    (first,) = e.core.live_orders(2)
    _signal(e, 2, 1, account=2, price=4_980_000)
    assert e.core.order(first)["status"] == OrderStatus.PENDING_CANCEL
    assert _live(e, 2)[-1] == (int(Side.BUY), int(OrderType.LIMIT), 4_980_000, 100)


def test_target_weight_is_sized_from_the_balance() -> None:
    e = _engine()
    e.core.deposit(1, 2, 1_000 * 10**8)  # 1,000 USDT
    # 5% of the balance at 50,000.00: 0.001 BTC = 100 raw
    _signal(e, 1, 50_000, mode=SignalMode.TARGET_WEIGHT, price=5_000_000, account=1)
    assert _live(e, 1) == [(int(Side.BUY), int(OrderType.LIMIT), 5_000_000, 100)]
