"""solve_flow: closed forms, the 1-Lipschitz and energy properties, budgets, bad input."""

import numpy as np
import pytest

import wflow
from wflow.flow import time_grid
from wflow.measures import ParticleMeasure
from wflow.norms import dual_norm, norm
from wflow.potentials import DoubleWell, FromCallables, GaussianMixture, Linear, Quadratic

RNG = np.random.default_rng(11)
X0 = RNG.uniform(-1, 1, size=(60, 3))
A_SEP = np.array([1.0, 2.5, 0.7])


def sup_error(res, exact, norm_p, n_t=801):
    """max over a fine time grid (plus the step grid) of ‖u_τ(t) − u(t)‖ in the flow norm."""
    t = np.unique(np.r_[np.linspace(0, res.T, n_t), res.times])
    return max(norm(res.at(s) - exact(s), norm_p).max() for s in t)


def sep_quadratic_exact(x0):
    return lambda t: np.sign(x0) * np.maximum(np.abs(x0) - t, 0.0)


def test_separable_quadratic_linf_error_at_most_tau_and_shrinks():
    V = Quadratic.separable_from(A_SEP)
    errs = []
    for tau in [0.1, 0.05, 0.025, 0.0125]:
        res = wflow.solve_flow(V, X0, T=1.5, tau=tau)
        e = sup_error(res, sep_quadratic_exact(X0), np.inf)
        assert e <= tau * (1 + 1e-12)
        errs.append(e)
    assert all(b < a for a, b in zip(errs, errs[1:]))
    assert errs[-1] <= errs[0] / 4  # at least O(τ) overall


def test_linear_linf_is_exact():
    a = np.array([1.0, -3.0, 0.5])
    res = wflow.solve_flow(Linear(a), X0, T=0.7, tau=0.07)
    err = sup_error(res, lambda t: X0 - t * np.sign(a), np.inf)
    assert err <= 1e-14


def test_radial_quadratic_l2_error_at_most_tau_and_shrinks():
    V = Quadratic(np.eye(3))
    r0 = np.linalg.norm(X0, axis=1, keepdims=True)
    exact = lambda t: X0 * np.maximum(1 - t / r0, 0.0)
    errs = []
    for tau in [0.1, 0.05, 0.025]:
        res = wflow.solve_flow(V, X0, T=2.0, tau=tau, norm="l2")
        e = sup_error(res, exact, 2.0)
        assert e <= tau * (1 + 1e-12)
        errs.append(e)
    assert errs[2] < errs[1] < errs[0]


@pytest.mark.parametrize("p", [1.0, 1.5, 2.0, 4.0, np.inf])
@pytest.mark.parametrize("V", [GaussianMixture.default(), DoubleWell()], ids=repr)
def test_steps_are_at_most_tau_in_flow_norm(p, V):
    x0 = RNG.uniform(-1.5, 1.5, size=(50, 2))
    res = wflow.solve_flow(V, x0, T=0.6, tau=0.03, norm=p)
    steps = norm(np.diff(res.positions, axis=0), p)
    assert steps.max() <= 0.03 * (1 + 1e-12)
    # and the interpolant is 1-Lipschitz: |u(t) − u(s)| ≤ |t − s| on random pairs
    t, s = RNG.uniform(0, 0.6, size=(2, 30))
    lhs = np.array([norm(res.at(a) - res.at(b), p).max() for a, b in zip(t, s)])
    assert np.all(lhs <= np.abs(t - s) * (1 + 1e-12) + 1e-15)


@pytest.mark.parametrize("p", [np.inf, 2.0, 3.0])
def test_discrete_energy_identity_error_shrinks(p):
    """V(x_K) − V(x_0) ≈ −τ Σ_k ‖∇V(x_k)‖_*, error O(τ) for C¹ potentials."""
    V = GaussianMixture.default()
    x0 = RNG.uniform(-1.2, 1.2, size=(40, 2))
    errs = []
    taus = np.array([0.02, 0.01, 0.005, 0.0025])
    for tau in taus:
        res = wflow.solve_flow(V, x0, T=0.4, tau=tau, norm=p)
        E = res.energies
        dissipated = tau * res.slopes[:-1].sum(axis=0)
        errs.append(np.abs(E[-1] - E[0] + dissipated).max())
    assert all(b < a for a, b in zip(errs, errs[1:]))
    rate = np.polyfit(np.log(taus), np.log(errs), 1)[0]
    assert rate >= 0.9  # first order: measured ≈ 1.0 for all three norms
    assert errs[-1] <= 3.0 * taus[-1]  # measured ≈ 2τ (ℓ∞), 1τ (ℓ2), 1.25τ (ℓ3)


def hand_ifgsm(grad, x0, eps, alpha, steps):
    x = x0.copy()
    traj = [x.copy()]
    for _ in range(steps):
        x = np.clip(x - alpha * np.sign(grad(x)), x0 - eps, x0 + eps)
        traj.append(x.copy())
    return np.array(traj)


