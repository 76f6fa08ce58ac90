"""float32 / float64 precision: no silent upcasts on the float32 hot path (instrumented run),
exact attack guarantees (budget, step ≤ τ) in both precisions, and float32 ≈ float64 within
derived round-off bounds (docs/precision.md)."""

from __future__ import annotations

import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from scipy.special import ndtr

import wflow
from wflow._fp import cap_steps, exceeds, inner_box, one_ulp_toward, round_down
from wflow.adversarial import MLP, fgsm, ifgsm, load_model, make_loss, train
from wflow.adversarial import mlp as mlp_mod
from wflow.adversarial.mlp import _gelu32

U32 = float(np.finfo(np.float32).eps) / 2  # unit round-off 2^-24
U64 = float(np.finfo(np.float64).eps) / 2

# ------------------------------------------------------------------------------------------
# instrumented run: the dtype of every array the hot path holds or returns
# ------------------------------------------------------------------------------------------
ROOT = Path(wflow.__file__).resolve().parent
HOT_FILES = {str(ROOT / "adversarial" / "mlp.py"), str(ROOT / "adversarial" / "losses.py"),
             str(ROOT / "schemes.py"), str(ROOT / "steps.py"), str(ROOT / "_fp.py"), str(ROOT / "flow.py")}
# once-per-block set-up (exact bound computations in float64 on purpose) and the driver
# around the step loop; solve_flow's own frame holds the time grid and weights (float64)
NOT_HOT = {"exceeds", "_two_diff", "inner_box", "__post_init__", "rows", "solve_flow", "time_grid", "_raise_nonfinite",
           "_probe", "_as_potential", "float_dtype", "round_down", "<listcomp>", "<genexpr>",
           # public entry points (float64 user input, converted once) and label set-up
           "predict", "logits", "predict_proba", "_check", "accuracy", "__init__", "_labels",
           "with_labels", "restrict", "_copy", "__neg__", "make_loss", "loss_class", "as_dtype"}


# whole call trees that run once per attack (input validation, the probe of x0, public value/
# grad calls on float64 user input): not the per-step hot path
COLD_SUBTREES = {"_probe", "predict", "logits", "predict_proba", "accuracy", "value", "grad",
                 "value_and_grad", "value_and_predict", "__post_init__", "attack_potential", "random_start"}
COLD_FILES = HOT_FILES | {str(ROOT / "potentials.py"), str(ROOT / "adversarial" / "attacks.py")}


class DtypeTracer:
    """sys.settrace hook: at every line and return of a hot-path function, every float array
    or numpy float scalar among its locals, its return value and the module globals it names
    must have the expected dtype."""

    def __init__(self, dtype):
        self.dtype = np.dtype(dtype)
        self.bad: list[str] = []
        self.seen = 0
        self.functions: set[str] = set()

    def _check(self, where: str, name: str, v) -> None:
        items = v if isinstance(v, (tuple, list)) else (v,)
        for a in items:
            if isinstance(a, (np.ndarray, np.generic)) and a.dtype.kind == "f":
                self.seen += 1
                if a.dtype != self.dtype:
                    self.bad.append(f"{where}: {name} is {a.dtype}")

    def local(self, frame, event, arg):
        where = f"{Path(frame.f_code.co_filename).name}:{frame.f_code.co_name}:{frame.f_lineno}"
        if event in ("line", "return"):
            for name, v in frame.f_locals.items():
                # the flow driver's time grid (float64, used only in error messages) is not data
                if name not in ("self", "model", "potential", "grid"):
                    self._check(where, name, v)
            for name in frame.f_code.co_names:  # module-level constants used by this code
                v = frame.f_globals.get(name)
                if isinstance(v, (np.ndarray, np.generic)):
                    self._check(where, f"global {name}", v)
        if event == "return":
            self._check(where, "return value", arg)
        return self.local

    def __call__(self, frame, event, arg):
        code = frame.f_code
        if event == "call" and code.co_filename in HOT_FILES and code.co_name not in NOT_HOT:
            f = frame.f_back
            while f is not None:  # inside a once-per-call set-up or a public entry point?
                if f.f_code.co_name in COLD_SUBTREES and f.f_code.co_filename in COLD_FILES:
                    return None
                f = f.f_back
            self.functions.add(code.co_name)
            return self.local
        return None

    def run(self, fn):
        sys.settrace(self)
        try:
            return fn()
        finally:
            sys.settrace(None)


