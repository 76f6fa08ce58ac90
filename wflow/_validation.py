"""Small argument checks shared by the public API (clear errors, raised before any work)."""

from __future__ import annotations

import numbers

import numpy as np


def as_points(x, name: str = "x0", *, dim: int | None = None) -> np.ndarray:
    """Return a finite float64 array of shape (n, d) from a (d,) or (n, d) array-like."""
    if isinstance(x, (str, bytes)) or x is None:
        raise TypeError(f"{name} must be an array of shape (d,) or (n, d), got {type(x).__name__}")
    try:
        a = np.asarray(x, dtype=float)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be a numeric array of shape (d,) or (n, d): {exc}") from None
    if a.ndim == 1:
        a = a[None, :]
    if a.ndim != 2 or a.shape[1] == 0:
        raise ValueError(f"{name} must have shape (d,) or (n, d) with d >= 1, got {np.shape(x)}")
    if a.shape[0] == 0:
        raise ValueError(f"{name} must hold at least one point, got shape {np.shape(x)}")
    if dim is not None and a.shape[1] != dim:
        raise ValueError(f"{name} must have dimension d = {dim}, got shape {a.shape}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return a


class NonFiniteStep(ValueError):
    """A scheme met a non-finite value or gradient; ``rows`` are the particles (block-local)."""

    def __init__(self, message: str, rows):
        super().__init__(message)
        self.rows = np.asarray(rows, dtype=int).reshape(-1)


def real(x, name: str, *, low: float | None = None, strict: bool = False, allow_inf: bool = False) -> float:
    """Return x as a float, checking type, finiteness and a lower bound."""
    if isinstance(x, bool) or not isinstance(x, (numbers.Real, np.floating, np.integer)):
        raise TypeError(f"{name} must be a real number, got {type(x).__name__}")
    v = float(x)
    if np.isnan(v) or (np.isinf(v) and not allow_inf):
        raise ValueError(f"{name} must be finite, got {x!r}")
    if low is not None and (v <= low if strict else v < low):
        raise ValueError(f"{name} must be {'>' if strict else '>='} {low:g}, got {x!r}")
    return v


def integer(x, name: str, *, low: int | None = None) -> int:
    """Return x as an int, checking type and a lower bound."""
    if isinstance(x, bool) or not isinstance(x, (numbers.Integral, np.integer)):
        raise TypeError(f"{name} must be an integer, got {type(x).__name__}")
    v = int(x)
    if low is not None and v < low:
        raise ValueError(f"{name} must be >= {low}, got {x!r}")
    return v


def rng_from(seed) -> np.random.Generator:
    """A numpy Generator from a seed, a Generator (used as is) or None (fresh entropy)."""
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is None:
        return np.random.default_rng()
    if isinstance(seed, (numbers.Integral, np.integer)) and not isinstance(seed, bool):
        if seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed}")
        return np.random.default_rng(int(seed))
    if isinstance(seed, np.random.SeedSequence):
        return np.random.default_rng(seed)
    raise TypeError(f"seed must be None, an int or a numpy.random.Generator, got {type(seed).__name__}")
