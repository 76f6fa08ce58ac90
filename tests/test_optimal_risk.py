"""The exact optimal adversarial risk: references (scipy matching / LP), closed forms, the graph."""

import itertools

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.optimize import linprog
from scipy.sparse.csgraph import maximum_bipartite_matching
from scipy.spatial.distance import cdist

from wflow.adversarial.optimal_risk import (
    ConflictGraph,
    conflict_graph,
    optimal_adversarial_risk,
    optimal_risk_from_graph,
    pairwise_risk_lower_bound,
)

METRIC = {"linf": "chebyshev", "l2": "euclidean", "l1": "cityblock"}


def lp_mass(D, r, w0, w1):
    """Max transportable mass along pairs with D ≤ r (scipy linprog, HiGHS)."""
    rr, cc = np.nonzero(D <= r)
    E = rr.size
    if E == 0:
        return 0.0
    n0, n1 = D.shape
    A = sp.vstack([sp.csr_matrix((np.ones(E), (rr, np.arange(E))), shape=(n0, E)),
                   sp.csr_matrix((np.ones(E), (cc, np.arange(E))), shape=(n1, E))])
    res = linprog(-np.ones(E), A_ub=A, b_ub=np.r_[w0, w1], method="highs")
    assert res.status == 0
    return -res.fun


def budgets_between(D):
    """Budgets whose radii 2ε fall strictly between distinct distances (no ties), plus 0 and all."""
    u = np.unique(D)
    mids = np.r_[0.0, (u[:-1] + u[1:]) / 2, 2 * u[-1]]
    return np.quantile(mids, [0, 0.1, 0.25, 0.5, 0.75, 1.0]) / 2


@pytest.mark.parametrize("norm", ["linf", "l2", "l1"])
def test_uniform_equal_sizes_is_half_matching_over_n(norm):
    rng = np.random.default_rng(1)
    for _ in range(6):
        n, d = int(rng.integers(2, 25)), int(rng.integers(1, 5))
        X0, X1 = rng.normal(size=(n, d)), rng.normal(size=(n, d)) + 0.7
        D = cdist(X0, X1, METRIC[norm])
        eps = budgets_between(D)
        risk = optimal_adversarial_risk(X0, X1, eps, norm)
        for e, r in zip(eps, risk):
            G = sp.csr_matrix((D <= 2 * e).astype(np.int8))
            M = np.count_nonzero(maximum_bipartite_matching(G, perm_type="column") >= 0)
            assert r == 0.5 * M / n  # both are k/(2n) computed the same way: exact equality


@pytest.mark.parametrize("norm", ["linf", "l2", "l1"])
def test_weighted_and_unequal_sizes_match_linprog(norm):
    rng = np.random.default_rng(2)
    for _ in range(2):
        n0, n1, d = int(rng.integers(1, 15)), int(rng.integers(1, 15)), int(rng.integers(1, 4))
        X0, X1 = rng.normal(size=(n0, d)), rng.normal(size=(n1, d)) + 0.5
        D = cdist(X0, X1, METRIC[norm])
        eps = budgets_between(D)
        w0 = rng.random(n0) + 0.1
        w0 /= w0.sum()
        w1 = rng.random(n1) + 0.1
        w1 /= w1.sum()
        cases = [(None, None, np.full(n0, 1 / n0), np.full(n1, 1 / n1)), (w0, w1, w0, w1),
                 (np.full(n0, 1 / n0), None, np.full(n0, 1 / n0), np.full(n1, 1 / n1))]
        for a, b, ra, rb in cases:
            risk = optimal_adversarial_risk(X0, X1, eps, norm, a, b)
            ref = [0.5 * lp_mass(D, 2 * e, ra, rb) for e in eps]
            # HiGHS solves to a primal/dual feasibility tolerance of 1e-7 on unit-scale data
            np.testing.assert_allclose(risk, ref, rtol=0, atol=1e-7)


