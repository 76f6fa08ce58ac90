"""ℓp norms on R^d, their duals, steepest directions and ball projections.

Every function works on the last axis of an array: points are ``(n, d)`` (or ``(d,)``)
and norms come back with shape ``(n,)`` (or ``()``).

A *norm specification* is one of ``"l1"``, ``"l2"``, ``"linf"`` (also ``"inf"``), a number
``p >= 1`` (``numpy.inf`` allowed) or a :class:`Norm`; every function takes it as ``norm=``
and :func:`as_norm` turns it into a :class:`Norm` (``p`` elsewhere in wflow is the order of
W_p only). The mathematics is in ``docs/theory.md``, the names in ``docs/conventions.md``.

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

from dataclasses import dataclass
from typing import cast

import numpy as np
from numpy.typing import ArrayLike

from ._validation import rng_from as _rng

__all__ = [
    "Norm",
    "as_norm",
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


def parse_norm(norm: str | float | Norm, *, name: str = "norm") -> float:
    """Return the order p in [1, ∞] of a norm specification (use :func:`as_norm` for a Norm).

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
    if isinstance(norm, Norm):
        return norm.p
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


def dual_exponent(norm: str | float | Norm) -> float:
    """Hölder conjugate q of the norm's order p, 1/p + 1/q = 1 (1 ↔ ∞)."""
    return _dual_exponent(parse_norm(norm))


def _dual_exponent(p: float) -> float:
    if p == 1.0:
        return np.inf
    if p == np.inf:
        return 1.0
    return p / (p - 1.0)


def norm(x: ArrayLike, norm: str | float | Norm = "linf") -> np.ndarray:
    """ℓp norm along the last axis, ``(..., d) -> (...)``.

    For 1 < p < ∞ the computation is scaled by max |x_i| so that it neither overflows nor
    underflows for large p.
    """
    return _norm_p(x, parse_norm(norm))


def _norm_p(x: ArrayLike, p: float) -> np.ndarray:
    """:func:`norm` for an already parsed order p (no validation: the hot paths)."""
    x = np.asarray(x, dtype=float)
    a = np.abs(x)
    if p == np.inf:
        return a.max(axis=-1) if x.shape[-1] else np.zeros(x.shape[:-1])
    if p == 1.0:
        with np.errstate(over="ignore"):
            out = a.sum(axis=-1)
        if np.any(np.isinf(out)):  # the sum overflows although every entry is finite: scale
            m = a.max(axis=-1, keepdims=True)
            safe = np.where(m > 0, m, 1.0)
            with np.errstate(over="ignore"):
                out = np.where(np.isinf(out), np.sum(a / safe, axis=-1) * m[..., 0], out)
        return out
    if p == 2.0:
        # sum of squares, recomputed scaled by max |x_i| where it overflows or loses
        # precision to underflow (no loss anywhere between 1e-300 and 1e300)
        with np.errstate(over="ignore", under="ignore"):
            acc = np.einsum("...i,...i->...", x, x)
        out = np.sqrt(acc)
        bad = ~((acc >= 2.0**-968) & (acc < np.inf))
        if np.any(bad):
            m = a.max(axis=-1, keepdims=True) if x.shape[-1] else np.zeros(x.shape[:-1] + (1,))
            safe = np.where(m > 0, m, 1.0)
            sc = a / safe
            with np.errstate(over="ignore"):
                fixed = np.sqrt(np.einsum("...i,...i->...", sc, sc)) * m[..., 0]
            out = np.where(bad, fixed, out)
        return out
    m = a.max(axis=-1, keepdims=True)
    safe = np.where(m > 0, m, 1.0)
    return (np.sum((a / safe) ** p, axis=-1) ** (1.0 / p)) * m[..., 0]


def dual_norm(xi: ArrayLike, norm: str | float | Norm = "linf") -> np.ndarray:
    """Dual norm ‖ξ‖_* = ‖ξ‖_q, 1/p + 1/q = 1, along the last axis."""
    return _norm_p(xi, _dual_exponent(parse_norm(norm)))


