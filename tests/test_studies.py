"""Convergence studies: sup-in-time errors, rates, FGSM vs minimizing movement, selection."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import wflow
from wflow.norms import dual_norm, norm
from wflow.potentials import GaussianMixture, Linear, Quadratic
from wflow.studies import (
    closed_form_flow,
    convergence_study,
    fgsm_minmove_study,
    fitted_rate,
    selection_study,
    sup_error,
)

SEP = Quadratic.separable_from([1.0, 2.0, 0.5], b=[0.1, 0.0, -0.2])
X0 = np.array([[0.73, -0.41, 0.2], [-0.33, 0.91, -0.6]])
TAUS = 0.1 * 2.0 ** -np.arange(6)


def test_euler_error_is_at_most_tau_with_rate_one_on_separable_quadratic():
    res = convergence_study(SEP, X0, 1.5, TAUS, schemes=["euler", "minmove"])
    err = res.columns["euler"]
    assert np.all(err <= TAUS * (1 + 1e-12))  # chattering of amplitude < τ around the minimizer
    assert res.rates["euler"] >= 0.9
    # minimizing movement is exact at grid times; its interpolant errs only between grid
    # times around each coordinate's stopping time, by less than τ
    assert np.all(res.columns["minmove"] <= TAUS)
    assert res.meta["reference"] == "closed form"
    d = res.to_dict()
    assert json.loads(json.dumps(d)) == d and d["rates"]["euler"] == res.rates["euler"]
    assert res.table().count("\n") == len(TAUS) + 2


def test_closed_form_is_a_curve_of_maximal_slope():
    t = np.linspace(0, 1.5, 3001)
    U = closed_form_flow(SEP, X0, "linf")(t)
    speeds = norm(np.diff(U, axis=0), "linf") / np.diff(t)[:, None]
    assert np.all(speeds <= 1 + 1e-9)
    # energy dissipation with equality: V(x0) − V(u(t)) = ∫_0^t ‖∇V(u(r))‖₁ dr
    V = np.stack([SEP.value(x) for x in U])
    slope = np.stack([dual_norm(SEP.grad(x), "linf") for x in U])
    integral = np.concatenate([np.zeros((1, 2)), np.cumsum(0.5 * (slope[1:] + slope[:-1]) * np.diff(t)[:, None], axis=0)])
    np.testing.assert_allclose(V[0] - V, integral, rtol=0, atol=1e-6)  # trapezoid rule, h = 5e-4
    Ub = closed_form_flow(SEP, X0, "linf", budget=0.5)(t)
    assert np.all(norm(Ub - X0, "linf") <= 0.5 + 1e-15)
    np.testing.assert_array_equal(Ub[t <= 0.5], U[t <= 0.5])  # the budget binds only after t = ε
    with pytest.raises(ValueError, match="closed form"):
        closed_form_flow(GaussianMixture.default(), [0.0, 0.0])
    # ℓ2: V = ½‖x‖² shrinks radially to 0 at unit speed
    u2 = closed_form_flow(Quadratic(np.eye(2)), [[0.6, 0.8]], "l2")
    np.testing.assert_allclose(u2(np.array([0.5, 2.0]))[:, 0], [[0.3, 0.4], [0.0, 0.0]], atol=1e-15)


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 10**6), tau_a=st.floats(0.02, 0.3), tau_b=st.floats(0.02, 0.3))
def test_sup_error_between_interpolants_is_exact(seed, tau_a, tau_b):
    rng = np.random.default_rng(seed)
    V = GaussianMixture.default()
    x = rng.uniform(-1, 1, (3, 2))
    a = wflow.solve_flow(V, x, 0.9, tau_a)
    b = wflow.solve_flow(V, x, 0.9, tau_b)
    e = sup_error(a, b, 0.9, "linf", n_eval=2)
    t = np.linspace(0, 0.9, 20001)
    dense = np.max(norm(a.at(t) - b.at(t), "linf"))
    # the sup of a piecewise-linear difference sits at a breakpoint: the union grid finds it
    assert dense <= e + 1e-14
    kinks = np.union1d(a.times, b.times)
    assert e <= np.max(norm(a.at(kinks) - b.at(kinks), "linf")) + 1e-15


def test_fitted_rate():
    taus = 0.1 * 2.0 ** -np.arange(5)
    assert fitted_rate(taus, 3.0 * taus**1.5) == pytest.approx(1.5, abs=1e-12)
    assert fitted_rate(taus, np.zeros(5)) is None
    assert fitted_rate(taus, np.r_[1e-3, np.zeros(4)]) is None


def test_references_fine_callable_and_flowresult_agree():
    V = Linear([1.0, -2.0])
    x0 = np.array([0.3, 0.1])
    exact = lambda t: x0[None, None] - np.atleast_1d(t)[:, None, None] * np.array([1.0, -1.0])
    r_call = convergence_study(V, x0, 1.0, [0.1, 0.05], schemes="euler", reference=exact)
    np.testing.assert_allclose(r_call.columns["euler"], 0.0, atol=1e-14)  # Euler is exact here
    fine = wflow.solve_flow(V, x0, 1.0, 0.01)
    r_res = convergence_study(V, x0, 1.0, [0.1, 0.05], schemes="euler", reference=fine)
    np.testing.assert_allclose(r_res.columns["euler"], 0.0, atol=1e-14)
    assert r_res.rates["euler"] is None  # all errors at round-off: no rate


def test_fgsm_vs_minimizing_movement_difference_decreases_over_five_halvings():
    V = GaussianMixture.default()
    x0 = np.random.default_rng(0).uniform(-1.2, 1.2, (12, 2))
    res = fgsm_minmove_study(V, x0, T=1.0, tau_max=0.2, n_halvings=5)
    np.testing.assert_allclose(res.taus, 0.2 * 2.0 ** -np.arange(6))
    diff = res.columns["euler vs minmove"]
    assert np.all(np.diff(diff) <= 1e-12)  # never grows as τ halves
    assert diff[-1] <= diff[0] / 8  # and shrinks: 32× smaller τ, at least 8× smaller difference
    json.dumps(res.to_dict())


def test_selection_study_documents_different_limits():
    res = selection_study(taus=(0.1, 0.025, 0.00625), T=1.0, n=200, seed=1)
    c = res.columns
    assert np.all(c["euler canonical"] == 0) and np.all(c["minmove canonical"] == 0)
    # persistent selection: u(t) = (−t, s t), distance T|s| from the canonical limit for every τ
    np.testing.assert_allclose(c["euler persistent"], res.meta["persistent_mean_abs_s"], rtol=1e-12)
    # i.i.d. random selection: a random walk that averages out, sup |u₂| ~ √τ → same limit
    for k in ("euler random", "minmove random"):
        assert np.all(np.diff(c[k]) < 0)
        assert 0.3 <= res.rates[k] <= 0.7
    assert np.all(c["energy defect"] <= 1e-12)  # every selection dissipates at the maximal rate


def test_bad_arguments():
    with pytest.raises(ValueError, match="taus"):
        convergence_study(SEP, X0, 1.0, [])
    with pytest.raises(ValueError, match="taus"):
        convergence_study(SEP, X0, 1.0, [0.1, -0.1])
    with pytest.raises(ValueError, match="pairwise"):
        convergence_study(SEP, X0, 1.0, [0.1], schemes=["euler"], reference="pairwise")
    with pytest.raises(ValueError, match="reference"):
        convergence_study(SEP, X0, 1.0, [0.1], reference="nearby")
    with pytest.raises(TypeError, match="schemes"):
        convergence_study(SEP, X0, 1.0, [0.1], schemes=[1, 2])
    with pytest.raises(ValueError, match="T"):
        convergence_study(SEP, X0, 0.0, [0.1])
    with pytest.raises(ValueError, match="tau_max"):
        fgsm_minmove_study(SEP, X0, tau_max=0.0)