def test_dyadic_weights_give_exact_integer_flow_and_float_weights_use_the_lp():
    X0 = np.array([[0.0], [1.0], [2.0]])
    X1 = np.array([[0.0], [1.0]])
    res = optimal_adversarial_risk(X0, X1, [0.0, 0.5], "linf", [0.5, 0.25, 0.25], [0.75, 0.25], return_attack=True)
    assert res.exact
    # ε = 0: coincident atoms 0↔0 (min(.5,.75)) and 1↔1 (min(.25,.25)): F = 0.75
    # ε = 0.5 (radius 1): the chain 0-0, 1-0, 1-1, 2-1 carries everything of the lighter side… F = 1
    np.testing.assert_array_equal(res.transported, [0.75, 1.0])
    w = np.array([1 / 3, 1 / 3, 1 / 3]) + np.array([1e-9, -2e-9, 1e-9])
    res2 = optimal_adversarial_risk(X0, X1, [0.0, 0.5], "linf", w, None, return_attack=True)
    assert not res2.exact
    np.testing.assert_allclose(res2.transported, [lp_mass(np.abs(X0 - X1.T), r, w, [0.5, 0.5]) for r in (0, 1)],
                               atol=1e-7)


@pytest.mark.parametrize("norm", ["linf", "l2", "l1"])
def test_translates_closed_ball(norm):
    # points on a coarse grid (spacing 10) and their translates by v: conflicts only i ↔ i
    g = np.arange(4) * 10.0
    X0 = np.array(list(itertools.product(g, g)))
    v = np.array([0.5, 0.25])
    X1 = X0 + v
    dist = {"linf": 0.5, "l1": 0.75, "l2": float(np.linalg.norm(v))}[norm]
    eps = np.array([0.0, dist / 2 * (1 - 1e-12), dist / 2, 3.0])
    np.testing.assert_array_equal(optimal_adversarial_risk(X0, X1, eps, norm), [0, 0, 0.5, 0.5])
    # a scalar budget returns a float; shapes are kept
    assert isinstance(optimal_adversarial_risk(X0, X1, 1.0, norm), float)
    assert optimal_adversarial_risk(X0, X1, eps.reshape(2, 2), norm).shape == (2, 2)


def test_separated_clusters_and_shared_points():
    rng = np.random.default_rng(3)
    n = 40
    X0 = rng.uniform(-0.1, 0.1, (n, 3))
    X1 = rng.uniform(-0.1, 0.1, (n, 3)) + np.array([5.0, 0, 0])
    # k class-1 points sit exactly on class-0 points: R*(0) = k/(2n)
    k = 7
    X1[:k] = X0[:k]
    gap_min = cdist(X0, X1[k:], "chebyshev").min()
    eps = np.array([0.0, 0.4 * gap_min, 2.6])
    r = optimal_adversarial_risk(X0, X1, eps, "linf")
    assert r[0] == k / (2 * n) and r[1] == k / (2 * n)
    assert r[2] == 0.5  # radius 5.2 ≥ 5 + 0.2: every pair conflicts


def test_sweep_equals_single_budgets_and_is_monotone():
    rng = np.random.default_rng(4)
    X0, X1 = rng.normal(size=(30, 5)), rng.normal(size=(25, 5)) + 0.3
    eps = np.array([0.9, 0.1, 0.5, 0.3, 0.0, 0.7])  # unsorted on purpose
    for norm in ("linf", "l2"):
        sweep = optimal_adversarial_risk(X0, X1, eps, norm)
        single = [optimal_adversarial_risk(X0, X1, float(e), norm) for e in eps]
        np.testing.assert_array_equal(sweep, single)
        srt = sweep[np.argsort(eps)]
        assert np.all(np.diff(srt) >= 0) and srt[-1] <= 0.5