def two_moons_points(n, seed=0):
    X, _ = wflow.adversarial.make_two_moons(n, 0.15, seed=seed)
    return X


HAVE_NUMBA = mlp_mod._numba_kernels() is not None
ENGINES = ["numpy"] + (["numba"] if HAVE_NUMBA else [])


@pytest.fixture
def engine_reset():
    yield
    mlp_mod.kernel_engine("auto")


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("name", ["two_moons_relu", "two_moons_gelu"])
@pytest.mark.parametrize("loss", ["mse", "ce"])
def test_float32_ifgsm_hot_path_holds_only_float32(name, loss, engine, engine_reset):
    mlp_mod.kernel_engine(engine)
    m = load_model(name).astype(np.float32)
    X = two_moons_points(300)
    tr = DtypeTracer(np.float32)
    xa = tr.run(lambda: ifgsm(m, X, None, 0.1, 0.02, 3, loss=loss, workers=1)).x_adv
    assert xa.dtype == np.float32
    assert tr.bad == []
    # the tracer really looked at the hot path (numba kernels are opaque here: their arguments
    # are the float32 locals of _logits_and_grad; inside them, numba's own types are checked by
    # tests/test_network_kernels.py)
    expect = {"_step_blocks", "run_block", "step", "_sign_step", "cap_steps", "project", "_grad_into",
              "_logits_and_grad", "_dloss", "_workspace"}
    expect.add("_block_forward" if engine == "numpy" else "_network_kernels")
    if name.endswith("gelu") and engine == "numpy":
        expect.add("_gelu32")
    assert expect <= tr.functions and tr.seen > 200



@pytest.mark.parametrize("engine", ENGINES)
def test_float32_training_inner_flow_holds_only_float32(engine, engine_reset):
    """adversarial_train's inner flow (linf_flow_steps) runs the flow solver's block loop
    (wflow.flow._step_blocks) without solve_flow around it: float32 throughout, and the same
    hot-path functions seen."""
    from wflow.adversarial.attacks import linf_flow_steps

    mlp_mod.kernel_engine(engine)
    m = load_model("two_moons_gelu").astype(np.float32)
    X = two_moons_points(64).astype(np.float32)
    L = make_loss(m, m.predict(X), "ce")
    tr = DtypeTracer(np.float32)
    Z = tr.run(lambda: linf_flow_steps(L, X, 0.1, 0.02, 3))
    assert Z.dtype == np.float32 and np.any(Z != X)
    assert tr.bad == []
    assert {"_step_blocks", "run_block", "step", "_sign_step", "cap_steps", "project", "_grad_into",
            "_logits_and_grad"} <= tr.functions and tr.seen > 50

def test_float32_multiclass_flow_holds_only_float32(engine_reset):
    mlp_mod.kernel_engine("numpy")
    m = MLP.init((3, 12, 12, 4), "gelu", seed=0, dtype=np.float32)
    X = np.random.default_rng(0).normal(size=(100, 3))
    tr = DtypeTracer(np.float32)
    tr.run(lambda: ifgsm(m, X, None, 0.1, 0.02, 2, loss="ce", workers=1))
    assert tr.bad == [] and {"_value_and_input_grad", "_loss_and_dloss", "_gelu32"} <= tr.functions


