"""The loop's entries for the inputs the engine gives itself and for trusted gateway frames.

Every sink calls these and then flushes the batch its own way: the ZeroMQ sink
(oms_core/engine/zmqio.pyx EngineSink: journal commit, then replies, gateway orders, writer
records, other sessions), the replay (replay/driver.py: events hashed and stored, GW_*
records to its venue) and the null sink of an engine without sockets (a commit).
"""

from __future__ import annotations

from typing import Any

from bindings.wire.spec import AUDIT_ENGINE, AUDIT_SENDER_BYTES, Role

from .idset import EVERY, NOBODY

ENGINE_SENDER = AUDIT_ENGINE.encode()


def audit_name(name: str) -> bytes:
    """An identity name as AUDIT records hold it (UTF-8, cut at a character boundary)."""
    b = name.encode("utf-8")
    if len(b) <= AUDIT_SENDER_BYTES:
        return b
    return b[:AUDIT_SENDER_BYTES].decode("utf-8", "ignore").encode("utf-8")


def apply_internal(loop: Any, kind: int, now: int, payload: bytes = b"",
                   audited: bool = False) -> None:
    """Begin a batch as the engine itself and apply one input live (journaled): a timer,
    mark-to-market, start of day, reconciliation or cancel-on-disconnect input.
    ``audited``: a command the engine gives itself, in the audit trail as AUDIT_ENGINE's."""
    loop.begin(int(Role.ADMIN), EVERY, NOBODY, False)
    if audited:
        loop.set_sender(ENGINE_SENDER)
    loop.apply_input(kind, now, payload, False)
    if audited:
        loop.audit_command(payload, now)


def apply_trusted_gateway_frame(loop: Any, frame: Any, now: int) -> None:
    """Begin a batch as a trusted gateway link (security off, or a venue simulated in this
    process) and apply one gateway frame."""
    loop.begin(int(Role.ADMIN), EVERY, NOBODY, False)
    loop.on_gateway_frame(frame, now)


__all__ = ["apply_internal", "apply_trusted_gateway_frame", "audit_name"]
