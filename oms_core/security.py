"""The keys of a configuration: who has a CURVE key, with which role, and where it lives.

One key pair per process kind and per user, in ``[security] keys_dir`` (ZeroMQ certificate
files: ``<name>.key`` public, ``<name>.key_secret`` mode 0600, see ``bindings/security.py``):

* ``engine``: the engine's server key (every shard);
* ``gateway-<exchange>``: the gateway of that exchange (its reports may only be of the
  venue accounts it trades, its market data only of that exchange's instruments);
* ``writer``: the DuckDB writer (may only read the writer feed);
* ``operator``: the ``oms`` commands (admin: status, halt, cancel, flatten);
* every ``[security.users.<name>]``: admin, trader or viewer of its clients, or publisher of
  its strategies.

Security is on when ``[security] mode = "on"``, or ``"auto"`` (the default) and any link of
the configuration is tcp. Off, the engine binds only ipc or loopback addresses unless the
operator insists (``--insecure``). Cold code.
"""

from __future__ import annotations

import ipaddress
import logging
from pathlib import Path
from typing import Any

from bindings.security import (
    CurveClientKeys,
    CurveKeyPair,
    Identity,
    KeyRegistry,
    Role,
    load_keypair,
    load_public_key,
    write_keypair,
)

log = logging.getLogger("oms.security")

ENGINE_KEY = "engine"
WRITER_KEY = "writer"
OPERATOR_KEY = "operator"

_ROLES = {"admin": Role.ADMIN, "trader": Role.TRADER, "viewer": Role.VIEWER,
          "publisher": Role.PUBLISHER}


class KeysExist(Exception):
    """Keys would be overwritten (``oms keys`` without ``--force``)."""


def gateway_key(exchange: str) -> str:
    return f"gateway-{exchange}"


def links(cfg: Any) -> list[str]:
    """Every ZeroMQ endpoint the configuration names."""
    e = cfg.engine
    out = [e.commands, e.signals, e.events, e.health, e.writer]
    for x in cfg.exchanges.values():
        out += [x.orders, x.events, x.market_data]
    return [ep for ep in out if ep]


def security_on(cfg: Any) -> bool:
    mode = cfg.security.mode
    if mode != "auto":
        return mode == "on"
    return any(ep.startswith("tcp://") for ep in links(cfg))


def local_only(endpoint: str) -> bool:
    """Whether ``endpoint`` cannot be reached from another host (ipc, inproc, loopback)."""
    if not endpoint.startswith("tcp://"):
        return True  # ipc (kept under the run directory) and inproc
    host = endpoint[6:].rpartition(":")[0].strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # "*", an interface name or a host name: reachable from outside


def check_insecure(cfg: Any, insecure: bool) -> list[str]:
    """With security off, the endpoints reachable from another host; ValueError when there
    are any and ``insecure`` is not given (then they are returned, to be logged loudly)."""
    if security_on(cfg):
        return []
    open_eps = [ep for ep in links(cfg) if not local_only(ep)]
    if open_eps and not insecure:
        raise ValueError(f"security is off ([security] mode) but {', '.join(open_eps)} "
                         "can be reached from other hosts: turn security on, bind to "
                         "127.0.0.1 / ipc, or pass --insecure")
    return open_eps


def identities(cfg: Any) -> dict[str, Identity]:
    """Every key of the configuration but the engine's, by name."""
    clients = {c.name: c.id for c in cfg.clients.values()}
    out = {WRITER_KEY: Identity(WRITER_KEY, Role.WRITER),
           OPERATOR_KEY: Identity(OPERATOR_KEY, Role.ADMIN)}
    for x in cfg.exchanges.values():
        accounts = frozenset(c.id for c in cfg.clients.values() if x.name in c.exchange_accounts)
        out[gateway_key(x.name)] = Identity(gateway_key(x.name), Role.GATEWAY, accounts,
                                            exchange=int(x.id))
    for u in cfg.security.users.values():
        if u.name in out or u.name == ENGINE_KEY:
            raise ValueError(f"[security.users.{u.name}]: the name is taken by a service key")
        out[u.name] = Identity(u.name, _ROLES[u.role],
                               frozenset(clients[c] for c in u.clients),
                               frozenset(cfg.strategies[s].id for s in u.strategies))
    return out


def key_files(cfg: Any, name: str) -> tuple[Path, Path]:
    d = Path(cfg.security.keys_dir)
    return d / f"{name}.key", d / f"{name}.key_secret"


def key_names(cfg: Any) -> list[str]:
    return [ENGINE_KEY, *identities(cfg)]


def write_keys(cfg: Any, force: bool = False, missing_only: bool = False) -> list[str]:
    """Generate the keys of ``cfg``; return the names written. Existing keys are kept with
    ``missing_only``, replaced with ``force``, else :class:`KeysExist` names them."""
    names = key_names(cfg)
    present = [n for n in names if any(p.exists() for p in key_files(cfg, n))]
    if present and not (force or missing_only):
        raise KeysExist(f"keys exist in {cfg.security.keys_dir} for {', '.join(present)}: "
                        "use --force to replace them (every peer then needs the new ones)")
    todo = [n for n in names if force or n not in present]
    Path(cfg.security.keys_dir).mkdir(parents=True, exist_ok=True, mode=0o700)
    for n in todo:
        write_keypair(cfg.security.keys_dir, n)
    return todo


def server_keys(cfg: Any) -> CurveKeyPair:
    return load_keypair(key_files(cfg, ENGINE_KEY)[1])


def client_keys(cfg: Any, name: str) -> CurveClientKeys:
    """What peer ``name`` needs to reach the engine (its pair and the engine's public key)."""
    for path in (key_files(cfg, name)[1], key_files(cfg, ENGINE_KEY)[0]):
        if not path.exists():
            raise FileNotFoundError(f"security is on and {path} does not exist: `oms keys "
                                    f"--config {cfg.file}` makes the keys (`oms run` makes "
                                    "the missing ones when it starts)")
    pair = load_keypair(key_files(cfg, name)[1])
    return CurveClientKeys(pair.public, pair.secret,
                           load_public_key(key_files(cfg, ENGINE_KEY)[0]))


def operator_keys(cfg: Any) -> CurveClientKeys | None:
    """The keys the ``oms`` commands talk to the engine with (None: security off)."""
    return client_keys(cfg, OPERATOR_KEY) if security_on(cfg) else None


def registry(cfg: Any) -> KeyRegistry:
    """Public key -> identity of every peer of ``cfg`` (from the public key files)."""
    reg = KeyRegistry()
    for name, ident in identities(cfg).items():
        reg.add(load_public_key(key_files(cfg, name)[0]), ident)
    return reg


def curve_files(cfg: Any, name: str) -> dict[str, str]:
    """The files a child process of key ``name`` reads (never the key values)."""
    return {"curve_secret_file": str(key_files(cfg, name)[1]),
            "server_public_file": str(key_files(cfg, ENGINE_KEY)[0])}


__all__ = ["ENGINE_KEY", "OPERATOR_KEY", "WRITER_KEY", "KeysExist", "check_insecure",
           "client_keys", "curve_files", "gateway_key", "identities",
           "key_files", "key_names", "links", "local_only", "operator_keys", "registry",
           "security_on",
           "server_keys", "write_keys"]
