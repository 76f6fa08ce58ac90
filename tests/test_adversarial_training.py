"""Adversarial training: the outer loop is `train`'s, the inner attacks, seeds, dtype, inputs."""

import numpy as np
import pytest

from wflow.adversarial import MLP, adversarial_train, ifgsm, load_dataset, train


@pytest.fixture(scope="module")
def moons():
    return load_dataset("two_moons", n=400, noise=0.1, seed=0)


def test_inner_none_is_plain_training(moons):
    m0 = MLP.init((2, 16, 16, 1), "relu", seed=0)
    a, hist_a = train(m0, moons.X_train, moons.y_train, loss="ce", epochs=3, batch_size=32, lr=1e-2, seed=1)
    b, hist_b = adversarial_train(m0, moons.X_train, moons.y_train, 0.1, inner="none", epochs=3, batch_size=32,
                                  seed=1)
    for p, q in zip(a.weights + a.biases, b.weights + b.biases):
        np.testing.assert_array_equal(p, q)
    np.testing.assert_array_equal(hist_a, hist_b.clean_loss)
    # with no attack the "adversarial" loss is the clean batch loss: same order as the clean loss
    assert hist_b.tau == 0.0 and hist_b.to_dict()["inner"] == "none"


@pytest.mark.parametrize("inner", ["flow", "ifgsm", "fgsm"])
def test_seeded_and_attacked_loss_above_clean(moons, inner):
    m0 = MLP.init((2, 16, 16, 1), "gelu", seed=0)
    kw = dict(inner=inner, epochs=2, steps=4, batch_size=50, seed=3)
    a, ha = adversarial_train(m0, moons.X_train, moons.y_train, 0.2, **kw)
    b, hb = adversarial_train(m0, moons.X_train, moons.y_train, 0.2, **kw)
    for p, q in zip(a.weights + a.biases, b.weights + b.biases):
        np.testing.assert_array_equal(p, q)
    # every inner attack ascends the loss: the mean attacked loss of the epoch exceeds the clean
    # loss measured after the epoch's updates (at ε = 0.2 the gap is large compared to the change
    # of the weights within one epoch)
    assert np.all(ha.adversarial_loss > ha.clean_loss)
    assert ha.tau == {"flow": 0.05, "ifgsm": 0.125, "fgsm": 0.2}[inner]


def test_dtype_passthrough(moons):
    m0 = MLP.init((2, 8, 1), "relu", seed=0)
    net, _ = adversarial_train(m0, moons.X_train, moons.y_train, 0.1, epochs=1, steps=2, dtype="float32", seed=0)
    assert net.dtype == np.float32 and m0.dtype == np.float64


@pytest.mark.slow
def test_flow_training_is_more_robust_than_clean_training(moons):
    m0 = MLP.init((2, 32, 32, 1), "relu", seed=0)
    eps = 0.3  # measured: robust accuracy 0.63 (clean training) vs 0.79 (flow training)
    rob = {}
    for inner in ("none", "flow"):
        net, _ = adversarial_train(m0, moons.X_train, moons.y_train, eps, inner=inner, epochs=40, steps=8, seed=1)
        r = ifgsm(net, moons.X_test, moons.y_test, eps, steps=20, loss="ce", random_start=True, restarts=2, seed=0)
        rob[inner] = 1 - r.success_rate
    assert rob["flow"] > rob["none"] + 0.08, rob


def test_bad_input(moons):
    m0 = MLP.init((2, 8, 1), "relu", seed=0)
    with pytest.raises(ValueError, match="inner"):
        adversarial_train(m0, moons.X_train, moons.y_train, 0.1, inner="pgd")
    with pytest.raises(ValueError, match="eps"):
        adversarial_train(m0, moons.X_train, moons.y_train, -0.1)
    with pytest.raises(TypeError, match="model"):
        adversarial_train(object(), moons.X_train, moons.y_train, 0.1)
    with pytest.raises(ValueError, match="X"):
        adversarial_train(m0, np.zeros((5, 3)), np.zeros(5), 0.1)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_inner_flow_fast_path_is_ifgsm_bit_for_bit(dtype):
    """adversarial_train's inner ℓ∞ flow (linf_flow_steps, no per-batch validation or result
    objects; the flow solver's block loop) lands exactly where the public ifgsm does: k-class
    and binary models, odd and even step counts, and several particle blocks of the flow solver
    (d = 64: four blocks of 525 rows in float32, of 275 in float64); X itself is not written."""
    from wflow.adversarial import MLP, ifgsm, make_loss
    from wflow.adversarial.attacks import linf_flow_steps

    rng = np.random.default_rng(3)
    X = rng.random((1100 if dtype == np.float64 else 2100, 64))
    for sizes, loss in (((64, 24, 10), "ce"), ((64, 24, 1), "mse")):
        m = MLP.init(sizes, "gelu", seed=1, dtype=dtype)
        y = m.predict(X)
        for steps in (1, 4):
            ref = ifgsm(m, X, y, 0.1, 0.1 / steps, steps, loss=loss).x_adv
            X_before = X.copy()
            got = linf_flow_steps(make_loss(m, y, loss), X, 0.1, 0.1 / steps, steps)
            assert np.array_equal(X, X_before)
            assert got.dtype == dtype and np.array_equal(got, ref)
            assert np.all(np.abs(got - X.astype(dtype)) <= 0.1) and np.any(got != X.astype(dtype))


def test_training_submodule_does_not_shadow_train():
    """The Adam loop lives in wflow.adversarial.training: importing it (before or after the
    package-level name) leaves wflow.adversarial.train the function."""
    import importlib

    import wflow.adversarial as wa

    mod = importlib.import_module("wflow.adversarial.training")
    assert wa.train is mod.train and callable(wa.train)
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("wflow.adversarial.train")
