"""Balance reconciliation rules (oms_core.recovery.reconcile_balances and the engine's
per-account merge of several venues' answers), on a real core and a real journal.

* an account without CHECK_BALANCE keeps fills in positions and only fees in balances: the
  venue's wallet is never compared with it, never written into it (no alert);
* a spot account (CHECK_BALANCE): the assets it trades are compared, total incl. locked;
  a real difference alerts and changes nothing;
* its other assets (a fee asset, idle money) adopt the venue's total through a journaled
  input, so a replay of the journal rebuilds the same balance.
"""

from __future__ import annotations

import functools
from pathlib import Path

from bindings.wire import records as wire
from bindings.wire.spec import MsgType
from oms_core import recovery as R
from oms_core.core import OmsCore
from oms_core.engine.offline import apply_live, offline_engine
from oms_core.engine.reconcile import _balance_views
from oms_core.enums import Alert, Limit, OrderType, Side, TimeInForce
from oms_core.journal import Journal, JournalReader
from oms_core.recovery import ApplyFn

USDT, BTC, BNB = 0, 1, 2
E8 = 10**8


def _core(check_balance: bool) -> OmsCore:
    c = OmsCore(max_orders=1024, max_accounts=4, max_instruments=4, max_assets=4,
                max_strategies=4, max_exchanges=2)
    c.add_asset(USDT, "USDT", 8)
    c.add_asset(BTC, "BTC", 8)
    c.add_asset(BNB, "BNB", 8)
    c.add_instrument(0, "BTCUSDT", 0, BTC, USDT, 2, 5, 1, 1, 1, 10**9, 0)
    c.add_account(0)
    c.set_limit(0, Limit.CHECK_BALANCE, int(check_balance))
    c.deposit(0, USDT, 1_000 * E8)
    c.deposit(0, BTC, 1 * E8)
    c.add_strategy(1)
    c.set_price(0, 5_000_000, 4_999_900, 5_000_100, 1)
    c.drain_events()
    return c


def _resting_buy(core: OmsCore, j: Journal | None) -> tuple[int, ApplyFn]:
    """A resting buy of 0.01 BTC at 50,000 (locks 500 USDT on a spot account), through the
    engine loop (journaled when ``j`` is given); the loop's live apply path for what follows."""
    apply = functools.partial(apply_live, offline_engine(core, journal=j))
    rec = wire.encode("NEW_ORDER", client_order_id=1, price=5_000_000, quantity=1000,
                      account=0, strategy=1, instrument=0, side=Side.BUY,
                      order_type=OrderType.LIMIT, tif=TimeInForce.GTC)
    (ack,) = [a for a in map(wire.decode, apply(MsgType.NEW_ORDER, 10, rec))
              if a.msg_type in (MsgType.ACK, MsgType.REJECT)]
    assert ack.msg_type == MsgType.ACK
    oid = ack.order_id
    apply(MsgType.GW_EXEC_REPORT, 11,
          wire.encode("GW_EXEC_REPORT", order_id=oid, exec_type=1, account=0))
    return oid, apply


def _view(oid: int, balances: dict[int, int]) -> R.GatewayView:
    return R.GatewayView(0, {0}, [R.VenueOrder(oid, 9, 0, 1000)], [], balances,
                         traded_assets={USDT, BTC})


def _alerts(jdir: Path) -> list[object]:
    out = []
    for r in JournalReader(str(jdir)):
        if r.kind == R.KIND_RECON_ALERT:
            out.append(wire.decode(bytes(r.payload)))
    return out


def test_account_without_balance_check_never_alerts_nor_changes(tmp_path: Path) -> None:
    core = _core(check_balance=False)
    j = Journal(str(tmp_path), durability="os")
    oid, apply = _resting_buy(core, j)
    before = {a: core.balance(0, a) for a in (USDT, BTC, BNB)}
    # the venue's wallet differs in every asset (the engine keeps trades in positions)
    rep = R.reconcile(core, _view(oid, {USDT: 7 * E8, BTC: 3 * E8, BNB: 5 * E8}), 20,
                      apply, live_order_ids=[oid])
    j.close()
    assert rep.balance_diffs == [] and rep.adopted == [] and rep.alerts == []
    assert sorted(a for _, a, _ in rep.untracked) == [USDT, BTC, BNB]
    assert {a: core.balance(0, a) for a in (USDT, BTC, BNB)} == before
    assert _alerts(tmp_path) == []


