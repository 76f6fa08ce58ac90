"""k-class MLP: softmax cross-entropy / squared-error loss potentials, input and parameter
gradients, prediction, seeded Adam training; the binary behaviour is unchanged."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import logsumexp

import wflow
from wflow.adversarial import MLP, load_model, make_loss, train
from wflow.adversarial.losses import (
    CrossEntropyLoss,
    SoftmaxCrossEntropyLoss,
    SoftmaxSquaredErrorLoss,
    SquaredErrorLoss,
)
from wflow.adversarial.mlp import log_softmax, softmax

EPS64 = np.finfo(np.float64).eps


def central_fd(f, X, h):
    """Central differences of a batched f: (n, d) -> (n, ...) along every input coordinate."""
    cols = []
    for i in range(X.shape[1]):
        E = np.zeros_like(X)
        E[:, i] = h
        cols.append((f(X + E) - f(X - E)) / (2 * h))
    return np.stack(cols, axis=-1)


def blobs(n, k, d, seed):
    """k well-separated Gaussian blobs in R^d, labels 0..k-1."""
    rng = np.random.default_rng(seed)
    centers = 3.0 * rng.normal(size=(k, d))
    y = np.arange(n) % k
    return centers[y] + 0.5 * rng.normal(size=(n, d)), y


@pytest.fixture(scope="module")
def net3():
    return MLP.init((4, 9, 7, 3), "gelu", seed=11)


def test_softmax_ce_value_is_logsumexp_minus_true_logit_and_stable():
    z = np.array([[1000.0, 0.0, -1000.0], [-800.0, -801.0, -799.0], [0.1, 0.2, 0.3], [5.0, 5.0, 5.0]])
    y = np.array([1, 2, 0, 1])
    expect = logsumexp(z, axis=1) - z[np.arange(4), y]  # scipy as the independent reference
    v, dz = SoftmaxCrossEntropyLoss._loss_and_dloss(z, y)
    # both sides subtract numbers of size max|z|: the difference is exact to ~ a few ulp of
    # max|z| (absolute), whatever the size of ℓ
    np.testing.assert_allclose(v, expect, rtol=0, atol=4 * EPS64 * np.abs(z).max())
    assert v[0] == 1000.0 and v[3] == pytest.approx(np.log(3.0), rel=2 * EPS64)
    # ∂ℓ/∂z = softmax(z) − e_y: rows sum to 0, every entry finite even for |z| = 1000
    np.testing.assert_allclose(dz.sum(axis=1), 0.0, atol=4 * EPS64)
    # exp of an argument known to ~ 4 eps max|z| (absolute): relative error ≤ that, p ≤ 1
    tol = 4 * EPS64 * np.abs(z).max()
    onehot = np.eye(3)[y]
    np.testing.assert_allclose(dz, np.exp(z - logsumexp(z, axis=1, keepdims=True)) - onehot,
                               rtol=0, atol=tol)
    np.testing.assert_allclose(softmax(z).sum(1), 1.0, rtol=0, atol=4 * EPS64)
    np.testing.assert_allclose(np.exp(log_softmax(z)), softmax(z), rtol=0, atol=tol)


@pytest.mark.parametrize("activation", ["relu", "gelu"])
@pytest.mark.parametrize("loss", ["ce", "mse"])
def test_multiclass_input_gradients_match_central_differences(activation, loss):
    m = MLP.init((4, 9, 7, 3), activation, seed=3)
    rng = np.random.default_rng(4)
    X = rng.normal(size=(40, 4))
    y = rng.integers(0, 3, size=40)
    L = make_loss(m, y, loss)
    assert isinstance(L, SoftmaxCrossEntropyLoss if loss == "ce" else SoftmaxSquaredErrorLoss)
    v, g = L.value_and_grad(X)
    np.testing.assert_array_equal(v, L.value(X))
    np.testing.assert_allclose(g, L.grad(X), rtol=0, atol=0)
    # central differences with h = 1e-5: truncation h²/6·|ℓ'''| ≲ 1e-10 (|ℓ'''| = O(1) here)
    # plus round-off ~ eps·|ℓ|/h ≈ 1e-11; a ReLU kink inside [x − h, x + h] would break this,
    # which these seeded points avoid (checked: all pre-activations are ≥ 1e-3 away from 0).
    fd = central_fd(L.value, X, 1e-5)
    np.testing.assert_allclose(g, fd, rtol=0, atol=1e-8)
    # the flow hot path writes the same gradient
    out = np.empty_like(X)
    np.testing.assert_allclose(L._grad_into(X, out), g, rtol=0, atol=0)


def test_multiclass_logit_jacobian_matches_central_differences(net3):
    X = np.random.default_rng(5).normal(size=(20, 4))
    J = net3.logit_grad(X)
    assert J.shape == (20, 3, 4)
    np.testing.assert_allclose(J, central_fd(net3.logits, X, 1e-5), rtol=0, atol=1e-8)
    np.testing.assert_allclose(net3.logit_grad(X[0]), J[0], rtol=0, atol=1e-15)


def test_multiclass_prediction_and_probabilities(net3):
    X = np.random.default_rng(6).normal(size=(30, 4))
    z = net3.logits(X)
    assert z.shape == (30, 3) and net3.n_classes == 3 and not net3.binary
    p = net3.predict_proba(X)
    np.testing.assert_allclose(p, np.exp(z) / np.exp(z).sum(1, keepdims=True), rtol=1e-14)
    np.testing.assert_array_equal(net3.predict(X), np.argmax(z, axis=1))
    y = net3.predict(X)
    assert net3.accuracy(X, y) == 1.0
    y2 = (y + 1) % 3
    assert net3.accuracy(X, y2) == 0.0
    assert net3.logits(X[0]).shape == (3,)


def test_two_logit_softmax_equals_binary_model():
    """softmax CE with logits (0, z) is the binary CE of z, and the same for the squared error
    of the class-1 probability up to the factor 2 (‖p − e_y‖² = 2 (p_1 − y)²)."""
    b = MLP.init((3, 8, 1), "gelu", seed=2)
    W2 = np.hstack([np.zeros_like(b.weights[-1]), b.weights[-1]])
    m = MLP(b.weights[:-1] + [W2], b.biases[:-1] + [np.r_[0.0, b.biases[-1]]], "gelu")
    assert m.n_classes == 2 and not m.binary
    rng = np.random.default_rng(1)
    X, y = rng.normal(size=(25, 3)), rng.integers(0, 2, size=25)
    np.testing.assert_array_equal(m.predict(X), b.predict(X))
    for name, factor in (("ce", 1.0), ("mse", 2.0)):
        Lm, Lb = make_loss(m, y, name), make_loss(b, y, name)
        assert type(Lb) is (CrossEntropyLoss if name == "ce" else SquaredErrorLoss)
        np.testing.assert_allclose(Lm.value(X), factor * Lb.value(X), rtol=1e-13, atol=1e-15)
        np.testing.assert_allclose(Lm.grad(X), factor * Lb.grad(X), rtol=1e-12, atol=1e-15)


def test_multiclass_parameter_gradients_match_finite_differences(net3):
    rng = np.random.default_rng(7)
    X, y = rng.normal(size=(15, 4)), rng.integers(0, 3, size=15)
    L = SoftmaxCrossEntropyLoss

    def total(net):
        return L._loss(net._forward(X)[2], y).sum()

    fwd = net3._forward(X)
    gW, gb = net3._param_grads(X, L._dloss(fwd[2], y), fwd)
    h = 1e-6
    for li in range(len(net3.weights)):
        for arr, grad in ((net3.weights[li], gW[li]), (net3.biases[li], gb[li])):
            flat, gflat = arr.reshape(-1), grad.reshape(-1)
            for j in range(0, flat.size, max(1, flat.size // 7)):  # a spread of entries
                old = flat[j]
                flat[j] = old + h
                up = total(net3)
                flat[j] = old - h
                down = total(net3)
                flat[j] = old
                # truncation O(h²) and round-off ~ 15·eps·|Σℓ|/h ≈ 1e-9
                assert abs((up - down) / (2 * h) - gflat[j]) <= 1e-7 * max(1.0, abs(gflat[j]))
    net3._refresh()


def test_multiclass_training_is_seeded_and_learns():
    X, y = blobs(300, 4, 2, seed=0)
    m0 = MLP.init((2, 16, 16, 4), "relu", seed=1)
    a, ha = train(m0, X, y, loss="ce", epochs=25, lr=1e-2, seed=3)
    b, hb = train(m0, X, y, loss="ce", epochs=25, lr=1e-2, seed=3)
    np.testing.assert_array_equal(ha, hb)
    for Wa, Wb in zip(a.weights, b.weights):
        np.testing.assert_array_equal(Wa, Wb)
    # history is the mean softmax CE of the trained net over the data
    np.testing.assert_allclose(ha[-1], np.mean(logsumexp(a.logits(X), 1) - a.logits(X)[np.arange(300), y]),
                               rtol=1e-12)
    assert ha[-1] < 0.25 * ha[0] and a.accuracy(X, y) > 0.95
    assert m0.accuracy(X, y) < 0.6  # untouched initial network
    c, hc = train(m0, X, y, loss="mse", epochs=25, lr=1e-2, seed=3)
    assert c.accuracy(X, y) > 0.95 and hc[-1] < hc[0]
    with pytest.raises(ValueError, match="y"):
        train(m0, X, np.full(300, 4))


def test_multiclass_labels_are_checked(net3):
    X = np.zeros((3, 4))
    with pytest.raises(ValueError, match=r"y must contain only the labels \{0, …, 2\}"):
        make_loss(net3, [0, 3, 1])
    with pytest.raises(ValueError, match="y"):
        make_loss(net3, [0, 1.5, 1])
    with pytest.raises(ValueError, match="y"):
        make_loss(net3, -1)
    with pytest.raises(ValueError, match="binary"):
        CrossEntropyLoss(net3, [0, 1, 2])
    with pytest.raises(ValueError, match="k-class"):
        SoftmaxCrossEntropyLoss(load_model("two_moons_relu"), [0, 1])
    with pytest.raises(ValueError, match="logit gradients"):
        net3._logits_and_grad(X)
    L = make_loss(net3, 2)  # broadcast label
    np.testing.assert_allclose(L.value(X), make_loss(net3, [2, 2, 2]).value(X), rtol=0, atol=0)
    Lp = make_loss(net3, None, "ce", x=X)
    np.testing.assert_array_equal(Lp.labels, net3.predict(X))


def test_multiclass_attack_flow_increases_loss_and_respects_budget(net3):
    X, _ = blobs(60, 3, 4, seed=9)
    L = make_loss(net3, None, "ce", x=X)
    res = wflow.solve_flow(-L, X, T=0.2, tau=0.01, budget=0.1)
    Xa = res.positions[-1]
    # the box bounds x ± ε are rounded once: ≤ ½ ulp(|x| + ε) each side
    assert np.max(np.abs(Xa - X)) <= 0.1 + EPS64 * np.max(np.abs(X) + 0.1)
    assert np.all(L.value(Xa) >= L.value(X) - 1e-12) and L.value(Xa).mean() > L.value(X).mean()
    # blocks see their own labels
    res2 = wflow.solve_flow(-L, X, T=0.2, tau=0.01, budget=0.1, chunk_size=7)
    np.testing.assert_array_equal(res2.positions, res.positions)


def test_multiclass_save_load_and_dtype_roundtrip(tmp_path, net3):
    net3.save(tmp_path / "m.npz")
    back = MLP.load(tmp_path / "m.npz")
    assert back.layer_sizes == (4, 9, 7, 3) and back.dtype == np.float64
    for W, Wb in zip(net3.weights, back.weights):
        np.testing.assert_array_equal(W, Wb)
    m32 = net3.astype(np.float32)
    m32.save(tmp_path / "m32.npz")
    assert MLP.load(tmp_path / "m32.npz").dtype == np.float32
    assert m32.logits(np.zeros((2, 4))).dtype == np.float32
    with pytest.raises(ValueError, match="dtype"):
        MLP.init((2, 3, 1), dtype=np.int32)
    with pytest.raises(TypeError, match="dtype"):
        MLP.init((2, 3, 1), dtype="not a dtype")


def test_multiclass_agrees_with_torch_cross_entropy(net3):
    torch = pytest.importorskip("torch")
    from wflow.adversarial import TorchPotential, mlp_to_torch

    rng = np.random.default_rng(8)
    X, y = rng.normal(size=(50, 4)), rng.integers(0, 3, size=50)
    net = mlp_to_torch(net3)
    assert isinstance(net[-1], torch.nn.Linear)  # logits, no sigmoid for k classes
    T = TorchPotential(net, loss="ce", labels=y)
    L = make_loss(net3, y, "ce")
    # float64 both sides, 3 layers of width ≤ 9: the sums differ in order only (≤ 1e-14 here)
    np.testing.assert_allclose(L.value(X), T.value(X), rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(L.grad(X), T.grad(X), rtol=1e-12, atol=1e-14)
