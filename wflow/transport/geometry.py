"""Geometry: ℓq distances between two point clouds, threshold graphs, nearest neighbours.

One routine computes every distance, so a value is bit-for-bit the same whether it comes from
a matrix or a list of pairs (``docs/transport.md``, "Distances"). ℓ2 is computed from squares
and recomputed scaled by max |x_k − y_k| where the squares overflow or underflow, so distances
are exact to a few ulps for any magnitude in float64. :class:`Geometry` answers the queries of
the threshold searches without an n×m matrix: KD-trees (d ≤ 8), or BLAS ℓ2 distance blocks
used as a certified filter for the exact ℓq distances (high d, memory bounded by the block).
"""

from __future__ import annotations

import numpy as np

from ..measures import ParticleMeasure, as_measure
from ..memory import check_memory
from ..norms import norm as _scaled_norm
from ..norms import parse_norm

__all__ = ["Geometry", "cost_matrix", "labelled_upper_bound"]

#: a dense n×m distance matrix is used for the bottleneck search up to this many entries
#: (only in ``mode="dense"``)
DENSE_MAX = 25_000_000
#: entries per block when building distance matrices (cache-sized)
_BLOCK = 65_536
#: entries per BLAS distance block (memory of the high-dimensional path: 8 bytes each)
_GEMM_BLOCK = 1 << 21
#: KD-tree threshold graphs up to this dimension, BLAS blocks above
_KD_MAX_DIM = 8
#: distances are reduced coordinate by coordinate up to this dimension, row-wise above
_COLUMN_MAX_DIM = 16
#: ℓ2 sums of squares below this (or infinite) are recomputed scaled (no underflow loss)
_TINY_SQ = 2.0**-968
#: test hook: force "kdtree", "dense" or "blocks" (None: automatic)
GRAPH_MODE: str | None = None


# ------------------------------------------------------------------------------------------
# distances
# ------------------------------------------------------------------------------------------
def _dist_from_columns(col, d: int, q: float) -> np.ndarray:
    """‖·‖_q of difference vectors given column by column (``col(k)`` -> array), d small."""
    with np.errstate(over="ignore", under="ignore"):
        return _dist_cols(col, d, q)


def _dist_cols(col, d: int, q: float) -> np.ndarray:
    # a fresh col(k) (a difference of gathers) is reused in place
    if q == np.inf:
        acc = _abs_fresh(col(0))
        for k in range(1, d):
            np.maximum(acc, np.abs(col(k)), out=acc)
        return acc
    if q == 1.0:
        acc = _abs_fresh(col(0))
        for k in range(1, d):
            acc += np.abs(col(k))
        return acc
    m = np.abs(col(0))
    for k in range(1, d):
        np.maximum(m, np.abs(col(k)), out=m)
    if q == 2.0:
        c = col(0)
        acc = c * c
        for k in range(1, d):
            c = col(k)
            acc += c * c
        bad = np.flatnonzero(~((acc >= _TINY_SQ) & (acc < np.inf)) & (m > 0))
        np.sqrt(acc, out=acc)
        if len(bad):
            mb = m.reshape(-1)[bad]
            s = np.zeros(len(bad))
            for k in range(d):
                c = np.ascontiguousarray(col(k)).reshape(-1)[bad] / mb
                s += c * c
            acc.reshape(-1)[bad] = mb * np.sqrt(s)
        return acc
    safe = np.where(m > 0, m, 1.0)
    acc = np.zeros_like(m)
    for k in range(d):
        acc += (np.abs(col(k)) / safe) ** q
    return m * acc ** (1.0 / q)


def _abs_fresh(c: np.ndarray) -> np.ndarray:
    """|c|, in place when c owns its data (a fresh difference), else a new array."""
    if c.flags.writeable and c.base is None:
        return np.abs(c, out=c)
    return np.abs(c)


