"""numba kernels for the MLP hot path (numba is a dependency of wflow on the Python versions it
supports; the pure-numpy path remains, ``WFLOW_KERNELS=numpy``).

Only imported when numba is importable and the engine is "numba" or "auto"
(:func:`wflow.adversarial.mlp.kernel_engine`), at the first kernel call; ``import wflow``
never loads it. The activation kernels compute exactly the formulas of the numpy path
(docs/precision.md, "GELU in float32") in one fused, SIMD-vectorized loop instead of ~23 numpy
passes:

    Φ(−|s|) = φ(s) · t · √(π/2) P(t),  t = 1/(1 + p|s|/√2)   (Abramowitz & Stegun 7.1.26),
    Φ(s) = ½ + (½ − Φ(−|s|)) for s ≥ 0,  a(s) = s Φ(s),  a′(s) = Φ(s) + s φ(s),

with e^{−s²/2} evaluated once by Cody–Waite reduction and Cephes' ``expf`` polynomial
(relative error ≤ 2 ulp on the reduced range), 2^k built from its bit pattern. Compiled with
``error_model="numpy"`` (no division-by-zero branch, so the loop vectorizes), FMA contraction
allowed (it only removes roundings); no other fast-math flag, so the error analysis holds as written.
Float64 GELU uses Cody's erf/erfc approximations instead (:func:`make_phi64`; docs/precision.md,
"GELU in float64"); fused bias + ReLU serves both dtypes. :func:`hidden`, :func:`logits_grad`
and :func:`backward` run a block's whole forward and backward pass around these kernels in one
call that releases the GIL. Every kernel is cached on disk by numba (``cache=True``).
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic, overload

_F = np.float32
_P = _F(0.3275911 / np.sqrt(2.0))
# A&S coefficients times √(π/2) (Φ(−|s|) = φ t √(π/2) P(t)) times 1/√(2π) (φ = e/√(2π)): a_i / 2
_A0, _A1, _A2, _A3, _A4 = (_F(a / 2.0) for a in
                           (0.254829592, -0.284496736, 1.421413741, -1.453152027, 1.061405429))
_C = _F(1.0 / np.sqrt(2.0 * np.pi))
_LOG2E = _F(1.4426950408889634)
_LN2_HI = _F(0.693359375)  # 8 significant bits: k · _LN2_HI is exact for |k| ≤ 127
_LN2_LO = _F(-2.12194440e-4)
_ROUND = _F(12582912.0)  # 1.5 · 2^23: (y + _ROUND) − _ROUND rounds y to an integer
_X_MIN = _F(-87.0)  # e^−87 ≈ 1.6e-38 is still normal; below, φ(s) < 1e-37 is negligible
# Cephes' expf polynomial on the reduced range, and the other float32 constants of the kernels
# (module globals, so that numba types them float32: a literal inside a kernel is a float64)
_E0, _E1, _E2, _E3, _E4, _E5 = (_F(c) for c in (1.9875691500e-4, 1.3981999507e-3, 8.3334519073e-3,
                                                 4.1665795894e-2, 1.6666665459e-1, 5.0000001201e-1))
_ZERO, _HALF, _ONE, _MINUS_HALF = _F(0.0), _F(0.5), _F(1.0), _F(-0.5)
_I127, _I23 = np.int32(127), np.int32(23)
_FLAGS = {"contract"}  # FMA contraction only: no reassociation, no approximate division or functions


def _bitcast(src, dst, doc: str):
    """An intrinsic reinterpreting the bits of a ``src`` value as a ``dst`` (numba types of
    equal width; vectorizes to a no-op)."""
    llvm_type = {types.float32: ir.FloatType(), types.float64: ir.DoubleType(),
                 types.int32: ir.IntType(32), types.int64: ir.IntType(64)}[dst]

    def cast(typingctx, x):
        def codegen(context, builder, signature, args):
            return builder.bitcast(args[0], llvm_type)

        return dst(src), codegen

    cast.__doc__ = doc
    return intrinsic(cast)


_f32_from_bits = _bitcast(types.int32, types.float32, "Reinterpret an int32 bit pattern as a float32.")


@njit(fastmath=_FLAGS, error_model="numpy", nogil=True, inline="always")
def _exp_nonpositive(x):
    """e^x for float32 x ≤ 0 (x < −87 is treated as −87)."""
    x = x if x > _X_MIN else _X_MIN
    k = (x * _LOG2E + _ROUND) - _ROUND
    r = (x - k * _LN2_HI) - k * _LN2_LO
    p = ((((_E0 * r + _E1) * r + _E2) * r + _E3) * r + _E4) * r + _E5
    p = p * (r * r) + r + _ONE
    return p * _f32_from_bits((np.int32(k) + _I127) << _I23)


@njit(fastmath=_FLAGS, error_model="numpy", nogil=True, inline="always")
def _phi_parts(x):
    """(Φ(x), e^{−x²/2}) for float32 x."""
    e = _exp_nonpositive(_MINUS_HALF * x * x)
    t = _ONE / (_ONE + _P * abs(x))
    q = e * (t * (_A0 + t * (_A1 + t * (_A2 + t * (_A3 + t * _A4)))))  # Φ(−|x|)
    cdf = _HALF + (_HALF - q) if x >= _ZERO else q
    return cdf, e


@njit(fastmath=_FLAGS, error_model="numpy", nogil=True, cache=True)
def gelu32_and_deriv(s, d):
    """s ← s Φ(s) and d ← Φ(s) + s φ(s), for 1-D float32 arrays of equal length."""
    for i in range(s.shape[0]):
        x = s[i]
        cdf, e = _phi_parts(x)
        d[i] = cdf + x * (_C * e)
        s[i] = x * cdf


@njit(fastmath=_FLAGS, error_model="numpy", nogil=True, cache=True)
def gelu32(s):
    """s ← s Φ(s) for a 1-D float32 array."""
    for i in range(s.shape[0]):
        x = s[i]
        cdf, _ = _phi_parts(x)
        s[i] = x * cdf


# -- fused bias add + activation over a layer's flat (n·w,) pre-activations and tiled biases --
@njit(error_model="numpy", nogil=True, cache=True)
def bias_relu(s, b, d):
    """s ← max(s + b, 0) and d ← 1{s + b > 0} (float32 or float64; the numpy path's values)."""
    for i in range(s.shape[0]):
        x = s[i] + b[i]
        pos = x > 0
        d[i] = pos
        s[i] = x * pos  # x · 1{x > 0} in x's precision: −0.0 and NaN as numpy's product


@njit(error_model="numpy", nogil=True, cache=True)
def bias_relu_forward(s, b):
    """s ← (s + b) 1{s + b > 0}."""
    for i in range(s.shape[0]):
        x = s[i] + b[i]
        s[i] = x * (x > 0)


@njit(fastmath=_FLAGS, error_model="numpy", nogil=True, cache=True)
def bias_gelu32(s, b, d):
    """s ← a(s + b), d ← a′(s + b) (float32 GELU, as :func:`gelu32_and_deriv`)."""
    for i in range(s.shape[0]):
        x = s[i] + b[i]
        cdf, e = _phi_parts(x)
        d[i] = cdf + x * (_C * e)
        s[i] = x * cdf


@njit(fastmath=_FLAGS, error_model="numpy", nogil=True, cache=True)
def bias_gelu32_forward(s, b):
    """s ← a(s + b) (float32 GELU)."""
    for i in range(s.shape[0]):
        x = s[i] + b[i]
        cdf, _ = _phi_parts(x)
        s[i] = x * cdf


# -- float64 GELU: Φ by W. J. Cody's rational Chebyshev approximations of erf/erfc -----------
# (Math. Comp. 23 (1969) 631–637; the coefficients as published in Cody's SPECFUN routine
# CALERF, "at least 18 significant decimal digits"), evaluated branch-free (docs/precision.md):
#   y ≤ 0.46875:      erf(y) = y R₁(y²)
#   0.46875 < y ≤ 4:  erfc(y) = e^{−y²} R₂(y)
#   y > 4:            erfc(y) = e^{−y²} (1/√π − w⁻¹ R₃(w⁻¹)) / y,  w = y²
# with y = |s|/√2. e^{−y²} = e^{−s²/2} is computed once from the exact square s² = h + l (FMA)
# and shared with φ, so the lower tail Φ(−|s|) = ½ erfc(y) keeps its relative accuracy.
#: (a₀…a₄, b₀…b₃): R₁ = (((a₄w + a₀)w + a₁)w + a₂)w + a₃) / ((((w + b₀)w + b₁)w + b₂)w + b₃)
CODY_A = (3.16112374387056560e00, 1.13864154151050156e02, 3.77485237685302021e02,
          3.20937758913846947e03, 1.85777706184603153e-1)
CODY_B = (2.36012909523441209e01, 2.44024637934444173e02, 1.28261652607737228e03,
          2.84423683343917062e03)
#: (c₀…c₈, d₀…d₇): R₂ = (c₈y⁸ + c₀y⁷ + … + c₆y + c₇) / (y⁸ + d₀y⁷ + … + d₆y + d₇)
CODY_C = (5.64188496988670089e-1, 8.88314979438837594e00, 6.61191906371416295e01,
          2.98635138197400131e02, 8.81952221241769090e02, 1.71204761263407058e03,
          2.05107837782607147e03, 1.23033935479799725e03, 2.15311535474403846e-8)
CODY_D = (1.57449261107098347e01, 1.17693950891312499e02, 5.37181101862009858e02,
          1.62138957456669019e03, 3.29079923573345963e03, 4.36261909014324716e03,
          3.43936767414372164e03, 1.23033935480374942e03)
#: (p₀…p₅, q₀…q₄): R₃(t) = t (p₅t⁵ + p₀t⁴ + … + p₄) / (t⁵ + q₀t⁴ + … + q₄),  t = 1/y²
CODY_P = (3.05326634961232344e-1, 3.60344899949804439e-1, 1.25781726111229246e-1,
          1.60837851487422766e-2, 6.58749161529837803e-4, 1.63153871373020978e-2)
CODY_Q = (2.56852019228982242e00, 1.87295284992346725e00, 5.27905102951428412e-1,
          6.05183413124413191e-2, 2.33520497626869185e-3)
_LN2_HI64 = 6.93147180369123816490e-01  # ln 2 to 32 bits: k · _LN2_HI64 is exact for |k| < 2^21
_LN2_LO64 = 1.90821492927058770002e-10
_LOG2E64 = 1.4426950408889634
_ROUND64 = 6755399441055744.0  # 1.5 · 2^52
_INV_SQRT_PI = 0.56418958354775628695
_INV_SQRT2 = 0.70710678118654752440
_INV_SQRT_2PI64 = 0.39894228040143267794
_S_MAX = 40.0  # Φ(−40) < 2^−1074 and φ(40) = 0 in float64: |s| ≥ 40 gives the limits 0 and 1


@intrinsic
def _fma64(typingctx, a, b, c):
    """a·b + c with one rounding (llvm.fma; vectorizes to vfmadd with AVX2/FMA)."""
    sig = types.float64(types.float64, types.float64, types.float64)

    def codegen(context, builder, signature, args):
        return builder.fma(*args)

    return sig, codegen


_f64_from_bits = _bitcast(types.int64, types.float64, "Reinterpret an int64 bit pattern as a float64.")
_bits64 = _bitcast(types.float64, types.int64, "The bit pattern of a float64, as an int64.")


_ROUND64_BITS = np.int64(np.float64(_ROUND64).view(np.int64))


def make_phi64(a=CODY_A, b=CODY_B, c=CODY_C, d=CODY_D, p=CODY_P, q=CODY_Q):
    """Compile-ready ``phi_parts(x) -> (Φ(x), φ(x))`` (float64) from Cody's coefficients.

    The coefficients are arguments so that a test can build a mutant; the kernels below use the
    published ones.
    """
    a0, a1, a2, a3, a4 = a
    b0, b1, b2, b3 = b
    c0, c1, c2, c3, c4, c5, c6, c7, c8 = c
    d0, d1, d2, d3, d4, d5, d6, d7 = d
    p0, p1, p2, p3, p4, p5 = p
    q0, q1, q2, q3, q4 = q

    @njit(fastmath=_FLAGS, error_model="numpy", nogil=True, inline="always")
    def phi_parts(x):
        ax = abs(x)
        ax = ax if ax < _S_MAX else _S_MAX  # also NaN → _S_MAX (restored at the end)
        # e^{−x²/2} = 2^k e^r: x² = h + l exactly, r = (−h/2 − k ln 2) − l/2 (Cody–Waite)
        h = ax * ax
        lo = _fma64(ax, ax, -h)
        z = -0.5 * h
        k = (z * _LOG2E64 + _ROUND64) - _ROUND64
        r = ((z - k * _LN2_HI64) - k * _LN2_LO64) - 0.5 * lo
        # e^r on |r| ≤ 0.347: Taylor polynomial of degree 13 (truncation < 0.05 ulp)
        e = 1.6059043836821613e-10
        e = e * r + 2.08767569878681e-09
        e = e * r + 2.505210838544172e-08
        e = e * r + 2.755731922398589e-07
        e = e * r + 2.7557319223985893e-06
        e = e * r + 2.48015873015873e-05
        e = e * r + 0.0001984126984126984
        e = e * r + 0.001388888888888889
        e = e * r + 0.008333333333333333
        e = e * r + 0.041666666666666664
        e = e * r + 0.16666666666666666
        e = e * r + 0.5
        e = e * r + 1.0
        e = e * r + 1.0
        # 2^k = 2^k₁ 2^k₂ with k₁, k₂ ≥ −578 normal (k ≥ −1155): the tails round once, into
        # subnormals if need be
        # (in floating point: AVX2 has no vector double → int64 conversion; the integer k is
        # read from the bits of k + 1.5·2^52)
        k1 = (k * 0.5 + _ROUND64) - _ROUND64
        s1 = _f64_from_bits(((_bits64(k1 + _ROUND64) - _ROUND64_BITS) + np.int64(1023)) << np.int64(52))
        s2 = _f64_from_bits(((_bits64((k - k1) + _ROUND64) - _ROUND64_BITS) + np.int64(1023)) << np.int64(52))
        y = ax * _INV_SQRT2
        w = y * y
        # R₁: erf(y) = y n₁/m₁ (y ≤ 0.46875)
        n1 = (((a4 * w + a0) * w + a1) * w + a2) * w + a3
        m1 = (((w + b0) * w + b1) * w + b2) * w + b3
        # R₂: erfc(y) e^{y²} = n₂/m₂
        n2 = (((((((c8 * y + c0) * y + c1) * y + c2) * y + c3) * y + c4) * y + c5) * y + c6) * y + c7
        m2 = (((((((y + d0) * y + d1) * y + d2) * y + d3) * y + d4) * y + d5) * y + d6) * y + d7
        # R₃ in w (numerator and denominator times w⁵, so no 1/y² division):
        # erfc(y) e^{y²} = (1/√π − N/(w M)) / y = (w M/√π − N) / (y w M)
        n3 = ((((p4 * w + p3) * w + p2) * w + p1) * w + p0) * w + p5
        m3 = ((((q4 * w + q3) * w + q2) * w + q1) * w + q0) * w + 1.0
        wm3 = w * m3
        small = y <= 0.46875
        mid = y <= 4.0
        num = (y * n1) if small else (n2 if mid else wm3 * _INV_SQRT_PI - n3)
        den = m1 if small else (m2 if mid else y * wm3)
        ratio = num / den
        tail = (((0.5 * ratio) * e) * s1) * s2  # Φ(−|x|) = ½ erfc(y)
        half = 0.5 * ratio  # ½ erf(y)
        cdf = (0.5 + half if x >= 0.0 else 0.5 - half) if small else (1.0 - tail if x >= 0.0 else tail)
        cdf = cdf if x == x else x  # NaN in, NaN out
        pdf = ((_INV_SQRT_2PI64 * e) * s1) * s2
        return cdf, pdf

    return phi_parts


_phi64 = make_phi64()  # the published coefficients


@njit(fastmath=_FLAGS, error_model="numpy", nogil=True, cache=True)
def ndtr64(x, out):
    """out ← Φ(x) (1-D float64 arrays)."""
    for i in range(x.shape[0]):
        out[i] = _phi64(x[i])[0]


@njit(fastmath=_FLAGS, error_model="numpy", nogil=True, cache=True)
def bias_gelu64(s, b, d):
    """s ← a(s + b) = (s + b) Φ(s + b), d ← a′(s + b) = Φ + (s + b) φ (1-D float64 arrays)."""
    for i in range(s.shape[0]):
        x = s[i] + b[i]
        cdf, pdf = _phi64(x)
        d[i] = cdf + x * pdf
        s[i] = x * cdf


@njit(fastmath=_FLAGS, error_model="numpy", nogil=True, cache=True)
def bias_gelu64_forward(s, b):
    """s ← a(s + b) (1-D float64 arrays)."""
    for i in range(s.shape[0]):
        x = s[i] + b[i]
        s[i] = x * _phi64(x)[0]


# -- whole-network kernels: one call per block, the GIL released throughout ------------------
# The hot path of a block (≤ BLOCK_ROWS rows) is ~30 numpy calls of a few µs each; with several
# block workers they serialize on re-acquiring the GIL (BENCHMARKS.md, "2 threads"). These
# kernels run the same operations in the same order — the same BLAS products (``np.dot`` with an
# output array: gemm/gemv) and the fused activation kernels above — inside one ``nogil`` call.
# Layout (see ``MLP._cache``/``MLP._workspace``): ``dims`` = (d, n_1, …, n_L, k); ``P`` holds,
# for every layer l, W_l (n_l × n_{l+1}, row-major) and then W_lᵀ, starting at ``offs[l]``;
# ``BT`` the hidden biases tiled over ``rows`` rows (layer after layer); ``S``/``D`` flat
# scratch of n·Σ n_l entries holding the pre-activations/activations and a′ of each hidden layer.
# The activation is chosen by the *type* of ``tag`` (an empty int8 array for ReLU, int16 for
# GELU; float32/float64 GELU by the dtype of the data): numba compiles one specialization per
# activation and dtype, and — module-level functions, no closures — caches it on disk
# (``cache=True``), so a new process does not pay the compilation (seconds) again.
RELU_TAG = np.zeros(0, np.int8)
GELU_TAG = np.zeros(0, np.int16)
#: activation name → the tag the network kernels take
TAGS = {"relu": RELU_TAG, "gelu": GELU_TAG}


def bias_act(tag, s, b, d, derivs):  # pragma: no cover - replaced by its overload in kernels
    """s ← a(s + b) (and d ← a′(s + b) when ``derivs``) for the activation of ``tag``."""
    raise NotImplementedError("numba-only")


@overload(bias_act, jit_options={"nogil": True})
def _bias_act_typed(tag, s, b, d, derivs):
    if tag.dtype == types.int8:
        with_d, forward = bias_relu, bias_relu_forward
    elif s.dtype == types.float32:
        with_d, forward = bias_gelu32, bias_gelu32_forward
    else:
        with_d, forward = bias_gelu64, bias_gelu64_forward

    def impl(tag, s, b, d, derivs):
        if derivs:
            with_d(s, b, d)
        else:
            forward(s, b)
    return impl


@njit(error_model="numpy", nogil=True, cache=True)
def hidden(tag, X, dims, offs, P, BT, rows, S, D, derivs):
    """h_l = a(h_{l−1} W_l + b_l) for the hidden layers of one block (into S; a′ into D when
    ``derivs``); returns the last hidden activations (a view of S)."""
    n = X.shape[0]
    h = X
    o = 0
    bo = 0
    for layer in range(dims.shape[0] - 2):
        a, b = dims[layer], dims[layer + 1]
        p = offs[layer]
        s = S[o:o + n * b].reshape(n, b)
        np.dot(h, P[p:p + a * b].reshape(a, b), s)
        bias_act(tag, S[o:o + n * b], BT[bo:bo + n * b], D[o:o + n * b], derivs)
        o += n * b
        bo += rows * b
        h = s
    return h


@njit(error_model="numpy", nogil=True, cache=True)
def pull_back(delta, o, dims, offs, P, S, D, out):
    """From δ = ∂/∂h_L (n, n_L), a view of S ending at offset o: δ ← (δ W_lᵀ) ⊙ a′_{l−1} down to
    the first hidden layer, then out = δ W_0ᵀ (n, d)."""
    n = delta.shape[0]
    for layer in range(dims.shape[0] - 3, 0, -1):
        a, b = dims[layer], dims[layer + 1]
        pt = offs[layer] + a * b
        o -= n * a
        s = S[o:o + n * a].reshape(n, a)
        np.dot(delta, P[pt:pt + a * b].reshape(b, a), s)
        sf, df = S[o:o + n * a], D[o:o + n * a]
        for i in range(n * a):
            sf[i] *= df[i]
        delta = s
    a, b = dims[0], dims[1]
    pt = offs[0] + a * b
    np.dot(delta, P[pt:pt + a * b].reshape(b, a), out)


@njit(error_model="numpy", nogil=True, cache=True)
def logits_grad(tag, X, dims, offs, P, BT, rows, wl, wtile, bl, S, D, z, out):
    """Binary model: z = h_L w + b (into z, (n,)) and ∂z/∂x (into out, (n, d))."""
    n = X.shape[0]
    L = dims.shape[0] - 2
    h = hidden(tag, X, dims, offs, P, BT, rows, S, D, True)
    np.dot(h, wl, z)
    for i in range(n):
        z[i] += bl
    w = dims[L]
    o = 0
    for layer in range(1, L):
        o += n * dims[layer]
    df = D[o:o + n * w]
    for i in range(n * w):
        df[i] *= wtile[i]  # δ = a′(s_L) ⊙ w
    pull_back(df.reshape(n, w), o, dims, offs, P, S, D, out)


@njit(error_model="numpy", nogil=True, cache=True)
def backward(dz, dims, offs, P, S, D, out):
    """k-class model: out = ∂⟨dz, z⟩/∂x for the cotangent dz (n, k), once ``hidden(...,
    derivs=True)`` has filled S and D for the same block."""
    n = dz.shape[0]
    L = dims.shape[0] - 2
    w, k = dims[L], dims[L + 1]
    o = 0
    for layer in range(1, L):
        o += n * dims[layer]
    pt = offs[L] + w * k
    delta = S[o:o + n * w].reshape(n, w)
    np.dot(dz, P[pt:pt + w * k].reshape(k, w), delta)
    sf, df = S[o:o + n * w], D[o:o + n * w]
    for i in range(n * w):
        sf[i] *= df[i]
    pull_back(delta, o, dims, offs, P, S, D, out)


#: every compiled kernel of this module (tests check their types and GIL release)
KERNELS = (gelu32_and_deriv, gelu32, bias_relu, bias_relu_forward, bias_gelu32, bias_gelu32_forward,
           ndtr64, bias_gelu64, bias_gelu64_forward, hidden, pull_back, logits_grad, backward)
