# Split engine event frames into per-type record buffers (the writer's only hot loop).

from libc.stdint cimport uint64_t

cpdef tuple split_frame(const unsigned char[::1] frame, uint64_t last, list bufs)
