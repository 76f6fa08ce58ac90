"""Exact W∞ solvers: 1-D quantiles, bottleneck assignment, lower bounds (``docs/transport.md``)."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import breadth_first_order

from ..norms import dual_exponent
from .geometry import Geometry
from .problem import MASS_TOL, uniform

#: where in the bracket [lo, hi) the threshold searches test (fraction of the candidates)
_FRACTION = 0.1
#: edges added per missing neighbour when a sparse threshold graph is enlarged
_ADD = 32
#: initial edges from every x to the y nearest its rank-matching partner
_PARTNER_K = 8
#: edges per visited y in the alternating search inside G_t (:func:`_alternating_closure`)
_CLOSURE_K = 4


# ------------------------------------------------------------------------------------------
# 1-D
# ------------------------------------------------------------------------------------------
def _cumulative(w: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Cumulative masses ending at exactly 1 (k/n exactly rounded for uniform weights).

    ``out`` (may be ``w`` itself) receives the running sum of non-uniform weights.
    """
    n = len(w)
    if uniform(w):
        return np.arange(1, n + 1) / n
    c = np.cumsum(w, out=out)
    c /= c[-1]
    c[-1] = 1.0
    return c


#: :func:`_compact` removes up to this many entries in place, more by a boolean-index copy
_INPLACE_DROPS = 64


def _compact(arrays, keep: np.ndarray):
    """``tuple(A[keep] for A in arrays)`` for arrays the caller owns (1-D, same length).

    A few removals (at most ``_INPLACE_DROPS``) shift the segments between them left in
    place and return prefix views: no new 10⁶-entry arrays.
    """
    drop = np.flatnonzero(~keep)
    if len(drop) == 0:
        return tuple(arrays)
    if len(drop) > _INPLACE_DROPS:
        return tuple(A[keep] for A in arrays)
    ends = np.append(drop[1:], len(keep))
    for A in arrays:
        for s, (d, e) in enumerate(zip(drop.tolist(), ends.tolist())):
            # overlapping 1-D slices, destination first: numpy copies forward, no temporary
            A[d - s:e - s - 1] = A[d + 1:e]
    return tuple(A[:len(keep) - len(drop)] for A in arrays)


def winf_1d(x: np.ndarray, a: np.ndarray, y: np.ndarray, b: np.ndarray):
    """Monotone coupling of Σ a_i δ_{x_i}, Σ b_j δ_{y_j} on R (positive weights).

    Returns (i, j, mass) as indices into x and y: one entry per distinct breakpoint of the
    merged cumulative masses, in increasing order (``docs/transport.md``, 1-D).

    Breakpoints of ν within ``MASS_TOL`` of one of μ are snapped to it (round-off, not mass).
    One binary search per breakpoint of ν, no n + m sort, and few big temporaries (a fresh
    process pays for every page it touches the first time).
    """
    ox = np.argsort(x)
    oy = np.argsort(y)
    n, m = len(ox), len(oy)
    if n == m and uniform(a) and uniform(b):
        return ox, oy, a  # k-th smallest to k-th smallest
    cx = np.take(a, ox)
    cx = _cumulative(cx, out=cx)
    cy = np.take(b, oy)
    cy = _cumulative(cy, out=cy)
    # k[l] = #{cx < cy[l]}: cx[k - 1] < cy[l] ≤ cx[k]
    k = np.searchsorted(cx, cy)
    # candidates for snapping: cy within MASS_TOL of cx[k] or of cx[k - 1] (a superset)
    kc = np.minimum(k, n - 1)
    t = np.take(cx, kc)
    t -= cy
    cand = t <= MASS_TOL
    np.maximum(kc, 1, out=kc)
    kc -= 1
    np.take(cx, kc, out=t, mode="clip")  # 0 ≤ kc < n; "raise" would buffer the output
    np.subtract(cy, t, out=t)
    cand |= t <= MASS_TOL
    del t, kc
    c_idx = np.flatnonzero(cand)
    if len(c_idx):
        # snap to the nearest of cx[k − 1], cx[k] (ties: cx[k]) when within MASS_TOL; the
        # running maximum only raises values within MASS_TOL of a cx, i.e. candidates
        s = cy[c_idx]
        ks = np.clip(np.searchsorted(cx, s), 0, n - 1)
        kms = np.clip(ks - 1, 0, n - 1)
        near = np.where(np.abs(cx[ks] - s) <= np.abs(cx[kms] - s), ks, kms)
        close = np.abs(cx[near] - s) <= MASS_TOL
        cy[c_idx] = np.where(close, cx[near], s)
        np.maximum.accumulate(cy, out=cy)
        k[c_idx] = np.searchsorted(cx, cy[c_idx], side="right")
    # now k[l] = #{cx ≤ cy[l]} (a non-candidate equals no cx). Merge the sorted breakpoint
    # lists, ties μ's first: cy[l] goes to position k[l] + l
    py = k
    py += np.arange(m)
    isx = np.ones(n + m, dtype=bool)
    isx[py] = False
    v = np.empty(n + m)
    v[py] = cy
    v[isx] = cx
    del cx, cy, py
    # an entry per distinct breakpoint br with mass br − (previous breakpoint): at its first
    # occurrence p, v[p] − v[p − 1] > 0 (repeats give 0), the atoms before p are exactly
    # those ending below br, so the pieces are (#x before p, #y before p)
    mass = np.empty(n + m)
    mass[0] = v[0]
    np.subtract(v[1:], v[:-1], out=mass[1:])
    del v
    i = np.cumsum(isx, dtype=np.intp)
    i -= isx
    del isx
    j = np.arange(n + m)
    j -= i
    np.minimum(i, n - 1, out=i)
    np.minimum(j, m - 1, out=j)
    # repeated breakpoints (cx[-1] = cy[-1] = 1 at least) carry no mass
    i, j, mass = _compact((i, j, mass), mass > 0)
    rows = np.take(ox, i)
    del i, ox
    return rows, np.take(oy, j), mass


