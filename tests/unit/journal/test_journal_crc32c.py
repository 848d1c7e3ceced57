"""The journal's own CRC32C (hardware SSE4.2 and the table fallback) against the ``crc32c``
package (dev extra): random data of 0..4096 bytes, starting at any byte offset."""

from __future__ import annotations

import crc32c
from hypothesis import given, settings
from hypothesis import strategies as st

from oms_core import journal as J


@settings(max_examples=400, deadline=None)
@given(st.binary(min_size=0, max_size=4096 + 15), st.integers(0, 15), st.integers(0, 4096))
def test_crc32c_matches_the_crc32c_package(data: bytes, offset: int, length: int) -> None:
    view = memoryview(data)[offset:offset + length]  # unaligned start, any tail
    want = crc32c.crc32c(view)
    assert J.crc32c_bytes(view) == want
    assert J.crc32c_bytes(view, software=True) == want


def test_every_length_and_alignment_of_one_buffer() -> None:
    data = bytes(range(256)) * 17
    for offset in range(8):
        for length in (*range(0, 70), 251, 252, 255, 256, 257, 4095, 4096):
            view = memoryview(data)[offset:offset + length]
            want = crc32c.crc32c(view)
            assert J.crc32c_bytes(view) == want, (offset, length)
            assert J.crc32c_bytes(view, software=True) == want, (offset, length)
