"""The minimizing-movement scheme for p = ∞ and its inner (step) solvers.

One step of the scheme solves, for every particle independently,

    x_{k+1} ∈ argmin { V(x) : ‖x − x_k‖ ≤ τ, ‖x − c‖ ≤ ε }          (the budget term is optional)

in the flow's norm. For ℓ∞ the feasible set is a box (the intersection of two boxes), for ℓ2
the intersection of two Euclidean balls (projected onto exactly), for other p the intersection
of two ℓp balls (projected onto with Dykstra's algorithm). The step is the p → ∞ limit of
argmin V(x) + ‖x − x_k‖^p / (p τ^{p−1}); its interpolants converge to ∞-curves of maximal slope.

Inner solvers (``inner=``):

``"exact"``
    closed forms. Linear V = ⟨a, x⟩: a vertex x_k + τ v, v ∈ ∂‖·‖_*(−a) (ℓ∞ with a budget: the
    vertex of the intersection box; ℓ2 with a budget: the minimizer over two balls, in closed
    form). Separable quadratic V = ½ Σ a_i x_i² + bᵀx in ℓ∞: per-coordinate minimization over
    the box (clipping of −b_i/a_i for a_i > 0, the better endpoint otherwise). Isotropic
    quadratic V = ½ α‖x‖₂² + bᵀx (α > 0) in ℓ2: the projection of −b/α onto the feasible set.
``"local"``
    batched projected gradient (Armijo backtracking, Barzilai–Borwein steps) started from the
    Euler step (= one Frank–Wolfe step on the linearized problem, i.e. FGSM for ℓ∞) and from
    x_k; the better of the two is kept.
``"global"``
    d ≤ 3 only: V on a uniform grid of the feasible set's bounding box (infeasible points
    discarded), then the projected-gradient refinement from the best grid points, x_k and the
    Euler step. This is the test reference.
``"cbo"``
    consensus-based optimization as used by Weigand, Roith & Burger: N particles drawn
    uniformly in the feasible set, ``n_iter`` iterations of
    X ← P_C(X − λ dt (X − m_α) + σ √dt |X − m_α| ⊙ ξ), m_α = Σ_j X_j e^{−α V(X_j)} / Σ_j e^{−α V(X_j)},
    returning the last consensus point m_α (N × n_iter = 900 evaluations by default). Seeded.
``"auto"``
    ``"exact"`` where a closed form applies, else ``"local"``.

Every step returns a :class:`~wflow.steps.StepInfo` per particle (energy, evaluations, active
constraints, fallbacks). The iterative solvers never increase V: a candidate with
V(candidate) > V(x_k) is replaced by x_k. Mathematics: ``docs/theory.md`` (minimizing movement).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._validation import NonFiniteStep, as_points, integer, real, rng_from
from .norms import SELECTIONS, Norm, as_norm, project_ball, steepest
from .norms import norm as _norm
from .potentials import Potential, ScaledPotential, SumPotential, quadratic_coefficients
from .steps import BALL_ATOL, Ball, StepInfo, StepResult

__all__ = ["MinMoveScheme", "INNER_SOLVERS", "ACTIVE_RTOL", "minmove_step", "project_intersection"]

#: a step (budget) constraint counts as active when ‖x_{k+1} − x_k‖ ≥ τ(1 − ACTIVE_RTOL)
ACTIVE_RTOL = 1e-9

INNER_SOLVERS = ("auto", "exact", "local", "global", "cbo")

_DEFAULTS: dict[str, dict[str, Any]] = {
    "exact": {},
    "local": {"max_iter": 40, "max_evals": 88, "rtol": 1e-12},
    "global": {"points_per_dim": None, "n_seeds": 4, "max_iter": 200, "rtol": 1e-14},
    "cbo": {"n_particles": 30, "n_iter": 30, "alpha": 1e4, "lam": 1.0, "sigma": 1.0, "dt": 0.1},
}
_GRID_POINTS = {1: 401, 2: 41, 3: 15}


# ------------------------------------------------------------------------------------------
# geometry of the feasible set C = B_τ(x_k) ∩ B_ε(c)
# ------------------------------------------------------------------------------------------
def _project_two_l2(Y, a, r1, b, r2):
    """Euclidean projection of the rows of Y onto B₂(a, r1) ∩ B₂(b, r2) (exact).

    If neither single-ball projection lies in the other ball, the projection lies on both
    spheres, i.e. on the (d−2)-sphere with centre m = a + t u, radius ρ, u = (b − a)/|b − a|,
    t = (D² + r1² − r2²)/(2D), ρ = √(r1² − t²); the nearest point of it is m + ρ w/|w| with w the
    component of Y − m orthogonal to u. Assumes the balls intersect.
    """
    P1 = project_ball(Y, a, r1, 2.0)
    ok1 = _norm(P1 - b, 2.0) <= r2 * (1 + 1e-14)
    P2 = project_ball(Y, b, r2, 2.0)
    ok2 = _norm(P2 - a, 2.0) <= r1 * (1 + 1e-14)
    Z = np.where(ok1[:, None], P1, P2)
    both = ~ok1 & ~ok2
    if both.any():
        y, aa, bb = Y[both], a[both], b[both]
        u = bb - aa
        D = _norm(u, 2.0)
        u = u / D[:, None]
        t = (D**2 + r1**2 - r2**2) / (2 * D)
        rho = np.sqrt(np.maximum(r1**2 - t**2, 0.0))
        m = aa + t[:, None] * u
        w = y - m
        w -= np.einsum("nd,nd->n", w, u)[:, None] * u
        wn = _norm(w, 2.0)
        zero = wn <= 1e-300
        if zero.any():  # y on the axis: every point of the sphere is nearest; take one
            e = np.zeros_like(w[zero])
            e[np.arange(e.shape[0]), np.argmin(np.abs(u[zero]), axis=1)] = 1.0
            e -= np.einsum("nd,nd->n", e, u[zero])[:, None] * u[zero]
            w[zero] = e
            wn[zero] = _norm(e, 2.0)
        Z[both] = m + (rho / wn)[:, None] * w
    return Z


def project_intersection(
    Y: np.ndarray,
    x: np.ndarray,
    tau: float,
    center: np.ndarray | None = None,
    budget: float | None = None,
    norm: str | float | Norm = "linf",
    *,
    max_iter: int = 200,
    rtol: float = 1e-14,
) -> np.ndarray:
    """Euclidean projection of the rows of Y onto B_τ(x) ∩ B_budget(center) in the given norm.

    ℓ∞: clipping into the intersection box (exact). ℓ2: exact (:func:`_project_two_l2`).
    Other p: Dykstra's algorithm (alternating projections with corrections) until the
    iterates move less than ``rtol`` · (τ + budget), then a feasibility repair (project onto
    the budget ball, shrink towards x) so that the result is always feasible.

    Parameters
    ----------
    Y, x : arrays, shape (n, d)
    tau : float
    center : array, shape (d,) or (n, d), optional
    budget : float, optional
        Radius ε of the admissible ball (with ``center``). x must lie in B_ε(center).
    norm : norm specification
    """
    p = as_norm(norm).p
    Y = np.asarray(Y, dtype=float)
    x = np.broadcast_to(np.asarray(x, dtype=float), Y.shape)
    if center is None:
        Z = project_ball(Y, x, tau, p)
        return Z if p in (2.0, np.inf) else _shrink_into(Z, x, tau, p)
    if budget is None:
        raise ValueError("budget is required when center is given")
    eps = float(budget)
    c = np.broadcast_to(np.asarray(center, dtype=float), Y.shape)
    if p == np.inf:
        return np.clip(Y, np.maximum(x - tau, c - eps), np.minimum(x + tau, c + eps))
    if p == 2.0:
        Z = _project_two_l2(Y, x, tau, c, eps)
        return _repair(Z, x, tau, c, eps, p)
    Z = project_ball(Y, x, tau, p)
    inside = _norm(x - c, p) + tau <= eps  # B_τ(x) ⊂ B_ε(c): one projection is exact
    rows = np.flatnonzero(~inside)
    if rows.size:
        y, xr, cr = Y[rows], x[rows], c[rows]
        z = y.copy()
        P = np.zeros_like(y)
        Q = np.zeros_like(y)
        scale = rtol * (tau + eps)
        for _ in range(max_iter):
            w = project_ball(z + P, xr, tau, p)
            P = z + P - w
            z_new = project_ball(w + Q, cr, eps, p)
            Q = w + Q - z_new
            done = np.max(np.abs(z_new - z)) <= scale
            z = z_new
            if done:
                break
        Z[rows] = _repair(z, xr, tau, cr, eps, p)
    return Z


def _shrink_into(Z, x, tau, p):
    """Z pulled towards x along the segment until ‖Z − x‖ ≤ τ (the iterative ℓp/ℓ1 ball
    projections meet the radius only to ~1e-13 relative; the step bound must hold exactly)."""
    D = Z - x
    nd = _norm(D, p)
    s = np.where(nd > tau, tau / np.where(nd > 0, nd, 1.0), 1.0)
    return x + s[:, None] * D


def _repair(Z, x, tau, c, eps, p):
    """Make Z exactly feasible: project onto B_ε(c), then shrink towards x into B_τ(x).

    Shrinking keeps the point in B_ε(c) because x and the projected point both lie in it.
    """
    return _shrink_into(project_ball(Z, c, eps, p), x, tau, p)


class _Feasible:
    """C_i = B_τ(x_i) ∩ B_ε(c_i) for a block of particles; rows of candidates map to particles."""

    def __init__(self, X, tau, ball, p):
        self.X, self.tau, self.p = X, float(tau), p
        if ball is None:
            self.c, self.budget = None, None
            lo, hi = X - tau, X + tau
        else:
            self.c = np.broadcast_to(ball.center, X.shape)
            self.budget = float(ball.budget)
            lo = np.maximum(X - tau, self.c - self.budget)
            hi = np.minimum(X + tau, self.c + self.budget)
        self.lo, self.hi = lo, hi  # the box itself for ℓ∞, a bounding box otherwise

    def project(self, Y, rows):
        if self.p == np.inf:
            return np.clip(Y, self.lo[rows], self.hi[rows])
        # general p: a few Dykstra sweeps plus the feasibility repair (a feasible retraction;
        # each ℓp-ball projection is itself iterative, so exact projections would dominate)
        return project_intersection(
            Y, self.X[rows], self.tau, None if self.c is None else self.c[rows], self.budget, self.p,
            max_iter=5,
        )

    def feasible(self, Y, rows, rtol=1e-12):
        ok = _norm(Y - self.X[rows], self.p) <= self.tau * (1 + rtol)
        if self.c is not None:
            ok &= _norm(Y - self.c[rows], self.p) <= self.budget * (1 + rtol) + 1e-300
        return ok


# ------------------------------------------------------------------------------------------
# counted, row-aligned evaluation of the potential
# ------------------------------------------------------------------------------------------
def _pointwise(pot: Potential) -> bool:
    """True when V(x) does not depend on which particle's row x is (no per-particle data)."""
    if isinstance(pot, SumPotential):
        return all(_pointwise(q) for q in pot.parts)
    if isinstance(pot, ScaledPotential):
        return _pointwise(pot.base)
    return type(pot).restrict is Potential.restrict


