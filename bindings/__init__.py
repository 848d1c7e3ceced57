"""Client bindings of the OMS: the wire protocol, Python clients and access control.

Strategies, operators and gateways talk to the engine over ZeroMQ with the fixed-layout
records of :mod:`bindings.wire` (C header: ``bindings/c/oms_wire.h``; docs/protocol.md).
"""

from __future__ import annotations

import importlib
from typing import Any

# loaded on first use (PEP 562): importing the wire spec (the configuration does) must not
# import pyzmq and the clients
_SOURCES = {
    "Ack": "bindings.results",
    "AsyncOmsClient": "bindings.client",
    "ClientAnswer": "bindings.results",
    "Names": "bindings.names",
    "OmsClient": "bindings.client",
    "OmsError": "bindings.results",
    "OmsTimeout": "bindings.results",
    "ProtocolError": "bindings.results",
    "QueryResult": "bindings.results",
    "Rejected": "bindings.results",
    "RejectedError": "bindings.results",
    "SignalResult": "bindings.results",
    "reject_reason": "bindings.results",
    "from_raw": "bindings.decimals",
    "to_raw": "bindings.decimals",
    "CurveClientKeys": "bindings.security",
    "CurveKeyPair": "bindings.security",
    "Identity": "bindings.security",
    "KeyRegistry": "bindings.security",
    "OmsAuthenticator": "bindings.security",
    "Role": "bindings.security",
    "authorize": "bindings.security",
    "generate_keypair": "bindings.security",
    "CODECS": "bindings.wire.records",
    "FrameBuilder": "bindings.wire.records",
    "decode_frame": "bindings.wire.records",
    "encode": "bindings.wire.records",
    "ANY_ID": "bindings.wire.spec",
    "AdminAction": "bindings.wire.spec",
    "MsgType": "bindings.wire.spec",
    "QueryKind": "bindings.wire.spec",
    "Scope": "bindings.wire.spec",
    "SignalMode": "bindings.wire.spec",
    "WireError": "bindings.wire.spec",
}


__all__ = [
    "ANY_ID", "CODECS", "Ack", "AdminAction", "AsyncOmsClient", "ClientAnswer",
    "CurveClientKeys", "CurveKeyPair", "FrameBuilder", "Identity", "KeyRegistry", "MsgType",
    "Names", "OmsAuthenticator", "OmsClient", "OmsError", "OmsTimeout", "ProtocolError",
    "QueryKind", "QueryResult", "Rejected", "RejectedError", "Role", "Scope", "SignalMode",
    "SignalResult", "WireError", "authorize", "decode_frame",
    "encode", "from_raw", "generate_keypair", "reject_reason", "to_raw",
]


def __getattr__(name: str) -> Any:
    source = _SOURCES.get(name)
    if source is None:
        raise AttributeError(f"module 'bindings' has no attribute {name!r}")
    value = getattr(importlib.import_module(source), name)
    globals()[name] = value
    return value
