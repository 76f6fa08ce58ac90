"""Exact W∞, checked W_p and W∞-optimal couplings against independent references.

References: brute force over all permutations (n ≤ 7, uniform), LP feasibility with
scipy's HiGHS for weighted instances (weights are small-integer fractions, so every
infeasible threshold misses mass ≥ 1/60 ≫ HiGHS's 1e-7 feasibility tolerance), and
linear_sum_assignment on 0/1 costs (exact maximum matching size) for mid-size bottleneck
instances. Values returned by winf are pairwise distances, so equality is exact (tolerance 0)
wherever the reference picks the same float; otherwise 1e-12.
"""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import ot
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.optimize import linear_sum_assignment, linprog
from scipy.spatial.distance import cdist

import wflow.transport as T
import wflow.transport.geometry as G
from wflow.measures import ParticleMeasure
from wflow.norms import norm as norm_of
from wflow.transport import (
    Coupling,
    cost_matrix,
    labelled_upper_bound,
    optimal_coupling,
    solve_wasserstein,
    solve_winf,
    wasserstein,
    winf,
)

NORMS = ["linf", "l2", "l1", 3.0]
FAST = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# ------------------------------------------------------------------------------------------
# references
# ------------------------------------------------------------------------------------------
def brute_winf(X, Y, norm):
    C = cost_matrix(X, Y, norm)
    n = len(X)
    return min(C[np.arange(n), list(p)].max() for p in itertools.permutations(range(n)))


def lp_feasible(a, b, allowed):
    """Is there γ ≥ 0 with marginals a, b supported on `allowed` (HiGHS)?"""
    n, m = allowed.shape
    idx = np.argwhere(allowed)
    k = len(idx)
    A = np.zeros((n + m, k))
    A[idx[:, 0], np.arange(k)] = 1
    A[n + idx[:, 1], np.arange(k)] = 1
    res = linprog(np.zeros(k), A_eq=A, b_eq=np.concatenate([a, b]), bounds=(0, None), method="highs")
    return res.status == 0


def lp_winf(X, a, Y, b, norm):
    C = cost_matrix(X, Y, norm)
    keep_a, keep_b = a > 0, b > 0
    C, a, b = C[np.ix_(keep_a, keep_b)], a[keep_a], b[keep_b]
    for t in np.unique(C):
        if lp_feasible(a, b, C <= t):
            return t
    raise AssertionError("no feasible threshold")


def lp_min_cost(a, b, cost, allowed=None):
    n, m = cost.shape
    allowed = np.ones_like(cost, dtype=bool) if allowed is None else allowed
    idx = np.argwhere(allowed)
    k = len(idx)
    A = np.zeros((n + m, k))
    A[idx[:, 0], np.arange(k)] = 1
    A[n + idx[:, 1], np.arange(k)] = 1
    res = linprog(cost[allowed], A_eq=A, b_eq=np.concatenate([a, b]), bounds=(0, None), method="highs")
    assert res.status == 0
    return res.fun


def lsa_winf(X, Y, norm):
    """Bottleneck by scanning sorted distances, max matching via LSA on 0/1 costs (exact)."""
    C = cost_matrix(X, Y, norm)
    cand = np.unique(C)
    lo, hi = 0, len(cand) - 1
    while lo < hi:
        mid = (lo + hi) // 2
        F = (C > cand[mid]).astype(float)
        r, c = linear_sum_assignment(F)
        if F[r, c].sum() == 0:
            hi = mid
        else:
            lo = mid + 1
    return cand[lo]


def check_coupling(c: Coupling, mu, nu, norm):
    mu, nu = T.as_measure(mu), T.as_measure(nu)
    assert c.shape == (mu.n, nu.n)
    assert np.all(c.mass > 0)
    r, s = c.marginals()
    np.testing.assert_allclose(r, mu.weights, rtol=0, atol=1e-12)
    np.testing.assert_allclose(s, nu.weights, rtol=0, atol=1e-12)
    d = T._pair_dist(mu.points, nu.points, c.rows, c.cols, T.parse_norm(norm))
    assert d.max() == c.value
    dense = c.to_dense()
    np.testing.assert_allclose(dense.sum(1), mu.weights, atol=1e-12)


