"""Live bars of each strategy's interval, built from every venue trade the engine hears.

Signals are sized and priced on bars (``oms_core/signals.py``: the open of the current bar or
the close of the previous one, volatility over the last ``vol_window`` bar closes). In a replay
the data are bars already. Live, every GW_MARKET_DATA a gateway flags ``MdFlag.TRADE`` (its
``last`` is a new venue trade) updates, in the engine loop, the bar of each interval that its
engine receive time falls in: a bar's open is its first trade, its close its last, high and low
kept beside. An interval without a trade makes no bar. The market data are journaled inputs
with that receive time, so recovery rebuilds the same bars (``docs/signals.md``).
"""

from cpython.mem cimport PyMem_Free, PyMem_Malloc
from libc.stdint cimport INT64_MIN, int64_t, uint32_t
from libc.string cimport memset

BARS_KEPT = 1024  # completed closes kept per instrument and interval


class BarView:
    """What a signal at ``ts`` sees of one instrument's bars of one interval."""

    __slots__ = ("open", "prev_close", "closes")

    def __init__(self, open: int, prev_close: int, closes: list) -> None:
        self.open = open  # open of the bar ``ts`` falls in (the price now before its first trade)
        self.prev_close = prev_close  # close of the previous bar (the price now before one ended)
        self.closes = closes  # closes of the completed bars, oldest first

    def __eq__(self, other: object) -> bool:
        return isinstance(other, BarView) and (self.open, self.prev_close, self.closes) == (
            other.open, other.prev_close, other.closes)

    def __repr__(self) -> str:
        return f"BarView(open={self.open}, prev_close={self.prev_close}, closes={self.closes})"


