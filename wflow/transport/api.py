"""Public entry points: winf / solve_winf, wasserstein / solve_wasserstein, optimal_coupling."""

from __future__ import annotations

import math
import warnings

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from .._validation import integer, real
from ..norms import Norm
from .geometry import DENSE_MAX, Geometry, _cost, _pair_dist, check_range
from .problem import MASS_TOL, Problem, original, pair, support, uniform
from .result import Coupling, TransportResult, fit_marginals, make_coupling
from .solvers import bottleneck, winf_1d
from .weighted import winf_weighted

__all__ = ["winf", "solve_winf", "wasserstein", "solve_wasserstein", "optimal_coupling"]


# ------------------------------------------------------------------------------------------
# W∞
# ------------------------------------------------------------------------------------------
def _solve_merged(P: Problem):
    """Solve W∞ on the merged supports. Returns (value, (rows, cols, mass), method, info, geom)."""
    X, a, Y, b, q = P.X, P.a, P.Y, P.b, P.q
    n, m = len(X), len(Y)
    if X.shape[1] == 1:
        # the value is the largest cost of the plan: measured once, on the verified coupling
        i, j, mass = winf_1d(X[:, 0], a, Y[:, 0], b)
        return None, (i, j, mass), "1d-quantiles", {"n_tests": 0}, None
    if n == 1 or m == 1:
        i = np.zeros(m, np.intp) if n == 1 else np.arange(n)
        j = np.arange(m) if n == 1 else np.zeros(n, np.intp)
        mass = b if n == 1 else a
        v = float(_pair_dist(X, Y, i, j, q).max())
        return v, (i, j, mass), "single-atom", {"n_tests": 0, "lower_bound": v}, None
    geom = Geometry(X, Y, q)
    if n == m and uniform(a) and uniform(b):
        value, perm, info = bottleneck(X, Y, q, geom=geom)
        return value, (np.arange(n), perm, a), "bottleneck", info, geom
    value, plan, info = winf_weighted(X, a, Y, b, q, geom=geom)
    return value, plan, "maxflow", info, geom


def _winf_result(mu, nu, norm, merge=True):
    P = Problem.build(mu, nu, norm, merge=merge)
    value, (r, c, mass), method, info, geom = _solve_merged(P)
    rows, cols, mass = P.split(r, c, mass)
    coupling = make_coupling(P.mu, P.nu, rows, cols, mass, P.q, check_value=value)
    if value is None:  # 1-D: W∞ is the plan's own largest cost, a certified lower bound too
        info["lower_bound"] = coupling.value
    res = TransportResult(
        value=coupling.value, coupling=coupling, p=np.inf, norm=Norm(P.q), method=method,
        lower_bound=float(info.get("lower_bound", np.nan)), threshold=coupling.value,
        n_tests=int(info.get("n_tests", 0)), n_merged=(len(P.X), len(P.Y)),
        info={k: v for k, v in info.items() if k not in ("lower_bound", "n_tests")},
    )
    return res, P, (r, c, mass), geom


def solve_winf(mu, nu, norm="linf", *, merge: bool = True) -> TransportResult:
    """Exact W∞(μ, ν) with its optimal coupling and certificate.

    Parameters
    ----------
    mu, nu : ParticleMeasure or array (n, d) / (m, d)
        Discrete probability measures (arrays: uniform weights). Zero-weight atoms are
        ignored (they are not in the support).
    norm : {"l1", "l2", "linf"}, float q ≥ 1 or Norm
        Ground norm ℓq (default ℓ∞, the geometry of IFGSM).
    merge : bool
        Merge coincident atoms before solving and split the plan back (default; a collapsing
        flow then costs as much as its number of distinct points).

    Returns
    -------
    TransportResult
        ``value`` is exactly one of the pairwise distances ‖x_i − y_j‖_q; ``coupling`` is
        verified (marginals within ``MARGINAL_TOL``, largest cost = value).

    Raises
    ------
    ValueError
        Bad measures or norm, or distances that overflow float64.

    Notes
    -----
    ``docs/transport.md``: 1-D sorted quantiles; uniform equal sizes: bottleneck assignment
    (max-flow threshold tests on sparse KD-tree / BLAS-block graphs with nearest-neighbour,
    projection and Hall lower bounds); general weights: integer max-flow on sparse threshold
    graphs (mass resolution 2^-58, defects ≤ ``MASS_TOL`` are round-off).
    """
    return _winf_result(mu, nu, norm, merge=merge)[0]