class _Oracle:
    """Evaluates V / ∇V at candidate rows belonging to particles ``rows`` and counts per particle.

    Potentials with per-particle data (e.g. the label of each attacked point) see the block's
    rows in order; candidates are then evaluated in layers of full, row-aligned blocks.
    """

    def __init__(self, pot: Potential, X: np.ndarray):
        self.pot, self.X = pot, X
        self.n = X.shape[0]
        self.evals = np.zeros(self.n, dtype=np.int64)
        self.aligned = not _pointwise(pot)

    def _count(self, rows, k=1):
        self.evals += k * np.bincount(rows, minlength=self.n)

    def _layered(self, fn, Y, rows):
        order = np.argsort(rows, kind="stable")
        sr = rows[order]
        occ = np.empty_like(rows)
        occ[order] = np.arange(rows.size) - np.searchsorted(sr, sr, side="left")
        out = None
        for j in range(int(occ.max()) + 1 if rows.size else 0):
            m = occ == j
            full = self.X.copy()
            full[rows[m]] = Y[m]
            res = np.asarray(fn(full))
            if out is None:
                out = np.empty((rows.size,) + res.shape[1:])
            out[m] = res[rows[m]]
        return out

    def value(self, Y, rows):
        self._count(rows)
        if not self.aligned:
            return np.asarray(self.pot._value(Y), dtype=float)
        return self._layered(self.pot._value, Y, rows)

    def grad(self, Y, rows):
        self._count(rows)
        if not self.aligned:
            return np.asarray(self.pot._grad(Y), dtype=float)
        return self._layered(self.pot._grad, Y, rows)

    def value_and_grad(self, Y, rows):
        self._count(rows, 2)
        if not self.aligned:
            v, g = self.pot._value_and_grad(Y)
            return np.asarray(v, dtype=float), np.asarray(g, dtype=float)
        v = self._layered(self.pot._value, Y, rows)
        return v, self._layered(self.pot._grad, Y, rows)


