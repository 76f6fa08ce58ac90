"""Seeded Adam training of the numpy :class:`~wflow.adversarial.MLP` (mini-batch, exact backprop).

One Adam loop serves :func:`train` and :func:`~wflow.adversarial.adversarial_train` (which
replaces every batch by its attacked version first).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .._validation import as_points, integer, real, rng_from
from .losses import loss_class
from .mlp import MLP, check_labels

__all__ = ["train"]


class _Adam:
    """Adam (Kingma & Ba) on a list of parameter arrays, updated in place; arguments validated."""

    def __init__(self, params: list, lr: float, betas: tuple[float, float], eps: float):
        self.lr = real(lr, "lr", low=0.0, strict=True)
        b1, b2 = (real(b, "betas", low=0.0) for b in betas)
        if not (b1 < 1 and b2 < 1):
            raise ValueError(f"betas must lie in [0, 1), got {betas!r}")
        self.b1, self.b2 = b1, b2
        self.eps = real(eps, "adam_eps", low=0.0, strict=True)
        self.params = params
        self.m = [np.zeros_like(p) for p in params]
        self.v = [np.zeros_like(p) for p in params]
        self.t = 0

    def step(self, grads: list) -> None:
        b1, b2, lr = self.b1, self.b2, self.lr
        self.t += 1
        t = self.t
        for p, g, mi, vi in zip(self.params, grads, self.m, self.v):
            mi *= b1
            mi += (1 - b1) * g
            vi *= b2
            vi += (1 - b2) * g * g
            p -= lr * (mi / (1 - b1**t)) / (np.sqrt(vi / (1 - b2**t)) + self.eps)


def _training_data(model, X, y, loss: str):
    """(X in the model's dtype, labels, loss class), validated."""
    if not isinstance(model, MLP):
        raise TypeError(f"model must be an MLP, got {type(model).__name__}")
    X = as_points(X, "X", dim=model.dim).astype(model.dtype, copy=False)
    y = check_labels(y, len(X), name="y", allow_scalar=False, n_classes=model.n_classes)
    y = y.astype(model.dtype) if model.binary else y.astype(np.int64)
    return X, y, loss_class(model, loss)


def _epoch(net: MLP, X: np.ndarray, y: np.ndarray, L, batch_size: int, rng: np.random.Generator,
           adam: _Adam, attack: Callable | None = None) -> float:
    """One epoch: shuffle (seeded), then one Adam step per mini-batch on the mean loss at the
    batch — at ``attack(Xb, yb)`` when given. Returns the summed loss at the (attacked) batches
    before each step (0.0 without ``attack``: plain training does not need it)."""
    n = len(X)
    perm = rng.permutation(n)
    total = 0.0
    for start in range(0, n, batch_size):
        idx = perm[start:start + batch_size]
        Xb, yb = X[idx], y[idx]
        if attack is not None:
            Xb = np.asarray(attack(Xb, yb), dtype=net.dtype)
        fwd = net._forward(Xb)
        if attack is not None:
            total += float(np.sum(L._loss(fwd[2], yb)))
        gW, gb = net._param_grads(Xb, L._dloss(fwd[2], yb) / len(idx), fwd)
        adam.step(gW + gb)
        net._refresh()  # the weights changed in place: drop cached transposes/tiles
    return total


def train(
    model: MLP,
    X,
    y,
    *,
    loss: str = "mse",
    epochs: int = 200,
    batch_size: int = 64,
    lr: float = 1e-2,
    betas: tuple[float, float] = (0.9, 0.999),
    adam_eps: float = 1e-8,
    seed=None,
) -> tuple[MLP, np.ndarray]:
    """Train a copy of ``model`` with Adam on the mean loss over (X, y).

    Each epoch shuffles the rows (seeded) and takes one Adam step per mini-batch on
    (1/B) Σ_{i∈batch} ℓ(z(x_i), y_i), with ℓ the squared error on the sigmoid output
    (``"mse"``, the paper's choice) or the cross-entropy (``"ce"``) for a binary model, and
    the softmax versions for a k-class model (``"ce"``: softmax cross-entropy). Training runs
    in the model's dtype (float32 models train in float32).

    Parameters
    ----------
    model : MLP
        The initial network (not modified).
    X : array, shape (n, d)
    y : array, shape (n,)
        Labels in {0, 1} (binary model) or {0, …, k−1} (k-class model).
    loss : {"mse", "ce"}
    epochs, batch_size : int
    lr : float
        Adam step size (> 0).
    betas, adam_eps : Adam's moment decay rates and denominator offset.
    seed : int or Generator, optional
        Controls the shuffling (the only randomness).

    Returns
    -------
    model : MLP
        The trained copy.
    history : ndarray, shape (epochs,)
        Mean training loss over the full data after each epoch.
    """
    X, y, L = _training_data(model, X, y, loss)
    epochs = integer(epochs, "epochs", low=0)
    batch_size = integer(batch_size, "batch_size", low=1)
    net = model.copy()
    adam = _Adam(net.weights + net.biases, lr, betas, adam_eps)
    rng = rng_from(seed)
    history = np.empty(epochs)  # float64 whatever the model's dtype
    for e in range(epochs):
        _epoch(net, X, y, L, batch_size, rng, adam)
        history[e] = float(np.mean(L._loss(net._logits(X), y)))
    return net, history
