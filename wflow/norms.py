"""ℓp norms on R^d, their duals, steepest directions and ball projections.

Every function works on the last axis of an array: points are ``(n, d)`` (or ``(d,)``)
and norms come back with shape ``(n,)`` (or ``()``).

A *norm specification* is one of ``"l1"``, ``"l2"``, ``"linf"`` (also ``"inf"``), or a
number ``p >= 1`` (``numpy.inf`` allowed). :func:`parse_norm` turns it into the exponent p.

Conventions
-----------
The flow moves along ``steepest(-grad V)``: an element v of the subdifferential of the dual
norm, ∂‖·‖_*(ξ) = {v : ‖v‖ ≤ 1, ⟨ξ, v⟩ = ‖ξ‖_*}. Where that set has more than one element
(ξ has zero components for ℓ∞, ties in max |ξ_j| for ℓ1, ξ = 0 for every norm) the
selection is explicit:

``selection="canonical"`` (default)
    ℓ∞: sign(0) = 0; ℓ1: the lowest index among the maximizers of |ξ_j|; ℓp (1 < p < ∞):
    the zero vector where ξ = 0.
``selection="random"``
    a seeded random element of the set: ℓ∞: an independent uniform value in [−1, 1] for
    each zero component; ℓ1: a uniformly chosen maximizer; ℓp: where ξ = 0, a uniform
    random point of the unit ℓp-direction scaled by a uniform radius in [0, 1].
"""

from __future__ import annotations

import numpy as np

from ._validation import rng_from as _rng

__all__ = [
    "parse_norm",
    "dual_exponent",
    "norm",
    "dual_norm",
    "steepest",
    "project_ball",
    "norm_name",
]

_NAMES = {"l1": 1.0, "l2": 2.0, "linf": np.inf, "inf": np.inf, "max": np.inf}
SELECTIONS = ("canonical", "random")


