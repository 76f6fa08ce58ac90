"""The numba engine's whole-network kernels (one nogil call per block, wflow.adversarial._numba)
and what lets block workers scale: equal blocks (``default_chunk_size``) and box bounds computed
once per block (``Ball``)."""

from __future__ import annotations

import numpy as np
import pytest

import wflow
from wflow._fp import inner_box
from wflow.adversarial import MLP, ifgsm, load_model, make_loss
from wflow.adversarial import mlp as mlp_mod
from wflow.flow import BLOCK_MULTIPLE, DEFAULT_CHUNK_BYTES, default_chunk_size
from wflow.steps import Ball

nb = mlp_mod._numba_kernels()
needs_numba = pytest.mark.skipif(nb is None, reason="numba is not installed")
RNG = np.random.default_rng(7)


@pytest.fixture
def numba_engine():
    mlp_mod.kernel_engine("numba")
    yield
    mlp_mod.kernel_engine("auto")


def reference_block_forward(self, X, ws, derivs):
    """The per-layer path the whole-block kernels replace: a numpy product per layer, then the
    numba engine's fused bias + activation kernel (float64 GELU: Cody's erfc)."""
    f32 = self.dtype == np.float32
    with_d, forward = ((nb.bias_relu, nb.bias_relu_forward) if self.activation == "relu" else
                       (nb.bias_gelu32, nb.bias_gelu32_forward) if f32 else
                       (nb.bias_gelu64, nb.bias_gelu64_forward))
    h = X
    for i, W in enumerate(self.weights[:-1]):
        h = np.matmul(h, W, out=ws["s"][i])
        if derivs:
            with_d(ws["sflat"][i], ws["btile"][i], ws["dflat"][i])
        else:
            forward(ws["sflat"][i], ws["btile"][i])
    return h


def per_layer(monkeypatch):
    """Make the MLP take the per-layer path (numba activation kernels, numpy products and the
    numpy backward pass)."""
    monkeypatch.setattr(MLP, "_network_kernels", lambda self: None)
    monkeypatch.setattr(MLP, "_block_forward", reference_block_forward)


MODELS = [  # (layer sizes, activation): binary and k-class, one to three hidden layers
    ((2, 20, 20, 20, 1), "relu"), ((2, 20, 20, 20, 1), "gelu"), ((5, 7, 1), "gelu"),
    ((6, 9, 9, 4), "relu"), ((6, 9, 5), "gelu"),
]


@needs_numba
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("sizes,act", MODELS)
def test_network_kernels_equal_the_per_layer_path_bit_for_bit(sizes, act, dtype, numba_engine, monkeypatch):
    """Same BLAS products and activation kernels in the same order: equal to the last bit, for
    full and remainder blocks (2500 = 1024 + 1024 + 452 rows), tiny batches, a Fortran-ordered
    input and a strided output array."""
    m = MLP.init(sizes, act, seed=3, dtype=dtype)
    d = sizes[0]
    X = RNG.normal(size=(2500, d))
    Xf = np.asfortranarray(X.astype(dtype))
    y = RNG.integers(0, m.n_classes, size=2500)
    L = make_loss(m, y, "ce")

    def run():
        out = np.empty((2500, 2 * d), dtype)[:, ::2]  # not C-contiguous
        res = [m.logits(X), m.logits(X[:7]), L._grad_into(Xf, out).copy(), L.restrict(slice(0, 7))._grad(X[:7])]
        if m.binary:
            res += list(m._logits_and_grad(Xf))
        else:
            res.append(m.logit_grad(X[:300]))
        return res

    fused = run()
    per_layer(monkeypatch)
    reference = run()
    for a, b in zip(fused, reference):
        assert a.dtype == dtype
        np.testing.assert_array_equal(a, b)


