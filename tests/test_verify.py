"""Checks of the superposition characterization (wflow.verify)."""

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import wflow
from wflow.measures import ParticleMeasure
from wflow.potentials import Linear, Quadratic
from wflow.superposition import CurveMeasure, superpose, superpose_snapshots
from wflow.verify import (
    check_energy_dissipation,
    check_marginals,
    check_maximal_slope_mass,
    check_winf_lipschitz,
    verify_characterization,
)

A = np.array([1.0, 3.0])
V = Quadratic.separable_from(A)


def euler_run(tau, seed=0, n=30, T=0.6):
    rng = np.random.default_rng(seed)
    x0 = rng.uniform(-0.8, 0.8, (n, 2))
    w = rng.dirichlet(np.ones(n))
    return wflow.solve_flow(V, ParticleMeasure(x0, w), T=T, tau=tau)


def test_euler_output_passes_all_checks_with_defects_decreasing_in_tau():
    T, spacing = 0.6, 0.05
    rng = np.random.default_rng(5)
    meas_defects, curve_defects = [], []
    for tau in (0.01, 0.005, 0.0025):
        res = euler_run(tau)
        stride = int(round(spacing / tau))
        times = res.times[::stride]
        snaps = []
        for s in times:  # unlabelled: shuffled atoms
            mu = res.measure(s)
            perm = rng.permutation(mu.n)
            snaps.append(ParticleMeasure(mu.points[perm], mu.weights[perm]))
        eta = superpose_snapshots(snaps, times)
        # Tolerance for (c), (d): sign descent chatters with amplitude ≤ τ around u_i = 0, adding
        # at most a_i τ per unit time to the dissipation defect, so Σ a_i τ T bounds it; the trapezoid
        # rule is exact on the monotone parts (the slope is affine there).
        tol = A.sum() * tau * T
        a = check_marginals(eta, snaps, times)
        b = check_winf_lipschitz(snaps, times, "linf", pairs="all")
        c = check_energy_dissipation(res, None, V, tol=tol)
        d = check_maximal_slope_mass(superpose(res), V, tol=tol)
        for r in (a, b, c, d):
            assert r.passed, r
        assert a.max_winf <= 1e-12 and a.mass_error <= 1e-12
        assert b.max_ratio <= 1 + 1e-9 and b.n_pairs == len(times) * (len(times) - 1) // 2
        assert d.mass == pytest.approx(1.0, abs=1e-12) and d.max_lipschitz <= 1 + 1e-9
        # the glued η from the snapshots is 1-Lipschitz too (segments ≤ W∞ of the snapshots)
        assert np.all(eta.lipschitz_constants() <= 1 + 1e-9)
        meas_defects.append(c.max_defect)
        curve_defects.append(d.max_defect)
    for seq in (meas_defects, curve_defects):
        assert seq[0] > 0
        assert seq[1] < 0.7 * seq[0] and seq[2] < 0.7 * seq[1]  # ≈ halves with τ (defect = O(τ))


def test_too_fast_curve_fails_lipschitz_and_reports_the_pair():
    t = np.linspace(0.0, 1.0, 6)
    still = np.array([[0.0, 5.0]])
    # a two-atom measure whose second atom jumps at speed 2 on [0.4, 0.6] only
    x = np.interp(t, [0, 0.4, 0.6, 1.0], [0, 0.4, 0.8, 1.2])
    snaps = [ParticleMeasure(np.r_[still, [[xi, 0.0]]]) for xi in x]
    for pairs in ("all", "consecutive"):
        r = check_winf_lipschitz(snaps, t, pairs=pairs)
        assert not r.passed
        assert r.max_ratio == pytest.approx(2.0, rel=1e-12)
        assert r.worst_pair == pytest.approx((0.4, 0.6)) and r.worst_indices == (2, 3)
        assert r.worst_distance == pytest.approx(0.4, rel=1e-12)
        assert r.violations[0][:2] == pytest.approx((0.4, 0.6))
    r_all = check_winf_lipschitz(snaps, t, pairs="all")
    # violating pairs: those containing [0.4, 0.6] with W∞ = |t−s| + 0.2 > |t−s|
    assert r_all.n_violations == 9
    json.dumps(r_all.to_dict())
    # a uniformly speed-2 curve: every pair violates with ratio 2
    fast = [ParticleMeasure([[2 * s, 0.0]]) for s in t]
    r = check_winf_lipschitz(fast, t)
    assert not r.passed and r.n_violations == 15 and r.max_ratio == pytest.approx(2.0)


