"""Ids are stable by name across restarts on one journal (issue 10 item 9): the real engine
process on the full TOML, restarted with its client blocks reordered, renamed or re-precised.
"""

from __future__ import annotations

import json
import time
from decimal import Decimal
from pathlib import Path

import pytest
import zmq
from desk_engine import DeskEngine, Venue, is_new_order, until, write_desk

from bindings.client import OmsClient
from bindings.wire import records as wire
from bindings.wire.spec import MsgType
from oms_core.config import ConfigError, load_config
from oms_core.enums import Side

pytestmark = pytest.mark.timeout(120)

BTC_BID, BTC_ASK = 4_999_900, 5_000_100  # 49999.00 / 50001.00 at 2 decimals


def quote_until_heard(d: Path, venue: Venue, instrument: int) -> None:
    """Publish top of book until the engine relays it on its public feed (it has it)."""
    ctx = zmq.Context.instance()
    sub = ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.LINGER, 0)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    sub.connect(f"ipc://{d}/pub")
    try:
        def heard() -> bool:
            venue.quote(instrument, BTC_BID, BTC_ASK)
            while sub.poll(20):
                for r in wire.decode_frame(sub.recv()):
                    if r.msg_type == MsgType.GW_MARKET_DATA and r.instrument == instrument:
                        return True
            return False

        until(heard, 10, "market data relayed by the engine")
    finally:
        sub.close()


def positions(cfg_path: Path, names: tuple[str, ...]) -> dict[str, Decimal]:
    """Each client's BTCUSDT position as the engine has it, asked by name."""
    out = {}
    with OmsClient(config=cfg_path, timeout=5) as c:
        for name in names:
            rows = c.positions(account=name, instrument="BTCUSDT").rows
            out[name] = sum((c.decimal_qty("BTCUSDT", r.quantity) for r in rows), Decimal(0))
    return out


def trade(d: Path, cfg_path: Path, fills: dict[str, str], signal: bool = False,
          expect: dict[str, str] | None = None) -> None:
    """With ``signal``, a long signal of strategy trend first (every follower's order
    filled); then each named client buys and is filled ``fills[name]`` BTC (decimal) more;
    all at 50000.00. Return when the positions are ``expect`` (default: ``fills``)."""
    venue = Venue(d)
    try:
        quote_until_heard(d, venue, load_config(cfg_path).instruments["BTCUSDT"].id)
        oids = []
        if signal:
            with OmsClient(config=cfg_path, strategy="trend", timeout=5) as c:
                res = c.signal("BTCUSDT", 1)
                assert all(a.accepted for a in res), list(res)
                oids += [a.order_ids[0] for a in res]
        for name, qty in fills.items():
            with OmsClient(config=cfg_path, client=name, timeout=5) as c:
                ack = c.submit("BTCUSDT", Side.BUY, qty, "50000.00")
                assert ack.ok, ack
                oids.append(ack.order_id)
        for oid in oids:
            order = venue.recv(lambda r, oid=oid: is_new_order(r) and r.order_id == oid)
            venue.fill(order, order.quantity, 5_000_000)
        want = {n: Decimal(q) for n, q in (expect or fills).items()}
        until(lambda: positions(cfg_path, tuple(want)) == want, 10, "fills booked")
    finally:
        venue.close()


def test_swapped_client_blocks_keep_each_clients_position(tmp_path: Path) -> None:
    cfg = write_desk(tmp_path, ("alice", "carol"))
    no_snapshots = ("--snapshot-every", "0", "--snapshot-seconds", "0")  # restart replays all
    with DeskEngine(cfg, *no_snapshots) as e:
        # the signal buys alice 0.01 and carol 0.02, carol buys 0.01 more
        trade(tmp_path, cfg, {"carol": "0.01"}, signal=True,
              expect={"alice": "0.01", "carol": "0.03"})
        assert e.stop() == 0
    # carol's block first now, and a new client bob before both: ids stay by name, and the
    # journal's signal replays to the same orders (followers in id order, not file order)
    write_desk(tmp_path, ("bob", "carol", "alice"))
    with DeskEngine(cfg, *no_snapshots):
        assert positions(cfg, ("alice", "bob", "carol")) == {
            "alice": Decimal("0.01"), "bob": Decimal(0), "carol": Decimal("0.03")}
    assert load_config(cfg).ids.accounts == {"bob": 2, "carol": 1, "alice": 0}
    table = json.loads((tmp_path / "journal" / "identity.json").read_text())
    assert table["accounts"] == {"alice": {"id": 0}, "carol": {"id": 1}, "bob": {"id": 2}}
    assert table["instruments"]["BTCUSDT"] == {"id": 0, "price_precision": 2,
                                               "qty_precision": 4}


def test_changed_precision_is_refused_with_the_name(tmp_path: Path) -> None:
    cfg = write_desk(tmp_path)
    with DeskEngine(cfg) as e:
        time.sleep(0.1)
        assert e.stop() == 0
    write_desk(tmp_path, btc_tick="0.001")  # price precision 2 -> 3
    with pytest.raises(ConfigError) as ei:
        load_config(cfg)
    assert "instruments.BTCUSDT" in str(ei.value) and "price precision 3" in str(ei.value)
    e = DeskEngine(cfg)
    assert e.run_to_exit() == 2
    assert "BTCUSDT" in e.stderr and "price precision 3 differs from 2" in e.stderr


def test_removed_client_with_booked_state_is_refused(tmp_path: Path) -> None:
    cfg = write_desk(tmp_path, ("alice", "bob"))
    with DeskEngine(cfg) as e:
        trade(tmp_path, cfg, {"bob": "0.02"})
        assert e.stop() == 0
    write_desk(tmp_path, ("alice",))
    e = DeskEngine(cfg)
    assert e.run_to_exit() == 2
    assert "client bob" in e.stderr and "no longer in the configuration" in e.stderr
    # put back, bob has his position again
    write_desk(tmp_path, ("bob", "alice"))
    with DeskEngine(cfg):
        assert positions(cfg, ("alice", "bob")) == {"alice": Decimal(0), "bob": Decimal("0.02")}