def test_dtype_tracer_catches_upcasts(monkeypatch, engine_reset):
    """Mutants: a sigmoid that computes in float64, and a float64 constant in the GELU kernel."""
    mlp_mod.kernel_engine("numpy")
    m = load_model("two_moons_gelu").astype(np.float32)
    X = two_moons_points(50)

    def sigmoid64(z):
        z = np.asarray(z, dtype=float)
        return 1.0 / (1.0 + np.exp(-z))

    import wflow.adversarial.losses as losses_mod

    with monkeypatch.context() as mp:
        mp.setattr(losses_mod, "sigmoid", sigmoid64)
        tr = DtypeTracer(np.float32)
        tr.run(lambda: ifgsm(m, X, None, 0.1, 0.02, 1, workers=1))
        assert any("float64" in b for b in tr.bad)
    with monkeypatch.context() as mp:
        mp.setattr(mlp_mod, "_INV_SQRT_2PI", np.float64(mlp_mod._INV_SQRT_2PI))
        tr = DtypeTracer(np.float32)
        tr.run(lambda: ifgsm(m, X, None, 0.1, 0.02, 1, workers=1))
        assert any("_INV_SQRT_2PI" in b for b in tr.bad)
    # and float64 models keep float64 throughout (the tracer is dtype-generic)
    tr = DtypeTracer(np.float64)
    tr.run(lambda: ifgsm(load_model("two_moons_gelu"), X, None, 0.1, 0.02, 1, workers=1))
    assert tr.bad == []


# ------------------------------------------------------------------------------------------
# exact guarantees: ‖x_k − x‖∞ ≤ ε and ‖x_{k+1} − x_k‖∞ ≤ τ with no round-off slack
# ------------------------------------------------------------------------------------------
def exact_violations(A, B, bound) -> int:
    """How many entries have |a − b| > bound in exact rational arithmetic."""
    b = Fraction(bound)
    return sum(abs(Fraction(float(a)) - Fraction(float(c))) > b for a, c in zip(A.ravel(), B.ravel()))


def scattered_points(n, d, seed):
    """Points of very different magnitudes (rounding of x ± ε at many exponents)."""
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)) * 10.0 ** rng.integers(-3, 4, size=(n, 1))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_ifgsm_budget_and_steps_hold_exactly(dtype):
    rng = np.random.default_rng(1)
    d = 3
    m = MLP.init((d, 10, 1), "gelu", seed=2, dtype=dtype)
    X = scattered_points(120, d, 3).astype(dtype)  # the clean inputs, as the model sees them
    eps, alpha, steps = 0.1, 0.1 / 3, 7  # neither ε nor α is a float32 (or binary) number
    y = rng.integers(0, 2, size=len(X))
    r = ifgsm(m, X, y, eps, alpha, steps, return_trajectory=True, workers=1)
    xa, P = r.x_adv, r.trajectory.positions
    assert P.dtype == dtype
    assert exact_violations(xa, X, eps) == 0
    for k in range(steps):
        assert exact_violations(P[k + 1], P[k], alpha) == 0
    # the guarantee is not vacuous: the budget is reached (to rounding) and steps are ≈ α
    assert np.max(np.abs(xa.astype(float) - X)) > eps * (1 - 4 * U32)
    # mutant: the textbook loop clip(x + α sign ∇ℓ, x − ε, x + ε) in the same precision
    # violates both bounds by round-off — which the exact check detects
    L = make_loss(m, y)
    x, bad_steps = X.copy(), 0
    for _ in range(steps):
        new = np.clip(x + dtype(alpha) * np.sign(L.grad(x)).astype(dtype), X - dtype(eps), X + dtype(eps))
        bad_steps += exact_violations(new, x, alpha)
        x = new
    assert exact_violations(x, X, eps) > 0 and bad_steps > 0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fgsm_step_is_at_most_eps_exactly(dtype):
    m = load_model("two_moons_relu").astype(dtype)
    X = scattered_points(300, 2, 4).astype(dtype)
    xa = fgsm(m, X, 1, 0.07).x_adv
    assert xa.dtype == dtype and exact_violations(xa, X, 0.07) == 0
    # and each moved coordinate moved by about ε: by τ_d (ε rounded down to the dtype) less
    # the rounding of x ± τ_d (≤ ulp(y)/2) and at most one capping ulp: |y − x| ≥ τ_d − 1.5 ulp(y)
    moved = xa != X
    d = np.abs(xa.astype(float) - X.astype(float))[moved]
    tau_d = float(round_down(0.07, dtype))
    assert np.all(d >= tau_d - 1.5 * np.spacing(np.abs(X[moved]) + dtype(0.07)).astype(float))