# ------------------------------------------------------------------------------------------
# closed forms
# ------------------------------------------------------------------------------------------
def _exact_kind(pot: Potential, p: float, has_ball: bool) -> str | None:
    q = quadratic_coefficients(pot)
    if q is None:
        return None
    A, _ = q
    if A is None or not np.any(A):
        if p in (np.inf, 2.0) or not has_ball:
            return "linear"
        return None
    diag = np.diag(A)
    if p == np.inf and np.all(A == np.diag(diag)):
        return "separable"
    if p == 2.0 and diag[0] > 0 and np.all(A == diag[0] * np.eye(A.shape[0])):
        return "isotropic"
    return None


def _exact_step(kind, pot, feas: _Feasible, selection, rng):
    X, tau, p = feas.X, feas.tau, feas.p
    n, d = X.shape
    q = quadratic_coefficients(pot)
    assert q is not None  # _exact_kind found a closed form
    A, b = q
    b = np.broadcast_to(np.asarray(b, dtype=float), (d,))
    rows = np.arange(n)
    if p == np.inf and kind in ("linear", "separable"):
        a = np.zeros(d) if A is None else np.diag(A)
        lo, hi = feas.lo, feas.hi
        a2, b2 = np.broadcast_to(a, X.shape), np.broadcast_to(b, X.shape)
        # a_i > 0: clip the unconstrained minimizer; a_i < 0: the better endpoint; a_i = 0: by sign(b_i)
        with np.errstate(divide="ignore", invalid="ignore"):
            m = np.clip(-b2 / a2, lo, hi)
        f_lo = 0.5 * a2 * lo**2 + b2 * lo
        f_hi = 0.5 * a2 * hi**2 + b2 * hi
        ends = np.where(f_hi < f_lo, hi, lo)
        flat = (a2 == 0) & (b2 == 0)
        Z = np.where(a2 > 0, m, ends)
        if flat.any():
            # set-valued: every point of [lo_i, hi_i] is a minimizer (sign(0) selection)
            if selection == "random":
                Z = np.where(flat, rng.uniform(lo, hi), Z)
            else:
                Z = np.where(flat, np.clip(X, lo, hi), Z)
        tie = (a2 < 0) & (f_hi == f_lo)
        if selection == "random" and tie.any():
            Z = np.where(tie & (rng.random(X.shape) < 0.5), hi, Z)
        return Z
    if kind == "linear" and feas.c is None:
        v = steepest(np.broadcast_to(-b, X.shape), p, selection=selection, rng=rng)
        return X + tau * v
    if kind == "linear":  # ℓ2, two balls
        return _linear_two_l2(b, X, tau, feas.c, feas.budget, selection, rng)
    if kind == "isotropic":  # ℓ2: argmin ½α‖x + b/α‖² over C = projection of −b/α
        assert A is not None
        alpha = A[0, 0]
        target = np.broadcast_to(-b / alpha, X.shape)
        return feas.project(np.array(target), rows)
    raise AssertionError(kind)  # pragma: no cover


