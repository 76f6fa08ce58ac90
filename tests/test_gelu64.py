"""The numba engine's float64 GELU (Cody's erf/erfc, docs/precision.md "GELU in float64").

Bounds (u = 2⁻⁵³, derived in docs/precision.md): the kernel's Φ̃ satisfies
|Φ̃(s) − Φ(s)| ≤ 45u Φ(s) + 2⁻¹⁰⁷⁴ for every s (relative accuracy in the lower tail, one
subnormal ulp below 2⁻¹⁰²²); scipy's ``ndtr`` rounds s/√2 and its square before ``exp``, so
its own relative error is ≤ (2.5 s² + 16)u, and the numpy engine's φ ≤ (0.5 s² + 4)u.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import ndtr

from wflow.adversarial import load_model, make_two_moons
from wflow.adversarial import mlp as mlp_mod
from wflow.adversarial.mlp import _act_and_deriv_inplace

mp = pytest.importorskip("mpmath")
if mlp_mod._numba_kernels() is None:
    pytest.skip("numba is not installed", allow_module_level=True)
from wflow.adversarial import _numba as nb  # noqa: E402

U = 2.0 ** -53
TINY = 2.0 ** -1074
PHI_ULPS = 45  # the derived relative bound of the kernel's Φ, in units of u (docs/precision.md)
EXTREMES = np.array([0.0, -0.0, TINY, -TINY, 1e-300, -1e-300, 1e-17, -1e-17, 1e-8, -1e-8,
                     0.6629126073623883, -0.6629126073623883,  # y = 0.46875 (region edge)
                     5.656854249492381, -5.656854249492381,  # y = 4 (region edge)
                     37.5, -37.5, -38.0, -38.4, -38.6, 39.9, -39.9, 40.0, -40.0, 41.0, -41.0,
                     1e300, -1e300, np.finfo(float).max, -np.finfo(float).max])


def grid() -> np.ndarray:
    """A dense grid of [−40, 40] (step 1/200, plus random points) and the extremes."""
    rng = np.random.default_rng(16)
    return np.concatenate([np.linspace(-40.0, 40.0, 16001), rng.uniform(-40, 40, 4000),
                           rng.uniform(-8, 8, 2000), EXTREMES])


def phi_exact(s: np.ndarray) -> np.ndarray:
    """Φ(s) = ½ erfc(−s/√2) with 160-bit mpmath, rounded to float64 (|s| > 45: Φ(−45) < 10⁻⁴⁴⁰
    rounds to 0, and 1 − Φ(45) to 1)."""
    with mp.workprec(160):
        return np.array([float(mp.erfc(-mp.mpf(v) / mp.sqrt(2)) / 2) if abs(v) <= 45 else float(v > 0)
                         for v in s])


@pytest.fixture(scope="module")
def reference():
    s = grid()
    return s, phi_exact(s)


def ndtr_of(phi_parts):
    """An ``ndtr64``-like kernel around another ``phi_parts`` (for the mutants)."""
    from numba import njit

    @njit
    def ndtr(x, out):
        for i in range(x.shape[0]):
            out[i] = phi_parts(x[i])[0]

    return ndtr


def kernel_phi(s: np.ndarray, kernel=None) -> np.ndarray:
    out = np.empty_like(s)
    (kernel or nb.ndtr64)(s, out)
    return out


def within_phi_bound(phi, ref, ulps=PHI_ULPS):
    # ref is Φ rounded to float64: its own half ulp is inside TINY / the relative term
    return np.abs(phi - ref) <= ulps * U * ref + TINY


def test_phi64_within_derived_bound_of_exact_phi(reference):
    s, ref = reference
    phi = kernel_phi(s)
    assert np.all(within_phi_bound(phi, ref))
    # relative accuracy in the deep lower tail (where 1 − Φ(|s|) would be 0 or pure round-off)
    tail = (s < -5) & (ref >= 2.0 ** -1022)
    assert np.all(np.abs(phi[tail] - ref[tail]) <= PHI_ULPS * U * ref[tail])
    assert np.all(phi[s > 9] == 1.0) and np.all(phi[s < -38.5] <= 2.0 ** -1070)


def test_phi64_special_values():
    x = np.array([0.0, -0.0, TINY, -TINY, np.inf, -np.inf, np.nan, 1e300, -1e300])
    phi = kernel_phi(x)
    np.testing.assert_array_equal(phi[:4], 0.5)
    assert phi[4] == 1.0 and phi[5] == 0.0 and np.isnan(phi[6]) and phi[7] == 1.0 and phi[8] == 0.0
    assert not np.signbit(phi[5])


def test_phi64_against_scipy_ndtr(reference):
    """Within the sum of both bounds; ndtr's grows like s²u in the tail (ours does not)."""
    s, ref = reference
    phi, nd = kernel_phi(s), ndtr(s)
    normal = (nd >= 2.0 ** -1022) & (np.abs(s) <= 40)  # ndtr flushes Φ(s) to 0 below s ≈ −37.7
    bound = (PHI_ULPS + 2.5 * s[normal] ** 2 + 16) * U * ref[normal]
    assert np.all(np.abs(phi[normal] - nd[normal]) <= bound)
    near = normal & (np.abs(s) <= 1.0)  # where ndtr itself is within a few u, so are we
    assert np.all(np.abs(phi[near] - nd[near]) <= (PHI_ULPS + 8) * U * ref[near])
    # and ours is the accurate one where they differ most
    worst = np.argmax(np.where(normal, np.abs(phi - nd) / np.maximum(ref, TINY), 0))
    assert abs(phi[worst] - ref[worst]) < abs(nd[worst] - ref[worst])