# ------------------------------------------------------------------------------------------
# strategies
# ------------------------------------------------------------------------------------------
def grid_cloud(n, d, k=3):
    """Points on a small integer grid: ties, duplicates and degenerate clouds are frequent."""
    return st.lists(st.lists(st.integers(0, k), min_size=d, max_size=d), min_size=n, max_size=n).map(
        lambda v: np.array(v, dtype=float)
    )


@st.composite
def uniform_pair(draw, max_n=7):
    n = draw(st.integers(1, max_n))
    d = draw(st.integers(1, 3))
    if draw(st.booleans()):
        X, Y = draw(grid_cloud(n, d)), draw(grid_cloud(n, d))
    else:
        f = st.floats(-2, 2, allow_nan=False, width=32)
        X = np.array(draw(st.lists(st.lists(f, min_size=d, max_size=d), min_size=n, max_size=n)))
        Y = np.array(draw(st.lists(st.lists(f, min_size=d, max_size=d), min_size=n, max_size=n)))
    if draw(st.integers(0, 9)) == 0:
        X = np.repeat(X[:1], n, axis=0)  # all points equal
    return X, Y


@st.composite
def weighted_pair(draw, max_n=5):
    n = draw(st.integers(1, max_n))
    m = draw(st.integers(1, max_n))
    d = draw(st.integers(1, 2))
    X, Y = draw(grid_cloud(n, d)), draw(grid_cloud(m, d))
    wa = np.array(draw(st.lists(st.integers(0, 5), min_size=n, max_size=n)), float)
    wb = np.array(draw(st.lists(st.integers(0, 5), min_size=m, max_size=m)), float)
    if wa.sum() == 0:
        wa[0] = 1
    if wb.sum() == 0:
        wb[-1] = 1
    return X, wa / wa.sum(), Y, wb / wb.sum()


# ------------------------------------------------------------------------------------------
# exactness
# ------------------------------------------------------------------------------------------
@FAST
@given(uniform_pair(), st.sampled_from(NORMS))
def test_winf_equals_brute_force(pair, norm):
    X, Y = pair
    _r = solve_winf(X, Y, norm)
    v, c = _r.value, _r.coupling
    assert v == brute_winf(X, Y, norm)
    assert v in cost_matrix(X, Y, norm)
    check_coupling(c, X, Y, norm)


@settings(max_examples=80, deadline=None)
@given(weighted_pair(), st.sampled_from(NORMS))
def test_winf_weighted_equals_lp(pair, norm):
    X, a, Y, b = pair
    mu, nu = ParticleMeasure(X, a), ParticleMeasure(Y, b)
    _r = solve_winf(mu, nu, norm)
    v, c = _r.value, _r.coupling
    assert abs(v - lp_winf(X, a, Y, b, norm)) <= 1e-12
    check_coupling(c, mu, nu, norm)
    assert np.all(a[c.rows] > 0) and np.all(b[c.cols] > 0)  # zero-weight atoms get no mass


@settings(max_examples=25, deadline=None)
@given(st.integers(20, 70), st.integers(1, 4), st.sampled_from(NORMS), st.integers(0, 2**31))
def test_bottleneck_mid_size_against_lsa(n, d, norm, seed):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    Y = rng.standard_normal((n, d)) ** 3 + 0.2
    if seed % 3 == 0:
        X, Y = np.round(X), np.round(Y)  # many ties
    assert winf(X, Y, norm) == lsa_winf(X, Y, norm)


