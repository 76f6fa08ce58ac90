"""The metric (descending) slope |∂V|(x) = limsup_{y→x} (V(x) − V(y))⁺/‖x − y‖, batched.

One definition, used by :attr:`wflow.flow.FlowResult.slopes`,
:meth:`wflow.superposition.CurveMeasure.dissipation_defect`, :meth:`wflow.measures.ParticleMeasure.slope`
and :mod:`wflow.verify`:

- C¹ V (``smooth = True``, or objects with only ``value``/``grad``): ‖∇V(x)‖_*;
- non-smooth V that knows its subdifferential (a box: C¹ parts plus
  :class:`~wflow.potentials.AbsSum` terms): :meth:`~wflow.potentials.Potential.slope`, exact;
- other non-smooth V (e.g. losses of ReLU networks): rows whose gradient jumps among 2d probes
  x ± (δ/2) e_i get one minimizing-movement step of radius δ, (V(x) − V(x_δ))⁺/δ; the other rows
  are C¹ at the scale of the probes and get ‖∇V(x)‖_*.

The estimate's accuracy bound (returned with ``return_bound=True``) is derived in
``docs/verification.md`` §8. This module sits between the schemes and the flow: it imports
:mod:`wflow.minmove` (the step) and :mod:`wflow.potentials`, never anything above them.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from numpy.typing import ArrayLike

from ._validation import as_points, real
from .minmove import _GRID_POINTS, _Feasible, _local, _Oracle, _pointwise, minmove_step
from .norms import Norm, as_norm
from .potentials import Potential

__all__ = ["metric_slope", "slope_radius", "slope_is_exact", "gradient_jump", "SLOPE_RTOL", "KINK_RTOL", "RING_SIZE",
           "EPS"]

#: unit round-off of float64
EPS = float(np.finfo(float).eps)
#: radius of the estimating step relative to the points' scale: δ = SLOPE_RTOL (1 + max‖x‖)
SLOPE_RTOL = 1e-6
#: a probe gradient differing from ∇V(x) by more than KINK_RTOL (1 + ‖∇V(x)‖_*) (dual norm) marks a kink
KINK_RTOL = 1e-3


def slope_radius(X: ArrayLike, norm: str | float | Norm = "linf") -> float:
    """δ = SLOPE_RTOL (1 + max_i ‖x_i‖): the radius of the estimating minimizing-movement step."""
    A = np.asarray(X, dtype=float)
    return SLOPE_RTOL * (1.0 + float(np.max(as_norm(norm).norm(A.reshape(-1, A.shape[-1])), initial=0.0)))


#: directions of the search ring in d = 2 (and the two directions ±1 in d = 1)
RING_SIZE = 256


@lru_cache(maxsize=16)
def _ring(d: int, p: float) -> tuple[np.ndarray, float]:
    """Unit directions u_j (‖u_j‖ = 1 in the norm) and their covering ratio ς.

    d = 1: ±1 (ς = 0). d = 2: RING_SIZE equally spaced angles, scaled onto the unit sphere of
    the norm; ς = max over a 64× finer sampling of the sphere of the distance to the nearest
    u_j, plus the finer sampling's largest chord (every point of the sphere lies within one
    fine chord of a fine sample).
    """
    if d == 1:
        return np.array([[1.0], [-1.0]]), 0.0
    nrm = as_norm(p)
    N = RING_SIZE

    def unit(theta):
        U = np.stack([np.cos(theta), np.sin(theta)], axis=1)
        return U / nrm.norm(U)[:, None]

    U = unit(2 * np.pi * np.arange(N) / N)
    fine_theta = 2 * np.pi * np.arange(64 * N) / (64 * N)
    F = unit(fine_theta)
    j = np.arange(64 * N) // 64
    near = np.minimum(nrm.norm(F - U[j]), nrm.norm(F - U[(j + 1) % N]))
    chord = nrm.norm(F - np.roll(F, -1, axis=0))
    return U, float(near.max() + chord.max())


def _search_ratio(d: int, p: float, inner: str) -> float:
    """ς: the search visits a point within ς δ of the ball's minimizer (``docs/verification.md`` §8).

    ``"ring"`` (d ≤ 2): directions on the unit sphere (:func:`_ring`); the minimizer of a
    locally positively homogeneous V over the ball lies on the sphere (or |∂V| = 0).
    ``"global"`` (d = 3): a grid of m points per coordinate on [x − δ, x + δ]^d (spacing
    s = 2δ/(m − 1)): in ℓ∞ a node lies within s/2 = δ/(m − 1) of the minimizer; in ℓp a node
    within d^{1/p} s of it is feasible (shrink the minimizer towards x by d^{1/p} s/2, round).
    ``"local"`` (d > 3) has no covering guarantee: ς = 1 (the trivial 0 ≤ E, |∂V| ≤ Lip).
    """
    if inner == "ring":
        return _ring(d, p)[1]
    if inner != "global":
        return 1.0
    m = _GRID_POINTS[d]
    if p == np.inf:
        return 1.0 / (m - 1)
    return min(1.0, 2.0 * d ** (1.0 / p) / (m - 1))


def _ring_step(V, X: np.ndarray, delta: float, p: float) -> np.ndarray:
    """argmin of V over B_δ(x) (d ≤ 2): the ring's best directions refined by projected gradient."""
    n, d = X.shape
    U, _ = _ring(d, p)
    N = U.shape[0]
    feas = _Feasible(X, delta, None, p)
    oracle = _Oracle(V, X)
    rows = np.arange(n)
    C = (X[:, None, :] + delta * U[None]).reshape(-1, d)
    R = np.repeat(rows, N)
    C = feas.project(C, R)
    vals = oracle.value(C, R).reshape(n, N)
    k = min(4, N)
    best = np.argpartition(vals, k - 1, axis=1)[:, :k]  # (n, k)
    S = np.take_along_axis(C.reshape(n, N, d), best[:, :, None], axis=1).transpose(1, 0, 2).reshape(-1, d)
    Sv = np.take_along_axis(vals, best, axis=1).T.reshape(-1)
    Rk = np.tile(rows, k)
    Sg = oracle.grad(S, Rk)
    v0, g0 = oracle.value_and_grad(X, rows)
    Z, _ = _local(oracle, feas, v0, g0, "canonical", np.random.default_rng(0),
                  {"max_iter": 40, "rtol": 1e-14}, extra=(S, Sv, Sg))
    return Z


