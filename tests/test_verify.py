"""wflow.verify: correct flows pass with default tolerances, every mutant is caught."""

import json

import numpy as np
import pytest

import wflow
from wflow.measures import ParticleMeasure
from wflow.potentials import GaussianMixture, Linear, Quadratic
from wflow.superposition import CurveMeasure, superpose
from wflow.verify import (
    CheckReport,
    check_convergence,
    check_curve_lipschitz,
    check_dissipation_refinement,
    check_held_out,
    check_marginals,
    check_snapshot_lipschitz,
    segment_analysis,
    verify_characterization,
)
from wflow.verify.mutants import MUTANTS, frozen_coordinate, random_walk

GM = GaussianMixture.default()
Q = Quadratic.separable_from([1.0, 3.0])


def _start(n=16, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(-0.8, 0.8, (n, 2)), rng.dirichlet(np.ones(n))


@pytest.mark.parametrize("norm", ["linf", "l2", "l1"])
@pytest.mark.parametrize("scheme,tau", [("euler", 0.05), ("euler", 0.001), ("minmove", 0.05), ("minmove", 0.01)])
def test_correct_flows_pass_with_default_tolerances(norm, scheme, tau):
    x0, w = _start()
    T = 0.3 if tau < 0.005 else 0.6
    res = wflow.solve_flow(GM, ParticleMeasure(x0, w), T, tau, norm=norm, scheme=scheme)
    rep = verify_characterization(res, potential=GM)
    assert rep.passed, rep.table()
    assert [c.name for c in rep.checks] == ["curve_lipschitz", "energy_dissipation", "maximal_slope_mass"]
    m = rep["maximal_slope_mass"]
    assert m.measured == pytest.approx(1.0, abs=1e-12)
    # Euler steps start in the steepest direction, so D ≤ h‖Δ∇V‖_* ≤ half the chord bound 2h·osc
    # (plus the trapezoid and round-off terms); minimizing movement ends in it (same bound)
    assert m.details["max_defect_over_tolerance"] <= 0.5 + 1e-6


def test_segment_rule_is_exact_for_linear_potential_and_euler_half_of_bound_on_quadratic():
    V = Linear([1.0, -2.0])
    res = wflow.solve_flow(V, np.zeros((3, 2)), T=1.0, tau=0.01)
    seg = segment_analysis(superpose(res), V)
    # linear V: V(u(t)) = −3t exactly, slope 3: the defect is round-off of |V| ≤ 3
    assert np.max(np.abs(seg["defect"])) <= 1e-13
    assert np.all(seg["osc_term"] == 0.0) and np.all(seg["quad_term"] == 0.0)
    # quadratic V, Euler in ℓ∞: D = (h/2) g_{k+1} with g_{k+1} ≤ 2‖Δ∇V‖_1, i.e. D ≤ tol/2 exactly
    x0, _ = _start()
    seg = segment_analysis(superpose(wflow.solve_flow(Q, x0, 0.6, 0.02)), Q)
    assert np.all(seg["defect"] <= 0.5 * seg["osc_term"] + seg["floor_term"])
    assert np.max(seg["defect"]) > 0  # chattering around u_i = 0 really costs something


@pytest.mark.parametrize("name", sorted(MUTANTS))
def test_every_mutant_is_caught_while_the_correct_flow_passes(name):
    x0, w = _start(n=20, seed=3)
    T, tau = 0.6, 0.01
    good = wflow.solve_flow(GM, ParticleMeasure(x0, w), T, tau)
    assert verify_characterization(good, potential=GM).passed
    make, against_snapshots = MUTANTS[name]
    eta = make(GM, x0, T, tau, "linf", weights=w)
    if name != "permuted_weights":
        eta = CurveMeasure(eta.curves, w, eta.times, eta.norm)
    if against_snapshots:
        keep = [len(good.times) // 2, len(good.times) - 1]
        snaps = [good.measure(good.times[k]) for k in keep]
        rep = verify_characterization(eta, snaps, good.times[keep], potential=GM)
        assert "marginals" in rep.failed
        # the same snapshots against the correct η: W∞ = 0 exactly at grid times
        ok = verify_characterization(good, snaps, good.times[keep], potential=GM)
        assert ok.passed and ok["marginals"].measured == 0.0
    else:
        rep = verify_characterization(eta, potential=GM)
    assert not rep.passed, rep.table()
    expected = {"speed_two": "curve_lipschitz", "frozen_coordinate_10pct": "maximal_slope_mass"}
    if name in expected:
        assert expected[name] in rep.failed


def test_speed_two_is_measured_exactly_and_frozen_mass_is_the_frozen_fraction():
    x0, w = _start(n=20, seed=3)
    eta = MUTANTS["speed_two"][0](Linear([1.0, -2.0]), x0, 0.5, 0.01)
    r = check_curve_lipschitz(eta)
    assert not r.passed and r.measured == pytest.approx(2.0, abs=1e-12)
    eta = frozen_coordinate(Q, np.abs(x0) + 0.3, 0.3, 0.01, fraction=0.1, coordinate=1)
    rep = verify_characterization(eta, potential=Q)
    # 2 of 20 curves frozen (x₂ ≥ 0.3 > 0 keeps ∂₂V ≠ 0 on [0, 0.3]): exactly their mass fails
    assert rep["maximal_slope_mass"].measured == pytest.approx(0.9, abs=1e-12)
    assert rep["curve_lipschitz"].passed


def test_stiff_frozen_coordinate_escapes_one_tau_but_not_the_refinement():
    """V = ½(400x₁² + x₂²), τ = 0.005: τ·Lip(∇V) = 2 > |∂₂V|, so one τ cannot tell (documented);
    the τ-ladder can: the frozen particles' defect does not vanish."""
    S = Quadratic.separable_from([400.0, 1.0])
    xs = np.random.default_rng(1).uniform(-1.0, 1.0, (50, 2))
    assert verify_characterization(frozen_coordinate(S, xs, 0.5, 0.005, coordinate=1), potential=S).passed
    taus = [0.01, 0.005, 0.0025, 0.00125, 0.000625]
    good = check_dissipation_refinement(S, xs, 0.5, taus)
    bad = check_dissipation_refinement(S, xs, 0.5, taus, flows=lambda t: frozen_coordinate(S, xs, 0.5, t, coordinate=1))
    assert good.passed and good.measured >= 0.95
    assert not bad.passed and bad.details["local_order"] < 0.8


def test_convergence_against_a_closed_form_and_its_mutants():
    x0, _ = _start()
    taus = [0.04, 0.02, 0.01, 0.005]
    r = check_convergence(Q, x0, 0.8, taus)
    assert r.passed and r.details["reference"] == "closed form"
    assert np.all(r.details["errors"] <= np.array(taus) + 1e-12)  # Euler's sup error ≤ τ here
    up = check_convergence(Q, x0, 0.8, taus, flows=lambda t: wflow.solve_flow(-1.0 * Q, x0, 0.8, t))
    assert not up.passed and up.details["errors"].min() > 0.5  # a consistently wrong scheme
    with pytest.raises(ValueError, match="taus"):
        check_convergence(Q, x0, 0.8, [0.1])


def test_held_out_snapshots_converge_for_a_flow_not_for_a_random_walk():
    x0, _ = _start()
    res = wflow.solve_flow(GM, x0, 0.64, 0.01)
    ts = res.times[::4]
    r = check_held_out([res.measure(s) for s in ts], ts, keep_eta=False)
    assert r.passed and r.measured >= 0.8 and r.details["levels"] == 3  # K = 16: spacings 8Δ, 4Δ, 2Δ
    assert np.all(np.diff(r.details["errors"]) < 0)
    json.dumps(r.to_dict())
    rw = random_walk(GM, x0, 0.64, 0.01)
    r = check_held_out([rw.marginal(s) for s in ts], ts, keep_eta=False)
    assert not r.passed


def test_marginals_and_snapshot_lipschitz_use_exact_winf():
    t = np.linspace(0.0, 1.0, 6)
    still = np.array([[0.0, 5.0]])
    x = np.interp(t, [0, 0.4, 0.6, 1.0], [0, 0.4, 0.8, 1.2])  # one atom at speed 2 on [0.4, 0.6]
    snaps = [ParticleMeasure(np.r_[still, [[xi, 0.0]]]) for xi in x]
    r = check_snapshot_lipschitz(snaps, t)
    assert not r.passed and r.measured == pytest.approx(2.0, rel=1e-12)
    assert r.worst["pair"] == pytest.approx([0.4, 0.6]) and r.details["n_transport_problems"] == 5
    x0, _ = _start()
    res = wflow.solve_flow(Q, x0, 0.5, 0.05)
    eta = superpose(res)
    assert check_marginals(eta, res).measured == 0.0
    shifted = [res.measure(s) for s in res.times[1:]] + [res.measure(res.T)]
    r = check_marginals(eta, shifted, res.times)
    assert not r.passed and r.measured == pytest.approx(0.05, rel=1e-9)  # one Euler step of ℓ∞ length τ


def test_report_type_is_json_ready_and_names_its_formula():
    x0, _ = _start()
    rep = verify_characterization(wflow.solve_flow(Q, x0, 0.4, 0.02), potential=Q)
    assert isinstance(rep, CheckReport) and bool(rep)
    d = json.loads(json.dumps(rep.to_dict()))
    for c in d["checks"]:
        assert c["formula"] and c["tolerance"] is not None and "worst" in c
    assert "| characterization/maximal_slope_mass | 1 | >= |" in rep.table()
    assert "| maximal_slope_mass | 1 | >= |" in rep.table(leaves=False)
    nan = CheckReport("x", None, float("nan"))
    assert nan.to_dict()["measured"] is None and nan.to_dict()["passed"] is None


def test_tolerance_arguments_replace_the_derived_ones_and_are_validated():
    x0, _ = _start()
    up = MUTANTS["ascent"][0](Q, x0, 0.4, 0.02)
    assert not verify_characterization(up, potential=Q).passed
    loose = verify_characterization(up, potential=Q, defect_tol=10.0)
    assert loose.passed and "(given)" in loose["maximal_slope_mass"].details["segment_rule"]
    with pytest.raises(TypeError, match="unknown tolerance"):
        verify_characterization(up, potential=Q, energy_tol=1.0)
    with pytest.raises(ValueError, match="defect_tol"):
        verify_characterization(up, potential=Q, defect_tol=-1.0)
    with pytest.raises(TypeError, match="eta"):
        verify_characterization(np.zeros((3, 2)))


def test_one_minmove_step_of_size_eps_is_the_worst_case_and_a_shorter_one_is_not():
    from wflow.adversarial import load_model, load_two_moons
    from wflow.verify import check_minmove_step_is_worst_case, measure_attack_gap

    data = load_two_moons()
    model = load_model("two_moons_gelu")
    X, y = data["X_test"][:30], data["y_test"][:30]
    good = check_minmove_step_is_worst_case(model, X, y, 0.1, grid=33, refine=3)
    assert good.passed and good.details["step_mean"] == pytest.approx(good.details["grid_mean"], abs=1e-6)
    bad = check_minmove_step_is_worst_case(model, X, y, 0.1, grid=33, refine=3, step_tau=0.05)
    assert not bad.passed and bad.details["step_mean"] < bad.details["grid_mean"]
    gap = measure_attack_gap(0.9, 1.0)
    assert gap.passed is None and gap.measured == pytest.approx(0.1)


def _sliding_curves(x0, h, T=0.8):
    """V = |x₁| + 0.3 x₂ in ℓ∞: u₁ runs to the kink and slides on it, u₂ = x₂ − t (closed form)."""
    t = np.arange(0.0, T + 1e-12, h)
    u1 = np.sign(x0[:, 0])[:, None] * np.maximum(np.abs(x0[:, 0])[:, None] - t[None], 0.0)
    u2 = x0[:, 1][:, None] - t[None]
    return CurveMeasure(np.stack([u1, u2], axis=-1), np.full(len(x0), 1.0 / len(x0)), t)


def test_metric_slope_of_kinks_is_exact_and_the_energy_identity_holds_on_sliding_flows():
    from wflow.potentials import AbsSum, FromCallables
    from wflow.verify import metric_slope

    V = AbsSum([1.0, 0.0]) + Linear([0.0, 0.3])
    X = np.array([[0.0, 1.0], [0.5, 1.0], [-0.2, 0.0]])
    # on the kink the minimal subgradient is (0, 0.3): dual norms 0.3 in ℓ∞ (ℓ1 dual) and ℓ2
    np.testing.assert_allclose(V.slope(X, "linf"), [0.3, 1.3, 1.3], rtol=0, atol=1e-15)
    np.testing.assert_allclose(V.slope(X, "l2"), [0.3, np.hypot(1, 0.3), np.hypot(1, 0.3)], atol=1e-15)
    # a kinked potential that does not know its subdifferential: a small minimizing-movement step
    W = FromCallables(lambda Y: np.abs(Y[:, 0]) + 0.3 * Y[:, 1],
                      lambda Y: np.c_[np.where(Y[:, 0] >= 0, 1.0, -1.0), np.full(len(Y), 0.3)])
    W.smooth = False
    np.testing.assert_allclose(metric_slope(W, X, "linf"), [0.3, 1.3, 1.3], atol=1e-6)
    x0 = np.random.default_rng(0).uniform(-1, 1, (20, 2))
    totals, grad_totals = [], []
    for h in (0.02, 0.01, 0.005):
        eta = _sliding_curves(x0, h)
        rep = verify_characterization(eta, potential=V)
        assert rep.passed, rep.table()
        totals.append(abs(rep["energy_dissipation"].details["total_defect"]))
        W.smooth = True  # the same curves seen through the subgradient grad returns (sign(0) = +1)
        grad_totals.append(verify_characterization(eta, potential=W)["energy_dissipation"].details["total_defect"])
        W.smooth = False
    assert max(totals) <= 2e-3  # one chord per curve crosses the kink: O(h) in total
    # with ‖grad‖_* the sliding curves look 0.3·(sliding time) too slow, for every h
    assert min(grad_totals) > 0.3


def test_euler_on_a_kink_chatters_but_passes_its_segment_bound_and_converges():
    from wflow.potentials import AbsSum

    V = AbsSum([1.0, 0.0]) + Linear([0.0, 0.3])
    x0 = np.random.default_rng(0).uniform(-1, 1, (20, 2))
    res = wflow.solve_flow(V, x0, 0.8, 0.01)
    assert verify_characterization(res, potential=V).passed

    def exact(t):
        t = np.atleast_1d(t)[:, None]
        return np.stack([np.sign(x0[:, 0]) * np.maximum(np.abs(x0[:, 0]) - t, 0), x0[:, 1] - t], axis=-1)

    r = check_convergence(V, x0, 0.8, [0.04, 0.02, 0.01, 0.005], reference=exact)
    assert r.passed and r.details["reference"] == "given"
