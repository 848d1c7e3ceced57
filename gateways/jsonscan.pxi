# JSON scanning leaves of the book's decoder, included textually by book.pyx.
#
# Pure-C functions over a byte range [p, e): each returns the position after what it
# read, or NULL on malformed input; prices and quantities are quoted decimal strings
# read straight into int64 fixed point. Included rather than cimported so the C is the
# same as when the leaves lived in book.pyx: in a .pxd every leaf would have to be
# `inline`, and that changes the C compiler's inlining (the larger leaves get inlined
# where they are cold, and the small hot ones in L2Book._parse then no longer are).

from libc.stdint cimport int64_t, uint64_t

cdef int64_t _MAX_MANT = 900000000000000000  # keep value * 10 below 2**63

cdef int64_t[19] _POW10
_POW10[0] = 1
for _i in range(1, 19):
    _POW10[_i] = _POW10[_i - 1] * 10


cdef inline const unsigned char* _ws(const unsigned char* p,
                                     const unsigned char* e) noexcept:
    # one compare in the common (no whitespace) case: every JSON whitespace is <= ' '
    while p < e and p[0] <= 32 and (p[0] == 32 or p[0] == 10 or p[0] == 13 or p[0] == 9):
        p += 1
    return p


cdef const unsigned char* _int(const unsigned char* p, const unsigned char* e,
                               int64_t* out) noexcept:
    cdef int64_t v = 0
    cdef bint neg = False
    cdef const unsigned char* s
    if p < e and p[0] == 45:  # '-'
        neg = True
        p += 1
    s = p
    while p < e and 48 <= p[0] <= 57:
        if v > _MAX_MANT:
            return NULL
        v = v * 10 + (p[0] - 48)
        p += 1
    if p == s:
        return NULL
    out[0] = -v if neg else v
    return p


cdef const unsigned char* _fixed(const unsigned char* p, const unsigned char* e,
                                 int decimals, int64_t sign, int64_t* out) noexcept:
    # "123.4500" -> 1234500 at 4 decimals (times sign); digits past `decimals` must be
    # zero. One pass, no per-digit overflow test: the digits are summed in uint64 (which
    # wraps harmlessly) and the count of significant digits decides overflow at the end.
    cdef uint64_t v = 0
    cdef unsigned int d
    cdef int sig = 0      # significant digits summed into v
    cdef int frac = 0     # fraction digits summed into v
    cdef const unsigned char* s
    if p >= e or p[0] != 34:  # '"'
        return NULL
    p += 1
    s = p
    while p < e and p[0] == 48:  # leading zeros carry no value
        p += 1
    while p < e:
        d = p[0] - 48
        if d > 9:
            break
        v = v * 10 + d
        sig += 1
        p += 1
    if p < e and p[0] == 46:  # '.'
        p += 1
        while p < e:
            d = p[0] - 48
            if d > 9:
                break
            if frac < decimals:
                v = v * 10 + d
                frac += 1
                sig += 1
            elif d != 0:
                return NULL  # precision finer than the instrument's: refuse
            p += 1
        if p - s == 1:
            return NULL  # a lone "."
    if p == s or p >= e or p[0] != 34:
        return NULL
    sig += decimals - frac
    if sig > 19:
        return NULL
    v *= <uint64_t>_POW10[decimals - frac]
    if v > <uint64_t>0x7FFFFFFFFFFFFFFF:
        return NULL
    out[0] = sign * <int64_t>v
    return p + 1


cdef inline const unsigned char* _fixed_fast(const unsigned char* p,
                                             const unsigned char* e, int decimals,
                                             int64_t sign, int64_t* out) noexcept:
    # The shape exchanges send, in few instructions: "<1..18 digits>.<digits>" with at
    # least `decimals` fraction digits (any more must be zeros) and a value that cannot
    # overflow (integer digits + decimals <= 18). Returns NULL for ANY other input,
    # valid or not; the caller then asks _fixed, which has the final word. Small, so it
    # is inlined where it is called; _fixed is not.
    cdef uint64_t v = 0
    cdef unsigned int d, bad = 0
    cdef const unsigned char* s
    cdef const unsigned char* lim
    cdef int i
    if e - p <= 20 or p[0] != 34:  # reads below stay within p[0..20]
        return NULL
    p += 1
    s = p
    lim = p + 18 - decimals
    while p < lim:
        d = p[0] - 48
        if d > 9:
            break
        v = v * 10 + d
        p += 1
    if p == s or p[0] != 46:  # no integer digits, too many, or no '.'
        return NULL
    p += 1
    for i in range(decimals):  # a loop of known length: one flag, no branch per digit
        d = p[i] - 48
        bad |= d > 9
        v = v * 10 + d
    if bad:
        return NULL
    p += decimals
    while p < e and p[0] == 48:  # zeros past the instrument's precision
        p += 1
    if p >= e or p[0] != 34:
        return NULL
    out[0] = sign * <int64_t>v
    return p + 1