def parse_norm(norm: str | float | int, *, name: str = "norm") -> float:
    """Return the exponent p in [1, ∞] of a norm specification.

    Parameters
    ----------
    norm : {"l1", "l2", "linf"} or float
        The norm's name or its exponent ``p >= 1`` (``numpy.inf`` for the max norm).
    name : str
        Argument name used in error messages.

    Raises
    ------
    ValueError
        For an unknown name, NaN, or p < 1.
    TypeError
        For anything that is neither a string nor a real number.
    """
    if isinstance(norm, str):
        key = norm.strip().lower()
        if key not in _NAMES:
            raise ValueError(
                f"{name} must be 'l1', 'l2', 'linf' or a number p >= 1, got {norm!r}"
            )
        return float(_NAMES[key])
    if isinstance(norm, bool) or not isinstance(norm, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a string or a real number, got {type(norm).__name__}")
    p = float(norm)
    if np.isnan(p) or p < 1:
        raise ValueError(f"{name} must be a number p >= 1 (or 'l1', 'l2', 'linf'), got {norm!r}")
    return p


def norm_name(p: float) -> str:
    """Canonical short name of the exponent p (``"l1"``, ``"l2"``, ``"linf"`` or ``"l<p>"``)."""
    if p == np.inf:
        return "linf"
    if p == 1.0:
        return "l1"
    if p == 2.0:
        return "l2"
    return f"l{p:g}"


def dual_exponent(p: float) -> float:
    """Hölder conjugate q of p, 1/p + 1/q = 1 (1 ↔ ∞)."""
    p = parse_norm(p, name="p")
    if p == 1.0:
        return np.inf
    if p == np.inf:
        return 1.0
    return p / (p - 1.0)


def norm(x: np.ndarray, p: str | float = "linf") -> np.ndarray:
    """ℓp norm along the last axis, ``(..., d) -> (...)``.

    For 1 < p < ∞ the computation is scaled by max |x_i| so that it neither overflows nor
    underflows for large p.
    """
    p = parse_norm(p, name="p")
    x = np.asarray(x, dtype=float)
    a = np.abs(x)
    if p == np.inf:
        return a.max(axis=-1) if x.shape[-1] else np.zeros(x.shape[:-1])
    if p == 1.0:
        return a.sum(axis=-1)
    if p == 2.0:
        return np.sqrt(np.einsum("...i,...i->...", x, x))
    m = a.max(axis=-1, keepdims=True)
    safe = np.where(m > 0, m, 1.0)
    return (np.sum((a / safe) ** p, axis=-1) ** (1.0 / p)) * m[..., 0]


def dual_norm(xi: np.ndarray, p: str | float = "linf") -> np.ndarray:
    """Dual norm ‖ξ‖_* = ‖ξ‖_q, 1/p + 1/q = 1, along the last axis."""
    return norm(xi, dual_exponent(parse_norm(p, name="p")))


def steepest(
    xi: np.ndarray,
    p: str | float = "linf",
    *,
    selection: str = "canonical",
    rng: np.random.Generator | int | None = None,
) -> np.ndarray:
    """An element v of ∂‖·‖_*(ξ): ‖v‖_p ≤ 1 and ⟨ξ, v⟩ = ‖ξ‖_q.

    The flow direction at x is ``steepest(-grad V(x))``.

    Parameters
    ----------
    xi : array, shape (..., d)
        Dual vectors (one per row).
    p : norm specification
        The primal norm of the flow.
    selection : {"canonical", "random"}
        Which element of a set-valued subdifferential to return (module docstring).
    rng : Generator or int, optional
        Randomness for ``selection="random"``.

    Returns
    -------
    v : array, shape (..., d)
        ℓ∞: sign(ξ); ℓ2: ξ/‖ξ‖₂; ℓ1: sign(ξ_j) e_j with j ∈ argmax |ξ_j|;
        1 < p < ∞: sign(ξ) |ξ|^{q−1} / ‖ξ‖_q^{q−1}.
    """
    p = parse_norm(p, name="p")
    if selection not in SELECTIONS:
        raise ValueError(f"selection must be one of {SELECTIONS}, got {selection!r}")
    xi = np.asarray(xi, dtype=float)
    random = selection == "random"
    gen = _rng(rng) if random else None
    if p == np.inf:
        v = np.sign(xi)
        if random:
            zero = v == 0
            if zero.any():
                v[zero] = gen.uniform(-1.0, 1.0, size=int(zero.sum()))
        return v
    if p == 1.0:
        a = np.abs(xi)
        if random:
            # uniform among the maximizers: random keys on the ties
            keys = np.where(a == a.max(axis=-1, keepdims=True), gen.random(a.shape), -1.0)
            j = np.argmax(keys, axis=-1)
        else:
            j = np.argmax(a, axis=-1)
        v = np.zeros_like(xi)
        s = np.take_along_axis(np.sign(xi), j[..., None], axis=-1)
        np.put_along_axis(v, j[..., None], s, axis=-1)
        if random:
            zero = ~np.any(xi != 0, axis=-1)
            if zero.any():
                v[zero] = _random_ball(gen, int(zero.sum()), xi.shape[-1], p)
        return v
    q = dual_exponent(p)
    if p == 2.0:
        nrm = norm(xi, 2.0)[..., None]
        v = np.divide(xi, nrm, out=np.zeros_like(xi), where=nrm > 0)
    else:
        m = np.abs(xi).max(axis=-1, keepdims=True)
        scaled = np.divide(xi, m, out=np.zeros_like(xi), where=m > 0)
        w = np.sign(scaled) * np.abs(scaled) ** (q - 1.0)
        nq = norm(scaled, q)[..., None]
        v = np.divide(w, nq ** (q - 1.0), out=np.zeros_like(xi), where=nq > 0)
    if random:
        zero = ~np.any(xi != 0, axis=-1)
        if zero.any():
            v[zero] = _random_ball(gen, int(zero.sum()), xi.shape[-1], p)
    return v


def _random_ball(rng: np.random.Generator, n: int, d: int, p: float) -> np.ndarray:
    """n random points of the closed unit ℓp ball (not uniform in volume; documented above)."""
    g = rng.standard_normal((n, d))
    nrm = norm(g, p)[:, None]
    g = np.divide(g, nrm, out=np.zeros_like(g), where=nrm > 0)
    return g * rng.random((n, 1))


def _project_l1_ball(y: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Euclidean projection of rows of y onto {‖z‖₁ ≤ r} (sort-based, Duchi et al. 2008)."""
    a = np.abs(y)
    inside = a.sum(axis=-1) <= r
    if inside.all():
        return y.copy()
    u = -np.sort(-a, axis=-1)
    css = np.cumsum(u, axis=-1) - r[:, None]
    k = np.arange(1, y.shape[-1] + 1)
    cond = u - css / k > 0
    cond[:, 0] = True  # exact for r > 0; guards the cancellation 1 − (1 − r) = 0 for tiny r
    rho = y.shape[-1] - 1 - np.argmax(cond[:, ::-1], axis=-1)
    theta = np.take_along_axis(css, rho[:, None], axis=-1) / (rho[:, None] + 1.0)
    z = np.sign(y) * np.maximum(a - np.maximum(theta, 0.0), 0.0)
    z[r == 0] = 0.0  # the formula needs r > 0 (no index satisfies the condition otherwise)
    return np.where(inside[:, None], y, z)


def _project_lp_ball(y: np.ndarray, r: np.ndarray, p: float) -> np.ndarray:
    with np.errstate(over="ignore", invalid="ignore"):  # λ → ∞ is handled explicitly
        return _project_lp_ball_kkt(y, r, p)


def _project_lp_ball_kkt(y: np.ndarray, r: np.ndarray, p: float) -> np.ndarray:
    """Euclidean projection onto {‖z‖_p ≤ r}, 1 < p < ∞, p ≠ 2.

    KKT: z_i = sign(y_i) s_i with s_i + λ p s_i^{p−1} = |y_i|; ‖z‖_p decreases in λ. Both the
    inner equation (per coordinate) and λ are solved by bisection to float resolution
    (80 halvings each), vectorized over rows.
    """
    a = np.abs(y)
    nrm = norm(y, p)
    out_rows = nrm > r
    z = y.copy()
    if not out_rows.any():
        return z
    zero_radius = out_rows & (r == 0)
    z[zero_radius] = 0.0
    out_rows &= r > 0
    if not out_rows.any():
        return z
    a = a[out_rows]
    rr = r[out_rows]

    def solve_s(lam):
        lo = np.zeros_like(a)
        hi = a.copy()
        for _ in range(80):
            mid = 0.5 * (lo + hi)
            f = mid + lam[:, None] * p * mid ** (p - 1.0) - a
            hi = np.where(f > 0, mid, hi)
            lo = np.where(f > 0, lo, mid)
        return 0.5 * (lo + hi)

    lam_lo = np.zeros(a.shape[0])
    lam_hi = np.ones(a.shape[0])
    while True:
        grow = (norm(solve_s(lam_hi), p) > rr) & np.isfinite(lam_hi)
        if not grow.any():
            break
        lam_hi = np.where(grow, lam_hi * 16.0, lam_hi)
    # λ overflowed only when r is below the resolution of |y| (r/|y| ≲ 1e-150): the
    # projection is then 0 up to an absolute error ≤ r
    tiny = ~np.isfinite(lam_hi)
    lam_hi[tiny] = 1.0
    for _ in range(80):
        mid = 0.5 * (lam_lo + lam_hi)
        big = norm(solve_s(mid), p) > rr
        lam_lo = np.where(big, mid, lam_lo)
        lam_hi = np.where(big, lam_hi, mid)
    s = solve_s(lam_hi)
    s[tiny] = 0.0
    z[out_rows] = np.sign(y[out_rows]) * s
    return z


def project_ball(
    x: np.ndarray,
    center: np.ndarray,
    radius: float | np.ndarray,
    p: str | float = "linf",
) -> np.ndarray:
    """Euclidean projection of each row of x onto the ℓp ball B_r(center).

    ℓ∞: coordinate clipping (this is what IFGSM does); ℓ2: radial scaling; ℓ1: the sort-based
    simplex projection; other p: bisection on the KKT multiplier (see ``_project_lp_ball``).
    The result satisfies ‖z − center‖_p ≤ r up to float round-off.

    Parameters
    ----------
    x : array, shape (n, d) or (d,)
    center : array, shape (n, d) or (d,)
        Broadcast against x.
    radius : float or array of shape (n,)
    p : norm specification
    """
    p = parse_norm(p, name="p")
    x = np.asarray(x, dtype=float)
    c = np.broadcast_to(np.asarray(center, dtype=float), x.shape)
    r = np.asarray(radius, dtype=float)
    if np.any(r < 0) or np.any(np.isnan(r)):
        raise ValueError(f"radius must be >= 0, got {radius!r}")
    if p == np.inf:
        rr = r[..., None] if r.ndim else r
        return np.clip(x, c - rr, c + rr)
    y = (x - c).reshape(-1, x.shape[-1])
    rb = np.broadcast_to(r, x.shape[:-1]).reshape(-1)
    if p == 2.0:
        nrm = norm(y, 2.0)
        scale = np.where(nrm > rb, rb / np.where(nrm > 0, nrm, 1.0), 1.0)
        z = y * scale[:, None]
    elif p == 1.0:
        z = _project_l1_ball(y, rb)
    else:
        z = _project_lp_ball(y, rb, p)
    return c + z.reshape(x.shape)