def test_fp_helpers_against_rational_arithmetic():
    rng = np.random.default_rng(5)
    for dtype in (np.float32, np.float64):
        c = scattered_points(400, 1, 6).ravel().astype(dtype)
        for r in (0.1, 1e-3, 0.3, 2.0 / 3, 0.0):
            lo, hi = inner_box(c, r)
            assert lo.dtype == hi.dtype == dtype
            assert exact_violations(c, lo, r) == 0 and exact_violations(hi, c, r) == 0
            # tight: within two ulps of the exact bounds
            assert np.all(np.abs(lo.astype(float) - (c.astype(float) - r)) <= 2 * np.spacing(np.abs(lo)) + 1e-300)
        a, b = c, rng.permutation(c)
        for eps in (0.1, 1.0, 3.0):
            got = exceeds(a, b, eps)
            ref = np.array([Fraction(float(x)) - Fraction(float(z)) > Fraction(eps) for x, z in zip(a, b)])
            np.testing.assert_array_equal(got, ref)
        tau = round_down(0.1 / 3, dtype)
        assert tau.dtype == dtype and Fraction(float(tau)) <= Fraction(0.1 / 3)
        assert float(np.nextafter(tau, dtype(1))) > 0.1 / 3
        Y = c - np.copysign(tau, rng.normal(size=c.shape)).astype(dtype)
        raw = exact_violations(Y, c, float(tau))
        cap_steps(c, Y, tau)
        assert exact_violations(Y, c, float(tau)) == 0 and (raw > 0 or dtype == np.float64)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_one_ulp_toward_is_nextafter_bit_for_bit(dtype):
    """The integer-arithmetic ulp step (cap_steps' fix-up) equals numpy.nextafter on the mask,
    across signs, zero crossings, subnormals and huge values, and leaves the rest untouched."""
    rng = np.random.default_rng(11)
    tiny = float(np.finfo(dtype).smallest_subnormal)
    for scale in (3 * tiny, 1e-3, 1.0, 1e30):
        Y = (rng.normal(size=20_000) * scale).astype(dtype)
        X = (Y + rng.normal(size=Y.size) * scale).astype(dtype)
        X[:500], X[500:1000] = -Y[:500], 0.0  # crossing zero, and toward zero
        mask = (rng.random(Y.size) < 0.5) & (Y != 0) & (X != Y)
        ref = np.where(mask, np.nextafter(Y, X), Y)
        got = one_ulp_toward(Y.copy(), X, mask)
        np.testing.assert_array_equal(got.view(np.uint8), ref.view(np.uint8))
        assert mask.any() and np.any(got != Y)


# ------------------------------------------------------------------------------------------
# float32 ≈ float64 within derived bounds
# ------------------------------------------------------------------------------------------
# GELU in float32: A&S 7.1.26 (|Δerf| ≤ 1.5e-7, so |ΔΦ| ≤ 7.5e-8) plus the float32 evaluation:
# e = φ(s) (3 roundings + exp ≤ 4 ulp), t (3 roundings), Horner in t ∈ (0, 1] with condition
# Σ|a_i| / |P(t)| ≤ 4.5 over 9 operations, the products and the final ½ ± (½ − q) (2 more):
# relative error of q = Φ(−|s|) ≤ (7 + 3·2 + 4.5·9 + 2)·u ≈ 56u with q ≤ ½, plus 2u absolute:
PHI_TOL = 7.5e-8 + (56 * 0.5 + 2) * U32  # ≈ 1.9e-6
# a'(s) = Φ + s φ: the Φ error, plus |s φ(s)| ≤ 0.25 with relative error (7 + 1)u, plus 1u
DERIV_TOL = PHI_TOL + (8 * 0.25 + 1) * U32


