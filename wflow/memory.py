"""Memory estimates before large allocations, against one documented limit.

Solvers estimate the bytes of their large arrays (trajectories, grids, dense matrices, figure
buffers) before allocating them and call :func:`check_memory`; beyond the limit it raises
:class:`MemoryLimitError` with the estimate and the knob that reduces it (``stride``,
``chunk_size``, fewer steps, a smaller ``dpi``...).

The limit defaults to :data:`DEFAULT_FRACTION` of the machine's memory (the smaller of the
physical memory and a cgroup limit); set it with :func:`set_memory_limit` or the environment
variable ``WFLOW_MEMORY_LIMIT`` (bytes, or a size such as ``"8GiB"``, or ``"none"``). See
``docs/cli.md``.
"""

from __future__ import annotations

import math
import os
import re

__all__ = [
    "ENV_VAR",
    "DEFAULT_FRACTION",
    "MemoryLimitError",
    "machine_memory",
    "memory_limit",
    "set_memory_limit",
    "check_memory",
    "format_bytes",
    "parse_size",
]

ENV_VAR = "WFLOW_MEMORY_LIMIT"
#: default limit as a fraction of the machine's memory
DEFAULT_FRACTION = 0.5
_UNITS = {"": 1, "b": 1, "k": 10**3, "kb": 10**3, "m": 10**6, "mb": 10**6, "g": 10**9, "gb": 10**9,
          "t": 10**12, "tb": 10**12, "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}
_limit: float | None = None  # set_memory_limit's value; None: environment or default


class MemoryLimitError(MemoryError, ValueError):
    """An estimated allocation beyond the memory limit (raised before allocating)."""


def format_bytes(n: float) -> str:
    """``1536`` → ``'1.5 KiB'``."""
    n = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(n) < 1024 or unit == "PiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.3g} {unit}"
        n /= 1024
    return f"{n:.3g} PiB"  # pragma: no cover


def parse_size(value, name: str = "limit") -> float:
    """Bytes from a number or a string such as ``"8GiB"``, ``"500 MB"``, ``"none"`` (= no limit)."""
    if isinstance(value, bool):
        raise TypeError(f"{name} must be a number of bytes or a size string like '8GiB', got bool")
    if isinstance(value, (int, float)):
        v = float(value)
    elif isinstance(value, str):
        s = value.strip().lower()
        if s in ("none", "inf", "unlimited"):
            return math.inf
        m = re.fullmatch(r"([0-9]*\.?[0-9]+(?:e[+-]?[0-9]+)?)\s*([a-z]*)", s)
        if m is None or m.group(2) not in _UNITS:
            raise ValueError(f"{name} must be a size like '8GiB', '500MB' or a number of bytes, got {value!r}")
        v = float(m.group(1)) * _UNITS[m.group(2)]
    else:
        raise TypeError(f"{name} must be a number of bytes or a size string like '8GiB', got {type(value).__name__}")
    if math.isnan(v) or v <= 0:
        raise ValueError(f"{name} must be a positive number of bytes, got {value!r}")
    return v


def machine_memory() -> int:
    """Physical memory in bytes, or a smaller cgroup (v2/v1) limit when one applies."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX
        total = 8 * 2**30
    for f in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            with open(f) as fh:
                text = fh.read().strip()
        except OSError:
            continue
        if text.isdigit() and 0 < int(text) < total:
            total = int(text)
    return int(total)


def memory_limit() -> float:
    """The current limit in bytes (``math.inf``: no limit)."""
    if _limit is not None:
        return _limit
    env = os.environ.get(ENV_VAR)
    if env:
        return parse_size(env, ENV_VAR)
    return DEFAULT_FRACTION * machine_memory()


def set_memory_limit(limit) -> float | None:
    """Set the memory limit for this process; returns the previous explicit setting.

    Parameters
    ----------
    limit : int, float, str or None
        Bytes, a size string (``"8GiB"``), ``math.inf`` / ``"none"`` for no limit, or None to
        return to the default (``WFLOW_MEMORY_LIMIT`` or :data:`DEFAULT_FRACTION` of memory).
    """
    global _limit
    previous = _limit
    _limit = None if limit is None else parse_size(limit, "limit")
    return previous


def check_memory(nbytes: float, what: str, knob: str) -> None:
    """Raise :class:`MemoryLimitError` if ``nbytes`` exceeds :func:`memory_limit`.

    Parameters
    ----------
    nbytes : float
        Estimated size of the allocation.
    what : str
        What would be allocated (``"the trajectory (100001, 1000, 2)"``).
    knob : str
        How to make it smaller (``"pass stride=..."``).
    """
    limit = memory_limit()
    if nbytes > limit:
        raise MemoryLimitError(
            f"{what} would need about {format_bytes(nbytes)}, beyond the memory limit of "
            f"{format_bytes(limit)}; {knob} (or raise the limit with wflow.set_memory_limit(...) "
            f"or {ENV_VAR})"
        )
