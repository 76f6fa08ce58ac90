"""1-D exact W∞: the lean quantile coupling against the previous formula and a brute-force LP.

``winf_1d`` was rewritten to touch less memory (one binary search per breakpoint of ν, snapping
only for candidates, in-place compaction); its output must be bit for bit that of the previous
formula, kept here verbatim as the reference, on inputs that exercise ties, duplicated points,
exactly shared breakpoints and breakpoints that agree only up to round-off (snapping).
"""

from __future__ import annotations

from unittest.mock import patch

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_transport import check_coupling, lp_winf

import wflow.transport.solvers as S
from wflow.measures import ParticleMeasure
from wflow.transport import solve_winf
from wflow.transport.geometry import _pair_dist
from wflow.transport.problem import MASS_TOL, uniform
from wflow.transport.solvers import _compact, winf_1d

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def reference_winf_1d(x, a, y, b, mass_tol=MASS_TOL):
    """The previous implementation (commit cb996d3), verbatim but for the tolerance argument."""
    ox = np.argsort(x)
    oy = np.argsort(y)
    if len(x) == len(y) and uniform(a) and uniform(b):
        return ox, oy, a
    cx = S._cumulative(a[ox])
    cy = S._cumulative(b[oy])
    k = np.clip(np.searchsorted(cx, cy), 0, len(cx) - 1)
    km = np.clip(k - 1, 0, len(cx) - 1)
    near = np.where(np.abs(cx[k] - cy) <= np.abs(cx[km] - cy), k, km)
    close = np.abs(cx[near] - cy) <= mass_tol
    cy = np.where(close, cx[near], cy)
    cy = np.maximum.accumulate(cy)
    n, m = len(cx), len(cy)
    v = np.empty(n + m)
    isx = np.zeros(n + m, dtype=bool)
    px = np.searchsorted(cy, cx, side="left") + np.arange(n)
    v[px] = cx
    isx[px] = True
    v[np.searchsorted(cx, cy, side="right") + np.arange(m)] = cy
    first = np.concatenate([[True], v[1:] != v[:-1]])
    nx_before = np.cumsum(isx) - isx
    ny_before = np.arange(len(v)) - nx_before
    br = v[first]
    mass = np.diff(br, prepend=0.0)
    i = np.minimum(nx_before[first], len(cx) - 1)
    j = np.minimum(ny_before[first], len(cy) - 1)
    keep = mass > 0
    i, j, mass = i[keep], j[keep], mass[keep]
    return ox[i], oy[j], mass


def assert_bitwise(got, ref):
    for g, r in zip(got, ref):
        assert g.dtype == r.dtype and g.shape == r.shape
        assert np.array_equal(g, r), (g, r)


@st.composite
def one_d_pairs(draw):
    """(x, a, y, b): ties, duplicated points, shared and round-off-close breakpoints."""
    seed = draw(st.integers(0, 2**32 - 1))
    kind = draw(st.sampled_from(["normal", "ties", "integer", "split", "perturbed", "tiny", "uniform"]))
    n = draw(st.integers(1, 40))
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 5, n).astype(float) if kind != "normal" else rng.standard_normal(n)
    a = rng.random(n)
    if kind == "integer":  # exact shared breakpoints k/N on both sides
        a = rng.integers(1, 4, n).astype(float)
    if kind == "tiny":  # masses below the cumulative sums' resolution: repeated breakpoints
        a[rng.random(n) < 0.4] = 1e-17
    a /= a.sum()
    if kind == "split":  # every atom of μ split in two: breakpoints agree up to round-off
        f = rng.random(n)
        b = np.ravel(np.column_stack([a * f, a * (1 - f)]))
        y = np.repeat(x, 2) + rng.integers(-1, 2, 2 * n)
    elif kind == "perturbed":  # ν's masses within a few 1e-13 of μ's: snapping
        b = a * (1 + rng.choice([-1.0, 1.0], n) * rng.random(n) * 3e-13)
        y = x[::-1] + rng.integers(0, 2, n)
    elif kind == "uniform":
        m = draw(st.sampled_from([n, n + 1, 2 * n]))
        a = np.full(n, 1 / n)
        b = np.full(m, 1 / m)
        y = rng.integers(0, 5, m).astype(float)
    else:
        m = draw(st.integers(1, 40))
        b = rng.integers(1, 4, m).astype(float) if kind == "integer" else rng.random(m)
        y = rng.integers(0, 5, m).astype(float) if kind != "normal" else rng.standard_normal(m)
    return x, a, y, b / b.sum()


@FAST
@given(one_d_pairs())
def test_winf_1d_bit_for_bit_equal_to_previous_formula(pair):
    x, a, y, b = pair
    assert_bitwise(winf_1d(x, a, y, b), reference_winf_1d(x, a, y, b))


@FAST
@given(one_d_pairs())
def test_winf_1d_many_repeated_breakpoints_compact_by_copy(pair):
    # _INPLACE_DROPS = 0 forces the boolean-index path of _compact: same result
    x, a, y, b = pair
    with patch.object(S, "_INPLACE_DROPS", 0):
        got = winf_1d(x, a, y, b)
    assert_bitwise(got, reference_winf_1d(x, a, y, b))