@pytest.mark.parametrize("weighted", [False, True])
def test_optimal_attack_realises_the_risk(weighted):
    rng = np.random.default_rng(5)
    n = 20
    X0, X1 = rng.normal(size=(n, 2)), rng.normal(size=(n, 2)) + 0.5
    w0 = w1 = None
    if weighted:
        w0 = np.r_[np.full(10, 0.0625), np.full(10, 0.0375)]
        w1 = np.full(n, 0.05)
    res = optimal_adversarial_risk(X0, X1, [0.2, 0.6], "l2", w0, w1, return_attack=True)
    assert res.exact
    for e, F, atk in zip(res.eps, res.transported, res.attacks):
        np.testing.assert_allclose(atk.mass.sum(), F, rtol=1e-12)
        assert np.all(np.linalg.norm(X0[atk.rows] - X1[atk.cols], axis=1) <= 2 * e)
        assert np.all(np.linalg.norm(atk.delta0, axis=1) <= e * (1 + 1e-12))
        np.testing.assert_allclose(X0[atk.rows] + atk.delta0, X1[atk.cols] + atk.delta1, atol=1e-14)
        # masses respect the marginals
        m0 = np.bincount(atk.rows, atk.mass, minlength=n)
        m1 = np.bincount(atk.cols, atk.mass, minlength=n)
        assert np.all(m0 <= (np.full(n, 1 / n) if w0 is None else w0) + 1e-15)
        assert np.all(m1 <= (np.full(n, 1 / n) if w1 is None else w1) + 1e-15)
    assert res.to_dict()["risk"] == res.risk.tolist()


@pytest.mark.parametrize("norm", ["linf", "l2", "l1", 3])
def test_conflict_graph_blocks_match_brute_force(norm):
    rng = np.random.default_rng(6)
    X0, X1 = rng.normal(size=(37, 6)), rng.normal(size=(23, 6))
    metric = {"linf": ("chebyshev", {}), "l2": ("euclidean", {}), "l1": ("cityblock", {}),
              3: ("minkowski", {"p": 3})}[norm]
    D = cdist(X0, X1, metric[0], **metric[1])
    r = float(np.median(D))
    g = conflict_graph(X0, X1, r, norm, block_size=8)
    assert isinstance(g, ConflictGraph) and g.shape == (37, 23)
    got = set(zip(g.rows.tolist(), g.cols.tolist()))
    assert got == set(zip(*map(list, np.nonzero(D <= r))))
    np.testing.assert_allclose(g.dists, D[g.rows, g.cols], rtol=1e-6)
    # a graph computed once serves every smaller budget
    eps = np.array([0.1, 0.3]) * r
    np.testing.assert_array_equal(optimal_risk_from_graph(conflict_graph(X0, X1, r, norm, exact_at=2 * eps), eps).risk,
                                  optimal_adversarial_risk(X0, X1, eps, norm))


def test_l2_graph_is_exact_at_ties():
    # integer 3-4-5 and 5-12-13 triangles: distances exactly 5 and 13 on a far-off center
    base = np.array([1e3, -2e3])
    X0 = np.array([[0.0, 0.0], [10.0, 10.0]]) + base
    X1 = np.array([[3.0, 4.0], [15.0, 22.0]]) + base
    g = conflict_graph(X0, X1, 13.0, "l2", exact_at=[5.0])
    d = dict(zip(zip(g.rows.tolist(), g.cols.tolist()), g.dists.tolist()))
    assert d[(0, 0)] == 5.0 and d[(1, 1)] == 13.0
    assert optimal_adversarial_risk(X0, X1, 2.5, "l2") == 0.25
    assert optimal_adversarial_risk(X0, X1, 6.5, "l2") == 0.5


def test_bad_input():
    X = np.zeros((3, 2))
    with pytest.raises(ValueError, match="eps"):
        optimal_adversarial_risk(X, X, -1.0)
    with pytest.raises(ValueError, match="X1"):
        optimal_adversarial_risk(X, np.zeros((3, 3)), 0.1)
    with pytest.raises(ValueError, match="weights"):
        optimal_adversarial_risk(X, X, 0.1, weights0=[0.5, 0.5])
    with pytest.raises(ValueError, match="norm"):
        optimal_adversarial_risk(X, X, 0.1, norm="l0")
    g = conflict_graph(X, X, 0.1)
    with pytest.raises(ValueError, match="radius"):
        optimal_risk_from_graph(g, 0.2)
    with pytest.raises(TypeError, match="graph"):
        optimal_risk_from_graph({"rows": []}, 0.0)


