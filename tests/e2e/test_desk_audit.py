"""The per-client audit trail under `oms run` on examples/desk.toml with security on: every
command lands in DuckDB's audit table with the name of the key that sent it and how the engine
answered it, refused ones included, and `oms audit --client NAME` exports one client's trail
alone.

Seen before (issue 11): the engine journaled the commands without who sent them, and nothing
wrote an audit table.
"""

from __future__ import annotations

import csv
import subprocess
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest
from desk import ENV, OMS, Desk, wait_until

from bindings.client import OmsClient, ProtocolError
from bindings.security import load_keypair
from oms_core import security
from oms_core.enums import OrderStatus, OrderType, Side, TimeInForce

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


def oms(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*OMS, *args], env=ENV, capture_output=True, text=True, timeout=60)


def test_the_audit_table_names_every_key_and_each_client_exports_its_own(
        tmp_path: Path) -> None:
    desk = Desk(tmp_path)
    desk.add_user("alice-desk", "trader", clients=("alice",))
    desk.add_user("bob-desk", "trader", clients=("bob",))
    config = str(desk.config)
    run = desk.start()
    try:
        cfg = desk.cfg
        alice, bob = cfg.clients["alice"].id, cfg.clients["bob"].id
        bid = Decimal(desk.venues[("spot_a", "alice")].book_ticker("BTCUSDT")["bidPrice"])
        price = str((bid * Decimal("0.99")).quantize(Decimal("0.01")))
        with OmsClient(config=cfg, user="alice-desk", timeout=5) as a, \
                OmsClient(config=cfg, user="bob-desk", timeout=5) as b:
            rest = desk.until_accepted(lambda: a.submit(
                "BTCUSDT", Side.BUY, "0.001", price=price, order_type=OrderType.LIMIT,
                tif=TimeInForce.GTC, account="alice", strategy="trend"))
            assert rest.ok, rest
            assert wait_until(lambda: desk.engine_orders("alice")[rest.order_id].status
                              == OrderStatus.NEW, 30)
            with pytest.raises(ProtocolError):  # bob's key on alice's order
                b.cancel(rest.order_id, account="alice")
            assert a.cancel(rest.order_id, account="alice").ok
        for verb in ("halt", "resume"):
            done = oms(verb, "--config", config, "--account", "alice")
            assert done.returncode == 0, done.stdout + done.stderr
        assert desk.stop() == 0
        con = duckdb.connect(run.database, read_only=True)
        try:
            rows = con.execute(
                "SELECT sender, role, command, outcome, reason, account, order_id, action "
                "FROM audit_trail WHERE command IN ('NEW_ORDER', 'CANCEL', 'ADMIN') "
                "ORDER BY seq").fetchall()
        finally:
            con.close()
        assert ("alice-desk", "TRADER", "NEW_ORDER", "ACK", None, alice, rest.order_id,
                0) in rows
        assert ("bob-desk", "TRADER", "CANCEL", "REFUSED", "UNAUTHORIZED", alice,
                rest.order_id, 0) in rows
        assert ("alice-desk", "TRADER", "CANCEL", "ACK", None, alice, rest.order_id,
                0) in rows
        admin = [r for r in rows if r[2] == "ADMIN" and r[5] == alice]
        assert [(r[0], r[1], r[3], r[7]) for r in admin] == [
            ("operator", "ADMIN", "ACK", 1), ("operator", "ADMIN", "ACK", 2)]  # KILL, RESUME
    finally:
        desk.stop()
        run.kill()

    out = tmp_path / "alice.csv"
    done = oms("audit", "--config", config, "--client", "alice", "--out", str(out))
    assert done.returncode == 0, done.stdout + done.stderr
    with out.open() as f:
        trail = list(csv.DictReader(f))
    assert trail
    for r in trail:  # her account, or her key
        assert int(r["account"]) == alice or r["sender"] == "alice-desk", r
    commands = {(r["sender"], r["command"], r["outcome"]) for r in trail}
    assert {("alice-desk", "NEW_ORDER", "ACK"), ("alice-desk", "CANCEL", "ACK"),
            ("bob-desk", "CANCEL", "REFUSED"), ("operator", "ADMIN", "ACK")} <= commands
    assert not any(int(r["account"]) == bob for r in trail)
    assert {r["client_name"] for r in trail if int(r["account"]) == alice} == {"alice"}
    # bob's trail holds his key's refused try on alice's order, and none of alice's rows
    bob_out = tmp_path / "bob.json"
    done = oms("audit", "--config", config, "--client", "bob", "--out", str(bob_out))
    assert done.returncode == 0, done.stderr
    bob_text = bob_out.read_text()
    assert '"bob-desk"' in bob_text and '"alice-desk"' not in bob_text
    # no secret in the export
    text = out.read_text()
    for name in security.key_names(desk.cfg):
        assert load_keypair(security.key_files(desk.cfg, name)[1]).secret.decode() not in text
    unknown = oms("audit", "--config", config, "--client", "mallory")
    assert unknown.returncode == 2
    assert "known clients: alice, bob, carol" in unknown.stderr
