"""Exact W∞ and checked W_p between discrete measures.

Public functions
----------------
:func:`winf`
    the exact ∞-Wasserstein distance W∞(μ, ν) = min_γ max{‖x_i − y_j‖ : γ_ij > 0}, with the
    optimal coupling on request;
:func:`wasserstein`
    W_p(μ, ν) (not W_p^p) with POT's network simplex, the solver's result code checked;
:func:`optimal_coupling`
    a W∞-optimal plan that minimizes Σ γ_ij ‖x_i − y_j‖₂² among all plans supported on
    {cost ≤ W∞} (the regular tie-break used to glue snapshots into curves);
:func:`labelled_upper_bound`
    max_i ‖x_i − y_i‖, the certified upper bound of W∞ for labelled particles;
:func:`cost_matrix`
    pairwise ℓq distances.

Measures may be :class:`~wflow.measures.ParticleMeasure` objects or plain ``(n, d)`` arrays
(uniform weights). Zero-weight atoms are not in the support: they never affect a distance,
and couplings index the atoms as passed in (zero-weight atoms get no mass).

Exactness
---------
Every distance is computed by one routine (a fixed loop over coordinates), so the value
returned by :func:`winf` is bit-for-bit one of the pairwise distances ‖x_i − y_j‖, and the
coupling returned with it is checked (support cost, marginals) before returning.

* 1-D (any weights): the sorted-quantile (monotone) coupling, O(n log n).
* uniform weights, equal sizes: bottleneck assignment. Threshold tests "does the graph
  {‖x_i − y_j‖ ≤ t} have a perfect matching?" are answered with a warm-started max-flow
  (scipy's Dinic on the residual graph of the current matching — scipy's Hopcroft–Karp is
  not used, it takes exponential time on some graphs, scipy issue #26147). Lower bounds:
  nearest-neighbour distances, 1-D projections (|⟨u, x − y⟩| ≤ ‖u‖_* ‖x − y‖), and Hall
  violators: when a threshold t fails, the set A of atoms reachable by alternating paths
  from an unmatched atom has |N_t(A)| < |A|, and W∞ ≥ t_A := the |A|-th smallest of
  min_{a∈A} ‖a − y‖ over y — itself a pairwise distance. Threshold tests run on sparse
  subgraphs (k nearest neighbours, grown on demand where a Hall violator is not certified),
  with ``scipy.spatial.cKDTree`` queries for d ≤ 8 and a dense distance matrix otherwise
  (n m ≤ ``DENSE_MAX``).
* general weights and sizes: a threshold t is feasible iff a plan supported on
  {cost ≤ t} exists; it is decided by POT's network simplex with cost 1 off that set
  (feasible ⇔ optimal cost ≤ ``MASS_TOL``). Tests start at the lower bound; a failed test
  raises it by the Hall/Strassen bound ν(N_t(A)) ≥ μ(A) of the level sets A of its dual
  potentials, a successful one lowers the upper bound to its plan's largest cost.
  Masses are floats: a mass defect ≤ ``MASS_TOL = 1e-12`` (the tolerance
  :class:`~wflow.measures.ParticleMeasure` allows on Σ w_i) is round-off, not mass. Integer
  max-flow is not used for weights: scipy's ``maximum_flow`` only takes int32 capacities
  (resolution 2^-31) and silently returns 0 for int64 ones.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import breadth_first_order, maximum_flow

from ._validation import integer, real
from .measures import WEIGHT_SUM_TOL, ParticleMeasure, as_measure
from .norms import dual_exponent, parse_norm

__all__ = [
    "Coupling",
    "cost_matrix",
    "labelled_upper_bound",
    "optimal_coupling",
    "wasserstein",
    "winf",
]

#: masses below this are round-off (equal to the tolerance on Σ w_i of a ParticleMeasure)
MASS_TOL = WEIGHT_SUM_TOL
#: marginals of a returned coupling match the measures to this absolute tolerance
MARGINAL_TOL = 1e-11
#: use a dense n×m distance matrix for the bottleneck search up to this many entries
DENSE_MAX = 25_000_000
#: entries per block when building distance matrices (cache-sized: fresh pages are slow)
_BLOCK = 65_536
#: lower bounds that are not computed by the exact distance routine are shrunk by this
_LB_SAFETY = 1.0 - 1e-12
#: where in the bracket [lo, hi) the bottleneck search tests (fraction of the candidates)
_FRACTION = 0.1
#: edges added per missing neighbour when the sparse threshold graph is enlarged
_ADD = 32
#: initial edges from every x to the y nearest its rank-matching partner
_PARTNER_K = 8
#: KD-tree threshold graphs up to this dimension
_KD_MAX_DIM = 8


# ------------------------------------------------------------------------------------------
# distances
# ------------------------------------------------------------------------------------------
def _dist_from_columns(col, d: int, q: float) -> np.ndarray:
    """‖·‖_q of difference vectors given column by column (``col(k)`` -> array).

    The same elementwise operations in the same order for every shape, so a distance is
    bit-for-bit identical whether computed in a matrix or for a list of pairs.
    """
    if q == np.inf:
        acc = np.abs(col(0))
        for k in range(1, d):
            np.maximum(acc, np.abs(col(k)), out=acc)
        return acc
    if q == 1.0:
        acc = np.abs(col(0))
        for k in range(1, d):
            acc += np.abs(col(k))
        return acc
    if q == 2.0:
        c = col(0)
        acc = c * c
        for k in range(1, d):
            c = col(k)
            acc += c * c
        return np.sqrt(acc, out=acc)
    m = np.abs(col(0))
    for k in range(1, d):
        np.maximum(m, np.abs(col(k)), out=m)
    safe = np.where(m > 0, m, 1.0)
    acc = np.zeros_like(m)
    for k in range(d):
        acc += (np.abs(col(k)) / safe) ** q
    return m * acc ** (1.0 / q)


def _pair_dist(X: np.ndarray, Y: np.ndarray, ii: np.ndarray, jj: np.ndarray, q: float) -> np.ndarray:
    """‖X[ii] − Y[jj]‖_q for index arrays ii, jj (same routine as :func:`cost_matrix`)."""
    if len(ii) == 0:
        return np.zeros(0)
    return _dist_from_columns(lambda k: X[ii, k] - Y[jj, k], X.shape[1], q)


def _cost(X: np.ndarray, Y: np.ndarray, q: float) -> np.ndarray:
    n, m = X.shape[0], Y.shape[0]
    out = np.empty((n, m))
    step = max(1, _BLOCK // max(m, 1))
    for s in range(0, n, step):
        Xb = X[s:s + step]
        out[s:s + step] = _dist_from_columns(lambda k, Xb=Xb: Xb[:, k, None] - Y[None, :, k], X.shape[1], q)
    return out


def _points(x, name: str) -> np.ndarray:
    if isinstance(x, ParticleMeasure):
        return x.points
    return as_measure(x, name).points


def cost_matrix(X, Y, norm="l2") -> np.ndarray:
    """Pairwise distances C_ij = ‖x_i − y_j‖_q.

    Parameters
    ----------
    X : array (n, d) or ParticleMeasure
    Y : array (m, d) or ParticleMeasure
    norm : {"l1", "l2", "linf"} or float q ≥ 1
        The ground norm ℓq.

    Returns
    -------
    C : ndarray, shape (n, m), float64
        Built in cache-sized row blocks, one coordinate at a time (no (n, m, d)
        temporary). Values are bit-for-bit those used by :func:`winf`.
    """
    q = parse_norm(norm)
    Xp, Yp = _points(X, "X"), _points(Y, "Y")
    if Xp.shape[1] != Yp.shape[1]:
        raise ValueError(f"Y must have the dimension of X (d = {Xp.shape[1]}), got d = {Yp.shape[1]}")
    return _cost(Xp, Yp, q)


def labelled_upper_bound(X, Y, norm="linf") -> float:
    """max_i ‖x_i − y_i‖: a certified upper bound of W∞ for labelled particles.

    If particle i sits at x_i in μ and at y_i in ν (same weights), the coupling
    x_i ↦ y_i is admissible, so W∞(μ, ν) ≤ max_i ‖x_i − y_i‖ (over atoms of positive weight
    when measures are given). For a flow this is the bound that the ∞-curve of maximal slope
    satisfies by construction (‖u_i(t) − u_i(s)‖ ≤ |t − s|). It can be far from W∞ when the
    particles permute; use :func:`winf` when the exact value is needed (e.g. to test
    W∞(μ_t, μ_s) = |t − s| rather than ≤, or for unlabelled snapshots).

    Parameters
    ----------
    X, Y : array (n, d) or ParticleMeasure (same n, same weights)
    norm : norm specification

    Returns
    -------
    float
    """
    q = parse_norm(norm)
    mu, nu = as_measure(X, "X"), as_measure(Y, "Y")
    if mu.points.shape != nu.points.shape:
        raise ValueError(f"Y must have the shape of X {mu.points.shape} (labelled particles), got {nu.points.shape}")
    if not np.allclose(mu.weights, nu.weights, rtol=0, atol=1e-15):
        raise ValueError("X and Y must carry the same weights (labelled particles)")
    keep = np.flatnonzero(mu.weights > 0)
    return float(_pair_dist(mu.points, nu.points, keep, keep, q).max())


# ------------------------------------------------------------------------------------------
# couplings
# ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Coupling:
    """A sparse transport plan γ between μ (n atoms) and ν (m atoms).

    Attributes
    ----------
    rows, cols : ndarray (k,), int
        Atom indices of μ and ν (as passed in, zero-weight atoms included).
    mass : ndarray (k,), float
        γ_{rows[l], cols[l]} > 0.
    shape : (n, m)
    value : float
        max{‖x_i − y_j‖ : γ_ij > 0}, the W∞ cost the plan achieves.
    norm : float
        The exponent q of the ground norm ℓq used for ``value``.
    """

    rows: np.ndarray
    cols: np.ndarray
    mass: np.ndarray
    shape: tuple[int, int]
    value: float
    norm: float = np.inf

    def to_dense(self) -> np.ndarray:
        """The plan as a dense (n, m) array."""
        out = np.zeros(self.shape)
        np.add.at(out, (self.rows, self.cols), self.mass)
        return out

    def marginals(self) -> tuple[np.ndarray, np.ndarray]:
        """Row and column sums, shapes (n,) and (m,)."""
        return (np.bincount(self.rows, self.mass, minlength=self.shape[0]),
                np.bincount(self.cols, self.mass, minlength=self.shape[1]))


def _make_coupling(mu, nu, rows, cols, mass, q, *, check_value: float | None = None) -> Coupling:
    """Build and verify a coupling between the measures as passed in."""
    rows = np.asarray(rows, dtype=np.intp)
    cols = np.asarray(cols, dtype=np.intp)
    mass = np.asarray(mass, dtype=float)
    keep = mass > 0
    rows, cols, mass = rows[keep], cols[keep], mass[keep]
    d = _pair_dist(mu.points, nu.points, rows, cols, q)
    value = float(d.max()) if len(d) else 0.0
    c = Coupling(rows, cols, mass, (mu.n, nu.n), value, q)
    r, s = c.marginals()
    err = max(np.abs(r - mu.weights).max(), np.abs(s - nu.weights).max())
    if not err <= MARGINAL_TOL:
        raise RuntimeError(f"internal error: coupling marginals off by {err:.3g} (> {MARGINAL_TOL:g})")
    if check_value is not None and value != check_value:
        raise RuntimeError(f"internal error: coupling achieves {value!r}, expected {check_value!r}")
    return c


# ------------------------------------------------------------------------------------------
# validation
# ------------------------------------------------------------------------------------------
def _pair(mu, nu, norm):
    q = parse_norm(norm)
    mu = as_measure(mu, "mu")
    nu = as_measure(nu, "nu")
    if mu.dim != nu.dim:
        raise ValueError(f"nu must have the dimension of mu (d = {mu.dim}), got d = {nu.dim}")
    return mu, nu, q


def _support(m: ParticleMeasure):
    idx = np.flatnonzero(m.weights > 0)
    return idx, m.points[idx], m.weights[idx]


def _uniform(w: np.ndarray) -> bool:
    return bool(np.all(w == w[0]))


# ------------------------------------------------------------------------------------------
# 1-D
# ------------------------------------------------------------------------------------------
def _cumulative(w: np.ndarray) -> np.ndarray:
    """Cumulative masses ending at exactly 1 (k/n exactly rounded for uniform weights)."""
    n = len(w)
    if _uniform(w):
        return np.arange(1, n + 1) / n
    c = np.cumsum(w)
    c /= c[-1]
    c[-1] = 1.0
    return c


def _winf_1d(x: np.ndarray, a: np.ndarray, y: np.ndarray, b: np.ndarray):
    """Monotone coupling of Σ a_i δ_{x_i}, Σ b_j δ_{y_j} on R (positive weights).

    Returns (i, j, mass) as indices into x and y.
    """
    ox = np.argsort(x)
    oy = np.argsort(y)
    if len(x) == len(y) and _uniform(a) and _uniform(b):
        return ox, oy, a  # k-th smallest to k-th smallest
    cx = _cumulative(a[ox])
    cy = _cumulative(b[oy])
    # snap breakpoints of ν that agree with one of μ up to MASS_TOL (round-off, not mass)
    k = np.clip(np.searchsorted(cx, cy), 0, len(cx) - 1)
    km = np.clip(k - 1, 0, len(cx) - 1)
    near = np.where(np.abs(cx[k] - cy) <= np.abs(cx[km] - cy), k, km)
    close = np.abs(cx[near] - cy) <= MASS_TOL
    cy = np.where(close, cx[near], cy)
    cy = np.maximum.accumulate(cy)
    # merge the two sorted breakpoint lists (ties: μ's first); at the first occurrence of a
    # value b, the entries before it are exactly those < b
    n, m = len(cx), len(cy)
    v = np.empty(n + m)
    isx = np.zeros(n + m, dtype=bool)
    px = np.searchsorted(cy, cx, side="left") + np.arange(n)
    v[px] = cx
    isx[px] = True
    v[np.searchsorted(cx, cy, side="right") + np.arange(m)] = cy
    first = np.concatenate([[True], v[1:] != v[:-1]])
    nx_before = np.cumsum(isx) - isx
    ny_before = np.arange(len(v)) - nx_before
    br = v[first]
    mass = np.diff(br, prepend=0.0)
    i = np.minimum(nx_before[first], len(cx) - 1)
    j = np.minimum(ny_before[first], len(cy) - 1)
    keep = mass > 0
    i, j, mass = i[keep], j[keep], mass[keep]
    return ox[i], oy[j], mass


# ------------------------------------------------------------------------------------------
# threshold graphs and matchings (uniform weights, equal sizes)
# ------------------------------------------------------------------------------------------
class _Edges:
    """Pairs (i, j) with ‖x_i − y_j‖ ≤ t, from a dense matrix (n m ≤ ``DENSE_MAX``) or KD-trees.

    Every returned distance is recomputed by :func:`_pair_dist` (KD-tree distances are
    only used to find candidates, with a slightly inflated radius).
    """

    def __init__(self, X, Y, q):
        self.X, self.Y, self.q = X, Y, q
        n, m = len(X), len(Y)
        # KD-trees in low dimension (faster even when the matrix would fit), dense otherwise
        self.dense = n * m <= DENSE_MAX and X.shape[1] > _KD_MAX_DIM
        self.D = _cost(X, Y, q) if self.dense else None
        self._tx = self._ty = None

    def trees(self):
        if self._tx is None:
            from scipy.spatial import cKDTree

            self._tx, self._ty = cKDTree(self.X), cKDTree(self.Y)
        return self._tx, self._ty

    def upto(self, t: float):
        """All (ii, jj, dist) with dist ≤ t."""
        if self.dense:
            ii, jj = np.nonzero(self.D <= t)
            return ii, jj, self.D[ii, jj]
        return self.rows_upto(np.arange(len(self.X)), t)

    def rows_upto(self, A: np.ndarray, t: float):
        """(ii, jj, dist) with ii ∈ A and dist ≤ t."""
        if self.dense:
            r, jj = np.nonzero(self.D[A] <= t)
            ii = A[r]
            return ii, jj, self.D[ii, jj]
        from scipy.spatial import cKDTree

        _, ty = self.trees()
        tree = self._tx if len(A) == len(self.X) else cKDTree(self.X[A])
        res = tree.sparse_distance_matrix(ty, t * (1 + 1e-9) + 1e-300, p=self.q, output_type="ndarray")
        ii = A[res["i"].astype(np.intp)]
        jj = res["j"].astype(np.intp)
        d = _pair_dist(self.X, self.Y, ii, jj, self.q)
        k = d <= t
        return ii[k], jj[k], d[k]

    def knn(self, k: int):
        """(ii, jj, dist): the k nearest y of every x and the k nearest x of every y."""
        n, m = len(self.X), len(self.Y)
        k = min(k, n, m)
        if self.dense and self.X.shape[1] > 8:
            jx = np.argpartition(self.D, k - 1, axis=1)[:, :k]
            iy = np.argpartition(self.D.T, k - 1, axis=1)[:, :k].T
            ii = np.concatenate([np.repeat(np.arange(n), k), iy.ravel()])
            jj = np.concatenate([jx.ravel(), np.tile(np.arange(m), k)])
        else:
            tx, ty = self.trees()
            _, jx = ty.query(self.X, k=k, p=self.q)
            _, iy = tx.query(self.Y, k=k, p=self.q)
            jx, iy = jx.reshape(n, k), iy.reshape(m, k)
            ii = np.concatenate([np.repeat(np.arange(n), k), iy.ravel()])
            jj = np.concatenate([jx.ravel(), np.repeat(np.arange(m), k)])
        return ii, jj, _pair_dist(self.X, self.Y, ii, jj, self.q)

    def in_range(self, lo: float, hi: float) -> np.ndarray:
        """Distances d with lo ≤ d < hi (dense mode only)."""
        D = self.D
        return D[(D >= lo) & (D < hi)]

    def nearest(self, A: np.ndarray, k: int = 1):
        """For every y, the k atoms a ∈ A nearest to y: (dist (m, k), a (m, k)), sorted."""
        m = len(self.Y)
        k = min(k, len(A))
        if self.dense:
            DA = self.D[A]
            if k == 1:
                idx = DA.argmin(axis=0)[:, None]
            else:
                idx = np.argpartition(DA, k - 1, axis=0)[:k].T
        else:
            from scipy.spatial import cKDTree

            _, idx = cKDTree(self.X[A]).query(self.Y, k=k, p=self.q)
            idx = idx.reshape(m, k)
        a = A[idx]
        d = _pair_dist(self.X, self.Y, a.ravel(), np.repeat(np.arange(m), k), self.q).reshape(m, k)
        o = np.argsort(d, axis=1, kind="stable")
        return np.take_along_axis(d, o, 1), np.take_along_axis(a, o, 1)

    def nearest_x(self, B: np.ndarray) -> np.ndarray:
        """For every x: min over b ∈ B of ‖x − y_b‖."""
        if self.dense:
            idx = self.D[:, B].argmin(axis=1)
        else:
            from scipy.spatial import cKDTree

            _, idx = cKDTree(self.Y[B]).query(self.X, k=1, p=self.q)
        return _pair_dist(self.X, self.Y, np.arange(len(self.X)), B[idx], self.q)


def _kth(values: np.ndarray, k: int) -> float:
    """The k-th smallest value (1-based)."""
    return float(np.partition(values, k - 1)[k - 1])


def _augment(n: int, ii, jj, mate_x, mate_y) -> None:
    """Extend a matching to a maximum matching of the bipartite graph (ii, jj), in place.

    Max-flow on the residual network of the current matching: source → free x, x → y for
    non-matching edges, y → mate(y) for matching edges, free y → sink (scipy's Dinic).
    """
    free_x = np.flatnonzero(mate_x < 0)
    free_y = np.flatnonzero(mate_y < 0)
    if len(free_x) == 0 or len(ii) == 0:
        return
    s, t = 2 * n, 2 * n + 1
    nonm = mate_x[ii] != jj
    mx = np.flatnonzero(mate_x >= 0)
    rows = np.concatenate([np.full(len(free_x), s), ii[nonm], n + mate_x[mx], n + free_y])
    cols = np.concatenate([free_x, n + jj[nonm], mx, np.full(len(free_y), t)])
    G = sp.csr_array((np.ones(len(rows), dtype=np.int32), (rows, cols)), shape=(2 * n + 2, 2 * n + 2))
    res = maximum_flow(G, s, t, method="dinic")
    if res.flow_value == 0:
        return
    F = res.flow.tocoo()
    k = (F.data > 0) & (F.row < n) & (F.col >= n) & (F.col < 2 * n)
    xs, ys = F.row[k], F.col[k] - n
    mate_x[xs] = ys
    mate_y[ys] = xs


def _hall_violator(n: int, ii, jj, mate_x):
    """Atoms x and y reachable from a free x by alternating paths in the graph (ii, jj).

    When the matching is maximum, the x-set A has |N(A)| < |A| (a Hall violator) and the
    y-set is N(A).
    """
    free_x = np.flatnonzero(mate_x < 0)
    s = 2 * n
    nonm = mate_x[ii] != jj
    mx = np.flatnonzero(mate_x >= 0)
    rows = np.concatenate([np.full(len(free_x), s), ii[nonm], n + mate_x[mx]])
    cols = np.concatenate([free_x, n + jj[nonm], mx])
    G = sp.csr_array((np.ones(len(rows), dtype=np.int8), (rows, cols)), shape=(2 * n + 1, 2 * n + 1))
    order = breadth_first_order(G, s, directed=True, return_predecessors=False)
    return order[order < n], order[(order >= n) & (order < 2 * n)] - n


def _rank_matching(X: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """A cheap assignment: recursive median splits, cycling through the coordinates.

    Both clouds are split into halves of equal sizes at every level (by rank), so cell c of X
    and cell c of Y always hold the same number of points; at depth ⌈log2 n⌉ every cell holds
    one point, and x is paired with the y of its cell. For product-like measures this is a
    discrete Knothe–Rosenblatt map (a good upper bound for W∞); it is only a warm start.
    """
    n, d = X.shape
    gx = np.zeros(n, dtype=np.int64)
    gy = np.zeros(n, dtype=np.int64)
    level = 0
    while True:
        k = level % d
        ox = np.lexsort((X[:, k], gx))
        oy = np.lexsort((Y[:, k], gy))
        g_sorted = gx[ox]  # equal to gy[oy]: same group sizes on both sides
        start = np.searchsorted(g_sorted, g_sorted, side="left")
        size = np.searchsorted(g_sorted, g_sorted, side="right") - start
        rank = np.arange(n) - start
        if np.all(size == 1):
            break
        # group ids stay sorted-compatible: (old id, half)
        new = 2 * g_sorted + (rank >= size // 2)
        new = np.concatenate([[0], np.cumsum(new[1:] != new[:-1])])  # nondecreasing: relabel
        gx[ox] = new
        gy[oy] = new
        level += 1
    perm = np.empty(n, dtype=np.intp)
    perm[ox] = oy
    return perm


def _projection_bound(X, Y, q: float, a=None, b=None) -> float:
    """max over a few directions u of W∞ of the 1-D projections, divided by ‖u‖_*.

    |⟨u, x − y⟩| ≤ ‖u‖_* ‖x − y‖, so projecting a coupling shows this is a lower bound.
    Uniform equal sizes when the weights a, b are omitted.
    """
    d = X.shape[1]
    qs = dual_exponent(q)
    dirs = [np.eye(d)[k] for k in range(min(d, 16))]
    if d > 1:
        dirs.append(np.ones(d))
        c = np.concatenate([X, Y])
        c = c - c.mean(axis=0)
        if len(c) > 2:
            dirs.append(np.linalg.svd(c[:: max(1, len(c) // 2000)], full_matrices=False)[2][0])
    best = 0.0
    for u in dirs:
        un = np.abs(u).max() if qs == np.inf else np.linalg.norm(u, ord=qs)
        if un <= 0:
            continue
        px, py = X @ u, Y @ u
        if a is None:
            gap = np.abs(np.sort(px) - np.sort(py)).max()
        else:
            i, j, _ = _winf_1d(px, a, py, b)
            gap = np.abs(px[i] - py[j]).max()
        best = max(best, float(gap / un))
    return best


def _bottleneck(X: np.ndarray, Y: np.ndarray, q: float, *, knn: int = 8):
    """Exact bottleneck assignment of two equal-size point sets. Returns (value, perm).

    Threshold tests run on a sparse subgraph H ⊆ G_t (k nearest neighbours, the warm-start
    matching, edges added on demand). A perfect matching in H certifies t; a Hall violator A
    of H whose bound t_A exceeds t certifies infeasibility; otherwise all G_t-edges at A are
    added to H and the test is repeated (finitely often: H only grows).
    """
    n = len(X)
    E = _Edges(X, Y, q)
    ar = np.arange(n)
    # ---- lower bounds
    if E.dense:
        lo = float(max(E.D.min(axis=1).max(), E.D.min(axis=0).max()))
    else:
        tx, ty = E.trees()
        _, jy = ty.query(X, k=1, p=q)
        _, ix = tx.query(Y, k=1, p=q)
        lo = float(max(_pair_dist(X, Y, ar, jy, q).max(), _pair_dist(X, Y, ix, ar, q).max())) * _LB_SAFETY
    lo = max(lo, _projection_bound(X, Y, q) * _LB_SAFETY)
    # ---- upper bound: the rank matching
    best = _rank_matching(X, Y)
    hi = float(_pair_dist(X, Y, ar, best, q).max())
    mate_x = best.copy()
    mate_y = np.empty(n, dtype=np.intp)
    mate_y[best] = ar
    kn = E.knn(knn)
    # long edges in the right direction: each x to the y nearest its rank-matching partner
    pk = min(_PARTNER_K, n)
    if not E.dense and pk:
        _, jn = E.trees()[1].query(Y[best], k=pk, p=q)
        pi = np.repeat(ar, pk)
        pj = jn.reshape(-1)
        kn = tuple(np.concatenate([u, v]) for u, v in zip(kn, (pi, pj, _pair_dist(X, Y, pi, pj, q))))
    extra = (np.zeros(0, np.intp), np.zeros(0, np.intp), np.zeros(0))

    def test(t: float):
        nonlocal extra
        mx = np.flatnonzero(mate_x >= 0)
        long = mx[_pair_dist(X, Y, mx, mate_x[mx], q) > t]
        mate_y[mate_x[long]] = -1
        mate_x[long] = -1
        while True:
            # duplicated pairs are harmless: they only raise an x → y capacity to 2, while
            # the flow through x is at most 1
            k1 = kn[2] <= t
            k2 = extra[2] <= t
            ii = np.concatenate([kn[0][k1], extra[0][k2]])
            jj = np.concatenate([kn[1][k1], extra[1][k2]])
            _augment(n, ii, jj, mate_x, mate_y)
            if np.all(mate_x >= 0):
                return True, None
            A, NA = _hall_violator(n, ii, jj, mate_x)
            dk, ak = E.nearest(A, _ADD)
            delta = dk[:, 0]
            t_A = float(np.partition(delta, len(A) - 1)[len(A) - 1])
            if t_A > t:
                # any set gives a valid bound; also try the violator seen from ν's side
                B, _ = _hall_violator(n, jj, ii, mate_y)
                if len(B):
                    t_A = max(t_A, _kth(E.nearest_x(B), len(B)))
                return False, t_A
            # H misses G_t-edges at A: add, for every y ∉ N_H(A) within t of A, its edges
            # to the _ADD nearest atoms of A (progress: N_H(A) grows)
            missing = delta <= t
            missing[NA] = False
            y_new = np.flatnonzero(missing)
            dn, an = dk[y_new], ak[y_new]
            keep = dn <= t
            new = (an[keep], np.broadcast_to(y_new[:, None], dn.shape)[keep], dn[keep])
            extra = tuple(np.concatenate([e, f]) for e, f in zip(extra, new))

    while True:
        # test low in the bracket: Hall bounds tend to be nearly tight, so a failure moves
        # lo past most candidates and a success cuts hi to a small fraction of them
        if E.dense:
            cand = E.in_range(lo, hi)
            if len(cand) == 0:
                break
            k = int(len(cand) * _FRACTION)
            t = float(np.partition(cand, k)[k])
        else:
            if lo >= hi:
                break
            t = float(np.nextafter(hi, -np.inf)) if hi - lo <= 1e-9 * hi else lo + _FRACTION * (hi - lo)
        ok, t_A = test(t)
        if ok:
            hi = float(_pair_dist(X, Y, ar, mate_x, q).max())
            best = mate_x.copy()
        else:
            if not E.dense:
                t_A *= _LB_SAFETY
            lo = max(lo, float(np.nextafter(t, np.inf)), t_A)
    return hi, best


# ------------------------------------------------------------------------------------------
# general weights: feasibility by network simplex
# ------------------------------------------------------------------------------------------
def _emd(a, b, C, num_itermax: int, *, retries: int = 1):
    """ot.emd with the result code checked; one retry with a 100× larger limit."""
    import ot

    limit = int(num_itermax)
    for attempt in range(retries + 1):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            G, log = ot.emd(a, b, C, numItermax=limit, log=True)
        code = int(log["result_code"])
        if code == 1 and log.get("warning") is None:
            return G, log
        if code != 3 or attempt == retries:
            raise RuntimeError(
                f"POT network simplex did not reach optimality (result_code={code}, "
                f"numItermax={limit}): {log.get('warning')}"
            )
        limit *= 100
    raise AssertionError("unreachable")


def _default_itermax(n: int, m: int) -> int:
    return max(100_000, 50 * n * m)


def _hall_bound_weighted(D: np.ndarray, a: np.ndarray, b: np.ndarray, A: np.ndarray) -> float:
    """Lower bound of W∞ from a set A of μ's atoms (Strassen/Hall: ν(N_t(A)) ≥ μ(A) at t = W∞).

    The smallest s with ν({y : min_{a∈A} ‖a − y‖ ≤ s}) ≥ μ(A) − ``MASS_TOL`` (a pairwise
    distance). Valid for every A; mass defects ≤ ``MASS_TOL`` are round-off by convention.
    """
    delta = D[A].min(axis=0)
    o = np.argsort(delta, kind="stable")
    cum = np.cumsum(b[o])
    k = int(np.searchsorted(cum, a[A].sum() - MASS_TOL))
    return float(delta[o[min(k, len(o) - 1)]])


def _dual_bounds(D, a, b, u, v, t) -> float:
    """Hall bounds of the level sets {u ≥ θ} (and {v ≥ θ} for ν) of a failed test's duals."""
    best = -np.inf
    for pot, DD, aa, bb in ((u, D, a, b), (v, D.T, b, a)):
        levels = np.unique(np.round(pot, 9))
        if len(levels) > 16:
            levels = np.quantile(levels, np.linspace(0, 1, 16))
        for th in levels[1:]:
            A = np.flatnonzero(pot >= th - 1e-9)
            if 0 < len(A) < len(pot):
                best = max(best, _hall_bound_weighted(DD, aa, bb, A))
    return best


def _winf_general(X, a, Y, b, q, num_itermax=None):
    """Exact W∞ for general weights: threshold tests by network simplex. Returns (value, G).

    A test at t solves min Σ γ_ij [D_ij > t] (feasible ⇔ optimum ≤ ``MASS_TOL``). Tests start
    at the smallest candidate above the lower bound (nearest neighbours, weighted 1-D
    projections); a failed test raises the bound to the Hall/Strassen bounds of the level
    sets of its dual potentials, a successful one lowers the upper bound to its plan's max
    cost; later tests sit at the 10 % quantile of the remaining candidates.
    """
    n, m = len(X), len(Y)
    it = _default_itermax(n, m) if num_itermax is None else num_itermax
    D = _cost(X, Y, q)
    a = a / a.sum()
    b = b / b.sum()
    lo = max(D.min(axis=1).max(), D.min(axis=0).max(), _projection_bound(X, Y, q, a, b) * _LB_SAFETY)
    hi, best = np.inf, None
    while True:
        if hi == np.inf:
            above = D[D >= lo]
            t = float(above.min())
        else:
            cand = D[(D >= lo) & (D < hi)]
            if len(cand) == 0:
                break
            k = int(len(cand) * _FRACTION)
            t = float(np.partition(cand, k)[k])
        G, log = _emd(a, b, (D > t).astype(float), it)
        if log["cost"] <= MASS_TOL:
            G = np.where(D <= t, G, 0.0)
            hi, best = float(D[G > 0].max()), G
        else:
            lo = max(float(np.nextafter(t, np.inf)), _dual_bounds(D, a, b, log["u"], log["v"], t))
    return hi, best


# ------------------------------------------------------------------------------------------
# public API
# ------------------------------------------------------------------------------------------
def winf(mu, nu, norm="linf", *, return_coupling: bool = False):
    """Exact ∞-Wasserstein distance W∞(μ, ν) = min_γ max{‖x_i − y_j‖ : γ_ij > 0}.

    Parameters
    ----------
    mu, nu : ParticleMeasure or array (n, d) / (m, d)
        Discrete probability measures (arrays: uniform weights). Zero-weight atoms are
        ignored (they are not in the support).
    norm : {"l1", "l2", "linf"} or float q ≥ 1
        Ground norm ℓq (default ℓ∞, the geometry of IFGSM).
    return_coupling : bool
        Also return an optimal :class:`Coupling` (verified: achieves the value, marginals
        within ``MARGINAL_TOL``).

    Returns
    -------
    float, or (float, Coupling)
        The value is exactly one of the pairwise distances ‖x_i − y_j‖_q.

    Notes
    -----
    Algorithm by case (module docstring): 1-D sorted quantiles (any weights); uniform
    equal-size bottleneck assignment (threshold search with max-flow matchings on sparse
    threshold graphs, nearest-neighbour / projection / Hall lower bounds); general weights
    by network-simplex feasibility over the candidate distances.
    """
    mu, nu, q = _pair(mu, nu, norm)
    value, (rows, cols, mass) = _winf_impl(mu, nu, q)
    # the plan is verified even when only the value is asked for (cheap: it is sparse)
    c = _make_coupling(mu, nu, rows, cols, mass, q, check_value=value)
    return (c.value, c) if return_coupling else c.value


def _winf_impl(mu, nu, q):
    ix, X, a = _support(mu)
    iy, Y, b = _support(nu)
    if X.shape[1] == 1:
        i, j, mass = _winf_1d(X[:, 0], a, Y[:, 0], b)
        return None, (ix[i], iy[j], mass)  # the value is the plan's max cost
    if len(X) == len(Y) and _uniform(a) and _uniform(b):
        value, perm = _bottleneck(X, Y, q)
        return value, (ix, iy[perm], a)
    _, G = _winf_general(X, a, Y, b, q)
    r, c = np.nonzero(G)
    value = float(_pair_dist(X, Y, r, c, q).max())
    return value, (ix[r], iy[c], G[r, c])


def optimal_coupling(mu, nu, norm="linf", *, tie_break: str | None = "w2") -> Coupling:
    """A W∞-optimal coupling, made unique-ish by a secondary criterion.

    Parameters
    ----------
    mu, nu : ParticleMeasure or arrays
    norm : norm specification of the ground norm for W∞
    tie_break : {"w2", None}
        ``"w2"``: among all plans supported on {‖x_i − y_j‖ ≤ W∞}, one minimizing
        Σ γ_ij ‖x_i − y_j‖₂² (regular curves when snapshots are glued). ``None``: the plan
        found by :func:`winf`.

    Returns
    -------
    Coupling
        ``value`` = W∞(μ, ν); marginals equal the weights to ``MARGINAL_TOL``.

    Notes
    -----
    1-D: the monotone coupling (W2-optimal among all plans, hence among the restricted ones).
    Uniform equal sizes: a min-weight perfect matching on the threshold graph
    (``scipy.optimize.linear_sum_assignment`` on the cost with forbidden pairs priced out;
    optimal plans of this LP include a permutation). General weights: POT's network simplex
    on the sparse threshold graph.
    """
    if tie_break not in ("w2", None):
        raise ValueError(f"tie_break must be 'w2' or None, got {tie_break!r}")
    mu, nu, q = _pair(mu, nu, norm)
    value, (rows, cols, mass) = _winf_impl(mu, nu, q)
    ix, X, a = _support(mu)
    iy, Y, b = _support(nu)
    if tie_break is None or X.shape[1] == 1:
        return _make_coupling(mu, nu, rows, cols, mass, q, check_value=value)
    if len(X) == len(Y) and _uniform(a) and _uniform(b):
        perm = _min_sq_matching(X, Y, q, value)
        return _make_coupling(mu, nu, ix, iy[perm], a, q, check_value=value)
    E = _Edges(X, Y, q)
    ii, jj, _ = E.upto(value)
    c2 = _pair_dist(X, Y, ii, jj, 2.0) ** 2
    # forbidden pairs priced out: a plan putting mass ε on them costs ≥ ε·big > max allowed
    # cost as soon as ε > MASS_TOL, so the optimum leaves at most MASS_TOL there (dropped)
    big = (float(c2.max()) + 1.0) / MASS_TOL
    C = np.full((len(X), len(Y)), big)
    C[ii, jj] = c2
    G, _ = _emd(a / a.sum(), b / b.sum(), C, _default_itermax(len(X), len(Y)))
    G[C == big] = 0.0
    r, c = np.nonzero(G)
    return _make_coupling(mu, nu, ix[r], iy[c], G[r, c], q, check_value=value)


def _min_sq_matching(X, Y, q, value) -> np.ndarray:
    """Permutation minimizing Σ ‖x_i − y_π(i)‖₂² subject to ‖x_i − y_π(i)‖_q ≤ value."""
    n = len(X)
    E = _Edges(X, Y, q)
    ii, jj, _ = E.upto(value)
    c2 = _pair_dist(X, Y, ii, jj, 2.0) ** 2
    if n * n <= DENSE_MAX:
        from scipy.optimize import linear_sum_assignment

        # forbidden pairs cost more than any whole allowed assignment
        big = (float(c2.max()) + 1.0) * (n + 1)
        C = np.full((n, n), big)
        C[ii, jj] = c2
        r, c = linear_sum_assignment(C)
    else:
        from scipy.sparse.csgraph import min_weight_full_bipartite_matching

        # +1 keeps zero costs as explicit edges (a constant shift does not change the argmin)
        G = sp.csr_array((c2 + 1.0, (ii, jj)), shape=(n, n))
        r, c = min_weight_full_bipartite_matching(G)
    perm = np.empty(n, dtype=np.intp)
    perm[r] = c
    return perm


def wasserstein(mu, nu, p=2, norm="l2", *, return_plan: bool = False, num_itermax: int | None = None):
    """W_p(μ, ν) = (min_γ Σ γ_ij ‖x_i − y_j‖_q^p)^{1/p} with POT's exact network simplex.

    Parameters
    ----------
    mu, nu : ParticleMeasure or arrays (n, d), (m, d)
    p : float ≥ 1, or numpy.inf
        Order (``inf`` delegates to :func:`winf`).
    norm : norm specification
        Ground norm ℓq; costs are computed here (POT's ``minkowski`` with p = ∞ is wrong).
    return_plan : bool
        Also return the optimal plan, a dense (n, m) array over the atoms as passed in.
    num_itermax : int, optional
        Network-simplex iteration limit (default max(10⁵, 50 n m)). If POT stops before
        optimality the solve is retried once with a 100× larger limit, then
        ``RuntimeError`` is raised: a non-optimal value is never returned.

    Returns
    -------
    float, or (float, ndarray (n, m))
        W_p itself (not W_p^p). Costs are scaled before raising to the power p (by their
        maximum, then by the W_p estimate when the optimum is below 1e-6 of the largest cost),
        so large p neither overflows nor underflows; for p > 2 the result is also checked
        against W_p ≤ W∞ (``RuntimeError`` if violated). For p → ∞ use :func:`winf`.
    """
    pv = real(p, "p", allow_inf=True)
    if pv < 1:
        raise ValueError(f"p must be >= 1, got {p!r}")
    if num_itermax is not None:
        num_itermax = integer(num_itermax, "num_itermax", low=1)
    mu, nu, q = _pair(mu, nu, norm)
    if pv == np.inf:
        v, c = winf(mu, nu, q, return_coupling=True)
        return (v, c.to_dense()) if return_plan else v
    ix, X, a = _support(mu)
    iy, Y, b = _support(nu)
    D = _cost(X, Y, q)
    dmax = float(D.max())
    a, b = a / a.sum(), b / b.sum()
    if dmax == 0.0:
        G, value = np.outer(a, b), 0.0
    else:
        it = _default_itermax(len(X), len(Y)) if num_itermax is None else num_itermax
        # costs (D/s)^p: first s = max D; if the optimum is tiny relative to the largest
        # cost, the simplex cannot resolve it (it compares reduced costs to ~1e-15), so solve
        # again with s = the estimate (≥ W_p, so the optimum is ≤ 1) and costs clipped at
        # 1e6: clipping only lowers costs, so a clipped optimum that puts no mass on clipped
        # entries is the true optimum (checked)
        scale, clip = dmax, np.inf
        for _ in range(8):
            with np.errstate(over="ignore", under="ignore"):
                C = np.minimum((D / scale) ** pv, clip)
            G, _ = _emd(a, b, C, it)
            if np.any(G[C == clip] > 0):
                clip *= 1e6
                continue
            err = max(np.abs(G.sum(1) - a).max(), np.abs(G.sum(0) - b).max())
            if not err <= MARGINAL_TOL:
                raise RuntimeError(f"POT returned a plan whose marginals are off by {err:.3g}")
            cost = float(np.sum(G * C))
            value = scale * cost ** (1.0 / pv)
            if cost >= 1e-6 or value == 0.0:
                break
            scale, clip = value, 1e6
        if pv > 2:
            w = winf(mu, nu, q)
            if value > w * (1 + 1e-9):
                raise RuntimeError(
                    f"W_p = {value!r} > W∞ = {w!r} at p = {pv:g}: the network simplex could not "
                    "resolve costs spanning this many orders of magnitude; use winf for large p"
                )
    if not return_plan:
        return value
    plan = np.zeros((mu.n, nu.n))
    plan[np.ix_(ix, iy)] = G
    return value, plan
