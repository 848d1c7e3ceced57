# The compiled frame validator of the wire protocol (see codec.pyx and docs/protocol.md).
#
# Other Cython modules (the engine) cimport the C-level walker:
#     from bindings.wire.codec cimport wire_check_frame
# and the record structs from bindings.wire.wire.

from libc.stdint cimport uint8_t, uint32_t

# ---------------------------------------------------------------------------------------------
# Frame walking
# ---------------------------------------------------------------------------------------------

# Walk a frame of ``n`` bytes; return a WireError (0 = OK). ``count`` receives the number of
# whole, well-formed records before the first error (all of them when OK); ``err_offset`` the
# byte offset of the bad record (``n`` when OK). Reads only inside data[0:n]; never allocates.
cdef int wire_check_frame(const uint8_t* data, Py_ssize_t n, uint32_t* count,
                          Py_ssize_t* err_offset) noexcept nogil