def test_budget_matches_hand_written_ifgsm_and_stays_in_ball():
    V = GaussianMixture.default()
    x0 = RNG.uniform(-1, 1, size=(200, 2))
    res = wflow.solve_flow(V, x0, T=40 * 0.01, tau=0.01, budget=0.15)
    ref = hand_ifgsm(V.grad, x0, 0.15, 0.01, 40)
    assert np.abs(res.positions - ref).max() <= 1e-12
    assert norm(res.positions - x0, np.inf).max() <= 0.15 + 1e-15
    assert res.budget == 0.15


@pytest.mark.parametrize("p", [1.0, 2.0, 3.0])
def test_budget_other_norms_stays_in_ball(p):
    res = wflow.solve_flow(DoubleWell(), X0[:, :2], T=1.0, tau=0.05, norm=p, budget=0.3)
    assert norm(res.positions - X0[:, :2], p).max() <= 0.3 * (1 + 1e-9)
    # a centre other than x0 (the flow starts inside the ball)
    c = X0[:, :2] + 0.1
    res = wflow.solve_flow(DoubleWell(), X0[:, :2], T=1.0, tau=0.05, norm=p, budget=0.5, center=c)
    assert norm(res.positions - c, p).max() <= 0.5 * (1 + 1e-9)


def test_block_size_workers_and_single_point_agree():
    V = GaussianMixture.default()
    x0 = RNG.uniform(-1, 1, size=(1001, 2))
    a = wflow.solve_flow(V, x0, T=0.3, tau=0.01)
    b = wflow.solve_flow(V, x0, T=0.3, tau=0.01, chunk_size=37, workers=2)
    c = wflow.solve_flow(V, x0[17], T=0.3, tau=0.01)
    assert np.array_equal(a.positions, b.positions)
    assert np.array_equal(c.positions[:, 0], a.positions[:, 17])