def test_bias_gelu64_against_numpy_engine(reference):
    """a = xΦ and a′ = Φ + xφ from the fused bias kernel vs the numpy engine (ndtr + exp)."""
    s = reference[0]
    s = s[np.abs(s) <= 40]
    b = np.linspace(-0.75, 0.75, s.size)
    x = s + b  # exactly the kernel's x (one IEEE addition)
    a, d = s.copy(), np.empty_like(s)
    nb.bias_gelu64(a, b, d)
    a_np, d_np = _act_and_deriv_inplace("gelu", x.copy(), np.empty_like(x))
    phi = ndtr(x)
    pdf = np.exp(-0.5 * x * x) / np.sqrt(2 * np.pi)
    # |Φ̃ − Φ_ndtr|; ndtr flushes Φ(x) < 2⁻¹⁰²² to 0 below x ≈ −37.7 (absolute error < 2⁻¹⁰²²)
    e_phi = (PHI_ULPS + 2.5 * x ** 2 + 16) * U * phi + np.where(phi == 0, 2.0 ** -1022, TINY)
    e_pdf = (0.5 * x ** 2 + 4 + 5) * U * pdf + TINY  # numpy's φ, plus ours (exp ≤ 4u, 1 product)
    assert np.all(np.abs(a - a_np) <= np.abs(x) * e_phi + 2 * U * np.abs(a_np))
    bound_d = e_phi + np.abs(x) * e_pdf + 3 * U * (phi + np.abs(x) * pdf)
    assert np.all(np.abs(d - d_np) <= bound_d)
    a2 = s.copy()
    nb.bias_gelu64_forward(a2, b)
    np.testing.assert_array_equal(a2, a)


def test_mutant_coefficient_violates_the_bound(reference):
    """A Cody coefficient of each region perturbed (relative 1e-12; R₃, a correction term of
    relative size ≤ 0.02 for y > 4, by 1e-9) breaks the 45u bound."""
    s, ref = reference
    for name, i, rel in (("a", 2, 1e-12), ("c", 3, 1e-12), ("q", 1, 1e-9)):
        coef = list(getattr(nb, "CODY_" + name.upper()))
        coef[i] *= 1 + rel
        mutant = ndtr_of(nb.make_phi64(**{name: tuple(coef)}))
        assert not np.all(within_phi_bound(kernel_phi(s, mutant), ref)), name


@pytest.fixture
def engine_reset():
    yield
    mlp_mod.kernel_engine("auto")


def test_gelu_model_float64_engines_agree(engine_reset):
    """Logits and input gradients of the float64 GELU model, numba vs numpy engine: within the
    first-order propagation of the per-activation bounds through |W| (forward: Δs, then
    |Δa| ≤ |a′||Δs| + e_a; backward: |Δa′| ≤ e_d + max|a″| |Δs|, max|a″| = 2φ(0) < 0.8), × 2
    for the products' own round-off and second-order terms."""
    m = load_model("two_moons_gelu")
    X, _ = make_two_moons(2000, 0.15, seed=3)
    mlp_mod.kernel_engine("numpy")
    z0, g0 = m._logits_and_grad(X)
    mlp_mod.kernel_engine("numba")
    z1, g1 = m._logits_and_grad(X)
    h, dh = X, np.zeros_like(X)
    dprime, ddprime = [], []
    for W, bias in zip(m.weights[:-1], m.biases[:-1]):
        s = h @ W + bias
        phi = ndtr(s)
        pdf = np.exp(-0.5 * s * s) / np.sqrt(2 * np.pi)
        e_phi = (PHI_ULPS + 2.5 * s ** 2 + 16) * U * phi + TINY
        e_pdf = (0.5 * s ** 2 + 9) * U * pdf + TINY
        ds = dh @ np.abs(W) + 2 * U * (np.abs(h) @ np.abs(W) + np.abs(bias))
        d = phi + s * pdf
        dh = np.abs(d) * ds + np.abs(s) * e_phi + 2 * U * np.abs(s * phi)
        dprime.append(d)
        ddprime.append(e_phi + np.abs(s) * e_pdf + 3 * U * (phi + np.abs(s) * pdf) + 0.8 * ds)
        h = s * phi
    w = m.weights[-1][:, 0]
    dz = dh @ np.abs(w)
    assert np.all(np.abs(z1 - z0) <= 2 * dz + 4 * U * np.abs(z0))
    assert np.any(z1 != z0)  # the numba engine is really used for float64 GELU
    delta, ddelta = dprime[-1] * w, ddprime[-1] * np.abs(w)
    for i in range(len(dprime) - 1, 0, -1):
        WT = m.weights[i].T
        back = delta @ WT
        ddelta = (ddelta @ np.abs(WT) + 2 * U * (np.abs(delta) @ np.abs(WT))) * np.abs(dprime[i - 1]) \
            + np.abs(back) * ddprime[i - 1]
        delta = back * dprime[i - 1]
    W0T = m.weights[0].T
    dg = ddelta @ np.abs(W0T) + 2 * U * (np.abs(delta) @ np.abs(W0T))
    np.testing.assert_allclose(delta @ W0T, g0, rtol=1e-12, atol=1e-12)  # the reference pass
    assert np.all(np.abs(g1 - g0) <= 2 * dg + 4 * U * np.abs(g0))
