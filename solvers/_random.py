"""The random generator shared by the numba searches: one draw from a (1,) uint64 state array.

A state array (not numpy's Generator) so that jitted kernels can draw without the GIL, and the
same seed gives the same stream in every search.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["rand_u64"]


@njit(cache=True, inline="always")
def rand_u64(rng: np.ndarray) -> np.uint64:
    """xorshift64*: one 64-bit draw; ``rng`` is a (1,) uint64 state array, advanced in place."""
    x = rng[0]
    x ^= x >> np.uint64(12)
    x ^= x << np.uint64(25)
    x ^= x >> np.uint64(27)
    rng[0] = x
    return x * np.uint64(2685821657736338717)
