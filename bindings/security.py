"""Access control for the engine's sockets: CURVE keys, a ZAP authenticator, roles.

* Keys are Z85 text (40 characters). Secret keys live in files of mode 0600 or in environment
  variables; they are never logged, never put in exceptions and hidden from ``repr``.
* Key files use the ZeroMQ certificate format (``public-key = "..."`` / ``secret-key = "..."``)
  so ``zmq.auth.load_certificate`` and czmq tools read them too.
* :class:`OmsAuthenticator` answers ZAP requests: a client key listed in the
  :class:`KeyRegistry` is allowed and its identity *name* becomes the connection's User-Id
  (``frame.get("User-Id")`` on the engine's ROUTER); an unknown key is refused.
* :func:`authorize` says which roles may send which records for which accounts.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import zmq
from zmq.auth.thread import ThreadAuthenticator

from bindings.wire.spec import ANY_ID, ROLE_MAY, Role, WireError

DEFAULT_DOMAIN = "oms"
_KEY_LEN = 40  # Z85 of a 32-byte key


class Domain:
    """ZAP domains: one per kind of engine socket, each open to some roles only, so a key
    of one role cannot even connect where another role's traffic flows."""

    COMMANDS = "oms"  # client ROUTER: per-message checks by :func:`authorize`
    GATEWAY = "oms-gateway"  # exec reports / market data in, orders out
    WRITER = "oms-writer"  # the writer feed (engine PUSH)
    EVENTS = "oms-events"  # the engine's event PUB (monitors)
    SIGNALS = "oms-signals"  # publishers' signal PUB (the engine's SUB is the CURVE server)


DOMAIN_ROLES: dict[str, frozenset[Role]] = {
    Domain.COMMANDS: frozenset({Role.VIEWER, Role.TRADER, Role.ADMIN, Role.PUBLISHER}),
    Domain.GATEWAY: frozenset({Role.GATEWAY}),
    Domain.WRITER: frozenset({Role.WRITER}),
    Domain.EVENTS: frozenset({Role.VIEWER, Role.ADMIN, Role.WRITER}),
    Domain.SIGNALS: frozenset({Role.PUBLISHER, Role.ADMIN}),
}


@dataclass(frozen=True, slots=True)
class Identity:
    """Who a key belongs to: its role, the accounts it may act on (a gateway: the venue
    accounts it trades) and, for a publisher, the strategies it may signal."""

    name: str
    role: Role
    accounts: frozenset[int] = field(default_factory=frozenset)
    strategies: frozenset[int] = field(default_factory=frozenset)
    exchange: int = -1  # a gateway: the exchange it reports for (-1: known by accounts only)


@dataclass(frozen=True, slots=True)
class CurveKeyPair:
    """A CURVE key pair, Z85 bytes. ``repr`` hides the secret."""

    public: bytes
    secret: bytes = field(repr=False)

    def __repr__(self) -> str:
        return f"CurveKeyPair(public={self.public.decode()!r}, secret=<hidden>)"


@dataclass(frozen=True, slots=True)
class CurveClientKeys:
    """What a client needs: its key pair and the engine's public key."""

    public: bytes
    secret: bytes = field(repr=False)
    server_public: bytes = b""

    def __repr__(self) -> str:
        return (
            f"CurveClientKeys(public={self.public.decode()!r}, secret=<hidden>, "
            f"server_public={self.server_public.decode()!r})"
        )

    def apply(self, sock: zmq.Socket) -> None:
        """Configure ``sock`` as a CURVE client (before connect)."""
        sock.setsockopt(zmq.CURVE_PUBLICKEY, self.public)
        sock.setsockopt(zmq.CURVE_SECRETKEY, self.secret)
        sock.setsockopt(zmq.CURVE_SERVERKEY, self.server_public)


def _check_key(key: bytes | str, what: str) -> bytes:
    k = key.encode() if isinstance(key, str) else bytes(key)
    k = k.strip()
    if len(k) != _KEY_LEN:
        raise ValueError(f"{what} must be a {_KEY_LEN}-character Z85 key")  # no key content
    return k


def generate_keypair() -> CurveKeyPair:
    """Return a fresh CURVE key pair."""
    public, secret = zmq.curve_keypair()
    return CurveKeyPair(public, secret)