@needs_numba
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_relu_network_kernels_bit_identical_to_the_numpy_engine(dtype, monkeypatch):
    """ReLU has no engine-specific formula: the numba engine's whole-network blocks reproduce the
    pure-numpy engine exactly (binary and 4-class gradients)."""
    for m in (load_model("two_moons_relu").astype(dtype), MLP.init((6, 9, 9, 4), "relu", seed=1, dtype=dtype)):
        X = RNG.normal(size=(1500, m.dim))
        L = make_loss(m, RNG.integers(0, m.n_classes, size=1500), "mse")
        got = {}
        for engine in ("numpy", "numba"):
            monkeypatch.setitem(mlp_mod._engine, "requested", engine)
            monkeypatch.setitem(mlp_mod._engine, "kernels", None)
            got[engine] = (m.logits(X), L._value_and_grad(X))
        np.testing.assert_array_equal(got["numpy"][0], got["numba"][0])
        np.testing.assert_array_equal(got["numpy"][1][0], got["numba"][1][0])
        np.testing.assert_array_equal(got["numpy"][1][1], got["numba"][1][1])
    mlp_mod.kernel_engine("auto")


# -- no float64 inside the float32 kernels: numba's own type inference, read back --------------
def float64_variables(dispatcher) -> dict:
    """Variables numba typed float64 (scalars or arrays) in the dispatcher's float32 overloads."""
    from numba import types

    def is64(t):
        t = t.dtype if isinstance(t, types.Array) else t
        return isinstance(t, types.Float) and t.bitwidth == 64

    bad = {}
    for sig, cres in dispatcher.overloads.items():
        if "float32" in str(sig):
            bad.update({k: str(v) for k, v in cres.type_annotation.typemap.items() if is64(v)})
    return bad


def fresh_float64_variables(kernel, *args) -> dict:
    """float64 variables of a fresh, uncached compilation of ``kernel`` for these arguments (the
    kernels are cached on disk, and a cache hit has machine code but no numba types)."""
    from numba import njit, typeof

    options = {k: v for k, v in kernel.targetoptions.items() if k != "nopython"}
    fresh = njit(**options)(kernel.py_func)
    fresh.compile(tuple(typeof(a) for a in args))
    return float64_variables(fresh)


@needs_numba
def test_float32_kernels_have_no_float64_intermediate(numba_engine):
    """Instrumented run, compiled side: every variable of every float32 kernel of the hot path
    (inlined helpers included) is float32 — numba types a literal such as 0.5 as float64, which
    would upcast a whole vectorized loop. The whole-network kernels are checked with the argument
    types the float32 attacks really passed them (read from their dispatchers)."""
    from numba import typeof

    f32 = np.float32
    n = 50
    X = RNG.normal(size=(n, 2)).astype(f32)
    flat = [RNG.normal(size=n * 8).astype(f32) for _ in range(3)]
    for kernel in (nb.bias_relu, nb.bias_gelu32):
        assert fresh_float64_variables(kernel, *flat) == {}, kernel.py_func.__name__
    for kernel in (nb.bias_relu_forward, nb.bias_gelu32_forward):
        assert fresh_float64_variables(kernel, *flat[:2]) == {}, kernel.py_func.__name__
    for act in ("relu", "gelu"):
        binary, multi = (MLP.init(sizes, act, seed=0, dtype=f32) for sizes in ((2, 8, 8, 1), (2, 8, 3)))
        for m in (binary, multi):  # the hot path, through the dispatchers
            ifgsm(m, X, None, 0.1, 0.02, 2, loss="ce", workers=1)
        tag = nb.TAGS[act]
        ws = binary._workspace(n)
        c = ws["cache"]
        hidden = (tag, X, c["dims"], c["offs"], c["P"], c["BT"], c["rows"], ws["S"], ws["D"], True)
        grad = (tag, X, c["dims"], c["offs"], c["P"], c["BT"], c["rows"], binary._wlast, ws["wtile"],
                binary.biases[-1][0], ws["S"], ws["D"], np.empty(n, f32), np.empty((n, 2), f32))
        pull = (np.empty((n, 8), f32), 0, c["dims"], c["offs"], c["P"], ws["S"], ws["D"], np.empty((n, 2), f32))
        wm = multi._workspace(n)
        cm = wm["cache"]
        back = (np.empty((n, 3), f32), cm["dims"], cm["offs"], cm["P"], wm["S"], wm["D"], np.empty((n, 2), f32))
        for kernel, args in ((nb.hidden, hidden), (nb.logits_grad, grad), (nb.backward, back)):
            assert tuple(typeof(a) for a in args) in kernel.overloads  # what the attack passed
            assert fresh_float64_variables(kernel, *args) == {}, kernel.py_func.__name__
        assert fresh_float64_variables(nb.pull_back, *pull) == {}


