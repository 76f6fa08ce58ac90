"""Optional numba kernels for the float32 hot path (the extra ``wflow[numba]``).

Only imported when numba is importable and the engine is "numba" or "auto"
(:func:`wflow.adversarial.mlp.kernel_engine`); ``import wflow`` never needs it. The kernels
compute exactly the formulas of the numpy path (docs/precision.md, "GELU in float32") in one
fused, SIMD-vectorized loop instead of ~23 numpy passes:

    Φ(−|s|) = φ(s) · t · √(π/2) P(t),  t = 1/(1 + p|s|/√2)   (Abramowitz & Stegun 7.1.26),
    Φ(s) = ½ + (½ − Φ(−|s|)) for s ≥ 0,  a(s) = s Φ(s),  a′(s) = Φ(s) + s φ(s),

with e^{−s²/2} evaluated once by Cody–Waite reduction and Cephes' ``expf`` polynomial
(relative error ≤ 2 ulp on the reduced range), 2^k built from its bit pattern. Compiled with
``error_model="numpy"`` (no division-by-zero branch, so the loop vectorizes), FMA contraction
allowed (it only removes roundings); no other fast-math flag, so the error analysis holds as written.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

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
_FLAGS = {"contract"}  # FMA contraction only: no reassociation, no approximate division or functions


@intrinsic
def _f32_from_bits(typingctx, bits):
    """Reinterpret an int32 bit pattern as a float32 (vectorizes to a no-op)."""
    sig = types.float32(types.int32)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.FloatType())

    return sig, codegen


@njit(fastmath=_FLAGS, error_model="numpy", nogil=True, inline="always")
def _exp_nonpositive(x):
    """e^x for float32 x ≤ 0 (x < −87 is treated as −87)."""
    x = x if x > _X_MIN else _X_MIN
    k = (x * _LOG2E + _ROUND) - _ROUND
    r = (x - k * _LN2_HI) - k * _LN2_LO
    p = ((((_F(1.9875691500e-4) * r + _F(1.3981999507e-3)) * r + _F(8.3334519073e-3)) * r
          + _F(4.1665795894e-2)) * r + _F(1.6666665459e-1)) * r + _F(5.0000001201e-1)
    p = p * (r * r) + r + _F(1.0)
    return p * _f32_from_bits((np.int32(k) + np.int32(127)) << np.int32(23))


@njit(fastmath=_FLAGS, error_model="numpy", nogil=True, inline="always")
def _phi_parts(x):
    """(Φ(x), e^{−x²/2}) for float32 x."""
    e = _exp_nonpositive(_F(-0.5) * x * x)
    t = _F(1.0) / (_F(1.0) + _P * abs(x))
    q = e * (t * (_A0 + t * (_A1 + t * (_A2 + t * (_A3 + t * _A4)))))  # Φ(−|x|)
    cdf = _F(0.5) + (_F(0.5) - q) if x >= _F(0.0) else q
    return cdf, e


@njit(fastmath=_FLAGS, error_model="numpy", nogil=True)
def gelu32_and_deriv(s, d):
    """s ← s Φ(s) and d ← Φ(s) + s φ(s), for 1-D float32 arrays of equal length."""
    for i in range(s.shape[0]):
        x = s[i]
        cdf, e = _phi_parts(x)
        d[i] = cdf + x * (_C * e)
        s[i] = x * cdf


@njit(fastmath=_FLAGS, error_model="numpy", nogil=True)
def gelu32(s):
    """s ← s Φ(s) for a 1-D float32 array."""
    for i in range(s.shape[0]):
        x = s[i]
        cdf, _ = _phi_parts(x)
        s[i] = x * cdf


# -- fused bias add + activation over a layer's flat (n·w,) pre-activations and tiled biases --
@njit(error_model="numpy", nogil=True)
def bias_relu(s, b, d):
    """s ← max(s + b, 0) and d ← 1{s + b > 0} (float32 or float64; the numpy path's values)."""
    for i in range(s.shape[0]):
        x = s[i] + b[i]
        pos = x > 0
        d[i] = 1 if pos else 0
        s[i] = x if pos else x * 0  # x · 1{x > 0}: −0.0 and NaN as numpy's product


@njit(error_model="numpy", nogil=True)
def bias_relu_forward(s, b):
    """s ← (s + b) 1{s + b > 0}."""
    for i in range(s.shape[0]):
        x = s[i] + b[i]
        s[i] = x if x > 0 else x * 0


@njit(fastmath=_FLAGS, error_model="numpy", nogil=True)
def bias_gelu32(s, b, d):
    """s ← a(s + b), d ← a′(s + b) (float32 GELU, as :func:`gelu32_and_deriv`)."""
    for i in range(s.shape[0]):
        x = s[i] + b[i]
        cdf, e = _phi_parts(x)
        d[i] = cdf + x * (_C * e)
        s[i] = x * cdf


@njit(fastmath=_FLAGS, error_model="numpy", nogil=True)
def bias_gelu32_forward(s, b):
    """s ← a(s + b) (float32 GELU)."""
    for i in range(s.shape[0]):
        x = s[i] + b[i]
        cdf, _ = _phi_parts(x)
        s[i] = x * cdf
