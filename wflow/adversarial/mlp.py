"""A small numpy multilayer perceptron classifier (the paper's architecture, binary or k-class).

The network maps x ∈ R^d to logits z(x):

    h_0 = x,   h_l = a(h_{l−1} W_l + b_l)  (l = 1, …, L−1),   z = h_{L−1} W_L + b_L,

with a = ReLU or the exact GELU a(s) = s Φ(s) = ½ s (1 + erf(s/√2)). With one output unit the
model is a binary classifier, z(x) ∈ R and p(x) = σ(z(x)) the probability of class 1 (the
paper's two-moons classifiers are 2 → 20 → 20 → 20 → 1); with k ≥ 2 output units it is a
k-class classifier, z(x) ∈ R^k and p(x) = softmax(z(x)), labels in {0, …, k−1}. A batch-norm
layer in inference mode is an affine map and folds into the preceding dense layer
(:func:`fold_batchnorm`).

Everything is batched over the rows of X (shape (n, d)); input gradients are exact
(backpropagation; ReLU uses the a.e. derivative 1{s > 0}). ``dtype`` (float64 by default,
or float32) is the precision of the weights and of every evaluation (see docs/precision.md).
"""

from __future__ import annotations

import os
import threading
import zipfile
from pathlib import Path

import numpy as np
from scipy.special import erf, ndtr

from .._fp import DTYPES, float_dtype
from .._validation import as_points, integer, rng_from
from ..io import atomic_write

__all__ = ["MLP", "ACTIVATIONS", "DTYPES", "load_model", "fold_batchnorm", "MODEL_NAMES", "model_path",
           "as_dtype", "softmax", "log_softmax", "kernel_engine", "ENGINES"]

ACTIVATIONS = ("relu", "gelu")
MODEL_NAMES = ("two_moons_relu", "two_moons_gelu", "digits_relu")
_MODEL_DIR = Path(__file__).resolve().parent / "models"
# Python floats (not numpy float64 scalars): under NumPy's promotion rules they keep float32
# arrays float32
_SQRT1_2 = float(1.0 / np.sqrt(2.0))
_INV_SQRT_2PI = float(1.0 / np.sqrt(2.0 * np.pi))
#: rows per matrix product. Small products stay single-threaded in OpenBLAS: on a loaded
#: machine its threads contend for the cores and a (2048, 20) @ (20, 20) product can be 100×
#: slower than two (1024, 20) ones (measured; see BENCHMARKS.md, adversarial).
BLOCK_ROWS = 1024


def _act(name: str, s: np.ndarray) -> np.ndarray:
    if s.dtype == np.float32:
        return _act_inplace(name, s.copy())
    if name == "relu":
        return np.maximum(s, 0.0)
    return 0.5 * s * (1.0 + erf(s * _SQRT1_2))