@needs_numba
def test_float64_check_catches_a_float64_literal():
    """Mutant: a bias + activation kernel with a literal 0.5 (typed float64 by numba) is reported."""
    from numba import njit

    @njit(nogil=True)
    def leaky(s, b, d):
        for i in range(s.shape[0]):
            x = s[i] + b[i]
            d[i] = 1.0
            s[i] = x * 0.5 if x < 0 else x

    s32 = RNG.normal(size=50).astype(np.float32)
    leaky(s32, np.zeros_like(s32), np.empty_like(s32))
    assert float64_variables(leaky)
    assert fresh_float64_variables(nb.bias_relu, s32, np.zeros_like(s32), np.empty_like(s32)) == {}


@needs_numba
def test_every_kernel_releases_the_gil():
    """Block workers scale only if no kernel holds the GIL (BENCHMARKS.md, '2 threads')."""
    assert len(nb.KERNELS) == 13
    assert all(k.targetoptions.get("nogil") for k in nb.KERNELS)
    from numba.core.caching import FunctionCache

    assert all(isinstance(k._cache, FunctionCache) for k in nb.KERNELS)  # compiled once per machine


@needs_numba
@pytest.mark.parametrize("name", ["two_moons_relu", "two_moons_gelu"])
def test_two_workers_equal_one_worker(name, numba_engine):
    m = load_model(name).astype(np.float32)
    X = RNG.normal(size=(70_000, 2)) * 0.8  # 4 blocks of 17 500 rows
    a = ifgsm(m, X, None, 0.1, 0.01, 3, workers=1).x_adv
    b = ifgsm(m, X, None, 0.1, 0.01, 3, workers=2).x_adv
    np.testing.assert_array_equal(a, b)


