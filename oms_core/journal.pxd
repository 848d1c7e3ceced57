# Journal: the engine's append-only binary log of inputs and events, in fixed 192-byte slots
# spread over segment files that rotate at a size. See docs/journal.md for the format, the
# durability policies and what each can lose.
#
# One slot (little-endian, natural alignment, 192 bytes):
#
#   off  type     field    meaning
#     0  u32      crc      CRC32C of bytes [4, 192)
#     4  u16      kind     wire MsgType of the payload, or an engine-internal kind (>= 192)
#     6  u16      length   payload bytes used (0..160); the rest is zero
#     8  u64      seq      journal sequence number, gap free from 1 across segments
#    16  i64      ts       engine receive timestamp of the input the record belongs to, ns
#    24  u8       rtype    REC_INPUT, REC_EVENT or REC_SEGMENT (first slot of each file)
#    25  u8       flags    FLAG_COMMIT on the last record of a commit group
#    26  u16      magic    SLOT_MAGIC
#    28  u32      _pad     zero
#    32  u8[160]  payload  the wire record (inputs: the command / gateway record; events: the
#                          event record whose header seq is the engine's event sequence)

from libc.stdint cimport int64_t, uint8_t, uint16_t, uint32_t, uint64_t


cdef extern from *:
    """
    #define OMS_JOURNAL_SLOT 192
    #define OMS_JOURNAL_PAYLOAD 160
    """
    enum:
        OMS_JOURNAL_SLOT
        OMS_JOURNAL_PAYLOAD


# ---------------------------------------------------------------------------------------------
# Record layout
# ---------------------------------------------------------------------------------------------

ctypedef struct slot_t:
    uint32_t crc
    uint16_t kind
    uint16_t length
    uint64_t seq
    int64_t ts
    uint8_t rtype
    uint8_t flags
    uint16_t magic
    uint32_t _pad
    uint8_t payload[OMS_JOURNAL_PAYLOAD]


cdef enum:
    REC_INPUT = 1
    REC_EVENT = 2
    REC_SEGMENT = 3
    FLAG_COMMIT = 1
    SLOT_MAGIC = 0x4A4F           # bytes "OJ"


cdef enum Durability:
    DURABILITY_OS = 0             # write() at commit; the kernel flushes when it likes
    DURABILITY_GROUP = 1          # write() at commit; fdatasync at most every group_ns
    DURABILITY_SYNC = 2           # write() + fdatasync at every commit


# CRC32C (Castagnoli) of n bytes; SSE4.2 instruction when the CPU has it, else a table.
cdef uint32_t crc32c(const uint8_t* data, size_t n) noexcept nogil


# ---------------------------------------------------------------------------------------------
# The journal stage: what the engine loop journals through
# ---------------------------------------------------------------------------------------------

cdef class JournalStage


cdef class SnapshotTrigger:
    """Run after each commit of the stage it is attached to (``JournalStage.snapshots``):
    calls ``snapshot(stage)`` (a Python method of the subclass) once ``every_records`` journal
    records or ``every_ns`` of monotonic time have passed since ``last_seq`` / ``last_ns``
    (0 turns a trigger off). The due check is C; only a due snapshot calls Python."""
    cdef public uint64_t every_records
    cdef public int64_t every_ns
    cdef public uint64_t last_seq
    """Journal sequence of the last snapshot taken (or of the attachment)."""
    cdef public int64_t last_ns
    """CLOCK_MONOTONIC ns of the last snapshot taken (or of the attachment)."""

    cdef int c_committed(self, JournalStage stage) except -1


