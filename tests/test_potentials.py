"""Batched potentials: values, exact gradients, algebra, finite differences."""

import numpy as np
import pytest

from wflow.potentials import (
    DoubleWell,
    FromCallables,
    GaussianMixture,
    Linear,
    Quadratic,
    check_grad,
)

X = np.random.default_rng(3).uniform(-1.5, 1.5, size=(40, 2))


@pytest.mark.parametrize(
    "V",
    [
        Quadratic([[2.0, 1.0], [0.0, 3.0]], b=[1.0, -2.0], c=0.5),
        Linear([1.0, -2.0], c=3.0),
        DoubleWell(),
        GaussianMixture.default(),
        -DoubleWell() + 2.0 * Linear([1.0, 1.0]),
        DoubleWell() - GaussianMixture.default(),
    ],
    ids=repr,
)
def test_gradients_match_finite_differences(V):
    assert check_grad(V, X) < 1e-8


def test_quadratic_closed_form_and_symmetrization():
    A = np.array([[2.0, 1.0], [0.0, 3.0]])  # V only sees (A + Aᵀ)/2
    V = Quadratic(A, b=[1.0, -2.0], c=0.5)
    x = np.array([0.3, -0.7])
    assert V.value(x) == pytest.approx(0.5 * x @ A @ x + x @ [1.0, -2.0] + 0.5, rel=1e-15)
    np.testing.assert_allclose(V.grad(x), 0.5 * (A + A.T) @ x + [1.0, -2.0], rtol=1e-15)
    v, g = V.value_and_grad(X)
    np.testing.assert_array_equal(v, V.value(X))
    np.testing.assert_allclose(g, V.grad(X), rtol=0, atol=1e-15)
    out = np.empty_like(X)
    np.testing.assert_allclose(V._grad_into(X, out), V.grad(X), rtol=0, atol=1e-15)


def test_shapes_single_and_batched():
    V = GaussianMixture.default()
    assert V.value(X).shape == (40,) and V.grad(X).shape == (40, 2)
    assert np.ndim(V.value(X[0])) == 0 and V.grad(X[0]).shape == (2,)
    assert V.value(X[3]) == pytest.approx(V.value(X)[3], rel=1e-15)


def test_algebra():
    V, W = DoubleWell(), GaussianMixture.default()
    np.testing.assert_allclose((V + W).value(X), V.value(X) + W.value(X), rtol=1e-14)
    np.testing.assert_allclose((3.0 * V - W).grad(X), 3.0 * V.grad(X) - W.grad(X), rtol=1e-14)
    np.testing.assert_allclose((-V).value(X), -V.value(X))
    np.testing.assert_allclose(sum([V, W]).value(X), (V + W).value(X))
    with pytest.raises(ValueError, match="dimensions"):
        DoubleWell(dim=3) + DoubleWell(dim=2)


def test_from_callables_finite_difference_accuracy():
    f = lambda Z: np.sin(Z[:, 0]) * np.exp(Z[:, 1])
    g = lambda Z: np.stack([np.cos(Z[:, 0]) * np.exp(Z[:, 1]), np.sin(Z[:, 0]) * np.exp(Z[:, 1])], axis=1)
    approx = FromCallables(f)
    # central differences with h = eps^(1/3): error O(h²) + O(eps/h) ≈ 1e-10 here
    np.testing.assert_allclose(approx.grad(X), g(X), rtol=0, atol=1e-9)
    np.testing.assert_array_equal(FromCallables(f, g).grad(X), g(X))


def test_bad_construction_and_calls():
    with pytest.raises(ValueError, match="A must"):
        Quadratic(np.ones((2, 3)))
    with pytest.raises(ValueError, match="b must"):
        Quadratic(np.eye(2), b=[1.0])
    with pytest.raises(ValueError, match="a must"):
        Linear([np.nan, 1.0])
    with pytest.raises(TypeError, match="value"):
        FromCallables(3.0)
    with pytest.raises(ValueError, match="dimension"):
        DoubleWell(dim=2).value(np.zeros((3, 3)))
    with pytest.raises(ValueError, match="widths"):
        GaussianMixture([[0.0, 0.0]], widths=0.0)
