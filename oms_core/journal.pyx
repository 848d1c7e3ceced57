"""Append-only binary journal of engine inputs and events (see journal.pxd, docs/journal.md).

The engine loop journals through the compiled contract of :class:`JournalStage`, for each
input it applies::

    stage.c_append_input(kind, ts, p, n)     # the command / gateway record it received
    stage.c_append_events(records, n)        # the event records the input produced
    stage.c_commit()                         # before any reply goes out

(``append_input`` / ``append_event`` / ``commit`` are the same for Python callers.) For
:class:`Journal` a commit writes the group to the OS (one ``write``) and applies the durability
policy; after it the stage's :class:`SnapshotTrigger`, if any, takes a snapshot when one is
due. Records live in fixed 192-byte slots, CRC32C-checked, in segment files named
``journal-<first seq, 20 digits>.seg`` that rotate at a size. :class:`JournalReader` replays
them from any sequence number, across segments, handing out only whole commit groups.
"""

import os
import re
import struct
from collections import namedtuple

import numpy as np

cimport cython
from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_CheckExact, PyBytes_FromStringAndSize
from cpython.bytes cimport PyBytes_GET_SIZE
from cpython.mem cimport PyMem_Free, PyMem_Malloc, PyMem_Realloc
from libc.errno cimport EINTR, errno
from libc.stdint cimport int64_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.string cimport memcpy, memmove, memset
from posix.fcntl cimport O_APPEND, O_CREAT, O_RDONLY, O_WRONLY, open as c_open
from posix.time cimport CLOCK_MONOTONIC, clock_gettime, timespec
from posix.unistd cimport close as c_close, ftruncate, pread, write as c_write


cdef extern from "<unistd.h>" nogil:
    int fdatasync(int fd)


cdef extern from *:
    """
    #include <stdint.h>
    #include <string.h>
    static uint32_t oms_crc_table[8][256];
    static int oms_crc_ready = 0;
    static int oms_crc_hw = 0;

    static void oms_crc32c_init(void) {
        uint32_t i, c;
        int k, t;
        for (i = 0; i < 256; i++) {
            c = i;
            for (k = 0; k < 8; k++) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
            oms_crc_table[0][i] = c;
        }
        for (i = 0; i < 256; i++) {
            c = oms_crc_table[0][i];
            for (t = 1; t < 8; t++) {
                c = oms_crc_table[0][c & 0xff] ^ (c >> 8);
                oms_crc_table[t][i] = c;
            }
        }
    #if defined(__x86_64__) && defined(__GNUC__)
        __builtin_cpu_init();
        oms_crc_hw = __builtin_cpu_supports("sse4.2") ? 1 : 0;
    #endif
        oms_crc_ready = 1;
    }

    static uint32_t oms_crc32c_sw(uint32_t crc, const uint8_t* p, size_t n) {
        uint64_t v;
        while (n >= 8) {
            memcpy(&v, p, 8);
            v ^= crc;
            crc = oms_crc_table[7][v & 0xff] ^ oms_crc_table[6][(v >> 8) & 0xff]
                ^ oms_crc_table[5][(v >> 16) & 0xff] ^ oms_crc_table[4][(v >> 24) & 0xff]
                ^ oms_crc_table[3][(v >> 32) & 0xff] ^ oms_crc_table[2][(v >> 40) & 0xff]
                ^ oms_crc_table[1][(v >> 48) & 0xff] ^ oms_crc_table[0][v >> 56];
            p += 8;
            n -= 8;
        }
        while (n--) crc = oms_crc_table[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
        return crc;
    }

    #if defined(__x86_64__) && defined(__GNUC__)
    __attribute__((target("sse4.2")))
    static uint32_t oms_crc32c_hw(uint32_t crc, const uint8_t* p, size_t n) {
        uint64_t c = crc, v;
        while (n >= 8) {
            memcpy(&v, p, 8);
            c = __builtin_ia32_crc32di(c, v);
            p += 8;
            n -= 8;
        }
        crc = (uint32_t)c;
        while (n--) crc = __builtin_ia32_crc32qi(crc, *p++);
        return crc;
    }
    #endif

    static uint32_t oms_crc32c(const uint8_t* p, size_t n, int force_sw) {
        if (!oms_crc_ready) oms_crc32c_init();
    #if defined(__x86_64__) && defined(__GNUC__)
        if (oms_crc_hw && !force_sw) return ~oms_crc32c_hw(0xFFFFFFFFu, p, n);
    #endif
        return ~oms_crc32c_sw(0xFFFFFFFFu, p, n);
    }
    """
    uint32_t oms_crc32c(const uint8_t* p, size_t n, int force_sw) nogil


cdef uint32_t crc32c(const uint8_t* data, size_t n) noexcept nogil:
    return oms_crc32c(data, n, 0)


def crc32c_bytes(data, bint software=False):
    """Return the CRC32C of a bytes-like object (``software`` forces the table version)."""
    cdef const uint8_t[::1] mv = memoryview(data).cast("B")
    if mv.shape[0] == 0:
        return oms_crc32c(NULL, 0, software)
    return oms_crc32c(&mv[0], mv.shape[0], software)


# ---------------------------------------------------------------------------------------------
# Public constants, record view, errors
# ---------------------------------------------------------------------------------------------

