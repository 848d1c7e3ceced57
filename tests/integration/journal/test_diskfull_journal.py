"""The journal itself on a full disk: ``JournalWriteError`` (an OSError with errno and file),
the file cut back to the last commit, every later append refused, and a reopen continues
the sequence once space returns. Real tmpfs (ENOSPC) when permitted, and RLIMIT_FSIZE (EFBIG).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from diskfull_fixtures import ROOT, plain_dir, rlimit_prefix, small_tmpfs, tmpfs_supported

from oms_core.journal import Journal, JournalReader

pytestmark = pytest.mark.timeout(60)

# run in the child: commit single-input groups until the journal fails, then try once more
_CHILD = r"""
import json, sys
from oms_core.journal import Journal, JournalWriteError
j = Journal(sys.argv[1], durability="sync")
ok, first, later = 0, None, []
for i in range(100000):
    try:
        j.append_input(1, i, b"x" * 100)
        j.append_event(bytes(8) + i.to_bytes(8, "little") + bytes(48))
        j.commit()
        ok += 1
    except JournalWriteError as e:
        first = [e.errno, str(e), isinstance(e, OSError), j.failure is not None]
        break
for call in (lambda: j.append_input(1, 0, b"y"), j.commit):
    try:
        call()
        later.append("accepted")
    except JournalWriteError as e:
        later.append(e.errno)
j.close()
print(json.dumps({"ok": ok, "first": first, "later": later, "committed": j.committed_seq}))
"""


@pytest.mark.parametrize("mode", ["tmpfs", "rlimit"])
def test_journal_write_failure_is_clear_and_final(tmp_path: Path, mode: str) -> None:
    if mode == "tmpfs" and (why := tmpfs_supported()):
        pytest.skip(f"tmpfs: {why} (the rlimit variant covers this host)")
    with (small_tmpfs(tmp_path / "mnt", "1m") if mode == "tmpfs"
          else plain_dir(tmp_path / "plain")) as fs:
        if mode == "tmpfs":
            (fs.outside / "filler").write_bytes(b"\0" * (256 << 10))  # freed at the end
            prefix = fs.prefix  # the journal fills the rest of the 1 MiB
        else:
            prefix = rlimit_prefix(64 << 10)
        jin = str(fs.inside / "journal")
        r = subprocess.run([*prefix, sys.executable, "-c", _CHILD, jin], cwd=ROOT,
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        res = json.loads(r.stdout)
        errno_no, msg, is_oserror, marked = res["first"]
        want = 28 if mode == "tmpfs" else 27  # ENOSPC / EFBIG
        print(f"[{mode}] {res['ok']} groups committed, then: {msg}")
        assert (errno_no, is_oserror, marked) == (want, True, True)
        assert "journal-00000000000000000001.seg" in msg
        assert res["later"] == [want, want]  # refused, not silently accepted
        assert res["ok"] > 10
        jout = str(fs.outside / "journal")
        reader = JournalReader(jout)
        recs = list(reader)
        assert reader.tail is None  # cut back to the last commit: no torn tail
        assert len(recs) == 2 * res["ok"] == res["committed"]
        if mode == "tmpfs":
            (fs.outside / "filler").unlink()
        j = Journal(jout, durability="sync")  # space back: the sequence continues
        j.append_input(1, 0, b"z")
        j.commit()
        assert j.committed_seq == res["committed"] + 1 and j.recovered is None
        j.close()
