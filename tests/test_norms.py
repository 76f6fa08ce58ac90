"""Norms, dual norms, steepest directions and ball projections."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from wflow.norms import dual_exponent, dual_norm, norm, parse_norm, project_ball, steepest

P_VALUES = [1.0, 1.5, 2.0, 3.0, 7.0, np.inf]
finite = st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False, width=64)
# vectors with many exact zeros and ties, the set-valued cases
tied = st.sampled_from([0.0, 1.0, -1.0, 2.5, -2.5])
vec = st.one_of(
    arrays(np.float64, st.tuples(st.integers(1, 5), st.integers(1, 6)), elements=finite),
    arrays(np.float64, st.tuples(st.integers(1, 5), st.integers(1, 6)), elements=tied),
)


def test_parse_norm_names_and_numbers():
    assert parse_norm("l1") == 1.0 and parse_norm("L2") == 2.0 and parse_norm("linf") == np.inf
    assert parse_norm(3) == 3.0 and parse_norm(np.inf) == np.inf
    with pytest.raises(ValueError, match="norm"):
        parse_norm(0.5)
    with pytest.raises(ValueError, match="norm"):
        parse_norm("l7x")
    with pytest.raises(TypeError, match="norm"):
        parse_norm([2])
    with pytest.raises(ValueError):
        parse_norm(float("nan"))


def test_norm_closed_forms():
    x = np.array([[3.0, -4.0, 0.0]])
    assert norm(x, 1)[0] == 7.0
    assert norm(x, 2)[0] == 5.0
    assert norm(x, "linf")[0] == 4.0
    assert norm(x, 3)[0] == pytest.approx((27 + 64) ** (1 / 3), rel=1e-15)
    # large p: no overflow, tends to the max norm
    assert norm(np.array([1e300, 1e300]), 50) == pytest.approx(1e300 * 2 ** (1 / 50), rel=1e-14)
    assert dual_exponent(1) == np.inf and dual_exponent(np.inf) == 1.0 and dual_exponent(4) == pytest.approx(4 / 3)


@settings(max_examples=150, deadline=None)
@given(xi=vec, p=st.sampled_from(P_VALUES), random=st.booleans(), seed=st.integers(0, 2**32 - 1))
def test_steepest_is_in_subdifferential(xi, p, random, seed):
    """‖v‖_p ≤ 1 and ⟨ξ, v⟩ = ‖ξ‖_* to 1e-12 (relative to the size of ξ)."""
    v = steepest(xi, p, selection="random" if random else "canonical", rng=seed)
    assert v.shape == xi.shape
    assert np.all(norm(v, p) <= 1 + 1e-12)
    scale = np.maximum(1.0, np.abs(xi).max(axis=-1))
    assert np.all(np.abs(np.einsum("ij,ij->i", xi, v) - dual_norm(xi, p)) <= 1e-12 * scale)


def test_steepest_canonical_selection_conventions():
    xi = np.array([[0.0, 2.0, -2.0], [0.0, 0.0, 0.0]])
    assert np.array_equal(steepest(xi, np.inf), [[0.0, 1.0, -1.0], [0.0, 0.0, 0.0]])
    assert np.array_equal(steepest(xi, 1), [[0.0, 1.0, 0.0], [0.0, 0.0, 0.0]])  # lowest index of the tie
    assert np.array_equal(steepest(xi[1:], 2), [[0.0, 0.0, 0.0]])
    np.testing.assert_allclose(steepest(np.array([[3.0, 4.0]]), 2), [[0.6, 0.8]], rtol=1e-15)


def test_random_selection_is_seeded_and_fills_zeros():
    xi = np.zeros((200, 2))
    xi[:, 0] = 1.0
    a = steepest(xi, np.inf, selection="random", rng=7)
    b = steepest(xi, np.inf, selection="random", rng=np.random.default_rng(7))
    assert np.array_equal(a, b)
    assert np.all(a[:, 0] == 1.0) and np.all(np.abs(a[:, 1]) <= 1)
    assert a[:, 1].std() > 0.3  # uniform on [-1, 1] has std 0.577
    # ℓ1 ties: both maximizers get picked
    picks = steepest(np.tile([[1.0, -1.0]], (100, 1)), 1, selection="random", rng=1)
    assert {tuple(r) for r in picks} == {(1.0, 0.0), (0.0, -1.0)}
    with pytest.raises(ValueError, match="selection"):
        steepest(xi, 2, selection="best")


@settings(max_examples=100, deadline=None)
@given(
    x=arrays(np.float64, st.tuples(st.integers(1, 4), st.integers(1, 5)), elements=finite),
    r=st.floats(0, 50),
    p=st.sampled_from(P_VALUES),
    seed=st.integers(0, 1000),
)
def test_projection_is_the_euclidean_projection(x, r, p, seed):
    """P(x) lies in the ball, fixes points inside, and satisfies ⟨x − P(x), z − P(x)⟩ ≤ 0 for z in the ball."""
    c = np.linspace(-1, 1, x.shape[1])
    z0 = project_ball(x, c, r, p)
    tol = 1e-9 * max(1.0, r, np.abs(x).max())
    assert np.all(norm(z0 - c, p) <= r + tol)
    assert np.allclose(project_ball(z0, c, r, p), z0, atol=tol)
    rng = np.random.default_rng(seed)
    for _ in range(5):
        g = rng.standard_normal(x.shape)
        nz = norm(g, p)[:, None]
        z = c + r * rng.random((x.shape[0], 1)) * g / np.where(nz > 0, nz, 1)
        inner = np.einsum("ij,ij->i", x - z0, z - z0)
        assert np.all(inner <= 1e-7 * max(1.0, np.abs(x).max()) ** 2)


def test_projection_closed_forms():
    x = np.array([[2.0, -0.5, 3.0]])
    np.testing.assert_array_equal(project_ball(x, 0, 1.0, np.inf), [[1.0, -0.5, 1.0]])
    np.testing.assert_allclose(project_ball(x, 0, 1.0, 2), x / np.linalg.norm(x), rtol=1e-15)
    # ℓ1: soft threshold with θ solving Σ max(|x_i| − θ, 0) = 1 → θ = 2 on (2, 0.5, 3)
    np.testing.assert_allclose(project_ball(x, 0, 1.0, 1), [[0.0, 0.0, 1.0]], atol=1e-15)
    with pytest.raises(ValueError, match="radius"):
        project_ball(x, 0, -1.0, 2)


def test_norm_value_object():
    from wflow.norms import Norm, as_norm

    n = as_norm("l2")
    assert n == Norm(2) == as_norm(2.0) and hash(n) == hash(Norm(2.0))
    assert as_norm(n) is n and str(n) == "l2"
    assert as_norm("linf").q == 1.0 and as_norm(1).q == np.inf and as_norm(1.5).q == pytest.approx(3.0)
    assert as_norm(3).name == "l3"
    x = np.array([[3.0, -4.0], [1.0, 1.0]])
    np.testing.assert_allclose(n.norm(x), [5.0, np.sqrt(2)])
    np.testing.assert_allclose(as_norm("linf").dual(x), [7.0, 2.0])
    np.testing.assert_allclose(n.steepest(x[:1]), [[0.6, -0.8]])
    np.testing.assert_allclose(as_norm("linf").project_ball(x, 0.0, 1.0), [[1.0, -1.0], [1.0, 1.0]])
    # module functions accept a Norm where they accept a name
    assert norm(x, Norm(1)).tolist() == [7.0, 2.0]
    with pytest.raises(ValueError, match="norm"):
        as_norm("l0")
    with pytest.raises(ValueError, match="metric"):
        as_norm(0.5, name="metric")
    with pytest.raises(TypeError, match="norm"):
        as_norm(None)
