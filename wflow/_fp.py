"""Floating-point helpers that make the ℓ∞ attack guarantees hold exactly in float32 and float64.

Rounding to nearest is monotone, so an inequality that holds for the exact values also holds
for any correctly rounded evaluation of it: a budget box [lo, hi] with c − ε ≤ lo and
hi ≤ c + ε *exactly* passes ``abs(x - c) <= eps`` in either precision. These helpers compute
such bounds and cap explicit-Euler steps at τ exactly (docs/precision.md).
"""

from __future__ import annotations

import numpy as np

__all__ = ["float_dtype", "dtype_of", "round_down", "exceeds", "inner_box", "cap_steps", "one_ulp_toward"]

DTYPES = (np.dtype(np.float64), np.dtype(np.float32))


def float_dtype(dtype, name: str = "dtype") -> np.dtype:
    """``None`` → float64; float64 or float32 (any spelling numpy accepts) → that ``np.dtype``."""
    if dtype is None:
        return DTYPES[0]
    try:
        dt = np.dtype(dtype)
    except TypeError as exc:
        raise TypeError(f"{name} must be numpy.float64 or numpy.float32, got {dtype!r}") from exc
    if dt not in DTYPES:
        raise ValueError(f"{name} must be numpy.float64 or numpy.float32, got {dt}")
    return dt


def dtype_of(obj, default=np.float64) -> np.dtype:
    """The numpy float dtype an object computes in: its ``dtype`` attribute (a numpy dtype, or
    a torch dtype such as ``torch.float32``), else ``default``; other dtypes give ``default``."""
    dt = getattr(obj, "dtype", None)
    if dt is None:
        return np.dtype(default)
    try:
        d = np.dtype(dt)
    except TypeError:
        try:
            d = np.dtype(str(dt).rsplit(".", 1)[-1])  # torch.float32 → float32
        except TypeError:
            return np.dtype(default)
    return d if d in DTYPES else np.dtype(default)


def round_down(x, dtype):
    """The largest value(s) of ``dtype`` that are ≤ x (x finite: a float or a float64 array)."""
    t = np.dtype(dtype).type
    if np.ndim(x):
        x = np.asarray(x, dtype=np.float64)
        v = x.astype(t)
        up = v.astype(np.float64) > x  # exact: float32 → float64 loses nothing
        v[up] = np.nextafter(v[up], t(-np.inf))
        return v
    v = t(x)
    if float(v) > x:
        v = np.nextafter(v, t(-np.inf))
    return v


def _two_diff(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """s = fl(a − b) and the exact error e with s + e = a − b (Knuth's TwoSum)."""
    s = a - b
    bb = s - a
    e = (a - (s - bb)) + (-b - bb)
    return s, e


def exceeds(a: np.ndarray, b: np.ndarray, eps: float) -> np.ndarray:
    """Elementwise exact test a − b > eps for arrays a, b of one float dtype and a float eps."""
    s, e = _two_diff(a, b)
    if a.dtype == np.float32:  # s + e is exact in float64 (|e| ≤ ulp(s)/2: ≤ 49 bits in all)
        return s.astype(np.float64) + e.astype(np.float64) > eps
    # s = fl(a − b) and rounding is monotone: a − b > eps ⇔ s > eps, or s == eps and e > 0
    return (s > eps) | ((s == eps) & (e > 0))


def inner_box(center: np.ndarray, radius) -> tuple[np.ndarray, np.ndarray]:
    """Bounds lo, hi (dtype of ``center``) with center − radius ≤ lo and hi ≤ center + radius
    exactly, each within two ulps of the exact bound (``radius``: a float, or an array that
    broadcasts against ``center``, e.g. one budget per row as a column)."""
    c = np.asarray(center)
    c64 = c.astype(np.float64)
    # rounded once to c's dtype from float64 (for float32: within ½ ulp + 2^-53 relative),
    # then nudged inward where the exact distance exceeds radius (one step in practice)
    lo, hi = (c64 - radius).astype(c.dtype), (c64 + radius).astype(c.dtype)
    for bound, sign in ((lo, -1), (hi, 1)):
        for _ in range(64):
            bad = exceeds(c, bound, radius) if sign < 0 else exceeds(bound, c, radius)
            if not bad.any():
                break
            bound[bad] = np.nextafter(bound[bad], c[bad])
        else:  # pragma: no cover - cannot happen for finite inputs
            raise RuntimeError("inner_box: bounds did not converge")
    return lo, hi


def cap_steps(X: np.ndarray, Y: np.ndarray, tau) -> np.ndarray:
    """Make |Y − X| ≤ τ exactly, for Y = fl(X ± τ) (or X) with τ a value of X's dtype.

    Y = fl(X + δ), |δ| = τ, is within ulp(Y)/2 of X + δ, so |Y − X| ≤ τ + ulp(Y)/2; one ulp
    toward X removes the excess. Which entries exceed: r = fl(Y − X) is exact when |X| ≥ τ
    (Dekker's Fast2Sum), so |r| > τ decides there; where |X| < τ, |r| ≥ τ is the (safe) test.
    Modifies and returns Y.
    """
    r = np.subtract(Y, X)
    np.abs(r, out=r)
    mask = r > tau
    small = (r == tau) & (np.abs(X) < tau)  # (τ may be a per-row column of steps)
    if small.any():  # r may be rounded here: decide exactly (TwoSum) on these few entries
        t = np.broadcast_to(tau, X.shape)[small]
        xs, ys = X[small], Y[small]
        small[small] = exceeds(ys, xs, t) | exceeds(xs, ys, t)
        mask |= small
    if mask.any():
        one_ulp_toward(Y, X, mask)
    return Y


_INT = {np.dtype(np.float32): np.int32, np.dtype(np.float64): np.int64}


def one_ulp_toward(Y: np.ndarray, X: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``Y[mask] = nextafter(Y, X)[mask]`` in place, for finite nonzero Y ≠ X on the mask.

    By integer arithmetic on the bit patterns (IEEE sign-magnitude: adding 1 to the integer
    view moves |y| one ulp up, subtracting 1 one ulp down), in a few SIMD passes;
    ``numpy.nextafter`` is a scalar libm call (≈ 9 ns per entry, 40× a multiply).
    """
    bits = Y.view(_INT[Y.dtype])
    grow = np.greater(X, Y)  # moving up …
    np.not_equal(grow, np.signbit(Y), out=grow)  # … grows |y| iff y > 0
    np.logical_and(grow, mask, out=grow)
    shrink = np.logical_xor(mask, grow)  # on the mask and not growing
    delta = np.subtract(grow.view(np.int8), shrink.view(np.int8))  # +1, −1 or 0
    np.add(bits, delta, out=bits, casting="unsafe")
    return Y
