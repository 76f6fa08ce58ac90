"""ParticleMeasure: validation, energy ∫V dμ and W∞-slope ∫‖∇V‖_* dμ against closed forms."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wflow.measures import WEIGHT_SUM_TOL, ParticleMeasure, as_measure
from wflow.potentials import Linear, Quadratic


def test_uniform_default_and_single_atom():
    mu = ParticleMeasure([[0.0, 1.0], [2.0, 3.0]])
    np.testing.assert_array_equal(mu.weights, [0.5, 0.5])
    assert (mu.n, mu.dim, len(mu)) == (2, 2, 2)
    one = ParticleMeasure([1.0, 2.0, 3.0])  # (d,) is one atom
    assert one.points.shape == (1, 3) and one.weights.tolist() == [1.0]
    assert mu.is_uniform() and not ParticleMeasure([[0.0], [1.0]], [0.25, 0.75]).is_uniform()


def test_arrays_are_read_only_copies():
    X = np.zeros((2, 2))
    mu = ParticleMeasure(X)
    X[0, 0] = 5.0
    assert mu.points[0, 0] == 0.0
    with pytest.raises(ValueError):
        mu.points[0, 0] = 1.0
    with pytest.raises(ValueError):
        mu.weights[0] = 1.0


@pytest.mark.parametrize(
    "points, weights, exc, match",
    [
        (np.zeros((0, 2)), None, ValueError, "points"),
        (np.zeros((2, 0)), None, ValueError, "points"),
        (np.zeros((2, 2, 2)), None, ValueError, "points"),
        ([[np.nan, 0.0]], None, ValueError, "points"),
        ([[np.inf, 0.0]], None, ValueError, "points"),
        ("ab", None, TypeError, "points"),
        (np.zeros((2, 1)), [1.0], ValueError, "weights"),
        (np.zeros((2, 1)), [np.nan, 1.0], ValueError, "weights"),
        (np.zeros((2, 1)), [1.5, -0.5], ValueError, "weights"),
        (np.zeros((2, 1)), [0.5, 0.6], ValueError, "sum to 1"),
        (np.zeros((2, 1)), 0.5, ValueError, "weights"),
        (np.zeros((2, 1)), ["a", "b"], TypeError, "weights"),
    ],
)
def test_bad_input(points, weights, exc, match):
    with pytest.raises(exc, match=match):
        ParticleMeasure(points, weights)


def test_weight_sum_tolerance_and_normalize():
    ParticleMeasure(np.zeros((2, 1)), [0.5, 0.5 + 0.5 * WEIGHT_SUM_TOL])  # accepted
    with pytest.raises(ValueError, match="normalize=True"):
        ParticleMeasure(np.zeros((2, 1)), [0.5, 0.5 + 3 * WEIGHT_SUM_TOL])
    mu = ParticleMeasure(np.zeros((3, 1)), [1.0, 2.0, 1.0], normalize=True)
    np.testing.assert_allclose(mu.weights, [0.25, 0.5, 0.25], rtol=0, atol=1e-16)
    with pytest.raises(ValueError, match="sum to 0"):
        ParticleMeasure(np.zeros((2, 1)), [0.0, 0.0], normalize=True)


def test_zero_weight_atoms_kept_or_dropped():
    X = np.array([[0.0], [1.0], [2.0]])
    mu = ParticleMeasure(X, [0.5, 0.0, 0.5])
    assert mu.n == 3  # kept by default: atom i stays particle i
    s = mu.support()
    assert s.n == 2 and s.points[:, 0].tolist() == [0.0, 2.0]
    assert ParticleMeasure(X, [0.5, 0.0, 0.5], drop_zero=True).n == 2
    full = ParticleMeasure(X)
    assert full.support() is full


def test_copy_constructor_and_as_measure():
    mu = ParticleMeasure([[0.0], [1.0]], [0.25, 0.75])
    assert ParticleMeasure(mu).weights.tolist() == [0.25, 0.75]
    assert ParticleMeasure(mu, [0.5, 0.5]).weights.tolist() == [0.5, 0.5]
    assert as_measure(mu) is mu
    assert as_measure([[1.0, 2.0], [3.0, 4.0]]).n == 2
    with pytest.raises(ValueError, match="^nu: "):
        as_measure(np.zeros((0, 2)), "nu")


def test_mean_and_pushforward():
    mu = ParticleMeasure([[0.0, 0.0], [4.0, 2.0]], [0.75, 0.25])
    np.testing.assert_allclose(mu.mean(), [1.0, 0.5])
    nu = mu.pushforward(lambda X: 2 * X + 1)
    np.testing.assert_allclose(nu.points, [[1.0, 1.0], [9.0, 5.0]])
    np.testing.assert_array_equal(nu.weights, mu.weights)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 20), st.integers(1, 4), st.integers(0, 2**31))
def test_energy_and_slope_closed_forms(n, d, seed):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    w = rng.random(n) + 1e-3
    mu = ParticleMeasure(X, w, normalize=True)
    a = rng.random(d) + 0.5
    V = Quadratic(np.diag(a))  # ∇V(x) = a ⊙ x
    energy = np.sum(mu.weights * 0.5 * np.sum(a * X**2, axis=1))
    assert mu.energy(V) == pytest.approx(energy, rel=1e-12, abs=1e-14)
    G = a * X
    # ℓ∞ geometry: dual norm ℓ1; ℓ2: ℓ2; ℓ1: ℓ∞
    assert mu.slope(V, "linf") == pytest.approx(np.sum(mu.weights * np.abs(G).sum(1)), rel=1e-12, abs=1e-14)
    assert mu.slope(V, "l2") == pytest.approx(np.sum(mu.weights * np.linalg.norm(G, axis=1)), rel=1e-12, abs=1e-14)
    assert mu.slope(V, "l1") == pytest.approx(np.sum(mu.weights * np.abs(G).max(1)), rel=1e-12, abs=1e-14)
    # a linear potential has the same slope ‖a‖_* at every atom
    L = Linear(a)
    assert mu.slope(L, "linf") == pytest.approx(a.sum(), rel=1e-12)


def test_slope_rejects_unknown_norm():
    mu = ParticleMeasure([[0.0, 1.0]])
    with pytest.raises(ValueError, match="norm|p"):
        mu.slope(Linear([1.0, 1.0]), "l0")
