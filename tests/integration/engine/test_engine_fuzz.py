"""Random and mutated frames at a RUNNING engine process; afterwards it still answers correctly
and the state the fuzzer may not touch is unchanged.

The fuzzer is a CURVE-authenticated trader of account 3 only: whatever its mutations turn
into (other accounts, ADMIN records, gateway records) must be refused; account 3 is its
sandbox. The full run (1,000,000 frames) is marked slow; a 20,000-frame run is in the fast set.
"""

from __future__ import annotations

import random
import time
from pathlib import Path
from typing import Any

import pytest
import zmq

from bindings.client import OmsClient, OmsTimeout
from bindings.wire import records as wire
from bindings.wire.spec import ANY_ID, HEADER_SIZE, MAX_RECORDS_PER_FRAME, QueryKind
from oms_core.engine.process import EngineProcess, base_config, write_keys
from oms_core.enums import Side

pytestmark = pytest.mark.timeout(600)


def _bases() -> list[bytes]:
    common = dict(account=3, strategy=0, instrument=1)
    return [
        wire.encode("NEW_ORDER", 1, 1, 0, client_order_id=5, price=4_999_000, quantity=3,
                    side=1, order_type=2, tif=1, **common),
        wire.encode("CANCEL", 2, 2, 0, order_id=65536, account=3),
        wire.encode("REPLACE", 3, 3, 0, order_id=65536, price=4_998_000, quantity=2,
                    account=3),
        wire.encode("MASS_CANCEL", 4, 4, 0, account=3, strategy=ANY_ID, instrument=ANY_ID),
        wire.encode("NEW_OCO", 5, 5, 0, a_client_order_id=8, b_client_order_id=9, quantity=1,
                    a_price=4_990_000, b_trigger_price=4_900_000, a_type=2, b_type=3, tif=1,
                    side=1, **common),
        wire.encode("NEW_BRACKET", 6, 6, 0, entry_client_order_id=10, tp_client_order_id=11,
                    sl_client_order_id=12, entry_price=4_990_000, quantity=1,
                    tp_price=5_100_000, sl_trigger_price=4_800_000, side=1, entry_type=2,
                    tif=1, **common),
        wire.encode("SIGNAL", 7, 7, 0, value=1, mode=1, **common),
        wire.encode("QUERY", 8, 8, 0, kind=7, account=3, strategy=ANY_ID, instrument=ANY_ID),
        wire.encode("HEARTBEAT", 9, 9, 0),
        wire.encode("HELLO", 10, 10, 0, n_accounts=1, accounts=(3,)),
        wire.encode("ADMIN", 11, 11, 0, action=1, scope=1, kill_mode=2),
        wire.encode("GW_EXEC_REPORT", 0, 1, 0, order_id=65536, exec_type=3, last_qty=1,
                    last_price=1, account=1, instrument=1),
    ]


def _frames(n: int, seed: int):  # type: ignore[no-untyped-def]
    rnd = random.Random(seed)
    bases = _bases()
    rb = rnd.randbytes
    for i in range(n):
        k = i % 8
        if k == 0:  # pure garbage of any length (some > 1 MiB now and then)
            yield rb(rnd.choice((0, 1, 7, 31, 32, 33, 96, 500, 4096)) if i % 4096
                     else (1 << 20) + 8)
        elif k == 1:  # truncated or extended record
            b = rnd.choice(bases)
            yield b[: rnd.randrange(len(b))] if rnd.random() < 0.5 else b + rb(rnd.randrange(
                1, 64))
        elif k == 2:  # batch of valid records with one bad one somewhere
            recs = [rnd.choice(bases) for _ in range(rnd.randrange(1, 20))]
            j = rnd.randrange(len(recs))
            m = bytearray(recs[j])
            m[rnd.randrange(8)] ^= 1 << rnd.randrange(8)
            recs[j] = bytes(m)
            yield b"".join(recs)
        else:  # mutated record(s): flip random bytes anywhere, header included
            b = bytearray(rnd.choice(bases))
            for _ in range(rnd.randrange(1, 5)):
                pos = rnd.randrange(len(b)) if rnd.random() < 0.7 else rnd.randrange(8, 32)
                b[pos] = rnd.randrange(256)
            # values that matter: zero, negative, huge quantities and prices
            if rnd.random() < 0.3 and len(b) >= 64:
                off = rnd.randrange(32, len(b) - 8, 8)
                b[off:off + 8] = rnd.choice((0, -1, -(1 << 63), (1 << 63) - 1, 1 << 62)
                                            ).to_bytes(8, "little", signed=True)
            yield bytes(b)


