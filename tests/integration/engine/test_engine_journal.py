"""The engine process with the real journal (oms_core.journal): every input and event is on
disk at exit, and replaying the inputs into a fresh engine rebuilds the same state."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from bindings.client import OmsClient
from bindings.wire import records as wire
from bindings.wire.spec import MsgType, QueryKind
from oms_core.engine import Engine, build_core
from oms_core.engine.process import EngineProcess, base_config
from oms_core.enums import Side

journal = pytest.importorskip("oms_core.journal")
pytestmark = pytest.mark.timeout(60)


def _rows(q: object) -> list:
    return [r._replace(send_ns=0, request_id=0,
                       **({"event_ns": 0} if "event_ns" in r._fields else {}))
            for r in q.rows]  # type: ignore[attr-defined]


def test_journal_on_disk_replays_to_same_state(tmp_path: Path) -> None:
    jdir = tmp_path / "journal"
    cfg = base_config(tmp_path, "ipc")
    with EngineProcess(cfg, tmp_path, extra_args=("--journal", str(jdir))) as e:
        with OmsClient(e.endpoints["client"], account=1, strategy=1, timeout=5) as c:
            ids = [c.submit(1, Side.BUY, 10 + i, 4_990_000 - i).order_id for i in range(20)]
            assert all(ids)
            assert c.cancel(ids[3]).ok
            assert c.signal(1, 1, account=2, price=4_980_000).ok
            before = {(k, a): _rows(c.query(k, account=a)) for a in (1, 2)
                      for k in (QueryKind.ORDERS, QueryKind.POSITIONS)}
        assert e.stop() == 0
    reader = journal.JournalReader(str(jdir))
    inputs, events = [], []
    for rec in reader:
        (inputs if rec.rtype == 1 else events).append(rec)
    reader.close()
    assert [r.kind for r in inputs].count(MsgType.NEW_ORDER) == 20
    seqs = [wire.decode(r.payload).seq for r in events]
    assert seqs == list(range(1, len(seqs) + 1))
    ecfg = e.engine_config()
    fresh = Engine(build_core(ecfg), config=ecfg)
    fresh.replay((r.kind, r.ts, r.payload) for r in inputs)
    assert fresh.loop.seq == seqs[-1]
    lp = fresh.loop
    after = {}
    for a in (1, 2):
        for k in (QueryKind.ORDERS, QueryKind.POSITIONS):
            lp.begin(3, (1 << 64) - 1, 0, False)
            lp.on_client_frame(wire.encode("QUERY", 1, 1, time.time_ns(), kind=int(k),
                                           account=a, strategy=0xFFFFFFFF,
                                           instrument=0xFFFFFFFF), 0)
            recs = [r for f in lp.reply.frames() for r in wire.decode_frame(f)]
            after[(k, a)] = [r._replace(send_ns=0, request_id=0,
                                        **({"event_ns": 0} if "event_ns" in r._fields else {}))
                             for r in recs if r.msg_type != MsgType.QUERY_RESULT]
    assert after == before and len(after[(QueryKind.ORDERS, 1)]) == 20
