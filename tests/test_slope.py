"""Metric slope |∂V| of non-smooth potentials (wflow.slope): ReLU networks on and off their kinks,
against a closed form (min-norm point of the local subdifferential zonotope) and a brute-force
search over directions on a small sphere; FlowResult.slopes and the checks on ReLU flows
(docs/verification.md §8)."""

import itertools

import numpy as np
import pytest
from scipy.optimize import linprog, lsq_linear
from scipy.special import expit

import wflow
import wflow.verify
from wflow.adversarial.losses import make_loss
from wflow.adversarial.mlp import MLP
from wflow.norms import as_norm
from wflow.potentials import AbsSum, Linear, Quadratic
from wflow.slope import EPS, gradient_jump, metric_slope, slope_is_exact, slope_radius
from wflow.verify import check_flow, verify_characterization
from wflow.verify import mutants as M

# a 2 → 3 → 1 ReLU network with dyadic weights: its kinks {z_j = 0} hold exactly in float64
W1 = np.array([[1.0, 1.0, 0.5], [1.0, -1.0, 0.25]])
B1 = np.array([0.0, 0.25, -0.5])
A2 = np.array([1.0, -0.75, 0.5])
C2 = 0.125
RELU = MLP([W1, A2[:, None]], [B1, np.array([C2])], activation="relu")
GELU = MLP([W1, A2[:, None]], [B1, np.array([C2])], activation="gelu")
ON_KINK = np.array([[0.5, -0.5],      # z₁ = 0
                    [0.0, 0.25],      # z₂ = 0
                    [-0.125, 0.125]])  # z₁ = z₂ = 0 (two kinks cross)
OFF_KINK = np.array([[0.3, 0.7], [0.9, -0.2]])
NORMS = ["linf", "l2", "l1"]


def exact_slope(scale, y, x, norm):
    """|∂V|(x) for V = scale·CE(f(x), y), f the ReLU network above, in closed form.

    Locally V(x + h) = V(x) + ψ'·(g·h + Σ_{z_j = 0} a_j relu(w_j·h)) + O(‖h‖²) (ψ' = scale(σ(f) − y)),
    a sum of a linear part, convex kinks (c_j = ψ'a_j > 0) and concave ones (c_j < 0). Writing
    each concave relu as a max over s_j ∈ {0, 1} of s_j w_j·h, the slope max_{‖h‖≤1} −V'(x; h) is
    the max over s of min{‖ξ‖_* : ξ ∈ G_s + Σ_{convex} [0, c_j] w_j} (convex duality): bounded
    least squares in ℓ2 (dual ℓ2), linear programs in ℓ∞ (dual ℓ1) and ℓ1 (dual ℓ∞).
    """
    z = x @ W1 + B1
    f = np.maximum(z, 0) @ A2 + C2
    psi1 = scale * (expit(f) - y)
    act, kink = z > 0, z == 0
    G = psi1 * (W1[:, act] @ A2[act])
    cz, WZ = psi1 * A2[kink], W1[:, kink]
    conv, conc = cz > 0, cz < 0
    q = as_norm(norm).q
    best = 0.0
    for s in itertools.product([0.0, 1.0], repeat=int(conc.sum())):
        Gs = G + (WZ[:, conc] * cz[conc]) @ np.array(s) if conc.any() else G
        Mx = WZ[:, conv] * cz[conv]
        k, d = Mx.shape[1], len(Gs)
        if k == 0:
            val = float(as_norm(norm).dual(Gs))
        elif q == 2:
            val = float(np.linalg.norm(Gs + Mx @ lsq_linear(Mx, -Gs, bounds=(0, 1), method="bvls").x))
        else:
            if q == 1:  # min Σ t_i with −t ≤ Gs + Mλ ≤ t
                cost, T = np.r_[np.zeros(k), np.ones(d)], -np.eye(d)
            else:  # q = ∞: min t with −t ≤ Gs + Mλ ≤ t
                cost, T = np.r_[np.zeros(k), 1.0], -np.ones((d, 1))
            r = linprog(cost, A_ub=np.block([[Mx, T], [-Mx, T]]), b_ub=np.r_[-Gs, Gs],
                        bounds=[(0, 1)] * k + [(0, None)] * (len(cost) - k), method="highs")
            assert r.status == 0
            val = float(r.fun)
        best = max(best, val)
    return best