cdef class JournalStage:
    """The journal as a stage of the engine loop. The loop calls ``c_append_input`` for each
    input it journals, ``c_append_events`` with its packed event records, then ``c_commit``
    before anything is sent. Implementations: :class:`Journal` (segment files),
    :class:`MemoryJournal` (lists, tests), :class:`NullJournal` (keeps nothing)."""
    cdef readonly uint64_t last_seq
    """Sequence of the last record appended."""
    cdef readonly uint64_t committed_seq
    """Sequence of the last record of the last commit."""
    cdef readonly uint64_t last_event_seq
    """Engine event sequence of the last event appended (the event record header's seq)."""
    cdef int64_t cur_ts
    """Engine receive time of the input being journaled: the ts of its event records."""
    cdef readonly object failure
    """The JournalWriteError that made the journal refuse further writes, else None."""
    cdef public SnapshotTrigger snapshots
    """Run after every commit (None: no snapshots)."""

    # the store: what each implementation provides
    cdef int c_append(self, int rtype, int kind, int64_t ts, const uint8_t* data,
                      Py_ssize_t n) except -1
    cdef int _end_group(self) except -1
    """Make the records appended since the last commit one committed group."""
    # the contract the loop calls (common to every implementation)
    cdef int c_append_input(self, int kind, int64_t ts, const uint8_t* data,
                            Py_ssize_t n) except -1
    cdef int c_append_event(self, const uint8_t* p, Py_ssize_t n) except -1
    cdef int c_append_events(self, const uint8_t* data, Py_ssize_t n) except -1
    """Append the wire records packed back to back in ``data[0:n]`` as events."""
    cdef int c_commit(self) except -1
    """End the commit group, then run the snapshot trigger."""


cdef class NullJournal(JournalStage):
    """Keeps nothing: the engine without a journal (offline tools, benchmarks, tests)."""


cdef class MemoryJournal(JournalStage):
    cdef readonly list inputs
    """``(kind, ts, payload bytes)`` of every input appended."""
    cdef readonly list events
    """Every event record appended (bytes)."""
    cdef readonly Py_ssize_t committed_inputs
    cdef readonly Py_ssize_t committed_events
    cdef readonly uint64_t n_commits
    cdef readonly bint closed


# ---------------------------------------------------------------------------------------------
# Writer
# ---------------------------------------------------------------------------------------------

cdef class Journal(JournalStage):
    cdef readonly str path
    """Directory holding the segment files."""
    cdef readonly int durability
    """A Durability value."""
    cdef readonly int64_t group_ns
    """DURABILITY_GROUP: longest time committed records may stay unsynced, ns."""
    cdef readonly uint64_t segment_bytes
    """Rotate to a new segment after a commit once the file is at least this big."""
    cdef slot_t* buf
    """Records appended since the last write(); owned, allocated once."""
    cdef uint32_t buf_slots
    cdef uint32_t n_buf
    cdef int fd
    cdef readonly str segment_path
    cdef uint64_t segment_size
    cdef int64_t last_sync_ns
    cdef readonly uint64_t n_syncs
    cdef readonly uint64_t n_writes
    cdef readonly uint64_t n_segments
    cdef readonly bint dirty
    """Committed records written to the OS but not yet fdatasync'd."""
    cdef readonly object recovered
    """What opening found at the tail of the last segment (a TailReport)."""

    cdef int _write_buffer(self) except -1
    cdef int _sync(self) except -1
    cdef int _open_segment(self, uint64_t first_seq) except -1
    cdef int _refuse(self) except -1


# ---------------------------------------------------------------------------------------------
# Reader
# ---------------------------------------------------------------------------------------------

cdef class JournalReader:
    cdef readonly str path
    cdef list segments            # [(first_seq, file path)], sorted
    cdef int seg_index
    cdef int fd
    cdef readonly str segment_path
    cdef uint64_t file_size
    cdef uint64_t file_off        # next byte of the file to read into buf
    cdef slot_t* buf              # owned; grows only when one commit group outsizes it
    cdef uint32_t buf_slots
    cdef uint32_t n_loaded        # slots in buf
    cdef uint32_t pos             # next slot to hand out
    cdef uint32_t limit           # slots [pos, limit) are checked and committed
    cdef uint64_t buf_file_off    # file offset of buf[0]
    cdef readonly uint64_t next_seq
    cdef readonly uint64_t from_seq
    cdef readonly uint64_t last_event_seq
    """Engine event sequence of the last event handed out (or the segment's base)."""
    cdef readonly object tail
    """A TailReport when the journal ended in a torn or uncommitted tail, else None."""
    cdef bint done

    cdef int _open(self, int index) except -1
    cdef int _fill(self) except -1
    cdef int _advance(self) except -1
    cdef slot_t* c_next(self) except? NULL
