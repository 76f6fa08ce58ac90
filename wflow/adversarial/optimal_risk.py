"""The exact optimal adversarial risk of a two-class empirical distribution (an OT quantity).

For P = ½μ₀ + ½μ₁ and perturbations in the closed ball ‖δ‖ ≤ ε, no classifier has an
adversarial 0-1 risk below

    R*(ε) = ½ · F(2ε),   F(r) = max{π(‖x − x'‖ ≤ r) : π a coupling of μ₀ and μ₁},

the largest mass transportable between μ₀ and μ₁ along pairs at distance ≤ 2ε (Bhagoji, Cullina,
Mittal 2019; Pydi & Jog 2020), and some classifier reaches it. For empirical measures F is a
maximum flow on the *conflict graph* {(i, j) : ‖x⁰_i − x¹_j‖ ≤ 2ε}; with uniform weights and equal
sizes it is M/n, M the size of a maximum matching. See ``docs/robustness.md``.

The computation has two public stages so that the graph can be built elsewhere (e.g. blockwise
on a cluster): :func:`conflict_graph` (distances by blocks: BLAS for ℓ2, never an n×m matrix)
and :func:`optimal_risk_from_graph` (the budget sweep). The sweep reuses the flow of the previous
budget: the graph only grows with ε, so each budget only augments the previous flow in its
residual network.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np
import scipy.sparse as sp
from scipy.optimize import linprog
from scipy.sparse.csgraph import maximum_bipartite_matching, maximum_flow
from scipy.spatial.distance import cdist

from .._validation import as_points, integer
from ..measures import probability_weights
from ..norms import Norm, as_norm

__all__ = [
    "ConflictGraph",
    "conflict_graph",
    "OptimalAttack",
    "OptimalRisk",
    "optimal_risk_from_graph",
    "optimal_adversarial_risk",
    "MulticlassRiskBound",
    "pairwise_risk_lower_bound",
]

#: elements of one distance block (rows × cols); 2²² float64 = 32 MiB
BLOCK_ELEMENTS = 1 << 22
#: largest integer scale of the capacities (scipy's max-flow works in int32)
MAX_SCALE = 1 << 30
_U32 = float(np.finfo(np.float32).eps) / 2


# ------------------------------------------------------------------------------------------------
# stage 1: the conflict graph
# ------------------------------------------------------------------------------------------------
@dataclass
class ConflictGraph:
    """Pairs (i, j) with ‖X0[i] − X1[j]‖ ≤ radius (closed ball).

    Attributes
    ----------
    rows, cols : ndarray of int, shape (E,)
        Indices into X0 and X1.
    dists : ndarray, shape (E,)
        ‖X0[rows] − X1[cols]‖. Exact (direct formula) for ℓ1/ℓ∞/ℓp; for ℓ2 pairs whose distance
        is within the Gram round-off of ``radius`` or of a radius in ``exact_at`` are recomputed
        directly, the others carry the BLAS value (error ≤ ``dist_tol`` relative to the radius
        tests, which are therefore exact at every radius in ``(radius,) + exact_at``).
    shape : (n0, n1)
    radius : float
    norm : Norm
    exact_at : tuple of float
        Radii ≤ ``radius`` at which ``dists <= r`` is the exact membership test.
    """

    rows: np.ndarray
    cols: np.ndarray
    dists: np.ndarray
    shape: tuple
    radius: float
    norm: Norm
    exact_at: tuple = ()

    @property
    def n_edges(self) -> int:
        return int(self.rows.size)

    def within(self, r: float) -> np.ndarray:
        """Boolean mask of the edges at distance ≤ r."""
        return self.dists <= r

    def to_dict(self) -> dict:
        return {"shape": list(self.shape), "radius": self.radius, "norm": self.norm.name,
                "n_edges": self.n_edges, "exact_at": list(self.exact_at)}


def _lower_factor(p: float, d: int) -> float:
    """c with ‖v‖_p ≥ c‖v‖₂ for all v ∈ R^d."""
    if p >= 2:
        return d ** (1.0 / p - 0.5) if np.isfinite(p) else d ** -0.5
    return 1.0


def _direct_pairs(A: np.ndarray, B: np.ndarray, r: np.ndarray, c: np.ndarray, p: float) -> np.ndarray:
    """‖A[r] − B[c]‖_p by the direct formula, in chunks."""
    out = np.empty(r.size)
    step = max(1, BLOCK_ELEMENTS // max(1, A.shape[1]))
    for s in range(0, r.size, step):
        diff = A[r[s:s + step]] - B[c[s:s + step]]
        if p == 2:
            out[s:s + step] = np.sqrt(np.einsum("ij,ij->i", diff, diff))
        elif p == 1:
            out[s:s + step] = np.abs(diff).sum(axis=1)
        elif p == np.inf:
            out[s:s + step] = np.abs(diff).max(axis=1)
        else:
            out[s:s + step] = (np.abs(diff) ** p).sum(axis=1) ** (1.0 / p)
    return out


def _cdist(A: np.ndarray, B: np.ndarray, p: float) -> np.ndarray:
    if p == 1:
        return cdist(A, B, "cityblock")
    if p == np.inf:
        return cdist(A, B, "chebyshev")
    return cdist(A, B, "minkowski", p=p)


def conflict_graph(X0, X1, radius: float, norm="linf", *, block_size: int | None = None,
                   exact_at=()) -> ConflictGraph:
    """All pairs (i, j) with ‖X0[i] − X1[j]‖ ≤ radius, computed block by block.

    Blocks of ``block_size`` × ``block_size`` pairs (default: 2²² pairs per block) are screened
    with the BLAS Gram identity ‖a − b‖₂² = ‖a‖² + ‖b‖² − 2⟨a, b⟩ on centered float32 data (one
    product of (d + 2)-vectors), whose error (conversion and round-off) is below
    4(d + 6)u(‖a‖² + ‖b‖²), u = 2⁻²⁴ (derivation in ``docs/robustness.md``; the code uses twice
    that). ℓ2: pairs within that bound of
    ``radius`` or of a radius in ``exact_at`` are recomputed directly. ℓ1/ℓ∞/ℓp: pairs that the
    screen cannot exclude (‖·‖_p ≥ c_{p,d}‖·‖₂) get their exact distance (scipy ``cdist`` on
    dense blocks, direct differences on sparse ones). Memory: one block plus the edges.

    Parameters
    ----------
    X0 : array, shape (n0, d)
    X1 : array, shape (n1, d)
    radius : float ≥ 0
    norm : norm specification
    block_size : int, optional
        Side of the square distance blocks.
    exact_at : sequence of float, optional
        Further radii (≤ radius) at which the membership test must be exact (ℓ2 only matters).

    Returns
    -------
    ConflictGraph
    """
    A = as_points(X0, "X0")
    B = as_points(X1, "X1", dim=A.shape[1])
    radius = _radius(radius, "radius")
    nrm = as_norm(norm)
    p = nrm.p
    if block_size is None:
        bs = int(math.isqrt(BLOCK_ELEMENTS))
    else:
        bs = integer(block_size, "block_size", low=1)
    ex = np.unique(np.asarray([_radius(r, "exact_at") for r in exact_at] + [radius], dtype=float))
    if ex[-1] > radius:
        raise ValueError(f"exact_at radii must be <= radius = {radius:g}, got max {ex[-1]:g}")
    n0, d = A.shape
    n1 = B.shape[0]
    center = 0.5 * (A.mean(axis=0) + B.mean(axis=0))
    # the screen works on centered float32 data (smaller round-off, twice the BLAS speed), with
    # the squared norms folded into one product: [a, s‖a‖², 1]·[−2b, 1, s‖b‖²] = s(‖a‖² + ‖b‖²) − 2⟨a, b⟩
    Ac, Bc = (A - center).astype(np.float32), (B - center).astype(np.float32)
    a2 = np.einsum("ij,ij->i", Ac, Ac).astype(float)
    b2 = np.einsum("ij,ij->i", Bc, Bc).astype(float)
    rel = 8.0 * (d + 6) * _U32  # twice the error bound of the folded product (docs/robustness.md)
    Aa = np.empty((n0, d + 2), np.float32)
    Aa[:, :d], Aa[:, d], Aa[:, d + 1] = Ac, (1 - rel) * a2, 1.0
    Ba = np.empty((n1, d + 2), np.float32)
    Ba[:, :d], Ba[:, d], Ba[:, d + 1] = -2.0 * Bc, 1.0, (1 - rel) * b2
    del Ac, Bc
    lf = _lower_factor(p, d)
    # the Gram screen keeps pairs with ‖·‖₂ ≤ radius / lf (within round-off)
    keep2 = np.float32((radius / lf) ** 2 * (1 + 8 * _U32))
    ex2 = ex * ex
    R, C, D = [], [], []
    for i0 in range(0, n0, bs):
        Ab = A[i0:i0 + bs]
        for j0 in range(0, n1, bs):
            Bb = B[j0:j0 + bs]
            G = Aa[i0:i0 + bs] @ Ba[j0:j0 + bs].T
            r, c = np.nonzero(G <= keep2)
            if r.size == 0:
                continue
            t = rel * (a2[r + i0] + b2[c + j0])
            g = G[r, c] + t  # estimate of ‖a − b‖², error ≤ t / 2
            if p == 2:
                dist = np.sqrt(np.maximum(g, 0.0))
                k = np.clip(np.searchsorted(ex2, g), 1, ex2.size) - 1  # nearest radii below/above
                amb = (np.abs(g - ex2[k]) <= t) | (np.abs(g - ex2[np.minimum(k + 1, ex2.size - 1)]) <= t)
                if amb.any():
                    dist[amb] = _direct_pairs(Ab, Bb, r[amb], c[amb], p)
            elif r.size > 0.25 * G.size:
                dist = _cdist(Ab, Bb, p)[r, c]
            else:
                dist = _direct_pairs(Ab, Bb, r, c, p)
            m = dist <= radius
            R.append((r[m] + i0).astype(np.int64))
            C.append((c[m] + j0).astype(np.int64))
            D.append(dist[m])
    cat = (lambda xs, dt: np.concatenate(xs) if xs else np.empty(0, dt))
    return ConflictGraph(rows=cat(R, np.int64), cols=cat(C, np.int64), dists=cat(D, float), shape=(n0, n1),
                         radius=radius, norm=nrm, exact_at=tuple(float(x) for x in ex))


def _radius(r, name) -> float:
    try:
        v = float(r)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a real number, got {type(r).__name__}") from None
    if isinstance(r, bool) or not np.isfinite(v) or v < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {r!r}")
    return v


# ------------------------------------------------------------------------------------------------
# stage 2: the max-flow sweep
# ------------------------------------------------------------------------------------------------
@dataclass
class OptimalAttack:
    """An optimal attack at one budget: matched pairs moved to their midpoints.

    Attributes
    ----------
    eps : float
    rows, cols : ndarray of int, shape (m,)
        Matched pairs (X0[rows], X1[cols]), ‖X0[rows] − X1[cols]‖ ≤ 2ε.
    mass : ndarray, shape (m,)
        Mass π_ij moved along each pair (under μ₀, μ₁; Σ mass = F(2ε)).
    delta0, delta1 : ndarray, shape (m, d)
        Perturbations (X1[cols] − X0[rows])/2 and its negative (only when the points were
        given, i.e. not from a bare graph): both points reach the midpoint, where no
        classifier can be right on both.
    """

    eps: float
    rows: np.ndarray
    cols: np.ndarray
    mass: np.ndarray
    delta0: np.ndarray | None = None
    delta1: np.ndarray | None = None

    def to_dict(self) -> dict:
        return {"eps": self.eps, "rows": self.rows.tolist(), "cols": self.cols.tolist(),
                "mass": self.mass.tolist()}


@dataclass
class OptimalRisk:
    """R*(ε) over a sweep of budgets, with the transported mass and optional optimal attacks.

    Attributes
    ----------
    eps, risk, transported : ndarray, shape (K,)
        Budgets, R*(ε) = ½F(2ε) and F(2ε).
    norm : Norm
    exact : bool
        True when F was computed as an integer max-flow (rational weights); False when the
        weights forced the LP fallback (HiGHS, primal feasibility tolerance 1e-9).
    attacks : list of OptimalAttack (empty unless requested)
    """

    eps: np.ndarray
    risk: np.ndarray
    transported: np.ndarray
    norm: Norm
    exact: bool
    attacks: list = field(default_factory=list, repr=False)

    def to_dict(self) -> dict:
        return {"eps": self.eps.tolist(), "risk": self.risk.tolist(), "transported": self.transported.tolist(),
                "norm": self.norm.name, "exact": self.exact, "attacks": [a.to_dict() for a in self.attacks]}


def _integer_capacities(w: np.ndarray) -> tuple[np.ndarray, int] | None:
    """(c, D) with w = c / D exactly (c integer), or None if D would exceed ``MAX_SCALE``."""
    D = 1
    fr = []
    for x in np.unique(w):
        f = Fraction(float(x)).limit_denominator(1 << 24)
        if float(f) != float(x):
            return None
        fr.append(f)
        D = D * f.denominator // math.gcd(D, f.denominator)
        if D > MAX_SCALE:
            return None
    c = np.rint(w * D)
    if not np.array_equal(c / D, w):
        return None
    return c.astype(np.int64), D


def _residual_augment(n0, n1, rows, cols, cap_e, flow_e, c0, out0, c1, in1):
    """Augment the flow (flow_e on edges, out0/in1 at the terminals) to a maximum one.

    Builds the residual network of the current flow and runs scipy's max-flow on it; the
    increment is added in place. Returns the increase of the flow value.
    """
    s, t = 0, n0 + n1 + 1
    rnode = rows + 1
    cnode = cols + 1 + n0
    fwd = cap_e - flow_e
    f_m, b_m = fwd > 0, flow_e > 0
    src = c0 - out0
    snk = c1 - in1
    si, tj = np.nonzero(src > 0)[0], np.nonzero(snk > 0)[0]
    if si.size == 0 or tj.size == 0:
        return 0
    u = np.concatenate([np.zeros(si.size, np.int64), rnode[f_m], cnode[b_m], tj + 1 + n0])
    v = np.concatenate([si + 1, cnode[f_m], rnode[b_m], np.full(tj.size, t, np.int64)])
    w = np.concatenate([src[si], fwd[f_m], flow_e[b_m], snk[tj]]).astype(np.int32)
    G = sp.csr_matrix((w, (u, v)), shape=(t + 1, t + 1))
    res = maximum_flow(G, s, t)
    if res.flow_value == 0:
        return 0
    Fl = res.flow.tocoo()
    fv = Fl.data
    sel = (Fl.row >= 1) & (Fl.row <= n0) & (Fl.col > n0) & (Fl.col < t) & (fv != 0)
    key_e = rows * n1 + cols
    order = np.argsort(key_e, kind="stable")
    keys = (Fl.row[sel] - 1).astype(np.int64) * n1 + (Fl.col[sel] - 1 - n0)
    pos = order[np.searchsorted(key_e, keys, sorter=order)]
    np.add.at(flow_e, pos, fv[sel].astype(np.int64))
    ms = (Fl.row == s) & (Fl.col >= 1) & (Fl.col <= n0)
    np.add.at(out0, Fl.col[ms] - 1, fv[ms].astype(np.int64))
    mt = (Fl.col == t) & (Fl.row > n0) & (Fl.row < t)
    np.add.at(in1, Fl.row[mt] - 1 - n0, fv[mt].astype(np.int64))
    return int(res.flow_value)


def _lp_flow(n0, n1, rows, cols, w0, w1) -> tuple[float, np.ndarray]:
    """max Σ π_e s.t. row sums ≤ w0, column sums ≤ w1, π ≥ 0 (HiGHS)."""
    E = rows.size
    if E == 0:
        return 0.0, np.zeros(0)
    A = sp.vstack([sp.csr_matrix((np.ones(E), (rows, np.arange(E))), shape=(n0, E)),
                   sp.csr_matrix((np.ones(E), (cols, np.arange(E))), shape=(n1, E))]).tocsr()
    res = linprog(-np.ones(E), A_ub=A, b_ub=np.concatenate([w0, w1]), bounds=(0, None), method="highs")
    if res.status != 0:
        raise RuntimeError(f"the transport LP did not solve: {res.message}")
    return float(-res.fun), np.maximum(res.x, 0.0)


def _budgets(eps) -> tuple[np.ndarray, bool]:
    scalar = np.ndim(eps) == 0
    try:
        e = np.asarray(eps, dtype=float).reshape(-1)
    except (TypeError, ValueError):
        raise TypeError(f"eps must be a number or an array of numbers, got {type(eps).__name__}") from None
    if e.size == 0 or not np.all(np.isfinite(e)) or np.any(e < 0):
        raise ValueError(f"eps must be finite and >= 0 (at least one value), got {eps!r}")
    return e, scalar


def optimal_risk_from_graph(graph: ConflictGraph, eps, weights0=None, weights1=None, *,
                            return_attack: bool = False, X0=None, X1=None) -> OptimalRisk:
    """R*(ε) = ½F(2ε) for every budget, from a conflict graph of radius ≥ 2·max ε.

    Budgets are processed in increasing order; the flow of the previous budget stays feasible
    (the graph only grows), so each budget augments it in its residual network (scipy's
    max-flow). Once F reaches 1 (every point conflicted) the remaining budgets are not solved.
    Weights that are exact rationals with a common denominator ≤ 2³⁰ (uniform weights always
    are) make F an exact integer max-flow; other weights use the LP (HiGHS) per budget.

    Parameters
    ----------
    graph : ConflictGraph
    eps : float or array of float ≥ 0
    weights0, weights1 : array, optional
        Probability weights of μ₀ (n0,) and μ₁ (n1,) (uniform when omitted).
    return_attack : bool
        Also return an :class:`OptimalAttack` per budget (with perturbations if X0, X1 given).
    X0, X1 : arrays, optional
        The points the graph was built from (for the attack's perturbations).

    Returns
    -------
    OptimalRisk
    """
    if not isinstance(graph, ConflictGraph):
        raise TypeError(f"graph must be a ConflictGraph, got {type(graph).__name__}")
    e, _ = _budgets(eps)
    n0, n1 = graph.shape
    if 2 * e.max() > graph.radius:
        raise ValueError(f"eps must satisfy 2*eps <= graph.radius = {graph.radius:g}, got max eps {e.max():g}")
    w0 = None if weights0 is None else probability_weights(weights0, n0, owner="X0")
    w1 = None if weights1 is None else probability_weights(weights1, n1, owner="X1")
    if w0 is None and w1 is None:
        L = n0 * n1 // math.gcd(n0, n1)
        ic0, ic1 = (np.full(n0, L // n0, np.int64), L), (np.full(n1, L // n1, np.int64), L)
    else:
        w0 = np.full(n0, 1.0 / n0) if w0 is None else w0
        w1 = np.full(n1, 1.0 / n1) if w1 is None else w1
        ic0, ic1 = _integer_capacities(w0), _integer_capacities(w1)
    caps = None
    if ic0 is not None and ic1 is not None:
        Dn = ic0[1] * ic1[1] // math.gcd(ic0[1], ic1[1])
        if Dn <= MAX_SCALE:
            caps = (ic0[0] * (Dn // ic0[1]), ic1[0] * (Dn // ic1[1]), Dn)
    if caps is None:
        w0 = np.full(n0, 1.0 / n0) if w0 is None else w0
        w1 = np.full(n1, 1.0 / n1) if w1 is None else w1
    F, attacks = _flow_sweep(graph, e, caps, (w0, w1), return_attack)
    atk = []
    if return_attack:
        A = None if X0 is None else as_points(X0, "X0")
        B = None if X1 is None else as_points(X1, "X1")
        for i, (r, c, m) in enumerate(attacks):
            d0 = None if A is None or B is None else 0.5 * (B[c] - A[r])
            atk.append(OptimalAttack(eps=float(e[i]), rows=r, cols=c, mass=m, delta0=d0,
                                     delta1=None if d0 is None else -d0))
    return OptimalRisk(eps=e, risk=0.5 * F, transported=F, norm=graph.norm, exact=caps is not None, attacks=atk)


def _flow_sweep(graph: ConflictGraph, e: np.ndarray, caps, weights, return_attack: bool):
    """F(2ε) for every budget (in the given order) and the optimal flows (if asked).

    ``caps = (c0, c1, D)``: integer capacities with masses c/D (exact max-flow, reused from
    budget to budget); ``None``: the LP on the float ``weights`` per budget.
    """
    n0, n1 = graph.shape
    order = np.argsort(e, kind="stable")
    radii = 2.0 * e[order]
    # bucket of each edge: the first budget (in increasing order) whose radius contains it
    bucket = np.searchsorted(radii, graph.dists, side="left")
    keep = np.nonzero(bucket < radii.size)[0]
    eorder = keep[np.argsort(bucket[keep], kind="stable")]
    rows, cols = graph.rows[eorder].astype(np.int64), graph.cols[eorder].astype(np.int64)
    ends = np.searchsorted(bucket[eorder], np.arange(radii.size), side="right")
    F = np.zeros(radii.size)
    flows = [None] * radii.size
    if caps is not None and np.all(caps[0] == 1) and np.all(caps[1] == 1):
        # unit capacities: F = M/D with M a maximum matching (scipy's Hopcroft–Karp per budget
        # that adds edges; measured faster than augmenting the previous matching in the residual
        # network with scipy's max-flow — see docs/robustness.md)
        Dn = caps[2]
        full = min(n0, n1)
        M, done, match = 0, -1, np.full(n0, -1)
        for k in range(radii.size):
            E = int(ends[k])
            if E > done and M < full:
                G = sp.csr_matrix((np.ones(E, np.int8), (rows[:E], cols[:E])), shape=(n0, n1))
                match = maximum_bipartite_matching(G, perm_type="column")
                M, done = int(np.count_nonzero(match >= 0)), E
            F[k] = M / Dn
            if return_attack:
                r = np.nonzero(match >= 0)[0]
                flows[k] = (r, match[r].astype(np.int64), np.full(r.size, 1.0 / Dn))
    elif caps is not None:
        c0, c1, Dn = caps
        full = min(int(c0.sum()), int(c1.sum()))
        flow = np.zeros(rows.size, np.int64)
        out0, in1 = np.zeros(n0, np.int64), np.zeros(n1, np.int64)
        total, done = 0, 0
        for k in range(radii.size):
            E = int(ends[k])
            if E > done and total < full:
                cap = np.minimum(c0[rows[:E]], c1[cols[:E]])
                total += _residual_augment(n0, n1, rows[:E], cols[:E], cap, flow[:E], c0, out0, c1, in1)
                done = E
            F[k] = total / Dn
            if return_attack:
                m = np.nonzero(flow[:E])[0]
                flows[k] = (rows[m], cols[m], flow[m] / Dn)
    else:
        w0, w1 = weights
        for k in range(radii.size):
            E = int(ends[k])
            F[k], x = _lp_flow(n0, n1, rows[:E], cols[:E], w0, w1)
            if return_attack:
                m = np.nonzero(x > 0)[0]
                flows[k] = (rows[m], cols[m], x[m])
    out = np.empty_like(F)
    out[order] = F
    return out, [flows[int(j)] for j in np.argsort(order)] if return_attack else []


def optimal_adversarial_risk(X0, X1, eps, norm="linf", weights0=None, weights1=None, *,
                             return_attack: bool = False, block_size: int | None = None):
    """The minimal adversarial 0-1 risk of any classifier on P = ½μ₀ + ½μ₁: R*(ε) = ½F(2ε).

    μ₀, μ₁ are the (weighted) empirical measures of X0 and X1; perturbations lie in the closed
    ball ‖δ‖ ≤ ε of ``norm``. Computes the conflict graph once at radius 2·max ε
    (:func:`conflict_graph`, exact at every 2ε) and sweeps the budgets with a reused max-flow
    (:func:`optimal_risk_from_graph`). With uniform weights and n0 = n1 = n, F = M/n with M
    the size of a maximum matching of the conflict graph. See ``docs/robustness.md``.

    Parameters
    ----------
    X0 : array, shape (n0, d)
        Points of class 0.
    X1 : array, shape (n1, d)
        Points of class 1.
    eps : float or array of float ≥ 0
        Budget(s).
    norm : norm specification ("linf", "l2", "l1" or p)
    weights0, weights1 : array, optional
        Probability weights (uniform when omitted).
    return_attack : bool
        Return the full :class:`OptimalRisk` (with the optimal attacks: matched pairs, masses,
        midpoint perturbations) instead of the risk alone.
    block_size : int, optional
        Distance block side (memory ≈ 8·block_size² bytes).

    Returns
    -------
    float (scalar eps), ndarray of the shape of eps, or OptimalRisk (``return_attack=True``)
    """
    A = as_points(X0, "X0")
    B = as_points(X1, "X1", dim=A.shape[1])
    e, scalar = _budgets(eps)
    nrm = as_norm(norm)
    if not isinstance(return_attack, (bool, np.bool_)):
        raise TypeError(f"return_attack must be True or False, got {type(return_attack).__name__}")
    n0, n1 = len(A), len(B)
    w0 = None if weights0 is None else probability_weights(weights0, n0, owner="X0")
    w1 = None if weights1 is None else probability_weights(weights1, n1, owner="X1")
    g = conflict_graph(A, B, 2 * e.max(), nrm, block_size=block_size, exact_at=tuple(2 * e))
    res = optimal_risk_from_graph(g, e, w0, w1, return_attack=return_attack, X0=A, X1=B)
    if return_attack:
        return res
    if scalar:
        return float(res.risk[0])
    return res.risk.reshape(np.shape(eps))


# ------------------------------------------------------------------------------------------------
# multiclass: a pairwise lower bound
# ------------------------------------------------------------------------------------------------
@dataclass
class MulticlassRiskBound:
    """Pairwise-matching lower bound on the optimal adversarial risk with k classes.

    Attributes
    ----------
    eps : ndarray, shape (K,)
    bound : ndarray, shape (K,)
        max over matchings 𝓜 of the classes of Σ_{(a,b)∈𝓜} F_ab(2ε).
    pair_mass : ndarray, shape (K, k, k)
        F_ab(2ε): the max-flow between the class-a and class-b masses of P (symmetric).
    pairs : list of list of (a, b)
        The optimal class matching per budget.
    classes : ndarray, shape (k,)
    """

    eps: np.ndarray
    bound: np.ndarray
    pair_mass: np.ndarray
    pairs: list
    classes: np.ndarray

    def to_dict(self) -> dict:
        return {"eps": self.eps.tolist(), "bound": self.bound.tolist(), "classes": self.classes.tolist(),
                "pairs": [[[int(a), int(b)] for a, b in m] for m in self.pairs],
                "pair_mass": self.pair_mass.tolist()}


def _matchings(k: int):
    """All matchings (sets of disjoint pairs) of {0, …, k−1} that are maximal by inclusion."""
    def rec(rest):
        if len(rest) < 2:
            yield []
            return
        a, tail = rest[0], rest[1:]
        yield from rec(tail)  # a unmatched
        for i, b in enumerate(tail):
            for m in rec(tail[:i] + tail[i + 1:]):
                yield [(a, b)] + m
    return list(rec(list(range(k))))


def pairwise_risk_lower_bound(X, y, eps, norm="linf", weights=None, *, block_size=None) -> MulticlassRiskBound:
    """A lower bound on the optimal adversarial 0-1 risk of P = Σ_i w_i δ_(x_i, y_i), k classes.

    For classes a ≠ b, any classifier f errs (under attack) on at least the mass F_ab(2ε) of
    the points of a and b — the max-flow between the class masses of P (reduce f to the binary
    rule "a if f = a else b", whose adversarial errors are fewer on both classes). Disjoint
    pairs add up, so R*(ε) ≥ max_𝓜 Σ_{(a,b)∈𝓜} F_ab(2ε) over matchings 𝓜 of the classes
    (enumerated: k ≤ 12). It is a bound, not the k-class optimum (which needs hyperedges).
    See ``docs/robustness.md``.

    Parameters
    ----------
    X : array, shape (n, d)
    y : array of int, shape (n,)
    eps : float or array of float ≥ 0
    norm : norm specification
    weights : array, shape (n,), optional
        Probability weights of the points (uniform when omitted).

    Returns
    -------
    MulticlassRiskBound
    """
    Xa = as_points(X, "X")
    yv = np.asarray(y)
    if yv.shape != (len(Xa),) or not np.issubdtype(yv.dtype, np.integer):
        raise ValueError(f"y must be integer labels of shape ({len(Xa)},), got {yv.dtype} {yv.shape}")
    e, _ = _budgets(eps)
    nrm = as_norm(norm)
    w = np.full(len(Xa), 1.0 / len(Xa)) if weights is None else probability_weights(weights, len(Xa), owner="X")
    classes = np.unique(yv)
    k = classes.size
    if k < 2 or k > 12:
        raise ValueError(f"y must have between 2 and 12 classes, got {k}")
    M = np.zeros((e.size, k, k))
    icw = (np.ones(len(Xa), np.int64), len(Xa)) if weights is None else _integer_capacities(w)

    def caps_of(ia, ib):
        # F_ab is a flow between the unnormalized masses w|a and w|b of P
        if icw is None:
            return None
        return icw[0][ia], icw[0][ib], icw[1]

    for a, b in itertools.combinations(range(k), 2):
        ia, ib = yv == classes[a], yv == classes[b]
        ma, mb = w[ia].sum(), w[ib].sum()
        if ma == 0 or mb == 0:
            continue
        g = conflict_graph(Xa[ia], Xa[ib], 2 * e.max(), nrm, block_size=block_size, exact_at=tuple(2 * e))
        M[:, a, b] = M[:, b, a] = _flow_sweep(g, e, caps_of(ia, ib), (w[ia], w[ib]), False)[0]
    match = _matchings(k)
    bound = np.zeros(e.size)
    best = []
    for t in range(e.size):
        vals = [sum(M[t, a, b] for a, b in m) for m in match]
        i = int(np.argmax(vals))
        bound[t] = vals[i]
        best.append([(int(classes[a]), int(classes[b])) for a, b in match[i]])
    return MulticlassRiskBound(eps=e, bound=bound, pair_mass=M, pairs=best, classes=classes)