def write_keypair(directory: str | os.PathLike[str], name: str,
                  keys: CurveKeyPair | None = None) -> tuple[Path, Path]:
    """Write ``<name>.key`` (public, 0644) and ``<name>.key_secret`` (both keys, 0600).

    Returns the two paths. Generates a pair when ``keys`` is None.
    """
    keys = keys or generate_keypair()
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    pub_path = d / f"{name}.key"
    sec_path = d / f"{name}.key_secret"
    header = "#   ZeroMQ CURVE certificate written by bindings.security\n"
    pub_text = f'{header}metadata\ncurve\n    public-key = "{keys.public.decode()}"\n'
    sec_text = (
        f"{header}#   THIS FILE IS SECRET: keep it mode 0600\nmetadata\ncurve\n"
        f'    public-key = "{keys.public.decode()}"\n'
        f'    secret-key = "{keys.secret.decode()}"\n'
    )
    pub_path.write_text(pub_text)
    os.chmod(pub_path, 0o644)
    # Create with 0600 from the start so the secret is never readable by others.
    fd = os.open(sec_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, sec_text.encode())
    finally:
        os.close(fd)
    return pub_path, sec_path


def _parse_cert(path: Path) -> tuple[bytes | None, bytes | None]:
    public = secret = None
    for raw in path.read_bytes().splitlines():
        line = raw.strip()
        if line.startswith(b"#"):
            continue
        if line.startswith(b"public-key"):
            public = line.split(b"=", 1)[1].strip(b" \t'\"")
        elif line.startswith(b"secret-key"):
            secret = line.split(b"=", 1)[1].strip(b" \t'\"")
    return public, secret


def load_public_key(path: str | os.PathLike[str]) -> bytes:
    """Return the public key of a certificate file (public or secret one)."""
    public, _ = _parse_cert(Path(path))
    if public is None:
        raise ValueError(f"no public key in {path}")
    return _check_key(public, f"public key in {path}")


def load_keypair(path: str | os.PathLike[str]) -> CurveKeyPair:
    """Return the key pair of a ``.key_secret`` file; refuse files readable by others."""
    p = Path(path)
    mode = p.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise PermissionError(f"secret key file {p} is accessible by group/others (chmod 600)")
    public, secret = _parse_cert(p)
    if public is None or secret is None:
        raise ValueError(f"{p} does not hold both a public and a secret key")
    return CurveKeyPair(_check_key(public, f"public key in {p}"),
                        _check_key(secret, f"secret key in {p}"))


def keypair_from_env(prefix: str = "OMS_CURVE",
                     environ: Mapping[str, str] | None = None) -> CurveKeyPair | None:
    """Load a key pair from the environment, or None when not configured.

    ``{prefix}_SECRET_FILE`` names a ``.key_secret`` file; otherwise ``{prefix}_PUBLIC_KEY``
    and ``{prefix}_SECRET_KEY`` hold the Z85 keys.
    """
    env = os.environ if environ is None else environ
    path = env.get(f"{prefix}_SECRET_FILE")
    if path:
        return load_keypair(path)
    pub = env.get(f"{prefix}_PUBLIC_KEY")
    sec = env.get(f"{prefix}_SECRET_KEY")
    if not pub and not sec:
        return None
    if not pub or not sec:
        raise ValueError(f"set both {prefix}_PUBLIC_KEY and {prefix}_SECRET_KEY")
    return CurveKeyPair(_check_key(pub, f"{prefix}_PUBLIC_KEY"),
                        _check_key(sec, f"{prefix}_SECRET_KEY"))


def client_keys_from_files(secret_file: str | os.PathLike[str],
                           server_public_file: str | os.PathLike[str]) -> CurveClientKeys | None:
    """A peer's CURVE client keys from its ``.key_secret`` file and the engine's public key
    file; None when no secret file is named (security off)."""
    if not secret_file:
        return None
    pair = load_keypair(secret_file)
    return CurveClientKeys(pair.public, pair.secret, load_public_key(server_public_file))


def make_curve_server(sock: zmq.Socket, keys: CurveKeyPair, domain: str = DEFAULT_DOMAIN) -> None:
    """Configure ``sock`` as a CURVE server using ZAP ``domain`` (before bind or connect:
    the engine's signal SUB connects and is still the server)."""
    sock.setsockopt(zmq.ZAP_DOMAIN, domain.encode())
    sock.setsockopt(zmq.CURVE_SERVER, 1)
    sock.setsockopt(zmq.CURVE_PUBLICKEY, keys.public)
    sock.setsockopt(zmq.CURVE_SECRETKEY, keys.secret)


