"""Minimizing movement: closed forms, inner solvers against brute force, constraints, selection."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from scipy.optimize import lsq_linear, minimize

import wflow
from wflow.minmove import MinMoveScheme, minmove_step, project_intersection
from wflow.norms import norm
from wflow.potentials import DoubleWell, GaussianMixture, Linear, Potential, Quadratic
from wflow.steps import StepInfo

FAST = settings(max_examples=25, deadline=None)
coef = st.floats(-3, 3).filter(lambda a: abs(a) > 0.05)
point = st.floats(-2, 2)


# ---------------------------------------------------------------------------------------
# closed forms: the scheme reproduces the flow at grid times (no chattering)
# ---------------------------------------------------------------------------------------
@FAST
@given(a=st.lists(coef, min_size=1, max_size=4), data=st.data(),
       steps=st.integers(1, 12), tau=st.floats(0.01, 0.3))
def test_linear_linf_closed_form_with_and_without_budget(a, data, steps, tau):
    a = np.array(a)
    d = a.size
    x0 = np.array(data.draw(st.lists(point, min_size=d, max_size=d)))
    T = steps * tau
    V = Linear(a, c=0.3)
    res = wflow.solve_flow(V, x0, T, tau, scheme="minmove")
    exact = x0 - res.times[:, None] * np.sign(a)  # u(t) = x0 − t sign(a)
    np.testing.assert_allclose(res.positions[:, 0], exact, rtol=0, atol=1e-12)
    # with a budget around a shifted centre: the flow of V + indicator of the box
    eps = data.draw(st.floats(0.05, 0.5))
    c = x0 + data.draw(st.floats(-1, 1)) * eps * np.ones(d) * 0.9
    res = wflow.solve_flow(V, x0, T, tau, scheme="minmove", budget=eps, center=c)
    exact = np.clip(x0 - res.times[:, None] * np.sign(a), c - eps, c + eps)
    np.testing.assert_allclose(res.positions[:, 0], exact, rtol=0, atol=1e-12)
    assert res.step_info.evals.max() == 1  # the closed form only evaluates the energy record


@FAST
@given(a=st.lists(st.floats(0.1, 5), min_size=1, max_size=4), data=st.data(),
       steps=st.integers(1, 40), tau=st.floats(0.01, 0.2), budget=st.booleans())
def test_separable_quadratic_linf_closed_form(a, data, steps, tau, budget):
    """V = ½Σ a_i x_i² + bᵀx: each coordinate runs at unit speed to its (box-)minimizer."""
    a = np.array(a)
    d = a.size
    x0 = np.array(data.draw(st.lists(point, min_size=d, max_size=d)))
    b = np.array(data.draw(st.lists(st.floats(-2, 2), min_size=d, max_size=d)))
    V = Quadratic.separable_from(a, b)
    m = -b / a
    kw = {}
    if budget:
        eps = data.draw(st.floats(0.05, 1.0))
        kw = dict(budget=eps)
        m = np.clip(m, x0 - eps, x0 + eps)
    res = wflow.solve_flow(V, x0, steps * tau, tau, scheme="minmove", **kw)
    t = res.times[:, None]
    exact = x0 + np.sign(m - x0) * np.minimum(t, np.abs(m - x0))
    np.testing.assert_allclose(res.positions[:, 0], exact, rtol=0, atol=1e-12)


def test_l2_closed_forms():
    # V = ½‖x‖₂² in ℓ2: u(t) = x0 max(1 − t/‖x0‖, 0);  V = ⟨a, x⟩: u(t) = x0 − t a/‖a‖
    x0 = np.array([[0.6, -0.8], [0.1, 0.2]])
    res = wflow.solve_flow(Quadratic(np.eye(2)), x0, 1.5, 0.05, norm="l2", scheme="minmove")
    r = np.linalg.norm(x0, axis=1)
    exact = x0[None] * np.maximum(1 - res.times[:, None, None] / r[None, :, None], 0)
    np.testing.assert_allclose(res.positions, exact, rtol=0, atol=1e-12)
    a = np.array([3.0, -4.0])
    res = wflow.solve_flow(Linear(a), x0, 1.0, 0.1, norm="l2", scheme="minmove")
    exact = x0[None] - res.times[:, None, None] * (a / 5.0)
    np.testing.assert_allclose(res.positions, exact, rtol=0, atol=1e-12)


def _slsqp_min(fun, x, tau, c, eps, start):
    cons = [{"type": "ineq", "fun": lambda z: tau**2 - np.sum((z - x) ** 2)}]
    if c is not None:
        cons.append({"type": "ineq", "fun": lambda z: eps**2 - np.sum((z - c) ** 2)})
    return minimize(fun, start, method="SLSQP", constraints=cons, options={"ftol": 1e-15, "maxiter": 500})


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10**6))
def test_l2_two_ball_projection_and_linear_step_match_slsqp(seed):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, 3)
    eps = rng.uniform(0.1, 0.5)
    c = x + rng.uniform(-1, 1, 3) * eps / np.sqrt(3)  # x ∈ B_ε(c)
    tau = rng.uniform(0.05, 0.6)
    y = x + rng.normal(size=3)
    z = project_intersection(y[None], x[None], tau, c, eps, "l2")[0]
    ref = _slsqp_min(lambda w: np.sum((w - y) ** 2), x, tau, c, eps, x)
    assert np.linalg.norm(z - x) <= tau * (1 + 1e-12) and np.linalg.norm(z - c) <= eps * (1 + 1e-12)
    # SLSQP's answers may violate the constraints by ~1e-9 (then its objective is slightly
    # too good), which limits the comparison to 1e-7
    assert np.linalg.norm(z - y) ** 2 <= ref.fun + 1e-7
    a = rng.normal(size=3)
    step = minmove_step(Linear(a), x, tau, norm="l2", budget=eps, center=c)
    zs = step.x
    ref = _slsqp_min(lambda w: a @ w, x, tau, c, eps, x)
    assert ref.fun - 1e-6 <= a @ zs[0] <= ref.fun + 1e-7
    assert norm(zs[0] - x, 2) <= tau * (1 + 1e-12) and norm(zs[0] - c, 2) <= eps * (1 + 1e-12)


# ---------------------------------------------------------------------------------------
# iterative inner solvers against a brute-force reference of the step problem
# ---------------------------------------------------------------------------------------
def _reference_linf(V, X, tau, lo=None, hi=None, m=201):
    """Dense m×m grid of each step box, then L-BFGS-B polish from the 3 best grid points."""
    lo = X - tau if lo is None else lo
    hi = X + tau if hi is None else hi
    best = np.empty(len(X))
    u = np.linspace(0, 1, m)
    U = np.stack(np.meshgrid(u, u, indexing="ij"), -1).reshape(-1, 2)
    for i in range(len(X)):  # a test reference: clarity over speed
        G = lo[i] + (hi[i] - lo[i]) * U
        vals = V.value(G)
        cand = [vals.min()]
        for j in np.argsort(vals)[:3]:
            r = minimize(V.value, G[j], jac=V.grad, method="L-BFGS-B", bounds=list(zip(lo[i], hi[i])),
                         options={"ftol": 1e-15, "gtol": 1e-12})
            cand.append(min(r.fun, V.value(np.clip(r.x, lo[i], hi[i]))))
        best[i] = min(cand)
    return best


@pytest.mark.parametrize("V", [DoubleWell(), GaussianMixture.default()], ids=["doublewell", "gmm"])
def test_local_and_global_match_dense_grid_linf(V):
    # τ = 0.05: small enough that the step problem has no spurious local minima at these
    # starts (at τ ≥ 0.1 the local solver can stop at a worse vertex near the GMM bump;
    # the global solver is the tool there, checked below with τ = 0.2)
    rng = np.random.default_rng(1)
    X = rng.uniform(-1.4, 1.4, (24, 2))
    for tau, inners in ((0.05, ("local", "global")), (0.2, ("global",))):
        ref = _reference_linf(V, X, tau)
        for inner in inners:
            step = minmove_step(V, X, tau, inner=inner)
            Z, info = step.x, step.info
            assert np.all(norm(Z - X, "linf") <= tau * (1 + 1e-12))
            np.testing.assert_allclose(info.energy, V.value(Z), rtol=0, atol=1e-14)
            # |E − E_ref| ≤ 1e-6: the solver finds the brute-force minimum, and does not
            # beat it by more than the reference's own accuracy
            np.testing.assert_allclose(info.energy, ref, rtol=0, atol=1e-6, err_msg=f"{inner} tau={tau}")


def test_global_with_budget_matches_dense_grid():
    V = GaussianMixture.default()
    rng = np.random.default_rng(2)
    X = rng.uniform(-1, 1, (12, 2))
    c = X + rng.uniform(-0.1, 0.1, X.shape)
    eps, tau = 0.12, 0.1
    step = minmove_step(V, X, tau, budget=eps, center=c, inner="global")
    Z, info = step.x, step.info
    lo, hi = np.maximum(X - tau, c - eps), np.minimum(X + tau, c + eps)
    ref = _reference_linf(V, X, tau, lo, hi, m=101)
    np.testing.assert_allclose(info.energy, ref, rtol=0, atol=1e-6)
    assert np.all(norm(Z - c, "linf") <= eps * (1 + 1e-12))


def test_l2_local_and_global_agree_and_beat_every_grid_point():
    V = GaussianMixture.default()
    rng = np.random.default_rng(3)
    X = rng.uniform(-1.2, 1.2, (16, 2))
    tau = 0.05
    step = minmove_step(V, X, tau, norm="l2", inner="local")
    Zl, il = step.x, step.info
    step = minmove_step(V, X, tau, norm="l2", inner="global")
    Zg, ig = step.x, step.info
    np.testing.assert_allclose(il.energy, ig.energy, rtol=0, atol=1e-6)
    u = np.linspace(-1, 1, 161)
    U = np.stack(np.meshgrid(u, u), -1).reshape(-1, 2)
    U = U[np.linalg.norm(U, axis=1) <= 1] * tau
    grid_min = np.array([V.value(x + U).min() for x in X])
    assert np.all(ig.energy <= grid_min + 1e-12)
    assert np.all(norm(Zl - X, 2) <= tau * (1 + 1e-12)) and np.all(norm(Zg - X, 2) <= tau * (1 + 1e-12))


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10**6), d=st.integers(2, 5), budget=st.booleans())
@example(seed=88775, d=2, budget=False)  # where L-BFGS-B stopped 3.4e-3 above the minimum
def test_local_solver_on_convex_quadratics_reaches_the_unique_minimum(seed, d, budget):
    """Non-separable positive definite V: the step problem is a convex QP over a box, so the
    local solver must find its unique minimum. Reference: the exact minimizer by bounded-variable
    least squares, ½xᵀAx + bᵀx = ½‖Lᵀx + L⁻¹b‖² − ½‖L⁻¹b‖² with A = LLᵀ (L-BFGS-B, the reference
    before, can stop short on ill-conditioned A: seed 88775 left it 3.4e-3 above the minimum)."""
    rng = np.random.default_rng(seed)
    B = rng.normal(size=(d, d))
    V = Quadratic(B @ B.T + 0.1 * np.eye(d), b=rng.normal(size=d))
    X = rng.uniform(-1, 1, (4, d))
    tau = rng.uniform(0.02, 0.5)
    kw = dict(budget=0.3, center=X + 0.1) if budget else {}
    step = minmove_step(V, X, tau, inner="local", max_iter=200, max_evals=None, **kw)
    info = step.info
    lo, hi = X - tau, X + tau
    if budget:
        lo, hi = np.maximum(lo, X + 0.1 - 0.3), np.minimum(hi, X + 0.1 + 0.3)
    A = B @ B.T + 0.1 * np.eye(d)
    L = np.linalg.cholesky(A)
    t = -np.linalg.solve(L, V.b)
    for i in range(len(X)):
        r = lsq_linear(L.T, t, bounds=(lo[i], hi[i]), method="bvls", tol=1e-15)
        ref = V.value(r.x)
        # the local solver stops at a relative energy change of ~1e-12 on a strongly convex
        # problem; 1e-8 relative leaves room for its stopping rule, not for a wrong minimum
        assert abs(info.energy[i] - ref) <= 1e-8 * (1 + abs(ref))
    assert MinMoveScheme().solver_for(V, False) == "local"
    assert MinMoveScheme().solver_for(Quadratic(np.diag(np.arange(1.0, d + 1))) + Linear(np.ones(d)), True) == "exact"


def test_lp_linear_step_is_the_steepest_vertex():
    a = np.array([1.0, -2.0, 0.5])
    X = np.array([[0.1, 0.2, 0.3], [-1.0, 0.0, 2.0]])
    for p in (1.0, 3.0, 2.0):
        step = minmove_step(Linear(a), X, 0.2, norm=p)
        Z, info = step.x, step.info
        np.testing.assert_allclose(Z, X + 0.2 * wflow.norms.steepest(-a, p), rtol=0, atol=1e-15)
        # the minimum of ⟨a, ·⟩ over the τ-ball is ⟨a, x⟩ − τ‖a‖_q
        np.testing.assert_allclose(info.energy, X @ a - 0.2 * wflow.norms.dual_norm(a, p), atol=1e-14)


# ---------------------------------------------------------------------------------------
# constraints, monotonicity and records along whole flows
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("norm_name", ["linf", "l2", "l1"])
def test_flow_steps_respect_step_and_budget_and_never_increase_energy(norm_name):
    V = GaussianMixture.default()
    rng = np.random.default_rng(4)
    X0 = rng.uniform(-1.2, 1.2, (20, 2))
    tau, eps = 0.04, 0.15
    res = wflow.solve_flow(V, X0, 0.4, tau, norm=norm_name, scheme="minmove", budget=eps, seed=0)
    P = res.positions
    steps = norm(np.diff(P, axis=0), norm_name)
    assert np.all(steps <= tau * (1 + 1e-12))
    assert np.all(norm(P - X0[None], norm_name) <= eps * (1 + 1e-12))
    E = res.energies
    assert np.all(np.diff(E, axis=0) <= 0)
    info = res.step_info
    K = len(res.times) - 1
    assert isinstance(info, StepInfo) and info.budget_active is not None
    assert info.energy.shape == (K, 20) and info.evals.shape == (K, 20)
    np.testing.assert_allclose(info.energy, E[1:], rtol=0, atol=1e-14)
    assert np.all(info.evals <= 88)
    np.testing.assert_array_equal(info.active, steps >= tau * (1 - 1e-9))
    # the budget binds after t = ε for most particles: somewhere it must be recorded active
    assert info.budget_active.any() and not info.budget_active[0].any()


def test_cbo_is_seeded_feasible_monotone_and_counts_900_evaluations():
    V = GaussianMixture.default()
    X = np.random.default_rng(5).uniform(-1, 1, (10, 2))
    step = minmove_step(V, X, 0.1, inner="cbo", seed=7)
    Z1, i1 = step.x, step.info
    step = minmove_step(V, X, 0.1, inner="cbo", seed=7)
    Z2 = step.x
    step = minmove_step(V, X, 0.1, inner="cbo", seed=8)
    Z3 = step.x
    np.testing.assert_array_equal(Z1, Z2)
    assert not np.array_equal(Z1, Z3)
    assert np.all(i1.evals == 1 + 30 * 30 + 1)  # V(x_k), 30 particles × 30 iterations, V(m_α)
    assert np.all(i1.energy <= V.value(X)) and np.all(norm(Z1 - X, "linf") <= 0.1 * (1 + 1e-12))
    step = minmove_step(V, X, 0.1, inner="cbo", seed=7, n_particles=5, n_iter=4)
    ic = step.info
    assert np.all(ic.evals == 1 + 20 + 1)


def test_fallback_keeps_x_when_the_solver_cannot_improve():
    # at a strict local minimum nothing in the ball is better: x stays, V does not increase
    V = DoubleWell()
    X = np.array([[1.0, 0.0], [-1.0, 0.0]])
    for inner in ("local", "cbo"):
        step = minmove_step(V, X, 0.1, inner=inner, seed=0)
        Z, info = step.x, step.info
        np.testing.assert_array_equal(Z, X)
        assert np.all(info.energy == V.value(X))
    step = minmove_step(V, X, 0.1, inner="cbo", seed=0)
    Z, info = step.x, step.info
    assert info.fallback.all()


# ---------------------------------------------------------------------------------------
# selection and per-particle potentials
# ---------------------------------------------------------------------------------------
def test_selection_on_flat_coordinates():
    V = Linear([1.0, 0.0])  # ∂₂V = 0: every x₂ in [x₂ − τ, x₂ + τ] is a minimizer
    x0 = np.array([[0.0, 0.0]] * 50)
    can = wflow.solve_flow(V, x0, 1.0, 0.1, scheme="minmove")
    np.testing.assert_array_equal(can.positions[:, :, 1], 0.0)
    np.testing.assert_allclose(can.positions[-1, :, 0], -1.0, rtol=0, atol=1e-12)
    r1 = wflow.solve_flow(V, x0, 1.0, 0.1, scheme="minmove", selection="random", seed=3)
    r2 = wflow.solve_flow(V, x0, 1.0, 0.1, scheme="minmove", selection="random", seed=3)
    np.testing.assert_array_equal(r1.positions, r2.positions)
    steps2 = np.abs(np.diff(r1.positions[:, :, 1], axis=0))
    assert steps2.max() <= 0.1 * (1 + 1e-12) and np.unique(r1.positions[-1, :, 1]).size == 50
    np.testing.assert_allclose(r1.positions[:, :, 0], can.positions[:, :, 0], rtol=0, atol=1e-15)


class _PerParticle(Potential):
    """V_i(x) = ½‖x − m_i‖₂²: a potential with per-particle data (like an attacked label)."""

    thread_safe = True

    def __init__(self, M):
        self.M, self.dim = M, M.shape[1]

    def restrict(self, rows):
        return _PerParticle(self.M[rows])

    def _value(self, X):
        return 0.5 * np.sum((X - self.M) ** 2, axis=1)

    def _grad(self, X):
        return X - self.M


def test_per_particle_potentials_are_evaluated_row_aligned():
    rng = np.random.default_rng(6)
    M = rng.uniform(-1, 1, (9, 3))
    X0 = rng.uniform(-1, 1, (9, 3))
    V = _PerParticle(M)
    for inner in ("local", "cbo"):
        res = wflow.solve_flow(V, X0, 0.3, 0.1, scheme="minmove", inner=inner, seed=0, chunk_size=4)
        if inner == "local":  # exact answer: coordinates run to m_i at unit speed
            exact = X0 + np.sign(M - X0) * np.minimum(res.times[:, None, None], np.abs(M - X0))
            np.testing.assert_allclose(res.positions, exact, rtol=0, atol=1e-9)
        else:  # CBO is approximate, but its energies are those of the right particle
            np.testing.assert_allclose(res.step_info.energy[-1], V.value(res.positions[-1]), atol=1e-14)


# ---------------------------------------------------------------------------------------
# argument checking
# ---------------------------------------------------------------------------------------
def test_bad_arguments():
    V = GaussianMixture.default()
    with pytest.raises(ValueError, match="inner"):
        wflow.solve_flow(V, [0.1, 0.2], 0.2, 0.1, scheme="minmove", inner="newton")
    with pytest.raises(ValueError, match="inner_options"):
        MinMoveScheme(inner="local", inner_options={"n_particles": 3})
    with pytest.raises(TypeError, match="inner_options"):
        MinMoveScheme(inner="cbo", inner_options=[1, 2])
    with pytest.raises(ValueError, match="max_iter"):
        MinMoveScheme(inner="local", inner_options={"max_iter": 0})
    with pytest.raises(ValueError, match="exact"):
        wflow.solve_flow(V, [0.1, 0.2], 0.2, 0.1, scheme="minmove", inner="exact")
    with pytest.raises(ValueError, match="d <= 3"):
        minmove_step(DoubleWell(dim=4), np.zeros(4), 0.1, inner="global")
    with pytest.raises(ValueError, match="inner"):
        wflow.solve_flow(V, [0.1, 0.2], 0.2, 0.1, scheme="euler", inner="local")