def _ends_reply(msg: zmq.Frame) -> int:
    """1 when ``msg`` is the last (or only) message of the engine's reply to one frame; 0 for
    a message the engine cut at MAX_RECORDS_PER_FRAME records, whose reply goes on in the next
    message (a mass cancel of thousands of open orders answers with more records than that)."""
    buf = msg.buffer
    if len(buf) < MAX_RECORDS_PER_FRAME * HEADER_SIZE:
        return 1
    n = off = 0
    while off < len(buf):
        off += wire.decode_header(buf, off).length
        n += 1
    return int(n < MAX_RECORDS_PER_FRAME)


def _state(c: OmsClient) -> list:
    out = []
    for acct in (1, 2):
        for kind in (QueryKind.ORDERS, QueryKind.POSITIONS, QueryKind.BALANCES,
                     QueryKind.LIMITS, QueryKind.ACCOUNT):
            q = c.query(kind, account=acct)
            assert q.ok
            out.append([r._replace(send_ns=0, request_id=0,
                                   **({"event_ns": 0} if "event_ns" in r._fields else {}))
                        for r in q.rows])
    return out


def _secured(tmp: Path, role: str) -> tuple[Any, Any, dict[str, Any]]:
    """An engine configuration with CURVE on: the fuzzer's key (``role``, account 3 only:
    a gateway, that of exchange2, where only account 3 has an account) and an admin's;
    returns the fuzzer's and the admin's keys too."""
    cfg = base_config(tmp, "ipc", security=True, heartbeat_ms=600_000)
    cfg["security"]["users"] = {"admin": {"role": "admin"}}
    if role == "gateway":
        x1 = cfg["exchanges"]["exchange1"]
        cfg["exchanges"]["exchange2"] = {"kind": "sim", "events": x1["events"],
                                         "market_data": x1["market_data"]}
        cfg["ids"]["exchanges"]["exchange2"] = 2
        cfg["clients"]["account3"]["exchange_accounts"] = {"exchange2": {}}
        keys = write_keys(cfg)
        return keys["gateway-exchange2"], keys["admin"], cfg
    cfg["security"]["users"]["fuzz"] = {"role": role, "clients": ["account3"]}
    keys = write_keys(cfg)
    return keys["fuzz"], keys["admin"], cfg


def _run(tmp: Path, n: int) -> None:
    fuzz_keys, ak, cfg = _secured(tmp, "trader")
    with EngineProcess(cfg, tmp) as e:
        ep = e.endpoints["client"]
        with OmsClient(ep, account=1, strategy=1, curve=ak, timeout=10) as c:
            assert c.submit(1, Side.BUY, 7, 4_999_000).ok
            assert c.submit(1, Side.SELL, 3, 5_001_000, account=2).ok
            before = _state(c)
        ctx = zmq.Context()
        try:
            s = ctx.socket(zmq.DEALER)
            s.setsockopt(zmq.LINGER, 0)
            s.setsockopt(zmq.RCVHWM, 0)
            s.setsockopt(zmq.SNDHWM, 10_000)
            fuzz_keys.apply(s)
            s.connect(ep)
            sent = answered = received = 0
            t0 = time.monotonic()
            for f in _frames(n, 1234):
                s.send(f)
                sent += 1
                while s.poll(0):
                    answered += _ends_reply(s.recv(copy=False))
                    received += 1
            end = time.monotonic() + 120
            while answered < sent and time.monotonic() < end:  # every frame gets an answer
                if s.poll(200):
                    answered += _ends_reply(s.recv(copy=False))
                    received += 1
            print(f"fuzz: {sent} frames in {time.monotonic() - t0:.1f} s, {answered} answers "
                  f"in {received} messages")
            assert answered == sent
        finally:
            ctx.destroy(0)
        with OmsClient(ep, account=1, strategy=1, curve=ak, timeout=10) as c:
            assert _state(c) == before
            a = c.submit(1, Side.BUY, 2, 4_999_000)
            assert a.ok and a.account == 1 and a.order_id
            assert c.cancel(a.order_id).ok
        assert e.stop() == 0
        st = e.stats()
        assert st["bad_frames"] > n // 4 and st["unauthorized"] > 0


def test_fuzz_20k_frames(tmp_path: Path) -> None:
    _run(tmp_path, 20_000)


@pytest.mark.slow
def test_fuzz_one_million_frames(tmp_path: Path) -> None:
    _run(tmp_path, 1_000_000)


