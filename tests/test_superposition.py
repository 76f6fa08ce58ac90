"""Measure flows, CurveMeasure, superpose and superpose_snapshots (wflow.superposition)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import wflow
from wflow.measures import ParticleMeasure
from wflow.potentials import Linear, Quadratic
from wflow.superposition import CurveMeasure, superpose, superpose_snapshots
from wflow.verify import verify_characterization


def aggregate(points, weights):
    """Exact comparison form of a discrete measure: unique points and their summed weights."""
    U, inv = np.unique(np.asarray(points, float), axis=0, return_inverse=True)
    w = np.bincount(inv.reshape(-1), weights=weights, minlength=len(U))
    keep = w > 0
    return U[keep], w[keep]


def assert_same_measure(mu, nu, wtol=1e-15):
    """Same atoms (bitwise) and weights within wtol (a few ulps of summed weights)."""
    U1, w1 = aggregate(mu.points, mu.weights)
    U2, w2 = aggregate(nu.points, nu.weights)
    assert U1.shape == U2.shape and np.array_equal(U1, U2)
    np.testing.assert_allclose(w1, w2, rtol=0, atol=wtol)


def exact_quadratic_curves(x0, t):
    """ℓ∞ flow of V = ½ Σ a_i x_i² (any a_i > 0): u_i(t) = sign(x_i) max(|x_i| − t, 0); (n, K+1, d)."""
    return np.sign(x0)[:, None, :] * np.maximum(np.abs(x0)[:, None, :] - t[None, :, None], 0.0)


# ---------------------------------------------------------------------------------------------
# item 1: measure flows
# ---------------------------------------------------------------------------------------------


def test_measure_flow_carries_weights_and_matches_closed_form_energy_and_slope():
    rng = np.random.default_rng(0)
    a = np.array([1.0, 2.0, 0.5])
    V = Quadratic.separable_from(a)
    x0 = rng.uniform(0.4, 1.0, (12, 3)) * rng.choice([-1.0, 1.0], (12, 3))
    w = rng.dirichlet(np.ones(12))
    T, tau = 0.3, 0.01  # T < min |x0_i|: no coordinate reaches 0, Euler is exact at grid times
    res = wflow.solve_flow(V, ParticleMeasure(x0, w), T=T, tau=tau)
    np.testing.assert_array_equal(res.weights, w)
    mu = res.measure(0.15)
    np.testing.assert_array_equal(mu.weights, w)
    np.testing.assert_allclose(mu.points, x0 - 0.15 * np.sign(x0), rtol=0, atol=1e-13)
    r = np.abs(x0)[None] - res.times[:, None, None]  # |u_i(t)|, (K+1, n, d)
    E = (0.5 * (a * r**2).sum(-1)) @ w  # 𝓔(μ_t) = Σ_j w_j ½ Σ_i a_i u_ji²
    S = (a * r).sum(-1) @ w  # |∂𝓔|(μ_t) = Σ_j w_j ‖a ∘ u_j‖_1 (ℓ1 = dual of ℓ∞)
    np.testing.assert_allclose(res.energy_curve(), E, rtol=0, atol=1e-12)
    np.testing.assert_allclose(res.slope_curve(), S, rtol=0, atol=1e-12)
    # slope in ℓ2 geometry: the dual norm is ℓ2
    res2 = wflow.solve_flow(V, ParticleMeasure(x0, w), T=T, tau=tau, norm="l2")
    G = res2.positions * a
    np.testing.assert_allclose(res2.slope_curve(), np.linalg.norm(G, axis=-1) @ w, rtol=1e-13)
    # the W∞ slope of the measure at t is ParticleMeasure.slope
    assert res.slope_curve()[5] == pytest.approx(res.measure(res.times[5]).slope(V, "linf"), abs=1e-13)


# ---------------------------------------------------------------------------------------------
# CurveMeasure
# ---------------------------------------------------------------------------------------------


def small_eta():
    t = np.array([0.0, 0.5, 1.5])
    U = np.array([[[0.0, 0.0], [0.5, 0.0], [0.5, 1.0]], [[1.0, 1.0], [1.0, 0.0], [2.0, 0.0]]])
    return CurveMeasure(U, [0.25, 0.75], t, "linf")


def test_curve_measure_validation():
    U, w, t = np.zeros((2, 3, 2)), np.array([0.5, 0.5]), np.array([0.0, 1.0, 2.0])
    with pytest.raises(ValueError, match="curves"):
        CurveMeasure(np.zeros((2, 3)), w, t)
    with pytest.raises(ValueError, match="curves"):
        CurveMeasure(np.full((2, 3, 2), np.nan), w, t)
    with pytest.raises(ValueError, match="weights"):
        CurveMeasure(U, [0.5, 0.6], t)
    with pytest.raises(ValueError, match="weights"):
        CurveMeasure(U, [1.5, -0.5], t)
    with pytest.raises(ValueError, match="weights"):
        CurveMeasure(U, [1.0], t)
    with pytest.raises(ValueError, match="times"):
        CurveMeasure(U, w, [0.0, 1.0])
    with pytest.raises(ValueError, match="times"):
        CurveMeasure(U, w, [0.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="norm"):
        CurveMeasure(U, w, t, norm="l0")
    with pytest.raises(TypeError, match="curves"):
        CurveMeasure("abc", w, t)
    eta = CurveMeasure(U, [1.0, 3.0], t, normalize=True)
    np.testing.assert_array_equal(eta.weights, [0.25, 0.75])
    with pytest.raises(ValueError, match="t must lie"):
        eta.marginal(2.5)
    with pytest.raises(ValueError, match="t0"):
        eta.restrict(1.5, 0.5)


def test_marginal_is_the_pushforward_of_the_linear_interpolant():
    eta = small_eta()
    for k, s in enumerate(eta.times):  # grid times: the stored samples, bitwise
        np.testing.assert_array_equal(eta.marginal(s).points, eta.curves[:, k])
        np.testing.assert_array_equal(eta.marginal(s).weights, eta.weights)
    m = eta.marginal(1.0)  # λ = 1/2 on the second segment
    np.testing.assert_allclose(m.points, [[0.5, 0.5], [1.5, 0.0]], rtol=0, atol=1e-15)
    np.testing.assert_array_equal(m.weights, [0.25, 0.75])
    # merged marginal: same measure, fewer atoms
    V = CurveMeasure(np.zeros((3, 2, 1)) + [[[0.0]], [[0.0]], [[1.0]]], [0.2, 0.3, 0.5], [0.0, 1.0])
    mm = V.marginal(0.5, merge=True)
    np.testing.assert_array_equal(mm.points, [[0.0], [1.0]])
    np.testing.assert_allclose(mm.weights, [0.5, 0.5], rtol=0, atol=1e-16)


def test_restrict_keeps_the_curves():
    eta = small_eta()
    r = eta.restrict(0.25, 1.0)
    np.testing.assert_array_equal(r.times, [0.25, 0.5, 1.0])
    for s in (0.25, 0.4, 0.5, 0.8, 1.0):
        np.testing.assert_allclose(r.at(s), eta.at(s), rtol=0, atol=1e-15)
    np.testing.assert_array_equal(r.weights, eta.weights)
    assert eta.restrict(0.5, 0.5).times.size == 1


def test_lipschitz_constants_closed_form_and_dominate_all_pairs():
    eta = small_eta()
    # curve 0: speeds ‖(0.5,0)‖/0.5 = 1, ‖(0,1)‖/1 = 1; curve 1: ‖(0,−1)‖/0.5 = 2, ‖(1,0)‖/1 = 1
    np.testing.assert_allclose(eta.lipschitz_constants(), [1.0, 2.0], rtol=1e-15)
    np.testing.assert_allclose(eta.lipschitz_constants("l1"), [1.0, 2.0], rtol=1e-15)
    s = np.linspace(0, 1.5, 31)
    X = eta.at(s)  # (31, m, d)
    D = np.abs(X[:, None] - X[None]).max(-1)  # ℓ∞ distances between all time pairs, per curve
    gap = np.abs(s[:, None] - s[None])
    ratio = D[gap > 0] / gap[gap > 0][:, None]  # (pairs, m)
    np.testing.assert_allclose(ratio.max(axis=0), eta.lipschitz_constants(), rtol=1e-12)


def test_dissipation_defect_zero_on_exact_flow_positive_off_it():
    rng = np.random.default_rng(1)
    a = np.array([1.0, 3.0])
    V = Quadratic.separable_from(a)
    x0 = rng.uniform(-1, 1, (6, 2))
    # grid containing every kink time |x0_i|: the slope Σ a_i |u_i| is affine between grid points,
    # so the trapezoid rule is exact and the defect is 0 up to round-off
    t = np.unique(np.r_[np.linspace(0, 1.2, 13), np.abs(x0).ravel()])
    eta = CurveMeasure(exact_quadratic_curves(x0, t), np.full(6, 1 / 6), t)
    assert np.abs(eta.dissipation_defect(V)).max() < 1e-13
    assert eta.worst_dissipation_defect(V).max() < 1e-13
    np.testing.assert_allclose(eta.lipschitz_constants(), 1.0, rtol=1e-12)
    assert verify_characterization(eta, potential=V)["maximal_slope_mass"].measured == pytest.approx(1.0, abs=1e-15)
    # V = ⟨c, x⟩, curve x0 + t v with ‖v‖∞ ≤ 1: D = T (‖c‖_1 + ⟨c, v⟩) exactly
    c = np.array([2.0, -1.0])
    L = Linear(c)
    v = np.array([[-1.0, 1.0], [0.5, 0.0], [1.0, 1.0]])  # steepest, slow, uphill
    ts = np.linspace(0, 2.0, 5)
    U = np.zeros(2)[None, None] + ts[None, :, None] * v[:, None]
    e2 = CurveMeasure(U, [0.5, 0.3, 0.2], ts)
    np.testing.assert_allclose(e2.dissipation_defect(L), 2.0 * (3.0 + v @ c), rtol=0, atol=1e-14)
    np.testing.assert_allclose(e2.dissipation_defect(L, s=0.5, t=1.25), 0.75 * (3.0 + v @ c), atol=1e-14)
    assert verify_characterization(e2, potential=L)["maximal_slope_mass"].measured == 0.5
    # a steepest but too fast curve (speed 2) is excluded by its Lipschitz constant
    e3 = CurveMeasure(np.stack([U[0], 2 * U[0]]), [0.5, 0.5], ts)
    assert verify_characterization(e3, potential=L)["maximal_slope_mass"].measured == 0.5


def test_worst_dissipation_defect_is_the_max_over_grid_pairs():
    rng = np.random.default_rng(2)
    V = Quadratic(np.array([[2.0, 0.5], [0.5, 1.0]]))
    t = np.cumsum(rng.uniform(0.1, 0.3, 7)) - 0.1
    U = np.cumsum(rng.uniform(-0.2, 0.2, (4, 7, 2)), axis=1)
    eta = CurveMeasure(U, np.full(4, 0.25), t)
    brute = np.zeros(4)
    for i in range(7):
        for j in range(i + 1, 7):
            brute = np.maximum(brute, eta.dissipation_defect(V, s=t[i], t=t[j]))
    np.testing.assert_allclose(eta.worst_dissipation_defect(V), brute, rtol=0, atol=1e-14)


def test_substeps_converge_to_the_integral_at_second_order():
    # ℓ2 geometry, V = ½‖x‖², straight curve: ∫ ‖u(r)‖₂ dr has a closed form (arc-length integral)
    V = Quadratic(np.eye(2))
    x0, v = np.array([1.0, -0.5]), np.array([-0.6, 0.8])
    ts = np.array([0.0, 1.0, 2.0])
    eta = CurveMeasure((x0 + ts[:, None] * v)[None], [1.0], ts, "l2")
    # ‖x0 + r v‖ with ‖v‖ = 1: sqrt((r + b)² + c²), b = ⟨x0, v⟩, c² = ‖x0‖² − b²
    b = x0 @ v
    c2 = x0 @ x0 - b * b
    F = lambda r: 0.5 * ((r + b) * np.sqrt((r + b) ** 2 + c2) + c2 * np.log(r + b + np.sqrt((r + b) ** 2 + c2)))
    exact = V.value(x0 + 2 * v) - V.value(x0) + F(2.0) - F(0.0)
    errs = [abs(eta.dissipation_defect(V, substeps=s)[0] - exact) for s in (1, 2, 4, 8)]
    assert errs[-1] < 3e-3
    for e1, e2 in zip(errs, errs[1:]):
        assert 3.5 < e1 / e2 < 4.5  # trapezoid rule: error ∝ h²


# ---------------------------------------------------------------------------------------------
# superpose
# ---------------------------------------------------------------------------------------------


def test_superpose_flow_result_marginals_are_the_flow_measures():
    rng = np.random.default_rng(3)
    V = Quadratic.separable_from([1.0, 2.0])
    w = rng.dirichlet(np.ones(7))
    res = wflow.solve_flow(V, ParticleMeasure(rng.normal(size=(7, 2)), w), T=1.0, tau=0.1)
    eta = superpose(res)
    assert eta.curves.shape == (7, 11, 2) and eta.norm == wflow.norms.as_norm("linf") and str(eta.norm) == "linf"
    np.testing.assert_allclose(eta.weights, w, rtol=1e-15)
    for s in (0.0, 0.3, 0.37, 1.0):
        np.testing.assert_allclose(eta.marginal(s).points, res.measure(s).points, rtol=0, atol=1e-15)
    with pytest.raises(TypeError, match="flow_result"):
        superpose(np.zeros((3, 2)))


# ---------------------------------------------------------------------------------------------
# superpose_snapshots
# ---------------------------------------------------------------------------------------------


def separated_start(rng, n=200):
    """n jittered points of a 0.1-lattice in each orthant with |x_i| ≥ 0.3 (d = 2)."""
    vals = np.r_[-np.arange(0.3, 1.05, 0.1), np.arange(0.3, 1.05, 0.1)]
    grid = np.stack(np.meshgrid(vals, vals), -1).reshape(-1, 2)
    pick = rng.choice(len(grid), n, replace=False)
    return grid[pick] + rng.uniform(-0.01, 0.01, (n, 2))


def test_recovers_true_particle_curves_from_shuffled_snapshots():
    rng = np.random.default_rng(4)
    x0 = separated_start(rng)
    w = rng.dirichlet(np.ones(200))
    V = Quadratic.separable_from([1.0, 2.0])
    res = wflow.solve_flow(V, ParticleMeasure(x0, w), T=0.25, tau=0.0025)
    stride = 10
    times = res.times[::stride]
    P = res.positions[::stride]  # (K+1, n, d), the true curves at the snapshot times
    sep = min(
        np.abs(X[:, None] - X[None]).max(-1)[np.triu_indices(200, 1)].min() for X in res.positions
    )
    assert np.diff(times).max() < sep / 2  # the regime of the claim
    snaps = []
    for X in P:
        perm = rng.permutation(200)
        snaps.append(ParticleMeasure(X[perm], w[perm]))
    eta = superpose_snapshots(snaps, times)
    assert eta.n_curves == 200
    # match recovered and true curves by their starting points (distinct atoms)
    o_true = np.lexsort(P[0].T[::-1])
    o_rec = np.lexsort(eta.curves[:, 0].T[::-1])
    true_curves = np.moveaxis(P, 0, 1)[o_true]
    assert np.abs(eta.curves[o_rec] - true_curves).max() <= 1e-9
    assert np.abs(eta.weights[o_rec] - w[o_true]).max() <= 1e-9
    for s, mu in zip(times, snaps):
        assert_same_measure(eta.marginal(s), mu)
    np.testing.assert_allclose(eta.info.winf_steps, np.diff(times), rtol=1e-9)


def test_split_atoms_and_changing_sizes_keep_marginals_exact():
    mu0 = ParticleMeasure([[0.0, 0.0], [1.0, 0.0]], [0.5, 0.5])
    mu1 = ParticleMeasure([[0.0, 0.1], [0.0, -0.1], [1.0, 0.1]], [0.25, 0.25, 0.5])
    mu2 = ParticleMeasure([[0.0, 0.2], [0.5, 0.2], [1.0, 0.25], [1.0, 0.15]], [0.4, 0.1, 0.3, 0.2])
    times = [0.0, 0.1, 0.3]
    eta = superpose_snapshots([mu0, mu1, mu2], times)
    assert eta.weights.sum() == pytest.approx(1.0, abs=1e-15)
    for s, mu in zip(times, (mu0, mu1, mu2)):
        assert_same_measure(eta.marginal(s), mu)
    # the atom of mass 0.5 at (0, 0) continues as two curves of mass 0.25
    at0 = np.all(eta.curves[:, 0] == [0.0, 0.0], axis=1)
    np.testing.assert_allclose(np.sort(eta.weights[at0]).sum(), 0.5, atol=1e-16)
    assert set(map(tuple, eta.curves[at0, 1])) == {(0.0, 0.1), (0.0, -0.1)}


def test_interval_gluing_is_non_crossing_and_product_gluing_is_markov():
    # 1-D: two atoms merge into one and split again
    snaps = [np.array([[-1.0], [1.0]]), np.array([[0.0]]), np.array([[-1.0], [1.0]])]
    eta = superpose_snapshots(snaps, [0.0, 1.0, 2.0])
    assert eta.n_curves == 2
    got = sorted(map(tuple, eta.curves[:, :, 0]))
    assert got == [(-1.0, 0.0, -1.0), (1.0, 0.0, 1.0)]  # monotone: no crossing at the merge
    etp = superpose_snapshots(snaps, [0.0, 1.0, 2.0], gluing="product")
    assert etp.n_curves == 4
    np.testing.assert_allclose(etp.weights, 0.25, atol=1e-16)
    for s, mu in zip([0.0, 1.0, 2.0], snaps):
        assert_same_measure(etp.marginal(s), ParticleMeasure(mu))
    with pytest.raises(ValueError, match="max_curves"):
        superpose_snapshots(snaps, [0.0, 1.0, 2.0], gluing="product", max_curves=3)


lattice_measure = st.integers(1, 5).flatmap(
    lambda n: st.tuples(
        st.lists(st.tuples(st.integers(-3, 3), st.integers(-3, 3)), min_size=n, max_size=n),
        st.lists(st.integers(1, 4), min_size=n, max_size=n),
    )
)


@settings(max_examples=25, deadline=None)
@given(st.lists(lattice_measure, min_size=2, max_size=4), st.sampled_from(["interval", "product"]),
       st.sampled_from(["linf", "l2", "l1"]))
def test_property_marginals_exact_and_segments_bounded_by_winf(specs, gluing, norm):
    snaps = [ParticleMeasure(np.array(P, float) / 4, np.array(w, float), normalize=True) for P, w in specs]
    times = np.arange(len(snaps)) * 0.5
    eta = superpose_snapshots(snaps, times, norm=norm, gluing=gluing)
    assert abs(eta.weights.sum() - 1.0) <= 1e-15 and np.all(eta.weights > 0)
    for s, mu in zip(times, snaps):
        assert_same_measure(eta.marginal(s), mu, wtol=1e-15)
    # every segment joins a pair in the support of a W∞-optimal plan: length ≤ W∞(μ_k, μ_{k+1})
    step = wflow.norms.norm(np.diff(eta.curves, axis=1), norm)
    assert np.all(step <= eta.info.winf_steps[None] * (1 + 1e-14))
    for k in range(len(snaps) - 1):
        assert eta.info.winf_steps[k] == pytest.approx(wflow.winf(snaps[k], snaps[k + 1], norm), abs=1e-15)
    # curve counts: the first plan with m entries continues m curves; then interval gluing adds at
    # most (entries − atoms) per step (a + b − 1 per atom), product gluing multiplies
    info = eta.info
    n_prev = np.r_[info.n_atoms[0], info.n_curves_steps[:-1]]
    if gluing == "interval":
        assert info.n_curves_steps[0] == info.plan_entries[0]
        assert np.all(info.n_curves_steps <= n_prev + info.plan_entries - info.n_atoms[:-1])
    assert np.all(info.n_curves_steps >= np.maximum(n_prev, info.plan_entries))
    assert info.n_curves_steps[-1] == eta.n_curves


def test_zero_weight_atoms_are_ignored_and_shuffling_does_not_matter():
    mu0 = ParticleMeasure([[0.0, 0.0], [5.0, 5.0], [1.0, 0.0]], [0.5, 0.0, 0.5])
    mu1 = ParticleMeasure([[0.1, 0.0], [1.1, 0.0]])
    eta = superpose_snapshots([mu0, mu1], [0.0, 1.0])
    assert eta.n_curves == 2 and not np.any(eta.curves == 5.0)
    eta2 = superpose_snapshots([ParticleMeasure(mu0.points[::-1], mu0.weights[::-1]), mu1], [0.0, 1.0])
    o1, o2 = np.lexsort(eta.curves[:, 0].T), np.lexsort(eta2.curves[:, 0].T)
    np.testing.assert_array_equal(eta.curves[o1], eta2.curves[o2])


def test_round_off_entries_of_a_coupling_do_not_become_curves(monkeypatch):
    import wflow.transport as tr

    real = tr.optimal_coupling

    def noisy(mu, nu, norm="linf", **kw):  # the exact plan plus 1e-19 entries (solver round-off)
        g = real(mu, nu, norm, **kw)
        n, m = g.shape
        extra = np.arange(n)
        return tr.Coupling(np.r_[g.rows, extra], np.r_[g.cols, (extra + 1) % m],
                           np.r_[g.mass, np.full(n, 1e-19)], g.shape, g.value)

    monkeypatch.setattr(tr, "optimal_coupling", noisy)
    rng = np.random.default_rng(9)
    X = rng.uniform(-1, 1, (5, 2))
    w = rng.dirichlet(np.ones(5))
    snaps = [ParticleMeasure(X + s * np.array([1.0, -1.0]), w) for s in (0.0, 0.01, 0.02)]
    eta = superpose_snapshots(snaps, [0.0, 0.01, 0.02])
    assert eta.n_curves == 5
    for s, mu in zip([0.0, 0.01, 0.02], snaps):
        assert_same_measure(eta.marginal(s), mu)


def test_snapshot_validation_before_any_work(monkeypatch):
    import wflow.transport as tr

    def boom(*a, **k):
        raise AssertionError("coupling computed before validation")

    monkeypatch.setattr(tr, "optimal_coupling", boom)
    A = np.zeros((2, 2))
    with pytest.raises(ValueError, match="times"):
        superpose_snapshots([A, A], [0.0, 0.0])
    with pytest.raises(ValueError, match="times"):
        superpose_snapshots([A, A], [0.0, 1.0, 2.0])
    with pytest.raises(ValueError, match=r"measures\[1\]"):
        superpose_snapshots([A, np.zeros((2, 3))], [0.0, 1.0])
    with pytest.raises(ValueError, match="gluing"):
        superpose_snapshots([A, A], [0.0, 1.0], gluing="zip")
    with pytest.raises(ValueError, match="norm"):
        superpose_snapshots([A, A], [0.0, 1.0], norm="l0")
    with pytest.raises(TypeError, match="measures"):
        superpose_snapshots(A, [0.0, 1.0])
    with pytest.raises(ValueError, match="measures"):
        superpose_snapshots([], [])


def test_infeasible_coupling_is_refused(monkeypatch):
    import wflow.superposition as sp

    class Bad:
        rows, cols, mass, shape, value = np.array([0]), np.array([0]), np.array([0.7]), (1, 1), 0.0

    monkeypatch.setattr(sp, "optimal_coupling", lambda *a, **k: Bad())
    with pytest.raises(RuntimeError, match="misses their weights"):
        superpose_snapshots([np.zeros((1, 2)), np.ones((1, 2))], [0.0, 1.0])


def test_dissipation_defect_with_per_particle_labels():
    """η from a labelled flow evaluates a loss potential with one label per curve."""
    from wflow.adversarial import load_model, make_loss

    model = load_model("two_moons_gelu")
    X = np.random.default_rng(4).uniform(-1, 2, size=(30, 2))
    y = (np.arange(30) % 2).astype(float)
    V = -make_loss(model, y, "mse")
    res = wflow.solve_flow(V, X, T=0.05, tau=0.001)
    eta = wflow.superpose(res)
    defect = eta.dissipation_defect(V)
    # per-curve defect equals the flow's own energies and slopes (trapezoid on the same grid)
    E, S = res.energies, res.slopes
    trap = 0.5 * np.sum((S[1:] + S[:-1]) * np.diff(res.times)[:, None], axis=0)
    np.testing.assert_allclose(defect, E[-1] - E[0] + trap, rtol=0, atol=1e-12)


def test_collapsing_flow_glues_one_curve_per_atom():
    """The ℓ∞ flow of ½‖x‖² collapses onto the axes and the origin (coincident atoms, merged by
    the transport solver, a giant tie-break component): with uniform weights the W2 tie-break is
    integral in counts, so η has one curve per atom; marginals are the snapshots, every segment
    is no longer than the step's W∞ = h."""
    rng = np.random.default_rng(7)
    n = 300
    x0 = rng.uniform(-1.0, 1.0, (n, 2))
    times = np.linspace(0.0, 1.2, 13)
    U = exact_quadratic_curves(x0, times)  # (n, K+1, 2)
    snaps = [ParticleMeasure(U[rng.permutation(n), k]) for k in range(len(times))]
    assert len(np.unique(U[:, -4], axis=0)) < n // 4  # collapsed: many coincident atoms
    eta = superpose_snapshots(snaps, times)
    assert eta.n_curves == n
    np.testing.assert_allclose(eta.weights, 1.0 / n, rtol=1e-12)
    for s, mu in zip(times, snaps):
        assert_same_measure(eta.marginal(s), mu)
    h = np.diff(times)
    assert np.all(eta.info.winf_steps <= h * (1 + 1e-12))
    assert np.all(eta.segment_speeds("linf") <= (eta.info.winf_steps / h)[None, :] * (1 + 1e-12))
