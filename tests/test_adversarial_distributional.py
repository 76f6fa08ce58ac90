"""Distributional attacks: the data measure's W∞-flow against the grid-search worst case."""

from __future__ import annotations

import json

import numpy as np
import pytest

from wflow import ParticleMeasure
from wflow.adversarial import (
    MLP,
    attack_gaps,
    distributional_attack,
    fgsm,
    ifgsm,
    load_model,
    load_two_moons,
    make_loss,
    worst_case_loss,
)

EPS = 0.1


@pytest.fixture(scope="module")
def setup():
    m = load_model("two_moons_gelu")
    D = load_two_moons()
    X = D["X_test"][:200]
    y = m.predict(X)
    worst = worst_case_loss(m, X, y, EPS, grid=33, refine=4)
    return m, X, y, worst


def test_distributional_attack_reaches_the_worst_case(setup):
    # ε = 0.1, τ = ε/50: the attacked expected loss is within 2 % of Σ_i w_i sup_{B_ε(x_i)} ℓ,
    # and not above it (the flow stays in the W∞ ball; the grid value is a lower bound of the
    # sup made tight to ~1e-9 by the refinement, hence the 1e-8 slack)
    m, X, y, worst = setup
    res = distributional_attack(m, X, None, EPS, EPS / 50, n_winf=0)
    attacked = res.expected_loss[-1]
    assert attacked >= 0.98 * worst.mean
    assert attacked <= worst.mean + 1e-8
    # per point too: no point exceeds its own worst case
    L = make_loss(m, y)
    assert np.all(L.value(res.flow.positions[-1]) <= worst.values + 1e-8)
    # the report's curves are what they claim
    assert res.times[0] == 0 and res.times[-1] == pytest.approx(EPS, abs=1e-15) and len(res.times) == 51
    np.testing.assert_allclose(res.expected_loss[0], L.value(X).mean(), rtol=1e-13)
    np.testing.assert_allclose(res.expected_loss[-1], L.value(res.flow.positions[-1]).mean(), rtol=1e-13)
    assert res.accuracy[0] == pytest.approx(1.0, abs=1e-14)  # labels are the predictions at the data
    np.testing.assert_allclose(res.accuracy[-1], np.mean(m.predict(res.flow.positions[-1]) == y), rtol=1e-14)
    assert np.all(np.diff(res.expected_loss) >= -1e-12)  # the attack never lowers the mean loss here
    # identity coupling: max_i ‖x_i(t) − x_i(0)‖∞ ≤ t (so W∞(μ₀, μ_t) ≤ t)
    assert np.all(res.displacement <= res.times + 1e-15)
    # equal to IFGSM with α = τ, 50 steps
    np.testing.assert_array_equal(res.flow.positions[-1], ifgsm(m, X, None, EPS, EPS / 50, 50).x_adv)
    json.dumps(res.to_dict())


def test_ifgsm_gap_shrinks_as_tau_halves(setup):
    m, X, y, worst = setup
    rep = attack_gaps(m, X, y, EPS, ifgsm_steps=(8, 16, 32, 64), minmove_steps=(), worst=worst)
    gaps = [rep.gap("ifgsm", s) for s in (8, 16, 32, 64)]
    assert all(g >= -1e-8 for g in gaps)
    assert all(a > b for a, b in zip(gaps, gaps[1:])), gaps
    assert rep.gap("fgsm") > gaps[0]
    d = rep.to_dict()
    json.dumps(d)
    assert d["worst_case"] == worst.mean
    assert "| ifgsm |" in rep.to_markdown()


def test_attack_gaps_minmove_entries(setup):
    pytest.importorskip("wflow.minmove", reason="wflow.minmove (minimizing-movement scheme) is not available")
    m, X, y, worst = setup
    Xs, ys = X[:40], y[:40]
    wc = worst_case_loss(m, Xs, ys, EPS, grid=21, refine=3)
    rep = attack_gaps(m, Xs, ys, EPS, ifgsm_steps=(10,), minmove_steps=(5,), worst=wc)
    e = [e for e in rep.entries if e["method"] == "minmove"][0]
    assert "skipped" not in e
    assert e["expected_loss"] <= wc.mean + 1e-8
    assert e["expected_loss"] >= rep.clean_loss


def test_winf_to_the_data_is_at_most_t(setup):
    pytest.importorskip("wflow.transport", reason="wflow.transport (exact W∞) is not available")
    m, X, y, _ = setup
    res = distributional_attack(m, X[:80], y[:80], EPS, EPS / 20, n_winf=5)
    assert res.winf.shape == (5,) and res.winf[0] == 0.0
    assert res.winf_within_time(1e-12)
    # W∞ is at most the identity coupling's cost
    k = np.searchsorted(res.times, res.winf_times - 1e-15)
    assert np.all(res.winf <= res.displacement[k] + 1e-12)