def metric_slope(potential, X: ArrayLike, norm: str | float | Norm = "linf", *,
                 return_bound: bool = False, curvature: float = 0.0):
    """Metric slope |∂V|(x) at the rows of X, shape (n,) (``(d,)`` → scalar).

    Parameters
    ----------
    potential : Potential or object with batched ``value``/``grad``
    X : array, shape (n, d) or (d,)
        For a potential with one datum per row (an attack loss with per-point labels) the rows
        are the particles, in order.
    norm : norm specification
        The norm of the space; C¹ slopes use its dual.
    return_bound : bool
        Also return ``bound`` (n,) with |slope − |∂V|(x)| ≤ bound where the derivation of
        ``docs/verification.md`` §8 applies: 0 where the slope is exact, else the probe jump J
        (screened rows), or Lip·ς + 16(d + 1)ε max(|V(x)|, |V(x_δ)|)/δ + curvature·δ/2
        (estimated rows; Lip the largest ‖∇V‖_* sampled in the ball, ς the inner solver's
        covering ratio).
    curvature : float
        An upper bound L₂ of the Lipschitz constant of ∇V on the smooth pieces (it only enters
        the bound: the step's minimum differs from δ|∂V| by ≤ L₂δ²/2).

    Returns
    -------
    ndarray (n,), or (slopes, bound)
    """
    if not (callable(getattr(potential, "value", None)) and callable(getattr(potential, "grad", None))):
        raise TypeError(f"potential must have .value and .grad, got {type(potential).__name__}")
    nrm = as_norm(norm)
    single = np.ndim(X) == 1
    A = as_points(X, "X")
    curvature = real(curvature, "curvature", low=0.0)
    S, B = _metric_slope(potential, A, nrm, curvature)
    if single:
        S, B = S[0], B[0]
    return (S, B) if return_bound else S