def _act_and_deriv(name: str, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """a(s) and a'(s); GELU: a'(s) = Φ(s) + s φ(s)."""
    if s.dtype == np.float32:
        return _act_and_deriv_inplace(name, s.copy())
    if name == "relu":
        d = (s > 0).astype(s.dtype)
        return s * d, d
    cdf = 0.5 * (1.0 + erf(s * _SQRT1_2))
    pdf = _INV_SQRT_2PI * np.exp(-0.5 * s * s)
    return s * cdf, cdf + s * pdf


# --- float32 GELU without scipy.special: scipy's float32 ndtr/erf loops evaluate in double
# and are ~10× slower than a numpy pass chain (docs/precision.md). Abramowitz & Stegun 7.1.26:
# erfc(x) = t P(t) e^{−x²} + ε(x), |ε| ≤ 1.5e-7 for x ≥ 0, t = 1/(1 + p x); with x = |s|/√2,
# Φ(−|s|) = ½ erfc(x) = φ(s) · t · √(π/2) P(t), so e^{−s²/2} is shared with the derivative.
_AS_P = float(0.3275911 / np.sqrt(2.0))
_AS_A = tuple(float(a * np.sqrt(np.pi / 2.0)) for a in
              (0.254829592, -0.284496736, 1.421413741, -1.453152027, 1.061405429))


_SIGN32 = np.int32(-(2 ** 31))  # the float32 sign bit, as an int32 mask


def _gelu32(s: np.ndarray, d: np.ndarray | None, t: np.ndarray, q: np.ndarray) -> None:
    """Float32 GELU in place: s ← s Φ̃(s), and d ← Φ̃(s) + s φ(s) when d is given.

    ``t`` and ``q`` are scratch arrays shaped like s (C-contiguous). |Φ̃ − Φ| ≤ 7.5e-8 +
    float32 round-off (docs/precision.md); every intermediate is float32. 23 numpy passes and
    one ``exp``: no clamp (e^{−s²/2} underflows to 0 harmlessly), ``divide`` rather than the
    slower ``reciprocal``, and the sign of Φ(s) − ½ set with integer bit operations (3× faster
    than ``copysign``).
    """
    e = q if d is None else d
    np.multiply(s, s, out=e)
    e *= -0.5
    np.exp(e, out=e)
    e *= _INV_SQRT_2PI  # φ(s)
    np.abs(s, out=t)
    t *= _AS_P
    t += 1.0
    np.divide(1.0, t, out=t)
    a0, a1, a2, a3, a4 = _AS_A
    u = np.multiply(t, a4) if d is None else np.multiply(t, a4, out=q)  # (e lives in q then)
    u += a3
    for c in (a2, a1, a0):
        u *= t
        u += c
    u *= t
    if d is None:
        q *= u  # Φ(−|s|) = ½ erfc(|s|/√2) ≤ ½
    else:
        q *= e
    np.subtract(0.5, q, out=q)  # ½ − Φ(−|s|) ≥ 0: its sign bit is clear
    ti, qi = t.view(np.int32), q.view(np.int32)
    np.bitwise_and(s.view(np.int32), _SIGN32, out=ti)
    np.bitwise_or(qi, ti, out=qi)  # copysign(½ − Φ(−|s|), s)
    q += 0.5  # Φ(s) = ½ ± (½ − Φ(−|s|)): no branch, the lower tail without cancellation
    if d is not None:
        d *= s
        d += q
    s *= q


#: engines of the float32 GELU kernel (see :func:`kernel_engine`)
ENGINES = ("auto", "numpy", "numba")
_engine = {"requested": os.environ.get("WFLOW_KERNELS", "auto"), "kernels": None}


def kernel_engine(engine: str | None = None) -> str:
    """Get (no argument) or set the engine of the activation kernels; returns the one in use.

    ``"numpy"``: numpy passes (float32 GELU: the chain :func:`_gelu32`; float64 GELU:
    ``scipy.special.ndtr``; always available). ``"numba"`` (a dependency of wflow on the Python
    versions numba supports): each block's whole forward/backward pass in one call that
    releases the GIL — the same BLAS products, with bias add and activation fused in one
    vectorized loop per layer (float32 GELU: the same formulas, ≈ 4× faster; float64 GELU:
    Cody's erf/erfc approximations, Φ within 45·2⁻⁵³ relative, ≈ 4× faster than ``ndtr``;
    ReLU bit-identical to numpy; docs/precision.md). ``"auto"`` (the default, or the
    ``WFLOW_KERNELS`` environment variable): numba when importable, else numpy.
    """
    if engine is not None:
        if engine not in ENGINES:
            raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")
        if engine == "numba":
            _numba_kernels(required=True)
        _engine["requested"], _engine["kernels"] = engine, None
    return "numba" if _resolve_kernels() is not False else "numpy"


def _numba_kernels(required: bool = False):
    try:
        from . import _numba
    except ImportError as exc:
        if required:
            raise ImportError(f"kernel engine 'numba' needs numba: pip install numba ({exc})") from None
        return None
    return _numba


def _resolve_kernels():
    """The numba kernel module, or False for numpy (resolved once, at the first kernel call)."""
    k = _engine["kernels"]
    if k is None:
        req = _engine["requested"]
        if req not in ENGINES:
            raise ValueError(f"WFLOW_KERNELS must be one of {ENGINES}, got {req!r}")
        k = _engine["kernels"] = (_numba_kernels(req == "numba") or False) if req != "numpy" else False
    return k


def _gelu32_kernel(s: np.ndarray, d: np.ndarray | None, t: np.ndarray, q: np.ndarray) -> None:
    """Float32 GELU in place (s ← a(s), d ← a′(s) if given) with the selected engine."""
    k = _resolve_kernels()
    if k is False or not (s.flags.c_contiguous and (d is None or d.flags.c_contiguous)):
        _gelu32(s, d, t, q)
    elif d is None:
        k.gelu32(s.reshape(-1))
    else:
        k.gelu32_and_deriv(s.reshape(-1), d.reshape(-1))


def _act_inplace(name: str, s: np.ndarray, ws: dict | None = None) -> np.ndarray:
    """a(s), overwriting s (the same arithmetic as :func:`_act` in float64)."""
    if name == "relu":
        return np.maximum(s, 0.0, out=s)
    if s.dtype == np.float32:
        _gelu32_kernel(s, None, _scratch(ws, s, "t"), _scratch(ws, s, "q"))
        return s
    s *= ndtr(s, out=_scratch(ws, s, "q"))  # s Φ(s)
    return s


def _scratch(ws: dict | None, like: np.ndarray, key: str) -> np.ndarray:
    """A scratch array shaped like ``like`` from the workspace ``ws`` (reused across calls)."""
    if ws is None:
        return np.empty_like(like)
    k = (key, like.shape, like.dtype.char)
    a = ws.get(k)
    if a is None:
        a = ws[k] = np.empty_like(like)
    return a


def _act_and_deriv_inplace(name: str, s: np.ndarray, d: np.ndarray | None = None,
                           ws: dict | None = None) -> tuple[np.ndarray, np.ndarray]:
    """a(s) (overwriting s) and a'(s) (into ``d``), with as few temporaries as possible."""
    if d is None:
        d = np.empty_like(s)
    if name == "relu":
        np.greater(s, 0.0, out=d)
        s *= d
        return s, d
    if s.dtype == np.float32:
        _gelu32_kernel(s, d, _scratch(ws, s, "t"), _scratch(ws, s, "q"))
        return s, d
    # Φ(s) = ½(1 + erf(s/√2)) in one pass (and accurate in the lower tail), into a reused
    # scratch array: a fresh (1024, 20) float64 result is a 160 KiB mmap (+20 % time)
    cdf = ndtr(s, out=_scratch(ws, s, "q"))
    np.multiply(s, s, out=d)
    d *= -0.5
    np.exp(d, out=d)
    d *= _INV_SQRT_2PI
    d *= s
    d += cdf
    s *= cdf
    return s, d


def as_dtype(dtype, name: str = "dtype") -> np.dtype:
    """``None`` → float64; float64 or float32 (any spelling numpy accepts) → that ``np.dtype``."""
    return float_dtype(dtype, name)


def _float_array(z) -> np.ndarray:
    z = np.asarray(z)
    return z if z.dtype in DTYPES else z.astype(np.float64)


def sigmoid(z: np.ndarray) -> np.ndarray:
    """σ(z) = 1 / (1 + e^{−z}), computed without overflow for large |z| (float32 stays float32)."""
    z = _float_array(z)
    e = np.abs(z)
    np.negative(e, out=e)
    np.exp(e, out=e)
    d = e + 1.0
    np.divide(e, d, out=e)  # σ(−|z|)
    np.divide(1.0, d, out=d)  # σ(|z|)
    return np.where(z >= 0, d, e)


def log_softmax(z: np.ndarray) -> np.ndarray:
    """log softmax(z) over the last axis, z − max z − log Σ exp(z − max z) (no overflow)."""
    z = _float_array(z)
    s = z - z.max(axis=-1, keepdims=True)
    s -= np.log(np.exp(s).sum(axis=-1, keepdims=True))
    return s


def softmax(z: np.ndarray) -> np.ndarray:
    """softmax(z) over the last axis, e^{z − max z} / Σ e^{z − max z} (no overflow)."""
    z = _float_array(z)
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    e /= e.sum(axis=-1, keepdims=True)
    return e


class MLP:
    """Dense network with ReLU/GELU hidden layers: binary (one logit) or k-class (k logits).

    Parameters
    ----------
    weights : list of arrays, shapes (n_{l−1}, n_l)
        Dense weights, applied as ``h @ W``. One output column: a binary classifier (a logit
        z, p = σ(z)); k ≥ 2 columns: a k-class classifier (logits z ∈ R^k, p = softmax(z)).
    biases : list of arrays, shapes (n_l,)
    activation : {"relu", "gelu"}
        Hidden activation (GELU in its exact erf form).
    dtype : numpy.float64 (default) or numpy.float32
        Precision of the weights and of every evaluation: inputs are converted to it, and the
        outputs (logits, probabilities, input gradients) have it (docs/precision.md).

    Attributes
    ----------
    dim : int
        Input dimension d.
    layer_sizes : tuple of int
        (d, n_1, …, k).
    n_classes : int
        2 for a binary model (one output unit), else k.
    dtype : numpy.dtype
    """

    def __init__(self, weights, biases, activation: str = "relu", dtype=None):
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
        dtype = as_dtype(dtype)
        if not isinstance(weights, (list, tuple)) or not isinstance(biases, (list, tuple)):
            raise TypeError("weights and biases must be lists of arrays")
        if len(weights) == 0 or len(weights) != len(biases):
            raise ValueError(f"weights and biases must be non-empty lists of equal length, got "
                             f"{len(weights)} and {len(biases)}")
        Ws = [np.array(W, dtype=float) for W in weights]
        bs = [np.array(b, dtype=float).reshape(-1) for b in biases]
        for i, (W, b) in enumerate(zip(Ws, bs)):
            if W.ndim != 2 or W.shape[1] != b.shape[0]:
                raise ValueError(f"layer {i}: weights must be (n_in, n_out) and biases (n_out,), got "
                                 f"{W.shape} and {b.shape}")
            if i > 0 and W.shape[0] != Ws[i - 1].shape[1]:
                raise ValueError(f"layer {i}: expects {W.shape[0]} inputs but layer {i - 1} has "
                                 f"{Ws[i - 1].shape[1]} outputs")
            if not (np.all(np.isfinite(W)) and np.all(np.isfinite(b))):
                raise ValueError(f"layer {i}: weights/biases contain NaN or infinite values")
        self.dtype = dtype
        self.weights = [W.astype(dtype, copy=False) for W in Ws]
        self.biases = [b.astype(dtype, copy=False) for b in bs]
        self.activation = activation
        self._refresh()

    def __getstate__(self) -> dict:  # picklable (e.g. for dask): drop caches and thread-locals
        return {"weights": self.weights, "biases": self.biases, "activation": self.activation,
                "dtype": self.dtype}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._refresh()

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def init(cls, layer_sizes=(2, 20, 20, 20, 1), activation: str = "relu", seed=None,
             dtype=None) -> "MLP":
        """He-initialized network: W_l ~ N(0, 2/n_{l−1}), b_l = 0 (seeded, drawn in float64).

        The last size is 1 (binary classifier) or the number of classes k ≥ 2.
        """
        sizes = [integer(s, "layer_sizes", low=1) for s in layer_sizes]
        if len(sizes) < 2:
            raise ValueError(f"layer_sizes must be (d, ..., k) with at least two entries, got {tuple(layer_sizes)}")
        rng = rng_from(seed)
        Ws = [rng.normal(0.0, np.sqrt(2.0 / a), size=(a, b)) for a, b in zip(sizes[:-1], sizes[1:])]
        return cls(Ws, [np.zeros(b) for b in sizes[1:]], activation, dtype)

    @property
    def dim(self) -> int:
        return self.weights[0].shape[0]

    @property
    def n_outputs(self) -> int:
        """Number of output units (1 for a binary model, k for a k-class model)."""
        return self.weights[-1].shape[1]

    @property
    def n_classes(self) -> int:
        k = self.n_outputs
        return 2 if k == 1 else k

    @property
    def binary(self) -> bool:
        return self.n_outputs == 1

    @property
    def layer_sizes(self) -> tuple[int, ...]:
        return (self.dim,) + tuple(W.shape[1] for W in self.weights)

    @property
    def n_params(self) -> int:
        return sum(W.size + b.size for W, b in zip(self.weights, self.biases))

    def __repr__(self) -> str:
        dt = "" if self.dtype == DTYPES[0] else f", {self.dtype}"
        return f"MLP({' → '.join(map(str, self.layer_sizes))}, {self.activation}{dt})"

    def copy(self) -> "MLP":
        return MLP([W.copy() for W in self.weights], [b.copy() for b in self.biases], self.activation,
                   self.dtype)

    def astype(self, dtype) -> "MLP":
        """A copy in precision ``dtype`` (float64 → float32 rounds every weight to nearest)."""
        return MLP(self.weights, self.biases, self.activation, as_dtype(dtype))

    # -- evaluation ---------------------------------------------------------------------------
    def _check(self, X, name: str = "X") -> tuple[np.ndarray, bool]:
        single = np.ndim(X) == 1
        return self._as_input(as_points(X, name, dim=self.dim)), single

    def _as_input(self, X: np.ndarray) -> np.ndarray:
        """X in the model's dtype (no copy when it already is)."""
        return X if X.dtype == self.dtype else X.astype(self.dtype)

    def _refresh(self) -> None:
        """Drop the cached transposes/tiled biases (call after changing the weights in place)."""
        self._fast = None
        self._wlast = np.ascontiguousarray(self.weights[-1][:, 0])
        self._tls = threading.local()  # per-thread scratch arrays of the hot path

    def _cache(self, rows: int) -> dict:
        """Hot-path constants: contiguous Wᵀ, and biases tiled over ``rows`` rows as flat arrays.

        Adding a (w,) row to an (n, w) array broadcasts with an inner loop of length w = 20,
        about 3× slower than a flat add of a tiled copy; the same holds for scaling by w_L.
        """
        c = getattr(self, "_fast", None)
        if c is None or c["rows"] < rows:
            rows = max(rows, BLOCK_ROWS)
            dt = self.dtype
            widths = [W.shape[1] for W in self.weights[:-1]]
            # the numba engine's packed layout (``_numba.hidden`` and the kernels after it): every layer's
            # W_l then W_lᵀ in one array, the tiled hidden biases one after the other
            P = np.concatenate([np.concatenate([W.ravel(), W.T.ravel()]) for W in self.weights]).astype(dt)
            sizes = [2 * W.size for W in self.weights]
            BT = np.concatenate([np.tile(b, rows) for b in self.biases[:-1]] + [np.empty(0, dt)]).astype(dt)
            bstarts = np.cumsum([0] + [rows * w for w in widths])
            c = {
                "rows": rows,
                "WT": [np.ascontiguousarray(W.T) for W in self.weights],
                "btile": [BT[a:a + rows * w] for a, w in zip(bstarts, widths)],
                "wtile": np.tile(self._wlast, rows),
                "dims": np.array(self.layer_sizes, dtype=np.int64),
                "offs": np.cumsum([0] + sizes[:-1]).astype(np.int64),
                "P": P, "BT": BT,
            }
            self._fast = c
        return c

    def _workspace(self, n: int) -> dict:
        """This thread's scratch arrays for blocks of ``n`` ≤ ``BLOCK_ROWS`` rows (allocated once,
        then reused: fresh (n, w) temporaries per layer and step cost page faults and allocator
        calls), with the flat views and tile slices the block loop uses."""
        tls = self._tls
        spaces = getattr(tls, "spaces", None)
        if spaces is None:
            spaces = tls.spaces = {}
        c = self._cache(n)
        ws = spaces.get(n)
        if ws is None or ws["cache"] is not c:
            if len(spaces) > 4:  # a few block sizes at most (full blocks and remainders)
                spaces.clear()
            widths = [W.shape[1] for W in self.weights[:-1]]
            # the backward pass reuses the pre-activation buffers (free by then): a smaller
            # working set stays in cache. One flat buffer each, layer after layer (the numba
            # engine's layout), with an (n, w) view per layer
            starts = np.cumsum([0] + [n * w for w in widths])
            sf, df = np.empty(starts[-1], self.dtype), np.empty(starts[-1], self.dtype)
            s = [sf[a:a + n * w].reshape(n, w) for a, w in zip(starts, widths)]
            d = [df[a:a + n * w].reshape(n, w) for a, w in zip(starts, widths)]
            scratch: dict = {}  # GELU temporaries, shared by layers of equal width
            for w in widths:
                if w not in scratch:
                    scratch[w] = (np.empty((n, w), self.dtype), np.empty((n, w), self.dtype))
            ws = spaces[n] = {
                "cache": c, "s": s, "d": d, "back": s, "S": sf, "D": df,
                "sflat": [a.reshape(-1) for a in s], "dflat": [a.reshape(-1) for a in d],
                "btile": [bt[:n * w] for bt, w in zip(c["btile"], widths)],
                "wtile": c["wtile"][:n * widths[-1]] if widths else None,
                "tq": [scratch[w] for w in widths],
            }
        return ws

    def _network_kernels(self):
        """``(module, tag)``: the numba engine's whole-network kernels (``_numba.hidden``,
        ``logits_grad``, ``backward``) and this activation's tag, or None (numpy engine, or no
        hidden layer)."""
        k = _resolve_kernels()
        if k is False or len(self.weights) < 2:
            return None
        return k, k.TAGS[self.activation]

    @property
    def releases_gil(self) -> bool:
        """True when a block's work runs without the GIL (the numba engine, or no hidden layer:
        then a block is a few large numpy calls); block workers then run in parallel."""
        return len(self.weights) < 2 or self._network_kernels() is not None

    def _block_forward(self, X: np.ndarray, ws: dict, derivs: bool) -> np.ndarray:
        """Hidden layers of one block (≤ ``BLOCK_ROWS`` rows) in the workspace buffers: returns the
        last hidden activations; with ``derivs`` also fills ``ws["d"]`` with a′(s_l)."""
        net = self._network_kernels()
        if net is not None:  # one nogil call for the whole block
            k, tag = net
            c = ws["cache"]
            return k.hidden(tag, np.ascontiguousarray(X), c["dims"], c["offs"], c["P"], c["BT"], c["rows"],
                            ws["S"], ws["D"], derivs)
        # the numpy engine: numpy passes per layer
        relu = self.activation == "relu"
        f32 = self.dtype == np.float32
        S, D, SF, BT, TQ = ws["s"], ws["d"], ws["sflat"], ws["btile"], ws["tq"]
        h = X
        for i, W in enumerate(self.weights[:-1]):
            s = np.matmul(h, W, out=S[i])
            SF[i] += BT[i]  # flat add of the tiled bias (a broadcast add is ~3× slower)
            if relu:  # a′ = 1{s > 0}, then a = s a′ (np.maximum is 2× slower than both)
                s *= np.greater(s, 0.0, out=D[i])
            elif f32:
                _gelu32_kernel(s, D[i] if derivs else None, *TQ[i])
            elif derivs:
                _act_and_deriv_inplace("gelu", s, D[i], ws)
            else:
                _act_inplace("gelu", s, ws)
            h = s
        return h

    def _out(self, h: np.ndarray) -> np.ndarray:
        """Output layer: (n,) logits of a binary model, (n, k) of a k-class model."""
        if self.binary:
            return h @ self._wlast + self.biases[-1][0]
        z = h @ self.weights[-1]
        z += self.biases[-1]
        return z

    def _logits(self, X: np.ndarray) -> np.ndarray:
        n = len(X)
        z = np.empty((n,) + (() if self.binary else (self.n_outputs,)), dtype=self.dtype)
        for start in range(0, n, BLOCK_ROWS):
            stop = min(start + BLOCK_ROWS, n)
            h = self._block_forward(X[start:stop], self._workspace(stop - start), False)
            z[start:stop] = self._out(h)
        return z

    def _logits_and_grad(self, X: np.ndarray, out: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Binary model: z (n,) and ∂z/∂x (n, d) (into ``out`` if given) by one forward and one
        backward pass, in blocks of ``BLOCK_ROWS`` rows with per-thread scratch arrays."""
        if not self.binary:
            raise ValueError(f"logit gradients ∂z/∂x are for binary models; this model has {self.n_outputs} "
                             "outputs (use logit_grad for the (n, k, d) Jacobian or a loss potential)")
        n = len(X)
        if out is None:
            out = np.empty(X.shape, dtype=self.dtype)
        z = np.empty(n, dtype=self.dtype)
        wl, bl = self._wlast, self.biases[-1][0]
        L = len(self.weights) - 1
        if L == 0:  # logistic regression: ∂z/∂x = w
            np.matmul(X, wl, out=z)
            z += bl
            out[...] = wl
            return z, out
        c = self._cache(BLOCK_ROWS)
        WT = c["WT"]
        net = self._network_kernels()
        for start in range(0, n, BLOCK_ROWS):
            stop = min(start + BLOCK_ROWS, n)
            ws = self._workspace(stop - start)
            if net is not None:  # the whole block in one nogil call (numba engine)
                ob = out[start:stop]
                g = ob if ob.flags.c_contiguous else np.empty(ob.shape, self.dtype)
                net[0].logits_grad(net[1], np.ascontiguousarray(X[start:stop]), c["dims"], c["offs"], c["P"],
                                   c["BT"], c["rows"], wl, ws["wtile"], bl, ws["S"], ws["D"], z[start:stop], g)
                if g is not ob:
                    ob[...] = g
                continue
            h = self._block_forward(X[start:stop], ws, True)
            zb = np.matmul(h, wl, out=z[start:stop])
            zb += bl
            D, S = ws["d"], ws["s"]
            ws["dflat"][L - 1] *= ws["wtile"]  # δ = a′(s_L) ⊙ w_L (flat, with the tiled w_L)
            delta = D[L - 1]
            for i in range(L - 1, 0, -1):
                delta = np.matmul(delta, WT[i], out=S[i - 1])
                delta *= D[i - 1]
            np.matmul(delta, WT[0], out=out[start:stop])
        return z, out

    def _value_and_input_grad(self, X: np.ndarray, y: np.ndarray, fn,
                              out: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """ℓ_i and ∇_x ℓ_i (into ``out`` if given) for ℓ_i = fn-loss of the logits z(x_i) (n, k).

        ``fn(z, y) -> (ℓ (n,), ∂ℓ/∂z (n, k))``; the cotangent ∂ℓ/∂z is pulled back through the
        network (one forward, one backward pass, in blocks of ``BLOCK_ROWS`` rows). ``y`` has
        one entry per row of X.
        """
        n = len(X)
        if out is None:
            out = np.empty(X.shape, dtype=self.dtype)
        v = np.empty(n, dtype=self.dtype)
        c = self._cache(BLOCK_ROWS)
        WT = c["WT"]
        L = len(self.weights) - 1
        net = self._network_kernels()
        for start in range(0, n, BLOCK_ROWS):
            stop = min(start + BLOCK_ROWS, n)
            ws = self._workspace(stop - start)
            h = self._block_forward(X[start:stop], ws, True)
            vb, dz = fn(self._out(h), y[start:stop])
            v[start:stop] = vb
            dz = dz.astype(self.dtype, copy=False)
            if net is not None:  # the backward pass in one nogil call (numba engine)
                ob = out[start:stop]
                g = ob if ob.flags.c_contiguous else np.empty(ob.shape, self.dtype)
                net[0].backward(np.ascontiguousarray(dz), c["dims"], c["offs"], c["P"], ws["S"], ws["D"], g)
                if g is not ob:
                    ob[...] = g
                continue
            if L == 0:
                np.matmul(dz, WT[-1], out=out[start:stop])
                continue
            D, S = ws["d"], ws["s"]
            delta = np.matmul(dz, WT[-1], out=S[L - 1])
            for i in range(L - 1, 0, -1):
                delta *= D[i]
                delta = np.matmul(delta, WT[i], out=S[i - 1])
            delta *= D[0]
            np.matmul(delta, WT[0], out=out[start:stop])
        return v, out

    def logits(self, X) -> np.ndarray:
        """Logits z(x): (n, d) → (n,) for a binary model, (n, k) for k classes ((d,) → () or (k,))."""
        A, single = self._check(X)
        z = self._logits(A)
        return z[0] if single else z

    def predict_proba(self, X) -> np.ndarray:
        """Binary: p(x) = σ(z(x)), the probability of class 1, (n, d) → (n,).
        k classes: softmax(z(x)), (n, d) → (n, k)."""
        z = self.logits(X)
        return sigmoid(z) if self.binary else softmax(z)

    __call__ = predict_proba

    def predict(self, X) -> np.ndarray:
        """Predicted labels as int64, (n, d) → (n,): 1{z(x) > 0} (binary), argmax_j z_j(x) (k classes)."""
        return self.labels_from_logits(self.logits(X))

    def labels_from_logits(self, z: np.ndarray) -> np.ndarray:
        """The labels :meth:`predict` assigns to logits z ((n,) binary, (n, k) k classes)."""
        return (z > 0).astype(np.int64) if self.binary else np.argmax(z, axis=-1).astype(np.int64)

    def logit_grad(self, X) -> np.ndarray:
        """Exact input gradient ∂z/∂x: (n, d) → (n, d) (binary); the Jacobian (n, k, d) (k classes)."""
        A, single = self._check(X)
        if self.binary:
            g = self._logits_and_grad(A)[1]
        else:
            k = self.n_outputs
            g = np.empty((len(A), k, self.dim), dtype=self.dtype)
            rows = np.zeros(len(A), dtype=np.int64)
            for j in range(k):
                def unit(z, y, j=j):
                    dz = np.zeros_like(z)
                    dz[:, j] = 1.0
                    return z[:, j], dz
                g[:, j] = self._value_and_input_grad(A, rows, unit)[1]
        return g[0] if single else g

    def accuracy(self, X, y) -> float:
        """Fraction of rows with predict(X) == y."""
        y = check_labels(y, len(as_points(X, "X")), name="y", allow_scalar=False, n_classes=self.n_classes)
        return float(np.mean(self.predict(X) == y))

    # -- parameter gradients (training) -----------------------------------------------------
    def _forward(self, X: np.ndarray) -> tuple[list, list, np.ndarray]:
        """Plain (uncached) forward pass for training: activations, derivatives, logits."""
        hs, derivs = [X], []
        h = X
        for W, b in zip(self.weights[:-1], self.biases[:-1]):
            h, d = _act_and_deriv(self.activation, h @ W + b)
            hs.append(h)
            derivs.append(d)
        if self.binary:
            return hs, derivs, h @ self.weights[-1][:, 0] + self.biases[-1][0]
        return hs, derivs, h @ self.weights[-1] + self.biases[-1]

    def _param_grads(self, X: np.ndarray, dz: np.ndarray, fwd=None) -> tuple[list, list]:
        """∂/∂θ of Σ_i ⟨dz_i, z(x_i)⟩ (dz: (n,) binary, (n, k) k classes): lists shaped like
        weights and biases."""
        hs, derivs, _ = self._forward(X) if fwd is None else fwd
        gW = [None] * len(self.weights)
        gb = [None] * len(self.weights)
        delta = dz[:, None] if dz.ndim == 1 else dz
        for i in range(len(self.weights) - 1, -1, -1):
            gW[i] = hs[i].T @ delta
            gb[i] = delta.sum(axis=0)
            if i > 0:
                delta = (delta @ self.weights[i].T) * derivs[i - 1]
        return gW, gb

    # -- files --------------------------------------------------------------------------------
    def save(self, path) -> None:
        """Write the network to an ``.npz`` (W0, b0, W1, …, activation, n_layers, dtype)."""
        path = os.fspath(path)
        arrays = {"activation": np.array(self.activation), "n_layers": np.array(len(self.weights)),
                  "dtype": np.array(self.dtype.name)}
        for i, (W, b) in enumerate(zip(self.weights, self.biases)):
            arrays[f"W{i}"], arrays[f"b{i}"] = W, b

        def write(tmp: str) -> None:
            with open(tmp, "wb") as fh:
                np.savez(fh, **arrays)

        atomic_write(path, write)

    @classmethod
    def load(cls, path) -> "MLP":
        """Read a network written by :meth:`save`.

        Raises
        ------
        FileNotFoundError
            If the file does not exist.
        ValueError
            If it is not a readable model file (corrupt, truncated, missing arrays).
        """
        path = os.fspath(path)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"model file not found: {path}")
        try:
            with np.load(path, allow_pickle=False) as f:
                n = int(f["n_layers"])
                activation = str(f["activation"])
                Ws = [f[f"W{i}"] for i in range(n)]
                bs = [f[f"b{i}"] for i in range(n)]
                dtype = str(f["dtype"]) if "dtype" in f.files else None
        except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError, TypeError) as exc:
            raise ValueError(f"{path} is not a valid wflow MLP file: {type(exc).__name__}: {exc}") from None
        try:
            return cls(Ws, bs, activation, dtype)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"{path} is not a valid wflow MLP file: {exc}") from None


def model_path(name: str) -> Path:
    """Path of a shipped model file (a name in ``MODEL_NAMES``)."""
    if name not in MODEL_NAMES:
        raise ValueError(f"name must be one of {MODEL_NAMES}, got {name!r}")
    return _MODEL_DIR / f"{name}.npz"


def load_model(name: str) -> MLP:
    """Load a shipped classifier by name (``"two_moons_relu"``, ``"two_moons_gelu"``, ``"digits_relu"``).

    The two-moons models are 2 → 20 → 20 → 20 → 1 networks trained by
    ``experiments/train_two_moons.py`` on the shipped two-moons training split
    (:func:`wflow.adversarial.load_two_moons`); ``digits_relu`` is a 64 → 64 → 64 → 10 network
    trained by ``experiments/train_digits.py`` on ``load_dataset("digits", seed=0)``.
    """
    return MLP.load(model_path(name))


def fold_batchnorm(W, b, gamma, beta, mean, var, eps: float = 1e-5) -> tuple[np.ndarray, np.ndarray]:
    """Fold an inference-mode batch norm after the dense layer ``h W + b`` into that layer.

    BN(s) = γ (s − m)/√(v + ε) + β is affine, so BN(hW + b) = h W' + b' with
    W' = W · diag(γ/√(v + ε)) and b' = (b − m) γ/√(v + ε) + β.
    """
    W, b = np.asarray(W, float), np.asarray(b, float)
    scale = np.asarray(gamma, float) / np.sqrt(np.asarray(var, float) + eps)
    return W * scale, (b - np.asarray(mean, float)) * scale + np.asarray(beta, float)


def check_labels(y, n: int, *, name: str = "y", allow_scalar: bool = True, n_classes: int = 2) -> np.ndarray:
    """Labels as an array of shape (n,) (a scalar is broadcast when allowed).

    ``n_classes == 2`` (binary): labels in {0, 1}, returned as float64 (the binary losses use
    y as a number). ``n_classes = k > 2``: labels in {0, …, k−1}, returned as int64.
    """
    labels = "{0, 1}" if n_classes == 2 else f"{{0, …, {n_classes - 1}}}"
    if isinstance(y, (str, bytes)) or y is None:
        raise TypeError(f"{name} must be labels in {labels}, got {type(y).__name__}")
    try:
        a = np.asarray(y, dtype=float)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be numeric labels in {labels}: {exc}") from None
    if a.ndim == 0 and allow_scalar:
        a = np.full(n, float(a))
    if a.shape != (n,):
        raise ValueError(f"{name} must have shape ({n},) (one label per point), got {np.shape(y)}")
    ok = (a == np.round(a)) & (a >= 0) & (a <= n_classes - 1)
    if not np.all(ok):
        bad = a[~ok][0]
        if n_classes == 2:
            raise ValueError(f"{name} must contain only the labels 0 and 1, got {bad!r}")
        raise ValueError(f"{name} must contain only the labels {labels}, got {bad!r}")
    return a if n_classes == 2 else a.astype(np.int64)
