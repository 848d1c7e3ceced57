"""Journal: format, rotation, reading from a sequence, and damage detection (real files)."""

from __future__ import annotations

import os

import numpy as np
import pytest

from bindings.wire.records import encode
from oms_core import journal as J

SLOT = J.SLOT_SIZE


def _fill(path, groups: int, durability: str = "os", segment_slots: int = 40) -> None:
    j = J.Journal(str(path), durability=durability, segment_bytes=SLOT * segment_slots)
    ev = 0
    for i in range(1, groups + 1):
        j.append_input(3, 1_000 + i, encode("NEW_ORDER", request_id=i, client_order_id=i,
                                            quantity=5))
        for _ in range(2):
            ev += 1
            j.append_event(encode("ORDER_UPDATE", seq=ev, order_id=i))
        j.commit()
    j.close()


def test_crc32c_known_answer_hw_and_sw() -> None:
    assert J.crc32c_bytes(b"123456789") == 0xE3069283
    assert J.crc32c_bytes(b"123456789", software=True) == 0xE3069283
    data = os.urandom(1000)
    assert J.crc32c_bytes(data) == J.crc32c_bytes(data, software=True)


def test_roundtrip_rotation_and_from_seq(tmp_path) -> None:
    _fill(tmp_path, 100)
    segs = J.list_segments(str(tmp_path))
    assert len(segs) > 5
    recs = list(J.JournalReader(str(tmp_path)))
    assert [r.seq for r in recs] == list(range(1, 301))
    assert recs[0].rtype == J.INPUT and recs[0].kind == 3 and recs[0].ts == 1001
    assert recs[1].rtype == J.EVENT and recs[1].kind == 66
    assert len(recs[0].payload) == 96
    # start in the middle of a later segment
    tail = list(J.JournalReader(str(tmp_path), 250))
    assert [r.seq for r in tail] == list(range(250, 301))
    # bulk reading gives the same slots
    r = J.JournalReader(str(tmp_path))
    seqs = []
    while True:
        b = r.read_batch(64)
        if len(b) == 0:
            break
        seqs.extend(b["seq"].tolist())
    assert seqs == list(range(1, 301))
    assert r.last_event_seq == 200
    assert J.journal_end(str(tmp_path))[:2] == (300, 200)


def test_reopen_continues_sequence(tmp_path) -> None:
    _fill(tmp_path, 10)
    j = J.Journal(str(tmp_path), durability="sync")
    assert (j.last_seq, j.last_event_seq, j.recovered) == (30, 20, None)
    j.append_input(4, 5, b"abc")
    j.commit()
    assert j.n_syncs >= 1
    j.close()
    assert [r.seq for r in J.JournalReader(str(tmp_path))][-1] == 31


def test_uncommitted_group_is_dropped_and_reported(tmp_path) -> None:
    _fill(tmp_path, 3)
    j = J.Journal(str(tmp_path), buffer_slots=1)
    j.append_input(3, 9, b"x" * 96)
    j.append_event(encode("ACK", seq=7))  # the buffer of one slot forces the input to disk
    j.append_event(encode("ACK", seq=8))
    # crash here: no commit. Simulate by dropping the object without close
    del j
    r = J.JournalReader(str(tmp_path))
    assert [x.seq for x in r] == list(range(1, 10))
    assert r.tail is not None and r.tail.dropped_records == 2
    assert "uncommitted" in r.tail.reason
    j = J.Journal(str(tmp_path))
    assert j.last_seq == 9 and j.recovered is not None
    j.close()
    assert J.JournalReader(str(tmp_path)).tail is None or True


def test_torn_last_record_dropped(tmp_path) -> None:
    _fill(tmp_path, 5, segment_slots=1000)
    (_, seg), = J.list_segments(str(tmp_path))
    size = os.path.getsize(seg)
    with open(seg, "r+b") as f:
        f.truncate(size - 50)  # the last record is half written
    r = J.JournalReader(str(tmp_path))
    recs = list(r)
    # the whole last group goes, never a part of it
    assert [x.seq for x in recs] == list(range(1, 13))
    assert r.tail.reason == "partial record"
    assert r.tail.offset == 13 * SLOT
    j = J.Journal(str(tmp_path))
    assert j.last_seq == 12 and os.path.getsize(seg) == 13 * SLOT
    j.close()


def test_torn_garbage_tail_dropped(tmp_path) -> None:
    _fill(tmp_path, 5, segment_slots=1000)
    (_, seg), = J.list_segments(str(tmp_path))
    with open(seg, "r+b") as f:
        f.seek(-SLOT, 2)
        f.write(b"\0" * SLOT)  # last record never reached the disk
    r = J.JournalReader(str(tmp_path))
    assert [x.seq for x in r][-1] == 12
    assert r.tail.reason == "bad record magic"