@settings(max_examples=15, deadline=None)
@given(st.integers(40, 200), st.sampled_from(["linf", "l2", "l1"]), st.integers(0, 2**31))
def test_dense_and_kdtree_graphs_agree_with_lsa(n, norm, seed):
    rng = np.random.default_rng(seed)
    X = rng.random((n, 2))
    Y = (X**3)[rng.permutation(n)] @ np.array([[0.6, -0.8], [0.8, 0.6]])
    if seed % 2:
        X, Y = np.round(8 * X) / 8, np.round(8 * Y) / 8  # ties and duplicates
    ref = lsa_winf(X, Y, norm)
    modes = {}
    for mode in ("dense", "blocks", "kdtree"):
        saved = G.GRAPH_MODE
        try:
            G.GRAPH_MODE = mode
            modes[mode] = winf(X, Y, norm)
        finally:
            G.GRAPH_MODE = saved
    assert winf(X, Y, norm) == modes["dense"] == modes["blocks"] == modes["kdtree"] == ref


@pytest.mark.parametrize("mode", ["kdtree", "dense", "blocks"])
def test_bottleneck_all_graph_modes(monkeypatch, mode):
    monkeypatch.setattr(G, "GRAPH_MODE", mode)
    rng = np.random.default_rng(3)
    X = rng.random((150, 2))
    Y = (X**3)[rng.permutation(150)] @ np.array([[0.8, -0.6], [0.6, 0.8]])
    for norm in ["linf", "l2"]:
        _r = solve_winf(X, Y, norm)
        v, c = _r.value, _r.coupling
        assert v == lsa_winf(X, Y, norm)
        check_coupling(c, X, Y, norm)


def test_uniform_different_sizes_exact():
    # 3 atoms of mass 1/3 vs the same 3 locations each repeated 3 times (mass 1/9): W∞ = 0
    # even though 3·fl(1/9) ≠ fl(1/3) may hold in floating point
    X = np.array([[0.0], [1.0], [2.0]])
    Y = np.repeat(X, 3, axis=0)
    assert winf(X, Y) == 0.0
    X2, Y2 = np.hstack([X, X]), np.hstack([Y, Y])  # 2-D: general-weights path
    assert winf(X2, Y2) == 0.0
    # uniform on 5 vs uniform on 3 points (quantiles 1/5, 2/5, … vs 1/3, 2/3): LP reference
    A = np.array([[0.0], [1], [2], [3], [4]])
    B = np.array([[0.5], [2.0], [3.5]])
    assert winf(A, B) == lp_winf(A, np.full(5, 0.2), B, np.full(3, 1 / 3), "linf")


def test_zero_weight_atoms_are_ignored():
    X = np.array([[0.0, 0.0], [1.0, 0.0], [100.0, 100.0]])
    Y = np.array([[0.0, 0.5], [1.0, 0.5]])
    mu = ParticleMeasure(X, [0.5, 0.5, 0.0])
    _r = solve_winf(mu, Y)
    v, c = _r.value, _r.coupling
    assert v == 0.5
    assert c.shape == (3, 2) and 2 not in c.rows
    assert winf(mu, Y, "l2") == wasserstein(mu, Y, p=1, norm="l2")


# ------------------------------------------------------------------------------------------
# metric properties
# ------------------------------------------------------------------------------------------
@settings(max_examples=60, deadline=None)
@given(st.integers(1, 12), st.integers(1, 3), st.sampled_from(NORMS), st.integers(0, 2**31))
def test_metric_properties(n, d, norm, seed):
    rng = np.random.default_rng(seed)
    X, Y, Z = (rng.standard_normal((n, d)) for _ in range(3))
    xy, yx = winf(X, Y, norm), winf(Y, X, norm)
    assert xy == yx
    assert winf(X, X, norm) == 0.0
    assert winf(X, Z, norm) <= xy + winf(Y, Z, norm) + 1e-12
    # W_1 ≤ W_2 ≤ W_4 ≤ W∞ (the Wp come from a float LP: tolerance 1e-9 relative)
    w = [wasserstein(X, Y, p, norm) for p in (1, 2, 4)]
    tol = 1e-9 * (1 + xy)
    assert w[0] <= w[1] + tol and w[1] <= w[2] + tol and w[2] <= xy + tol


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 30), st.integers(1, 3), st.sampled_from(NORMS), st.integers(0, 2**31))
def test_translation(n, d, norm, seed):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    c = rng.standard_normal(d)
    w = rng.random(n) + 0.1
    mu = ParticleMeasure(X, w / w.sum())
    nu = ParticleMeasure(X + c, mu.weights)
    expected = float(norm_of(c, norm))
    # the translate's distances are computed from rounded points: allow a few ulps
    assert abs(winf(mu, nu, norm) - expected) <= 4e-15 * (1 + np.abs(X).max())