# -- equal blocks, box bounds once per block ----------------------------------------------------
def test_default_chunk_size_splits_into_equal_blocks_in_multiples_of_four():
    # 10⁵ points in the plane: 4 blocks of 25 000 (float32), 8 of 12 500 (float64), not
    # 3 × 32 768 + 1696 and 6 × 16 384 + 1696
    assert default_chunk_size(100_000, 2, np.float32) == 25_000
    assert default_chunk_size(100_000, 2, np.float64) == 12_500
    assert default_chunk_size(1000, 2, np.float64) == 1000  # one block fits
    for n, d, dt in [(10**6, 3, np.float64), (123_457, 5, np.float32), (40_000, 64, np.float64),
                     (70_000, 2, np.float32)]:
        per = DEFAULT_CHUNK_BYTES // (np.dtype(dt).itemsize * d)
        c = default_chunk_size(n, d, dt)
        blocks = -(-n // c)
        last = n - (blocks - 1) * c
        assert c <= per and blocks % BLOCK_MULTIPLE == 0
        assert 0 <= c - last < blocks  # equal up to the rounding of n / blocks
    # degenerate: a row is larger than the block budget, or a tiny n
    assert default_chunk_size(9, 10**5, np.float64) == 1
    assert default_chunk_size(2, 1, np.float32) == 2


def test_ball_rows_slice_the_box_or_compute_it_lazily():
    c = RNG.normal(size=(500, 3)).astype(np.float32)
    full = Ball(c, 0.1, "linf")
    sl = slice(100, 250)
    lazy = full.rows(sl)  # the full box is not computed yet: the block computes its own
    assert full._lo is None and lazy._lo is None
    X = RNG.normal(size=(150, 3)).astype(np.float32)
    p_lazy = lazy.project(X)
    full.project(np.zeros_like(c))  # now the full box exists: rows() slices it
    sliced = full.rows(sl)
    lo, hi = inner_box(c[sl], 0.1)
    np.testing.assert_array_equal(sliced._lo, lo)
    np.testing.assert_array_equal(sliced._hi, hi)
    np.testing.assert_array_equal(p_lazy, sliced.project(X))
    np.testing.assert_array_equal(p_lazy, np.clip(X, lo, hi))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_linf_start_check_accepts_the_sphere_and_rejects_outside(dtype):
    """solve_flow checks |x0 − c| ≤ ε (+ round-off) per coordinate without building the box."""
    V = wflow.potentials.Quadratic(np.eye(2))
    c = RNG.uniform(-3, 3, size=(50, 2))
    on = c + np.where(RNG.random((50, 2)) < 0.5, -0.25, 0.25)  # on the sphere, rounded
    res = wflow.solve_flow(V, on, T=0.1, tau=0.05, budget=0.25, center=c, dtype=dtype)
    c_t = c.astype(dtype).astype(float)  # the ball's centre in the flow's precision
    assert np.all(np.abs(res.positions[1:].astype(float) - c_t) <= 0.25)  # (x0 itself was rounded)
    out = on.copy()
    out[17, 1] = c[17, 1] + 0.2501
    with pytest.raises(ValueError, match="budget ball"):
        wflow.solve_flow(V, out, T=0.1, tau=0.05, budget=0.25, center=c, dtype=dtype)


@pytest.mark.parametrize("sizes,loss", [((2, 8, 8, 1), "mse"), ((2, 8, 8, 1), "ce"), ((2, 8, 4), "ce"), ((2, 8, 4), "mse")])
def test_value_and_predict_is_value_and_predict(sizes, loss):
    """The attack result's loss and success come from one forward pass: equal to the two calls."""
    m = MLP.init(sizes, "gelu", seed=2)
    X = RNG.normal(size=(700, 2))
    L = make_loss(m, RNG.integers(0, m.n_classes, size=700), loss)
    for pot in (L, -L):
        v, p = pot.value_and_predict(X)
        np.testing.assert_array_equal(v, pot.value(X))
        np.testing.assert_array_equal(p, pot.predict(X))


def test_default_workers_follow_releases_gil(monkeypatch):
    """solve_flow's default: block workers only when the potential's work releases the GIL
    (numba engine), one worker with the numpy engine (measured slower with two)."""
    import os

    import wflow.flow as flow_mod

    pools = []

    class Recording(flow_mod.ThreadPoolExecutor):
        def __init__(self, max_workers=None, **kw):
            pools.append(max_workers)
            super().__init__(max_workers=max_workers, **kw)

    monkeypatch.setattr(flow_mod, "ThreadPoolExecutor", Recording)
    m = MLP.init((2, 8, 1), "relu", seed=0, dtype=np.float32)
    X = RNG.normal(size=(70_000, 2))  # 4 blocks
    L = make_loss(m, None, "mse", x=X)
    engines = ["numpy"] + (["numba"] if nb is not None else [])
    for engine in engines:
        monkeypatch.setitem(mlp_mod._engine, "requested", engine)
        monkeypatch.setitem(mlp_mod._engine, "kernels", None)
        pools.clear()
        assert (-L).releases_gil == (engine == "numba") and (-L + L).releases_gil == (engine == "numba")
        wflow.solve_flow(-L, X, T=0.02, tau=0.01, budget=0.1)
        assert pools == ([] if engine == "numpy" or (os.cpu_count() or 1) < 2 else [min(os.cpu_count(), 4)])
    assert MLP.init((2, 1), "relu").releases_gil  # logistic regression: a few large numpy calls
    mlp_mod.kernel_engine("auto")
