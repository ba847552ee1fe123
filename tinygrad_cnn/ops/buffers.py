"""A caching allocator for the large arrays of the hot primitives (conv, pooling).

A fresh large NumPy array is expensive on Linux: glibc hands it out as a new
``mmap`` region (or regrows a trimmed heap) and the kernel zero-fills it page by
page on first touch. A batch-256 training step of the reference CNN took about
11,000 minor page faults that way, 30-50 ms of system time on a step of about
100 ms. The conv and pooling primitives therefore take their outputs and
temporaries from this cache: a buffer is handed out again only when nothing
else refers to it. "Nothing else" is CPython's reference count of the raw
buffer: every array made from it (the view handed out, its reshapes and
slices) holds a reference through ``.base``, so a buffer that a Tensor, a saved
context, a user's variable or a view still uses is never reused. Reuse cannot
alias live data; it only saves the page faults.

The cache holds at most ``max_bytes`` (default 1 GiB; buffers under
``min_bytes``, 256 KiB, are not cached: malloc serves those from its heap).
When a new buffer would exceed the limit, free cached buffers are dropped
first; if that is not enough the new buffer is simply not cached.
:func:`clear` drops every free buffer; :func:`cached_bytes` reports the total.
"""

from __future__ import annotations

import math
import sys
import threading

import numpy as np

min_bytes = 256 << 10
max_bytes = 1 << 30

_lock = threading.Lock()
_cache: dict[int, list[np.ndarray]] = {}  # nbytes -> raw uint8 buffers


def _refcount_of_item(items: list, i: int) -> int:
    return sys.getrefcount(items[i])


# the count an item has when its list is its only owner (measured, as interpreters count differently)
_OWNED_BY_LIST_ONLY = _refcount_of_item([object()], 0)


def _free_index(bucket: list) -> int | None:
    """The index of a buffer in ``bucket`` that nothing but the cache refers to."""
    for i in range(len(bucket)):
        if _refcount_of_item(bucket, i) == _OWNED_BY_LIST_ONLY:
            return i
    return None


def _make_room(needed: int) -> bool:
    """Drop free buffers until ``needed`` more bytes fit under ``max_bytes``; whether they fit."""
    total = cached_bytes()
    for nbytes in list(_cache):
        bucket = _cache[nbytes]
        while total + needed > max_bytes and (i := _free_index(bucket)) is not None:
            del bucket[i]
            total -= nbytes
        if not bucket:
            del _cache[nbytes]
    return total + needed <= max_bytes


def empty(shape, dtype) -> np.ndarray:
    """An uninitialised C-contiguous array of ``shape`` and ``dtype``, from the cache when one is free."""
    dtype = np.dtype(dtype)
    nbytes = math.prod(shape) * dtype.itemsize
    if nbytes < min_bytes:
        return np.empty(shape, dtype)
    shape = tuple(int(n) for n in shape)
    with _lock:
        bucket = _cache.get(nbytes, [])
        i = _free_index(bucket)
        if i is not None:
            return bucket[i].view(dtype).reshape(shape)
        raw = np.empty(nbytes, np.uint8)
        if _make_room(nbytes):
            _cache.setdefault(nbytes, []).append(raw)
        return raw.view(dtype).reshape(shape)


def zeros(shape, dtype) -> np.ndarray:
    """:func:`empty` filled with zeros."""
    out = empty(shape, dtype)
    out.fill(0)
    return out


def full(shape, fill, dtype) -> np.ndarray:
    """:func:`empty` filled with ``fill``."""
    out = empty(shape, dtype)
    out.fill(fill)
    return out


def cached_bytes() -> int:
    """Bytes held by the cache, in use or free."""
    return sum(nbytes * len(bucket) for nbytes, bucket in _cache.items())


def clear() -> None:
    """Drop every cached buffer that nothing refers to (buffers in use stay until they are freed)."""
    with _lock:
        for nbytes in list(_cache):
            bucket = _cache[nbytes]
            while (i := _free_index(bucket)) is not None:
                del bucket[i]
            if not bucket:
                del _cache[nbytes]