def test_multiclass_pairwise_bound():
    rng = np.random.default_rng(7)
    # two classes: the bound is the binary risk (P = ½μ₀ + ½μ₁ when the classes are equal)
    X0, X1 = rng.normal(size=(12, 2)), rng.normal(size=(12, 2)) + 0.5
    X, y = np.r_[X0, X1], np.r_[np.zeros(12, int), np.ones(12, int)]
    eps = np.array([0.0, 0.3, 1.0])
    b = pairwise_risk_lower_bound(X, y, eps, "linf")
    np.testing.assert_allclose(b.bound, optimal_adversarial_risk(X0, X1, eps, "linf"), rtol=0, atol=1e-15)
    # four classes: the bound is the best class matching of the pairwise masses (brute force)
    Xs = [rng.normal(size=(8, 2)) + s for s in ([0, 0], [1, 0], [0, 1], [1, 1])]
    X, y = np.concatenate(Xs), np.repeat(np.arange(4), 8)
    b = pairwise_risk_lower_bound(X, y, eps, "l2")
    for t, e in enumerate(eps):
        F = np.zeros((4, 4))
        for a, c in itertools.combinations(range(4), 2):
            # masses of P: 1/32 per point; equal class sizes → F_ab = 2 R*_ab · (8/32)
            F[a, c] = F[c, a] = 2 * optimal_adversarial_risk(Xs[a], Xs[c], e, "l2") * 0.25
        best = max(F[0, 1] + F[2, 3], F[0, 2] + F[1, 3], F[0, 3] + F[1, 2], F.max())
        assert abs(b.bound[t] - best) <= 1e-15
        np.testing.assert_allclose(b.pair_mass[t], F, atol=1e-15)
    assert b.to_dict()["bound"] == b.bound.tolist()


def test_no_linear_classifier_beats_the_optimal_risk():
    # exact adversarial error of a linear rule sign(w·x + b) under ‖δ‖∞ ≤ ε: a point is lost iff its
    # signed margin y(w·x + b) ≤ ε‖w‖₁ (the dual norm); R*(ε) must be ≤ it for every (w, b) —
    # and a wrong R* (computed at twice the radius) violates it
    rng = np.random.default_rng(8)
    X0 = rng.normal(size=(40, 2))
    X1 = rng.normal(size=(40, 2)) + [1.5, 0.5]
    X = np.r_[X0, X1]
    s = np.r_[-np.ones(40), np.ones(40)]
    eps = np.array([0.0, 0.2, 0.5, 1.0])
    R = optimal_adversarial_risk(X0, X1, eps, "linf")
    best = np.ones(eps.size)
    for _ in range(3000):
        w = rng.normal(size=2)
        b = rng.normal() * 2
        margin = s * (X @ w + b)
        err = np.array([np.mean(margin <= e * np.abs(w).sum()) for e in eps])
        assert np.all(R <= err + 1e-12)
        best = np.minimum(best, err)
    # mutant: a bound computed at twice the radius (F(4ε)) is beaten by some linear rule
    mutant = optimal_adversarial_risk(X0, X1, 2 * eps, "linf")
    assert np.any(best < mutant - 0.05)


def test_rational_weights_use_the_reused_integer_flow_and_match_linprog():
    # weights c_i / C with small integers: the exact integer max-flow, augmented budget after
    # budget in the residual network, must equal a fresh LP at every budget
    rng = np.random.default_rng(9)
    for _ in range(3):
        n0, n1 = int(rng.integers(3, 14)), int(rng.integers(3, 14))
        X0, X1 = rng.normal(size=(n0, 2)), rng.normal(size=(n1, 2)) + 0.4
        c0, c1 = rng.integers(1, 9, n0), rng.integers(1, 9, n1)
        w0, w1 = c0 / c0.sum(), c1 / c1.sum()
        D = cdist(X0, X1, "chebyshev")
        eps = budgets_between(D)
        res = optimal_adversarial_risk(X0, X1, eps, "linf", w0, w1, return_attack=True)
        assert res.exact
        ref = [0.5 * lp_mass(D, 2 * e, w0, w1) for e in eps]
        np.testing.assert_allclose(res.risk, ref, rtol=0, atol=1e-7)
        for a, F in zip(res.attacks, res.transported):
            np.testing.assert_allclose(a.mass.sum(), F, rtol=1e-12)
            assert np.all(np.bincount(a.rows, a.mass, minlength=n0) <= w0 + 1e-15)
