"""`oms run` on examples/desk.toml with security on (the default: its links are tcp), attacked
on every link through real sockets while the real peers trade on.

Seen before (issue 11): a keyless PUSH of one GW_EXEC_REPORT FILL into the gateway-events
endpoint filled alice's order; a keyless PUB of GW_MARKET_DATA moved her price band so a far
buy was acknowledged; a keyless PULL on the writer endpoint took account records away from the
real writer; every keyless connection was admin over every account. Here each of those is
tried without a key, with an unknown key and with a valid key of the wrong role or the wrong
gateway; nothing moves, the refusals are counted, and the desk goes on trading with every
venue trade in DuckDB.
"""

from __future__ import annotations

import json
import os
import re
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest
import zmq
from desk import Desk, wait_until

from bindings.client import OmsClient, OmsTimeout, ProtocolError
from bindings.security import CurveClientKeys, generate_keypair, load_keypair, load_public_key
from bindings.wire import records as wire
from bindings.wire.spec import ANY_ID, ExecType, QueryKind, SignalMode
from oms_core import security
from oms_core.enums import OrderStatus, OrderType, Side, TimeInForce
from oms_core.supervisor import ask_status

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


def listening(desk: Desk) -> dict[str, str]:
    assert desk.run is not None
    m = re.findall(r"^LISTENING (\{.*\})$", desk.run.log("engine-0"), re.M)
    assert m, desk.run.log("engine-0")[-2000:]
    return dict(json.loads(m[-1]))


def keys_of(desk: Desk, name: str | None) -> CurveClientKeys | None:
    """A key of the desk (``name``), a key nobody registered (``"stranger"``), or none."""
    if name is None:
        return None
    server = load_public_key(security.key_files(desk.cfg, security.ENGINE_KEY)[0])
    if name == "stranger":
        pair = generate_keypair()
        return CurveClientKeys(pair.public, pair.secret, server)
    return security.client_keys(desk.cfg, name)


def peer(ctx: zmq.Context, kind: int, endpoint: str, keys: CurveClientKeys | None) -> Any:
    s = ctx.socket(kind)
    s.setsockopt(zmq.LINGER, 0)
    if keys is not None:
        keys.apply(s)
    s.connect(endpoint)
    return s


def peer_bound(ctx: zmq.Context, endpoint: str, keys: CurveClientKeys | None) -> Any:
    """A PUB bound where the engine's signal SUB connects (``keys``: its CURVE client keys)."""
    s = ctx.socket(zmq.PUB)
    s.setsockopt(zmq.LINGER, 0)
    if keys is not None:
        keys.apply(s)
    # the previous peer's close releases the port in libzmq's I/O thread, after close()
    # returns: until then the bind finds it in use
    end = time.monotonic() + 5.0
    while True:
        try:
            s.bind(endpoint)
            return s
        except zmq.ZMQError as exc:
            if exc.errno != zmq.EADDRINUSE or time.monotonic() > end:
                s.close()
                raise
            time.sleep(0.02)


