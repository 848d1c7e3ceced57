"""Live bars are built from every trade the engine hears (issue 10 item 14).

The real engine process on the desk TOML, the test as the venue's gateway over ZeroMQ:
strategy ``trend`` has one-second bars and the engine marks to market only once a minute, so
no mark-to-market sample falls between the trades. Each GW_MARKET_DATA flagged TRADE updates
the bar its engine receive time falls in. What the signal then does is checked against bars
rebuilt, independently, by the plain-Python twin (``oms_core/bars_ref.py``) from the market
data the journal holds: alice's limit at the open of the current bar (its first trade) and bob's
volatility-targeted size (over the closes of completed bars, each the last trade of its bar).
After a kill -9 between trades and a restart on the journal, the engine's bars are the same.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from desk_engine import DeskEngine, Venue, is_new_order, write_desk
from test_client_engine import _quote_until_heard

from bindings.client import OmsClient
from bindings.wire import records as wire
from bindings.wire.spec import MdFlag, MsgType, SignalMode
from oms_core.bars_ref import BarsRef
from oms_core.config import load_config
from oms_core.journal import INPUT, JournalReader
from oms_core.signals import (
    MarketState,
    Signal,
    instrument_spec,
    plan_signal,
    volatility_ppb,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

BTC = 0  # BTCUSDT is instrument 0 of a new journal
SECOND = 10**9
VOL_WINDOW = 3  # bob's: 4 completed bars are enough


def _desk(d: Path) -> Path:
    path = write_desk(d, ("alice", "bob"))
    text = path.read_text()
    for old, new in (
            ('journal_durability = "sync"\n',
             'journal_durability = "sync"\nmark_interval_ms = 600000\n'),
            ('[strategies.trend]\ninstruments = ["BTCUSDT", "ETHUSDT"]\n',
             '[strategies.trend]\ninstruments = ["BTCUSDT", "ETHUSDT"]\nbar_interval_s = 1\n'),
            ('fixed_qty = { BTCUSDT = "0.01", ETHUSDT = "0.1" }\n',
             'fixed_qty = { BTCUSDT = "0.01", ETHUSDT = "0.1" }\nentry = "limit"\n'
             'entry_price = "open"\n'),
            ("vol_window = 500\n", f"vol_window = {VOL_WINDOW}\n")):
        assert old in text, old
        text = text.replace(old, new, 1)
    path.write_text(text)
    return path


def _trade(venue: Venue, price: int) -> None:
    venue.seq += 1
    venue.md.send(wire.encode("GW_MARKET_DATA", 0, venue.seq, time.time_ns(),
                              bid=price - 100, bid_qty=10**6, ask=price + 100, ask_qty=10**6,
                              last=price, last_qty=1000, md_flags=int(MdFlag.TRADE),
                              instrument=BTC))


def _trades(venue: Venue, first: int, n: int) -> None:
    """``n`` trades 0.3 s apart around 50000.00, each at a different price."""
    for i in range(first, first + n):
        _trade(venue, 5_000_000 + ((i * 7919) % 41 - 20) * 500)
        time.sleep(0.3)


def _signal(cfg: Path) -> dict[str, Any]:
    with OmsClient(config=cfg, strategy="trend", timeout=5) as c:
        res = c.signal("BTCUSDT", 1)
    return {a.client: a for a in res}


def _from_journal(cfg: Path) -> tuple[Any, int]:
    """The bars of the journaled trades as the last SIGNAL saw them, and that signal's ts."""
    bars, seen, sig_ts = BarsRef(SECOND), 0, 0
    for r in JournalReader(str(cfg.parent / "journal" / "shard-0")):
        if r.rtype != INPUT:
            continue
        if r.kind == MsgType.GW_MARKET_DATA:
            md = wire.decode(r.payload)
            if md.md_flags & MdFlag.TRADE:
                bars.trade(md.instrument, r.ts, md.last)
                seen += 1
        elif r.kind == MsgType.SIGNAL:
            sig_ts = r.ts
            view = bars.view(BTC, r.ts, 0)
    assert sig_ts and seen >= 12, (sig_ts, seen)
    return view, sig_ts


def _expected(cfg: Path, view: Any, sig_ts: int) -> dict[str, Any]:
    oms = load_config(cfg)
    inst = instrument_spec(oms, BTC)
    out = {}
    for name in ("alice", "bob"):
        client = oms.clients[name]
        vol = volatility_ppb(view.closes, client.orders.vol_window)
        plan = plan_signal(Signal(0, BTC, SignalMode.DIRECTION, 1, sig_ts), client.orders,
                           inst, MarketState(view.open, view.prev_close, vol), 0,
                           client.cash["USDT"], oms.strategies["trend"].single_entry)
        assert plan.intents, (name, plan)
        out[name] = plan.intents[0]
    return out


def _orders(venue: Venue) -> dict[int, Any]:
    out = {}
    for _ in range(2):
        rec = venue.recv(is_new_order, 5)
        out[rec.account] = rec
    return out


def _check(cfg: Path, venue: Venue, answers: dict[str, Any]) -> None:
    assert answers["alice"].accepted and answers["bob"].accepted, answers
    orders = _orders(venue)
    view, sig_ts = _from_journal(cfg)
    assert len(view.closes) >= VOL_WINDOW + 1, view
    want = _expected(cfg, view, sig_ts)
    alice, bob = (orders[answers[n].account] for n in ("alice", "bob"))
    assert (alice.price, alice.quantity) == (want["alice"].price, want["alice"].qty)
    assert alice.price == view.open  # the first trade of the current bar
    assert bob.quantity == want["bob"].qty  # volatility of the closes of completed bars


def test_bars_are_built_from_every_trade(tmp_path: Path) -> None:
    cfg = _desk(tmp_path)
    with DeskEngine(cfg) as e:
        venue = Venue(tmp_path)
        try:
            _quote_until_heard(tmp_path, venue)
            _trades(venue, 0, 20)
            _trade(venue, 5_012_300)  # the open of a new bar ...
            _trade(venue, 5_013_400)  # ... and a later trade in it
            answers = _signal(cfg)
            _check(cfg, venue, answers)
        finally:
            venue.close()
        assert e.stop() == 0


def test_a_restarted_engine_has_the_same_bars(tmp_path: Path) -> None:
    cfg = _desk(tmp_path)
    venue = Venue(tmp_path)
    try:
        first = DeskEngine(cfg).start()
        try:
            _quote_until_heard(tmp_path, venue)
            _trades(venue, 0, 10)
            assert first.proc is not None
            first.proc.kill()  # kill -9 between two trades, inside a bar
            first.proc.wait(10)
        finally:
            first.stop()
        with DeskEngine(cfg) as e:
            _quote_until_heard(tmp_path, venue)
            _trades(venue, 10, 10)
            _trade(venue, 5_012_300)
            _trade(venue, 5_013_400)
            answers = _signal(cfg)
            _check(cfg, venue, answers)
            assert e.stop() == 0
    finally:
        venue.close()
