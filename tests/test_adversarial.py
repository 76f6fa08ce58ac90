"""Two-moons data, the numpy MLP, loss potentials, training and single-point attacks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import wflow
from wflow.adversarial import (
    MLP,
    CrossEntropyLoss,
    SquaredErrorLoss,
    fgsm,
    fold_batchnorm,
    ifgsm,
    load_model,
    load_two_moons,
    make_loss,
    make_two_moons,
    minmove_attack,
    train,
)
from wflow.adversarial.data import TWO_MOONS_SETTINGS
from wflow.adversarial.mlp import sigmoid

ROOT = Path(__file__).resolve().parents[1]
MODELS = ["two_moons_relu", "two_moons_gelu"]


@pytest.fixture(scope="module")
def data():
    return load_two_moons()


def central_fd(f, X, h=1e-6):
    """Central differences of a batched scalar function f: (n, d) -> (n,); error O(h²) + O(eps/h)."""
    G = np.empty_like(X)
    for i in range(X.shape[1]):
        E = np.zeros_like(X)
        E[:, i] = h
        G[:, i] = (f(X + E) - f(X - E)) / (2 * h)
    return G


# --------------------------------------------------------------------------------------------
# data
# --------------------------------------------------------------------------------------------
def test_two_moons_noise_free_points_lie_on_the_half_circles():
    X, y = make_two_moons(101, noise=0.0, seed=3)
    assert X.shape == (101, 2) and y.dtype == np.int64
    assert (y == 0).sum() == 50 and (y == 1).sum() == 51
    r0 = np.linalg.norm(X[y == 0], axis=1)
    r1 = np.linalg.norm(X[y == 1] - [1.0, 0.5], axis=1)
    np.testing.assert_allclose(r0, 1.0, atol=1e-14)
    np.testing.assert_allclose(r1, 1.0, atol=1e-14)
    assert np.all(X[y == 0, 1] >= 0) and np.all(X[y == 1, 1] <= 0.5)


def test_two_moons_is_seeded():
    a, ya = make_two_moons(50, 0.2, seed=7)
    b, yb = make_two_moons(50, 0.2, seed=np.random.default_rng(7))
    c, _ = make_two_moons(50, 0.2, seed=8)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(ya, yb)
    assert not np.array_equal(a, c)


def test_shipped_split_is_reproducible(data):
    s = TWO_MOONS_SETTINGS
    X, y = make_two_moons(s["n_train"], s["noise"], seed=s["seed_train"])
    np.testing.assert_array_equal(X, data["X_train"])
    np.testing.assert_array_equal(y, data["y_train"])
    X, y = make_two_moons(s["n_test"], s["noise"], seed=s["seed_test"])
    np.testing.assert_array_equal(X, data["X_test"])
    np.testing.assert_array_equal(y, data["y_test"])


def test_two_moons_bad_input():
    with pytest.raises(ValueError, match="n"):
        make_two_moons(0)
    with pytest.raises(ValueError, match="noise"):
        make_two_moons(10, noise=-0.1)


# --------------------------------------------------------------------------------------------
# MLP
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", MODELS)
def test_shipped_models_accuracy_and_architecture(name, data):
    m = load_model(name)
    assert m.layer_sizes == (2, 20, 20, 20, 1)
    assert m.activation == name.split("_")[-1]
    assert m.accuracy(data["X_test"], data["y_test"]) >= 0.97


@pytest.mark.parametrize("activation", ["relu", "gelu"])
def test_input_gradients_match_central_differences(activation, data):
    # Random (untrained) and shipped networks; points from the data. Central differences with
    # h = 1e-6 have error ~h²·|f'''| + eps·|f|/h ≈ 1e-10 relative, far below the 1e-6 asked.
    # ReLU: a kink within h of a sample point has probability ~1e-5 per point; none here.
    # The differences' own round-off is ~eps·|f|/h ≈ 2e-10·|f|, so the 1e-6 relative check is
    # made on rows with ‖∇f‖∞ ≥ 1e-3·max(1, |f|); flatter rows are checked in absolute terms.
    X = np.r_[data["X_test"][:60], np.random.default_rng(0).uniform([-1.5, -1.0], [2.5, 1.5], (60, 2))]
    y = np.r_[data["y_test"][:60], np.arange(60) % 2]
    for m in [MLP.init(activation=activation, seed=1), load_model(f"two_moons_{activation}")]:
        fns = [(m.logits, m.logit_grad)]
        for loss in ["mse", "ce"]:
            L = make_loss(m, y, loss)
            fns.append((L.value, L.grad))
        for f, grad in fns:
            g, fd, fx = grad(X), central_fd(f, X), np.abs(f(X))
            gmax = np.abs(g).max(axis=1)
            steep = gmax >= 1e-3 * np.maximum(1.0, fx)
            assert steep.sum() >= 20, steep.sum()
            rel = np.abs(fd - g).max(axis=1)[steep] / gmax[steep]
            assert rel.max() < 1e-6, (activation, rel.max())
            assert np.all(np.abs(fd - g).max(axis=1) <= 1e-8 * np.maximum(1.0, fx))


def test_no_hidden_layer_is_logistic_regression():
    w, b = np.array([[1.5], [-2.0]]), np.array([0.25])
    m = MLP([w], [b])
    X = np.random.default_rng(0).normal(size=(10, 2))
    np.testing.assert_allclose(m.logits(X), X @ w[:, 0] + 0.25, rtol=0, atol=1e-14)
    np.testing.assert_allclose(m.logit_grad(X), np.tile(w[:, 0], (10, 1)), rtol=0, atol=0)
    ce = CrossEntropyLoss(m, 1)
    z = X @ w[:, 0] + 0.25
    np.testing.assert_allclose(ce.value(X), np.log1p(np.exp(-z)), rtol=1e-13)
    np.testing.assert_allclose(ce.grad(X), (sigmoid(z) - 1)[:, None] * w[:, 0], rtol=1e-13)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_cross_entropy_keeps_relative_accuracy_where_the_loss_is_tiny(dtype):
    # ℓ = log(1 + e^{−|z|}) on the confident side: 4.2e-18 at |z| = 40, where softplus(z) − z
    # cancels to 0 (or to round-off of size ε|z|); the reference is log1p(exp(−|z|)) in float64
    m = MLP([np.array([[1.0]])], [np.array([0.0])]).astype(dtype)
    z = np.array([[-40.0], [-20.0], [-3.0], [0.0], [3.0], [20.0], [40.0]], dtype=dtype)
    for label in (0, 1):
        got = CrossEntropyLoss(m, label).value(z)
        s = z[:, 0].astype(float) * (1 - 2 * label)  # ℓ = softplus(s)
        ref = np.logaddexp(0.0, s)
        rtol = 4 * np.finfo(dtype).eps  # logaddexp's few-ulp error in the model's dtype
        np.testing.assert_allclose(got, ref, rtol=rtol, atol=0)
        assert np.all(got > 0)


def test_gelu_is_exact_erf_form():
    # one hidden unit with identity in/out weights: z(x) = GELU(x₁) = x₁ Φ(x₁)
    from scipy.special import ndtr

    m = MLP([np.array([[1.0], [0.0]]), np.array([[1.0]])], [np.zeros(1), np.zeros(1)], "gelu")
    s = np.linspace(-4, 4, 17)
    X = np.c_[s, np.zeros_like(s)]
    np.testing.assert_allclose(m.logits(X), s * ndtr(s), rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(m.logit_grad(X)[:, 0], ndtr(s) + s * np.exp(-s * s / 2) / np.sqrt(2 * np.pi), rtol=1e-13, atol=1e-15)


def test_block_evaluation_matches_single_pass():
    from wflow.adversarial import mlp as mlp_mod

    m = load_model("two_moons_gelu")
    X = np.random.default_rng(2).normal(size=(mlp_mod.BLOCK_ROWS * 2 + 37, 2))
    z, g = m._logits_and_grad(X)
    for s in [0, mlp_mod.BLOCK_ROWS - 1, len(X) - 5]:
        z1, g1 = m._logits_and_grad(X[s:s + 3])
        np.testing.assert_allclose(z[s:s + 3], z1, rtol=1e-14, atol=1e-14)
        np.testing.assert_allclose(g[s:s + 3], g1, rtol=1e-13, atol=1e-14)


@settings(max_examples=30, deadline=None)
@given(st.floats(-800, 800))
def test_sigmoid_is_stable_and_symmetric(z):
    s = sigmoid(np.array([z, -z]))
    assert np.all(np.isfinite(s)) and np.all((s >= 0) & (s <= 1))
    assert abs(s[0] + s[1] - 1.0) <= 1e-15


def test_fold_batchnorm_equals_dense_then_batchnorm():
    rng = np.random.default_rng(4)
    W, b = rng.normal(size=(3, 5)), rng.normal(size=5)
    gamma, beta, mean, var = rng.normal(size=5), rng.normal(size=5), rng.normal(size=5), rng.uniform(0.5, 2, 5)
    X = rng.normal(size=(7, 3))
    bn = gamma * (X @ W + b - mean) / np.sqrt(var + 1e-5) + beta
    W2, b2 = fold_batchnorm(W, b, gamma, beta, mean, var)
    np.testing.assert_allclose(X @ W2 + b2, bn, rtol=1e-12, atol=1e-12)


def test_save_load_roundtrip(tmp_path):
    m = MLP.init((2, 5, 1), "gelu", seed=3)
    m.save(tmp_path / "m.npz")
    m2 = MLP.load(tmp_path / "m.npz")
    X = np.random.default_rng(0).normal(size=(9, 2))
    np.testing.assert_array_equal(m.logits(X), m2.logits(X))
    assert m2.activation == "gelu" and m2.layer_sizes == (2, 5, 1)


def test_missing_and_corrupt_model_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.npz"):
        MLP.load(tmp_path / "nope.npz")
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"PK\x03\x04 this is not a zip archive")
    with pytest.raises(ValueError, match="bad.npz"):
        MLP.load(bad)
    partial = tmp_path / "partial.npz"
    np.savez(partial, n_layers=np.array(2), activation=np.array("relu"), W0=np.ones((2, 3)), b0=np.ones(3))
    with pytest.raises(ValueError, match="partial.npz"):
        MLP.load(partial)
    wrong = tmp_path / "wrong.npz"
    np.savez(wrong, n_layers=np.array(1), activation=np.array("tanh"), W0=np.ones((2, 1)), b0=np.ones(1))
    with pytest.raises(ValueError, match="activation"):
        MLP.load(wrong)
    with pytest.raises(ValueError, match="name"):
        load_model("two_moons_tanh")


def test_mlp_bad_input():
    m = load_model("two_moons_relu")
    with pytest.raises(ValueError, match="dimension"):
        m.predict(np.zeros((3, 3)))
    with pytest.raises(ValueError, match="NaN"):
        m.logits([np.nan, 0.0])
    with pytest.raises(ValueError, match="activation"):
        MLP.init(activation="tanh")
    with pytest.raises(ValueError, match="outputs"):
        MLP([np.ones((2, 3)), np.ones((4, 1))], [np.ones(3), np.ones(1)])
    assert MLP([np.ones((2, 3))], [np.ones(3)]).n_classes == 3  # k outputs: a k-class model
    with pytest.raises(ValueError, match="layer_sizes"):
        MLP.init((2,))


def test_training_is_seeded_and_learns():
    X, y = make_two_moons(200, 0.1, seed=5)
    m0 = MLP.init((2, 8, 8, 1), "relu", seed=1)
    a, ha = train(m0, X, y, epochs=30, lr=1e-2, seed=2)
    b, hb = train(m0, X, y, epochs=30, lr=1e-2, seed=2)
    np.testing.assert_array_equal(ha, hb)
    for Wa, Wb in zip(a.weights, b.weights):
        np.testing.assert_array_equal(Wa, Wb)
    assert ha[-1] < 0.5 * ha[0] and a.accuracy(X, y) > 0.9
    assert m0.accuracy(X, y) < a.accuracy(X, y)  # the initial network was not modified
    c, _ = train(m0, X, y, loss="ce", epochs=30, lr=1e-2, seed=2)
    assert c.accuracy(X, y) > 0.9
    with pytest.raises(ValueError, match="loss"):
        train(m0, X, y, loss="hinge")
    with pytest.raises(ValueError, match="y"):
        train(m0, X, np.full(200, 2))
    with pytest.raises(ValueError, match="lr"):
        train(m0, X, y, lr=0.0)


def test_training_script_reproduces_shipped_relu_model(data):
    # the settings of experiments/train_two_moons.py; same machine/BLAS gives the same numbers
    # up to summation order, hence the loose-ish tolerance on the trained weights
    sys.path.insert(0, str(ROOT / "experiments"))
    try:
        import train_two_moons as script
    finally:
        sys.path.pop(0)
    net, _ = train(MLP.init((2, 20, 20, 20, 1), "relu", seed=script.INIT_SEED),
                   data["X_train"], data["y_train"], **script.TRAINING)
    shipped = load_model("two_moons_relu")
    for W, Ws in zip(net.weights, shipped.weights):
        np.testing.assert_allclose(W, Ws, rtol=0, atol=1e-8)


def test_import_does_not_load_torch():
    code = ("import sys, wflow, wflow.adversarial as a; a.MLP; a.ifgsm; a.distributional_attack; "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# --------------------------------------------------------------------------------------------
# loss potentials with per-point labels
# --------------------------------------------------------------------------------------------
def test_labels_restrict_and_row_check():
    m = load_model("two_moons_gelu")
    y = np.array([0, 1, 1, 0, 1])
    L = make_loss(m, y)
    X = np.random.default_rng(0).normal(size=(5, 2))
    v = L.value(X)
    sub = L.restrict(slice(1, 4))
    np.testing.assert_array_equal(sub.labels, y[1:4])
    # BLAS may block a 3-row and a 5-row matmul differently: the sums agree to a few ulp of
    # the loss (values O(1), 3 hidden layers), not bit for bit.
    np.testing.assert_allclose(sub.value(X[1:4]), v[1:4], rtol=1e-13, atol=1e-15)
    with pytest.raises(ValueError, match="labels"):
        L.value(X[:3])
    # a broadcast label: any number of rows, restrict is the identity
    L1 = make_loss(m, 1)
    assert L1.restrict(slice(0, 2)) is L1
    np.testing.assert_allclose(L1.value(X), make_loss(m, np.ones(5)).value(X), rtol=0, atol=0)
    # y=None: the labels predicted at x, fixed at construction
    Lp = SquaredErrorLoss(m, None, x=X)
    np.testing.assert_array_equal(Lp.labels, m.predict(X))
    with pytest.raises(ValueError, match="y is None"):
        SquaredErrorLoss(m)
    with pytest.raises(ValueError, match="y"):
        make_loss(m, [0, 2, 1])
    with pytest.raises(ValueError, match="loss"):
        make_loss(m, 1, "hinge")
    with pytest.raises(TypeError, match="model"):
        make_loss("model", 1)


def test_negated_loss_keeps_labels():
    m = load_model("two_moons_relu")
    X = np.random.default_rng(1).normal(size=(4, 2))
    L = make_loss(m, [0, 1, 0, 1], "ce")
    V = -L
    np.testing.assert_array_equal(V.value(X), -L.value(X))
    np.testing.assert_array_equal(V.grad(X), -L.grad(X))
    np.testing.assert_array_equal(V.restrict(slice(2, 4)).labels, [0, 1])


def test_flow_blocks_see_their_own_labels(data):
    # the flow driver restricts the potential to each block of particles: many small blocks must
    # give exactly the one-block result (per-point labels sliced correctly)
    m = load_model("two_moons_gelu")
    X, y = data["X_test"][:53], data["y_test"][:53]
    V = -make_loss(m, y)
    a = wflow.solve_flow(V, X, T=0.1, tau=0.01, budget=0.1, chunk_size=7)
    b = wflow.solve_flow(V, X, T=0.1, tau=0.01, budget=0.1)
    np.testing.assert_array_equal(a.positions, b.positions)
    np.testing.assert_allclose(a.energies[-1], V.value(a.positions[-1]), rtol=0, atol=0)


# --------------------------------------------------------------------------------------------
# attacks
# --------------------------------------------------------------------------------------------
def _hand_ifgsm(L, X, X0, eps, alpha, steps):
    x = X0.copy()
    for _ in range(steps):
        x = np.clip(x + alpha * np.sign(L.grad(x)), X - eps, X + eps)
    return x


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("loss", ["mse", "ce"])
def test_ifgsm_equals_hand_written_loop(name, loss, data):
    m = load_model(name)
    X, y = data["X_test"][:150], data["y_test"][:150]
    eps, alpha, steps = 0.1, 0.015, 12  # steps·α > ε: the clipping is active
    xa = ifgsm(m, X, y, eps, alpha, steps, loss=loss).x_adv
    ref = _hand_ifgsm(make_loss(m, y, loss), X, X, eps, alpha, steps)
    assert np.max(np.abs(xa - ref)) <= 1e-12
    assert np.max(np.abs(xa - X)) <= eps + 1e-15
    assert np.any(np.isclose(np.abs(xa - X), eps, rtol=0, atol=1e-15))


def test_ifgsm_random_start_equals_hand_loop(data):
    m = load_model("two_moons_relu")
    X = data["X_test"][:40]
    y = m.predict(X)
    eps, alpha, steps = 0.2, 0.03, 8
    out = ifgsm(m, X, None, eps, alpha, steps, random_start=True, seed=11, return_trajectory=True)
    xa, res = out.x_adv, out.trajectory
    rng = np.random.default_rng(11)
    X0 = X + rng.uniform(-eps, eps, size=X.shape)
    ref = _hand_ifgsm(make_loss(m, y), X, X0, eps, alpha, steps)
    assert np.max(np.abs(xa - ref)) <= 1e-12
    np.testing.assert_array_equal(res.positions[0], X0)
    assert res.positions.shape == (steps + 1, 40, 2)
    np.testing.assert_array_equal(res.positions[-1], xa)
    assert np.all(np.abs(res.positions - X) <= eps + 1e-15)
    steps_inf = np.abs(np.diff(res.positions, axis=0)).max(axis=2)
    assert np.all(steps_inf <= alpha + 1e-15)


def test_ifgsm_predicted_labels_and_single_point(data):
    m = load_model("two_moons_gelu")
    X = data["X_test"][:30]
    np.testing.assert_array_equal(ifgsm(m, X, None, 0.1, 0.01, 10).x_adv, ifgsm(m, X, m.predict(X), 0.1, 0.01, 10).x_adv)
    one = ifgsm(m, X[3], None, 0.1, 0.01, 10).x_adv
    assert one.shape == (2,)
    np.testing.assert_array_equal(one, ifgsm(m, X[3:4], None, 0.1, 0.01, 10).x_adv[0])
    np.testing.assert_array_equal(ifgsm(m, X, None, 0.1, 0.01, 0).x_adv, X)


def test_fgsm_moves_every_coordinate_by_eps_or_zero(data):
    m = load_model("two_moons_relu")
    X = data["X_test"][:200]
    eps = 0.07
    xa = fgsm(m, X, None, eps).x_adv
    s = np.sign(make_loss(m, m.predict(X)).grad(X))
    # x + ε·sign, shortened by one ulp where fl(x + ε·sign) would land beyond ε (steps ≤ τ hold
    # exactly: docs/precision.md)
    assert np.all(np.abs(xa - (X + eps * s)) <= np.spacing(np.abs(X) + eps))
    d = np.abs(xa - X)
    assert np.all(d <= eps)
    # |(x + ε) − x| equals ε up to the rounding of x + ε (≤ ulp(x) ≈ 2.2e-16·|x|)
    on_eps = np.abs(d - eps) <= 4e-16 * np.maximum(1, np.abs(X))
    assert np.all(on_eps | (d == 0))
    np.testing.assert_array_equal(xa, ifgsm(m, X, None, eps, eps, 1).x_adv)
    # a network whose logit does not depend on x₂: FGSM leaves x₂ alone
    flat = MLP([np.array([[1.0, -1.0], [0.0, 0.0]]), np.array([[1.0], [2.0]])], [np.zeros(2), np.zeros(1)])
    xf = fgsm(flat, X, 1, eps).x_adv
    np.testing.assert_array_equal(xf[:, 1], X[:, 1])
    assert np.all(np.abs(np.abs(xf[:, 0] - X[:, 0]) - eps) <= 4e-16 * np.maximum(1, np.abs(X[:, 0])))
    np.testing.assert_array_equal(fgsm(m, X, None, 0.0).x_adv, X)


def test_l2_and_l1_variants(data):
    m = load_model("two_moons_gelu")
    X, y = data["X_test"][:80], data["y_test"][:80]
    L = make_loss(m, y)
    g = L.grad(X)
    eps = 0.1
    x2 = fgsm(m, X, y, eps, norm="l2").x_adv
    np.testing.assert_allclose(x2 - X, eps * g / np.linalg.norm(g, axis=1, keepdims=True), rtol=1e-12, atol=1e-15)
    x1 = fgsm(m, X, y, eps, norm="l1").x_adv
    j = np.argmax(np.abs(g), axis=1)
    expect = X.copy()
    expect[np.arange(80), j] += eps * np.sign(g[np.arange(80), j])
    np.testing.assert_allclose(x1, expect, rtol=0, atol=1e-15)
    # iterative ℓ2: normalized gradient steps projected onto the ℓ2 ball
    xa = ifgsm(m, X, y, eps, 0.03, 6, norm="l2").x_adv
    x = X.copy()
    for _ in range(6):
        gg = L.grad(x)
        x = x + 0.03 * gg / np.linalg.norm(gg, axis=1, keepdims=True)
        r = np.linalg.norm(x - X, axis=1, keepdims=True)
        x = X + (x - X) * np.minimum(1.0, eps / r)
    np.testing.assert_allclose(xa, x, rtol=0, atol=1e-12)
    assert np.all(np.linalg.norm(xa - X, axis=1) <= eps * (1 + 1e-12))


def test_attack_bad_input(data):
    m = load_model("two_moons_relu")
    X = data["X_test"][:5]
    with pytest.raises(ValueError, match="x must have dimension"):
        ifgsm(m, np.zeros((5, 3)), None, 0.1, 0.01, 3)
    with pytest.raises(ValueError, match="eps"):
        ifgsm(m, X, None, -0.1, 0.01, 3)
    with pytest.raises(ValueError, match="eps"):
        fgsm(m, X, None, -1.0)
    with pytest.raises(ValueError, match="alpha"):
        ifgsm(m, X, None, 0.1, 0.0, 3)
    with pytest.raises(ValueError, match="steps"):
        ifgsm(m, X, None, 0.1, 0.01, -1)
    with pytest.raises(TypeError, match="steps"):
        ifgsm(m, X, None, 0.1, 0.01, 2.5)
    with pytest.raises(ValueError, match="y"):
        ifgsm(m, X, [0, 1, 2, 0, 1], 0.1, 0.01, 3)
    with pytest.raises(ValueError, match="y"):
        ifgsm(m, X, [0, 1], 0.1, 0.01, 3)
    with pytest.raises(ValueError, match="loss"):
        fgsm(m, X, None, 0.1, loss="hinge")
    with pytest.raises(ValueError, match="norm"):
        fgsm(m, X, None, 0.1, norm="l0")
    with pytest.raises(TypeError, match="model"):
        fgsm(object(), X, None, 0.1)
    with pytest.raises(ValueError, match="loss"):
        fgsm(make_loss(m, 1), X, None, 0.1, loss="ce")
    with pytest.raises(ValueError, match="NaN"):
        fgsm(m, [np.nan, 1.0], None, 0.1)


def test_minmove_attack_global_steps_beat_fgsm_steps(data):
    # one minimizing-movement step with the global inner solver maximizes ℓ over the box
    # B_α(x) ∩ B_ε(x₀), which contains the FGSM step: its loss is at least FGSM's (up to the
    # solver's tolerance), and no step leaves the box or decreases the loss
    pytest.importorskip("wflow.minmove", reason="wflow.minmove (minimizing-movement scheme) is not available")
    m = load_model("two_moons_gelu")
    X = data["X_test"][:12]
    y = m.predict(X)
    L = make_loss(m, y)
    eps, alpha = 0.1, 0.05
    x1 = minmove_attack(m, X, None, eps, alpha, 1, inner="global").x_adv
    xf = fgsm(m, X, None, alpha).x_adv
    assert np.all(L.value(x1) >= L.value(xf) - 1e-9)
    out = minmove_attack(m, X, None, eps, alpha, 3, inner="local", return_trajectory=True)
    xa, res = out.x_adv, out.trajectory
    assert np.all(np.abs(res.positions - X) <= eps + 1e-12)
    assert np.all(np.abs(np.diff(res.positions, axis=0)).max(axis=2) <= alpha + 1e-12)
    losses = np.stack([L.value(P) for P in res.positions])
    assert np.all(np.diff(losses, axis=0) >= -1e-12)
    np.testing.assert_array_equal(xa, res.positions[-1])


@settings(max_examples=25, deadline=None)
@given(
    w=st.lists(st.floats(-3, 3).filter(lambda v: abs(v) > 1e-3), min_size=2, max_size=2),
    b=st.floats(-1, 1),
    label=st.sampled_from([0, 1]),
    eps=st.floats(0.01, 0.5),
    steps=st.integers(1, 12),
    loss=st.sampled_from(["mse", "ce"]),
)
def test_ifgsm_on_logistic_regression_goes_to_the_box_corner(w, b, label, eps, steps, loss):
    # z = ⟨w, x⟩ + b: both losses are monotone in z (increasing for y = 0, decreasing for y = 1),
    # so sign ∇ℓ = ±sign(w) everywhere and IFGSM with steps·α ≥ ε ends at x ± ε sign(w), the
    # maximizer of ℓ over the box (closed form)
    w = np.array(w)
    m = MLP([w[:, None]], [np.array([b])])
    X = np.random.default_rng(0).normal(size=(6, 2)) * 0.3
    alpha = 1.5 * eps / steps
    xa = ifgsm(m, X, label, eps, alpha, steps, loss=loss).x_adv
    direction = np.sign(w) * (1 if label == 0 else -1)
    L = make_loss(m, label, loss)
    g = L.grad(X)
    ok = np.all(np.sign(g) == direction, axis=1)  # MSE's gradient can underflow to 0 when saturated
    np.testing.assert_allclose(xa[ok], (X + eps * direction)[ok], rtol=0, atol=1e-12)