def test_every_link_refuses_strangers_while_the_desk_trades(tmp_path: Path) -> None:
    desk = Desk(tmp_path)
    desk.add_user("alice-desk", "trader", clients=("alice",))
    desk.add_user("trend-bot", "publisher", strategies=("trend",))
    run = desk.start()
    ctx = zmq.Context()
    try:
        cfg = desk.cfg
        assert security.security_on(cfg)
        eps = listening(desk)
        alice, bob = cfg.clients["alice"].id, cfg.clients["bob"].id
        btc = cfg.instruments["BTCUSDT"]
        venue = desk.venues[("spot_a", "alice")]
        bid = Decimal(venue.book_ticker("BTCUSDT")["bidPrice"])
        price = (bid * Decimal("0.99")).quantize(Decimal("0.01"))
        rest = desk.buy_sell("alice", "BTCUSDT", Side.BUY, "0.001", price=str(price),
                             order_type=OrderType.LIMIT, tif=TimeInForce.GTC)
        assert rest.ok, rest
        assert wait_until(lambda: desk.engine_orders("alice")[rest.order_id].status
                          == OrderStatus.NEW, 30)
        held = desk.positions("alice").get(btc.id, 0)

        # a forged fill of alice's resting order: no key, an unknown key, and the key of the
        # other exchange's gateway (a real gateway, not the one her order went to)
        forged = wire.encode("GW_EXEC_REPORT", 0, 1, time.time_ns(), 0, order_id=rest.order_id,
                             account=alice, instrument=btc.id, exec_type=int(ExecType.FILL),
                             trade_id=4242, last_qty=10, last_price=int(price * 100),
                             cum_qty=10, leaves_qty=0)
        fake_md = wire.encode("GW_MARKET_DATA", 0, 1, time.time_ns(), 0, instrument=btc.id,
                              bid=int(bid * 150), ask=int(bid * 150) + 1,
                              last=int(bid * 150), bid_qty=10**6, ask_qty=10**6)
        for who in (None, "stranger", security.gateway_key("spot_b")):
            push = peer(ctx, zmq.PUSH, eps["gateway_events"], keys_of(desk, who))
            pub = peer(ctx, zmq.PUB, eps["gateway_md"], keys_of(desk, who))
            end = time.monotonic() + 1.5  # past any slow join of a PUB that did connect
            while time.monotonic() < end:
                try:
                    push.send(forged, zmq.NOBLOCK)
                except zmq.Again:
                    pass  # no connection: the handshake was refused
                pub.send(fake_md)
                time.sleep(0.1)
            push.close()
            pub.close()
        time.sleep(0.5)
        o = desk.engine_orders("alice")[rest.order_id]
        assert (o.status, o.filled) == (OrderStatus.NEW, 0), o
        assert desk.positions("alice").get(btc.id, 0) == held
        # the band is still the real market's: a buy at 1.45x is out of the 5% collar
        far_price = (bid * Decimal("1.45")).quantize(Decimal("0.01"))
        far = desk.c.submit("BTCUSDT", Side.BUY, "0.001", price=str(far_price),
                            order_type=OrderType.LIMIT, account="alice", strategy="trend")
        assert not far.ok, far

        # a stranger (no key, an unknown key, a trader's key) on the writer feed gets nothing
        for who in (None, "stranger", "alice-desk"):
            pull = peer(ctx, zmq.PULL, eps["writer"], keys_of(desk, who))
            desk.buy_sell("bob", "ETHUSDT", Side.BUY, "0.01")
            assert not pull.poll(1500), who
            pull.close()

        # the commands socket: no key and an unknown key get no answer at all; a trader acts
        # on its client only; a publisher signals only its strategies
        for who in (None, "stranger"):
            with OmsClient(eps["client"], curve=keys_of(desk, who), timeout=1.5) as c:
                with pytest.raises(OmsTimeout):
                    c.query(QueryKind.ACCOUNT, account=alice)
        with OmsClient(config=cfg, user="alice-desk", timeout=5) as c:
            assert c.query(QueryKind.ACCOUNT, account=alice).rows
            with pytest.raises(ProtocolError):
                c.query(QueryKind.ACCOUNT, account=bob)
            with pytest.raises(ProtocolError):
                c.cancel(rest.order_id, account=bob)
        with OmsClient(config=cfg, user="trend-bot", timeout=5) as c:
            ok = c.signal("BTCUSDT", 0, strategy="trend")
            assert ok.ok, ok
            with pytest.raises(ProtocolError):
                c.signal("SOLUSDT", 0, strategy="swing")
            with pytest.raises(ProtocolError):
                c.submit("BTCUSDT", Side.BUY, "0.001", account="alice", strategy="trend")

        # the publishers' signal feed (the engine's SUB connects and is the CURVE server): a
        # PUB without a key or with an unknown one is never heard; the trend bot's key is,
        # for its own strategy only
        def signal(strategy: str, symbol: str) -> bytes:
            return wire.encode("SIGNAL", 0, 1, time.time_ns(), 0, value=1, price=0,
                               account=ANY_ID, strategy=cfg.strategies[strategy].id,
                               instrument=cfg.instruments[symbol].id,
                               mode=int(SignalMode.DIRECTION))

        def publish(who: str | None, frame: bytes, until: Any, seconds: float) -> bool:
            pub = peer_bound(ctx, cfg.engine.signals, keys_of(desk, who))
            try:
                end = time.monotonic() + seconds
                while time.monotonic() < end:
                    pub.send(frame)
                    if wait_until(until, 0.5, 0.1):
                        return True
                return False
            finally:
                pub.close()

        n_bob = len(desk.engine_orders("bob"))
        n_carol = len(desk.engine_orders("carol"))
        for who in (None, "stranger"):
            assert not publish(who, signal("trend", "BTCUSDT"),
                               lambda: len(desk.engine_orders("bob")) > n_bob, 2.0), who
        assert not publish("trend-bot", signal("swing", "SOLUSDT"),
                           lambda: len(desk.engine_orders("carol")) > n_carol, 2.0)
        assert publish("trend-bot", signal("trend", "BTCUSDT"),
                       lambda: len(desk.engine_orders("bob")) > n_bob, 15.0)

        # the real peers trade on: an order fills at the venue and reaches DuckDB
        r = desk.buy_sell("alice", "BTCUSDT", Side.BUY, "0.001")
        assert r.ok, r
        assert wait_until(lambda: desk.engine_orders("alice")[r.order_id].status
                          == OrderStatus.FILLED, 30)
        desk.c.cancel(rest.order_id, account="alice")
        assert desk.stop() == 0
        log = run.log("engine-0")
        assert "SECURITY refused a peer without a valid key on oms-gateway" in log, log[-3000:]
        assert "SECURITY refused a peer without a valid key on oms-writer" in log
        assert "SECURITY refused a peer without a valid key on oms " in log
        assert "SECURITY refused a peer without a valid key on oms-signals" in log
        con = duckdb.connect(run.database, read_only=True)
        try:
            mine = con.execute("SELECT count(*) FROM executions WHERE order_id = ?",
                               [r.order_id]).fetchone()
            forged_rows = con.execute("SELECT count(*) FROM executions WHERE trade_id = 4242"
                                      ).fetchone()
        finally:
            con.close()
        assert mine is not None and mine[0] >= 1
        assert forged_rows == (0,)
    finally:
        ctx.destroy(0)
        desk.stop()
        run.kill()