SLOT_SIZE = OMS_JOURNAL_SLOT
PAYLOAD_SIZE = OMS_JOURNAL_PAYLOAD
INPUT = REC_INPUT
EVENT = REC_EVENT
SEGMENT = REC_SEGMENT
COMMIT = FLAG_COMMIT
DURABILITY = {"os": DURABILITY_OS, "group": DURABILITY_GROUP, "sync": DURABILITY_SYNC}
SEGMENT_MAGIC = b"OMSJRNL1"
FORMAT_VERSION = 1
_SEGMENT_RE = re.compile(r"^journal-(\d{20})\.seg$")
_SEG_HDR = struct.Struct("<8sIIQQq")  # magic, version, slot size, first seq, event base, ns

SLOT_DTYPE = np.dtype({
    "names": ["crc", "kind", "length", "seq", "ts", "rtype", "flags", "magic", "payload"],
    "formats": ["<u4", "<u2", "<u2", "<u8", "<i8", "u1", "u1", "<u2",
                "V%d" % OMS_JOURNAL_PAYLOAD],
    "offsets": [0, 4, 6, 8, 16, 24, 25, 26, 32],
    "itemsize": OMS_JOURNAL_SLOT,
})
"""numpy dtype of one slot, for :meth:`JournalReader.read_batch`."""

Record = namedtuple("Record", "seq rtype kind ts payload")
Record.__doc__ = "One journal record: sequence, INPUT/EVENT, kind, engine ts, payload bytes."

TailReport = namedtuple("TailReport", "path offset dropped_records dropped_bytes reason")
TailReport.__doc__ = (
    "What was dropped at the end of the journal: an uncommitted group or a torn write. "
    "``offset`` is where the good data ends in ``path``.")


class JournalError(Exception):
    """Base class of the journal's errors."""


class JournalWriteError(JournalError, OSError):
    """Writing the journal failed (disk full, file too large, I/O error): ``errno`` says why.

    The group being written is dropped (the file ends at the last commit) and the journal
    refuses every later append and commit with this error: after a failed ``write`` or
    ``fdatasync`` what the kernel holds for the file is not known, so the engine must stop
    and recover from what is on disk (docs/journal.md, "Disk full")."""


class JournalCorruptError(JournalError):
    """A record in the middle of the journal fails its checks (checksum, magic, sequence)."""

    def __init__(self, path, offset, seq, why):
        super().__init__(f"journal corrupt: {path} at byte offset {offset} "
                         f"(expected sequence {seq}): {why}")
        self.path = path
        self.offset = offset
        self.seq = seq
        self.why = why


class JournalGapError(JournalError):
    """Records are missing: a segment file was deleted or lost."""

    def __init__(self, first_missing, last_missing, before, after):
        super().__init__(f"journal gap: sequences {first_missing}..{last_missing} are missing "
                         f"(between {before or 'the start'} and {after or 'the end'}); "
                         f"a segment file is missing")
        self.first_missing = first_missing
        self.last_missing = last_missing
        self.before = before
        self.after = after


def segment_name(uint64_t first_seq):
    return "journal-%020d.seg" % first_seq


def list_segments(path):
    """Return ``[(first_seq, file path)]`` of the segment files in ``path``, sorted."""
    out = []
    try:
        names = os.listdir(path)
    except FileNotFoundError:
        return out
    for name in names:
        m = _SEGMENT_RE.match(name)
        if m:
            out.append((int(m.group(1)), os.path.join(path, name)))
    out.sort()
    return out


cdef inline int64_t _mono_ns() noexcept nogil:
    cdef timespec t
    clock_gettime(CLOCK_MONOTONIC, &t)
    return <int64_t>t.tv_sec * 1000000000 + t.tv_nsec


cdef inline bint _slot_ok(slot_t* s) noexcept nogil:
    return (s.magic == SLOT_MAGIC and s.length <= OMS_JOURNAL_PAYLOAD
            and s.crc == oms_crc32c((<const uint8_t*>s) + 4, OMS_JOURNAL_SLOT - 4, 0))


cdef int _write_all(int fd, const uint8_t* p, size_t n, str path) except -1:
    cdef ssize_t w
    while n:
        with nogil:
            w = c_write(fd, p, n)
        if w < 0:
            if errno == EINTR:
                continue
            raise JournalWriteError(errno,
                                    f"journal: write to {path} failed: {os.strerror(errno)}")
        p += w
        n -= <size_t>w
    return 0


def _read_segment_header(int fd, str path, uint64_t name_seq):
    """Check a segment's first slot; return (first_seq, event_seq_base)."""
    cdef slot_t s
    cdef ssize_t r = pread(fd, &s, OMS_JOURNAL_SLOT, 0)
    if r != OMS_JOURNAL_SLOT:
        return None
    if not _slot_ok(&s) or s.rtype != REC_SEGMENT:
        raise JournalCorruptError(path, 0, name_seq, "bad segment header")
    magic, version, slot, first, base, _ns = _SEG_HDR.unpack_from(
        PyBytes_FromStringAndSize(<char*>s.payload, _SEG_HDR.size))
    if magic != SEGMENT_MAGIC or version != FORMAT_VERSION or slot != OMS_JOURNAL_SLOT:
        raise JournalCorruptError(path, 0, name_seq,
                                  f"segment header magic/version/slot {magic!r}/{version}/{slot}")
    if first != name_seq:
        raise JournalCorruptError(path, 0, name_seq,
                                  f"segment header says first sequence {first}")
    return first, base


# ---------------------------------------------------------------------------------------------
# The journal stage
# ---------------------------------------------------------------------------------------------

