"""The shipped digits model, multiclass attacks (numpy and torch) and the multiclass bound on digits."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from wflow.adversarial import (
    MLP,
    fgsm,
    ifgsm,
    load_dataset,
    load_model,
    make_loss,
    minmove_attack,
    pairwise_risk_lower_bound,
)

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def digits():
    return load_model("digits_relu"), load_dataset("digits", seed=0)


def test_shipped_digits_model_accuracy(digits):
    m, ds = digits
    assert m.layer_sizes == (64, 64, 64, 10) and m.n_classes == 10
    assert m.accuracy(ds.X_test, ds.y_test) >= 0.95


def test_multiclass_attacks(digits):
    m, ds = digits
    X, y = ds.X_test[:80], ds.y_test[:80]
    L = make_loss(m, y, "ce")
    f = fgsm(m, X, y, 0.05, loss="ce")
    # x + ε·sign, one ulp shorter where fl(x ± ε) would overshoot ε (exact steps: docs/precision.md)
    assert np.all(np.abs(f.x_adv - (X + 0.05 * np.sign(L.grad(X)))) <= np.spacing(np.abs(X) + 0.05))
    assert np.all(np.abs(f.x_adv - X) <= 0.05)
    r = ifgsm(m, X, y, epsilons=[0.0, 0.05, 0.1, 0.2], steps=10, loss="ce")
    assert np.all(np.diff(r.success_rate) >= 0) and r.success_rate[-1] > 0.9
    np.testing.assert_array_equal(r.success[2], m.predict(r.x_adv[2]) != y)
    assert np.all(np.abs(r.x_adv[3] - X) <= 0.2 + 1e-15)
    # the attacked loss never decreases against the clean loss for the ascent attacks
    assert np.all(r.loss[1] >= L.value(X) - 1e-12)
    mm = minmove_attack(m, X[:10], y[:10], 0.1, 0.05, 2, loss="ce", inner="local")
    assert mm.x_adv.shape == (10, 64)


@pytest.mark.slow
def test_multiclass_attacks_with_torch(digits):
    torch = pytest.importorskip("torch")  # noqa: F841
    from wflow.adversarial import TorchPotential, mlp_to_torch

    m, ds = digits
    X, y = ds.X_test[:20], ds.y_test[:20]
    T = TorchPotential(mlp_to_torch(m, sigmoid=False), loss="ce")
    a = ifgsm(T, X, y, 0.05, 0.02, 4)
    b = ifgsm(m, X, y, 0.05, 0.02, 4, loss="ce")
    np.testing.assert_allclose(a.x_adv, b.x_adv, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(a.success, b.success)


def test_pairwise_bound_on_digits_pairs(digits):
    _, ds = digits
    X, y = ds.X_test, ds.y_test
    sel = np.isin(y, [3, 8])
    b = pairwise_risk_lower_bound(X[sel], y[sel], [0.0, 0.3, 0.5], "linf")
    # ε = 0.5 in ℓ∞ with pixels in [0, 1]: every pair within radius 1 conflicts, F = min class mass
    n3, n8 = np.sum(y[sel] == 3), np.sum(y[sel] == 8)
    assert b.bound[0] == 0.0 and b.bound[2] == pytest.approx(min(n3, n8) / sel.sum(), abs=1e-15)
    full = pairwise_risk_lower_bound(X, y, [0.2], "linf")
    assert 0.0 <= full.bound[0] <= 0.5 and len(full.pairs[0]) <= 5


@pytest.mark.slow
def test_train_digits_script_reproduces_the_shipped_model(tmp_path):
    r = subprocess.run([sys.executable, str(ROOT / "experiments" / "train_digits.py"), "--out", str(tmp_path)],
                       capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    new, old = MLP.load(tmp_path / "digits_relu.npz"), load_model("digits_relu")
    for p, q in zip(new.weights + new.biases, old.weights + old.biases):
        # same seeds and data; equal up to BLAS summation order on another machine
        np.testing.assert_allclose(p, q, rtol=1e-6, atol=1e-8)