def lipschitz_f(norm):
    """An upper bound of ‖∇f‖_* over every activation pattern: Σ_j |a_j| ‖w_j‖_*."""
    return float(np.sum(np.abs(A2) * as_norm(norm).dual(W1.T)))


def direction_search(V, x, norm, r=1e-7, n=20000):
    """max_j (V(x) − V(x + r u_j))/r over n directions on the unit sphere of the norm (d = 2).

    With σ the largest chord between neighbouring directions, every unit direction lies within
    σ of some u_j, so the search misses the best direction's decrease rate by ≤ Lip_V σ; the
    local model is exact up to ½L₂r (curvature) and 4ε|V|/r (round-off). Returns (value, σ).
    """
    th = 2 * np.pi * np.arange(n) / n
    U = np.stack([np.cos(th), np.sin(th)], axis=1)
    nrm = as_norm(norm)
    U /= nrm.norm(U)[:, None]
    sigma = float(nrm.norm(U - np.roll(U, -1, axis=0)).max())
    v0 = float(V.value(x[None])[0])
    vals = V.value(x[None] + r * U)
    return max(0.0, float((v0 - vals.min()) / r)), sigma, v0


# ----------------------------------------------------------------------------------------------
def test_relu_losses_are_nonsmooth_and_smooth_activations_stay_smooth():
    L = make_loss(RELU, 0, "ce")
    assert L.smooth is False and (-L).smooth is False and (2.0 * L).smooth is False
    assert make_loss(RELU, [0, 1], "mse").smooth is False
    assert make_loss(GELU, 0, "ce").smooth is True and (-make_loss(GELU, 0, "ce")).smooth is True
    assert not slope_is_exact(L, ON_KINK) and slope_is_exact(make_loss(GELU, 0), ON_KINK)
    # the box path stays exact
    assert slope_is_exact(AbsSum([1.0, 2.0]) + Linear([0.0, 1.0]), ON_KINK)


def test_verify_reexports_the_core_definition():
    assert wflow.verify.metric_slope is metric_slope
    from wflow.verify.checks import metric_slope as m2
    assert m2 is metric_slope


@pytest.mark.parametrize("norm", NORMS)
@pytest.mark.parametrize("scale,y", [(1.0, 0), (1.0, 1), (-1.0, 0), (-1.0, 1)])
def test_relu_metric_slope_matches_closed_form_on_and_off_kinks(norm, scale, y):
    L = make_loss(RELU, y, "ce")
    V = L if scale == 1 else -L
    X = np.r_[ON_KINK, OFF_KINK]
    exact = np.array([exact_slope(scale, y, x, norm) for x in X])
    # curvature of V along rays inside one linear piece: |ψ''| ≤ 1/4 for the CE loss
    L2 = 0.25 * lipschitz_f(norm) ** 2
    S, bound = metric_slope(V, X, norm, return_bound=True, curvature=L2)
    delta = slope_radius(X, norm)
    err = np.abs(S - exact)
    assert np.all(err <= bound)  # the derived accuracy bound (docs/verification.md §8)
    # the refined step reaches the ball's minimum: only the curvature ½L₂δ and round-off remain
    assert np.all(err <= 0.5 * L2 * delta + 1e-9), err
    # the a.e. gradient (relu'(0) = 0) misses the metric slope on some kink in every case
    ae = as_norm(norm).dual(V.grad(X))
    assert np.max(np.abs(ae[:3] - exact[:3])) > 0.05
    np.testing.assert_allclose(ae[3:], exact[3:], rtol=1e-12)  # off the kinks: ‖∇V‖_*
    # a single (d,) point: its own δ (the batch's δ scales with max‖x‖), same bound
    assert metric_slope(V, X[0], norm) == pytest.approx(exact[0], abs=0.5 * L2 * delta + 1e-9)