cdef class LiveBars:
    """Bars of every interval in ``intervals_ns`` for instruments ``0 .. n_instruments - 1``.

    Parameters
    ----------
    intervals_ns : iterable of int
        Bar intervals in ns (duplicates are one series).
    n_instruments : int
        Instrument ids below this have bars; trades of others are ignored.
    kept : int
        Completed closes kept per instrument and interval.
    """

    def __cinit__(self, intervals_ns, uint32_t n_instruments, uint32_t kept=BARS_KEPT):
        ivs = sorted({int(x) for x in intervals_ns})
        if any(x <= 0 for x in ivs):
            raise ValueError("a bar interval must be positive")
        if kept == 0:
            raise ValueError("kept must be positive")
        self.n_intervals = len(ivs)
        self.n_instruments = n_instruments
        self.kept = kept
        cdef size_t n = <size_t>self.n_intervals * n_instruments
        self.intervals = <int64_t*>PyMem_Malloc(max(self.n_intervals, 1) * sizeof(int64_t))
        self.bars = <bar_t*>PyMem_Malloc(max(n, 1) * sizeof(bar_t))
        self.closes = <int64_t*>PyMem_Malloc(max(n * kept, 1) * sizeof(int64_t))
        if self.intervals == NULL or self.bars == NULL or self.closes == NULL:
            raise MemoryError()
        for i, x in enumerate(ivs):
            self.intervals[i] = x
        self._clear()

    def __dealloc__(self):
        PyMem_Free(self.intervals)
        PyMem_Free(self.bars)
        PyMem_Free(self.closes)

    cdef void _clear(self) noexcept:
        cdef size_t i, n = <size_t>self.n_intervals * self.n_instruments
        memset(self.bars, 0, n * sizeof(bar_t))
        for i in range(n):
            self.bars[i].index = -1
            self.bars[i].end = INT64_MIN  # every trade is after it
        self.n_trades = 0

    cdef void c_trade(self, uint32_t instrument, int64_t ts, int64_t price) noexcept nogil:
        cdef uint32_t i
        cdef int64_t index
        cdef bar_t* b
        if instrument >= self.n_instruments or price <= 0:
            return
        self.n_trades += 1
        for i in range(self.n_intervals):
            b = &self.bars[i * self.n_instruments + instrument]
            if ts < b.end:  # this bar (a clock step back stays in it)
                b.close = price
                if price > b.high:
                    b.high = price
                elif price < b.low:
                    b.low = price
                continue
            index = ts // self.intervals[i]
            if b.index >= 0:  # a later interval: the bar before it is complete
                self.closes[(<size_t>(i * self.n_instruments + instrument)) * self.kept
                            + b.head] = b.close
                b.head = (b.head + 1) % self.kept
                if b.count < self.kept:
                    b.count += 1
            b.index = index
            b.end = (index + 1) * self.intervals[i]
            b.open = b.high = b.low = b.close = price

    cdef int _series(self, int64_t interval_ns, uint32_t instrument) except -2:
        cdef uint32_t i
        if instrument >= self.n_instruments:
            return -1
        for i in range(self.n_intervals):
            if self.intervals[i] == interval_ns:
                return i * self.n_instruments + instrument
        return -1

    # -- cold: what signals read, snapshots, tests
    @property
    def intervals_ns(self) -> list:
        return [self.intervals[i] for i in range(self.n_intervals)]

    def trade(self, uint32_t instrument, int64_t ts, int64_t price) -> None:
        """Apply one venue trade (what the engine loop does for a TRADE record)."""
        self.c_trade(instrument, ts, price)

    def seen(self, int64_t interval_ns, uint32_t instrument) -> bool:
        """Whether ``instrument`` has traded since these bars began (at ``interval_ns``)."""
        cdef int s = self._series(interval_ns, instrument)
        return s >= 0 and self.bars[s].index >= 0

    def completed(self, int64_t interval_ns, uint32_t instrument) -> list:
        """Closes of the completed bars kept, oldest first."""
        cdef int s = self._series(interval_ns, instrument)
        if s < 0:
            return []
        cdef bar_t* b = &self.bars[s]
        cdef int64_t* ring = &self.closes[<size_t>s * self.kept]
        cdef uint32_t start = (b.head + self.kept - b.count) % self.kept
        return [ring[(start + k) % self.kept] for k in range(b.count)]

    def current(self, int64_t interval_ns, uint32_t instrument):
        """``(index, open, high, low, close)`` of the bar being built, or None."""
        cdef int s = self._series(interval_ns, instrument)
        if s < 0 or self.bars[s].index < 0:
            return None
        cdef bar_t* b = &self.bars[s]
        return (b.index, b.open, b.high, b.low, b.close)

    def view(self, int64_t interval_ns, uint32_t instrument, int64_t ts, int64_t price):
        """The bars as a signal at ``ts`` sees them; ``price`` (the last trade, or the mid)
        stands in for what no trade has told yet."""
        closes = self.completed(interval_ns, instrument)
        cur = self.current(interval_ns, instrument)
        if cur is None:
            return BarView(price, price, closes)
        if cur[0] < ts // interval_ns:  # the bar of the last trade has ended
            closes.append(cur[4])
            return BarView(price, cur[4], closes)
        return BarView(cur[1], closes[len(closes) - 1] if closes else price, closes)

    def state(self) -> dict:
        """The bars as JSON-able data (the engine's snapshot keeps them beside the core's)."""
        out = {}
        for iv in self.intervals_ns:
            series = {}
            for inst in range(self.n_instruments):
                cur = self.current(iv, inst)
                if cur is not None:
                    series[str(inst)] = {"bar": list(cur), "closes": self.completed(iv, inst)}
            out[str(iv)] = series
        return out

    def restore(self, dict state) -> None:
        """Put back what :meth:`state` gave; intervals and instruments unknown here are
        dropped, and only the last ``kept`` closes are kept."""
        cdef int s
        cdef bar_t* b
        self._clear()
        for iv, series in state.items():
            for inst, v in series.items():
                s = self._series(int(iv), int(inst))
                if s < 0:
                    continue
                b = &self.bars[s]
                b.index, b.open, b.high, b.low, b.close = (int(x) for x in v["bar"])
                b.end = (b.index + 1) * int(iv)
                kept = [int(x) for x in v["closes"]]
                for c in kept[max(0, len(kept) - <Py_ssize_t>self.kept):]:
                    self.closes[<size_t>s * self.kept + b.head] = c
                    b.head = (b.head + 1) % self.kept
                    b.count += 1
