"""The order table's client-order-id index (8-byte {tag, slot} entries, the key kept in the order
slot): lookups, duplicates and eviction of the oldest closed order, against a Python model,
including two client ids whose 32-bit tags are equal."""

from __future__ import annotations

import random
from collections import deque

import pytest

from oms_core.core import OmsCore
from oms_core.enums import OrderType, Reject, Side, TimeInForce

USDT, BTC = 0, 1
PX = 5_000_000
M64 = (1 << 64) - 1


def _mix64(x: int) -> int:
    x ^= x >> 33
    x = (x * 0xFF51AFD7ED558CCD) & M64
    x ^= x >> 33
    x = (x * 0xC4CEB9FE1A85EC53) & M64
    return x ^ (x >> 33)


def _tag(account: int, cl_ord_id: int) -> int:
    """The index's tag of a key (orders.pxd client_tag)."""
    return _mix64(cl_ord_id ^ ((account * 0x9E3779B97F4A7C15) & M64)) & 0xFFFFFFFF


def _colliding_ids(account: int) -> tuple[int, int]:
    """Two client ids of the account with the same 32-bit tag (a birthday search)."""
    seen: dict[int, int] = {}
    for cl in range(1, 1_000_000):
        t = _tag(account, cl)
        if t in seen:
            return seen[t], cl
        seen[t] = cl
    raise AssertionError("no tag collision found")


COLLIDING = _colliding_ids(0)


def make_core(max_orders: int) -> OmsCore:
    c = OmsCore(max_orders=max_orders, max_accounts=2, max_instruments=1, max_assets=2)
    c.add_asset(USDT, "USDT", 8)
    c.add_asset(BTC, "BTC", 8)
    c.add_instrument(0, "BTCUSDT", 0, BTC, USDT, 2, 5, 1, 1, 1, 10**10, 5 * 10**8)
    c.add_strategy(1)
    for a in (0, 1):
        c.add_account(a)
        c.deposit(a, USDT, 10**18)
    c.set_price(0, PX, PX - 1, PX + 1, 1)
    c.drain_events()
    return c


def submit(c: OmsCore, account: int, cl: int, ts: int) -> tuple[int, int]:
    # each submit on a new trading day: these tests are about the table's index, which alone
    # decides once the day's set of used ids is cleared (an id is refused all day otherwise)
    c.start_of_day(ts)
    return c.submit(account, 1, 0, cl, Side.BUY, OrderType.LIMIT, TimeInForce.GTC, PX, 0,
                    100_000, 0, 0, ts)


def close(c: OmsCore, account: int, oid: int, ts: int) -> None:
    assert c.cancel(account, oid, ts) == Reject.OK
    assert c.on_canceled(oid, ts + 1) == Reject.OK


def test_ids_with_equal_tags_are_told_apart_by_the_key_in_the_slot() -> None:
    a, b = COLLIDING
    assert a != b and _tag(0, a) == _tag(0, b)
    c = make_core(64)
    code, oid_a = submit(c, 0, a, 10)
    assert code == Reject.OK
    assert c.order_id_by_client_id(0, b) == 0  # same tag, other key: not found
    code, oid_b = submit(c, 0, b, 11)
    assert code == Reject.OK
    assert c.order_id_by_client_id(0, a) == oid_a
    assert c.order_id_by_client_id(0, b) == oid_b
    assert c.order_id_by_client_id(1, a) == 0
    assert submit(c, 0, a, 12)[0] == Reject.DUPLICATE_CLIENT_ORDER_ID
    assert submit(c, 0, b, 13)[0] == Reject.DUPLICATE_CLIENT_ORDER_ID
    assert submit(c, 1, a, 14)[0] == Reject.OK  # another account's id space
    assert c.cancel_by_client_id(0, b, 15) == Reject.OK
    assert c.order(oid_b)["status"] != c.order(oid_a)["status"]


def test_forgetting_one_of_two_equal_tags_keeps_the_other() -> None:
    a, b = COLLIDING
    c = make_core(2)
    _, oid_a = submit(c, 0, a, 10)
    _, oid_b = submit(c, 0, b, 11)
    close(c, 0, oid_a, 12)
    code, oid_x = submit(c, 0, 7, 20)  # table full: forgets a, the oldest closed order
    assert code == Reject.OK
    assert c.order(oid_a) is None
    assert c.order_id_by_client_id(0, a) == 0
    assert c.order_id_by_client_id(0, b) == oid_b
    assert submit(c, 0, b, 21)[0] == Reject.DUPLICATE_CLIENT_ORDER_ID
    assert submit(c, 0, a, 22)[0] == Reject.TABLE_FULL  # a is free again, but no slot is
    close(c, 0, oid_x, 23)
    code, oid_a2 = submit(c, 0, a, 30)
    assert code == Reject.OK and c.order_id_by_client_id(0, a) == oid_a2


@pytest.mark.parametrize("seed", range(4))
def test_lookups_match_a_model_through_many_evictions(seed: int) -> None:
    rng = random.Random(seed)
    capacity = 16
    c = make_core(capacity)
    pool = [(acct, cl) for acct in (0, 1) for cl in range(1, 25)] + [(0, x) for x in COLLIDING]
    present: dict[tuple[int, int], int] = {}  # key -> order id, while in the table
    live: set[tuple[int, int]] = set()
    closed: deque[tuple[int, int]] = deque()  # oldest closed first
    ts = 100
    for _ in range(1_500):
        ts += 10
        key = rng.choice(pool)
        if key in live and rng.random() < 0.6:
            close(c, key[0], present[key], ts)
            live.discard(key)
            closed.append(key)
        else:
            code, oid = submit(c, key[0], key[1], ts)
            if key in present:
                assert code == Reject.DUPLICATE_CLIENT_ORDER_ID
            elif len(present) == capacity and not closed:
                assert code == Reject.TABLE_FULL
            else:
                assert code == Reject.OK
                if len(present) == capacity:
                    del present[closed.popleft()]
                present[key] = oid
                live.add(key)
        c.drain_events()
        for k in pool:
            assert c.order_id_by_client_id(k[0], k[1]) == present.get(k, 0), k
    assert c.open_order_count() == len(live)


def test_index_share_per_order_is_eight_bytes_at_half_load() -> None:
    t = OmsCore(max_orders=1 << 20).orders
    assert t.client_capacity == 1 << 21
    assert t.bytes_per_order == t.slot_size + 16
