"""Each client command's AUDIT record names the account, strategy and instrument the command
carries, wherever its record type keeps them (the wire spec's offsets, generated into the C
header): ids chosen apart so that one field read for another shows."""

from __future__ import annotations

import pytest
from minimal_engine import engine_config

from bindings.wire import records as wire
from bindings.wire.spec import ANY_ID, AdminAction, MsgType, Role, Scope
from oms_core.engine import Engine, build_core
from oms_core.engine.idset import EVERY, NOBODY

IDS = dict(account=2, strategy=7, instrument=9)
UNKNOWN_ORDER = 123_456
COMMANDS = [  # (record, the (account, strategy, instrument) its AUDIT row must name)
    (wire.encode("NEW_ORDER", 1, 0, 0, client_order_id=5, price=4_999_000, quantity=3,
                 side=1, order_type=2, tif=1, **IDS), (2, 7, 9)),
    (wire.encode("CANCEL", 2, 0, 0, order_id=UNKNOWN_ORDER, account=2), (2, ANY_ID, ANY_ID)),
    (wire.encode("REPLACE", 3, 0, 0, order_id=UNKNOWN_ORDER, price=1, quantity=1, account=2),
     (2, ANY_ID, ANY_ID)),
    (wire.encode("MASS_CANCEL", 4, 0, 0, **IDS), (2, 7, 9)),
    (wire.encode("NEW_BRACKET", 5, 0, 0, entry_client_order_id=10, tp_client_order_id=11,
                 sl_client_order_id=12, entry_price=4_990_000, quantity=1, tp_price=5_100_000,
                 sl_trigger_price=4_800_000, side=1, entry_type=2, tif=1, **IDS), (2, 7, 9)),
    (wire.encode("NEW_OCO", 6, 0, 0, a_client_order_id=8, b_client_order_id=9, quantity=1,
                 a_price=4_990_000, b_trigger_price=4_900_000, a_type=2, b_type=3, tif=1,
                 side=1, **IDS), (2, 7, 9)),
    (wire.encode("SIGNAL", 7, 0, 0, value=1, mode=1, **IDS), (2, 7, 9)),
    (wire.encode("ADMIN", 8, 0, 0, action=int(AdminAction.SET_LIMIT), scope=int(Scope.ACCOUNT),
                 account=2, strategy=7, value=1), (2, 7, ANY_ID)),
    (wire.encode("HELLO", 9, 0, 0, n_accounts=1, accounts=(2,)), (ANY_ID, ANY_ID, ANY_ID)),
]


@pytest.mark.parametrize(("record", "ids"), COMMANDS,
                         ids=[MsgType(wire.decode_header(r).msg_type).name for r, _ in COMMANDS])
def test_the_audit_row_names_the_ids_the_command_carries(record: bytes,
                                                         ids: tuple[int, int, int]) -> None:
    cfg = engine_config()
    engine = Engine(build_core(cfg), config=cfg)
    loop = engine.loop
    loop.begin(int(Role.ADMIN), EVERY, NOBODY, False)
    loop.set_sender(b"tester")
    loop.on_client_frame(record, 1_000)
    audit = [r for f in loop.wr.frames() for r in wire.decode_frame(f)
             if r.msg_type == MsgType.AUDIT]
    assert len(audit) == 1
    a = audit[0]
    assert (a.cmd_type, a.account, a.strategy, a.instrument) == (
        wire.decode_header(record).msg_type, *ids)
