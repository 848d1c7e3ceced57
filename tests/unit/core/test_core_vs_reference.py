"""Property tests: the compiled core and the pure-Python reference model, driven by the same random
sequences of commands and venue events, give identical answers, events and state.

Order ids differ by encoding only: a compiled id is ``sequence << slot_bits | slot`` and the
reference id is the sequence itself, so compiled ids are translated before comparing.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from oms_core.core import OmsCore
from oms_core.enums import Hold, Limit, OrderType, Side, TimeInForce
from oms_core.limits import MAX_RAW
from oms_core.reference import ReferenceModel

ANY = 0xFFFFFFFF
N_ACCOUNTS, N_INSTRUMENTS, N_STRATEGIES = 2, 2, 3
BASE_PRICE = 5_000_000  # 50,000.00 at price precision 2
I64 = (1 << 63) - 1


def configure(m, max_orders: int) -> None:
    m.add_asset(0, "USDT", 8)
    m.add_asset(1, "BTC", 8)
    m.add_asset(2, "ETH", 8)
    # BTCUSDT: tick 0.05, lot 0.001 (qty precision 5 -> lot = 100 units), min notional 5 USDT
    m.add_instrument(0, "BTCUSDT", 0, 1, 0, 2, 5, 5, 100, 100, 10**9, 5 * 10**8)
    # ETHUSDT on another exchange, engine-held stops off: the venue holds them
    m.add_instrument(1, "ETHUSDT", 1, 2, 0, 2, 4, 1, 10, 10, 10**9, 0, True, True)
    for a in range(N_ACCOUNTS):
        m.add_account(a)
        m.deposit(a, 0, 10**16)
        m.deposit(a, 1, 10**10)
        m.deposit(a, 2, 10**11)
    m.add_strategy(1)
    m.add_strategy(2, True)
    m.set_limit(1, Limit.CHECK_BALANCE, 1)
    m.set_limit(1, Limit.MAX_POSITION, 50_000)
    m.set_limit(0, Limit.MAX_OPEN_ORDERS, 12)
    m.set_price(0, BASE_PRICE, BASE_PRICE - 5, BASE_PRICE + 5, 1)
    m.set_price(1, 300_000, 299_990, 300_010, 1)


price_offset = st.integers(-12, 12)
PARTNER_ANSWERS = ("canceled", "filled", "partly", "refused_cancel", "rejected", "halted",
                   "none")
quantities = st.one_of(
    st.sampled_from([100, 200, 500, 1000, 2500]),
    st.integers(-5, 5000),
    st.sampled_from([0, -1, MAX_RAW, MAX_RAW + 1, I64]),
)
small = st.integers(0, 40)

valid_submit = st.tuples(
    st.just("submit"), st.integers(0, 1), st.integers(0, 2), st.integers(0, 1),
    st.integers(0, 30), st.sampled_from([1, 2]),
    st.sampled_from([1, 2, 2, 2, 3, 4, 5, 6]), st.sampled_from([1, 1, 1, 2, 3, 4, 5]),
    price_offset, price_offset, st.sampled_from([100, 200, 500, 1000, 2500]),
    st.sampled_from([0, 0, 0, 0, 1, 2]), st.sampled_from([0, 0, 50, 500]),
    st.sampled_from([0, 50, 100]),
)
any_submit = st.tuples(
    st.just("submit"), st.integers(0, N_ACCOUNTS), st.integers(0, N_STRATEGIES),
    st.integers(0, N_INSTRUMENTS), st.integers(0, 30), st.integers(0, 3), st.integers(0, 7),
    st.integers(0, 6), price_offset, price_offset, quantities,
    st.integers(0, 4), st.sampled_from([0, 0, 50, 500]), st.sampled_from([0, 0, 0, 100, 1000]),
)
recent = st.integers(0, 6)
fill = st.tuples(st.just("fill"), recent, st.integers(0, 25), st.sampled_from([1, 2, 3, 10]),
                 price_offset, st.integers(-5, 50), st.sampled_from([0, 0, 0, 1, 2, 7]))
ack = st.tuples(st.just("ack"), recent)

ops = st.one_of(
    valid_submit, valid_submit, valid_submit, valid_submit, valid_submit, valid_submit,
    any_submit,
    st.tuples(st.just("oco"), st.integers(0, 1), st.integers(0, 2), st.integers(0, 1),
              st.integers(0, 30), st.integers(0, 30), st.sampled_from([1, 2]),
              st.sampled_from([2, 3, 4, 5]), price_offset, price_offset,
              st.sampled_from([2, 3, 4, 5]), price_offset, price_offset,
              st.sampled_from([100, 500, 1000])),
    st.tuples(st.just("bracket"), st.integers(0, 1), st.integers(0, 2), st.integers(0, 1),
              st.integers(0, 30), st.integers(0, 30), st.integers(0, 30),
              st.sampled_from([1, 2]), st.sampled_from([1, 2]), price_offset,
              st.sampled_from([100, 500, 1000]), st.integers(0, 12), st.integers(0, 12),
              st.sampled_from([0, 0, 1, -3]), st.sampled_from([1, 1, 4, 5])),
    # an OCO whose priced leg is at the venue and whose stop the engine fires, then one of
    # the venue's answers to the partner's cancel
    st.tuples(st.just("protected"), st.integers(0, 1), st.integers(0, 2), st.integers(0, 30),
              st.integers(0, 30), st.sampled_from([1, 2]), st.sampled_from([100, 500, 1000]),
              st.booleans(), st.sampled_from(PARTNER_ANSWERS), st.integers(0, 25)),
    st.tuples(st.just("cancel"), st.integers(0, N_ACCOUNTS), recent),
    st.tuples(st.just("cancel_cl"), st.integers(0, 1), st.integers(0, 30)),
    st.tuples(st.just("replace"), st.integers(0, 1), recent, price_offset, quantities),
    st.tuples(st.just("mass_cancel"), st.integers(0, 1), st.sampled_from([0, 1, 2, ANY]),
              st.sampled_from([0, 1, ANY])),
    ack, ack, ack, ack, fill, fill, fill, fill, fill, fill,
    st.tuples(st.just("reject"), recent, st.integers(0, 3000)),
    st.tuples(st.just("canceled"), recent),
    st.tuples(st.just("unknown"), recent), st.tuples(st.just("unknown"), recent),
    st.tuples(st.just("cancel_reject"), recent),
    st.tuples(st.just("replaced"), recent),
    st.tuples(st.just("replace_reject"), recent),
    st.tuples(st.just("expired"), recent),
    st.tuples(st.just("sent"), recent),
    st.tuples(st.just("price"), st.integers(0, 1), st.integers(-40, 40), st.booleans()),
    st.tuples(st.just("price"), st.integers(0, 1), st.integers(-40, 40), st.booleans()),
    st.tuples(st.just("limit"), st.integers(0, 1), st.sampled_from(list(Limit)),
              st.sampled_from([0, 1, 2, 3, 5, 10, 100, 1000, 60_000, 10**9, 10**15])),
    st.tuples(st.just("kill"), st.integers(0, 2), st.integers(0, 2), st.integers(0, 2)),
    st.tuples(st.just("mtm")),
    st.tuples(st.just("sod")),
    st.tuples(st.just("timer"), st.integers(0, 2000)),
    st.tuples(st.just("advance"), st.integers(0, 3_000_000_000)),
)


class Pair:
    """Drives both models and compares every answer."""

    def __init__(self, max_orders: int, trade_window: int) -> None:
        # client order ids of a day: enough that eviction is exercised, few enough that a
        # long session runs out of them (then "sod" gives them back)
        day = 16 * max_orders
        self.core = OmsCore(max_orders=max_orders, max_accounts=4, max_instruments=4,
                            max_assets=4, max_strategies=4, max_exchanges=4,
                            trade_window=trade_window, max_day_orders=day)
        self.ref = ReferenceModel(max_orders=max_orders, max_accounts=4, max_instruments=4,
                                  max_assets=4, max_strategies=4, max_exchanges=4,
                                  trade_window=trade_window, max_day_orders=day)
        configure(self.core, max_orders)
        configure(self.ref, max_orders)
        self.shift = self.core.orders.slot_bits
        self.ids: list[tuple[int, int]] = []  # (reference id, compiled id) in creation order
        self.ts = 10
        self.fired_waits = 0  # "protected" ops whose stop waited for its partner's cancel
        self.compare_events()

    # ids -------------------------------------------------------------------------------
    def to_ref(self, core_id: int) -> int:
        return core_id >> self.shift if core_id else 0

    def record(self, ref_ids, core_ids) -> None:
        for r, c in zip(ref_ids, core_ids, strict=True):
            assert r == self.to_ref(c), (r, c)
            if r:
                self.ids.append((r, c))

    def pick(self, k: int) -> tuple[int, int]:
        if not self.ids:
            return 987654321, 987654321 << self.shift
        return self.ids[-1 - k % len(self.ids)]  # recent orders are the interesting ones

    # comparison --------------------------------------------------------------------------
    def compare_events(self) -> None:
        ref_events = [tuple(int(x) for x in e) for e in self.ref.drain_events()]
        raw_core_events = self.core.drain_events()
        self._last_core_ids = [e[5] for e in raw_core_events if e[0] == 4]
        core_events = [
            e[:5] + (self.to_ref(e[5]) if e[0] != 7 or e[1] != 3 else e[5],) + e[6:]
            for e in raw_core_events
        ]
        ref_events = [
            e if e[0] != 7 or e[1] != 3 else e[:5] + (self.core_id_for(e[5]),) + e[6:]
            for e in ref_events
        ]
        assert core_events == ref_events
        # orders the core places by itself (a refused protective child's retry or flatten)
        known = {c for _, c in self.ids}
        for e in core_events:
            if e[0] == 4 and e[5]:
                cid = next(c for c in self._last_core_ids if self.to_ref(c) == e[5])
                if cid not in known:
                    self.ids.append((e[5], cid))
                    known.add(cid)

    def core_id_for(self, ref_id: int) -> int:
        # an alert for an unknown order carries the id as given: compare the compiled one
        for r, c in self.ids:
            if r == ref_id:
                return c
        return ref_id << self.shift if ref_id == 987654321 else ref_id

    def compare_state(self) -> None:
        id_fields = ("order_id", "linked_id", "parent_id", "child1_id", "child2_id")
        for r, c in self.ids:
            ro, co = self.ref.order(r), self.core.order(c)
            assert (ro is None) == (co is None), (r, ro, co)
            if co is None:
                continue
            for f in id_fields:
                co[f] = self.to_ref(co[f])
            assert {k: int(v) for k, v in ro.items()} == co, r
        for a in range(N_ACCOUNTS):
            assert self.ref.account_state(a) == self.core.account_state(a)
            for asset in range(3):
                assert self.ref.balance(a, asset) == self.core.balance(a, asset)
                assert self.ref.asset_position(a, asset) == self.core.asset_position(a, asset)
            for i in range(N_INSTRUMENTS):
                assert self.ref.position(a, i) == self.core.position(a, i)
                for s in range(N_STRATEGIES):
                    assert self.ref.strategy_position(a, s, i) == self.core.strategy_position(
                        a, s, i)
        assert self.ref.open_order_count() == self.core.open_order_count()
        assert self.ref.unknown_orders == self.core.unknown_orders
        # invariant: strategy positions add up to the account position
        for a in range(N_ACCOUNTS):
            for i in range(N_INSTRUMENTS):
                per_strategy = [self.core.strategy_position(a, s, i) for s in range(N_STRATEGIES)]
                pos = self.core.position(a, i)
                for f in ("qty", "open_buy", "open_sell", "fees"):
                    assert sum(p[f] for p in per_strategy) == pos[f], (a, i, f)
        for a in range(N_ACCOUNTS):
            assert self.ref.live_orders(a) == [self.to_ref(i) for i in self.core.live_orders(a)]

    def both(self, name: str, ref_args: tuple, core_args: tuple):
        """Call both; a ValueError (bad configuration input) must come from both alike."""
        try:
            r = getattr(self.ref, name)(*ref_args)
        except ValueError:
            with pytest.raises(ValueError):
                getattr(self.core, name)(*core_args)
            return None, None
        c = getattr(self.core, name)(*core_args)
        return r, c

    # operations -------------------------------------------------------------------------
    def apply(self, op: tuple) -> None:
        kind = op[0]
        self.ts += 1
        ts = self.ts
        if kind == "submit":
            (_, a, s, i, clid, side, otype, tif, poff, toff, qty, flags, expire, trail) = op
            base = BASE_PRICE if i == 0 else 300_000
            price = base + poff * 5 if otype in (OrderType.LIMIT, OrderType.STOP_LIMIT) else 0
            trigger = base + toff * 5 if otype in (3, 4, 5) else 0
            if otype != OrderType.TRAILING_STOP and trail in (50, 100):
                trail = 0  # valid-ish orders carry a trail offset only when they trail
            if tif in (TimeInForce.GTD, TimeInForce.DAY) and expire in (0, 50, 500):
                expire = expire or 500
            expire_ts = ts + expire if expire and tif in (4, 5) else 0
            args = (a, s, i, clid, side, otype, tif, price, trigger, qty, flags, expire_ts, ts,
                    trail)
            (rc, rid), (cc, cid) = self.both("submit", args, args)
            assert rc == cc, op
            self.record([rid], [cid])
        elif kind == "oco":
            (_, a, s, i, c1, c2, side, t1, p1, q1, t2, p2, q2, qty) = op
            base = BASE_PRICE if i == 0 else 300_000
            legs = []
            for otype, poff, toff in ((t1, p1, q1), (t2, p2, q2)):
                price = base + poff * 5 if otype in (2, 4) else 0
                trigger = base + toff * 5 if otype in (3, 4, 5) else 0
                legs.extend([otype, price, trigger])
            args = (a, s, i, c1, c2, side, *legs, qty, TimeInForce.GTC, ts)
            r, c = self.both("submit_oco", args, args)
            assert r[0] == c[0], op
            self.record(r[1:], c[1:])
        elif kind == "bracket":
            (_, a, s, i, c1, c2, c3, side, etype, poff, qty, tp_off, sl_off, anchor, tif) = op
            base = BASE_PRICE if i == 0 else 300_000
            entry = base + poff * 5 if etype == OrderType.LIMIT else 0
            sign = 1 if side == Side.BUY else -1
            tp = base + sign * tp_off * 50 if tp_off else 0
            sl = base - sign * sl_off * 50 if sl_off else 0
            # anchor: 0 = the limit price / arrival mid; else the planner's price (a tick
            # multiple, or off the grid when negative: refused alike)
            anchor = 0 if anchor == 0 else base + (anchor if anchor < 0 else 0)
            expire = ts + 700 if tif == TimeInForce.GTD else 0  # DAY: the core's end of day
            args = (a, s, i, c1, c2, c3, side, etype, entry, qty, tp, sl, tif, ts, anchor,
                    expire)
            r, c = self.both("submit_bracket", args, args)
            assert r[0] == c[0], op
            self.record(r[1:], c[1:])
        elif kind == "protected":
            self.protected(*op[1:])
            return
        elif kind == "cancel":
            rid, cid = self.pick(op[2])
            r, c = self.both("cancel", (op[1], rid, ts), (op[1], cid, ts))
            assert r == c, op
        elif kind == "cancel_cl":
            args = (op[1], op[2], ts)
            r, c = self.both("cancel_by_client_id", args, args)
            assert r == c, op
        elif kind == "replace":
            (_, a, k, poff, qty) = op
            rid, cid = self.pick(k)
            o = self.ref.order(rid)
            base = o["price"] if o and o["price"] else BASE_PRICE
            r, c = self.both("replace", (a, rid, base + poff * 5, qty, ts),
                             (a, cid, base + poff * 5, qty, ts))
            assert r == c, op
        elif kind == "mass_cancel":
            args = (op[1], op[2], op[3], ts)
            r, c = self.both("mass_cancel", args, args)
            assert r == c, op
        elif kind == "fill":
            (_, k, trade, qty_div, poff, fee, fee_asset) = op
            rid, cid = self.pick(k)
            o = self.ref.order(rid)
            inst = o["instrument"] if o else 0
            lot = 100 if inst == 0 else 10
            remaining = (o["qty"] - o["filled"]) if o else lot
            qty = max(lot, remaining // qty_div // lot * lot) if qty_div != 10 else remaining + lot
            base = BASE_PRICE if inst == 0 else 300_000
            args_r = (rid, trade, qty, base + poff * 5, fee, fee_asset, 1, ts)
            args_c = (cid, trade, qty, base + poff * 5, fee, fee_asset, 1, ts)
            r, c = self.both("on_fill", args_r, args_c)
            assert r == c, op
        elif kind in ("ack", "canceled", "cancel_reject", "replaced", "replace_reject",
                      "expired", "sent", "unknown"):
            name = {"ack": "on_ack", "canceled": "on_canceled", "unknown": "on_unknown",
                    "cancel_reject": "on_cancel_reject", "replaced": "on_replaced",
                    "replace_reject": "on_replace_reject", "expired": "on_expired",
                    "sent": "on_sent"}[kind]
            rid, cid = self.pick(op[1])
            r, c = self.both(name, (rid, ts), (cid, ts))
            assert r == c, op
        elif kind == "reject":
            rid, cid = self.pick(op[1])
            r, c = self.both("on_reject", (rid, op[2], ts), (cid, op[2], ts))
            assert r == c, op
        elif kind == "price":
            (_, i, off, stale) = op
            base = BASE_PRICE if i == 0 else 300_000
            last = base + off * 25
            args = (i, 0 if off % 7 == 0 else last, last - 5, last + 5, ts,
                    stale and off % 3 == 0)  # off % 7 == 0: a book-only update (no trade)
            r, c = self.both("set_price", args, args)
            assert r == c, op
        elif kind == "limit":
            args = (op[1], int(op[2]), op[3])
            r, c = self.both("set_limit", args, args)
            assert r == c, op
        elif kind == "kill":
            args = (op[1], op[2], op[3])
            r, c = self.both("set_kill", args, args)
            assert r == c, op
        elif kind == "mtm":
            self.both("mark_to_market", (ts,), (ts,))
        elif kind == "sod":
            self.both("start_of_day", (ts,), (ts,))
        elif kind == "timer":
            self.ts += op[1]
            r, c = self.both("on_timer", (self.ts,), (self.ts,))
            assert r == c, op
        elif kind == "advance":
            self.ts += op[1]
        self.compare_events()


    def protected(self, a, s, c1, c2, side, qty, acked, answer, trade) -> None:
        """A limit leg (acknowledged or on its way) and an engine-held stop 10 ticks away on
        BTCUSDT; the price reaches the stop; the venue answers the partner's cancel."""
        sign = 1 if side == Side.SELL else -1  # a sell pair: profit above, stop below
        self.apply(("oco", a, s, 0, c1, c2, side, OrderType.LIMIT, 10 * sign, 0,
                    OrderType.STOP_MARKET, 0, -10 * sign, qty))
        if acked:
            self.apply(("ack", 1))
        self.apply(("price", 0, -2 * sign, False))  # last = the stop's trigger
        rid, _ = self.pick(0)
        o = self.ref.order(rid)
        if o is not None and o["hold"] == Hold.FIRED:
            self.fired_waits += 1
        trade += 1000
        if answer == "canceled":
            self.apply(("canceled", 1))
        elif answer == "filled":
            self.apply(("fill", 1, trade, 1, 10 * sign, 0, 0))
            self.apply(("canceled", 1))  # the cancel answer that crossed the fill
        elif answer == "partly":
            self.apply(("fill", 1, trade, 3, 10 * sign, 0, 0))
            self.apply(("canceled", 1))
        elif answer == "refused_cancel":
            self.apply(("cancel_reject", 1))
            self.apply(("fill", 1, trade, 1, 10 * sign, 0, 0))
        elif answer == "rejected":
            self.apply(("reject", 1, 2010))
        elif answer == "halted":  # the account is halted while the stop waits
            self.apply(("kill", 1, a, 2))
            self.apply(("canceled", 1))
            self.apply(("kill", 1, a, 0))
        if answer != "none":  # the stop, if it went out, fills
            self.apply(("ack", 0))
            self.apply(("fill", 0, trade + 1, 1, -10 * sign, 0, 0))