cdef class SnapshotTrigger:
    """Takes a snapshot after a commit once one is due (see journal.pxd).

    Subclasses implement :meth:`snapshot` (and, for a last snapshot at a clean stop,
    :meth:`closing`); attach one with ``stage.snapshots = trigger``.
    """

    def __init__(self, uint64_t every_records=0, double every_s=0.0):
        self.every_records = every_records
        self.every_ns = <int64_t>(every_s * 1e9)
        self.last_seq = 0
        self.last_ns = _mono_ns()

    def restart(self, uint64_t seq):
        """Count from journal sequence ``seq`` and now (a snapshot was taken, or attached)."""
        self.last_seq = seq
        self.last_ns = _mono_ns()

    cdef int c_committed(self, JournalStage stage) except -1:
        cdef uint64_t seq = stage.committed_seq
        if seq == self.last_seq:
            return 0
        if (self.every_records and seq - self.last_seq >= self.every_records) or (
                self.every_ns and _mono_ns() - self.last_ns >= self.every_ns):
            self.snapshot(stage)
        return 0

    def snapshot(self, JournalStage stage):
        """Take a snapshot of the state at ``stage.committed_seq`` (a commit boundary)."""
        raise NotImplementedError

    def closing(self, JournalStage stage):
        """The stage is being closed (after its last commit)."""


cdef class JournalStage:
    """The journal as a stage of the engine loop (see journal.pxd); not used directly."""

    cdef int c_append(self, int rtype, int kind, int64_t ts, const uint8_t* data,
                      Py_ssize_t n) except -1:
        raise NotImplementedError

    cdef int _end_group(self) except -1:
        raise NotImplementedError

    cdef int c_append_input(self, int kind, int64_t ts, const uint8_t* data,
                            Py_ssize_t n) except -1:
        self.cur_ts = ts
        return self.c_append(REC_INPUT, kind, ts, data, n)

    cdef int c_append_event(self, const uint8_t* p, Py_ssize_t n) except -1:
        cdef uint16_t kind
        cdef uint64_t seq
        if n < 32:
            raise ValueError("an event record has a 32-byte header")
        memcpy(&kind, p + 4, 2)
        memcpy(&seq, p + 8, 8)
        self.c_append(REC_EVENT, kind, self.cur_ts, p, n)
        self.last_event_seq = seq
        return 0

    cdef int c_append_events(self, const uint8_t* data, Py_ssize_t n) except -1:
        cdef Py_ssize_t off = 0
        cdef uint16_t length
        while off < n:
            memcpy(&length, data + off + 6, 2)  # the wire header's record length
            if length == 0:
                raise ValueError("an event record of length 0")
            self.c_append_event(data + off, length)
            off += length
        return 0

    cdef int c_commit(self) except -1:
        self._end_group()
        if self.snapshots is not None:
            self.snapshots.c_committed(self)
        return 0

    # -- the same for Python callers (cold paths, tests) -------------------------------------

    def append_input(self, int kind, int64_t ts, payload):
        """Append one input (``kind``: wire MsgType or engine kind) received at ``ts`` ns."""
        cdef Py_buffer view
        if PyBytes_CheckExact(payload):
            self.c_append_input(kind, ts, <const uint8_t*>PyBytes_AS_STRING(payload),
                                PyBytes_GET_SIZE(payload))
            return
        PyObject_GetBuffer(payload, &view, PyBUF_SIMPLE)
        try:
            self.c_append_input(kind, ts, <const uint8_t*>view.buf, view.len)
        finally:
            PyBuffer_Release(&view)

    def append_event(self, record):
        """Append one event record (a wire record whose header seq is the event sequence)."""
        cdef Py_buffer view
        if PyBytes_CheckExact(record):
            self.c_append_event(<const uint8_t*>PyBytes_AS_STRING(record),
                                PyBytes_GET_SIZE(record))
            return
        PyObject_GetBuffer(record, &view, PyBUF_SIMPLE)
        try:
            self.c_append_event(<const uint8_t*>view.buf, view.len)
        finally:
            PyBuffer_Release(&view)

    def commit(self):
        """End the commit group (for :class:`Journal`: write it to the OS and apply the
        durability policy), then take a snapshot if one is due."""
        self.c_commit()

    def sync(self):
        """Make what was committed durable now (nothing to do unless overridden)."""

    def sync_if_due(self):
        """Sync when the durability policy's window has passed (see :class:`Journal`)."""

    def sync_due_in_ns(self):
        """Nanoseconds until :meth:`sync_if_due` has work (0: now); -1 when nothing waits."""
        return -1

    def close(self):
        """Let the snapshot trigger take its last snapshot, then close the store."""
        cdef SnapshotTrigger trigger = self.snapshots
        if trigger is not None:
            self.snapshots = None
            trigger.closing(self)
        self._close()

    def _close(self):
        pass


cdef class NullJournal(JournalStage):
    """Keeps nothing: the engine without a journal. Each call is a no-op, so the loop's
    journal stage costs one C call per input and one per batch."""

    cdef int c_append(self, int rtype, int kind, int64_t ts, const uint8_t* data,
                      Py_ssize_t n) except -1:
        return 0

    cdef int c_append_events(self, const uint8_t* data, Py_ssize_t n) except -1:
        return 0

    cdef int _end_group(self) except -1:
        return 0


