# cython: language_level=3
"""Compiled L2 order books on fixed-depth arrays (the contract).

One :class:`L2Book` per instrument. It owns four preallocated arrays of
``level_t`` (book bids, book asks and two parse-scratch arrays), allocated once
in ``__cinit__`` and freed in ``__dealloc__``. Prices and quantities are int64
fixed-point counts at ``price_decimals`` / ``qty_decimals``.

Level storage: both sides are sorted arrays of ``level_t`` keyed so that the
BEST level is at the END (bids by ascending price, asks by ascending negated
price). Updates cluster near the top of the book, so an insert or delete moves
only the levels better than it; dropping the worst level when full is a shift
at the cold end. A diff is applied per side as ONE in-place merge: its levels are
sorted (Binance already sends them best first) and deduplicated (last wins); the
place of each in the book is found by branch-free bisections run four at a time
(they do not wait on each other, and nothing mispredicts); replace/insert/delete
is decided with flags rather than branches; then the book levels between two
updates are moved once, by the net count of inserts and deletes below them (not
at all when that is zero), and the inserted levels fill the gaps. When
a merge could overflow ``capacity`` the levels are applied one by one instead
(interpolation probe + gallop + binary search), which keeps the exact
"drop the worst level" semantics of the reference book.

Binance diff-depth sequence rules (spot):
  * until a snapshot is applied the book is not synced; the caller buffers diffs;
  * a diff with ``u <= lastUpdateId`` is dropped;
  * the first diff applied after a snapshot must satisfy
    ``U <= lastUpdateId + 1 <= u``;
  * every later diff must have ``U == previous u + 1``;
  * anything else is a gap: the book is marked unsynced and must be resynced.
"""

from libc.stdint cimport int64_t, uint64_t

# ---- structs ---------------------------------------------------------------

cdef struct level_t:
    int64_t key     # bids: fixed-point price; asks: minus the fixed-point price
    int64_t qty     # fixed-point quantity at qty_decimals

# ---- result codes (rejects are normal traffic: codes, not exceptions) -------

cpdef enum BookResult:
    BOOK_OK = 0            # diff or snapshot applied
    BOOK_STALE_DIFF = 1    # u <= lastUpdateId: dropped, harmless
    BOOK_GAP = 2           # sequence gap: book unsynced, resync needed
    BOOK_NOT_SYNCED = 3    # no snapshot yet: caller buffers the message
    BOOK_MALFORMED = 4     # message could not be parsed; book untouched
    BOOK_WRONG_SYMBOL = 5  # message is for another instrument; book untouched
    BOOK_TOO_BIG = 6       # more levels than the parse scratch holds; book untouched

# ---- the book --------------------------------------------------------------

cdef class L2Book:
    cdef:
        readonly str symbol
        """Exchange symbol, upper case (``BTCUSDT``)."""
        bytes _symbol_b
        readonly int capacity
        """Levels kept per side; worse levels are dropped."""
        readonly int price_decimals
        """Decimal places of the fixed-point price."""
        readonly int qty_decimals
        """Decimal places of the fixed-point quantity."""
        readonly int max_msg_levels
        """Most levels per side one message may carry."""
        level_t* _bids        # ascending price: best (highest) LAST
        level_t* _asks        # ascending -price: best (lowest price) LAST
        int _nb
        int _na
        level_t* _sb          # parse scratch, bids
        level_t* _sa          # parse scratch, asks
        int _snb
        int _sna
        int64_t _pU
        int64_t _pu
        int64_t _pE
        int64_t _plid
        int _pflags
        readonly int64_t last_update_id
        """Binance ``lastUpdateId`` / last applied ``u``."""
        readonly bint synced
        """True after a snapshot and until a gap."""
        bint _first_pending
        readonly int64_t event_time_ms
        """Exchange event time ``E`` of the last applied diff (ms)."""
        readonly int64_t updated_ns
        """CLOCK_MONOTONIC ns of the last applied snapshot or diff."""
        readonly uint64_t n_applied
        readonly uint64_t n_dropped
        readonly uint64_t n_gaps
        readonly uint64_t n_malformed

    cdef int _parse(self, const unsigned char* buf, Py_ssize_t n) noexcept
    cdef int _sequence(self, int64_t U, int64_t u) noexcept
    cdef void _apply_scratch(self) noexcept
    cdef void _load_snapshot(self) noexcept
    cdef int apply_depth_buf(self, const unsigned char* buf, Py_ssize_t n, int64_t now_ns) noexcept
    cdef int apply_snapshot_buf(self, const unsigned char* buf, Py_ssize_t n, int64_t now_ns) noexcept

cpdef int64_t parse_fixed(object text, int decimals) except? -1
cdef int64_t monotonic_ns() noexcept nogil
