"""With a budget, Euler steps stay ≤ τ in the flow's norm and the iterates stay in the ball."""

import numpy as np
import pytest

import wflow
from wflow._fp import cap_steps
from wflow.norms import norm as lp_norm
from wflow.potentials import Linear, Quadratic


def test_issue_example_l1_step_is_tau_not_four_thirds_tau():
    r = wflow.solve_flow(Linear([-1.0, 0.0, 0.0]), [0.5, 0.25, 0.25], T=0.05, tau=0.01, norm="l1",
                         budget=1.0, center=np.zeros(3))
    steps = lp_norm(np.diff(r.positions, axis=0), 1.0)
    assert np.all(steps <= 0.01 * (1 + 1e-12))  # was 1.33τ with the Euclidean ℓ1-ball projection
    assert np.all(lp_norm(r.positions, 1.0) <= 1.0 + 1e-12)
    # the flow still moves: along the ℓ1 sphere, x₁ grows by τ/2 per step (mass taken from x₂, x₃)
    assert r.positions[-1, 0, 0] > 0.5


@pytest.mark.parametrize("p", [1.0, 1.5, 2.0, 3.0, np.inf])
def test_random_budget_cases_keep_step_and_budget(p):
    rng = np.random.default_rng(int(10 * p) if np.isfinite(p) else 99)
    worst_step, worst_ball = 0.0, 0.0
    for _ in range(20):
        d = int(rng.integers(2, 6))
        A = rng.standard_normal((d, d))
        V = Quadratic(A @ A.T + 0.1 * np.eye(d), b=rng.standard_normal(d) * 3)
        n = 8
        c = rng.standard_normal((n, d))
        eps = float(rng.uniform(0.05, 0.5))
        u = rng.standard_normal((n, d))
        x0 = c + eps * rng.uniform(0, 1, (n, 1)) * u / lp_norm(u, p)[:, None]  # starts inside the ball
        tau = float(rng.uniform(0.005, 0.05))
        r = wflow.solve_flow(V, x0, T=1.0, tau=tau, norm=p, budget=eps, center=c)
        h = np.diff(r.times)[:, None]
        worst_step = max(worst_step, float(np.max(lp_norm(np.diff(r.positions, axis=0), p) / h)))
        worst_ball = max(worst_ball, float(np.max(lp_norm(r.positions - c[None], p)) / eps))
    # tolerance: the stored positions carry relative round-off ≈ ε|x| ≤ 1e-15·(|c| + ε), divided
    # by τ ≥ 0.005 — well below 1e-10
    assert worst_step <= 1 + 1e-10
    assert worst_ball <= 1 + 1e-10


def test_linf_budget_flow_is_exactly_ifgsm():
    rng = np.random.default_rng(0)
    V = Quadratic.separable_from([1.0, 2.0, 0.5], b=[0.3, -1.0, 0.2])
    x0 = rng.uniform(-1, 1, (10, 3))
    eps, tau = 0.1, 0.013
    r = wflow.solve_flow(V, x0, T=0.5, tau=tau, norm="linf", budget=eps)
    x = x0.copy()
    K = len(r.times) - 1
    for k in range(K):
        h = tau if k < K - 1 else 0.5 - (K - 1) * tau  # the last step ends at T
        # IFGSM's step, with the step rounded to ≤ τ exactly (one ulp toward x where fl(x ± τ)
        # overshoots: wflow._fp.cap_steps), then clipped to the budget box
        x = np.clip(cap_steps(x, x - h * np.sign(V.grad(x)), h), x0 - eps, x0 + eps)
        np.testing.assert_array_equal(r.positions[k + 1], x)
