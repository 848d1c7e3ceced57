"""The real engine with CURVE + ZAP on tcp://127.0.0.1: roles, account isolation, unknown keys,
and the C publisher example compiled with gcc getting a real ACK from the real engine."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest
import zmq
from c_example import build_publisher_example

from bindings.client import OmsClient, OmsTimeout, ProtocolError
from bindings.security import CurveClientKeys, CurveKeyPair, generate_keypair, write_keypair
from bindings.wire.spec import MsgType, Scope, WireError
from oms_core.engine.process import EngineProcess, base_config, write_keys
from oms_core.enums import KillMode, Side

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def secure_engine(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    tmp = tmp_path_factory.mktemp("sec")
    cfg = base_config(tmp, "tcp", security=True)
    cfg["security"]["users"] = {
        "alice": {"role": "trader", "clients": ["account1"]},
        "bob": {"role": "trader", "clients": ["account2"]},
        "viewer": {"role": "viewer", "clients": ["account1"]},
        "admin": {"role": "admin"}}
    keys = write_keys(cfg)
    with EngineProcess(cfg, tmp) as e:
        yield e, keys


def _client(e: EngineProcess, keys: CurveClientKeys, account: int) -> OmsClient:
    return OmsClient(e.endpoints["client"], account=account, curve=keys, timeout=3)


def test_trader_trades_only_its_accounts(secure_engine) -> None:  # type: ignore[no-untyped-def]
    e, keys = secure_engine
    with _client(e, keys["alice"], 1) as alice, _client(e, keys["bob"], 2) as bob:
        a = alice.submit(1, Side.BUY, 5, 4_999_000)
        assert a.ok
        with pytest.raises(ProtocolError) as exc:
            alice.submit(1, Side.BUY, 5, 4_999_000, account=2)
        assert exc.value.error == WireError.UNAUTHORIZED
        with pytest.raises(ProtocolError):
            bob.cancel(a.order_id, account=1)
        assert bob.cancel(a.order_id).code != 0  # bob's own account has no such order
        with pytest.raises(ProtocolError):
            bob.orders(account=1)
        assert bob.orders(account=2).rows == []
        with pytest.raises(ProtocolError):
            alice.kill(Scope.GLOBAL, KillMode.HALT)
        time.sleep(0.1)
        assert not [ev for ev in bob.events(0.1) if getattr(ev, "account", 2) == 1]
        assert any(ev.msg_type == MsgType.ORDER_UPDATE for ev in alice.events(0.1))


def test_viewer_reads_admin_acts(secure_engine) -> None:  # type: ignore[no-untyped-def]
    e, keys = secure_engine
    with _client(e, keys["viewer"], 1) as v, _client(e, keys["admin"], 1) as adm:
        assert v.orders(account=1).ok
        with pytest.raises(ProtocolError):
            v.submit(1, Side.BUY, 5, 4_999_000)
        assert adm.kill(Scope.STRATEGY, KillMode.HALT, strategy=1).ok
        assert adm.resume(Scope.STRATEGY, strategy=1).ok


def test_unknown_key_refused(secure_engine) -> None:  # type: ignore[no-untyped-def]
    e, keys = secure_engine
    stranger = generate_keypair()
    ck = CurveClientKeys(stranger.public, stranger.secret, keys["alice"].server_public)
    with OmsClient(e.endpoints["client"], account=1, curve=ck, timeout=1) as c:
        with pytest.raises(OmsTimeout):
            c.submit(1, Side.BUY, 5, 4_999_000)
    plain = zmq.Context()
    try:  # no CURVE at all: the handshake fails, nothing is answered
        s = plain.socket(zmq.DEALER)
        s.setsockopt(zmq.LINGER, 0)
        s.connect(e.endpoints["client"])
        s.send(b"x" * 64)
        assert not s.poll(500)
    finally:
        plain.destroy(0)


def test_c_publisher_against_real_engine(tmp_path: Path) -> None:
    exe = build_publisher_example(tmp_path)
    with EngineProcess(base_config(tmp_path, "tcp"), tmp_path) as e:
        ep = e.endpoints["client"]
        ok = subprocess.run([str(exe), ep, "3", "1", "1", "4999000", "150"],
                            capture_output=True, text=True, timeout=20)
        assert ok.returncode == 0, ok.stdout + ok.stderr
        assert "ACK request_id=1 order_id=" in ok.stdout
        assert "ORDER_UPDATE" in ok.stdout  # the engine routed the order's event to it
        bad = subprocess.run([str(exe), ep, "3", "1", "1", "4999000", "0"],
                             capture_output=True, text=True, timeout=20)
        assert bad.returncode == 2 and "code=8" in bad.stdout  # INVALID_QUANTITY


def test_c_publisher_speaks_curve_to_a_secured_engine(  # type: ignore[no-untyped-def]
        tmp_path: Path, secure_engine) -> None:
    """The C example with its CURVE key files trades on its account; without them, or with
    a key nobody registered, the secured engine answers nothing."""
    e, keys = secure_engine
    exe = build_publisher_example(tmp_path)
    alice = keys["alice"]
    write_keypair(tmp_path, "alice", CurveKeyPair(alice.public, alice.secret))
    write_keypair(tmp_path, "stranger")
    (tmp_path / "server.key").write_text(
        f'metadata\ncurve\n    public-key = "{alice.server_public.decode()}"\n')
    ep = e.endpoints["client"]
    args = [str(exe), ep, "1", "1", "1", "4999000", "150"]

    def run(secret: str | None) -> subprocess.CompletedProcess[str]:
        env = {"PATH": "/usr/bin:/bin"}
        if secret is not None:
            env |= {"OMS_CURVE_SECRET_FILE": str(tmp_path / secret),
                    "OMS_CURVE_SERVER_KEY_FILE": str(tmp_path / "server.key")}
        return subprocess.run(args, capture_output=True, text=True, timeout=20, env=env)

    ok = run("alice.key_secret")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "ACK request_id=1 order_id=" in ok.stdout
    for secret in (None, "stranger.key_secret"):
        refused = run(secret)
        assert refused.returncode == 1 and "no answer" in refused.stderr, refused
        assert "ACK" not in refused.stdout
    assert alice.secret.decode() not in ok.stdout + ok.stderr