@pytest.mark.parametrize("norm", NORMS)
def test_closed_form_agrees_with_brute_force_direction_search(norm):
    V = -make_loss(RELU, 1, "ce")
    L2 = 0.25 * lipschitz_f(norm) ** 2
    lip = lipschitz_f(norm)  # |ψ'| ≤ 1 for CE: Lip_V ≤ Lip_f
    r = 1e-7
    for x in np.r_[ON_KINK, OFF_KINK]:
        ref, sigma, v0 = direction_search(V, x, norm, r=r)
        ex = exact_slope(-1.0, 1, x, norm)
        slack = 0.5 * L2 * r + 4 * EPS * (1 + abs(v0)) / r
        assert ex - lip * sigma - slack <= ref <= ex + slack, (x, ref, ex, sigma)
        assert metric_slope(V, x, norm) == pytest.approx(ref, abs=lip * sigma + 2 * slack + 1e-6)


def test_screen_and_probe_jumps():
    V = make_loss(RELU, 0, "ce")
    # on a kink the probes at ±(δ/2)e_i cross it: the jump is |ψ'a₁|‖w₁‖_* up to curvature
    J, lip = gradient_jump(V, ON_KINK[:1], 1e-6, "linf")
    psi1 = expit(np.maximum(ON_KINK[0] @ W1 + B1, 0) @ A2 + C2)
    assert J[0] == pytest.approx(psi1 * A2[0] * as_norm("linf").dual(W1[:, 0]), rel=1e-5)
    assert lip[0] >= J[0] - 1e-12
    # off the kinks the gradient is constant on the piece up to the loss curvature
    J2, _ = gradient_jump(V, OFF_KINK, 1e-6, "linf")
    with pytest.raises(ValueError, match="radius"):
        gradient_jump(V, OFF_KINK, -1.0)
    assert np.all(J2 <= 0.25 * lipschitz_f("linf") ** 2 * 1e-6 * 1.0001)


def test_box_potentials_stay_exact_and_bad_input_is_named():
    V = AbsSum([1.0, 0.0]) + Linear([0.0, 0.3])
    S, B = metric_slope(V, [[0.0, 1.0], [0.5, 1.0]], "linf", return_bound=True)
    np.testing.assert_array_equal(S, [0.3, 1.3])
    np.testing.assert_array_equal(B, [0.0, 0.0])
    Q = Quadratic(np.eye(2))
    np.testing.assert_allclose(metric_slope(Q, [[3.0, -4.0]], "l2"), [5.0], rtol=1e-15)
    with pytest.raises(TypeError, match="potential"):
        metric_slope(object(), np.zeros((1, 2)))
    with pytest.raises(ValueError, match="curvature"):
        metric_slope(Q, np.zeros((1, 2)), curvature=-1.0)
    with pytest.raises(ValueError, match="X"):
        metric_slope(Q, np.zeros((1, 2, 2)))


def _x0(n=20, seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, (n, 2))


@pytest.mark.parametrize("scheme,norm,sign", [("euler", "linf", 1), ("euler", "l2", -1), ("euler", "l1", 1),
                                              ("minmove", "linf", 1), ("minmove", "l1", -1)])
def test_relu_flows_have_metric_slopes_and_pass_the_checks(scheme, norm, sign):
    x0 = _x0()
    L = make_loss(RELU, RELU.predict(x0), "ce")  # per-point labels: rows stay aligned
    V = L if sign == 1 else -L
    res = wflow.solve_flow(V, x0, 0.6, 0.01, norm=norm, scheme=scheme)
    S = res.slopes  # lazy, no error for a non-smooth potential
    assert S.shape == (res.times.size, 20)
    np.testing.assert_array_equal(S[7], metric_slope(V, res.positions[7], norm))
    rep = check_flow(res)
    assert rep.passed, rep.table()
    # energy identity 𝓔(0) − 𝓔(T) = ∫|∂𝓔| dt on the flow, up to the checked per-segment bound
    E = res.energy_curve()
    integral = float(np.sum(0.5 * np.diff(res.times) * (res.slope_curve()[1:] + res.slope_curve()[:-1])))
    assert abs(E[0] - E[-1] - integral) <= rep["energy_dissipation"].details["total_tolerance"]


