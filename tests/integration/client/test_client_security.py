"""CURVE keys, key files, the ZAP authenticator and roles, over real tcp://127.0.0.1 sockets:
the key and role rules alone, then the client against the real engine with CURVE on."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
import zmq

from bindings import MsgType, OmsClient, OmsTimeout, ProtocolError
from bindings.security import (
    CurveClientKeys,
    Identity,
    Role,
    authorize,
    generate_keypair,
    keypair_from_env,
    load_keypair,
    load_public_key,
    write_keypair,
)
from bindings.wire.spec import ANY_ID, WireError
from oms_core.engine.process import EngineProcess, base_config, write_keys
from oms_core.enums import Side

pytestmark = pytest.mark.timeout(60)


def test_key_files(tmp_path: Path) -> None:
    pub, sec = write_keypair(tmp_path, "alice")
    assert stat.S_IMODE(os.stat(sec).st_mode) == 0o600
    kp = load_keypair(sec)
    assert load_public_key(pub) == kp.public
    assert zmq.auth.load_certificate(str(sec)) == (kp.public, kp.secret)  # czmq format
    assert kp.secret.decode() not in repr(kp)
    os.chmod(sec, 0o644)
    with pytest.raises(PermissionError) as ei:
        load_keypair(sec)
    assert kp.secret.decode() not in str(ei.value)


def test_keys_from_env(tmp_path: Path) -> None:
    kp = generate_keypair()
    env = {"OMS_CURVE_PUBLIC_KEY": kp.public.decode(), "OMS_CURVE_SECRET_KEY": kp.secret.decode()}
    assert keypair_from_env(environ=env) == kp
    assert keypair_from_env(environ={}) is None
    with pytest.raises(ValueError) as ei:
        keypair_from_env(environ={"OMS_CURVE_PUBLIC_KEY": kp.public.decode(),
                                  "OMS_CURVE_SECRET_KEY": "short-secret-value"})
    assert "short-secret-value" not in str(ei.value)
    _, sec = write_keypair(tmp_path, "e")
    assert keypair_from_env(environ={"OMS_CURVE_SECRET_FILE": str(sec)}) == load_keypair(sec)


def test_authorize_roles() -> None:
    viewer = Identity("v", Role.VIEWER, frozenset({1}))
    trader = Identity("t", Role.TRADER, frozenset({1, 2}))
    admin = Identity("a", Role.ADMIN)
    gw = Identity("g", Role.GATEWAY)
    ok, no = WireError.OK, WireError.UNAUTHORIZED
    assert authorize(viewer, MsgType.QUERY, 1) == ok
    assert authorize(viewer, MsgType.NEW_ORDER, 1) == no
    assert authorize(trader, MsgType.NEW_ORDER, 2) == ok
    assert authorize(trader, MsgType.NEW_ORDER, 3) == no
    assert authorize(trader, MsgType.MASS_CANCEL, ANY_ID) == no
    assert authorize(trader, MsgType.ADMIN, 1) == no
    assert authorize(admin, MsgType.ADMIN, 0) == ok
    assert authorize(admin, MsgType.MASS_CANCEL, ANY_ID) == ok
    assert authorize(gw, MsgType.GW_EXEC_REPORT) == ok
    assert authorize(gw, MsgType.NEW_ORDER, 1) == no
    assert authorize(None, MsgType.HEARTBEAT) == no


@pytest.fixture
def secured(tmp_path: Path) -> Iterator[tuple[EngineProcess, dict[str, CurveClientKeys]]]:
    cfg = base_config(tmp_path, "tcp", security=True)
    cfg["security"]["users"] = {"trader": {"role": "trader", "clients": ["account1"]},
                                "viewer": {"role": "viewer", "clients": ["account1"]}}
    client_keys = write_keys(cfg)
    stranger = generate_keypair()
    client_keys["stranger"] = CurveClientKeys(stranger.public, stranger.secret,
                                              client_keys["trader"].server_public)
    with EngineProcess(cfg, tmp_path) as e:
        yield e, client_keys


def test_curve_roles_and_unknown_key(secured) -> None:  # type: ignore[no-untyped-def]
    engine, keys = secured
    ep = engine.endpoints["client"]
    with OmsClient(ep, account=1, curve=keys["trader"], timeout=3.0) as c:
        assert c.submit(1, Side.BUY, 1, 4_990_000).ok
        with pytest.raises(ProtocolError) as ei:
            c.submit(1, Side.BUY, 1, 4_990_000, account=2)  # not its account
        assert ei.value.error == WireError.UNAUTHORIZED
    with OmsClient(ep, account=1, curve=keys["viewer"], timeout=3.0) as c:
        assert len(c.orders().rows) == 1
        with pytest.raises(ProtocolError):
            c.submit(1, Side.BUY, 1, 4_990_000)
    with OmsClient(ep, account=1, curve=keys["stranger"], timeout=0.5) as c:
        with pytest.raises(OmsTimeout):
            c.heartbeat()
    assert engine.stop() == 0
    # refused at the handshake: no frame of the stranger reached the engine's loop
    assert engine.stats()["unauthorized"] == 2 and engine.stats()["refused_unknown_key"] == 0