def _dist_rows(V: np.ndarray, q: float) -> np.ndarray:
    """‖v‖_q of the rows of V (k, d), d large: one reduction per row, independent of k."""
    with np.errstate(over="ignore", under="ignore"):
        return _dist_rows_impl(V, q)


def _dist_rows_impl(V: np.ndarray, q: float) -> np.ndarray:
    A = np.abs(V)
    if q == np.inf:
        return A.max(axis=1)
    if q == 1.0:
        return A.sum(axis=1)
    m = A.max(axis=1)
    if q == 2.0:
        acc = (A * A).sum(axis=1)
        bad = np.flatnonzero(~((acc >= _TINY_SQ) & (acc < np.inf)) & (m > 0))
        out = np.sqrt(acc)
        if len(bad):
            S = A[bad] / m[bad, None]
            out[bad] = m[bad] * np.sqrt((S * S).sum(axis=1))
        return out
    safe = np.where(m > 0, m, 1.0)
    return m * ((A / safe[:, None]) ** q).sum(axis=1) ** (1.0 / q)


def _diff(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """u − v written into u (both fresh gathers: ``take`` is about twice as fast as X[ii, k])."""
    return np.subtract(u, v, out=u)


def _pair_dist(X: np.ndarray, Y: np.ndarray, ii: np.ndarray, jj: np.ndarray, q: float) -> np.ndarray:
    """‖X[ii] − Y[jj]‖_q for index arrays ii, jj (same routine as :func:`cost_matrix`)."""
    ii = np.asarray(ii, dtype=np.intp).reshape(-1)
    jj = np.asarray(jj, dtype=np.intp).reshape(-1)
    if len(ii) == 0:
        return np.zeros(0)
    d = X.shape[1]
    if d <= _COLUMN_MAX_DIM:
        return _dist_from_columns(lambda k: _diff(X[:, k].take(ii), Y[:, k].take(jj)), d, q)
    out = np.empty(len(ii))
    step = max(1, _BLOCK // d)
    for s in range(0, len(ii), step):
        out[s:s + step] = _dist_rows(X[ii[s:s + step]] - Y[jj[s:s + step]], q)
    return out


def _cost(X: np.ndarray, Y: np.ndarray, q: float) -> np.ndarray:
    n, m = X.shape[0], Y.shape[0]
    d = X.shape[1]
    check_memory(8.0 * n * m, f"a dense {n}×{m} cost matrix",
                 "use winf/solve_winf (sparse threshold graphs, no dense matrix) or fewer atoms")
    out = np.empty((n, m))
    if d > _COLUMN_MAX_DIM:
        step = max(1, _BLOCK // max(m * d, 1))
        for s in range(0, n, step):
            Xb = X[s:s + step]
            V = (Xb[:, None, :] - Y[None, :, :]).reshape(-1, d)
            out[s:s + step] = _dist_rows(V, q).reshape(len(Xb), m)
        return out
    step = max(1, _BLOCK // max(m, 1))
    for s in range(0, n, step):
        Xb = X[s:s + step]
        out[s:s + step] = _dist_from_columns(lambda k, Xb=Xb: Xb[:, k, None] - Y[None, :, k], d, q)
    return out


def check_range(X: np.ndarray, Y: np.ndarray, q: float, names=("mu", "nu")) -> None:
    """``ValueError`` when some distance between the clouds would overflow float64."""
    with np.errstate(over="ignore", invalid="ignore"):
        lo = np.minimum(X.min(axis=0), Y.min(axis=0))
        hi = np.maximum(X.max(axis=0), Y.max(axis=0))
        span = hi - lo
        diam = float(_scaled_norm(span, q)) if np.all(np.isfinite(span)) else np.inf
    if not np.isfinite(diam):
        raise ValueError(
            f"{names[0]} and {names[1]}: distances overflow float64 (the bounding box of the points "
            f"has ℓ{q:g} diameter > {np.finfo(float).max:.3g}); rescale the points"
        )


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
    norm : {"l1", "l2", "linf"}, float q ≥ 1 or Norm
        The ground norm ℓq.

    Returns
    -------
    C : ndarray, shape (n, m), float64
        Built in cache-sized blocks (no (n, m, d) temporary). Values are bit-for-bit those
        used by :func:`wflow.transport.winf`. ``ValueError`` if a distance overflows.
    """
    q = parse_norm(norm)
    Xp, Yp = _points(X, "X"), _points(Y, "Y")
    if Xp.shape[1] != Yp.shape[1]:
        raise ValueError(f"Y must have the dimension of X (d = {Xp.shape[1]}), got d = {Yp.shape[1]}")
    check_range(Xp, Yp, q, ("X", "Y"))
    return _cost(Xp, Yp, q)


def labelled_upper_bound(X, Y, norm="linf") -> float:
    """max_i ‖x_i − y_i‖: a certified upper bound of W∞ for labelled particles.

    If particle i sits at x_i in μ and at y_i in ν (same weights), the coupling x_i ↦ y_i is
    admissible, so W∞(μ, ν) ≤ max_i ‖x_i − y_i‖ (over atoms of positive weight when measures
    are given). One pass, O(n d). For a flow, max_i ‖u_i(t) − u_i(s)‖ ≤ |t − s| certifies the
    W∞-Lipschitz inequality without any transport solve (``docs/transport.md``).

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
    check_range(mu.points, nu.points, q, ("X", "Y"))
    keep = np.flatnonzero(mu.weights > 0)
    return float(_pair_dist(mu.points, nu.points, keep, keep, q).max())


def labelled_lipschitz(positions, times, norm="linf", weights=None) -> tuple[float, int]:
    """max_k max_i ‖x_i(t_{k+1}) − x_i(t_k)‖ / (t_{k+1} − t_k) over labelled trajectories.

    One pass over (K+1, n, d) positions: by the triangle inequality and the admissible
    coupling x_i(s) ↦ x_i(t), W∞(μ_s, μ_t) ≤ |t − s| · (this number) for all grid pairs s, t.
    Returns (ratio, k) with k the worst segment. Atoms of zero weight are ignored.
    """
    q = parse_norm(norm)
    P = np.asarray(positions, dtype=float)
    t = np.asarray(times, dtype=float).reshape(-1)
    if P.ndim != 3 or P.shape[0] != t.size:
        raise ValueError(f"positions must have shape (K+1, n, d) with K+1 = len(times), got {P.shape}")
    if t.size < 2:
        return 0.0, 0
    keep = slice(None) if weights is None else np.asarray(weights) > 0
    best, kbest = -np.inf, 0
    for k in range(t.size - 1):
        a, b = P[k][keep], P[k + 1][keep]
        dk = _dist_rows(b - a, q) if a.shape[1] > _COLUMN_MAX_DIM else _dist_from_columns(
            lambda j, a=a, b=b: b[:, j] - a[:, j], a.shape[1], q)
        r = float(dk.max()) / (t[k + 1] - t[k]) if dk.size else 0.0
        if r > best:
            best, kbest = r, k
    return best, kbest


# ------------------------------------------------------------------------------------------
# threshold graphs and nearest neighbours
# ------------------------------------------------------------------------------------------
def _pow2_scale(X: np.ndarray, Y: np.ndarray) -> float:
    """A power of two s with max |s·x| in [0.5, 1) (exact scaling for filters)."""
    m = max(float(np.abs(X).max()), float(np.abs(Y).max()))
    if m == 0 or not np.isfinite(m):
        return 1.0
    return float(2.0 ** -np.frexp(m)[1])


def _l2_to_lq(q: float, d: int) -> float:
    """a with a ‖v‖₂ ≤ ‖v‖_q for all v ∈ R^d (so ‖v‖_q ≤ t ⇒ ‖v‖₂ ≤ t / a)."""
    if q >= 2.0:
        return float(d ** (1.0 / q - 0.5)) if q < np.inf else float(d ** -0.5)
    return 1.0


class Geometry:
    """Queries on the pairwise ℓq distances of X (n, d) and Y (m, d) without an n×m matrix.

    ``mode``: ``"kdtree"`` (scipy cKDTree candidates, d ≤ 8), ``"blocks"`` (BLAS ℓ2
    distances in row blocks of ≤ ``_GEMM_BLOCK`` entries used as a certified filter: ‖v‖_q ≤ t
    ⇒ ‖v‖₂ ≤ t/a, with the floating-point error of ‖x‖² + ‖y‖² − 2⟨x, y⟩ added), or
    ``"dense"`` (one matrix, n m ≤ ``DENSE_MAX``). Every returned distance is recomputed by
    :func:`_pair_dist`; trees and BLAS only select candidates. Filters work on copies scaled by a
    power of two, so magnitudes up to 1e±300 neither overflow nor lose candidates.
    """

    def __init__(self, X, Y, q, mode: str | None = None):
        self.X, self.Y, self.q = X, Y, q
        n, m = len(X), len(Y)
        d = X.shape[1]
        mode = mode or GRAPH_MODE
        if mode is None:
            mode = "kdtree" if d <= _KD_MAX_DIM else "blocks"
        if mode == "dense" and n * m > DENSE_MAX:
            mode = "kdtree" if d <= _KD_MAX_DIM else "blocks"
        self.mode = mode
        self.dense = mode == "dense"
        self.D = _cost(X, Y, q) if self.dense else None
        self.s = _pow2_scale(X, Y)
        # absolute slack of the scaled filters: subnormal round-off of the scaled copies
        self._abs = 4.0 * d * 2.0**-1074
        self._tx = self._ty = None
        self._blas = None
        self._nn = None
        self.evaluations = 0  # exact distances computed by queries (a cost measure)
        #: a pairwise distance found by :meth:`nn_bound` (its value before the rounding margin):
        #: the first threshold tested, W∞ often equals it (flows whose atoms all move)
        self.nn_value = 0.0

    # -- exact distances -------------------------------------------------------------------
    def dist(self, ii, jj) -> np.ndarray:
        ii = np.asarray(ii, dtype=np.intp)
        jj = np.asarray(jj, dtype=np.intp)
        self.evaluations += ii.size
        if self.dense:
            return self.D[ii, jj]
        return _pair_dist(self.X, self.Y, ii, jj, self.q)

    # -- KD-trees --------------------------------------------------------------------------
    def trees(self):
        if self._tx is None:
            from scipy.spatial import cKDTree

            self._tx, self._ty = cKDTree(self.X * self.s), cKDTree(self.Y * self.s)
        return self._tx, self._ty

    def _tree_radius(self, t: float) -> float:
        return t * self.s * (1 + 1e-9) + 1e-300

    # -- BLAS blocks -----------------------------------------------------------------------
    def _prep(self):
        if self._blas is None:
            Xs, Ys = self.X * self.s, self.Y * self.s
            d = self.X.shape[1]
            nx, ny = np.einsum("ij,ij->i", Xs, Xs), np.einsum("ij,ij->i", Ys, Ys)
            # |fl(‖x‖² + ‖y‖² − 2⟨x, y⟩) − ‖x − y‖²| ≤ γ (‖x‖² + ‖y‖²), γ = 2(d + 4)u (any order, FMA)
            gam = 2.0 * (d + 4) * 2.0**-53
            self._blas = (Xs, Ys, nx, ny, gam, _l2_to_lq(self.q, d))
        return self._blas

    def _sq_block(self, P, nP, Q, nQ):
        """fl(‖p‖² + ‖q‖² − 2⟨p, q⟩) for a block of rows P against all of Q."""
        G = P @ Q.T
        G *= -2.0
        G += nP[:, None]
        G += nQ[None, :]
        return G

    def _filter(self, sq, nP, nQ, radius):
        """Candidate mask: true squared ℓ2 distance possibly ≤ (radius / a)² (scaled units).

        One comparison per entry against a per-row limit (the error term uses max ‖q‖²).
        """
        _, _, _, _, gam, a = self._blas
        r = np.broadcast_to(np.asarray(radius, dtype=float), nP.shape)
        lim = (r / a) ** 2 * (1 + 1e-12) + gam * (nP + (nQ.max() if len(nQ) else 0.0)) + self._abs
        return sq <= lim[:, None]

    def _nn_pass(self):
        """One pass over BLAS blocks (cached): the exact nearest y of every x, the ℓ2-nearest x of
        every y and a certified lower bound of min_i ‖x_i − y_j‖_q for every y.

        Returns (dist_x (n,), idx_x (n,), lb_y (m,), idx_y (m,)).
        """
        if self._nn is not None:
            return self._nn
        Xs, Ys, nx, ny, gam, a = self._prep()
        n, m = len(Xs), len(Ys)
        step = max(1, _GEMM_BLOCK // max(m, 1))
        dx, ix = np.empty(n), np.empty(n, dtype=np.intp)
        cmin, carg = np.full(m, np.inf), np.zeros(m, dtype=np.intp)
        for s in range(0, n, step):
            rows = np.arange(s, min(n, s + step))
            sq = self._sq_block(Xs[rows], nx[rows], Ys, ny)
            j0 = sq.argmin(axis=1)
            cm = sq.min(axis=0)
            better = cm < cmin
            if better.any():
                carg[better] = rows[sq[:, better].argmin(axis=0)]
                cmin[better] = cm[better]
            d0 = self.dist(rows, j0)
            r, c = np.nonzero(self._filter(sq, nx[rows], ny, d0 * self.s))
            dd = self.dist(rows[r], c)
            best_d, best_j = d0.copy(), j0.copy()
            o = np.lexsort((dd, r))
            r, c, dd = r[o], c[o], dd[o]
            first = np.r_[True, r[1:] != r[:-1]] if len(r) else np.zeros(0, bool)
            r, c, dd = r[first], c[first], dd[first]
            upd = dd < best_d[r]
            best_d[r[upd]], best_j[r[upd]] = dd[upd], c[upd]
            dx[rows], ix[rows] = best_d, best_j
        # computed sq ≥ true sq − γ(‖x‖² + ‖y‖²) − abs, and ‖v‖_q ≥ a ‖v‖₂
        low_sq = np.maximum(cmin - gam * (nx.max() + ny) - self._abs, 0.0)
        lb_y = a * np.sqrt(low_sq) / self.s * (1 - 1e-12)
        self._nn = (dx, ix, lb_y, carg)
        return self._nn

    def _side(self, transpose: bool):
        Xs, Ys, nx, ny, _, _ = self._prep()
        return (Ys, ny, Xs, nx) if transpose else (Xs, nx, Ys, ny)

    def _exact(self, rows, cols, transpose):
        return self.dist(cols, rows) if transpose else self.dist(rows, cols)

    def _blocks_within(self, A, t, transpose=False, cols=None):
        """Pairs (row a ∈ A, col) with exact distance ≤ t (rows are Y's when transposed)."""
        P, nP, Q, nQ = self._side(transpose)
        if cols is not None:
            Q, nQ = Q[cols], nQ[cols]
        step = max(1, _GEMM_BLOCK // max(len(Q), 1))
        out_i, out_j, out_d = [], [], []
        ts = t * self.s
        for s in range(0, len(A), step):
            rows = A[s:s + step]
            sq = self._sq_block(P[rows], nP[rows], Q, nQ)
            r, c = np.nonzero(self._filter(sq, nP[rows], nQ, ts))
            ii, jj = rows[r], (c if cols is None else cols[c])
            dd = self._exact(ii, jj, transpose)
            k = dd <= t
            out_i.append(ii[k])
            out_j.append(jj[k])
            out_d.append(dd[k])
        if not out_i:
            return np.zeros(0, np.intp), np.zeros(0, np.intp), np.zeros(0)
        return np.concatenate(out_i), np.concatenate(out_j), np.concatenate(out_d)

    def _blocks_knn(self, transpose: bool, k: int, cols=None, exact_first=True):
        """For every row: k candidates (ℓ2-nearest), the first of them the exact ℓq nearest.

        Returns (dist (r, k), col (r, k)) sorted by exact distance.
        """
        P, nP, Q, nQ = self._side(transpose)
        if cols is not None:
            Q, nQ = Q[cols], nQ[cols]
        nr, nc = len(P), len(Q)
        k = min(k, nc)
        step = max(1, _GEMM_BLOCK // max(nc, 1))
        dist = np.empty((nr, k))
        idx = np.empty((nr, k), dtype=np.intp)
        for s in range(0, nr, step):
            rows = np.arange(s, min(nr, s + step))
            sq = self._sq_block(P[rows], nP[rows], Q, nQ)
            if k < nc:
                cand = np.argpartition(sq, k - 1, axis=1)[:, :k]
            else:
                cand = np.broadcast_to(np.arange(nc), (len(rows), nc)).copy()
            gc = cand if cols is None else cols[cand]
            rr = np.repeat(rows, k)
            dd = self._exact(rr, gc.reshape(-1), transpose).reshape(len(rows), k)
            if exact_first and k < nc:
                # every column within the current best exact distance is a candidate for the minimum
                best = dd.min(axis=1)
                r2, c2 = np.nonzero(self._filter(sq, nP[rows], nQ, best * self.s))
                gc2 = c2 if cols is None else cols[c2]
                d2 = self._exact(rows[r2], gc2, transpose)
                better = d2 < best[r2]
                if better.any():
                    r2, gc2, d2 = r2[better], gc2[better], d2[better]
                    o = np.lexsort((d2, r2))
                    r2, gc2, d2 = r2[o], gc2[o], d2[o]
                    first = np.r_[True, r2[1:] != r2[:-1]]
                    r2, gc2, d2 = r2[first], gc2[first], d2[first]
                    worst = np.argmax(dd[r2], axis=1)
                    dd[r2, worst] = d2
                    gc = gc.copy() if gc is cand else gc
                    gc[r2, worst] = gc2
            o = np.argsort(dd, axis=1, kind="stable")
            dist[rows] = np.take_along_axis(dd, o, 1)
            idx[rows] = np.take_along_axis(gc, o, 1)
        return dist, idx

    # -- queries used by the solvers -------------------------------------------------------
    def upto(self, t: float):
        """All (ii, jj, dist) with dist ≤ t."""
        return self.rows_upto(np.arange(len(self.X)), t)

    def rows_upto(self, A: np.ndarray, t: float):
        """(ii, jj, dist) with ii ∈ A and dist ≤ t."""
        A = np.asarray(A, dtype=np.intp)
        if self.dense:
            r, jj = np.nonzero(self.D[A] <= t)
            ii = A[r]
            return ii, jj, self.D[ii, jj]
        if self.mode == "blocks":
            return self._blocks_within(A, t)
        from scipy.spatial import cKDTree

        _, ty = self.trees()
        tree = self._tx if len(A) == len(self.X) else cKDTree(self.X[A] * self.s)
        res = tree.sparse_distance_matrix(ty, self._tree_radius(t), p=self.q, output_type="ndarray")
        ii = A[res["i"].astype(np.intp)]
        jj = res["j"].astype(np.intp)
        d = self.dist(ii, jj)
        k = d <= t
        return ii[k], jj[k], d[k]

    def sparse_upto(self, t: float, max_edges: int):
        """All of G_t as (ii, jj, dist) when it has at most ``max_edges`` edges, else None.

        KD-tree mode estimates the count from 256 sampled rows first; other modes None.
        """
        if self.mode != "kdtree":
            return None
        tx, ty = self.trees()
        n = len(self.X)
        # estimate |G_t| from a sample of rows (cheap), then count exactly only if plausible
        sample = np.linspace(0, n - 1, min(n, 256)).astype(np.intp)
        per_row = ty.query_ball_point(self.X[sample] * self.s, self._tree_radius(t), p=self.q, return_length=True)
        if float(np.mean(per_row)) * n > max_edges:
            return None
        ii, jj, dd = self.upto(t)
        return (ii, jj, dd) if len(ii) <= 2 * max_edges else None

    def nn_bound(self) -> float:
        """max(max_i min_j d_ij, max_j min_i d_ij): a lower bound of W∞ (exact in dense/blocks)."""
        n, m = len(self.X), len(self.Y)
        if self.dense:
            v = float(max(self.D.min(axis=1).max(), self.D.min(axis=0).max()))
            self.nn_value = v
            return v
        if self.mode == "blocks":
            dx, _, lb_y, _ = self._nn_pass()
            self.nn_value = float(dx.max())
            return float(max(dx.max(), lb_y.max()))
        tx, ty = self.trees()
        _, jy = ty.query(self.X * self.s, k=1, p=self.q)
        _, ix = tx.query(self.Y * self.s, k=1, p=self.q)
        v = max(self.dist(np.arange(n), jy).max(), self.dist(ix, np.arange(m)).max())
        self.nn_value = float(v)  # a pairwise distance (the bound before its rounding margin)
        return self.safe_lower(float(v))

    def safe_lower(self, v: float) -> float:
        """Shrink a bound found through a KD-tree (its own rounding) to a certified one."""
        if self.mode != "kdtree":
            return v
        return max(0.0, v * (1.0 - 1e-12) - self._abs / self.s)

    def knn(self, k: int):
        """(ii, jj, dist): about the k nearest y of every x and the k nearest x of every y."""
        n, m = len(self.X), len(self.Y)
        k = min(k, n, m)
        if self.dense:
            jx = np.argpartition(self.D, k - 1, axis=1)[:, :k]
            iy = np.argpartition(self.D.T, k - 1, axis=1)[:, :k].T
            ii = np.concatenate([np.repeat(np.arange(n), k), iy.ravel()])
            jj = np.concatenate([jx.ravel(), np.tile(np.arange(m), k)])
        elif self.mode == "blocks":
            # high d: the nearest neighbours of one BLAS pass (more edges are added on demand)
            _, jx, _, iy = self._nn_pass()
            ii = np.concatenate([np.arange(n), iy])
            jj = np.concatenate([jx, np.arange(m)])
        else:
            tx, ty = self.trees()
            _, jx = ty.query(self.X * self.s, k=k, p=self.q)
            _, iy = tx.query(self.Y * self.s, k=k, p=self.q)
            jx, iy = jx.reshape(n, k), iy.reshape(m, k)
            ii = np.concatenate([np.repeat(np.arange(n), k), iy.ravel()])
            jj = np.concatenate([jx.ravel(), np.repeat(np.arange(m), k)])
        return ii, jj, self.dist(ii, jj)

    def near_y(self, Yq: np.ndarray, k: int) -> np.ndarray:
        """Indices of about the k atoms of Y nearest to each query point (n_q, k)."""
        k = min(k, len(self.Y))
        if self.mode == "kdtree":
            _, j = self.trees()[1].query(Yq * self.s, k=k, p=self.q)
            return j.reshape(len(Yq), k)
        sub = Geometry(Yq, self.Y, self.q, mode="blocks" if self.mode == "blocks" else "dense")
        if sub.mode == "dense":
            return np.argpartition(sub.D, k - 1, axis=1)[:, :k] if k < len(self.Y) else np.tile(
                np.arange(len(self.Y)), (len(Yq), 1))
        return sub._blocks_knn(False, k, exact_first=False)[1]

    def in_range(self, lo: float, hi: float) -> np.ndarray:
        """Distances d with lo ≤ d < hi (dense mode only)."""
        D = self.D
        return D[(D >= lo) & (D < hi)]

    def nearest(self, A: np.ndarray, k: int = 1):
        """For every y, about the k atoms a ∈ A nearest to y: (dist (m, k), a (m, k)), sorted.

        The first column is the exact nearest (certified up to :meth:`safe_lower` in KD mode).
        """
        A = np.asarray(A, dtype=np.intp)
        m = len(self.Y)
        k = min(k, len(A))
        if self.mode == "blocks":
            return self._blocks_knn(True, k, cols=A)
        if self.dense:
            DA = self.D[A]
            if k == 1:
                idx = DA.argmin(axis=0)[:, None]
            else:
                idx = np.argpartition(DA, k - 1, axis=0)[:k].T
        else:
            from scipy.spatial import cKDTree

            _, idx = cKDTree(self.X[A] * self.s).query(self.Y * self.s, k=k, p=self.q)
            idx = idx.reshape(m, k)
        a = A[idx]
        d = self.dist(a.ravel(), np.repeat(np.arange(m), k)).reshape(m, k)
        o = np.argsort(d, axis=1, kind="stable")
        return np.take_along_axis(d, o, 1), np.take_along_axis(a, o, 1)

    def near_within(self, A: np.ndarray, cols: np.ndarray, t: float, k: int):
        """For the y's ``cols``: up to k atoms a ∈ A with ‖x_a − y‖ ≤ t (KD-tree or dense).

        Returns (y, a, dist) for the pairs found, exact distances ≤ t. Candidates come from a
        tree query with the inflated radius, so a pair within t can be missed only at a
        rounding tie; callers certify with :meth:`nearest` (exact up to :meth:`safe_lower`).
        """
        A = np.asarray(A, dtype=np.intp)
        cols = np.asarray(cols, dtype=np.intp)
        k = min(k, len(A))
        if len(A) == 0 or len(cols) == 0:
            z = np.zeros(0, np.intp)
            return z, z, np.zeros(0)
        if self.dense:
            DA = self.D[np.ix_(A, cols)]
            idx = np.argpartition(DA, k - 1, axis=0)[:k].T if k < len(A) else np.broadcast_to(
                np.arange(len(A)), (len(cols), len(A)))
            ok = np.ones(idx.shape, bool)
        else:
            from scipy.spatial import cKDTree

            dq, idx = cKDTree(self.X[A] * self.s).query(self.Y[cols] * self.s, k=k, p=self.q,
                                                         distance_upper_bound=self._tree_radius(t))
            idx = idx.reshape(len(cols), k)
            ok = np.isfinite(dq.reshape(len(cols), k))
        r, c = np.nonzero(ok)
        yy, aa = cols[r], A[idx[r, c]]
        d = self.dist(aa, yy)
        keep = d <= t
        return yy[keep], aa[keep], d[keep]

    def nearest_x(self, B: np.ndarray) -> np.ndarray:
        """For every x: min over b ∈ B of ‖x − y_b‖ (exact up to :meth:`safe_lower`)."""
        B = np.asarray(B, dtype=np.intp)
        if self.mode == "blocks":
            return self._blocks_knn(False, 1, cols=B)[0][:, 0]
        if self.dense:
            idx = self.D[:, B].argmin(axis=1)
        else:
            from scipy.spatial import cKDTree

            _, idx = cKDTree(self.Y[B] * self.s).query(self.X * self.s, k=1, p=self.q)
        return self.dist(np.arange(len(self.X)), B[idx])