def winf(mu, nu, norm="linf") -> float:
    """Exact ∞-Wasserstein distance W∞(μ, ν) = min_γ max{‖x_i − y_j‖ : γ_ij > 0}, a float.

    See :func:`solve_winf` for the parameters, the coupling and the certificate. The optimal
    plan is verified before the value is returned.
    """
    return solve_winf(mu, nu, norm).value


# ------------------------------------------------------------------------------------------
# optimal couplings with a W2 tie-break
# ------------------------------------------------------------------------------------------
def optimal_coupling(mu, nu, norm="linf", *, tie_break: str | None = "w2", merge: bool = True) -> Coupling:
    """A W∞-optimal coupling, made unique-ish by a secondary criterion.

    Parameters
    ----------
    mu, nu : ParticleMeasure or arrays
    norm : norm specification of the ground norm for W∞
    tie_break : {"w2", None}
        ``"w2"``: among all plans supported on {‖x_i − y_j‖ ≤ W∞}, one minimizing
        Σ γ_ij ‖x_i − y_j‖₂² (regular curves when snapshots are glued). ``None``: the plan
        found by :func:`solve_winf`.
    merge : bool
        Merge coincident atoms first (the returned plan indexes the atoms as passed in).

    Returns
    -------
    Coupling
        ``value`` = W∞(μ, ν); marginals equal the weights to ``MARGINAL_TOL``.

    Notes
    -----
    The secondary problem is solved on each connected component of the threshold graph
    {‖x − y‖ ≤ W∞} separately (``docs/transport.md``): components with a single atom on one
    side are forced; others by ``linear_sum_assignment`` (uniform equal sizes, a permutation)
    or POT's network simplex with forbidden pairs priced out.
    """
    if tie_break not in ("w2", None):
        raise ValueError(f"tie_break must be 'w2' or None, got {tie_break!r}")
    res, P, (r, c, mass), geom = _winf_result(mu, nu, norm, merge=merge)
    if tie_break is None or P.X.shape[1] == 1 or len(P.X) == 1 or len(P.Y) == 1:
        return res.coupling
    value = res.value
    X, a, Y, b, q = P.X, P.a, P.Y, P.b, P.q
    geom = Geometry(X, Y, q) if geom is None else geom
    assignment = len(X) == len(Y) and uniform(a) and uniform(b)
    rr, cc, mm = _w2_tie_break(X, a, Y, b, geom, value, assignment, units=_atom_units(P))
    rows, cols, mass = P.split(rr, cc, mm)
    return make_coupling(P.mu, P.nu, rows, cols, mass, q, check_value=value)