def _gateway_bases() -> list[bytes]:
    """Gateway records: reports on orders of accounts 1 (not the fuzzer's) and 3 (its own),
    market data and status."""
    out = []
    for acct in (1, 3):
        for et in (1, 2, 3, 4, 5, 10):  # ACK, REJECT, FILL, CANCELED, ... STATUS
            out.append(wire.encode("GW_EXEC_REPORT", 0, 1, 0, order_id=65536 + acct,
                                   exec_type=et, trade_id=77, last_qty=1, last_price=4_999_000,
                                   cum_qty=1, leaves_qty=0, account=acct, instrument=1))
    out.append(wire.encode("GW_MARKET_DATA", 0, 1, 0, instrument=1, bid=4_999_000,
                           ask=5_001_000, last=5_000_000, bid_qty=1, ask_qty=1))
    out.append(wire.encode("GW_STATUS", 0, 1, 0, gateway_id=1, state=1))
    return out


def _gateway_frames(n: int, seed: int):  # type: ignore[no-untyped-def]
    rnd = random.Random(seed)
    bases = _gateway_bases()
    for i in range(n):
        b = bytearray(rnd.choice(bases))
        if i % 5 == 0:
            yield rnd.randbytes(rnd.choice((0, 1, 31, 32, 96, 200)))
            continue
        for _ in range(rnd.randrange(0, 4)):
            b[rnd.randrange(len(b))] = rnd.randrange(256)
        yield bytes(b)


def _run_gateway_links(tmp: Path, n: int) -> None:
    """A gateway key whose venue account is 3 fuzzes the gateway events and market-data
    sockets; the orders and positions of accounts 1 and 2 are unchanged, and a stranger
    without a key moves nothing at all."""
    fuzz_keys, ak, cfg = _secured(tmp, "gateway")
    with EngineProcess(cfg, tmp) as e:
        ep = e.endpoints["client"]

        def held(c: OmsClient) -> list[Any]:
            return [[(r.order_id, r.status, r.filled, r.quantity) if hasattr(r, "filled")
                     else (r.instrument, r.quantity) for r in c.query(kind, account=a).rows
                     if hasattr(r, "quantity")]
                    for a in (1, 2) for kind in (QueryKind.ORDERS, QueryKind.POSITIONS)]

        with OmsClient(ep, account=1, strategy=1, curve=ak, timeout=10) as c:
            assert c.submit(1, Side.BUY, 7, 4_999_000).ok
            assert c.submit(1, Side.SELL, 3, 5_001_000, account=2).ok
            before = held(c)
        ctx = zmq.Context()
        try:
            keyed = fuzz_keys
            socks = []
            for kind, name, keys in ((zmq.PUSH, "gateway_events", keyed),
                                     (zmq.PUB, "gateway_md", keyed),
                                     (zmq.PUSH, "gateway_events", None)):
                s = ctx.socket(kind)
                s.setsockopt(zmq.LINGER, 0)
                s.setsockopt(zmq.SNDHWM, 0)
                if keys is not None:
                    keys.apply(s)
                s.connect(e.endpoints[name])
                socks.append(s)
            time.sleep(0.5)  # the PUB's subscription arrives; the keyless PUSH never connects
            t0 = time.monotonic()
            for i, f in enumerate(_gateway_frames(n, 99)):
                try:
                    socks[i % 3].send(f, zmq.NOBLOCK)
                except zmq.Again:
                    pass  # the keyless socket: no peer to queue for
            print(f"gateway fuzz: {n} frames in {time.monotonic() - t0:.1f} s")
            time.sleep(1.0)
            for s in socks:
                s.close()
        finally:
            ctx.destroy(0)
        with OmsClient(ep, account=1, strategy=1, curve=ak, timeout=10) as c:
            deadline = time.monotonic() + 120  # the engine reads every frame first
            while True:
                try:
                    a = c.submit(1, Side.BUY, 2, 4_999_000)
                except OmsTimeout:
                    assert time.monotonic() < deadline, "the engine stopped answering"
                    continue
                if a.ok or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            assert a.ok and a.account == 1 and a.order_id
            assert c.cancel(a.order_id).ok
            time.sleep(0.2)
            after = held(c)
        assert [[x for x in rows if x[0] != a.order_id] for rows in after] == before
        assert e.stop() == 0
        st = e.stats()
        assert st["gw_records"] > n // 10 and st["gw_unauthorized"] > n // 20, st
        assert st["refused_handshakes"].get("oms-gateway", 0) >= 1, st


def test_fuzz_gateway_links_20k_frames(tmp_path: Path) -> None:
    _run_gateway_links(tmp_path, 20_000)


@pytest.mark.slow
def test_fuzz_gateway_links_200k_frames(tmp_path: Path) -> None:
    _run_gateway_links(tmp_path, 200_000)