# ------------------------------------------------------------------------------------------
# lower bounds
# ------------------------------------------------------------------------------------------
def projection_bound(X, Y, q: float, a=None, b=None) -> float:
    """Certified max over a few directions u of W∞ of the 1-D projections, divided by ‖u‖_*.

    |⟨u, x − y⟩| ≤ ‖u‖_* ‖x − y‖, so projecting a coupling shows W∞ ≥ W∞(u_#μ, u_#ν)/‖u‖_*.
    The floating-point error of the projections (after centring) is subtracted, so the bound
    stays valid at any magnitude and offset. Uniform equal sizes when a, b are omitted.
    """
    n, d = X.shape
    qs = dual_exponent(q)
    c = 0.5 * (np.concatenate([X, Y]).max(axis=0) + np.concatenate([X, Y]).min(axis=0))
    Xc, Yc = X - c, Y - c
    dirs = [np.eye(1, d, k)[0] for k in range(min(d, 16))]
    if d > 1:
        dirs.append(np.ones(d))
        cc = np.concatenate([Xc, Yc])
        if len(cc) > 2:
            sub = cc[:: max(1, len(cc) // 2000)]
            s = np.abs(sub).max()
            if s > 0:
                # principal direction by power iteration on the d×d second-moment matrix
                C = (sub / s).T @ (sub / s)
                v = np.random.default_rng(0).standard_normal(d)
                for _ in range(30):
                    v = C @ v
                    nv = np.linalg.norm(v)
                    if not nv > 0:
                        break
                    v /= nv
                if np.all(np.isfinite(v)) and np.linalg.norm(v) > 0:
                    dirs.append(v)
    best = 0.0
    u_eps = 2.0**-53
    for u in dirs:
        un = np.abs(u).max() if qs == np.inf else float(np.linalg.norm(u, ord=qs))
        if not un > 0:
            continue
        if np.count_nonzero(u) == 1:
            k = int(np.flatnonzero(u)[0])
            px, py = X[:, k] * u[k], Y[:, k] * u[k]  # exact differences up to one rounding
            err = 0.0
            rel = 4 * u_eps
        else:
            px, py = Xc @ u, Yc @ u
            au = np.abs(u)
            # |fl(⟨u, x − c⟩) − ⟨u, x − c⟩| ≤ (d + 2) u (|x − c| + |c|)·|u| (centring and dot)
            err = (d + 3) * u_eps * (float((np.abs(Xc) @ au).max()) + float((np.abs(Yc) @ au).max())
                                     + 2 * float(np.abs(c) @ au))
            rel = 4 * u_eps
        if a is None:
            gap = float(np.abs(np.sort(px) - np.sort(py)).max())
        else:
            i, j, _ = winf_1d(px, a, py, b)
            gap = float(np.abs(px[i] - py[j]).max())
        lb = (gap * (1 - rel) - err) / un * (1 - 1e-12)
        best = max(best, lb)
    return best


# ------------------------------------------------------------------------------------------
# bottleneck assignment (uniform weights, equal sizes)
# ------------------------------------------------------------------------------------------
def _kth(values: np.ndarray, k: int) -> float:
    """The k-th smallest value (1-based)."""
    return float(np.partition(values, k - 1)[k - 1])


def _augment_cut(n: int, ii, jj, mate_x, mate_y):
    """Extend a matching to a maximum matching of the bipartite graph (ii, jj), in place.

    One OR-tools max-flow (push-relabel) on the residual network of the current matching
    (source → free x, x → y for non-matching edges, y → mate(y), free y → sink, unit
    capacities): every unit of flow is an augmenting path. The matching is updated and
    the source side of the minimum cut, i.e. the atoms reachable from a free x by alternating
    paths, is returned as (A, N(A)).
    """
    from ortools.graph.python import max_flow

    free_x = np.flatnonzero(mate_x < 0)
    free_y = np.flatnonzero(mate_y < 0)
    s, t = 2 * n, 2 * n + 1
    nonm = mate_x[ii] != jj
    mx = np.flatnonzero(mate_x >= 0)
    tails = np.concatenate([np.full(len(free_x), s), ii[nonm], n + mate_x[mx], n + free_y]).astype(np.int64)
    heads = np.concatenate([free_x, n + jj[nonm], mx, np.full(len(free_y), t)]).astype(np.int64)
    f = max_flow.SimpleMaxFlow()
    arcs = f.add_arcs_with_capacity(tails, heads, np.ones(len(tails), np.int64))
    status = f.solve(s, t)
    if status != f.OPTIMAL:
        raise RuntimeError(f"OR-tools max-flow failed with status {status}")
    if f.optimal_flow() > 0:
        fl = f.flows(arcs)
        k = (fl > 0) & (tails < n)
        xs, ys = tails[k], heads[k] - n
        # x → y arcs carrying flow become matching edges; their previous mates are released
        # (every matched x on an augmenting path gets a new mate, so overwriting suffices)
        mate_x[xs] = ys
        mate_y[ys] = xs
    side = np.asarray(f.get_source_side_min_cut(), dtype=np.int64)
    return side[side < n], side[(side >= n) & (side < 2 * n)] - n


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


def _alternating_closure(E, t: float, A, NA, y_first, mate_x, mate_y):
    """Continue the alternating search of a Hall violator A of H ⊆ G_t inside G_t itself.

    ``y_first`` are the y ∉ N_H(A) within t of A. Layer by layer, the mates of the newly
    visited matched y's join A and the unvisited y's within t of them (tree queries on the new
    x's only) are visited, until no new y is found. Then every G_t-neighbour of the extended A
    is visited, and |A| − |N_t(A)| = (free x) − (free y visited): if that is positive, t is
    infeasible and the Hall bound t_A (|A|-th smallest distance from the y's to A, > t) is
    returned. Otherwise (or at a rounding tie missed by a tree) the search edges,
    _CLOSURE_K per visited y, are returned for H (they contain augmenting paths).

    Returns (t_A or None, [edge triples]).
    """
    m = len(E.Y)
    seen = np.zeros(m, bool)
    seen[NA] = True
    frontier = np.asarray(y_first, dtype=np.intp)
    seen[frontier] = True
    xs_all = [np.asarray(A, dtype=np.intp)]
    edges = []
    free_y = 0
    while len(frontier):
        my = mate_y[frontier]
        free_y += int(np.count_nonzero(my < 0))
        xs = my[my >= 0]
        xs_all.append(xs)
        unv = np.flatnonzero(~seen)
        yy, aa, dd = E.near_within(xs, unv, t, _CLOSURE_K)
        edges.append((aa, yy, dd))
        frontier = np.unique(yy)
        seen[frontier] = True
    if free_y >= np.count_nonzero(mate_x < 0):
        return None, edges  # no deficiency: H gets the paths
    Aall = np.concatenate(xs_all)
    delta = E.nearest(Aall, 1)[0][:, 0]
    t_A = float(np.partition(delta, len(Aall) - 1)[len(Aall) - 1]) if len(Aall) <= m else np.inf
    return (t_A if t_A > t else None), edges


def rank_matching(X: np.ndarray, Y: np.ndarray) -> np.ndarray:
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


def bottleneck(X: np.ndarray, Y: np.ndarray, q: float, *, knn: int = 8, geom=None):
    """Exact bottleneck assignment of two equal-size point sets. Returns (value, perm, info).

    Threshold tests run on a sparse subgraph H ⊆ G_t (k nearest neighbours, the warm-start
    matching, edges added on demand), augmented by one max-flow whose minimum cut is the Hall
    violator A of H. A perfect matching in H certifies t; a bound t_A > t certifies
    infeasibility; otherwise the alternating search continues inside G_t (KD-tree / dense
    modes: one pass can certify infeasibility) and its edges plus G_t-edges at A are added to
    H, and the test is repeated (finitely often: H only grows). ``docs/transport.md``.
    """
    n = len(X)
    E = Geometry(X, Y, q) if geom is None else geom
    ar = np.arange(n)
    # ---- lower bounds
    lo = max(E.nn_bound(), projection_bound(X, Y, q))
    lo0 = lo
    n_tests = 0
    # ---- upper bound: the rank matching
    best = rank_matching(X, Y)
    hi = float(E.dist(ar, best).max())
    mate_x = best.copy()
    mate_y = np.empty(n, dtype=np.intp)
    mate_y[best] = ar
    kn = E.knn(knn)
    # long edges in the right direction: each x to the y nearest its rank-matching partner
    pk = min(_PARTNER_K, n)
    if E.mode == "kdtree" and pk:
        jn = E.near_y(Y[best], pk)
        pi = np.repeat(ar, pk)
        pj = jn.reshape(-1)
        kn = tuple(np.concatenate([u, v]) for u, v in zip(kn, (pi, pj, E.dist(pi, pj))))
    extra = (np.zeros(0, np.intp), np.zeros(0, np.intp), np.zeros(0))

    tree_mode = E.mode != "blocks"

    def test(t: float):
        nonlocal extra
        mx = np.flatnonzero(mate_x >= 0)
        long = mx[E.dist(mx, mate_x[mx]) > t]
        mate_y[mate_x[long]] = -1
        mate_x[long] = -1
        while True:
            # duplicated pairs are harmless: they only raise an x → y capacity to 2, while
            # the flow through x is at most 1
            k1 = kn[2] <= t
            k2 = extra[2] <= t
            ii = np.concatenate([kn[0][k1], extra[0][k2]])
            jj = np.concatenate([kn[1][k1], extra[1][k2]])
            A, NA = _augment_cut(n, ii, jj, mate_x, mate_y)
            if np.all(mate_x >= 0):
                return True, None
            dk, ak = E.nearest(A, 1 if tree_mode else _ADD)
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
            if tree_mode:
                closed, more = _alternating_closure(E, t, A, NA, y_new, mate_x, mate_y)
                if closed is not None:
                    return False, closed
                yy, aa, dd = E.near_within(A, y_new, t, _ADD)
                # the nearest atom of A is always added (progress even at a rounding tie)
                new = [(aa, yy, dd), (ak[y_new, 0], y_new, delta[y_new]), *more]
            else:
                dn, an = dk[y_new], ak[y_new]
                keep = dn <= t
                new = [(an[keep], np.broadcast_to(y_new[:, None], dn.shape)[keep], dn[keep])]
            extra = tuple(np.concatenate([e, *(f[i] for f in new)]) for i, e in enumerate(extra))
            # drop repeated pairs (an atom of A is the nearest of a y in several rounds)
            _, u = np.unique(extra[0] * len(E.Y) + extra[1], return_index=True)
            extra = tuple(e[u] for e in extra)

    first = max(lo, E.nn_value)  # a pairwise distance: when W∞ equals it, two tests decide
    while True:
        # test low in the bracket: Hall bounds tend to be nearly tight, so a failure moves
        # lo past most candidates and a success cuts hi to a small fraction of them
        if first < hi:
            t, first = first, np.inf
        elif E.dense:
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
        n_tests += 1
        if ok:
            hi = float(E.dist(ar, mate_x).max())
            best = mate_x.copy()
        else:
            t_A = E.safe_lower(t_A)
            lo = max(lo, float(np.nextafter(t, np.inf)), t_A)
    return hi, best, {"lower_bound": lo0, "n_tests": n_tests}