cdef class MemoryJournal(JournalStage):
    """Keeps inputs and events in lists (tests; no durability); a commit marks what is
    covered: ``committed_inputs`` / ``committed_events`` of each, ``n_commits`` commits."""

    def __init__(self):
        self.inputs = []
        self.events = []

    cdef int c_append(self, int rtype, int kind, int64_t ts, const uint8_t* data,
                      Py_ssize_t n) except -1:
        cdef bytes payload = PyBytes_FromStringAndSize(<const char*>data, n)
        if rtype == REC_INPUT:
            self.inputs.append((kind, ts, payload))
        else:
            self.events.append(payload)
        self.last_seq += 1
        return 0

    cdef int _end_group(self) except -1:
        self.committed_inputs = len(self.inputs)
        self.committed_events = len(self.events)
        self.committed_seq = self.last_seq
        self.n_commits += 1
        return 0

    def _close(self):
        self.c_commit()
        self.closed = True


# ---------------------------------------------------------------------------------------------
# Writer
# ---------------------------------------------------------------------------------------------

cdef class Journal:
    """Append-only journal in ``path`` (created if missing).

    Parameters
    ----------
    path : str
        Directory of the segment files.
    durability : {"os", "group", "sync"}
        ``sync``: fdatasync at every commit. ``group``: fdatasync at a commit when the last one
        is ``group_us`` old or more (and from :meth:`sync_if_due`). ``os``: never fdatasync
        except at rotation and close; the kernel writes back when it likes.
    group_us : int
        Group-commit window for ``group``.
    segment_bytes : int
        A commit that leaves the segment at least this big rotates to a new file.
    buffer_slots : int
        Records buffered between writes; a commit group larger than this is written in parts.

    Opening an existing journal checks the last segment, truncates an uncommitted or torn
    tail (reported in :attr:`recovered`) and continues the sequence.
    """

    def __cinit__(self, str path, durability="group", int64_t group_us=1000,
                  uint64_t segment_bytes=64 << 20, uint32_t buffer_slots=1024):
        self.fd = -1
        if buffer_slots == 0:
            raise ValueError("buffer_slots must be positive")
        self.buf = <slot_t*>PyMem_Malloc(buffer_slots * sizeof(slot_t))
        if self.buf == NULL:
            raise MemoryError("Journal: cannot allocate the record buffer")
        self.buf_slots = buffer_slots

    def __init__(self, str path, durability="group", int64_t group_us=1000,
                 uint64_t segment_bytes=64 << 20, uint32_t buffer_slots=1024):
        if isinstance(durability, str):
            if durability not in DURABILITY:
                raise ValueError(f"durability must be one of {sorted(DURABILITY)}")
            durability = DURABILITY[durability]
        if durability not in (DURABILITY_OS, DURABILITY_GROUP, DURABILITY_SYNC):
            raise ValueError(f"unknown durability {durability}")
        if segment_bytes < 2 * OMS_JOURNAL_SLOT:
            raise ValueError("segment_bytes too small")
        self.path = os.path.abspath(path)
        self.durability = durability
        self.group_ns = group_us * 1000
        self.segment_bytes = segment_bytes
        os.makedirs(self.path, exist_ok=True)
        self.recovered = None
        segs = list_segments(self.path)
        if not segs:
            self._open_segment(1)
            return
        first, seg_path = segs[len(segs) - 1]
        fd = c_open(os.fsencode(seg_path), O_RDONLY)
        if fd < 0:
            raise OSError(errno, f"journal: cannot open {seg_path}")
        try:
            hdr = _read_segment_header(fd, seg_path, first)
        finally:
            c_close(fd)
        if hdr is None:
            # crashed while creating the file: nothing in it was ever committed
            self.recovered = TailReport(seg_path, 0, 0, os.path.getsize(seg_path),
                                        "segment header torn")
            os.unlink(seg_path)
            base = 0
            if len(segs) > 1:
                r = JournalReader(self.path, segs[len(segs) - 2][0], segments=[segs[len(segs) - 2]])
                for _ in r:
                    pass
                base = r.last_event_seq
            self.last_event_seq = base
            self.last_seq = self.committed_seq = first - 1
            self._open_segment(first)
            return
        reader = JournalReader(self.path, first, segments=[segs[len(segs) - 1]])
        for _ in reader:
            pass
        self.last_seq = self.committed_seq = reader.next_seq - 1
        self.last_event_seq = reader.last_event_seq
        good = (self.last_seq - first + 2) * OMS_JOURNAL_SLOT
        self.recovered = reader.tail
        fd = c_open(os.fsencode(seg_path), O_WRONLY | O_APPEND)
        if fd < 0:
            raise OSError(errno, f"journal: cannot open {seg_path} for append")
        if <uint64_t>os.fstat(fd).st_size != good:
            if ftruncate(fd, good) != 0:
                c_close(fd)
                raise OSError(errno, f"journal: cannot truncate {seg_path}")
            fdatasync(fd)
        self.fd = fd
        self.segment_path = seg_path
        self.segment_size = good
        self.n_segments = len(segs)
        self.last_sync_ns = _mono_ns()

    def __dealloc__(self):
        if self.fd >= 0:
            c_close(self.fd)
        PyMem_Free(self.buf)

    # -- appending ----------------------------------------------------------------------------

    cdef int c_append(self, int rtype, int kind, int64_t ts, const uint8_t* data,
                      Py_ssize_t n) except -1:
        if self.failure is not None:
            self._refuse()
        if self.fd < 0:
            raise JournalError("journal is closed")
        if n > OMS_JOURNAL_PAYLOAD:
            raise ValueError(f"journal payload of {n} bytes exceeds {OMS_JOURNAL_PAYLOAD}")
        if self.n_buf == self.buf_slots:
            self._write_buffer()
        cdef slot_t* s = &self.buf[self.n_buf]
        if n:
            memcpy(s.payload, data, n)
        if n < OMS_JOURNAL_PAYLOAD:
            memset(s.payload + n, 0, OMS_JOURNAL_PAYLOAD - n)
        self.last_seq += 1
        s.crc = 0
        s.kind = <uint16_t>kind
        s.length = <uint16_t>n
        s.seq = self.last_seq
        s.ts = ts
        s.rtype = <uint8_t>rtype
        s.flags = 0
        s.magic = SLOT_MAGIC
        s._pad = 0
        self.n_buf += 1
        return 0

    cdef int _end_group(self) except -1:
        if self.failure is not None:
            self._refuse()
        if self.n_buf == 0:
            if self.last_seq != self.committed_seq:
                raise JournalError("commit group was partly written but has no last record")
            return 0
        self.buf[self.n_buf - 1].flags = FLAG_COMMIT
        self._write_buffer()
        self.committed_seq = self.last_seq
        cdef int64_t now
        if self.durability == DURABILITY_SYNC:
            self._sync()
        elif self.durability == DURABILITY_GROUP:
            now = _mono_ns()
            if now - self.last_sync_ns >= self.group_ns:
                self._sync()
            else:
                self.dirty = True
        else:
            self.dirty = True
        if self.segment_size >= self.segment_bytes:
            if self.durability != DURABILITY_OS:
                self._sync()
            c_close(self.fd)
            self.fd = -1
            try:
                self._open_segment(self.last_seq + 1)
            except OSError as e:
                # the group is committed in the old segment; nothing can be appended now
                self.failure = e if isinstance(e, JournalWriteError) else JournalWriteError(
                    e.errno or 0, str(e))
                raise self.failure
        return 0

    cdef int _refuse(self) except -1:
        raise JournalWriteError(self.failure.errno or 0,
                                f"journal unusable since an earlier failure: {self.failure}")

    def abort(self):
        """Drop the records appended since the last commit (also any already written)."""
        self.n_buf = 0
        if self.last_seq != self.committed_seq:
            self._truncate_to_committed()

    def _truncate_to_committed(self):
        # the committed end of the current segment: header + committed records in it
        first = int(_SEGMENT_RE.match(os.path.basename(self.segment_path)).group(1))
        good = (self.committed_seq - first + 2) * OMS_JOURNAL_SLOT
        if ftruncate(self.fd, good) != 0:
            raise OSError(errno, f"journal: cannot truncate {self.segment_path}")
        self.segment_size = good
        self.last_seq = self.committed_seq

    def sync(self):
        """fdatasync now if committed records are not yet synced."""
        if self.dirty and self.fd >= 0:
            self._sync()

    def sync_if_due(self):
        """For DURABILITY_GROUP: fdatasync when the oldest unsynced commit is group_us old.
        Call it from a timer so a quiet journal does not keep records unsynced."""
        if self.dirty and self.fd >= 0 and _mono_ns() - self.last_sync_ns >= self.group_ns:
            self._sync()

    def sync_due_in_ns(self):
        """Nanoseconds until :meth:`sync_if_due` has work (0: now); -1 when nothing waits
        (all synced, or durability ``os``). The engine bounds its wait with it."""
        cdef int64_t left
        if not self.dirty or self.fd < 0 or self.durability == DURABILITY_OS:
            return -1
        left = self.last_sync_ns + self.group_ns - _mono_ns()
        return left if left > 0 else 0

    cdef int _write_buffer(self) except -1:
        cdef uint32_t i
        cdef slot_t* s
        cdef size_t nbytes = self.n_buf * sizeof(slot_t)
        if self.n_buf == 0:
            return 0
        with nogil:
            for i in range(self.n_buf):
                s = &self.buf[i]
                s.crc = oms_crc32c((<const uint8_t*>s) + 4, OMS_JOURNAL_SLOT - 4, 0)
        try:
            _write_all(self.fd, <const uint8_t*>self.buf, nbytes, self.segment_path)
        except OSError as e:
            # leave the file ending at the last commit, drop the group, refuse what follows
            self.failure = e
            self.n_buf = 0
            try:
                self._truncate_to_committed()
            except OSError:
                pass  # the reader drops an uncommitted tail at the next open anyway
            raise
        self.n_buf = 0
        self.segment_size += nbytes
        self.n_writes += 1
        return 0

    cdef int _sync(self) except -1:
        cdef int rc
        with nogil:
            rc = fdatasync(self.fd)
        if rc != 0:
            self.failure = JournalWriteError(
                errno, f"journal: fdatasync of {self.segment_path} failed: {os.strerror(errno)}")
            raise self.failure
        self.n_syncs += 1
        self.dirty = False
        self.last_sync_ns = _mono_ns()
        return 0

    cdef int _open_segment(self, uint64_t first_seq) except -1:
        cdef slot_t hdr
        seg_path = os.path.join(self.path, segment_name(first_seq))
        fd = c_open(os.fsencode(seg_path), O_WRONLY | O_CREAT | O_APPEND, 0o644)
        if fd < 0:
            raise JournalWriteError(errno, f"journal: cannot create {seg_path}: "
                                           f"{os.strerror(errno)}")
        memset(&hdr, 0, sizeof(slot_t))
        body = _SEG_HDR.pack(SEGMENT_MAGIC, FORMAT_VERSION, OMS_JOURNAL_SLOT, first_seq,
                             self.last_event_seq, 0)
        memcpy(hdr.payload, <const char*>body, len(body))
        hdr.length = len(body)
        hdr.seq = first_seq
        hdr.rtype = REC_SEGMENT
        hdr.flags = FLAG_COMMIT
        hdr.magic = SLOT_MAGIC
        hdr.crc = oms_crc32c((<const uint8_t*>&hdr) + 4, OMS_JOURNAL_SLOT - 4, 0)
        try:
            _write_all(fd, <const uint8_t*>&hdr, OMS_JOURNAL_SLOT, seg_path)
        except OSError:
            c_close(fd)
            os.unlink(seg_path)
            raise
        if self.durability != DURABILITY_OS:
            fdatasync(fd)
            dfd = os.open(self.path, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
        self.fd = fd
        self.segment_path = seg_path
        self.segment_size = OMS_JOURNAL_SLOT
        self.n_segments += 1
        self.last_sync_ns = _mono_ns()
        return 0

    def _close(self):
        # drop an uncommitted group, sync what was committed and close the file
        if self.fd < 0:
            return
        if self.last_seq != self.committed_seq or self.n_buf:
            self.abort()
        fdatasync(self.fd)
        c_close(self.fd)
        self.fd = -1
        self.dirty = False

    @property
    def closed(self):
        return self.fd < 0

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# ---------------------------------------------------------------------------------------------
# Reader
# ---------------------------------------------------------------------------------------------

cdef class JournalReader:
    """Iterate the committed records of a journal from sequence ``from_seq`` on.

    Iteration yields :data:`Record` tuples (payload as bytes); :meth:`read_batch` returns
    numpy arrays of slots (:data:`SLOT_DTYPE`) for bulk consumers. Only whole commit groups
    are handed out. At the end of the last segment, an uncommitted group or a torn write is
    dropped and described in :attr:`tail`; anything wrong before that raises
    :class:`JournalCorruptError` (file and byte offset named) or :class:`JournalGapError`.
    """

    def __cinit__(self, *args, **kwargs):
        self.fd = -1
        self.buf_slots = 4096
        self.buf = <slot_t*>PyMem_Malloc(self.buf_slots * sizeof(slot_t))
        if self.buf == NULL:
            raise MemoryError("JournalReader: cannot allocate the read buffer")

    def __init__(self, str path, uint64_t from_seq=1, segments=None):
        self.path = os.path.abspath(path)
        self.segments = list(segments) if segments is not None else list_segments(self.path)
        self.from_seq = from_seq if from_seq > 0 else 1
        self.next_seq = self.from_seq
        self.tail = None
        self.done = False
        self.last_event_seq = 0
        if not self.segments:
            self.done = True
            return
        # the segment holding from_seq: the last one that starts at or before it
        cdef int i, start = 0
        for i in range(len(self.segments)):
            if self.segments[i][0] <= self.from_seq:
                start = i
        if self.segments[start][0] > self.from_seq:
            raise JournalGapError(self.from_seq, self.segments[0][0] - 1, None,
                                  self.segments[0][1])
        self._open(start)

    def __dealloc__(self):
        if self.fd >= 0:
            c_close(self.fd)
        PyMem_Free(self.buf)

    @property
    def segment_files(self):
        return [p for _, p in self.segments]

    cdef int _open(self, int index) except -1:
        if self.fd >= 0:
            c_close(self.fd)
            self.fd = -1
        first, seg_path = self.segments[index]
        fd = c_open(os.fsencode(seg_path), O_RDONLY)
        if fd < 0:
            raise OSError(errno, f"journal: cannot open {seg_path}")
        self.fd = fd
        self.seg_index = index
        self.segment_path = seg_path
        self.file_size = os.fstat(fd).st_size
        cdef bint last = index == len(self.segments) - 1
        hdr = _read_segment_header(fd, seg_path, first)
        if hdr is None:
            if not last:
                raise JournalCorruptError(seg_path, 0, first, "segment shorter than its header")
            self.tail = TailReport(seg_path, 0, 0, self.file_size, "segment header torn")
            self.done = True
            return 0
        if first > self.next_seq:
            prev = self.segments[index - 1][1] if index > 0 else None
            raise JournalGapError(self.next_seq, first - 1, prev, seg_path)
        if first < self.next_seq and index > 0 and self.next_seq != self.from_seq:
            raise JournalCorruptError(seg_path, 0, self.next_seq,
                                      f"segment starts at {first}, overlapping its predecessor")
        if self.next_seq == first:
            self.last_event_seq = hdr[1]
        # jump straight to the slot of next_seq
        self.file_off = (self.next_seq - first + 1) * OMS_JOURNAL_SLOT
        self.buf_file_off = self.file_off
        self.n_loaded = 0
        self.pos = 0
        self.limit = 0
        return 0

    cdef int _fill(self) except -1:
        """Load more slots after the committed ones; check them; move ``limit``."""
        cdef uint32_t keep = self.n_loaded - self.pos
        cdef uint32_t i, scan, room
        cdef slot_t* grown
        cdef ssize_t r
        cdef uint64_t seq, want
        cdef bint last = self.seg_index == len(self.segments) - 1
        if self.pos:
            memmove(self.buf, self.buf + self.pos, keep * sizeof(slot_t))
            self.buf_file_off += self.pos * OMS_JOURNAL_SLOT
            self.n_loaded = keep
            self.pos = 0
            self.limit = 0
        if self.n_loaded == self.buf_slots:
            grown = <slot_t*>PyMem_Realloc(self.buf, 2 * self.buf_slots * sizeof(slot_t))
            if grown == NULL:
                raise MemoryError("JournalReader: cannot grow the read buffer")
            self.buf = grown
            self.buf_slots *= 2
        room = self.buf_slots - self.n_loaded
        want = self.file_size - self.file_off
        if want > <uint64_t>room * OMS_JOURNAL_SLOT:
            want = <uint64_t>room * OMS_JOURNAL_SLOT
        want -= want % OMS_JOURNAL_SLOT
        if want:
            with nogil:
                r = pread(self.fd, self.buf + self.n_loaded, want, self.file_off)
            if r < 0:
                raise OSError(errno, f"journal: read of {self.segment_path} failed")
            if <uint64_t>r != want:
                raise JournalError(f"journal: short read of {self.segment_path}")
            self.file_off += want
        # check the slots loaded but not yet committed: [keep..n_loaded) are new, but slots
        # kept from the last fill were checked already and are re-walked for the commit flag
        scan = 0
        seq = self.next_seq
        cdef uint32_t new_loaded = self.n_loaded + <uint32_t>(want // OMS_JOURNAL_SLOT)
        cdef uint32_t bad = new_loaded
        with nogil:
            for i in range(new_loaded):
                if i >= self.n_loaded and (not _slot_ok(&self.buf[i])
                                           or self.buf[i].seq != seq
                                           or self.buf[i].rtype == REC_SEGMENT):
                    bad = i
                    break
                if self.buf[i].flags & FLAG_COMMIT:
                    self.limit = i + 1
                seq += 1
        self.n_loaded = new_loaded
        if bad < new_loaded:
            off = self.buf_file_off + bad * OMS_JOURNAL_SLOT
            why = self._why(bad, self.next_seq + bad)
            if not last or self._valid_after(off + OMS_JOURNAL_SLOT):
                raise JournalCorruptError(self.segment_path, off, self.next_seq + bad, why)
            self.n_loaded = bad
            self._tail(why)
            return 0
        return 0

    def _why(self, uint32_t i, uint64_t seq):
        cdef slot_t* s = &self.buf[i]
        if s.magic != SLOT_MAGIC:
            return "bad record magic"
        if s.crc != oms_crc32c((<const uint8_t*>s) + 4, OMS_JOURNAL_SLOT - 4, 0):
            return "checksum mismatch"
        if s.length > OMS_JOURNAL_PAYLOAD:
            return "bad record length"
        if s.seq != seq:
            return f"sequence {s.seq} where {seq} was expected"
        return "unexpected segment header"

    def _valid_after(self, uint64_t off):
        """True when some slot from ``off`` to the end of the file passes its checks."""
        cdef slot_t s
        while off + OMS_JOURNAL_SLOT <= self.file_size:
            if pread(self.fd, &s, OMS_JOURNAL_SLOT, off) != OMS_JOURNAL_SLOT:
                return False
            if _slot_ok(&s) and s.rtype != REC_SEGMENT:
                return True
            off += OMS_JOURNAL_SLOT
        return False

    def _tail(self, str why):
        off = self.buf_file_off + self.limit * OMS_JOURNAL_SLOT
        dropped = (self.n_loaded - self.limit)
        self.tail = TailReport(self.segment_path, off, dropped, self.file_size - off, why)
        self.file_off = self.file_size  # nothing more to read in this (last) segment

    cdef int _advance(self) except -1:
        """Make pos < limit, or set done."""
        cdef bint last
        while self.pos >= self.limit and not self.done:
            if self.tail is not None:
                self.done = True
                break
            if self.file_off + OMS_JOURNAL_SLOT <= self.file_size:
                self._fill()
                continue
            # the whole file is read: what is left is uncommitted or a partial record
            last = self.seg_index == len(self.segments) - 1
            if self.n_loaded > self.pos or self.file_size % OMS_JOURNAL_SLOT:
                why = ("uncommitted group" if self.file_size % OMS_JOURNAL_SLOT == 0
                       else "partial record")
                if not last:
                    raise JournalCorruptError(
                        self.segment_path, self.buf_file_off + self.limit * OMS_JOURNAL_SLOT,
                        self.next_seq, f"segment ends with an {why}" if why[0] == "u"
                        else f"segment ends with a {why}")
                self._tail(why)
                continue
            if self.seg_index + 1 < len(self.segments):
                self._open(self.seg_index + 1)
            else:
                self.done = True
        return 0

    cdef slot_t* c_next(self) except? NULL:
        """Next committed slot (pointer into the reader's buffer, valid until the next call),
        or NULL at the end."""
        cdef slot_t* s
        if self.pos >= self.limit:
            self._advance()
            if self.pos >= self.limit:
                return NULL
        s = &self.buf[self.pos]
        self.pos += 1
        self.next_seq = s.seq + 1
        if s.rtype == REC_EVENT and s.length >= 16:
            memcpy(&self.last_event_seq, s.payload + 8, 8)
        return s

    def __iter__(self):
        return self

    def __next__(self):
        cdef slot_t* s = self.c_next()
        if s == NULL:
            raise StopIteration
        return Record(s.seq, s.rtype, s.kind, s.ts,
                      PyBytes_FromStringAndSize(<char*>s.payload, s.length))

    def read_batch(self, uint32_t max_records=4096):
        """Return the next committed slots as a numpy array (:data:`SLOT_DTYPE`, a copy);
        an empty array at the end."""
        cdef uint32_t n
        cdef object out
        cdef uint8_t[::1] dst
        if self.pos >= self.limit:
            self._advance()
        n = self.limit - self.pos
        if n > max_records:
            n = max_records
        out = np.empty(n, dtype=SLOT_DTYPE)
        if n == 0:
            return out
        dst = out.view(np.uint8).reshape(-1)
        memcpy(&dst[0], &self.buf[self.pos], n * sizeof(slot_t))
        self.pos += n
        cdef slot_t* s = &self.buf[self.pos - 1]
        self.next_seq = s.seq + 1
        cdef int64_t i
        for i in range(<int64_t>self.pos - 1, <int64_t>self.pos - 1 - n, -1):
            if self.buf[i].rtype == REC_EVENT:
                memcpy(&self.last_event_seq, self.buf[i].payload + 8, 8)
                break
        return out

    def close(self):
        if self.fd >= 0:
            c_close(self.fd)
            self.fd = -1
        self.done = True


def journal_end(str path):
    """Return ``(last committed seq, last event seq, TailReport or None)`` of a journal,
    reading only its last segment."""
    segs = list_segments(path)
    if not segs:
        return 0, 0, None
    r = JournalReader(path, segs[len(segs) - 1][0], segments=[segs[len(segs) - 1]])
    for _ in r:
        pass
    return r.next_seq - 1, r.last_event_seq, r.tail


# ---------------------------------------------------------------------------------------------
# Events by event sequence
# ---------------------------------------------------------------------------------------------

Event = namedtuple("Event", "seq kind ts record")
Event.__doc__ = ("One engine event: its event sequence (the record header's seq), wire "
                 "MsgType, the engine receive time of its input, the wire record (bytes).")

EventBatch = namedtuple("EventBatch", "seq kind ts length records")
EventBatch.__doc__ = (
    "Engine events in sequence order, as numpy arrays of one row per event: ``seq`` (uint64, "
    "event sequence), ``kind`` (uint16, wire MsgType), ``ts`` (int64), ``length`` (uint16, "
    "record bytes) and ``records`` ((n, PAYLOAD_SIZE) uint8: each wire record, zero padded). "
    "``records`` views a copy owned by the batch.")


def _segment_event_base(str path):
    """The event sequence a segment starts after (its header), without checking the header
    (the reader checks every segment it opens); 2**62 when the header is not there."""
    cdef slot_t s
    fd = c_open(os.fsencode(path), O_RDONLY)
    if fd < 0:
        raise OSError(errno, f"journal: cannot open {path}")
    try:
        if pread(fd, &s, OMS_JOURNAL_SLOT, 0) != OMS_JOURNAL_SLOT:
            return 1 << 62
    finally:
        c_close(fd)
    return _SEG_HDR.unpack_from(PyBytes_FromStringAndSize(<char*>s.payload, _SEG_HDR.size))[4]


class JournalEvents:
    """The engine events of the journal in ``path`` with an event sequence above ``after``
    (and at most ``upto`` when given), in order: the journal read by event sequence, for a
    consumer that keeps its position that way (the writer).

    Iterating yields :data:`Event` tuples; :meth:`batches` yields :data:`EventBatch` arrays
    for bulk consumers. Reading starts in the last segment whose header says its events begin
    at or before ``after``, so older segments are never read. Input records are skipped. A
    missing event is not an error here (the consumer compares ``seq`` with what it expects);
    a damaged journal raises as :class:`JournalReader` does, and :attr:`tail` is its ``tail``
    once the end is reached.
    """

    def __init__(self, str path, after=0, upto=None):
        self.path = path
        self.after = int(after)
        self.upto = None if upto is None else int(upto)
        self.tail = None

    def batches(self, uint32_t max_records=16384):
        """Yield :data:`EventBatch` of at most ``max_records`` journal records each."""
        segs = list_segments(self.path)
        if not segs:
            return
        first = segs[0][0]
        for seq, seg_path in segs:
            if _segment_event_base(seg_path) <= self.after:
                first = seq
        reader = JournalReader(self.path, first, segments=segs)
        last = self.after
        upto = self.upto
        try:
            while True:
                slots = reader.read_batch(max_records)
                if len(slots) == 0:
                    break
                ev = slots[slots["rtype"] == REC_EVENT]
                if len(ev) == 0:
                    continue
                raw = np.ascontiguousarray(ev).view(np.uint8).reshape(len(ev), -1)
                # the event record's header seq: payload bytes 8..16 (bindings/wire/spec.py)
                seqs = raw[:, 40:48].copy().view("<u8").ravel()
                keep = seqs > last
                if upto is not None:
                    keep &= seqs <= upto
                if not keep.any():
                    if upto is not None and seqs[0] > upto:
                        break
                    continue
                if not keep.all():
                    ev, raw, seqs = ev[keep], raw[keep], seqs[keep]
                last = int(seqs[-1])
                yield EventBatch(seqs, ev["kind"], ev["ts"], ev["length"], raw[:, 32:])
        finally:
            self.tail = reader.tail
            reader.close()

    def __iter__(self):
        for b in self.batches():
            for i in range(len(b.seq)):
                yield Event(int(b.seq[i]), int(b.kind[i]), int(b.ts[i]),
                            b.records[i, :b.length[i]].tobytes())


def events_after(str path, after=0, upto=None):
    """Return :class:`JournalEvents` of ``path`` after event sequence ``after``."""
    return JournalEvents(path, after, upto)