# ------------------------------------------------------------------------------------------
# 1-D against the general solvers
# ------------------------------------------------------------------------------------------
@settings(max_examples=60, deadline=None)
@given(st.integers(1, 9), st.integers(1, 9), st.booleans(), st.integers(0, 2**31))
def test_one_d_equals_general(n, m, uniform, seed):
    rng = np.random.default_rng(seed)
    x = np.round(rng.standard_normal(n), 1)
    y = np.round(rng.standard_normal(m), 1)
    if uniform:
        m = n
        y = y[:1].repeat(n) if seed % 5 == 0 else np.round(rng.standard_normal(n), 1)
        a, b = np.full(n, 1 / n), np.full(n, 1 / n)
    else:
        a = rng.integers(1, 5, n).astype(float)
        b = rng.integers(1, 5, m).astype(float)
        a, b = a / a.sum(), b / b.sum()
    mu1, nu1 = ParticleMeasure(x[:, None], a), ParticleMeasure(y[:, None], b)
    # embedded in 2-D with a zero coordinate: every ℓq distance is |x − y|
    mu2 = ParticleMeasure(np.c_[x, np.zeros(n)], a)
    nu2 = ParticleMeasure(np.c_[y, np.zeros(m)], b)
    _r = solve_winf(mu1, nu1)
    v1, c1 = _r.value, _r.coupling
    assert v1 == winf(mu2, nu2)
    assert v1 == lp_winf(x[:, None], a, y[:, None], b, "linf")
    check_coupling(c1, mu1, nu1, "linf")


def test_one_d_large_closed_form():
    # uniform on {0, …, n−1} vs its shift by 0.25 and a stretched copy: closed forms
    n = 50_000
    x = np.arange(n, dtype=float)[:, None]
    rng = np.random.default_rng(0)
    assert winf(x[rng.permutation(n)], x + 0.25) == 0.25
    assert winf(x, 2 * x[::-1]) == float(n - 1)


# ------------------------------------------------------------------------------------------
# W_p
# ------------------------------------------------------------------------------------------
@settings(max_examples=40, deadline=None)
@given(weighted_pair(), st.sampled_from([1.0, 2.0, 3.5]), st.sampled_from(NORMS))
def test_wasserstein_against_lp(pair, p, norm):
    X, a, Y, b = pair
    mu, nu = ParticleMeasure(X, a), ParticleMeasure(Y, b)
    res = solve_wasserstein(mu, nu, p, norm)
    v, plan = res.value, res.coupling.to_dense()
    ref = lp_min_cost(a, b, cost_matrix(X, Y, norm) ** p) ** (1 / p)
    assert abs(v - ref) <= 1e-7 * (1 + ref)  # HiGHS optimality tolerance
    np.testing.assert_allclose(plan.sum(1), a, atol=1e-12)
    np.testing.assert_allclose(plan.sum(0), b, atol=1e-12)


def test_wasserstein_linf_cost_is_computed_correctly():
    # POT's minkowski p=inf is not the max norm; ours is
    X = np.array([[0.0, 0.0]])
    Y = np.array([[3.0, 4.0]])
    assert wasserstein(X, Y, 1, "linf") == 4.0
    assert wasserstein(X, Y, 2, "l2") == 5.0
    assert wasserstein(X, Y, 1, "l1") == 7.0