def test_gelu32_phi_and_derivative_within_derived_bound():
    s = np.linspace(-9.0, 9.0, 400_001).astype(np.float32)
    a, d, q = s.copy(), np.empty_like(s), np.empty_like(s)
    _gelu32(a, d, np.empty_like(s), q)  # with d given, the scratch q ends as Φ̃(s)
    s64 = s.astype(np.float64)
    phi = ndtr(s64)
    assert np.all(np.abs(q - phi) <= PHI_TOL)
    # a = fl(s·Φ̃(s)): |s|·PHI_TOL + u|a|
    assert np.all(np.abs(a - s64 * phi) <= np.abs(s64) * PHI_TOL + U32 * np.abs(s64 * phi))
    dref = phi + s64 * np.exp(-0.5 * s64 * s64) / np.sqrt(2 * np.pi)
    assert np.all(np.abs(d - dref) <= DERIV_TOL + U32 * np.abs(dref))
    # the forward-only variant computes the same activation
    a2 = s.copy()
    _gelu32(a2, None, np.empty_like(s), np.empty_like(s))
    np.testing.assert_array_equal(a2, a)


@pytest.mark.skipif(not HAVE_NUMBA, reason="numba is not installed")
def test_numba_kernels_within_the_same_bounds_and_relu_bit_identical(engine_reset):
    """The numba engine: fused GELU (same formulas, Cephes expf ≤ 2 ulp, FMA contraction only
    removes roundings) inside the numpy kernel's derived bounds; fused bias + ReLU and the whole
    ReLU gradients (float32 and float64) bit-identical to the numpy path."""
    from wflow.adversarial import _numba as nb

    s = np.linspace(-9.0, 9.0, 400_001).astype(np.float32)
    s64 = s.astype(np.float64)
    phi = ndtr(s64)
    dref = phi + s64 * np.exp(-0.5 * s64 * s64) / np.sqrt(2 * np.pi)
    b = np.linspace(-0.5, 0.5, s.size).astype(np.float32)
    for kernel, shift in ((lambda a, d: nb.gelu32_and_deriv(a, d), 0.0),
                          (lambda a, d: nb.bias_gelu32(a, -b, d), b)):
        a, d = (s + shift).astype(np.float32), np.empty_like(s)
        kernel(a, d)
        assert np.all(np.abs(a - s64 * phi) <= np.abs(s64) * PHI_TOL + U32 * np.abs(s64 * phi))
        assert np.all(np.abs(d - dref) <= DERIV_TOL + U32 * np.abs(dref))
    a2 = s.copy()
    nb.gelu32(a2)
    a3 = (s + b).astype(np.float32)
    nb.bias_gelu32_forward(a3, -b)
    a = s.copy()
    nb.gelu32_and_deriv(a, np.empty_like(s))
    np.testing.assert_array_equal(a2, a)
    assert np.all(np.abs(a3 - s64 * phi) <= np.abs(s64) * PHI_TOL + 2 * U32 * np.abs(s64 * phi))
    # the bound is tight enough to see a 5e-4 relative error in a′ (a wrong coefficient)
    d = np.empty_like(s)
    nb.gelu32_and_deriv(s.copy(), d)
    assert not np.all(np.abs(d * np.float32(1.0005) - dref) <= DERIV_TOL + U32 * np.abs(dref))
    X = two_moons_points(3000, seed=4)
    # (float64 GELU: Cody's erfc in the numba engine, within its bound of ndtr: tests/test_gelu64.py)
    for name, dt in (("two_moons_relu", np.float32), ("two_moons_relu", np.float64)):
        m = load_model(name).astype(dt)
        mlp_mod.kernel_engine("numpy")
        z0, g0 = m._logits_and_grad(X.astype(dt))
        mlp_mod.kernel_engine("numba")
        z1, g1 = m._logits_and_grad(X.astype(dt))
        np.testing.assert_array_equal(z0, z1)
        np.testing.assert_array_equal(g0, g1)
        np.testing.assert_array_equal(m.logits(X), m.logits(X))


def test_kernel_engine_selection(engine_reset, monkeypatch):
    with pytest.raises(ValueError, match="engine must be one of"):
        mlp_mod.kernel_engine("cuda")
    assert mlp_mod.kernel_engine("numpy") == "numpy"
    assert mlp_mod.kernel_engine("auto") == ("numba" if HAVE_NUMBA else "numpy")
    monkeypatch.setitem(mlp_mod._engine, "requested", "bogus")
    monkeypatch.setitem(mlp_mod._engine, "kernels", None)
    with pytest.raises(ValueError, match="WFLOW_KERNELS"):
        mlp_mod.kernel_engine()
    monkeypatch.setitem(mlp_mod._engine, "requested", "auto")
    if not HAVE_NUMBA:
        with pytest.raises(ImportError, match="wflow\\[numba\\]"):
            mlp_mod.kernel_engine("numba")