def test_spot_account_equal_balances_incl_locked_do_not_alert(tmp_path: Path) -> None:
    core = _core(check_balance=True)
    j = Journal(str(tmp_path), durability="os")
    oid, apply = _resting_buy(core, j)
    total, locked = core.balance(0, USDT)
    assert locked == 500 * E8 and total == 1_000 * E8  # total counts the locked part
    # the venue: free 500 + locked 500 USDT, 1 BTC
    rep = R.reconcile(core, _view(oid, {USDT: 1_000 * E8, BTC: E8}), 20, apply,
                      live_order_ids=[oid])
    j.close()
    assert rep.balance_diffs == [] and rep.alerts == [] and rep.adopted == []
    assert _alerts(tmp_path) == []


def test_spot_account_real_difference_alerts_other_asset_adopted(tmp_path: Path) -> None:
    core = _core(check_balance=True)
    j = Journal(str(tmp_path), durability="os")
    oid, apply = _resting_buy(core, j)
    # someone withdrew 100 USDT at the venue; BNB (fee asset, not traded here) is held there
    rep = R.reconcile(core, _view(oid, {USDT: 900 * E8, BTC: E8, BNB: 2 * E8}), 20, apply,
                      live_order_ids=[oid])
    j.close()
    assert rep.balance_diffs == [(0, USDT, 1_000 * E8, 900 * E8)]
    assert core.balance(0, USDT)[0] == 1_000 * E8  # a difference alerts, changes nothing
    assert rep.adopted == [(0, BNB, 0, 2 * E8)]
    assert core.balance(0, BNB) == (2 * E8, 0)
    alerts = _alerts(tmp_path)
    assert [(a.alert, a.a, a.instrument, a.b) for a in alerts] == [
        (Alert.RECONCILIATION_DIFFERENCE, R.RECON_BALANCE, USDT, -100 * E8)]
    # the adoption is a journaled input: replay rebuilds it
    again = _core(check_balance=True)
    R.recover(str(tmp_path), again)
    assert again.balance(0, BNB) == (2 * E8, 0)
    assert again.balance(0, USDT) == core.balance(0, USDT)
    # reconciling again: BNB is equal now, nothing more is adopted
    rep2 = R.reconcile(again, _view(oid, {USDT: 1_000 * E8, BTC: E8, BNB: 2 * E8}), 30,
                       functools.partial(apply_live, offline_engine(again)),
                       live_order_ids=[oid])
    assert rep2.adopted == [] and rep2.balance_diffs == []


def _answers(*bals: dict[int, int]) -> dict[int, dict[str, object]]:
    return {ex: {"balances": b} for ex, b in enumerate(bals, start=1)}


def test_balances_of_an_account_at_two_venues_are_summed() -> None:
    insts = {1: {10: (BTC, USDT)}, 2: {20: (BTC, USDT)}, 3: {30: (BNB, USDT)}}
    # account 0 trades at exchanges 1 and 2; the engine's balance is their sum
    v = _balance_views(_answers({USDT: 3, BTC: 1}, {USDT: 4, BTC: 2, BNB: 9}), {1: 0, 2: 0},
                       insts, [])
    assert v[1] == ({}, set(), False)
    assert v[2] == ({USDT: 7, BTC: 3, BNB: 9}, {BTC, USDT}, True)
    # exchange 2 did not report BTC: BTC is not compared (a partial sum is no difference)
    v = _balance_views(_answers({USDT: 3, BTC: 1}, {USDT: 4}), {1: 0, 2: 0}, insts, [])
    assert v[2] == ({USDT: 7}, {USDT}, True)
    # exchange 3 did not answer: its assets are left out and nothing is adopted
    v = _balance_views(_answers({USDT: 3, BTC: 1, BNB: 1}), {1: 0}, insts, [3])
    assert v[1] == ({BTC: 1}, {BTC}, False)
    # two accounts, one venue each: separate views
    v = _balance_views(_answers({USDT: 3}, {USDT: 4}), {1: 0, 2: 1}, insts, [])
    assert v[1][0] == {USDT: 3} and v[2][0] == {USDT: 4}
