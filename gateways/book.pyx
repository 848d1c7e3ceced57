# cython: language_level=3
"""Compiled L2 order books on fixed-depth arrays; see book.pxd for the contract.

The depthUpdate / snapshot decoder parses the JSON bytes directly: it walks the
object, reads only the keys it needs, skips the rest, and parses the price and
quantity strings straight into int64 fixed point (the scanning leaves are in
jsonscan.pxi). A message is parsed fully into scratch arrays before the sequence
check, so a malformed or out-of-sequence message never leaves the book half updated.
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
from cpython.mem cimport PyMem_Calloc, PyMem_Free, PyMem_Malloc
from cpython.unicode cimport PyUnicode_AsUTF8AndSize
from libc.stdint cimport int64_t
from libc.string cimport memcmp, memmove
from posix.time cimport CLOCK_MONOTONIC, clock_gettime, timespec

# flags set by the parser for keys seen
cdef enum:
    F_U = 1
    F_u = 2
    F_B = 4
    F_A = 8
    F_LID = 16
    F_E = 32
    F_NOT_DEPTH = 64
    F_WRONG_SYM = 128
    F_TOO_BIG = 256


cdef int64_t monotonic_ns() noexcept nogil:
    cdef timespec ts
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return <int64_t>ts.tv_sec * 1000000000 + ts.tv_nsec


include "jsonscan.pxi"


# ---- level storage: sorted by key ascending, best level LAST -----------------

cdef inline int _lower_bound(const level_t* a, int n, int64_t key) noexcept:
    cdef int lo = 0, hi = n - 1, g, step
    cdef int64_t span = a[hi].key - a[0].key, off = key - a[0].key
    if span < 0x7FFFFFFF:
        g = <int>((off * (n - 1)) // span)
    else:
        g = n >> 1
    if g <= 0:
        g = 1
    elif g >= n - 1:
        g = n - 2
    step = 1
    if a[g].key < key:
        lo = g
        while True:
            g = lo + step
            if g >= hi:
                break
            if a[g].key >= key:
                hi = g
                break
            lo = g
            step <<= 1
    else:
        hi = g
        while True:
            g = hi - step
            if g <= lo:
                break
            if a[g].key < key:
                lo = g
                break
            hi = g
            step <<= 1
    while hi - lo > 1:
        g = (lo + hi) >> 1
        if a[g].key < key:
            lo = g
        else:
            hi = g
    return hi


cdef void _set_level(level_t* a, int* pn, int cap, int64_t key, int64_t qty) noexcept:
    # Set, replace or (qty == 0) delete the level `key`; when full, a new level better
    # than the worst (a[0]) evicts it, a worse one is ignored.
    cdef int n = pn[0], pos
    if n == 0 or key > a[n - 1].key:
        pos = n                      # new best (the most common insert)
    elif key <= a[0].key:
        pos = 0
    elif n == 1:
        pos = 0 if key <= a[0].key else 1
    else:
        pos = _lower_bound(a, n, key)
    if pos < n and a[pos].key == key:
        if qty == 0:
            memmove(&a[pos], &a[pos + 1], (n - pos - 1) * sizeof(level_t))
            pn[0] = n - 1
        else:
            a[pos].qty = qty
        return
    if qty == 0:
        return
    if n == cap:
        if pos == 0:
            return                   # worse than the worst kept level
        memmove(&a[0], &a[1], (pos - 1) * sizeof(level_t))
        a[pos - 1].key = key
        a[pos - 1].qty = qty
        return
    memmove(&a[pos + 1], &a[pos], (n - pos) * sizeof(level_t))
    a[pos].key = key
    a[pos].qty = qty
    pn[0] = n + 1


cdef inline int _lb(const level_t* a, int n, int64_t key) noexcept:
    # First index r in [0, n] with a[r].key >= key. Branch-free bisection: the loop runs
    # the same number of times for every key of a message and the halving is a
    # conditional move, so the searches of one message do not wait on each other or on
    # a mispredicted branch; the CPU overlaps them.
    cdef const level_t* b = a
    cdef int half
    if n == 0:
        return 0
    while n > 1:
        half = n >> 1
        b = b + half if b[half].key < key else b
        n -= half
    return <int>(b - a) + (b[0].key < key)


cdef void _lb_all(const level_t* a, int n, const level_t* u, int k, int* pos) noexcept:
    # pos[j] = _lb(a, n, u[j].key) for j < k, four keys per pass: the four bisections
    # take the same steps, so they run side by side.
    cdef const level_t* b0
    cdef const level_t* b1
    cdef const level_t* b2
    cdef const level_t* b3
    cdef int64_t k0, k1, k2, k3
    cdef int j = 0, w, half
    if n == 0:
        for j in range(k):
            pos[j] = 0
        return
    while j + 4 <= k:
        k0 = u[j].key
        k1 = u[j + 1].key
        k2 = u[j + 2].key
        k3 = u[j + 3].key
        b0 = b1 = b2 = b3 = a
        w = n
        while w > 1:
            half = w >> 1
            b0 = b0 + half if b0[half].key < k0 else b0
            b1 = b1 + half if b1[half].key < k1 else b1
            b2 = b2 + half if b2[half].key < k2 else b2
            b3 = b3 + half if b3[half].key < k3 else b3
            w -= half
        pos[j] = <int>(b0 - a) + (b0[0].key < k0)
        pos[j + 1] = <int>(b1 - a) + (b1[0].key < k1)
        pos[j + 2] = <int>(b2 - a) + (b2[0].key < k2)
        pos[j + 3] = <int>(b3 - a) + (b3[0].key < k3)
        j += 4
    while j < k:
        pos[j] = _lb(a, n, u[j].key)
        j += 1


cdef void _apply_side(level_t* a, int* pn, int cap, level_t* u, int m) noexcept:
    # Apply m updates u (in message order; reordered in place) to one side a[0..n).
    #
    # In-place merge: the book levels between two consecutive (sorted) updates form a
    # segment that moves by the net count of inserts minus deletes below it. The place
    # of every update is found first (independent searches); one pass then classifies
    # them (replace, insert, delete) without branching and records the segments; the
    # segments moving down are moved in ascending order and those moving up in
    # descending order (so no move overwrites a level not yet moved), and the inserted
    # levels are written into the gaps left. Each book level moves at most once, and
    # segments with a zero net shift do not move at all.
    cdef int n = pn[0], i, j, k, r, c, ns, s, ex, dl, ins
    cdef level_t x
    cdef int pos[64]          # where each update lands in the book before the merge
    cdef int seg_s[129]       # segment start (old index)
    cdef int seg_e[129]       # segment end (old index, exclusive)
    cdef int seg_c[129]       # its shift
    cdef int ins_at[64]       # final index of each inserted level
    cdef int ins_u[64]        # which update it is
    cdef int ni = 0
    if m == 0:
        return
    if n + m > cap or m > 64:
        # May reach capacity (order then matters) or too many to insertion-sort.
        for i in range(m):
            _set_level(a, pn, cap, u[i].key, u[i].qty)
        return
    # Sort ascending by key, stable, so the last of equal keys stays last. Binance sends
    # each side best first (keys descending): reversing that is the common case.
    for i in range(1, m):
        if u[i].key >= u[i - 1].key:
            break
    else:
        i = m
    if i == m:
        for j in range(m >> 1):
            x = u[j]
            u[j] = u[m - 1 - j]
            u[m - 1 - j] = x
    else:
        for i in range(1, m):
            x = u[i]
            j = i - 1
            while j >= 0 and u[j].key > x.key:
                u[j + 1] = u[j]
                j -= 1
            u[j + 1] = x
    # Deduplicate: keep the last of each run of equal keys.
    k = 0
    for i in range(m):
        if i + 1 < m and u[i + 1].key == u[i].key:
            continue
        u[k] = u[i]
        k += 1
    pos[0] = 0        # k >= 1 here; this only quiets a compiler warning
    _lb_all(a, n, u, k, pos)
    # Pass 1: classify each update, replace quantities in place, record segments. Whether
    # a price exists and whether its quantity is zero are coin flips to a branch
    # predictor, so flags and selects are used. a[n] may be read and written: n + m <= cap
    # keeps it inside the array, beyond the book.
    s = pos[0]        # start of the current segment
    c = 0             # net shift of the current segment
    ns = 0
    for j in range(k):
        r = pos[j]
        ex = (a[r].key == u[j].key) & (r < n)
        dl = ex & (u[j].qty == 0)
        ins = (ex ^ 1) & (u[j].qty != 0)
        a[r].qty = u[j].qty if ex else a[r].qty    # replace (a deleted level is moved over)
        # the segment below r ends at a delete or an insert: recorded every time,
        # kept (ns advances) only then
        seg_s[ns] = s
        seg_e[ns] = r
        seg_c[ns] = c
        ns += dl | ins
        ins_at[ni] = r + c
        ins_u[ni] = j
        ni += ins
        c += ins - dl
        s = r + 1 if dl else (r if ins else s)
    seg_s[ns] = s                      # the levels above the last update
    seg_e[ns] = n
    seg_c[ns] = c
    ns += 1
    # Pass 2: move segments down in ascending order, then up in descending order.
    for j in range(ns):
        if seg_c[j] < 0 and seg_e[j] > seg_s[j]:
            memmove(&a[seg_s[j] + seg_c[j]], &a[seg_s[j]],
                    (seg_e[j] - seg_s[j]) * sizeof(level_t))
    for j in range(ns - 1, -1, -1):
        if seg_c[j] > 0 and seg_e[j] > seg_s[j]:
            memmove(&a[seg_s[j] + seg_c[j]], &a[seg_s[j]],
                    (seg_e[j] - seg_s[j]) * sizeof(level_t))
    # Pass 3: the inserted levels fill the gaps.
    for j in range(ni):
        a[ins_at[j]] = u[ins_u[j]]
    pn[0] = n + c


cdef bint _load_sorted(level_t* a, int* pn, int cap, const level_t* src, int m) noexcept:
    # Fast snapshot load when src is strictly best-first (keys strictly descending) with
    # no zero quantity; returns False, leaving a unspecified, otherwise.
    cdef int i, n
    for i in range(m):
        if src[i].qty == 0 or (i > 0 and src[i].key >= src[i - 1].key):
            return False
    n = m if m < cap else cap
    for i in range(n):
        a[n - 1 - i] = src[i]
    pn[0] = n
    return True


cdef class L2Book:
    """L2 book of one instrument on fixed-depth, preallocated arrays.

    Parameters
    ----------
    symbol : str
        Exchange symbol; messages for another ``"s"`` are refused.
    price_decimals, qty_decimals : int
        Fixed-point precision of prices and quantities (0..18).
    capacity : int
        Levels kept per side (worse levels are dropped).
    max_msg_levels : int
        Most levels per side one message (snapshot or diff) may carry.
    """

    def __cinit__(self, str symbol, int price_decimals, int qty_decimals,
                  int capacity=1000, int max_msg_levels=5000):
        if capacity < 1 or max_msg_levels < 1:
            raise ValueError("capacity and max_msg_levels must be >= 1")
        if not (0 <= price_decimals <= 18 and 0 <= qty_decimals <= 18):
            raise ValueError("decimals must be within 0..18")
        self.symbol = symbol.upper()
        self._symbol_b = self.symbol.encode("ascii")
        self.capacity = capacity
        self.max_msg_levels = max_msg_levels
        self.price_decimals = price_decimals
        self.qty_decimals = qty_decimals
        # zeroed: a merge may read the slot just past the book (see _apply_side)
        self._bids = <level_t*>PyMem_Calloc(capacity, sizeof(level_t))
        self._asks = <level_t*>PyMem_Calloc(capacity, sizeof(level_t))
        self._sb = <level_t*>PyMem_Malloc(max_msg_levels * sizeof(level_t))
        self._sa = <level_t*>PyMem_Malloc(max_msg_levels * sizeof(level_t))
        if self._bids == NULL or self._asks == NULL or self._sb == NULL or self._sa == NULL:
            raise MemoryError()
        self._nb = 0
        self._na = 0
        self.synced = False
        self.last_update_id = -1

    def __dealloc__(self):
        PyMem_Free(self._bids)
        PyMem_Free(self._asks)
        PyMem_Free(self._sb)
        PyMem_Free(self._sa)

    # ---- parsing -----------------------------------------------------------

    cdef int _parse(self, const unsigned char* buf, Py_ssize_t n) noexcept:
        """Parse a depthUpdate, a combined-stream wrapper or a REST snapshot into scratch.

        Returns 0 on success, -1 when malformed; sets _pflags.
        """
        cdef const unsigned char* p = buf
        cdef const unsigned char* e = buf + n
        cdef const unsigned char* k
        cdef const unsigned char* q
        cdef Py_ssize_t klen
        cdef int too_big = 0
        cdef int depth = 0
        self._pflags = 0
        self._snb = 0
        self._sna = 0
        p = _ws(p, e)
        if p >= e or p[0] != 123:
            return -1
        p += 1
        while True:
            p = _ws(p, e)
            if p < e and p[0] == 125:  # '}' (empty object or after a wrapper)
                p += 1
                if depth == 0:
                    return 0
                depth -= 1
                p = _ws(p, e)
                if p < e and p[0] == 44:
                    p += 1
                    continue
                if p < e and p[0] == 125:
                    continue
                return 0 if depth == 0 else -1
            if p >= e or p[0] != 34:
                return -1
            k = p + 1
            q = _skip_str(p, e)
            if q == NULL:
                return -1
            klen = (q - 1) - k
            p = _ws(q, e)
            if p >= e or p[0] != 58:
                return -1
            p = _ws(p + 1, e)
            if klen == 1:
                if k[0] == 85:  # U
                    p = _int(p, e, &self._pU)
                    self._pflags |= F_U
                elif k[0] == 117:  # u
                    p = _int(p, e, &self._pu)
                    self._pflags |= F_u
                elif k[0] == 98:  # b
                    p = _levels(p, e, self.price_decimals, self.qty_decimals, 1, self._sb,
                                self.max_msg_levels, &self._snb, &too_big)
                    self._pflags |= F_B
                elif k[0] == 97:  # a
                    p = _levels(p, e, self.price_decimals, self.qty_decimals, -1, self._sa,
                                self.max_msg_levels, &self._sna, &too_big)
                    self._pflags |= F_A
                elif k[0] == 69:  # E
                    p = _int(p, e, &self._pE)
                    self._pflags |= F_E
                elif k[0] == 115:  # s
                    q = _skip_str(p, e) if (p < e and p[0] == 34) else NULL
                    if q != NULL and ((q - p - 2) != len(self._symbol_b) or memcmp(
                            p + 1, PyBytes_AS_STRING(self._symbol_b), q - p - 2) != 0):
                        self._pflags |= F_WRONG_SYM
                    p = q
                elif k[0] == 101:  # e
                    q = _skip_str(p, e) if (p < e and p[0] == 34) else NULL
                    if q != NULL and ((q - p) != 13 or memcmp(p + 1, b"depthUpdate", 11) != 0):
                        self._pflags |= F_NOT_DEPTH
                    p = q
                else:
                    p = _skip(p, e, 0)
            elif klen == 4 and memcmp(k, b"bids", 4) == 0:
                p = _levels(p, e, self.price_decimals, self.qty_decimals, 1, self._sb,
                            self.max_msg_levels, &self._snb, &too_big)
                self._pflags |= F_B
            elif klen == 4 and memcmp(k, b"asks", 4) == 0:
                p = _levels(p, e, self.price_decimals, self.qty_decimals, -1, self._sa,
                            self.max_msg_levels, &self._sna, &too_big)
                self._pflags |= F_A
            elif klen == 4 and memcmp(k, b"data", 4) == 0 and depth == 0:
                if p >= e or p[0] != 123:
                    return -1
                depth = 1
                p += 1
                continue
            elif klen == 12 and memcmp(k, b"lastUpdateId", 12) == 0:
                p = _int(p, e, &self._plid)
                self._pflags |= F_LID
            else:
                p = _skip(p, e, 0)
            if p == NULL:
                if too_big:
                    self._pflags |= F_TOO_BIG
                return -1
            p = _ws(p, e)
            if p >= e:
                return -1
            if p[0] == 44:
                p += 1
                continue
            if p[0] != 125:
                return -1

    # ---- sequence and apply ------------------------------------------------

    cdef int _sequence(self, int64_t U, int64_t u) noexcept:
        if not self.synced:
            return BOOK_NOT_SYNCED
        if u <= self.last_update_id:
            self.n_dropped += 1
            return BOOK_STALE_DIFF
        if self._first_pending:
            if not (U <= self.last_update_id + 1 <= u):
                self.synced = False
                self.n_gaps += 1
                return BOOK_GAP
        elif U != self.last_update_id + 1:
            self.synced = False
            self.n_gaps += 1
            return BOOK_GAP
        return BOOK_OK

    cdef void _apply_scratch(self) noexcept:
        _apply_side(self._bids, &self._nb, self.capacity, self._sb, self._snb)
        _apply_side(self._asks, &self._na, self.capacity, self._sa, self._sna)

    cdef void _load_snapshot(self) noexcept:
        # Binance lists each side best first, strictly, without zero quantities; then the
        # book is simply the first `capacity` levels, written in place back to front.
        # Anything else (duplicates, zeros, other order) goes level by level through
        # _set_level so the result is exactly that of applying the levels in order.
        cdef int i
        self._nb = 0
        self._na = 0
        if not _load_sorted(self._bids, &self._nb, self.capacity, self._sb, self._snb):
            self._nb = 0
            for i in range(self._snb):
                _set_level(self._bids, &self._nb, self.capacity, self._sb[i].key,
                           self._sb[i].qty)
        if not _load_sorted(self._asks, &self._na, self.capacity, self._sa, self._sna):
            self._na = 0
            for i in range(self._sna):
                _set_level(self._asks, &self._na, self.capacity, self._sa[i].key,
                           self._sa[i].qty)

    cdef int apply_depth_buf(self, const unsigned char* buf, Py_ssize_t n,
                             int64_t now_ns) noexcept:
        cdef int rc
        if self._parse(buf, n) != 0:
            self.n_malformed += 1
            return BOOK_TOO_BIG if self._pflags & F_TOO_BIG else BOOK_MALFORMED
        if self._pflags & F_WRONG_SYM:
            return BOOK_WRONG_SYMBOL
        if (self._pflags & (F_U | F_u | F_B | F_A)) != (F_U | F_u | F_B | F_A) \
                or self._pflags & F_NOT_DEPTH or self._pU > self._pu:
            self.n_malformed += 1
            return BOOK_MALFORMED
        rc = self._sequence(self._pU, self._pu)
        if rc != BOOK_OK:
            return rc
        self._apply_scratch()
        self.last_update_id = self._pu
        self._first_pending = False
        if self._pflags & F_E:
            self.event_time_ms = self._pE
        self.updated_ns = now_ns if now_ns else monotonic_ns()
        self.n_applied += 1
        return BOOK_OK

    cdef int apply_snapshot_buf(self, const unsigned char* buf, Py_ssize_t n,
                                int64_t now_ns) noexcept:
        if self._parse(buf, n) != 0:
            self.n_malformed += 1
            return BOOK_TOO_BIG if self._pflags & F_TOO_BIG else BOOK_MALFORMED
        if (self._pflags & (F_LID | F_B | F_A)) != (F_LID | F_B | F_A):
            self.n_malformed += 1
            return BOOK_MALFORMED
        self._load_snapshot()
        self.last_update_id = self._plid
        self.synced = True
        self._first_pending = True
        self.updated_ns = now_ns if now_ns else monotonic_ns()
        return BOOK_OK

    # ---- Python API --------------------------------------------------------

    def apply_depth_update(self, bytes msg, int64_t now_ns=0):
        """Decode a Binance ``depthUpdate`` (bare or combined-stream) and apply it.

        Returns a :class:`BookResult` code as a plain int (compare with ``BookResult``
        members); the book is untouched unless BOOK_OK.
        """
        return self.apply_depth_buf(
            <const unsigned char*>PyBytes_AS_STRING(msg), PyBytes_GET_SIZE(msg), now_ns)

    def apply_snapshot(self, bytes msg, int64_t now_ns=0):
        """Replace the book with a REST ``/api/v3/depth`` snapshot and mark it synced.

        Returns a :class:`BookResult` code as a plain int.
        """
        return self.apply_snapshot_buf(
            <const unsigned char*>PyBytes_AS_STRING(msg), PyBytes_GET_SIZE(msg), now_ns)

    def apply_levels(self, int64_t first_id, int64_t last_id, list bids, list asks,
                     int64_t event_time_ms=0, int64_t now_ns=0):
        """Apply an already-decoded diff (``U``, ``u``, lists of [price, qty] strings).

        This is the orjson path; prices and quantities are still parsed here.
        """
        cdef int rc
        cdef Py_ssize_t i
        if len(bids) > self.max_msg_levels or len(asks) > self.max_msg_levels:
            return BookResult.BOOK_TOO_BIG
        try:
            for i in range(len(bids)):
                self._sb[i].key = parse_fixed(bids[i][0], self.price_decimals)
                self._sb[i].qty = parse_fixed(bids[i][1], self.qty_decimals)
            for i in range(len(asks)):
                self._sa[i].key = -parse_fixed(asks[i][0], self.price_decimals)
                self._sa[i].qty = parse_fixed(asks[i][1], self.qty_decimals)
        except (ValueError, TypeError, IndexError):
            self.n_malformed += 1
            return BookResult.BOOK_MALFORMED
        self._snb = len(bids)
        self._sna = len(asks)
        if first_id > last_id:
            self.n_malformed += 1
            return BookResult.BOOK_MALFORMED
        rc = self._sequence(first_id, last_id)
        if rc != BOOK_OK:
            return <BookResult>rc
        self._apply_scratch()
        self.last_update_id = last_id
        self._first_pending = False
        if event_time_ms:
            self.event_time_ms = event_time_ms
        self.updated_ns = now_ns if now_ns else monotonic_ns()
        self.n_applied += 1
        return BookResult.BOOK_OK

    def invalidate(self):
        """Mark the book unsynced (e.g. the stream dropped); levels are kept for inspection."""
        self.synced = False

    def clear(self):
        """Drop all levels and mark the book unsynced."""
        self._nb = 0
        self._na = 0
        self.synced = False
        self.last_update_id = -1

    def age_ns(self, int64_t now_ns=0):
        """Nanoseconds since the last applied update (CLOCK_MONOTONIC)."""
        return (now_ns if now_ns else monotonic_ns()) - self.updated_ns

    @property
    def n_bids(self):
        return self._nb

    @property
    def n_asks(self):
        return self._na

    def top(self):
        """Return ``(bid_px, bid_qty, ask_px, ask_qty)``; 0 for an empty side."""
        cdef int nb = self._nb, na = self._na
        return (self._bids[nb - 1].key if nb else 0,
                self._bids[nb - 1].qty if nb else 0,
                -self._asks[na - 1].key if na else 0,
                self._asks[na - 1].qty if na else 0)

    @property
    def best_bid(self):
        """Best bid ``(price, qty)`` or None."""
        return (self._bids[self._nb - 1].key, self._bids[self._nb - 1].qty) if self._nb else None

    @property
    def best_ask(self):
        """Best ask ``(price, qty)`` or None."""
        return (-self._asks[self._na - 1].key, self._asks[self._na - 1].qty) if self._na else None

    def bids(self, int n=-1):
        """Copy of the best ``n`` bid levels (all when n < 0) as (price, qty), best first."""
        cdef int i, top = self._nb - 1, m = self._nb if n < 0 or n > self._nb else n
        return [(self._bids[top - i].key, self._bids[top - i].qty) for i in range(m)]

    def asks(self, int n=-1):
        """Copy of the best ``n`` ask levels (all when n < 0) as (price, qty), best first."""
        cdef int i, top = self._na - 1, m = self._na if n < 0 or n > self._na else n
        return [(-self._asks[top - i].key, self._asks[top - i].qty) for i in range(m)]

    def __repr__(self):
        return (f"L2Book({self.symbol!r}, synced={self.synced}, "
                f"lastUpdateId={self.last_update_id}, top={self.top()})")


cpdef int64_t parse_fixed(object text, int decimals) except? -1:
    """Parse a decimal string (str or bytes, no sign/exponent) into int64 fixed point.

    Raises ValueError when malformed or finer than ``decimals``.
    """
    cdef const char* s
    cdef Py_ssize_t n
    cdef int64_t out = 0
    cdef const unsigned char* p
    cdef const unsigned char* e
    if decimals < 0 or decimals > 18:
        raise ValueError("decimals must be within 0..18")
    if isinstance(text, str):
        s = PyUnicode_AsUTF8AndSize(text, &n)
    elif isinstance(text, bytes):
        s = PyBytes_AS_STRING(text)
        n = PyBytes_GET_SIZE(text)
    else:
        raise TypeError("expected str or bytes")
    # _fixed wants quotes around the number; scan the bare text with a local copy
    p = <const unsigned char*>s
    e = p + n
    cdef int64_t v = 0
    cdef int frac = 0, nd = 0
    while p < e and 48 <= p[0] <= 57:
        if v > _MAX_MANT:
            raise ValueError("number too large")
        v = v * 10 + (p[0] - 48)
        nd += 1
        p += 1
    if p < e and p[0] == 46:
        p += 1
        while p < e and 48 <= p[0] <= 57:
            if frac < decimals:
                if v > _MAX_MANT:
                    raise ValueError("number too large")
                v = v * 10 + (p[0] - 48)
                frac += 1
            elif p[0] != 48:
                raise ValueError("more precision than the instrument allows")
            nd += 1
            p += 1
    if nd == 0 or p != e:
        raise ValueError("malformed decimal")
    if frac < decimals:
        if v > _MAX_MANT // _POW10[decimals - frac]:
            raise ValueError("number too large")
        v *= _POW10[decimals - frac]
    out = v
    return out


def format_fixed(int64_t value, int decimals):
    """Format an int64 fixed-point value as a decimal string (edge use only)."""
    if decimals == 0:
        return str(value)
    sign = "-" if value < 0 else ""
    v = -value if value < 0 else value
    whole = v // _POW10[decimals]
    frac = v - whole * _POW10[decimals]
    return f"{sign}{whole}.{frac:0{decimals}d}"