def _atom_units(P: Problem):
    """Exact integer masses (Σ equal on both sides) when both measures are uniform, else None.

    Merged atoms of uniform measures carry counts k/N: with L = lcm(N_μ, N_ν) and
    u = ⌊2^46 / L⌋, the masses k (L/N) u are exact and balanced, so the integer min-cost
    flow sees exactly the merged problem (``docs/transport.md``, W2 tie-break).
    """
    if not (uniform(P.wx) and uniform(P.wy)):
        return None
    nx, ny = len(P.wx), len(P.wy)
    L = nx * ny // math.gcd(nx, ny)
    if L > 2**40:
        return None
    u = _MCF_FLOW // L
    cx = np.ones(nx, np.int64) if P.gx is None else np.bincount(P.gx, minlength=len(P.X)).astype(np.int64)
    cy = np.ones(ny, np.int64) if P.gy is None else np.bincount(P.gy, minlength=len(P.Y)).astype(np.int64)
    return cx * (L // nx) * u, cy * (L // ny) * u


def _w2_tie_break(X, a, Y, b, geom, value, assignment, units=None):
    """min Σ γ‖x − y‖₂² over plans on {d ≤ value}, solved per connected component."""
    n, m = len(X), len(Y)
    ii, jj, _ = geom.upto(value)
    w2 = _pair_dist(X, Y, ii, jj, 2.0)
    s = float(w2.max()) if len(w2) and w2.max() > 0 else 1.0
    c2 = (w2 / s) ** 2  # scaled: no overflow or underflow of squares at any magnitude
    G = sp.coo_array((np.ones(len(ii)), (ii, n + jj)), shape=(n + m, n + m))
    ncomp, lab = connected_components(G, directed=False)
    comp = lab[ii]
    nr = np.bincount(lab[:n], minlength=ncomp)
    nc = np.bincount(lab[n:], minlength=ncomp)
    one_row, one_col = nr[comp] == 1, nc[comp] == 1
    forced = one_row | one_col
    out_r = [ii[forced]]
    out_c = [jj[forced]]
    out_m = [np.where(one_row[forced], b[jj[forced]], a[ii[forced]])]
    big_ids = np.flatnonzero((nr > 1) & (nc > 1))
    if not assignment and len(big_ids) and _SPARSE_EMD:
        # all weighted components at once: POT's sparse network simplex (float-exact)
        sel = np.flatnonzero(~forced)
        got = _w2_sparse_emd(ii[sel], jj[sel], c2[sel], a, b)
        if got is not None:
            return tuple(np.concatenate([o, g]) for o, g in zip((out_r[0], out_c[0], out_m[0]), got))
    if not assignment and np.any(nr[big_ids] * nc[big_ids] > _EMD_MAX):
        # a large weighted component: one sparse integer min-cost flow instead of dense LPs
        return _w2_min_cost_flow(ii, jj, c2, a, b, n, m, units)
    if len(big_ids):
        sel = np.flatnonzero(~forced)
        order = sel[np.argsort(comp[sel], kind="stable")]
        cs = comp[order]
        bounds = np.searchsorted(cs, big_ids), np.searchsorted(cs, big_ids, side="right")
        for lo_, hi_ in zip(*bounds):
            e = order[lo_:hi_]
            R, ri = np.unique(ii[e], return_inverse=True)
            C, ci = np.unique(jj[e], return_inverse=True)
            r_, c_, m_ = _component(R, C, ri, ci, c2[e], a, b, assignment)
            out_r.append(r_)
            out_c.append(c_)
            out_m.append(m_)
    return np.concatenate(out_r), np.concatenate(out_c), np.concatenate(out_m)


#: weighted tie-breaks: one sparse network simplex over all components (False: the fallback
#: below, per component dense up to _EMD_MAX atom pairs, else one integer min-cost flow)
_SPARSE_EMD = True
#: weighted components up to this many atom pairs get POT's (dense, float-exact) network simplex
_EMD_MAX = 250_000


def _w2_sparse_emd(ii, jj, cost, a, b):
    """min Σ γ cost over plans on the edges (ii, jj) only: POT's network simplex on a sparse
    cost (no n×m matrix, no priced-out pairs, float-exact). None if POT does not reach
    optimality (the caller falls back to the per-component solvers)."""
    from ot.lp import emd_wrap

    if not hasattr(emd_wrap, "emd_c_sparse"):  # POT < 0.9.6 has no sparse network simplex
        return None
    R, ri = np.unique(ii, return_inverse=True)
    C, ci = np.unique(jj, return_inverse=True)
    aa, bb = a[R], b[C]
    M = sp.coo_array((cost, (ri, ci)), shape=(len(R), len(C)))
    try:
        G, _ = _emd(aa / aa.sum(), bb / bb.sum(), M, _default_itermax(len(R), len(C)))
    except (RuntimeError, ValueError, AssertionError):
        return None
    G = sp.coo_array(G)
    k = G.data > 0
    return R[G.row[k]], C[G.col[k]], G.data[k] * aa.sum()
#: flow and cost scales of the integer min-cost flow (Σ flow·cost ≤ 2^62)
_MCF_FLOW, _MCF_COST = 2**46, 2**16


def _balanced_masses(w: np.ndarray) -> np.ndarray:
    """⌊w 2^46 / Σw⌉ with Σ = 2^46 exactly (largest remainders), every positive weight ≥ 1 unit."""
    x = w / w.sum() * _MCF_FLOW
    v = np.maximum(np.floor(x).astype(np.int64), 1)
    d = int(_MCF_FLOW - v.sum())
    if d > 0:
        v[np.argsort(v - x, kind="stable")[:d]] += 1  # the largest remainders
    elif d < 0:
        o = np.argsort(-v, kind="stable")[: -d]  # at most n units off: take them from the largest
        v[o] -= 1
    return v


def _w2_min_cost_flow(ii, jj, c2, a, b, n, m, units=None):
    """min Σ γ c2 over plans on the sparse edges (ii, jj): OR-tools integer min-cost flow.

    Masses are scaled to integers at 2^46 with equal totals on both sides: exactly (merged
    uniform atoms, ``units``) or by largest remainders; costs c2 ∈ [0, 1] to integers at 2^16
    by a power of two (integer-valued costs stay exact). A balanced problem is solved by
    OR-tools' cost scaling directly (several times faster than its max-flow-then-min-cost
    mode, which is the fallback when rounding makes the balanced problem infeasible). The plan
    is optimal for the integer problem, within 2^-16 (relative to the largest squared
    distance) of the true secondary optimum; its support lies in {d ≤ W∞} by construction;
    masses are fitted back to the exact weights.
    """
    from ortools.graph.python import min_cost_flow

    cmax = float(c2.max()) if len(c2) else 0.0
    scale = _MCF_COST * 2.0 ** -np.frexp(cmax)[1] if cmax > 0 else 1.0
    cost = np.rint(c2 * scale).astype(np.int64)
    ai, bi = units if units is not None else (_balanced_masses(a), _balanced_masses(b))

    def solve(ai, bi, balanced):
        f = min_cost_flow.SimpleMinCostFlow()
        arcs = f.add_arcs_with_capacity_and_unit_cost(
            ii.astype(np.int64), (n + jj).astype(np.int64), np.full(len(ii), 2 * _MCF_FLOW, np.int64), cost)
        f.set_nodes_supplies(np.arange(n + m, dtype=np.int64), np.concatenate([ai, -bi]))
        return f, arcs, (f.solve() if balanced else f.solve_max_flow_with_min_cost())

    f, arcs, status = solve(ai, bi, True)
    if status != f.OPTIMAL:
        ai = np.maximum(np.rint(a / a.sum() * _MCF_FLOW).astype(np.int64), 1)
        bi = np.maximum(np.rint(b / b.sum() * _MCF_FLOW).astype(np.int64), 1)
        f, arcs, status = solve(ai, bi, False)
    if status != f.OPTIMAL:
        raise RuntimeError(f"OR-tools min-cost flow failed with status {status}")
    fl = f.flows(arcs)
    # flows of ≤ 2 units (≤ 3e-14 of mass) are rounding artefacts unless an atom needs them
    rmax = np.zeros(n, np.int64)
    cmax = np.zeros(m, np.int64)
    np.maximum.at(rmax, ii, fl)
    np.maximum.at(cmax, jj, fl)
    pos = (fl > 2) | ((fl > 0) & ((fl == rmax[ii]) | (fl == cmax[jj])))
    r, c = ii[pos], jj[pos]
    return r, c, fit_marginals(r, c, fl[pos].astype(float), a, b, n, m)


def _component(R, C, ri, ci, cost, a, b, assignment):
    k, l_ = len(R), len(C)
    if assignment:
        if k * l_ <= DENSE_MAX:
            from scipy.optimize import linear_sum_assignment

            big = (float(cost.max()) + 1.0) * (k + 1)  # more than any whole allowed assignment
            M = np.full((k, l_), big)
            M[ri, ci] = cost
            r, c = linear_sum_assignment(M)
        else:
            from scipy.sparse.csgraph import min_weight_full_bipartite_matching

            M = sp.csr_array((cost + 1.0, (ri, ci)), shape=(k, l_))  # +1: zero costs stay edges
            r, c = min_weight_full_bipartite_matching(M)
        return R[r], C[c], a[R[r]]
    # forbidden pairs priced out: a plan putting mass ε on them costs ≥ ε·big > max allowed
    # cost as soon as ε > MASS_TOL, so the optimum leaves at most MASS_TOL there (dropped)
    big = (float(cost.max()) + 1.0) / MASS_TOL
    M = np.full((k, l_), big)
    M[ri, ci] = cost
    aa, bb = a[R], b[C]
    Gm, _ = _emd(aa / aa.sum(), bb / bb.sum(), M, _default_itermax(k, l_))
    Gm[M == big] = 0.0
    r, c = np.nonzero(Gm)
    return R[r], C[c], Gm[r, c] * aa.sum()


# ------------------------------------------------------------------------------------------
# W_p
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


#: (d / d_max)^p must stay above this for every positive distance d, else W_p is refused
_POW_FLOOR = 2.0**-1000


def solve_wasserstein(mu, nu, p=2, norm="l2", *, num_itermax: int | None = None) -> TransportResult:
    """W_p(μ, ν) = (min_γ Σ γ_ij ‖x_i − y_j‖_q^p)^{1/p} with POT's exact network simplex.

    Parameters
    ----------
    mu, nu : ParticleMeasure or arrays (n, d), (m, d)
    p : float ≥ 1, or numpy.inf
        Order (``inf`` delegates to :func:`solve_winf`).
    norm : norm specification
        Ground norm ℓq; costs are computed here (POT's ``minkowski`` with p = ∞ is wrong).
    num_itermax : int, optional
        Network-simplex iteration limit (default max(10⁵, 50 n m)). If POT stops before
        optimality the solve is retried once with a 100× larger limit, then
        ``RuntimeError`` is raised: a non-optimal value is never returned.

    Returns
    -------
    TransportResult
        ``value`` is W_p itself (not W_p^p), ``coupling`` the optimal plan (sparse).

    Raises
    ------
    ValueError
        When p is so large that (d_min / d_max)^p underflows float64 for some pair of positive
        distances (the network simplex would see zero costs and return a wrong, too small
        value): use :func:`winf` for p → ∞. Also for overflowing distances and bad input.
    RuntimeError
        Non-optimality, or W_p > W∞ (checked for p > 2).
    """
    pv = real(p, "p", allow_inf=True)
    if pv < 1:
        raise ValueError(f"p must be >= 1, got {p!r}")
    if num_itermax is not None:
        num_itermax = integer(num_itermax, "num_itermax", low=1)
    mu, nu, q = pair(mu, nu, norm)
    if pv == np.inf:
        return solve_winf(mu, nu, q)
    ix, X, a = support(mu)
    iy, Y, b = support(nu)
    check_range(X, Y, q)
    D = _cost(X, Y, q)
    dmax = float(D.max())
    a, b = a / a.sum(), b / b.sum()
    if dmax == 0.0:
        G, value = np.outer(a, b), 0.0
    else:
        dpos = float(D[D > 0].min())
        with np.errstate(under="ignore"):
            ratio = (dpos / dmax) ** pv
        if not ratio >= _POW_FLOOR:
            raise ValueError(
                f"p = {pv:g} is too large for these distances: (d_min/d_max)^p = "
                f"({dpos:.3g}/{dmax:.3g})^{pv:g} underflows float64, so W_p cannot be computed "
                "reliably; use winf (p = ∞) or a smaller p"
            )
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
            if not err <= 1e-11:
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
    r, c = np.nonzero(G)
    coupling = make_coupling(mu, nu, original(ix, r), original(iy, c), G[r, c], q)
    return TransportResult(value=float(value), coupling=coupling, p=pv, norm=Norm(q),
                           method="network-simplex", n_merged=(len(X), len(Y)))


def wasserstein(mu, nu, p=2, norm="l2", *, num_itermax: int | None = None) -> float:
    """W_p(μ, ν) itself (not W_p^p) as a float; see :func:`solve_wasserstein`."""
    return solve_wasserstein(mu, nu, p, norm, num_itermax=num_itermax).value