def run_sequence(sequence, max_orders: int, trade_window: int) -> None:
    pair = Pair(max_orders, trade_window)
    for n, op in enumerate(sequence):
        pair.apply(op)
        if n % 10 == 9:
            pair.compare_state()
    pair.compare_state()


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(ops, min_size=5, max_size=80))
def test_same_answers_and_state(sequence):
    run_sequence(sequence, max_orders=256, trade_window=64)


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(ops, min_size=20, max_size=120))
def test_same_answers_with_eviction_and_short_dedupe_window(sequence):
    # a tiny table forgets closed orders and a tiny window forgets trade ids: both must agree
    run_sequence(sequence, max_orders=8, trade_window=4)


@pytest.mark.slow
@settings(max_examples=3000, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(ops, min_size=20, max_size=200))
def test_same_answers_long_sequences(sequence):
    run_sequence(sequence, max_orders=64, trade_window=32)


def random_walk(seed: int, steps: int, max_orders: int, trade_window: int,
                restore_every: int = 0) -> Pair:
    """A long, venue-like session: most events target live orders, as a gateway would send."""
    import random

    rng = random.Random(seed)
    pair = Pair(max_orders, trade_window)
    trade = 0
    for n in range(steps):
        # orders not yet closed: the accounts' live lists (cheaper than a view of every order)
        open_ids = {r for a in range(N_ACCOUNTS) for r in pair.ref.live_orders(a)}
        live = [k for k, (r, _) in enumerate(reversed(pair.ids)) if r in open_ids]
        roll = rng.random()
        if not live and 0.29 <= roll < 0.80 and rng.random() < 0.85:
            roll = rng.random() * 0.29  # nothing to act on: a venue would be quiet, trade
        k = rng.choice(live) if live and rng.random() < 0.9 else rng.randrange(8)
        if roll < 0.22:
            op = (
                "submit", rng.randrange(2), rng.randrange(3), rng.randrange(2),
                rng.randrange(60), rng.choice([1, 2]), rng.choice([1, 2, 2, 2, 3, 4, 5, 6]),
                rng.choice([1, 1, 1, 2, 3, 4]), rng.randint(-12, 12), rng.randint(-12, 12),
                rng.choice([100, 200, 500, 1000, 2500]), rng.choice([0, 0, 0, 0, 1, 2]),
                rng.choice([0, 0, 50, 500]), rng.choice([0, 50, 100]))
        elif roll < 0.25:
            op = ("oco", rng.randrange(2), rng.randrange(3), rng.randrange(2),
                  rng.randrange(60), rng.randrange(60), rng.choice([1, 2]),
                  rng.choice([2, 3, 4, 5]), rng.randint(-12, 12), rng.randint(-12, 12),
                  rng.choice([2, 3, 4, 5]), rng.randint(-12, 12), rng.randint(-12, 12),
                  rng.choice([100, 500, 1000]))
        elif roll < 0.27 and rng.random() < 0.5:
            op = ("protected", rng.randrange(2), rng.randrange(3), rng.randrange(60),
                  rng.randrange(60), rng.choice([1, 2]), rng.choice([100, 500, 1000]),
                  rng.random() < 0.7, rng.choice(PARTNER_ANSWERS), rng.randrange(25))
        elif roll < 0.29:
            op = ("bracket", rng.randrange(2), rng.randrange(3), rng.randrange(2),
                  rng.randrange(60), rng.randrange(60), rng.randrange(60), rng.choice([1, 2]),
                  rng.choice([1, 2]), rng.randint(-12, 12), rng.choice([100, 500, 1000]),
                  rng.randrange(13), rng.randrange(13), rng.choice([0, 0, 1]),
                  rng.choice([1, 1, 4, 5]))
        elif roll < 0.45:
            op = ("ack", k) if rng.random() < 0.9 else ("unknown", k)
        elif roll < 0.62:
            trade = max(0, trade + rng.choice([1, 1, 1, 0, -1]))  # some ids repeat: duplicates
            if live and rng.random() < 0.97:
                k = rng.choice(live)  # fills on closed orders are rare, and overfill
            op = ("fill", k, trade, 10 if rng.random() < 0.03 else rng.choice([1, 2, 3, 3]),
                  rng.randint(-12, 12),
                  rng.randint(-5, 50), rng.choice([0, 0, 0, 1, 2]))
        elif roll < 0.66:
            op = ("cancel", rng.randrange(2), k)
        elif roll < 0.70:
            op = ("canceled", k)
        elif roll < 0.72:
            op = ("cancel_reject", k)
        elif roll < 0.75:
            op = ("replace", rng.randrange(2), k, rng.randint(-12, 12),
                  rng.choice([100, 300, 1000, 5000]))
        elif roll < 0.78:
            op = (rng.choice(["replaced", "replaced", "replace_reject"]), k)
        elif roll < 0.80:
            op = ("reject", k, rng.randrange(3000))
        elif roll < 0.86:
            op = ("price", rng.randrange(2), rng.randint(-40, 40), rng.random() < 0.1)
        elif roll < 0.88:
            op = ("mass_cancel", rng.randrange(2), rng.choice([0, 1, 2, ANY]),
                  rng.choice([0, 1, ANY]))
        elif roll < 0.90:
            op = ("limit", rng.randrange(2), rng.choice(list(Limit)),
                  rng.choice([0, 1, 2, 5, 100, 1000, 60_000, 10**9]))
            if op[2] in (Limit.PROTECT_ANCHOR, Limit.PROTECT_ON_REJECT,
                         Limit.CLAMP_SINGLE_ENTRY_SELL):
                op = op[:3] + (rng.randrange(2),)
        elif roll < 0.91:
            op = ("kill", rng.randrange(3), rng.randrange(3), rng.choice([0, 0, 0, 1, 2]))
        elif roll < 0.92:
            op = ("kill", 1, rng.randrange(2), 0)  # operators resume halted accounts
        elif roll < 0.94:
            op = ("mtm",)
        elif roll < 0.95:
            op = ("sod",)
        elif roll < 0.97:
            op = ("timer", rng.randrange(2000))
        elif roll < 0.98:
            op = ("expired", k)
        else:
            op = ("advance", rng.randrange(3_000_000_000))
        pair.apply(op)
        if n % 25 == 24:
            pair.compare_state()
        if restore_every and n % restore_every == restore_every - 1:
            # a restart: the compiled core continues from its own snapshot
            fresh = OmsCore(max_orders=max_orders, max_accounts=4, max_instruments=4,
                            max_assets=4, max_strategies=4, max_exchanges=4,
                            trade_window=trade_window, max_day_orders=16 * max_orders)
            fresh.restore(pair.core.snapshot())
            assert fresh.snapshot() == pair.core.snapshot()
            pair.core = fresh
            pair.compare_state()
    pair.compare_state()
    return pair


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.integers(0, 2**32 - 1))
def test_same_answers_over_long_venue_like_sessions(seed):
    random_walk(seed, steps=400, max_orders=128, trade_window=256)