def test_gelu32_mutant_coefficient_is_detected(monkeypatch):
    s = np.linspace(-5.0, 5.0, 20_001).astype(np.float32)
    A = list(mlp_mod._AS_A)
    A[2] *= 1.0005
    monkeypatch.setattr(mlp_mod, "_AS_A", tuple(A))
    a, d = s.copy(), np.empty_like(s)
    mlp_mod._gelu32(a, d, np.empty_like(s), np.empty_like(s))
    s64 = s.astype(np.float64)
    dref = ndtr(s64) + s64 * np.exp(-0.5 * s64 * s64) / np.sqrt(2 * np.pi)
    assert np.max(np.abs(d - dref) - U32 * np.abs(dref)) > DERIV_TOL


def forward_error_bound(m: MLP, X: np.ndarray) -> np.ndarray:
    """A-posteriori bound on |z_float32(x) − z(x)| for a binary MLP (computed in float64).

    Per layer s = hW + b with n inputs: inputs, weights and biases are rounded to float32
    (3 roundings per product) and summed (n more): |Δs| ≤ γ_{n+3} (|h||W| + |b|) + |Δh||W|.
    Activations: ReLU is 1-Lipschitz and exact; GELU is 1.13-Lipschitz and evaluated with
    |ΔΦ| ≤ PHI_TOL (plus a rounding of the product): |Δh| ≤ 1.13 |Δs| + |s| PHI_TOL + u|h|.
    """
    def gamma(k):
        return k * U32 / (1 - k * U32)

    h = X.astype(np.float64)
    dh = np.zeros_like(h)
    for i, (W, b) in enumerate(zip(m.weights, m.biases)):
        W, b = W.astype(np.float64), b.astype(np.float64)
        s = h @ W + b
        ds = gamma(W.shape[0] + 3) * (np.abs(h) @ np.abs(W) + np.abs(b)) + dh @ np.abs(W)
        if i == len(m.weights) - 1:
            return ds[:, 0]
        if m.activation == "relu":
            h, dh = np.maximum(s, 0), ds
        else:
            h = s * ndtr(s)
            dh = 1.13 * ds + np.abs(s) * PHI_TOL + U32 * np.abs(h)


@pytest.mark.parametrize("name", ["two_moons_relu", "two_moons_gelu"])
def test_float32_logits_and_losses_agree_with_float64_within_forward_bound(name):
    m = load_model(name)
    m32 = m.astype(np.float32)
    X = two_moons_points(2000, seed=7)
    z64, z32 = m.logits(X), m32.logits(X)
    bound = forward_error_bound(m, X)
    assert z32.dtype == np.float32
    assert np.all(np.abs(z32 - z64) <= bound)
    # the bound is a useful one: a small fraction of |z| (worst case; typical errors are ~1e-7 |z|)
    assert np.median(bound / np.abs(z64)) < 1e-3
    # the squared-error loss: |Δℓ| ≤ sup|∂ℓ/∂z| |Δz| + rounding, sup|2(p − y)p(1 − p)| ≤ 0.31
    y = m.predict(X)
    l64, l32 = make_loss(m, y).value(X), make_loss(m32, y).value(X)
    assert np.all(np.abs(l32 - l64) <= 0.31 * bound + 8 * U32)
    # predictions agree wherever the logit is farther from 0 than the bound
    sure = np.abs(z64) > bound
    np.testing.assert_array_equal(m32.predict(X)[sure], m.predict(X)[sure])