def test_wasserstein_large_p_is_finite_and_below_winf():
    rng = np.random.default_rng(1)
    X, Y = rng.random((20, 2)) * 1e3, rng.random((20, 2)) * 1e3
    w = winf(X, Y)
    for p in (8.0, 50.0):
        v = wasserstein(X, Y, p, "linf")
        assert np.isfinite(v) and v <= w * (1 + 1e-9)
        assert v >= wasserstein(X, Y, 2.0, "linf") * (1 - 1e-9)
    # at p = 400, (d_min/d_max)^p underflows: a clear refusal, never a silent W_p
    with pytest.raises(ValueError, match="winf"):
        wasserstein(X, Y, 400.0, "linf")
    # the example: p = 1e4 used to underflow to 0.0 and pass its own W_p ≤ W∞ check
    with pytest.raises(ValueError, match="too large"):
        wasserstein(X, Y, 1e4, "linf")
    assert wasserstein(X, Y, np.inf, "linf") == w


def test_pot_non_optimality_is_caught():
    rng = np.random.default_rng(0)
    X, Y = rng.random((60, 2)), rng.random((60, 2))
    a = np.full(60, 1 / 60)
    C = cost_matrix(X, Y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # preconditions: POT itself stops early at these limits
        assert ot.emd(a, a, C, numItermax=1, log=True)[1]["result_code"] == 3
        assert ot.emd(a, a, C, numItermax=100, log=True)[1]["result_code"] == 3
        assert ot.emd(a, a, C, numItermax=5, log=True)[1]["result_code"] == 3
    with pytest.raises(RuntimeError, match="optimality"):
        wasserstein(X, Y, 1, num_itermax=1)  # and 100 on the retry: still not optimal
    # a too-small limit that the retry (100×) fixes: same value as the default
    assert ot.emd(a, a, C**2, numItermax=500, log=True)[1]["result_code"] == 1
    assert wasserstein(X, Y, 2, num_itermax=5) == wasserstein(X, Y, 2)


# ------------------------------------------------------------------------------------------
# optimal couplings
# ------------------------------------------------------------------------------------------
@settings(max_examples=60, deadline=None)
@given(st.one_of(uniform_pair(6).map(lambda p: (p[0], None, p[1], None)), weighted_pair()),
       st.sampled_from(["linf", "l2"]))
def test_optimal_coupling_is_w2_optimal_among_winf_plans(pair, norm):
    X, a, Y, b = pair
    mu = ParticleMeasure(X, a)
    nu = ParticleMeasure(Y, b)
    c = optimal_coupling(mu, nu, norm)
    w = winf(mu, nu, norm)
    assert c.value == w
    check_coupling(c, mu, nu, norm)
    C = cost_matrix(mu, nu, norm)
    C2 = cost_matrix(mu, nu, "l2") ** 2
    ka, kb = mu.weights > 0, nu.weights > 0
    ref = lp_min_cost(mu.weights[ka], nu.weights[kb], C2[np.ix_(ka, kb)], C[np.ix_(ka, kb)] <= w)
    assert abs(np.sum(c.mass * C2[c.rows, c.cols]) - ref) <= 1e-7 * (1 + ref)
    assert optimal_coupling(mu, nu, norm, tie_break=None).value == w


def test_optimal_coupling_prefers_straight_pairs():
    # both pairings of two points have W∞ = 1 in ℓ∞; the W2 tie-break picks the identity
    X = np.array([[0.0, 0.0], [1.0, 0.0]])
    Y = np.array([[0.0, 1.0], [1.0, 1.0]])
    c = optimal_coupling(X, Y[::-1])
    assert c.value == 1.0
    assert sorted(zip(c.rows.tolist(), c.cols.tolist())) == [(0, 1), (1, 0)]


# ------------------------------------------------------------------------------------------
# bounds and helpers
# ------------------------------------------------------------------------------------------
@settings(max_examples=40, deadline=None)
@given(st.integers(1, 7), st.integers(1, 3), st.sampled_from(NORMS), st.integers(0, 2**31))
def test_labelled_upper_bound(n, d, norm, seed):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    Y = X + 0.1 * rng.standard_normal((n, d))
    ub = labelled_upper_bound(X, Y, norm)
    assert ub == cost_matrix(X, Y, norm).diagonal().max()
    assert winf(X, Y, norm) <= ub
    perm = rng.permutation(n)
    assert winf(X, Y[perm], norm) == winf(X, Y, norm)  # unlabelled: order does not matter


def test_cost_matrix_against_cdist():
    rng = np.random.default_rng(0)
    X, Y = rng.standard_normal((70, 3)), rng.standard_normal((40, 3))
    np.testing.assert_array_equal(cost_matrix(X, Y, "linf"), cdist(X, Y, "chebyshev"))
    np.testing.assert_array_equal(cost_matrix(X, Y, "l1"), cdist(X, Y, "cityblock"))
    np.testing.assert_allclose(cost_matrix(X, Y, "l2"), cdist(X, Y), rtol=1e-15)
    np.testing.assert_allclose(cost_matrix(X, Y, 3), cdist(X, Y, "minkowski", p=3), rtol=1e-14)
    ii, jj = rng.integers(0, 70, 50), rng.integers(0, 40, 50)
    for q in (np.inf, 1.0, 2.0, 3.0):  # pairs and matrices are bit-for-bit the same numbers
        np.testing.assert_array_equal(T._pair_dist(X, Y, ii, jj, q), T._cost(X, Y, q)[ii, jj])


def test_rank_matching_is_a_permutation():
    rng = np.random.default_rng(0)
    for n, d in [(1, 1), (7, 2), (100, 3), (257, 2)]:
        X, Y = rng.random((n, d)), rng.random((n, d))
        X[: n // 2] = X[0]  # duplicates
        assert np.array_equal(np.sort(T._rank_matching(X, Y)), np.arange(n))


# ------------------------------------------------------------------------------------------
# bad input
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "call, exc, match",
    [
        (lambda: winf(np.zeros((0, 2)), np.zeros((1, 2))), ValueError, "mu"),
        (lambda: winf(np.zeros((1, 2)), np.zeros((1, 3))), ValueError, "nu"),
        (lambda: winf(np.zeros((1, 2)), np.zeros((1, 2)), "l7x"), ValueError, "norm"),
        (lambda: winf(np.zeros((1, 2)), np.zeros((1, 2)), 0.5), ValueError, "norm"),
        (lambda: winf(np.zeros((1, 2)), [[np.nan, 0.0]]), ValueError, "nu"),
        (lambda: wasserstein(np.zeros((1, 2)), np.zeros((1, 2)), p=0.5), ValueError, "p"),
        (lambda: wasserstein(np.zeros((1, 2)), np.zeros((1, 2)), p="2"), TypeError, "p"),
        (lambda: wasserstein(np.zeros((1, 2)), np.zeros((1, 2)), num_itermax=0), ValueError, "num_itermax"),
        (lambda: optimal_coupling(np.zeros((1, 2)), np.zeros((1, 2)), tie_break="w1"), ValueError, "tie_break"),
        (lambda: labelled_upper_bound(np.zeros((2, 2)), np.zeros((3, 2))), ValueError, "Y"),
        (lambda: cost_matrix(np.zeros((2, 2)), np.zeros((3, 1))), ValueError, "Y"),
        (lambda: winf("abc", np.zeros((1, 2))), TypeError, "mu"),
    ],
)
def test_bad_input(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_bad_weights():
    with pytest.raises(ValueError, match="weights"):
        winf(ParticleMeasure([[0.0], [1.0]], [0.5, 0.5]), ParticleMeasure([[0.0], [1.0]], [1.5, -0.5]))
    with pytest.raises(ValueError, match="weights"):
        ParticleMeasure([[0.0], [1.0]], [np.nan, 1.0])