class KeyRegistry:
    """Client public keys -> identities. Identity names must be unique."""

    def __init__(self) -> None:
        self._by_key: dict[bytes, Identity] = {}
        self._by_name: dict[str, Identity] = {}

    def __len__(self) -> int:
        return len(self._by_key)

    def add(self, public_key: bytes | str, identity: Identity) -> None:
        key = _check_key(public_key, f"public key of {identity.name}")
        if identity.name in self._by_name and self._by_key.get(key) != identity:
            raise ValueError(f"identity name {identity.name!r} already registered")
        self._by_key[key] = identity
        self._by_name[identity.name] = identity

    def remove(self, public_key: bytes | str) -> None:
        key = _check_key(public_key, "public key")
        ident = self._by_key.pop(key, None)
        if ident is not None:
            self._by_name.pop(ident.name, None)

    def by_key(self, public_key: bytes | str) -> Identity | None:
        try:
            return self._by_key.get(_check_key(public_key, "public key"))
        except ValueError:
            return None

    def by_name(self, name: str) -> Identity | None:
        return self._by_name.get(name)

    @classmethod
    def from_entries(cls, entries: Iterable[Mapping[str, Any]],
                     base_dir: str | os.PathLike[str] = ".") -> KeyRegistry:
        """Build from dicts ``{name, role, accounts, strategies, exchange, public_key |
        public_key_file}`` (``strategies``: a publisher's; ``exchange``: a gateway's)."""
        reg = cls()
        for e in entries:
            if "public_key" in e:
                key = _check_key(e["public_key"], f"public key of {e['name']}")
            else:
                key = load_public_key(Path(base_dir) / e["public_key_file"])
            role = Role[e["role"].upper()] if isinstance(e["role"], str) else Role(e["role"])
            accounts = frozenset(int(a) for a in e.get("accounts", ()))
            strategies = frozenset(int(x) for x in e.get("strategies", ()))
            reg.add(key, Identity(e["name"], role, accounts, strategies,
                                  int(e.get("exchange", -1))))
        return reg

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> KeyRegistry:
        """Load a JSON list of entries (see :meth:`from_entries`); key files are relative."""
        p = Path(path)
        return cls.from_entries(json.loads(p.read_text()), base_dir=p.parent)


class OmsAuthenticator(ThreadAuthenticator):
    """ZAP handler thread: allow registered CURVE keys whose role may use the socket's
    domain (:data:`DOMAIN_ROLES`), set User-Id to the identity name; count refusals.

    ``start()`` it before binding the CURVE server socket; ``stop()`` at shutdown.
    """

    def __init__(self, context: zmq.Context, registry: KeyRegistry,
                 domain: str = DEFAULT_DOMAIN,
                 domains: Iterable[str] | None = None) -> None:
        super().__init__(context)
        self.registry = registry
        self.domain = domain
        self.domains = tuple(domains) if domains is not None else (domain,)
        self.refused: dict[str, int] = {}  # domain -> handshakes refused

    def start(self) -> None:
        super().start()
        for d in self.domains:
            self.configure_curve_callback(d, credentials_provider=self)

    # credentials provider interface of zmq.auth
    def callback(self, domain: str, key: bytes) -> bool:
        ident = self.registry.by_key(key)
        ok = ident is not None and domain in self.domains and (
            ident.role in DOMAIN_ROLES.get(domain, frozenset({Role(r) for r in Role})))
        if not ok:
            self.refused[domain] = self.refused.get(domain, 0) + 1
        return ok

    def curve_user_id(self, client_public_key: bytes) -> str:
        ident = self.registry.by_key(zmq.utils.z85.encode(client_public_key))
        return ident.name if ident is not None else ""


def identity_of(frame: zmq.Frame, registry: KeyRegistry) -> Identity | None:
    """Return the identity of the peer that sent ``frame`` (received with ``copy=False``)."""
    try:
        name = frame.get("User-Id")
    except (zmq.ZMQError, KeyError):
        return None
    return registry.by_name(name) if name else None


def authorize(identity: Identity | None, msg_type: int, account: int | None = None,
              strategy: int | None = None) -> WireError:
    """Return OK when ``identity`` may send ``msg_type`` for ``account``, else UNAUTHORIZED.

    Which role may send which record kind is the wire spec's table (``ROLE_MAY``, the one the
    engine loop compiles in). The ids are judged here: viewers and traders act only on their
    own accounts (never ANY_ID), admins on any; a publisher signals only its own strategies.
    A gateway's orders are the engine's to check. ``account`` / ``strategy`` None: not given.
    """
    if identity is None or msg_type not in ROLE_MAY[identity.role]:
        return WireError.UNAUTHORIZED
    if identity.role in (Role.VIEWER, Role.TRADER) and account is not None and (
            account == ANY_ID or account not in identity.accounts):
        return WireError.UNAUTHORIZED
    if identity.role == Role.PUBLISHER and strategy is not None and (
            strategy not in identity.strategies):
        return WireError.UNAUTHORIZED
    return WireError.OK


__all__ = [
    "DEFAULT_DOMAIN", "DOMAIN_ROLES", "authorize", "client_keys_from_files", "CurveClientKeys",
    "CurveKeyPair", "Domain", "generate_keypair", "Identity", "identity_of", "keypair_from_env",
    "KeyRegistry", "load_keypair", "load_public_key", "make_curve_server", "OmsAuthenticator",
    "Role", "write_keypair",
]