def _linear_two_l2(a, X, tau, c, eps, selection, rng):
    """argmin ⟨a, x⟩ over B₂(X, τ) ∩ B₂(c, ε) in closed form (rows of X, c)."""
    na = float(np.linalg.norm(a))
    if na == 0:
        v = steepest(np.zeros_like(X), 2.0, selection=selection, rng=rng)
        return project_intersection(X + tau * v, X, tau, c, eps, 2.0)
    ah = a / na
    z1 = X - tau * ah
    ok1 = _norm(z1 - c, 2.0) <= eps * (1 + 1e-14)
    z2 = c - eps * ah
    ok2 = _norm(z2 - X, 2.0) <= tau * (1 + 1e-14)
    Z = np.where(ok1[:, None], z1, z2)
    both = ~ok1 & ~ok2
    if both.any():
        # the minimizer lies on both spheres: m + ρ w, w the unit direction of −a ⟂ u
        aa, bb = X[both], c[both]
        u = bb - aa
        D = _norm(u, 2.0)
        u = u / D[:, None]
        t = (D**2 + tau**2 - eps**2) / (2 * D)
        rho = np.sqrt(np.maximum(tau**2 - t**2, 0.0))
        w = -np.broadcast_to(ah, u.shape) + np.einsum("d,nd->n", ah, u)[:, None] * u
        wn = _norm(w, 2.0)
        w = np.divide(w, wn[:, None], out=np.zeros_like(w), where=wn[:, None] > 0)
        Z[both] = aa + t[:, None] * u + rho[:, None] * w
    return _repair(Z, X, tau, c, eps, 2.0)