def test_marginal_check_measures_a_displaced_atom():
    t = np.array([0.0, 1.0])
    U = np.array([[[0.0, 0.0], [0.5, 0.0]], [[1.0, 1.0], [1.0, 0.5]]])
    eta = CurveMeasure(U, [0.5, 0.5], t)
    good = [eta.marginal(0.0), eta.marginal(1.0)]
    assert check_marginals(eta, good, t).passed
    bad = [good[0], ParticleMeasure([[0.5, 0.0], [1.0, 0.6]])]  # one atom moved by 0.1 in ℓ∞
    r = check_marginals(eta, bad, t)
    assert not r.passed and r.worst_time == 1.0
    assert r.max_winf == pytest.approx(0.1, abs=1e-15)
    np.testing.assert_allclose(r.winf, [0.0, 0.1], atol=1e-15)
    # between grid times: the interpolated measure
    mid = [ParticleMeasure([[0.25, 0.0], [1.0, 0.75]])]
    assert check_marginals(eta, mid, [0.5]).max_winf <= 1e-15
    with pytest.raises(ValueError, match="times"):
        check_marginals(eta, mid, [2.0])


def test_energy_dissipation_closed_forms():
    # linear V = ⟨c, x⟩: the steepest curve x0 − t sign(c) has defect 0, the half-speed one T‖c‖₁/2
    c = np.array([2.0, -1.0])
    L = Linear(c)
    t = np.linspace(0, 1.0, 11)
    x0 = np.array([[0.0, 0.0], [1.0, 2.0]])
    steep = [ParticleMeasure(x0 - s * np.sign(c)) for s in t]
    slow = [ParticleMeasure(x0 - 0.5 * s * np.sign(c)) for s in t]
    r = check_energy_dissipation(steep, t, L)
    assert r.passed and abs(r.max_defect) <= 1e-14 and abs(r.total_defect) <= 1e-14
    r = check_energy_dissipation(slow, t, L, tol=1e-3)
    assert not r.passed
    assert r.max_defect == pytest.approx(1.5, abs=1e-13) and r.worst_pair == pytest.approx((0.0, 1.0))
    np.testing.assert_allclose(r.slopes, 3.0)
    json.dumps(r.to_dict())
    # on a CurveMeasure, substeps refine the quadrature between snapshots
    eta = CurveMeasure(np.stack([np.stack([m.points[i] for m in steep]) for i in range(2)]), [0.5, 0.5], t)
    r = check_energy_dissipation(eta, None, L, substeps=3)
    assert r.passed and r.times.size == 31
    with pytest.raises(ValueError, match="substeps"):
        check_energy_dissipation(steep, t, L, substeps=2)
    with pytest.raises(TypeError, match="potential"):
        check_energy_dissipation(steep, t, object())
    with pytest.raises(ValueError, match="times"):
        check_energy_dissipation(steep, None, L)


def test_maximal_slope_mass_counts_the_right_curves():
    c = np.array([1.0, 1.0])
    L = Linear(c)
    t = np.linspace(0, 1, 5)
    good = -t[:, None] * np.sign(c)  # steepest
    slow = -0.5 * t[:, None] * np.sign(c)  # defect 1 (= T‖c‖₁/2)
    fast = -2.0 * t[:, None] * np.array([1.0, 0.0])  # speed 2: fails Lipschitz
    eta = CurveMeasure(np.stack([good, slow, fast]), [0.6, 0.3, 0.1], t)
    r = check_maximal_slope_mass(eta, L)
    assert not r.passed and r.mass == pytest.approx(0.6, abs=1e-15) and r.n_failing == 2
    assert r.max_defect == pytest.approx(1.0, abs=1e-14) and r.worst_curve == 1
    assert r.max_lipschitz == pytest.approx(2.0)
    assert check_maximal_slope_mass(eta, L, mass_tol=0.5).passed
    json.dumps(r.to_dict())