def steepest(
    xi: ArrayLike,
    norm: str | float | Norm = "linf",
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
    norm : norm specification
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
    p = parse_norm(norm)
    if selection not in SELECTIONS:
        raise ValueError(f"selection must be one of {SELECTIONS}, got {selection!r}")
    return _steepest_p(xi, p, selection, rng)


def _steepest_p(xi: ArrayLike, p: float, selection: str = "canonical", rng=None) -> np.ndarray:
    """:func:`steepest` for an already parsed order p and a valid selection (hot paths)."""
    xi = np.asarray(xi, dtype=float)
    random = selection == "random"
    # the generator is only drawn from (and only built) for selection="random"
    gen = _rng(rng) if random else cast(np.random.Generator, None)
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
    q = _dual_exponent(p)
    if p == 2.0:
        nrm = _norm_p(xi, 2.0)[..., None]
        v = np.divide(xi, nrm, out=np.zeros_like(xi), where=nrm > 0)
    else:
        m = np.abs(xi).max(axis=-1, keepdims=True)
        scaled = np.divide(xi, m, out=np.zeros_like(xi), where=m > 0)
        w = np.sign(scaled) * np.abs(scaled) ** (q - 1.0)
        nq = _norm_p(scaled, q)[..., None]
        v = np.divide(w, nq ** (q - 1.0), out=np.zeros_like(xi), where=nq > 0)
    if random:
        zero = ~np.any(xi != 0, axis=-1)
        if zero.any():
            v[zero] = _random_ball(gen, int(zero.sum()), xi.shape[-1], p)
    return v


def _random_ball(rng: np.random.Generator, n: int, d: int, p: float) -> np.ndarray:
    """n random points of the closed unit ℓp ball (not uniform in volume; documented above)."""
    g = rng.standard_normal((n, d))
    nrm = _norm_p(g, p)[:, None]
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
    """Euclidean projection onto {‖z‖_p ≤ r}, 1 < p < ∞, p ≠ 2 (rows of y, radii r).

    By scaling, P_r(y) = r P_1(y / r). KKT for the unit ball: z_i = sign(y_i) s_i with
    s_i + λ p s_i^{p−1} = a_i := |y_i| and λ > 0 such that φ(λ) = Σ s_i^p − 1 = 0; φ decreases
    and λ ∈ (0, ‖a‖_q / p]. The scalar equations are solved by Newton's method from an upper
    bound of the root (monotone convergence, see :func:`_kkt_s`), λ by Newton's method
    safeguarded by bisection until |φ| ≤ 1e-13. A final rescaling s ← s / max(1, ‖s‖_p) makes
    the point feasible. Rows with r/‖y‖ below ~1e-150 (powers overflow) return the centre,
    an absolute error ≤ r.
    """
    z = y.copy()
    out_rows = _norm_p(y, p) > r
    z[out_rows & (r == 0)] = 0.0
    out_rows &= r > 0
    if not out_rows.any():
        return z
    rr = r[out_rows][:, None]
    with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
        a = np.abs(y[out_rows]) / rr
        lo = np.zeros(len(a))
        hi = _norm_p(a, _dual_exponent(p)) / p
        lam = 0.5 * hi
        for _ in range(200):
            sv = _kkt_s(a, lam, p)
            phi = np.sum(sv**p, axis=1) - 1.0
            if np.all(np.abs(phi) <= 1e-13):
                break
            lo = np.where(phi > 0, lam, lo)
            hi = np.where(phi > 0, hi, lam)
            sp1 = sv ** (p - 1.0)
            # dφ/dλ = Σ p s^{p−1} ds/dλ with ds/dλ = −p s^{p−1} / (1 + λ p (p−1) s^{p−2})
            ds = np.where(sv > 0, -p * sp1 / (1.0 + lam[:, None] * p * (p - 1.0) * sv ** (p - 2.0)), 0.0)
            newton = lam - phi / np.sum(p * sp1 * ds, axis=1)
            ok = np.isfinite(newton) & (newton > lo) & (newton < hi)
            lam = np.where(ok, newton, 0.5 * (lo + hi))
        sv /= np.maximum(1.0, _norm_p(sv, p))[:, None]
    sv[~np.all(np.isfinite(sv), axis=1)] = 0.0
    z[out_rows] = np.sign(y[out_rows]) * sv * rr
    return z


def _kkt_s(a: np.ndarray, lam: np.ndarray, p: float, rtol: float = 1e-14) -> np.ndarray:
    """Solve s + c s^{p−1} = a (c = λp ≥ 0, one λ per row) for s ∈ [0, a], elementwise.

    p ≥ 2: f(s) = s + c s^{p−1} − a is convex and increasing and s₀ = min(a, (a/c)^{1/(p−1)})
    bounds the root from above, so Newton's iterates decrease monotonically to it.
    1 < p < 2: the same for t = s^{p−1}, g(t) = t^{1/(p−1)} + c t − a, t₀ = min(a^{p−1}, a/c).
    Stops when every step is below ``rtol`` relative.
    """
    c = (lam * p)[:, None]
    safe_c = np.where(c > 0, c, 1.0)
    if p >= 2.0:
        s = np.minimum(a, np.where(c > 0, (a / safe_c) ** (1.0 / (p - 1.0)), a))
        for _ in range(100):
            sp2 = s ** (p - 2.0)
            step = np.where(s > 0, (s + c * sp2 * s - a) / (1.0 + c * (p - 1.0) * sp2), 0.0)
            s = np.maximum(s - step, 0.0)
            if np.all(np.abs(step) <= rtol * s):
                break
        return s
    m = 1.0 / (p - 1.0)
    t = np.minimum(a ** (p - 1.0), np.where(c > 0, a / safe_c, np.inf))
    for _ in range(100):
        tm1 = t ** (m - 1.0)
        step = np.where(t > 0, (tm1 * t + c * t - a) / (m * tm1 + c), 0.0)
        t = np.maximum(t - step, 0.0)
        if np.all(np.abs(step) <= rtol * t):
            break
    return t**m


def project_ball(
    x: ArrayLike,
    center: ArrayLike,
    radius: float | np.ndarray,
    norm: str | float | Norm = "linf",
) -> np.ndarray:
    """Euclidean projection of each row of x onto the ℓp ball B_r(center).

    ℓ∞: coordinate clipping (this is what IFGSM does); ℓ2: radial scaling; ℓ1: the sort-based
    simplex projection; other p: Newton's method on the KKT conditions (see ``_project_lp_ball``).
    The result satisfies ‖z − center‖_p ≤ r up to float round-off.

    Parameters
    ----------
    x : array, shape (n, d) or (d,)
    center : array, shape (n, d) or (d,)
        Broadcast against x.
    radius : float or array of shape (n,)
        Radius r ≥ 0 (``radius`` is the geometric name; a flow's admissible ball is its
        ``budget``).
    norm : norm specification
    """
    return _project_ball_p(x, center, radius, parse_norm(norm))


def _project_ball_p(x: ArrayLike, center: ArrayLike, radius, p: float) -> np.ndarray:
    """:func:`project_ball` for an already parsed order p (hot paths)."""
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
        nrm = _norm_p(y, 2.0)
        scale = np.where(nrm > rb, rb / np.where(nrm > 0, nrm, 1.0), 1.0)
        z = y * scale[:, None]
    elif p == 1.0:
        z = _project_l1_ball(y, rb)
    else:
        z = _project_lp_ball(y, rb, p)
    return c + z.reshape(x.shape)


@dataclass(frozen=True)
class Norm:
    """The ℓp norm on R^d as a value object.

    ``Norm(p)`` with p in [1, ∞]; build it with :func:`as_norm` from ``"l1"``, ``"l2"``,
    ``"linf"``, a number or another ``Norm``. Equal orders give equal (and equally hashed)
    norms. All methods act on the last axis, like the module functions.

    Attributes
    ----------
    p : float
        The order, 1 ≤ p ≤ ∞.
    """

    p: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "p", parse_norm(self.p, name="p"))

    @property
    def q(self) -> float:
        """Dual order, 1/p + 1/q = 1."""
        return _dual_exponent(self.p)

    @property
    def name(self) -> str:
        """Canonical name: ``"l1"``, ``"l2"``, ``"linf"`` or ``"l<p>"``."""
        return norm_name(self.p)

    def norm(self, x: ArrayLike) -> np.ndarray:
        """‖x‖_p along the last axis, ``(..., d) -> (...)``."""
        return _norm_p(x, self.p)

    def dual(self, xi: ArrayLike) -> np.ndarray:
        """Dual norm ‖ξ‖_q along the last axis."""
        return _norm_p(xi, _dual_exponent(self.p))

    def steepest(self, xi: ArrayLike, *, selection: str = "canonical",
                 rng: np.random.Generator | int | None = None) -> np.ndarray:
        """An element of ∂‖·‖_*(ξ) (see :func:`steepest`)."""
        return steepest(xi, self, selection=selection, rng=rng)

    def project_ball(self, x: ArrayLike, center: ArrayLike, radius: float | np.ndarray) -> np.ndarray:
        """Euclidean projection onto the closed ball B_radius(center) of this norm."""
        return _project_ball_p(x, center, radius, self.p)

    def __str__(self) -> str:
        return self.name


def as_norm(norm: str | float | Norm, *, name: str = "norm") -> Norm:
    """Coerce a norm specification (name, order p ≥ 1, or :class:`Norm`) to a :class:`Norm`.

    Raises ``ValueError``/``TypeError`` naming ``name`` for anything else.
    """
    if isinstance(norm, Norm):
        return norm
    return Norm(parse_norm(norm, name=name))