@pytest.mark.slow
def test_minmove_relu_flow_slides_on_a_kink_and_only_the_metric_slope_closes_the_identity():
    # from these points the ℓ∞ minimizing-movement flow of CE(·, 0) runs into the valley z₁ = 0
    # and slides along it. The third starts one ulp inside {z₁ > 0} and slides there, where the
    # a.e. gradient is the active side's: its ‖∇V‖_* is not the slope along the (exact) sliding
    # curve; the slope at scale δ (docs/verification.md §8) is
    x0 = np.array([[0.3, -0.25], [0.35, -0.2], [np.nextafter(0.15, 1.0), -0.15]])
    V = make_loss(RELU, 0, "ce")
    metric_err, ae_err = [], []
    for tau in (0.005, 0.0025):
        res = wflow.solve_flow(V, x0, 0.3, tau, norm="linf", scheme="minmove")
        z1 = res.positions[-1] @ W1[:, 0] + B1[0]
        assert np.all(np.abs(z1) <= 1e-12)  # sliding on the kink at T
        dt = np.diff(res.times)
        drop = res.energy_curve()[0] - res.energy_curve()[-1]
        sc = res.slope_curve()
        metric_err.append(abs(drop - np.sum(0.5 * dt * (sc[1:] + sc[:-1]))))
        ae = as_norm("linf").dual(np.stack([V.grad(X) for X in res.positions])) @ res.weights
        ae_err.append(abs(drop - np.sum(0.5 * dt * (ae[1:] + ae[:-1]))))
    # energy identity with the metric slope: O(τ) (fitted order ≥ 0.8 on the halving)
    assert np.log2(metric_err[0] / metric_err[1]) >= 0.8 and metric_err[1] <= 1e-3
    # with the a.e. gradient it misses by the sliding part, for every τ
    assert min(ae_err) >= 30 * max(metric_err)


@pytest.mark.parametrize("mutant", ["ascent", "slow_descent", "sign_error", "not_moving", "stops_halfway",
                                    "random_walk", "wrong_norm", "speed_two"])
def test_relu_mutants_fail_with_default_tolerances(mutant):
    x0 = _x0()
    V = -make_loss(RELU, 0, "ce")
    eta = getattr(M, mutant)(V, x0, 0.6, 0.01, norm="linf")
    assert not verify_characterization(eta, potential=V).passed


@pytest.mark.parametrize("d", [1, 3, 4])
def test_estimate_in_other_dimensions_against_the_exact_box_slope(d):
    """V = Σλ_i|x_i| + ⟨a, x⟩ known only through value/grad (FromCallables, smooth=False):
    d = 1 searches ±1 (ς = 0), d = 3 the global grid, d > 3 the local solver (ς = 1: E is only a
    lower bound). The exact slope comes from the same V written with AbsSum (a known box)."""
    from wflow.potentials import FromCallables

    rng = np.random.default_rng(d)
    lam, a = rng.uniform(0.5, 1.5, d), rng.uniform(-0.4, 0.4, d)
    exact_V = AbsSum(lam) + Linear(a)
    W = FromCallables(lambda Y: np.abs(Y) @ lam + Y @ a, lambda Y: lam * np.sign(Y) + a, dim=d)
    W.smooth = False
    X = rng.uniform(-1, 1, (6, d))
    X[:3, 0] = 0.0  # on a kink
    X[1, -1] = 0.0  # on two kinks
    for norm in NORMS:
        ex = exact_V.slope(X, norm)
        S, B = metric_slope(W, X, norm, return_bound=True)
        assert np.all(np.abs(S - ex) <= B + 1e-12), (norm, S, ex, B)
        # E is the decrease to a feasible point: never above the slope (piecewise linear V: no curvature)
        assert np.all(S <= ex + 1e-6)
        if d <= 3:  # covering guarantee: the search finds the slope
            np.testing.assert_allclose(S, ex, atol=1e-6)
