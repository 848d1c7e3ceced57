"""`oms audit --client NAME` on a DuckDB file the writer made: one client's rows alone (its
account, its users' keys, admin actions over every account), by time, in the format the
output's extension names; an unknown client exits 2 naming the known ones."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from bindings.security import Role
from bindings.wire import records as wire
from bindings.wire.spec import ANY_ID, AdminAction, AuditOutcome, MsgType
from oms_core.cli import main
from oms_core.config import load_config
from writer.store import SPECS, Store

DESK = Path(__file__).resolve().parents[3] / "examples" / "desk.toml"

USERS = """
[security.users.alice-desk]
role = "trader"
clients = ["alice"]

[security.users.bob-desk]
role = "trader"
clients = ["bob"]
"""
T0 = 1_800_000_000 * 10**9


def _row(seq: int, sender: str, role: Role, cmd: MsgType, account: int, outcome: AuditOutcome,
         code: int = 0, action: int = 0) -> bytes:
    return wire.encode("AUDIT", 100 + seq, seq, T0 + seq, 0, event_ns=T0 + seq * 10**9,
                       account=account, strategy=ANY_ID, instrument=ANY_ID, cmd_type=int(cmd),
                       role=int(role), outcome=int(outcome), code=code, action=action,
                       sender=tuple(sender.encode().ljust(32, b"\0")))


@pytest.fixture
def desk(tmp_path: Path) -> Path:
    path = tmp_path / "desk.toml"  # its files under tmp_path
    path.write_text(DESK.read_text().replace("../var/desk/", "") + USERS)
    cfg = load_config(path, identity=False)
    alice, bob = cfg.clients["alice"].id, cfg.clients["bob"].id
    rows = [
        _row(1, "alice-desk", Role.TRADER, MsgType.NEW_ORDER, alice, AuditOutcome.ACK),
        _row(2, "bob-desk", Role.TRADER, MsgType.NEW_ORDER, bob, AuditOutcome.REJECT, 8),
        _row(3, "bob-desk", Role.TRADER, MsgType.CANCEL, alice, AuditOutcome.REFUSED, 11),
        _row(4, "alice-desk", Role.TRADER, MsgType.CANCEL, bob, AuditOutcome.REFUSED, 11),
        _row(5, "operator", Role.ADMIN, MsgType.ADMIN, ANY_ID, AuditOutcome.ACK,
             action=int(AdminAction.KILL)),
        _row(6, "operator", Role.ADMIN, MsgType.HELLO, ANY_ID, AuditOutcome.ACK),
    ]
    store = Store(cfg.writer.database)
    store.commit_batch({int(MsgType.AUDIT): np.frombuffer(b"".join(rows),
                                                         dtype=SPECS[MsgType.AUDIT].dtype)}, 6)
    store.close()
    return path


def test_a_client_gets_its_rows_alone(desk: Path, tmp_path: Path) -> None:
    out = tmp_path / "alice.csv"
    assert main(["audit", "--config", str(desk), "--client", "alice", "--out", str(out)]) == 0
    with out.open() as f:
        rows = list(csv.DictReader(f))
    assert [(r["seq"], r["sender"], r["command"], r["outcome"], r["reason"]) for r in rows] == [
        ("1", "alice-desk", "NEW_ORDER", "ACK", ""),
        ("3", "bob-desk", "CANCEL", "REFUSED", "UNAUTHORIZED"),  # on her account
        ("4", "alice-desk", "CANCEL", "REFUSED", "UNAUTHORIZED"),  # her key, elsewhere
        ("5", "operator", "ADMIN", "ACK", ""),  # a global halt reaches her too
    ]
    assert rows[0]["client_name"] == "alice" and rows[0]["role"] == "TRADER"
    bob = tmp_path / "bob.parquet"
    assert main(["audit", "--config", str(desk), "--client", "bob", "--out", str(bob)]) == 0
    t = pq.read_table(bob)
    assert t.column("seq").to_pylist() == [2, 3, 4, 5]
    assert t.column("reason").to_pylist()[0] == "INVALID_QUANTITY"


def test_time_window_and_json(desk: Path, tmp_path: Path) -> None:
    out = tmp_path / "alice.json"
    since = "2027-01-15T08:00:03+00:00"  # T0 + 3 s
    until = "2027-01-15T08:00:05"  # UTC when no zone is given
    assert main(["audit", "--config", str(desk), "--client", "alice", "--since", since,
                 "--until", until, "--out", str(out)]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["seq"] for r in rows] == [3, 4]


def test_unknown_client_exits_2_naming_the_known_ones(desk: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["audit", "--config", str(desk), "--client", "mallory"]) == 2
    err = capsys.readouterr().err
    assert "no client 'mallory'" in err and "known clients: alice, bob, carol" in err
