"""Client bindings of the OMS: the wire protocol, Python clients and access control.

Strategies, operators and gateways talk to the engine over ZeroMQ with the fixed-layout
records of :mod:`bindings.wire` (C header: ``bindings/c/oms_wire.h``; docs/protocol.md).
"""

from bindings.client import (
    Ack,
    AsyncOmsClient,
    ClientAnswer,
    Names,
    OmsClient,
    OmsError,
    OmsTimeout,
    ProtocolError,
    QueryResult,
    Rejected,
    RejectedError,
    SignalResult,
    reject_reason,
)
from bindings.decimals import from_raw, to_raw
from bindings.security import (
    CurveClientKeys,
    CurveKeyPair,
    Identity,
    KeyRegistry,
    OmsAuthenticator,
    Role,
    authorize,
    generate_keypair,
)
from bindings.wire.records import CODECS, FrameBuilder, decode_frame, encode
from bindings.wire.spec import ANY_ID, AdminAction, MsgType, QueryKind, Scope, SignalMode, WireError

__all__ = [
    "ANY_ID", "CODECS", "Ack", "AdminAction", "AsyncOmsClient", "ClientAnswer",
    "CurveClientKeys", "CurveKeyPair", "FrameBuilder", "Identity", "KeyRegistry", "MsgType",
    "Names", "OmsAuthenticator", "OmsClient", "OmsError", "OmsTimeout", "ProtocolError",
    "QueryKind", "QueryResult", "Rejected", "RejectedError", "Role", "Scope", "SignalMode",
    "SignalResult", "WireError", "authorize", "decode_frame",
    "encode", "from_raw", "generate_keypair", "reject_reason", "to_raw",
]