def test_worst_case_closed_form_for_logistic_regression():
    # z = ⟨w, x⟩ + b, cross-entropy with y = 0: ℓ = softplus(z) is increasing in z, so
    # sup_{‖x̃−x‖∞≤ε} ℓ = softplus(z(x) + ε‖w‖₁) (a box corner, on the grid) and over the ℓ2
    # ball softplus(z(x) + ε‖w‖₂) (off the grid: the refinement approaches it)
    w, b = np.array([0.7, -1.3]), 0.2
    m = MLP([w[:, None]], [np.array([b])])
    X = np.random.default_rng(0).normal(size=(30, 2))
    z = X @ w + b
    wc = worst_case_loss(m, X, 0, 0.25, loss="ce", grid=11, refine=0)
    np.testing.assert_allclose(wc.values, np.logaddexp(0, z + 0.25 * np.abs(w).sum()), rtol=1e-13)
    np.testing.assert_allclose(wc.points, X + 0.25 * np.sign(w), rtol=0, atol=1e-15)
    wc2 = worst_case_loss(m, X, 0, 0.25, loss="ce", norm="l2", grid=41, refine=6)
    exact = np.logaddexp(0, z + 0.25 * np.linalg.norm(w))
    assert np.all(wc2.values <= exact + 1e-12)
    np.testing.assert_allclose(wc2.values, exact, rtol=1e-7)
    # weights: the mean is the weighted sum
    wts = np.linspace(1, 2, 30)
    wts /= wts.sum()
    wc3 = worst_case_loss(m, ParticleMeasure(X, wts), 0, 0.25, loss="ce", grid=11, refine=0)
    assert wc3.mean == pytest.approx(wts @ wc.values, rel=1e-14)


def test_worst_case_dominates_every_attack(setup):
    m, X, y, worst = setup
    L = make_loss(m, y)
    for Xa in [fgsm(m, X, y, EPS).x_adv, ifgsm(m, X, y, EPS, 0.02, 10, random_start=True, seed=1).x_adv]:
        assert np.all(L.value(Xa) <= worst.values + 1e-8)
    assert np.all(np.abs(worst.points - X) <= EPS + 1e-15)
    np.testing.assert_allclose(L.value(worst.points), worst.values, rtol=0, atol=0)


def test_distributional_bad_input(setup):
    m, X, y, _ = setup
    with pytest.raises(ValueError, match="eps"):
        distributional_attack(m, X, y, 0.0, n_winf=0)
    with pytest.raises(ValueError, match="tau"):
        distributional_attack(m, X, y, 0.1, -0.01, n_winf=0)
    with pytest.raises(ValueError, match="data must have dimension"):
        distributional_attack(m, np.zeros((4, 3)), None, 0.1, n_winf=0)
    with pytest.raises(ValueError, match="y"):
        distributional_attack(m, X[:3], [0, 1, 3], 0.1, n_winf=0)
    with pytest.raises(ValueError, match="n_winf"):
        distributional_attack(m, X, y, 0.1, n_winf=-1)
    with pytest.raises(ValueError, match="d <= 3"):
        worst_case_loss(make_loss(MLP.init((4, 3, 1), seed=0), 1), np.zeros((2, 4)), None, 0.1)
    with pytest.raises(ValueError, match="refine_grid"):
        worst_case_loss(m, X[:3], None, 0.1, refine_grid=4)
    with pytest.raises(ValueError, match="grid"):
        worst_case_loss(m, X[:3], None, 0.1, grid=1)
    with pytest.raises(ValueError, match="ifgsm_steps"):
        attack_gaps(m, X[:3], None, 0.1, ifgsm_steps=(0,))


def test_distributional_attack_closed_form_for_logistic_regression():
    # z = ⟨w, x⟩ + b with cross-entropy to y = 0: every atom moves at unit ℓ∞ speed along
    # sign(w), so z_i(t) = z_i(0) + t‖w‖₁ and ∫ ℓ dμ_t = Σ w_i softplus(z_i + t‖w‖₁) exactly;
    # the identity coupling's cost is exactly t
    w, b = np.array([1.2, -0.4]), -0.3
    m = MLP([w[:, None]], [np.array([b])])
    X = np.random.default_rng(3).normal(size=(40, 2))
    wts = np.random.default_rng(4).uniform(0.5, 1.5, 40)
    mu = ParticleMeasure(X, wts / wts.sum())
    res = distributional_attack(m, mu, 0, 0.2, 0.01, loss="ce", n_winf=0)
    z = X @ w + b
    expect = np.array([mu.weights @ np.logaddexp(0, z + t * np.abs(w).sum()) for t in res.times])
    np.testing.assert_allclose(res.expected_loss, expect, rtol=1e-12)
    np.testing.assert_allclose(res.displacement, res.times, rtol=0, atol=1e-15)
    wc = worst_case_loss(m, mu, 0, 0.2, loss="ce", grid=5, refine=0)
    assert res.expected_loss[-1] == pytest.approx(wc.mean, rel=1e-12)