def slope_is_exact(potential, X: ArrayLike) -> bool:
    """True when :func:`metric_slope` is exact at every row of X (C¹ V, or a known subdifferential)."""
    if getattr(potential, "smooth", True) or not isinstance(potential, Potential):
        return True
    return potential._subdifferential_box(potential._prepare(X)[0]) is not None


def gradient_jump(potential, X: ArrayLike, radius: float, norm: str | float | Norm = "linf", *,
                  grad: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(J, Lip): J = max_i ‖∇V(x ± r e_i) − ∇V(x)‖_* over the 2d probes, Lip the largest ‖∇V‖_* seen.

    X is (n, d), r = ``radius`` ≥ 0; ``grad`` is ∇V(X) if already known. Each probe is one full
    block (per-row data stays aligned with the rows). Shapes (n,).
    """
    radius = real(radius, "radius", low=0.0)
    nrm = as_norm(norm)
    A = as_points(X, "X")
    n, d = A.shape
    g = np.asarray(potential.grad(A), dtype=float) if grad is None else grad
    jump, lip = np.zeros(n), nrm.dual(g)
    for i in range(d):
        for s in (-1.0, 1.0):
            P = A.copy()
            P[:, i] += s * radius
            gp = np.asarray(potential.grad(P), dtype=float)
            jump = np.maximum(jump, nrm.dual(gp - g))
            lip = np.maximum(lip, nrm.dual(gp))
    return jump, lip


def _metric_slope(V, X: np.ndarray, nrm: Norm, curvature: float) -> tuple[np.ndarray, np.ndarray]:
    n, d = X.shape
    if getattr(V, "smooth", True) or not isinstance(V, Potential):
        return nrm.dual(np.asarray(V.grad(X), dtype=float)), np.zeros(n)
    lohi = V._subdifferential_box(V._prepare(X)[0])
    if lohi is not None:  # exact: min over the box of the dual norm, as Potential.slope computes it
        return nrm.dual(np.clip(0.0, lohi[0], lohi[1])), np.zeros(n)
    delta = slope_radius(X, nrm)
    g = np.asarray(V.grad(X), dtype=float)
    gn = nrm.dual(g)
    # screen: 2d probe gradients at x ± (δ/2) e_i
    jump, lip = gradient_jump(V, X, 0.5 * delta, nrm, grad=g)
    kink = jump > KINK_RTOL * (1.0 + gn)
    S, B = gn.copy(), jump.copy()
    if not kink.any():
        return S, B
    # the rows at a kink: one minimizing-movement step of radius δ (all rows when V carries
    # per-row data, whose rows must stay aligned with the particles)
    rows = np.flatnonzero(kink) if _pointwise(V) else np.arange(n)
    inner = "ring" if d <= 2 else ("global" if d == 3 else "local")
    Xr = X[rows]
    if inner == "ring":
        Z = _ring_step(V, Xr, delta, nrm.p)
    else:
        Z = minmove_step(V, Xr, delta, norm=nrm, inner=inner).x
    v0 = np.asarray(V.value(Xr), dtype=float)
    v1 = np.asarray(V.value(Z), dtype=float)
    E = np.maximum(v0 - v1, 0.0) / delta
    lipz = np.maximum(lip[rows], nrm.dual(np.asarray(V.grad(Z), dtype=float)))
    bound = (lipz * _search_ratio(d, nrm.p, inner)
             + 16 * (d + 1) * EPS * np.maximum(np.abs(v0), np.abs(v1)) / delta + 0.5 * curvature * delta)
    sel = kink[rows]
    S[rows[sel]] = E[sel]
    B[rows[sel]] = bound[sel]
    return S, B