@pytest.mark.parametrize("K", [6, 7])
def test_block_runner_matches_one_full_array_loop(K):
    """wflow.flow._step_blocks (the loop shared by solve_flow and adversarial training's
    linf_flow_steps) against the scheme stepped once over all rows: every block size, worker
    count and storage pattern (every step; every third; the end only — unstored steps ping-pong
    between scratch and the next stored slab, for odd and even gaps) gives the same iterates
    bit for bit, and the start x0 is never written."""
    from wflow.flow import _step_blocks
    from wflow.schemes import EulerScheme
    from wflow.steps import Ball

    V, stepper = GaussianMixture.default(), EulerScheme("linf")
    x0 = RNG.uniform(-1, 1, size=(203, 2))
    c = x0 + RNG.uniform(-0.1, 0.1, size=x0.shape)  # per-particle centres, x0 inside the ball
    h = np.full(K, 0.03)
    ref = [x0]
    for k in range(K):
        ref.append(np.empty_like(x0))
        stepper.step(V, ref[k], h[k], Ball(c, 0.15, "linf"), ref[k + 1])
    ref = np.array(ref)
    assert np.abs(ref[-1] - c).max() == pytest.approx(0.15)  # the budget box was reached
    x_start = x0.copy()
    for chunk, workers in ((203, 1), (37, 1), (37, 2)):
        every = np.empty((K + 1,) + x0.shape)
        infos = _step_blocks(stepper, V, x0, h, Ball(c, 0.15, "linf"), chunk, every, range(K + 1),
                             workers=workers)
        assert infos == [[]] * -(-203 // chunk)  # Euler keeps no step records
        end = np.empty((1,) + x0.shape)
        _step_blocks(stepper, V, x0, h, Ball(c, 0.15, "linf"), chunk, end, [-1] * K + [0], workers=workers)
        keep = np.unique(np.r_[0:K + 1:3, K])
        slot = np.full(K + 1, -1)
        slot[keep] = np.arange(len(keep))
        some = np.empty((len(keep),) + x0.shape)
        _step_blocks(stepper, V, x0, h, Ball(c, 0.15, "linf"), chunk, some, slot, workers=workers)
        assert np.array_equal(every[1:], ref[1:]) and np.array_equal(end[0], ref[-1])
        assert np.array_equal(some[1:], ref[keep[1:]])
        assert np.array_equal(x0, x_start)

def test_random_selection_is_reproducible_and_moves_zero_components():
    V = Linear([1.0, 0.0])  # ∂₂V = 0: the inclusion is set-valued in x₂
    x0 = np.zeros((50, 2))
    a = wflow.solve_flow(V, x0, T=1.0, tau=0.1, selection="random", seed=5)
    b = wflow.solve_flow(V, x0, T=1.0, tau=0.1, selection="random", seed=5)
    c = wflow.solve_flow(V, x0, T=1.0, tau=0.1)
    assert np.array_equal(a.positions, b.positions)
    np.testing.assert_allclose(a.positions[-1, :, 0], -1.0, rtol=1e-14)
    assert np.abs(a.positions[-1, :, 1]).max() > 0.1
    assert np.all(c.positions[:, :, 1] == 0.0)  # canonical: sign(0) = 0


def test_flowresult_interpolation_stride_and_measure():
    V = DoubleWell()
    w = np.array([0.5, 0.3, 0.2])
    mu = ParticleMeasure(X0[:3, :2], w)
    res = wflow.solve_flow(V, mu, T=0.55, tau=0.1)
    np.testing.assert_allclose(res.times, [0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.55], atol=1e-15)
    assert np.array_equal(res.at(res.times), res.positions)
    mid = res.at(0.15)
    np.testing.assert_allclose(mid, 0.5 * (res.positions[1] + res.positions[2]), rtol=1e-14)
    m = res.measure(0.55)
    assert np.array_equal(m.weights, w) and np.array_equal(m.points, res.positions[-1])
    np.testing.assert_allclose(res.energy_curve(), res.energies @ w, rtol=1e-15)
    np.testing.assert_allclose(res.slope_curve()[0], mu.slope(V, "linf"), rtol=1e-14)
    s = wflow.solve_flow(V, mu, T=0.55, tau=0.1, stride=4)
    np.testing.assert_allclose(s.times, [0, 0.4, 0.55], atol=1e-15)
    assert np.array_equal(s.positions, res.positions[[0, 4, 6]])
    with pytest.raises(ValueError, match="t must"):
        res.at(0.6)


def test_time_grid():
    assert len(time_grid(1.0, 0.1)) == 11  # 0.1 does not divide 1.0 exactly in binary
    np.testing.assert_allclose(time_grid(1.0, 0.3), [0, 0.3, 0.6, 0.9, 1.0])
    assert np.array_equal(time_grid(0.0, 0.1), [0.0])
    res = wflow.solve_flow(Linear([1.0]), [0.0], T=0.0, tau=0.1)
    assert res.positions.shape == (1, 1, 1)


def test_save_roundtrip(tmp_path):
    res = wflow.solve_flow(DoubleWell(), X0[:4, :2], T=0.2, tau=0.05)
    res.save(tmp_path / "flow.npz")
    data = np.load(tmp_path / "flow.npz")
    assert np.array_equal(data["positions"], res.positions)
    assert np.array_equal(data["energies"], res.energies)


class BadGrad:
    def __init__(self, kind):
        self.kind = kind

    def value(self, X):
        return np.zeros(len(X))

    def grad(self, X):
        if self.kind == "shape":
            return np.zeros((len(X), 5))
        return np.full(X.shape, np.nan)


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        (dict(x0=[[np.nan, 0.0]]), ValueError, "x0"),
        (dict(x0=[[np.inf, 0.0]]), ValueError, "x0"),
        (dict(x0=np.zeros((2, 2, 2))), ValueError, "x0"),
        (dict(x0="ab"), TypeError, "x0"),
        (dict(x0=np.zeros((2, 3))), ValueError, "dimension"),
        (dict(tau=0.0), ValueError, "tau"),
        (dict(tau=-1.0), ValueError, "tau"),
        (dict(tau="0.1"), TypeError, "tau"),
        (dict(T=-1.0), ValueError, "T"),
        (dict(T=np.nan), ValueError, "T"),
        (dict(norm=0.5), ValueError, "norm"),
        (dict(norm="l3x"), ValueError, "norm"),
        (dict(budget=-0.1), ValueError, "budget"),
        (dict(budget=0.1, center=[0.0, 0.0, 0.0]), ValueError, "center"),
        (dict(center=[0.0, 0.0]), ValueError, "center"),
        (dict(budget=0.1, center=[5.0, 5.0]), ValueError, "budget ball"),
        (dict(scheme="rk4"), ValueError, "scheme"),
        (dict(stride=0), ValueError, "stride"),
        (dict(selection="best"), ValueError, "selection"),
        (dict(inner="grid"), ValueError, "inner"),
        (dict(potential=BadGrad("shape")), ValueError, "grad must return shape"),
        (dict(potential=BadGrad("nan")), ValueError, "non-finite"),
        (dict(potential=3.0), TypeError, "potential"),
    ],
)
def test_bad_input_raises_before_work(kwargs, exc, match):
    args = dict(potential=DoubleWell(), x0=np.zeros((4, 2)), T=1.0, tau=0.1)
    args.update(kwargs)
    with pytest.raises(exc, match=match):
        wflow.solve_flow(**args)


def test_nan_during_flow_is_reported():
    # finite at x0 = 0, NaN once x leaves [-0.5, 0.5]
    V = FromCallables(
        lambda X: X[:, 0],
        lambda X: np.where(np.abs(X) > 0.5, np.nan, 1.0),
    )
    with pytest.raises(ValueError, match="NaN|non-finite"):
        wflow.solve_flow(V, np.zeros((3, 1)), T=1.0, tau=0.1)
    with pytest.raises(ValueError, match="non-finite"):
        wflow.solve_flow(V, np.zeros((3, 1)), T=1.0, tau=0.1, norm="l2")


def test_dual_norm_slope_matches_flow_slopes():
    V = GaussianMixture.default()
    res = wflow.solve_flow(V, X0[:5, :2], T=0.1, tau=0.05, norm="l2")
    np.testing.assert_allclose(res.slopes[0], dual_norm(V.grad(X0[:5, :2]), 2.0), rtol=1e-15)