# ------------------------------------------------------------------------------------------
# iterative solvers
# ------------------------------------------------------------------------------------------
def _euler_start(feas, g, selection, rng):
    v = steepest(-g, feas.p, selection=selection, rng=rng)
    return feas.project(feas.X + feas.tau * v, np.arange(feas.X.shape[0]))


def _pgd(oracle, feas, Z, rows, v, g, max_iter, rtol, max_evals=None):
    """Projected gradient with Armijo backtracking and Barzilai–Borwein step sizes, batched.

    Every candidate row (particle ``rows[j]``) iterates z ← P_C(z − α ∇V(z)); a trial is
    accepted when V drops by at least 1e-4 |⟨∇V, Δz⟩| (else α ← α/4). A row stops when its
    projected step is below ``rtol`` · τ, its decrease is below 1e-15 (1 + |V|), or its
    particle has used ``max_evals`` evaluations. Returns (Z, v) with V never increased.
    """
    Z, v, g = Z.copy(), v.copy(), g.copy()
    tau = feas.tau
    gmax = np.max(np.abs(g), axis=1)
    alpha = tau / np.where(gmax > 0, gmax, 1.0)
    live = gmax > 0
    xtol = rtol * tau
    for _ in range(max_iter):
        if max_evals is not None:  # the next iteration costs ≤ 2 evaluations per live row
            per = np.bincount(rows[live], minlength=oracle.n)
            live &= oracle.evals[rows] + 2 * per[rows] <= max_evals
        act = np.flatnonzero(live)
        if act.size == 0:
            break
        za, ga, r = Z[act], g[act], rows[act]
        Y = feas.project(za - alpha[act, None] * ga, r)
        D = Y - za
        moved = np.max(np.abs(D), axis=1) > xtol
        live[act[~moved]] = False
        act, Y, D, za, ga, r = act[moved], Y[moved], D[moved], za[moved], ga[moved], r[moved]
        if act.size == 0:
            break
        vy = oracle.value(Y, r)
        dec = np.einsum("nd,nd->n", ga, D)
        ok = vy <= v[act] + 1e-4 * dec
        alpha[act[~ok]] *= 0.25
        acc = act[ok]
        if acc.size:
            Ya = Y[ok]
            gy = oracle.grad(Ya, r[ok])
            s = D[ok]
            yv = gy - ga[ok]
            sy = np.einsum("nd,nd->n", s, yv)
            ss = np.einsum("nd,nd->n", s, s)
            gm = np.max(np.abs(gy), axis=1)
            fresh = tau / np.where(gm > 0, gm, 1.0)
            alpha[acc] = np.where(sy > 0, np.minimum(ss / np.where(sy > 0, sy, 1.0), 1e6 * fresh), fresh)
            small = v[acc] - vy[ok] <= 1e-15 * (1 + np.abs(v[acc]))
            Z[acc], v[acc], g[acc] = Ya, vy[ok], gy
            live[acc[small]] = False
        # a row whose step has shrunk to nothing is stationary up to round-off
        live &= alpha * np.max(np.abs(g), axis=1) > xtol * 1e-3
    return Z, v


def _best_of(cands, vals, n):
    """cands (m·n, d) stacked by start, vals (m·n,): best start per particle."""
    V = vals.reshape(-1, n)
    j = np.argmin(V, axis=0)
    idx = j * n + np.arange(n)
    return cands[idx], vals[idx]