def test_winf_1d_mid_size_with_many_shared_breakpoints():
    # integer weights on both sides: thousands of shared breakpoints (copy path of _compact),
    # heavy ties in the points; and random weights (in-place path: cx[-1] = cy[-1] = 1)
    rng = np.random.default_rng(7)
    for n, m, integer in [(5000, 4000, True), (20000, 30000, False), (3, 50000, False)]:
        x, y = rng.integers(0, 50, n).astype(float), rng.integers(0, 50, m).astype(float)
        a = rng.integers(1, 3, n).astype(float) if integer else rng.random(n)
        b = rng.integers(1, 3, m).astype(float) if integer else rng.random(m)
        a, b = a / a.sum(), b / b.sum()
        assert_bitwise(winf_1d(x, a, y, b), reference_winf_1d(x, a, y, b))


def test_snapping_is_exercised_mutant():
    # the "perturbed" inputs do need the MASS_TOL snap: without it the plan differs from the
    # reference (so the equality test above sees the snapping code), and the same mutant of
    # the reference agrees with the mutant of winf_1d
    rng = np.random.default_rng(3)
    n = 30
    x = rng.standard_normal(n)
    a = rng.random(n)
    a /= a.sum()
    b = a * (1 + rng.choice([-1.0, 1.0], n) * 3e-13)
    b /= b.sum()
    y = x + 0.5
    ref = reference_winf_1d(x, a, y, b)
    with patch.object(S, "MASS_TOL", 0.0):
        mutant = winf_1d(x, a, y, b)
    assert len(mutant[0]) > len(ref[0])  # slivers of round-off mass appear
    assert_bitwise(mutant, reference_winf_1d(x, a, y, b, mass_tol=0.0))


@settings(max_examples=40, deadline=None)
@given(one_d_pairs())
def test_one_d_winf_equals_lp_with_ties_and_duplicates(pair):
    x, a, y, b = pair
    mu, nu = ParticleMeasure(x[:, None], a), ParticleMeasure(y[:, None], b)
    res = solve_winf(mu, nu)
    assert res.method == "1d-quantiles"
    assert res.value == lp_winf(x[:, None], a, y[:, None], b, "linf")
    assert res.lower_bound == res.value == res.threshold
    check_coupling(res.coupling, mu, nu, "linf")


def test_zero_weight_atoms_map_back_to_input_indices():
    # a zero-weight atom is not in the support: the plan skips it and indexes the atoms as passed
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((50, 1)), rng.standard_normal((40, 1))
    a, b = rng.random(50), rng.random(40)
    a, b = a / a.sum(), b / b.sum()
    full = solve_winf(ParticleMeasure(x, a), ParticleMeasure(y, b)).coupling
    x0 = np.insert(x, 7, 100.0, axis=0)
    a0 = np.insert(a, 7, 0.0)
    c = solve_winf(ParticleMeasure(x0, a0), ParticleMeasure(y, b)).coupling
    assert np.array_equal(c.rows, np.where(full.rows >= 7, full.rows + 1, full.rows))
    assert np.array_equal(c.cols, full.cols) and np.array_equal(c.mass, full.mass)
    assert c.value == full.value


@pytest.mark.parametrize("uniform_", [True, False])
def test_coupling_owns_writable_arrays(uniform_):
    # the full-support path passes the measures' own (read-only) arrays to the solver; the
    # coupling must not share them
    rng = np.random.default_rng(2)
    n = 20
    w = None if uniform_ else rng.random(n)
    mu = ParticleMeasure(rng.standard_normal((n, 1)), w, normalize=not uniform_)
    nu = ParticleMeasure(rng.standard_normal((n, 1)))
    c = solve_winf(mu, nu).coupling
    for arr in (c.rows, c.cols, c.mass):
        assert arr.flags.writeable
        assert not np.shares_memory(arr, mu.weights) and not np.shares_memory(arr, nu.weights)
        assert not np.shares_memory(arr, mu.points) and not np.shares_memory(arr, nu.points)


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 60), st.sampled_from([0.0, 0.05, 0.5, 1.0]), st.integers(0, 2**32 - 1))
def test_compact_equals_boolean_indexing(n, p_drop, seed):
    rng = np.random.default_rng(seed)
    keep = rng.random(n) >= p_drop
    A, B = rng.standard_normal(n), rng.integers(0, 9, n)
    expected = A[keep].copy(), B[keep].copy()
    got = _compact((A, B), keep)
    assert all(np.array_equal(g, e) for g, e in zip(got, expected))


@pytest.mark.parametrize("d", [1, 2, 5, 20])
@pytest.mark.parametrize("q", [1.0, 2.0, 3.0, np.inf])
def test_pair_dist_bitwise_equal_to_fancy_indexing_formula(d, q):
    # _pair_dist gathers columns with take and reuses its temporaries; the distances must be
    # those of the previous expression X[ii, k] − Y[jj, k], bit for bit (tiny, huge and
    # ordinary magnitudes, zero differences included)
    rng = np.random.default_rng(int(d * 10 + min(q, 9)))
    n, m, k = 300, 200, 5000
    X = rng.standard_normal((n, d)) * 10.0 ** rng.integers(-200, 200, (n, 1))
    Y = rng.standard_normal((m, d)) * 10.0 ** rng.integers(-200, 200, (m, 1))
    Y[:50] = X[:50]
    ii, jj = rng.integers(0, n, k), rng.integers(0, m, k)
    ii[:100] %= 50
    jj[:100] = ii[:100]  # Y[:50] = X[:50]: zero distances
    got = _pair_dist(X, Y, ii, jj, q)
    if d <= 16:
        from wflow.transport.geometry import _dist_from_columns

        expected = _dist_from_columns(lambda c: X[ii, c] - Y[jj, c], d, q)
    else:
        from wflow.transport.geometry import _dist_rows

        expected = _dist_rows(X[ii] - Y[jj], q)
    assert np.array_equal(got, expected)
    assert np.all(got[:100] == 0.0)