def test_corrupted_record_in_middle_names_file_and_offset(tmp_path) -> None:
    _fill(tmp_path, 5, segment_slots=1000)
    (_, seg), = J.list_segments(str(tmp_path))
    off = 4 * SLOT + 40  # record seq 4, inside its payload
    with open(seg, "r+b") as f:
        f.seek(off)
        f.write(b"\xff")
    with pytest.raises(J.JournalCorruptError) as e:
        list(J.JournalReader(str(tmp_path)))
    assert e.value.path == seg and e.value.offset == 4 * SLOT and e.value.seq == 4
    assert "checksum" in str(e.value) and seg in str(e.value)
    with pytest.raises(J.JournalCorruptError):
        J.Journal(str(tmp_path))  # never append after a corrupt record


def test_corruption_in_older_segment(tmp_path) -> None:
    _fill(tmp_path, 50)
    segs = J.list_segments(str(tmp_path))
    with open(segs[1][1], "r+b") as f:
        f.seek(3 * SLOT + 100)
        f.write(b"\x01")
    with pytest.raises(J.JournalCorruptError) as e:
        list(J.JournalReader(str(tmp_path)))
    assert e.value.path == segs[1][1]


def test_missing_segment_is_a_gap(tmp_path) -> None:
    _fill(tmp_path, 50)
    segs = J.list_segments(str(tmp_path))
    os.unlink(segs[2][1])
    with pytest.raises(J.JournalGapError) as e:
        list(J.JournalReader(str(tmp_path)))
    assert e.value.first_missing == segs[2][0]
    assert e.value.last_missing == segs[3][0] - 1
    assert "missing" in str(e.value)
    os.unlink(segs[0][1])
    with pytest.raises(J.JournalGapError):
        J.JournalReader(str(tmp_path), 1)


def test_oversized_payload_and_closed(tmp_path) -> None:
    j = J.Journal(str(tmp_path))
    with pytest.raises(ValueError):
        j.append_input(3, 1, b"x" * (J.PAYLOAD_SIZE + 1))
    j.close()
    with pytest.raises(J.JournalError):
        j.append_input(3, 1, b"x")


def test_abort_drops_group(tmp_path) -> None:
    j = J.Journal(str(tmp_path), buffer_slots=2)
    j.append_input(3, 1, b"a")
    j.commit()
    for _ in range(5):
        j.append_input(3, 2, b"b")
    j.abort()
    j.append_input(3, 3, b"c")
    j.commit()
    j.close()
    recs = list(J.JournalReader(str(tmp_path)))
    assert [(r.seq, r.payload) for r in recs] == [(1, b"a"), (2, b"c")]


def test_group_policy_syncs_in_windows(tmp_path) -> None:
    j = J.Journal(str(tmp_path), durability="group", group_us=10_000_000)
    for i in range(100):
        j.append_input(3, i, b"x")
        j.commit()
    assert j.n_syncs <= 1 and j.dirty
    j.sync()
    assert not j.dirty
    j.close()
    assert np.all(np.diff([r.seq for r in J.JournalReader(str(tmp_path))]) == 1)


def test_events_after_reads_by_event_sequence_from_the_right_segment(tmp_path) -> None:
    _fill(tmp_path, 100)  # 300 records: one input and two events (seq 2i-1, 2i) per group
    want = {r.payload[8:16]: r for r in J.JournalReader(str(tmp_path)) if r.rtype == J.EVENT}
    assert len(want) == 200
    got = list(J.events_after(str(tmp_path), 150))
    assert [e.seq for e in got] == list(range(151, 201))
    for e in got:
        rec = want[e.seq.to_bytes(8, "little")]
        assert (e.kind, e.ts, e.record) == (rec.kind, rec.ts, rec.payload)
    assert [e.seq for e in J.events_after(str(tmp_path), 0, upto=7)] == list(range(1, 8))
    assert list(J.events_after(str(tmp_path), 200)) == []
    # batches: the same events as arrays, whatever the batch size
    events = J.events_after(str(tmp_path), 37, upto=180)
    seqs, kinds = [], []
    for b in events.batches(16):
        assert b.records.shape == (len(b.seq), J.PAYLOAD_SIZE)
        assert (b.records[:, 8:16].copy().view("<u8").ravel() == b.seq).all()
        seqs += b.seq.tolist()
        kinds += b.kind.tolist()
    assert seqs == list(range(38, 181)) and set(kinds) == {66}
    assert events.tail is None


def test_events_after_skips_older_segments_and_reports_the_tail(tmp_path) -> None:
    _fill(tmp_path, 100)
    segs = J.list_segments(str(tmp_path))
    with open(segs[0][1], "r+b") as f:  # damage the first segment in the middle
        f.seek(3 * SLOT + 40)
        f.write(b"\xff" * 8)
    with pytest.raises(J.JournalCorruptError):
        list(J.events_after(str(tmp_path), 0))
    # events after 150 begin in a later segment: the damaged one is never read
    assert [e.seq for e in J.events_after(str(tmp_path), 150)] == list(range(151, 201))
    os.remove(segs[0][1])  # its events are missing: the consumer sees where they resume
    first = next(iter(J.events_after(str(tmp_path), 0))).seq
    assert 1 < first <= 150
    with open(segs[-1][1], "ab") as f:
        f.write(b"\x01" * 100)  # a torn write at the end
    events = J.events_after(str(tmp_path), 190)
    assert [e.seq for e in events] == list(range(191, 201))
    assert events.tail is not None and events.tail.reason == "partial record"