@pytest.mark.slow
@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.integers(0, 2**32 - 1))
def test_same_answers_over_long_sessions_small_table(seed):
    random_walk(seed, steps=1500, max_orders=32, trade_window=16)


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.integers(0, 2**32 - 1))
def test_snapshot_restore_continues_identically(seed):
    random_walk(seed, steps=300, max_orders=32, trade_window=16, restore_every=37)


def test_the_generators_reach_a_fired_stop_waiting_for_its_partner():
    # the random sequences must exercise the wait (a generator that never reaches it proves
    # nothing about it)
    waits = sum(random_walk(seed, steps=300, max_orders=128, trade_window=256).fired_waits
                for seed in range(4))
    assert waits > 0
    pair = Pair(max_orders=64, trade_window=32)
    for n, answer in enumerate(PARTNER_ANSWERS):
        for acked in (True, False):
            clid = 2 * (2 * n + acked) + 1
            pair.apply(("protected", 0, 1, clid, clid + 1, Side.SELL, 500, acked, answer, n))
            pair.compare_state()
    assert pair.fired_waits == 2 * len(PARTNER_ANSWERS)


def test_mid_reserve_price_is_truncated_alike():
    # the random sequences keep bid + ask even; here it is odd, so a market order's reserve
    # price (the mid) falls between two price units and both models must truncate it alike
    pair = Pair(max_orders=16, trade_window=4)
    for m in (pair.core, pair.ref):
        assert m.set_limit(0, Limit.COLLAR_USE_MID, 1) == 0
        assert m.set_price(0, BASE_PRICE, BASE_PRICE - 5, BASE_PRICE + 10, 2) == 0
    pair.apply(("submit", 0, 1, 0, 7, Side.BUY, OrderType.MARKET, TimeInForce.GTC, 0, 0, 1000,
                0, 0, 0))
    pair.compare_state()
    rid, _ = pair.ids[-1]
    assert pair.ref.order(rid)["reserve_price"] == BASE_PRICE + 2


