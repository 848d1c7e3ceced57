"""The engine's client sessions: one per ROUTER routing id, owned by the ZeroMQ sink.

Cold code: a session is made on a sender's first message (or when its routing id now carries
another identity), a HELLO sets its subscription and heartbeat, the timer ends the silent
ones and names the accounts whose open orders are then canceled (cancel on disconnect).
The per-message path (oms_core/engine/zmqio.pyx) only looks a session up.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bindings.libzmq import share_with_extensions
from bindings.security import KeyRegistry, Role
from bindings.wire import records as wire
from bindings.wire.spec import AUDIT_INSECURE
from oms_core.enums import Reject

from .entry import audit_name
from .idset import EVERY, IdSet

share_with_extensions()  # before loading zmqio, whose zmq_* symbols are pyzmq's libzmq
from .zmqio import SessionPolicy  # noqa: E402

INSECURE_SENDER = AUDIT_INSECURE.encode()


@dataclass
class Session:
    """One client connection (a ROUTER routing id)."""

    routing_id: bytes
    name: str
    role: int
    allowed: IdSet  # the accounts the identity may act on
    mask: IdSet  # accounts whose events the session receives (its own set: the loop adds)
    last_seen_ns: int
    heartbeat_ms: int
    hello: bool = False
    next_hb_ns: int = 0
    strategies: IdSet = field(default_factory=lambda: EVERY)  # a publisher: its strategies
    audit_name: bytes = INSECURE_SENDER  # who the AUDIT records of its commands name

    def __post_init__(self) -> None:
        if self.name:
            self.audit_name = audit_name(self.name)


class SessionTable(SessionPolicy):
    """The sessions by routing id, and the policy that makes and ends them.

    ``registry`` is the KeyRegistry when security is on (a session is then the identity of
    the message's CURVE key), else None (every sender is a trusted ADMIN).
    """

    def __init__(self, registry: KeyRegistry | None, configured_accounts: frozenset[int],
                 cod_accounts: frozenset[int], max_accounts: int, heartbeat_ms: int,
                 counters: dict[str, int]) -> None:
        super().__init__()
        self.registry = registry
        self.configured_accounts = configured_accounts
        self.cod_accounts = cod_accounts
        self.max_accounts = max_accounts
        self.heartbeat_ms = heartbeat_ms
        self.counters = counters

    def session_of(self, rid: bytes, user: str | None, now: int) -> Session | None:
        """The session of routing id ``rid`` (made on first sight); ``user``: the User-Id of
        the message when security is on. None: the sender's key is not (or no longer)
        registered."""
        s = self.by_routing_id.get(rid)
        if self.registry is None:
            if s is None:
                s = Session(rid, "", int(Role.ADMIN), EVERY, IdSet(capacity=self.max_accounts),
                            now, self.heartbeat_ms)
                self.by_routing_id[rid] = s
            return s
        ident = self.registry.by_name(user) if user else None
        if ident is None:
            self.counters["refused_unknown_key"] += 1
            return None
        if s is None or s.name != ident.name:
            allowed = EVERY if ident.role == Role.ADMIN else IdSet(ident.accounts)
            mask = IdSet() if ident.role == Role.ADMIN else allowed.copy()
            s = Session(rid, ident.name, int(ident.role), allowed, mask, now, self.heartbeat_ms)
            if ident.role == Role.PUBLISHER:
                s.strategies = IdSet(ident.strategies)
            self.by_routing_id[rid] = s
        return s

    def hello(self, kind: int, payload: bytes) -> tuple[int, IdSet | None]:
        """A HELLO of the current session: set its subscription (never a state change of the
        core). Returns (reject code or 0, the session's new mask)."""
        s = self.current
        if s is None:
            return int(Reject.UNKNOWN_ACCOUNT), None
        rec = wire.decode(payload)
        wanted = set(rec.accounts[: rec.n_accounts])
        if not wanted <= self.configured_accounts or not all(a in s.allowed for a in wanted):
            return int(Reject.UNKNOWN_ACCOUNT), None
        if not wanted and s.role != Role.ADMIN:  # no list: every account it may use
            wanted = {a for a in self.configured_accounts if a in s.allowed}
        s.mask = IdSet(wanted)
        s.hello = True
        if rec.heartbeat_ms:
            s.heartbeat_ms = int(rec.heartbeat_ms)
        return 0, s.mask

    def expire(self, now: int) -> list[tuple[Session, list[int]]]:
        """End the sessions silent for three heartbeat intervals; for each one that said
        HELLO, the cancel-on-disconnect accounts no live session follows any more."""
        expired = [s for s in self.by_routing_id.values()
                   if now - s.last_seen_ns > 3 * max(s.heartbeat_ms, 1) * 1_000_000]
        out: list[tuple[Session, list[int]]] = []
        for s in expired:
            del self.by_routing_id[s.routing_id]
            self.counters["sessions_expired"] += 1
            if not s.hello:
                continue  # a one-shot command ends quietly: only a HELLO arms the switch
            live: set[int] = set()
            for o in self.by_routing_id.values():
                if o.hello:
                    live.update(o.mask)
            out.append((s, sorted(set(s.mask) & self.cod_accounts - live)))
        return out

    def heartbeat_due(self, now: int) -> list[bytes]:
        """Routing ids of the sessions due a heartbeat now (their next one is scheduled)."""
        due = []
        for rid, s in self.by_routing_id.items():
            if s.hello and s.heartbeat_ms > 0 and now >= s.next_hb_ns:
                s.next_hb_ns = now + s.heartbeat_ms * 1_000_000
                due.append(rid)
        return due


__all__ = ["Session", "SessionTable", "audit_name"]