def test_set_valued_inclusion_counts_every_admissible_selection():
    # V(x) = x₁ on (R², ℓ∞): u₁' = −1 and u₂ anything with |u₂'| ≤ 1 are all curves of maximal slope
    L = Linear([1.0, 0.0])
    t = np.linspace(0, 1, 21)
    u1 = -t
    wiggle = 0.05 * np.sin(20 * t)  # |u₂'| ≤ 1
    curves = np.stack([np.c_[u1, 0 * t], np.c_[u1, wiggle], np.c_[u1, t], np.c_[u1, 2 * wiggle]])
    eta = CurveMeasure(curves, [0.1, 0.2, 0.3, 0.4], t)
    r = check_maximal_slope_mass(eta, L, tol=1e-12)
    np.testing.assert_allclose(eta.dissipation_defect(L), 0.0, atol=1e-14)
    # only the last selection is too fast (|u₂'| reaches 2 on some segment)
    assert r.mass == pytest.approx(0.6, abs=1e-15) and r.n_failing == 1 and r.max_lipschitz > 1.5


def test_verify_characterization_on_the_exact_flow():
    rng = np.random.default_rng(7)
    x0 = rng.uniform(-1, 1, (10, 2))
    t = np.unique(np.r_[np.linspace(0, 1.0, 11), np.abs(x0).ravel()])  # kink times on the grid
    U = np.sign(x0)[:, None, :] * np.maximum(np.abs(x0)[:, None, :] - t[None, :, None], 0.0)
    w = rng.dirichlet(np.ones(10))
    eta = CurveMeasure(U, w, t)
    snaps = [ParticleMeasure(U[:, k], w) for k in range(t.size)]
    rep = verify_characterization(eta, snaps, t, V, pairs="consecutive", energy_tol=1e-12, defect_tol=1e-12)
    assert rep.passed and rep.marginals.max_winf == 0.0
    assert rep.energy.max_defect <= 1e-12 and rep.slope_mass.mass == pytest.approx(1.0, abs=1e-15)
    d = json.loads(json.dumps(rep.to_dict()))
    assert d["passed"] is True and d["lipschitz"]["pairs"] == "consecutive"
    assert d["energy"]["check"] == "energy_dissipation"
    # without snapshots and potential: only (b) runs, on η's own marginals
    rep = verify_characterization(eta)
    assert rep.passed and rep.marginals is None and rep.energy is None and rep.lipschitz.n_pairs > 0
    with pytest.raises(TypeError, match="eta"):
        verify_characterization(snaps)


snapshot = st.lists(st.tuples(st.integers(-4, 4), st.integers(-4, 4)), min_size=1, max_size=4)


@settings(max_examples=20, deadline=None)
@given(st.lists(snapshot, min_size=3, max_size=5), st.lists(st.floats(0.1, 1.0), min_size=5, max_size=5))
def test_property_consecutive_pairs_bound_all_pairs(pts, gaps):
    # triangle inequality: the Lipschitz constant over all pairs ≤ the one over consecutive pairs
    snaps = [ParticleMeasure(np.array(p, float) / 4) for p in pts]
    t = np.r_[0.0, np.cumsum(gaps[: len(snaps) - 1])]
    r_all = check_winf_lipschitz(snaps, t, pairs="all")
    r_con = check_winf_lipschitz(snaps, t, pairs="consecutive")
    assert r_all.max_ratio <= r_con.max_ratio * (1 + 1e-12)
    assert r_con.passed or not r_all.passed  # a consecutive violation is also an all-pairs one


def test_argument_errors():
    snaps = [np.zeros((1, 2)), np.ones((1, 2))]
    with pytest.raises(ValueError, match="pairs"):
        check_winf_lipschitz(snaps, [0, 1], pairs="some")
    with pytest.raises(ValueError, match="times"):
        check_winf_lipschitz(snaps, None)
    with pytest.raises(ValueError, match="times"):
        check_winf_lipschitz(snaps, [1.0, 0.0])
    with pytest.raises(ValueError, match="two"):
        check_winf_lipschitz(snaps[:1], [0.0])
    with pytest.raises(TypeError, match="measures"):
        check_winf_lipschitz(np.zeros((2, 2)), [0, 1])
    with pytest.raises(TypeError, match="eta"):
        check_marginals(snaps, snaps, [0, 1])
    with pytest.raises(ValueError, match="tol"):
        check_maximal_slope_mass(CurveMeasure(np.zeros((1, 2, 2)), [1.0], [0, 1]), V, tol=-1.0)
    with pytest.raises(TypeError, match="eta"):
        check_maximal_slope_mass(snaps, V)
    res = euler_run(0.1, n=3, T=0.3)
    r = check_maximal_slope_mass(res, V, tol=1.0)  # a FlowResult is superposed first
    assert r.n_curves == 3