def test_reference_amounts_are_exact_or_loud():
    # the reference's Decimal edge: raw counts <-> amounts, never a silent rounding
    from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal, Inexact

    from oms_core.reference.model import EXACT, UnitError, quotient, to_amount, to_raw

    assert to_amount(123_456, 5) == Decimal("1.23456")
    assert to_raw(Decimal("1.23456"), 8) == 123_456_000
    with pytest.raises(UnitError):
        to_raw(Decimal("0.000000001"), 8)  # a ninth decimal is not a whole unit of 1e-8
    with pytest.raises(Inexact):
        EXACT.multiply(Decimal(10**40 + 1), Decimal(10**30 + 1))  # 71 digits: refused
    # 2/3 in units of 1e-2: truncated, or rounded only when the call site says so
    assert quotient(Decimal(2), Decimal(3), 2, ROUND_DOWN) == Decimal("0.66")
    assert quotient(Decimal(2), Decimal(3), 2, ROUND_HALF_UP) == Decimal("0.67")


def test_snapshot_refuses_other_capacities_and_damage():
    core = OmsCore(max_orders=64)
    configure(core, 64)
    data = core.snapshot()
    with pytest.raises(ValueError, match="capacities"):
        OmsCore(max_orders=128).restore(data)
    with pytest.raises(ValueError, match="magic"):
        OmsCore(max_orders=64).restore(b"garbage" + data)
    with pytest.raises(ValueError, match="truncated"):
        OmsCore(max_orders=64).restore(data[:-10])
    core.submit(0, 1, 0, 1, 1, 2, 1, BASE_PRICE, 0, 100, 0, 0, 5)
    with pytest.raises(RuntimeError, match="drain"):
        core.snapshot()