def test_float32_input_gradients_agree_with_float64_where_well_conditioned():
    """∂z/∂x for the GELU model: backward pass errors, relative to the float64 gradient norm.

    Bound (docs/precision.md): the backward pass multiplies by float32 weights and a'(s) with
    |Δa'| ≤ DERIV_TOL + |a''| |Δs| (|a''| ≤ 0.8); relative error ≲ L (γ_{w+3} + DERIV_TOL/min|a'|)
    summed over paths, which the a-posteriori bound below evaluates with absolute values.
    """
    m = load_model("two_moons_gelu")
    m32 = m.astype(np.float32)
    X = two_moons_points(1000, seed=8)
    g64, g32 = m.logit_grad(X), m32.logit_grad(X)
    # |Δg| ≤ Σ over layers of (γ + DERIV_TOL + 0.8 |Δs|) |W|-weighted magnitudes: bounded by
    # propagating |δ| with absolute values — computed here in float64
    gam = (20 + 3) * U32
    fwd_ds, h = [], X.astype(np.float64)
    dh = np.zeros_like(h)
    s_list = []
    for W, b in zip(m.weights[:-1], m.biases[:-1]):
        s = h @ W + b
        ds = gam * (np.abs(h) @ np.abs(W) + np.abs(b)) + dh @ np.abs(W)
        s_list.append(s)
        fwd_ds.append(ds)
        h = s * ndtr(s)
        dh = 1.13 * ds + np.abs(s) * PHI_TOL + U32 * np.abs(h)
    delta = np.abs(m.weights[-1][:, 0])[None, :] * np.ones((len(X), 1))
    err = np.zeros_like(delta)
    for i in range(len(s_list) - 1, -1, -1):
        s = s_list[i]
        ap = ndtr(s) + s * np.exp(-0.5 * s * s) / np.sqrt(2 * np.pi)
        dap = DERIV_TOL + 0.8 * fwd_ds[i] + U32 * np.abs(ap)
        err = err * np.abs(ap) + delta * dap + gam * delta * np.abs(ap)
        W = np.abs(m.weights[i])
        delta = (delta * np.abs(ap)) @ W.T
        err = err @ W.T + gam * delta
    assert np.all(np.abs(g32 - g64) <= err)
    assert np.median(err / np.abs(g64).max(axis=1, keepdims=True)) < 1e-2  # worst case, not vacuous


def test_float32_training_stays_float32_and_tracks_float64():
    X, y = wflow.adversarial.make_two_moons(300, 0.1, seed=1)
    m0 = MLP.init((2, 16, 16, 1), "gelu", seed=0)
    a64, h64 = train(m0, X, y, epochs=15, lr=1e-2, seed=3)
    a32, h32 = train(m0.astype(np.float32), X, y, epochs=15, lr=1e-2, seed=3)
    assert all(W.dtype == np.float32 for W in a32.weights + a32.biases)
    # Adam is scale-invariant per coordinate: rounding differences grow, but slowly over 75
    # steps of size ≤ lr; the losses stay within a few percent, accuracy alike
    assert abs(h32[-1] - h64[-1]) <= 0.05 * h64[0]
    assert abs(a32.accuracy(X, y) - a64.accuracy(X, y)) <= 0.02


def test_solve_flow_dtype_option_and_validation():
    V = wflow.potentials.Quadratic(np.diag([1.0, 2.0]))
    x0 = np.array([[0.7, -0.35], [0.2, 0.05]])
    r = wflow.solve_flow(V, x0, T=0.5, tau=0.01, dtype=np.float32)
    assert r.positions.dtype == np.float32
    # ℓ∞ closed form: u_i(t) = sign(x_i) max(|x_i| − t, 0); float32 steps are the float32 τ
    # rounded down, so the error is ≤ K·(τ − τ32) + K ulps of |x| (chatter at 0 is ≤ τ)
    expect = np.sign(x0) * np.maximum(np.abs(x0) - 0.5, 0)
    assert np.max(np.abs(r.positions[-1] - expect)) <= 0.01 + 50 * 2 * np.spacing(np.float32(1.0))
    with pytest.raises(ValueError, match="dtype"):
        wflow.solve_flow(V, x0, T=0.1, tau=0.01, dtype=np.int64)
    with pytest.raises(TypeError, match="dtype"):
        wflow.solve_flow(V, x0, T=0.1, tau=0.01, dtype="nonsense")
