"""Process-level settings that make XLA:CPU programs faster; called by the CLI and benchmarks.

:func:`tune_allocator`: XLA:CPU allocates each program's temporaries (the residuals a scan saves
for its backward pass, tens of MB for the char-LSTM) with ``malloc`` at every call. glibc serves
blocks above its mmap threshold with a fresh ``mmap`` and returns them with ``munmap``, so every
train step pays a page fault per 4 KiB of temporaries. Keeping freed memory in the heap
(``M_MMAP_MAX = 0``, no trimming) removes that: the char-LSTM's train step measured 57 -> 37 ms on
one core (``python benchmarks/recurrence.py`` numbers are taken with it). Memory freed by a step
stays with the process for the next one. A no-op where the C library is not glibc.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4
_done = False


def tune_allocator() -> bool:
    """Keep freed memory in the heap (glibc ``mallopt``). Returns whether it was applied."""
    global _done
    if _done:
        return True
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    _done = bool(mallopt(_M_MMAP_MAX, 0)) and bool(mallopt(_M_TRIM_THRESHOLD, 2**31 - 1))
    return _done
