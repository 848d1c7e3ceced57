"""Decimal strings inside depth messages: the decoder's fast and general paths agree.

gateways.book parses "<digits>.<digits>" with a short fast path and falls back to a
general parser for anything else (and near the end of the buffer). Both must give the
exact fixed-point value or refuse the message, as this small model of the rules says.
"""

from __future__ import annotations

import re

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from gateways.book import BookResult, L2Book

INT64_MAX = 2**63 - 1
MALFORMED = int(BookResult.BOOK_MALFORMED)


def model(text: str, decimals: int) -> int | None:
    """Fixed-point value of ``text`` at ``decimals``, or None when it must be refused."""
    m = re.fullmatch(r"([0-9]*)(?:\.([0-9]*))?", text)
    if m is None:
        return None
    ip, fp = m.group(1), m.group(2) or ""
    if not ip and not fp:
        return None  # "" and "."
    if len(fp) > decimals and fp[decimals:].strip("0"):
        return None  # finer than the instrument's precision
    v = int((ip or "0") + fp[:decimals].ljust(decimals, "0"))
    return v if v <= INT64_MAX else None


digits = st.text(alphabet="0123456789", max_size=22)
number = st.one_of(
    st.builds(lambda a, b: f"{a}.{b}", digits, digits),
    digits,
    st.builds(lambda a, b, c: f"{a}{c}{b}", digits, digits,
              st.sampled_from(["-", "e", "x", " ", "..", "+"])),
)


def _snapshot(bid_px: str, ask_qty: str, pad: int) -> bytes:
    # small whole-number prices fit any precision (9 * 10**18 < 2**63)
    asks = [[f"{i}", "1"] for i in range(1, pad + 1)] + [["9", ask_qty]]
    return orjson.dumps({"lastUpdateId": 1, "bids": [[bid_px, "1"]], "asks": asks})


@settings(max_examples=400, deadline=None)
@given(text=number, decimals=st.integers(0, 18), pad=st.integers(0, 3))
def test_price_decimal_matches_model(text, decimals, pad):
    # as a price: first in the message, far from its end (the fast path when it fits)
    book = L2Book("BTCUSDT", decimals, 0, capacity=10)
    want = model(text, decimals)
    rc = book.apply_snapshot(_snapshot(text, "1", pad))
    if want is None:
        assert rc == MALFORMED
    else:
        assert rc == 0
        assert book.bids() == [(want, 1)]


@settings(max_examples=400, deadline=None)
@given(text=number, decimals=st.integers(0, 18), pad=st.integers(0, 3))
def test_qty_decimal_matches_model(text, decimals, pad):
    # as the last quantity: near the end of the buffer (the general path), or not
    book = L2Book("BTCUSDT", 0, decimals, capacity=10)
    want = model(text, decimals)
    msg = orjson.dumps({"lastUpdateId": 1, "asks": [["9", text]],
                        "bids": [[f"{i}", "1"] for i in range(1, pad + 2)]})
    for m in (msg, _snapshot("1", text, pad)):
        rc = book.apply_snapshot(m)
        if want is None:
            assert rc == MALFORMED
        else:
            assert rc == 0
            assert dict(book.asks()).get(9, 0) == want  # a zero quantity is no level