cdef const unsigned char* _skip_str(const unsigned char* p,
                                    const unsigned char* e) noexcept:
    # p at the opening quote
    p += 1
    while p < e:
        if p[0] == 92:  # backslash
            p += 2
            continue
        if p[0] == 34:
            return p + 1
        p += 1
    return NULL


cdef const unsigned char* _skip(const unsigned char* p, const unsigned char* e,
                                int depth) noexcept:
    cdef unsigned char c, close
    p = _ws(p, e)
    if p >= e or depth > 32:
        return NULL
    c = p[0]
    if c == 34:
        return _skip_str(p, e)
    if c == 123 or c == 91:  # { or [
        close = 125 if c == 123 else 93
        p = _ws(p + 1, e)
        if p < e and p[0] == close:
            return p + 1
        while True:
            if c == 123:
                p = _ws(p, e)
                if p >= e or p[0] != 34:
                    return NULL
                p = _skip_str(p, e)
                if p == NULL:
                    return NULL
                p = _ws(p, e)
                if p >= e or p[0] != 58:
                    return NULL
                p += 1
            p = _skip(p, e, depth + 1)
            if p == NULL:
                return NULL
            p = _ws(p, e)
            if p >= e:
                return NULL
            if p[0] == 44:
                p += 1
                continue
            if p[0] == close:
                return p + 1
            return NULL
    # number or literal: run to a delimiter
    if not (c == 45 or 48 <= c <= 57 or c == 116 or c == 102 or c == 110):
        return NULL
    while p < e and p[0] != 44 and p[0] != 125 and p[0] != 93 and p[0] != 32 \
            and p[0] != 10 and p[0] != 13 and p[0] != 9:
        p += 1
    return p


cdef const unsigned char* _levels(const unsigned char* p, const unsigned char* e,
                                  int pdec, int qdec, int64_t sign, level_t* out, int cap,
                                  int* count, int* too_big) noexcept:
    # [["price","qty"], ...]  (extra elements in a level are skipped); key = sign * price
    cdef int n = 0
    cdef const unsigned char* q
    cdef const unsigned char* r
    p = _ws(p, e)
    if p >= e or p[0] != 91:
        return NULL
    p = _ws(p + 1, e)
    if p < e and p[0] == 93:
        count[0] = 0
        return p + 1
    while True:
        if p >= e or p[0] != 91:
            return NULL
        if n >= cap:
            too_big[0] = 1
            return NULL
        # Fast path for the compact form Binance sends: ["price","qty"] then , or ]
        q = _fixed_fast(p + 1, e, pdec, sign, &out[n].key)
        if q == NULL:
            q = _fixed(p + 1, e, pdec, sign, &out[n].key)
        if q != NULL and q + 2 < e and q[0] == 44 and q[1] == 34:
            r = q + 1
            q = _fixed_fast(r, e, qdec, 1, &out[n].qty)
            if q == NULL:
                q = _fixed(r, e, qdec, 1, &out[n].qty)
            if q != NULL and q + 1 < e and q[0] == 93:
                n += 1
                if q[1] == 44:
                    p = q + 2
                    if p < e and p[0] == 91:
                        continue
                    p = _ws(p, e)
                    continue
                if q[1] == 93:
                    count[0] = n
                    return q + 2
        # General path: whitespace, extra fields
        p = _fixed(_ws(p + 1, e), e, pdec, sign, &out[n].key)
        if p == NULL:
            return NULL
        p = _ws(p, e)
        if p >= e or p[0] != 44:
            return NULL
        p = _fixed(_ws(p + 1, e), e, qdec, 1, &out[n].qty)
        if p == NULL:
            return NULL
        p = _ws(p, e)
        while p < e and p[0] == 44:  # tolerate extra fields
            p = _skip(p + 1, e, 0)
            if p == NULL:
                return NULL
            p = _ws(p, e)
        if p >= e or p[0] != 93:
            return NULL
        n += 1
        p = _ws(p + 1, e)
        if p >= e:
            return NULL
        if p[0] == 44:
            p = _ws(p + 1, e)
            continue
        if p[0] == 93:
            count[0] = n
            return p + 1
        return NULL
