"""Exact W∞ for general weights on sparse threshold graphs (integer max-flow, ``docs/transport.md``).

A threshold t is feasible iff a plan supported on G_t = {(i, j) : ‖x_i − y_j‖ ≤ t} exists, i.e.
iff the max-flow source →(a_i) x →(∞) y →(b_j) sink on G_t carries all the mass. Masses are
scaled to integers, a_i ↦ ⌊a_i 2^58⌉ (at least 1 for a positive weight), and the flow is
computed exactly in int64 by OR-tools; t is declared feasible iff the flow misses at most
the rounding, (64 + n + m + |Σ⌊a⌉ − Σ⌊b⌉|) 2^-58 of the (normalized) mass. Threshold tests run on a subgraph H ⊆ G_t (nearest neighbours and a
monotone plan of a 1-D projection, which is feasible at its own largest cost); a min cut
whose x-side A has no G_t-edge leaving N_H(A) certifies infeasibility, otherwise the missing
edges are added and the test repeated. A certified failure raises the lower bound to the
Hall/Strassen bound of A: the smallest s with ν(N_s(A)) ≥ μ(A) − tol.
Their difference is below ``MASS_TOL``, so the plan's marginals are polished to the weights.
"""

from __future__ import annotations

import numpy as np

from .geometry import Geometry
from .result import fit_marginals
from .solvers import _ADD, _FRACTION, projection_bound, winf_1d

#: masses are scaled by this power of two to int64 capacities
SCALE = 2**58
#: use the whole threshold graph G_t when it has at most this many edges per atom
_FULL_EDGES = 40


def integer_masses(w: np.ndarray) -> np.ndarray:
    """⌊w · SCALE / Σw⌉, at least 1 for every positive weight (int64)."""
    v = np.rint(w / w.sum() * SCALE).astype(np.int64)
    return np.maximum(v, 1)


def _maxflow(n, m, ii, jj, ai, bi):
    from ortools.graph.python import max_flow

    f = max_flow.SimpleMaxFlow()
    src, snk = n + m, n + m + 1
    f.add_arcs_with_capacity(np.full(n, src, np.int64), np.arange(n, dtype=np.int64), ai)
    f.add_arcs_with_capacity(np.arange(n, n + m, dtype=np.int64), np.full(m, snk, np.int64), bi)
    arcs = f.add_arcs_with_capacity(ii.astype(np.int64), (n + jj).astype(np.int64),
                                    np.full(len(ii), SCALE, np.int64))
    status = f.solve(src, snk)
    if status != f.OPTIMAL:
        raise RuntimeError(f"OR-tools max-flow failed with status {status}")
    return f, arcs


def winf_weighted(X, a, Y, b, q, *, geom=None, knn: int = 8):
    """Exact W∞ for positive weights a (n,), b (m,). Returns (value, (rows, cols, mass), info)."""
    n, m = len(X), len(Y)
    E = Geometry(X, Y, q) if geom is None else geom
    ai, bi = integer_masses(a), integer_masses(b)
    A_tot = int(ai.sum())
    # rounding only: every atom of positive weight is transported (consistent with the
    # nearest-neighbour bound), the totals of the normalized weights agree to (n + m) units
    # (normalized float weights carry ≤ 2^-53 relative error, ≤ 2^5 units on any set of atoms
    # of either measure; ⌊·⌉ adds ≤ ½ unit per atom)
    tol = 64 + (n + m) + abs(A_tot - int(bi.sum()))
    lo = max(E.nn_bound(), projection_bound(X, Y, q, a / a.sum(), b / b.sum()))
    lo0 = lo
    # an explicit plan: the monotone coupling of the projections on the first coordinate
    pi, pj, _ = winf_1d(X[:, 0], a, Y[:, 0], b)
    pd = E.dist(pi, pj)
    hi = float(pd.max())
    kn = E.knn(knn)
    H = [np.concatenate([kn[0], pi]), np.concatenate([kn[1], pj]), np.concatenate([kn[2], pd])]
    best = None
    n_tests = 0

    def test(t):
        nonlocal H
        full = E.sparse_upto(t, _FULL_EDGES * (n + m))
        while True:
            if full is not None:
                ii, jj = full[0], full[1]  # all of G_t: one max-flow decides
            else:
                k = H[2] <= t
                ii, jj = H[0][k], H[1][k]
            f, arcs = _maxflow(n, m, ii, jj, ai, bi)
            flow = int(f.optimal_flow())
            if A_tot - flow <= tol:
                fl = f.flows(arcs)
                pos = fl > 0
                return True, (ii[pos], jj[pos], fl[pos]), None
            side = np.asarray(f.get_source_side_min_cut(), dtype=np.int64)
            A = side[side < n]
            NA = np.zeros(m, bool)
            NA[side[(side >= n) & (side < n + m)] - n] = True
            dk, ak = E.nearest(A, _ADD)
            delta = dk[:, 0]
            missing = (delta <= t) & ~NA
            if full is not None:
                missing[:] = False  # H = G_t: the cut is a cut of G_t
            if not missing.any():
                # certified: A's G_t-neighbourhood is N_H(A), which cannot absorb μ(A)
                o = np.argsort(delta, kind="stable")
                cum = np.cumsum(bi[o])
                need = int(ai[A].sum()) - tol
                r = int(np.searchsorted(cum, need, side="left"))
                t_A = float(delta[o[min(r, m - 1)]]) if need > 0 else 0.0
                return False, None, E.safe_lower(t_A)
            y_new = np.flatnonzero(missing)
            dn, an = dk[y_new], ak[y_new]
            keep = dn <= t
            new = (an[keep], np.broadcast_to(y_new[:, None], dn.shape)[keep], dn[keep])
            H = [np.concatenate([h, e]) for h, e in zip(H, new)]

    # the plan of the projection is feasible at hi
    best = (pi, pj, None)
    first = max(lo, E.nn_value)  # a pairwise distance: when W∞ equals it, two tests decide
    while lo < hi:
        t = float(np.nextafter(hi, -np.inf)) if hi - lo <= 1e-9 * hi else lo + _FRACTION * (hi - lo)
        if first < hi:
            t, first = first, np.inf
        ok, plan, t_A = test(t)
        n_tests += 1
        if ok:
            best = plan
            hi = float(E.dist(plan[0], plan[1]).max())
        else:
            lo = max(lo, float(np.nextafter(t, np.inf)), t_A)
    ii, jj, fl = best
    if fl is None:
        # the 1-D projection plan was optimal: its real masses
        i1, j1, mass = winf_1d(X[:, 0], a, Y[:, 0], b)
        return hi, (i1, j1, mass), {"lower_bound": lo0, "n_tests": n_tests, "graph_edges": int(len(H[0]))}
    mass = _real_masses(ii, jj, fl, a, b, n, m)
    return hi, (ii, jj, mass), {"lower_bound": lo0, "n_tests": n_tests, "graph_edges": int(len(H[0]))}


def _real_masses(ii, jj, fl, a, b, n, m):
    """Integer flows → masses with the exact marginals a, b (proportional fitting on the support)."""
    return fit_marginals(ii, jj, fl.astype(float) / SCALE, a, b, n, m)
