"""The real engine process when its journal cannot be written: no ACK for a command that is not
journaled, one ALERT, no traceback, exit status 75 (EX_TEMPFAIL), and a restart once space
returns recovers every acknowledged order and trades again.

Runs on a real 2 MiB tmpfs (ENOSPC) when this host lets the test mount one in a private mount
namespace, and always with RLIMIT_FSIZE on the engine (EFBIG). The test id says which one ran.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from diskfull_fixtures import fill, plain_dir, rlimit_prefix, small_tmpfs, tmpfs_supported

from bindings.client import OmsClient, OmsTimeout
from bindings.wire.spec import MsgType, QueryKind
from oms_core.engine import KIND_AUDIT, KIND_START_OF_DAY
from oms_core.engine.process import ROOT, EngineProcess, base_config
from oms_core.engine.server import EXIT_JOURNAL_FAILED
from oms_core.enums import Side
from oms_core.journal import INPUT, JournalReader

pytestmark = pytest.mark.timeout(90)


def _engine(cfg: dict, tmp: Path, jdir: Path, prefix: list[str]) -> EngineProcess:
    e = EngineProcess(cfg, tmp, extra_args=("--journal", str(jdir), "--no-reconcile"))
    e.args = [*prefix, *e.args]
    return e


def _order_ids(c: OmsClient) -> set[int]:
    return {r.order_id for r in c.query(QueryKind.ORDERS, account=1).rows
            if hasattr(r, "order_id") and r.order_id}


@pytest.mark.parametrize("mode", ["tmpfs", "rlimit"])
def test_engine_journal_full_no_ack_clear_exit_restart_recovers(tmp_path: Path,
                                                                mode: str) -> None:
    if mode == "tmpfs" and (why := tmpfs_supported()):
        pytest.skip(f"tmpfs: {why} (the rlimit variant covers this host)")
    cfg = base_config(tmp_path, "ipc")
    with (small_tmpfs(tmp_path / "mnt", "2m") if mode == "tmpfs"
          else plain_dir(tmp_path / "jmnt")) as fs:
        jdir_in, jdir_out = fs.inside / "journal", fs.outside / "journal"
        # rlimit: the journal segment may grow to 24 KiB (128 slots of 192 bytes)
        prefix = fs.prefix if mode == "tmpfs" else rlimit_prefix(128 * 192)
        e = _engine(cfg, tmp_path, jdir_in, prefix).start()
        acked: list[int] = []
        unacked = 0
        try:
            with OmsClient(e.endpoints["client"], account=1, strategy=1, timeout=3) as c:
                for i in range(10):
                    a = c.submit(1, Side.BUY, 10 + i, 4_990_000 - i)
                    assert a.ok
                    acked.append(a.order_id)
                if mode == "tmpfs":
                    fill(fs.outside)
                # keep submitting: once the journal cannot take a commit group, no ACK comes
                c.timeout = 2
                for i in range(200):
                    try:
                        a = c.submit(1, Side.BUY, 5, 4_980_000 - i)
                    except OmsTimeout:
                        unacked += 1
                        break
                    assert a.ok
                    acked.append(a.order_id)
            assert unacked == 1, "the journal never failed"
            e.proc.wait(20)
            out, err = e.proc.communicate(timeout=10)
        finally:
            e.kill()
        assert e.proc.returncode == EXIT_JOURNAL_FAILED, err
        errno_text = "No space left on device" if mode == "tmpfs" else "File too large"
        alerts = [ln for ln in err.splitlines() if "ALERT" in ln]
        print(f"[{mode}] engine: {len(acked)} acked, then no answer; exit "
              f"{e.proc.returncode}; alerts:", *alerts, sep="\n  ")
        assert len(alerts) == 1 and "ALERT engine" in alerts[0], err
        assert errno_text in alerts[0] and str(jdir_in) in alerts[0]
        assert "Traceback" not in err
        assert "STOPPED" in out
        # every acknowledged command is in the journal with its audit record; the unanswered
        # one is not (the engine's own start of the trading day is an input, not a command)
        journaled = [r.kind for r in JournalReader(str(jdir_out))
                     if r.rtype == INPUT and r.kind != KIND_START_OF_DAY]
        assert journaled == [MsgType.NEW_ORDER, KIND_AUDIT] * len(acked)

        # a supervisor's restart while the disk is still full: the start itself (recovery,
        # then the journaled reconciliation gate) cannot write: the same clear exit
        again = _engine(cfg, tmp_path, jdir_in, prefix)
        args = [a for a in again.args if a != "--no-reconcile"]
        r = subprocess.run(args, cwd=ROOT, env=again.env, capture_output=True, text=True,
                           timeout=60)
        assert r.returncode == EXIT_JOURNAL_FAILED, r.stderr
        assert "Traceback" not in r.stderr
        alerts2 = [ln for ln in r.stderr.splitlines() if "ALERT" in ln]
        print(f"[{mode}] restart while full: exit {r.returncode}:", *alerts2, sep="\n  ")
        assert len(alerts2) == 1 and "ALERT engine" in alerts2[0] and errno_text in alerts2[0]
        assert "READY" not in r.stdout

        # space returns (tmpfs: delete the filler; rlimit: run without the limit)
        if mode == "tmpfs":
            (fs.outside / "filler").unlink()
        e2 = _engine(cfg, tmp_path, jdir_in, fs.prefix if mode == "tmpfs" else []).start()
        try:
            with OmsClient(e2.endpoints["client"], account=1, strategy=1, timeout=5) as c:
                assert _order_ids(c) == set(acked)
                a = c.submit(1, Side.SELL, 3, 5_100_000)
                assert a.ok and a.order_id not in acked
                assert _order_ids(c) == {*acked, a.order_id}
            assert e2.stop() == 0
        finally:
            e2.kill()
        stats = e2.stats()
        assert stats["acks"] >= 1, json.dumps(stats)