@pytest.mark.parametrize("policy", [0, 1])
@pytest.mark.parametrize("anchor_mode", [0, 1])
@pytest.mark.parametrize("instrument", [0, 1])
def test_refused_protective_children_alike(policy, anchor_mode, instrument):
    # a market bracket fills away from the arrival mid; the venue refuses its children one
    # after the other (the retries too): both models re-anchor, alert, retry and flatten alike
    from oms_core.reference.model import FLATTEN_CL, RETRY_CL

    pair = Pair(max_orders=32, trade_window=16)
    seen: list[tuple] = []
    drain = pair.ref.drain_events

    def spy():
        events = drain()
        seen.extend(events)
        return events

    pair.ref.drain_events = spy
    for m in (pair.core, pair.ref):
        assert m.set_limit(0, Limit.PROTECT_ON_REJECT, policy) == 0
        assert m.set_limit(0, Limit.PROTECT_ANCHOR, anchor_mode) == 0
    pair.apply(("bracket", 0, 1, instrument, 1, 2, 3, Side.BUY, OrderType.MARKET, 0, 1000, 4,
                3, 0, TimeInForce.GTC))
    pair.apply(("fill", 2, 1, 1, -7, 3, 0))  # k=2: the entry, filled below the arrival mid
    pair.compare_state()
    for _ in range(3):  # refuse the newest order, then its partner, and what replaces them
        pair.apply(("reject", 0, 2010))
        pair.compare_state()
        pair.apply(("reject", 1, 2010))
        pair.compare_state()
    refused = [e for e in seen if e[0] == 7 and e[1] == 8]
    assert refused, "no PROTECTION_REFUSED alert"
    cl_ids = {o.cl_ord_id for o in pair.ref.orders.values()}
    assert any(c & FLATTEN_CL == FLATTEN_CL for c in cl_ids)
    assert any(c & FLATTEN_CL == RETRY_CL for c in cl_ids) == (policy == 0)
