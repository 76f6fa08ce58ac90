"""The PyTorch adapter against the numpy MLP (run where torch is installed)."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip(
    "torch", reason="PyTorch is not installed (optional extra: pip install 'wflow[torch]' or torch==2.13.0)"
)

import wflow  # noqa: E402
from wflow.adversarial import (  # noqa: E402
    TorchPotential,
    distributional_attack,
    fgsm,
    ifgsm,
    load_model,
    load_two_moons,
    make_loss,
    mlp_to_torch,
)
from wflow.potentials import check_grad  # noqa: E402


@pytest.fixture(scope="module")
def points():
    D = load_two_moons()
    rng = np.random.default_rng(0)
    X = np.r_[D["X_test"][:100], rng.uniform([-1.5, -1.0], [2.5, 1.5], (100, 2))]
    y = np.r_[D["y_test"][:100], np.arange(100) % 2]
    return X, y


@pytest.mark.parametrize("name", ["two_moons_relu", "two_moons_gelu"])
def test_torch_and_numpy_agree_to_1e10(name, points):
    # same weights in float64: differences are round-off of a few matrix products (~1e-14)
    X, y = points
    m = load_model(name)
    for loss, tloss, sig in [("mse", "mse", True), ("ce", "bce_logits", False)]:
        L = make_loss(m, y, loss)
        T = TorchPotential(mlp_to_torch(m, sigmoid=sig), loss=tloss, labels=y)
        v, g = L.value_and_grad(X)
        vt, gt = T.value_and_grad(X)
        assert np.max(np.abs(v - vt)) <= 1e-10 * max(1.0, np.abs(v).max())
        assert np.max(np.abs(g - gt)) <= 1e-10 * max(1.0, np.abs(g).max())
        np.testing.assert_array_equal(T.predict(X), m.predict(X))
    # the output of the converted module is σ(z)
    with torch.no_grad():
        p = mlp_to_torch(m)(torch.as_tensor(X)).numpy()[:, 0]
    np.testing.assert_allclose(p, m.predict_proba(X), rtol=0, atol=1e-13)


def test_attacks_run_through_the_adapter(points):
    X, y = points
    m = load_model("two_moons_gelu")
    T = TorchPotential(mlp_to_torch(m), loss="mse")
    a = ifgsm(T, X, y, 0.1, 0.01, 15).x_adv
    b = ifgsm(m, X, y, 0.1, 0.01, 15).x_adv
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)
    np.testing.assert_allclose(fgsm(T, X, None, 0.05).x_adv, fgsm(m, X, None, 0.05).x_adv, rtol=0, atol=1e-12)
    res = distributional_attack(T, X[:50], None, 0.1, 0.01, n_winf=0)
    ref = distributional_attack(m, X[:50], None, 0.1, 0.01, n_winf=0)
    np.testing.assert_allclose(res.expected_loss, ref.expected_loss, rtol=1e-10, atol=1e-14)


def test_flow_blocks_slice_torch_labels(points):
    X, y = points
    T = TorchPotential(mlp_to_torch(load_model("two_moons_relu")), loss="mse", labels=y)
    a = wflow.solve_flow(-T, X, T=0.05, tau=0.01, budget=0.05, chunk_size=17)
    b = wflow.solve_flow(-T, X, T=0.05, tau=0.01, budget=0.05)
    np.testing.assert_array_equal(a.positions, b.positions)


def test_multiclass_cross_entropy_gradient():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.Tanh(), torch.nn.Linear(8, 4)).double()
    X = np.random.default_rng(1).normal(size=(25, 3))
    y = np.arange(25) % 4
    T = TorchPotential(net, loss="ce", labels=y)
    assert T.dim == 3
    assert check_grad(T, X) < 1e-8  # central differences: ~1e-10 for smooth V
    logits = net(torch.as_tensor(X)).detach().numpy()
    expect = np.log(np.exp(logits).sum(1)) - logits[np.arange(25), y]
    np.testing.assert_allclose(T.value(X), expect, rtol=1e-12)
    np.testing.assert_array_equal(T.predict(X), logits.argmax(1))


def test_user_loss_callable_and_errors(points):
    X, y = points
    net = mlp_to_torch(load_model("two_moons_relu"))
    T = TorchPotential(net, loss=torch.nn.BCELoss(reduction="none"), labels=y)
    ref = TorchPotential(net, loss="bce", labels=y)
    np.testing.assert_allclose(T.value(X), ref.value(X), rtol=0, atol=0)
    with pytest.raises(ValueError, match="reduction"):
        TorchPotential(net, loss=torch.nn.BCELoss(), labels=y).value(X)
    with pytest.raises(ValueError, match="labels"):
        TorchPotential(net, loss="mse").value(X)
    with pytest.raises(ValueError, match="labels must be 0 or 1"):
        TorchPotential(net, loss="mse", labels=[0, 2])
    with pytest.raises(ValueError, match="dimension"):
        TorchPotential(net, loss="mse", labels=1).value(np.zeros((3, 5)))
    with pytest.raises(ValueError, match="loss"):
        TorchPotential(net, loss="hinge")
    with pytest.raises(TypeError, match="module"):
        TorchPotential(3, loss="mse")
    with pytest.raises(ValueError, match="rows"):
        TorchPotential(net, loss="mse", labels=y).value(X[:5])
    with pytest.raises(ValueError, match="x must have dimension"):
        ifgsm(TorchPotential(net, loss="mse"), np.zeros((3, 4)), None, 0.1, 0.01, 2)
