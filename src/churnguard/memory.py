"""Hand the memory a heavy step freed back to the operating system before the next one.

Freed blocks smaller than glibc's mmap threshold (up to 32 MiB: the columns of a cutoff,
LightGBM's sample buffers) stay in the process's heap, so the resident size only grows from
step to step of training, although the steps' peaks do not overlap. ``malloc_trim`` gives
the whole free pages back (also those between live blocks), and pyarrow's pool lets go of
what it keeps cached.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
from functools import lru_cache

__all__ = ["release_free_memory"]


def release_free_memory() -> bool:
    """Give freed heap pages back to the operating system; the data in memory is untouched.

    Returns
    -------
    bool
        True where the C library could trim its heap (glibc), False elsewhere (nothing done).

    Examples
    --------
    >>> import numpy as np
    >>> blocks = [np.ones(1_000_000) for _ in range(8)]
    >>> del blocks
    >>> release_free_memory() in (True, False)
    True
    """
    if "pyarrow" in sys.modules:  # never imported here just to ask
        sys.modules["pyarrow"].default_memory_pool().release_unused()
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True


@lru_cache(maxsize=1)
def _malloc_trim():
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc.malloc_trim
    except (OSError, AttributeError):  # not glibc (musl has no malloc_trim)
        return None