def test_no_secret_reaches_a_log_a_table_or_a_generated_file(tmp_path: Path) -> None:
    """Every CURVE secret key and every venue API secret of a desk run, searched for in
    every file the run wrote except the secret files themselves (logs, generated child
    configurations, state, the journal) and in every DuckDB table."""
    desk = Desk(tmp_path)
    run = desk.start()
    try:
        r = desk.buy_sell("alice", "BTCUSDT", Side.BUY, "0.001")
        assert r.ok, r
        # what the supervisor's status endpoint (no key needed) answers: scanned below
        status = ask_status(desk.cfg.engine.health, timeout_s=5.0)
        assert status and status["processes"], status
        (tmp_path / "status-endpoint.json").write_text(json.dumps(status))
        assert desk.stop() == 0
    finally:
        desk.stop()
        run.kill()
    cfg = desk.cfg
    secrets = set()
    for name in security.key_names(cfg):
        pair = load_keypair(security.key_files(cfg, name)[1])
        secrets.add(pair.secret.decode())
    secret_files = {security.key_files(cfg, n)[1] for n in security.key_names(cfg)}
    for p in (tmp_path / "run").glob("*.secret"):
        secrets.add(p.read_text().strip())
        secret_files.add(p)
    for v in os.environ.values():
        if v and v in {p.read_text().strip() for p in secret_files if p.exists()}:
            secrets.add(v)
    assert len(secrets) > 5
    scanned = 0
    for p in tmp_path.rglob("*"):
        if not p.is_file() or p in secret_files or p.suffix in (".duckdb", ".wal"):
            continue
        data = p.read_bytes()
        scanned += 1
        for s in secrets:
            assert s.encode() not in data, f"a secret in {p}"
    assert scanned > 10
    con = duckdb.connect(run.database, read_only=True)
    try:
        for (table,) in con.execute("SELECT table_name FROM information_schema.tables "
                                    "WHERE table_type = 'BASE TABLE'").fetchall():
            text = " ".join(str(row) for row in con.execute(f'SELECT * FROM "{table}"'
                                                            ).fetchall())
            for s in secrets:
                assert s not in text, f"a secret in table {table}"
    finally:
        con.close()