def _local(oracle, feas, v0, g0, selection, rng, opts, extra=None):
    n = feas.X.shape[0]
    rows = np.arange(n)
    E = _euler_start(feas, g0, selection, rng)
    vE, gE = oracle.value_and_grad(E, rows)
    # the Frank–Wolfe vertex of the gradient at the Euler point: a second vertex start that
    # catches the nonconvex steps where the best vertex is not the one ∇V(x_k) points to
    F = _euler_start(feas, gE, selection, rng)
    vF, gF = oracle.value_and_grad(F, rows)
    Z = np.concatenate([E, feas.X, F] + ([] if extra is None else [extra[0]]))
    V = np.concatenate([vE, v0, vF] + ([] if extra is None else [extra[1]]))
    G = np.concatenate([gE, g0, gF] + ([] if extra is None else [extra[2]]))
    R = np.tile(rows, len(Z) // n)
    Z, V = _pgd(oracle, feas, Z, R, V, G, opts["max_iter"], opts["rtol"], opts.get("max_evals"))
    return _best_of(Z, V, n)


def _grid(feas, m):
    """Uniform grid of m^d points of each particle's bounding box, shape (n, m^d, d)."""
    n, d = feas.X.shape
    u = np.linspace(0.0, 1.0, m)
    U = np.stack(np.meshgrid(*([u] * d), indexing="ij"), axis=-1).reshape(-1, d)
    return feas.lo[:, None, :] + (feas.hi - feas.lo)[:, None, :] * U[None]


def _global(oracle, feas, v0, g0, selection, rng, opts):
    n, d = feas.X.shape
    if d > 3:
        raise ValueError(f"inner='global' is for dimension d <= 3 (grid search), got d = {d}")
    m = opts["points_per_dim"] or _GRID_POINTS[d]
    k = min(int(opts["n_seeds"]), m**d)
    G = _grid(feas, m)  # (n, M, d)
    M = G.shape[1]
    vals = np.empty((n, M))
    rows_all = np.repeat(np.arange(n), M)
    flatG = G.reshape(-1, d)
    step = max(1, (1 << 20) // max(M * d, 1))  # bound the temporaries to ~8 MiB
    for s in range(0, n, step):
        sl = slice(s * M, min(n, s + step) * M)
        pts, rw = flatG[sl], rows_all[sl]
        ok = feas.feasible(pts, rw) if feas.p != np.inf else np.ones(len(pts), bool)
        vv = np.full(len(pts), np.inf)
        if ok.any():
            vv[ok] = oracle.value(pts[ok], rw[ok])
        vals[s : s + step] = vv.reshape(-1, M)
    seeds = np.argpartition(vals, k - 1, axis=1)[:, :k]  # (n, k)
    S = np.take_along_axis(G, seeds[:, :, None], axis=1)  # (n, k, d)
    Sv = np.take_along_axis(vals, seeds, axis=1)
    S = S.transpose(1, 0, 2).reshape(-1, d)
    Sv = Sv.T.reshape(-1)
    R = np.tile(np.arange(n), k)
    fin = np.isfinite(Sv)
    S = np.where(fin[:, None], S, np.tile(feas.X, (k, 1)))
    Sv = np.where(fin, Sv, np.tile(v0, k))
    Sg = oracle.grad(S, R)
    return _local(oracle, feas, v0, g0, selection, rng,
                  {"max_iter": opts["max_iter"], "rtol": opts["rtol"]}, extra=(S, Sv, Sg))


def _cbo(oracle, feas, v0, rng, opts):
    """Consensus-based optimization in every particle's feasible set (batched over particles)."""
    n, d = feas.X.shape
    N, iters = int(opts["n_particles"]), int(opts["n_iter"])
    alpha, lam, sigma, dt = opts["alpha"], opts["lam"], opts["sigma"], opts["dt"]
    R = np.repeat(np.arange(n), N)
    P = rng.uniform(np.repeat(feas.lo, N, axis=0), np.repeat(feas.hi, N, axis=0))
    P = feas.project(P, R)
    m = feas.X.copy()
    for it in range(iters):
        vals = oracle.value(P, R).reshape(n, N)
        w = np.exp(-alpha * (vals - vals.min(axis=1, keepdims=True)))  # log-sum-exp shift
        w /= w.sum(axis=1, keepdims=True)
        P3 = P.reshape(n, N, d)
        m = np.einsum("nj,njd->nd", w, P3)
        if it == iters - 1:
            break
        diff = P3 - m[:, None, :]
        noise = rng.standard_normal(P3.shape)
        P3 = P3 - lam * dt * diff + sigma * np.sqrt(dt) * np.abs(diff) * noise
        P = feas.project(P3.reshape(-1, d), R)
    m = feas.project(m, np.arange(n))
    return m, oracle.value(m, np.arange(n))


# ------------------------------------------------------------------------------------------
# the scheme
# ------------------------------------------------------------------------------------------
class MinMoveScheme:
    """Minimizing movement: x_{k+1} ∈ argmin{ V(x) : ‖x − x_k‖ ≤ τ } (∩ the budget ball).

    Parameters
    ----------
    norm : norm specification
        The flow's norm (name, order p ≥ 1 or :class:`~wflow.norms.Norm`).
    selection : {"canonical", "random"}
        Where the minimizer is not unique in closed form (zero coefficients of a linear or
        separable quadratic V), ``"canonical"`` keeps the coordinate of x_k (sign(0) = 0),
        ``"random"`` draws a seeded uniform point of the minimizing set; the iterative solvers
        use the selection in their Euler starting point.
    inner : {"auto", "exact", "local", "global", "cbo"}
        Step solver (module docstring).
    inner_options : dict, optional
        Options of the chosen solver — ``"local"``: ``max_iter`` (40), ``max_evals`` (88, per
        particle and step, counting values and gradients), ``rtol`` (1e-12: stop when the
        projected step is below rtol·τ); ``"global"``: ``points_per_dim`` (401/41/15 for
        d = 1/2/3), ``n_seeds`` (4), ``max_iter`` (200), ``rtol`` (1e-14); ``"cbo"``:
        ``n_particles`` (30), ``n_iter`` (30), ``alpha`` (1e4), ``lam`` (1), ``sigma`` (1),
        ``dt`` (0.1). Options given for ``"auto"`` apply to the local solver.
    """

    name = "minmove"
    thread_safe = True  # configuration only; randomness comes from the per-block rng

    def __init__(self, norm: str | float | Norm = "linf", selection: str = "canonical", inner: str = "auto",
                 inner_options: dict | None = None, **options: Any):
        if options:
            raise TypeError(f"unknown options of the minmove scheme: {sorted(options)} (use inner_options=)")
        if selection not in SELECTIONS:
            raise ValueError(f"selection must be one of {SELECTIONS}, got {selection!r}")
        if not isinstance(inner, str) or inner not in INNER_SOLVERS:
            raise ValueError(f"inner must be one of {INNER_SOLVERS}, got {inner!r}")
        self.norm, self.selection, self.inner = as_norm(norm), selection, inner
        key = "local" if inner == "auto" else inner
        if inner_options is not None and not isinstance(inner_options, dict):
            raise TypeError(f"inner_options must be a dict, got {type(inner_options).__name__}")
        given = dict(inner_options or {})
        unknown = set(given) - set(_DEFAULTS[key])
        if unknown:
            raise ValueError(f"inner_options for inner={key!r} must be among {sorted(_DEFAULTS[key])}, got {sorted(unknown)}")
        opts = {**_DEFAULTS[key], **given}
        for name in ("max_iter", "n_seeds", "n_particles", "n_iter"):
            if name in opts:
                opts[name] = integer(opts[name], f"inner_options[{name!r}]", low=1)
        if opts.get("max_evals") is not None:
            opts["max_evals"] = integer(opts["max_evals"], "inner_options['max_evals']", low=4)
        if opts.get("points_per_dim") is not None:
            opts["points_per_dim"] = integer(opts["points_per_dim"], "inner_options['points_per_dim']", low=2)
        for name in ("rtol", "alpha", "lam", "sigma", "dt"):
            if name in opts:
                opts[name] = real(opts[name], f"inner_options[{name!r}]", low=0.0)
        self.options = opts

    def __repr__(self) -> str:
        return f"MinMoveScheme(norm={self.norm.name!r}, inner={self.inner!r}, selection={self.selection!r})"

    def solver_for(self, potential: Potential, has_ball: bool) -> str:
        """The inner solver used for ``potential`` (resolves ``"auto"``)."""
        if self.inner == "auto":
            return "exact" if _exact_kind(potential, self.norm.p, has_ball) else "local"
        return self.inner

    def step(self, potential: Potential, X: np.ndarray, tau: float, ball: Ball | None,
             out: np.ndarray, rng: np.random.Generator | None = None) -> StepInfo:
        """Write x_{k+1} for every row of X into ``out``; return the per-particle step record."""
        rng = np.random.default_rng() if rng is None else rng
        n = X.shape[0]
        rows = np.arange(n)
        p = self.norm.p
        feas = _Feasible(X, tau, ball, p)
        solver = self.solver_for(potential, ball is not None)
        oracle = _Oracle(potential, X)
        fallback = np.zeros(n, dtype=bool)
        if solver == "exact":
            kind = _exact_kind(potential, p, ball is not None)
            if kind is None:
                raise ValueError(
                    "inner='exact' needs a linear potential (ℓ∞, ℓ2, or any p without budget), a separable "
                    f"quadratic (ℓ∞) or an isotropic quadratic (ℓ2); got {potential!r} in {self.norm}"
                )
            Z = _exact_step(kind, potential, feas, self.selection, rng)
            energy = oracle.value(Z, rows)  # exact minimizers: V(Z) ≤ V(x_k), no fallback needed
        else:
            if solver == "cbo":
                v0 = oracle.value(X, rows)
                Z, energy = _cbo(oracle, feas, v0, rng, self.options)
            else:
                v0, g0 = oracle.value_and_grad(X, rows)
                bad = ~(np.isfinite(v0) & np.all(np.isfinite(g0), axis=1))
                if bad.any():
                    raise NonFiniteStep("potential.value or potential.grad is non-finite at the start "
                                        "of a minimizing-movement step", np.flatnonzero(bad))
                run = _local if solver == "local" else _global
                Z, energy = run(oracle, feas, v0, g0, self.selection, rng, self.options)
            bad = ~np.isfinite(energy) | ~np.all(np.isfinite(Z), axis=1)
            if bad.any():  # a NaN candidate would otherwise "fall back" and freeze the particle
                raise NonFiniteStep("the minimizing-movement inner solver met non-finite values of the "
                                    "potential (or its gradient)", np.flatnonzero(bad))
            fallback = ~(energy <= v0)
            if fallback.any():
                Z[fallback] = X[fallback]
                energy = np.where(fallback, v0, energy)
        if solver == "exact" and not np.all(np.isfinite(energy)):
            raise NonFiniteStep("potential.value is non-finite after an exact minimizing-movement step",
                                np.flatnonzero(~np.isfinite(energy)))
        out[...] = Z
        step_len = _norm(out - X, p)
        budget_active = None
        if ball is not None:
            budget_active = _norm(out - feas.c, p) >= ball.budget * (1 - ACTIVE_RTOL)
        return StepInfo(energy=energy, evals=oracle.evals.copy(), active=step_len >= tau * (1 - ACTIVE_RTOL),
                        fallback=fallback, budget_active=budget_active)


def minmove_step(potential: Potential, x: np.ndarray, tau: float, norm: str | float | Norm = "linf",
                 budget: float | None = None, center: np.ndarray | None = None, inner: str = "auto",
                 seed: int | np.random.Generator | None = None, selection: str = "canonical",
                 **inner_options: Any) -> StepResult:
    """One minimizing-movement step from the rows of x (a convenience wrapper, mainly for studies).

    Returns
    -------
    StepResult
        ``.x`` (n, d) the next points, ``.info`` the per-particle :class:`~wflow.steps.StepInfo`.
    """
    X = as_points(x, "x")
    tau = real(tau, "tau", low=0.0, strict=True)
    nrm = as_norm(norm)
    n, d = X.shape
    ball = None
    if budget is not None:
        budget = real(budget, "budget", low=0.0)
        c = X if center is None else as_points(center, "center", dim=d)
        if c.shape[0] not in (1, n):
            raise ValueError(f"center must have shape ({d},) or ({n}, {d}), got {c.shape}")
        ball = Ball(np.array(np.broadcast_to(c, X.shape)), budget, nrm)
        if not np.all(np.isclose(ball.project(X), X, rtol=0, atol=BALL_ATOL)):
            raise ValueError("x must lie in the budget ball B_budget(center)")
    elif center is not None:
        raise ValueError("center is only used with a budget: pass budget=... as well")
    scheme = MinMoveScheme(norm=nrm, selection=selection, inner=inner, inner_options=inner_options or None)
    out = np.empty_like(X)
    info = scheme.step(potential, X, tau, ball, out, rng_from(seed))
    return StepResult(out, info)
