"""Seeded Adam training of the numpy :class:`~wflow.adversarial.MLP` (mini-batch, exact backprop)."""

from __future__ import annotations

import numpy as np

from .._validation import as_points, integer, real, rng_from
from .losses import loss_class
from .mlp import MLP, check_labels

__all__ = ["train"]


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
    if not isinstance(model, MLP):
        raise TypeError(f"model must be an MLP, got {type(model).__name__}")
    X = as_points(X, "X", dim=model.dim).astype(model.dtype, copy=False)
    y = check_labels(y, len(X), name="y", allow_scalar=False, n_classes=model.n_classes)
    y = y.astype(model.dtype) if model.binary else y.astype(np.int64)
    L = loss_class(model, loss)
    epochs = integer(epochs, "epochs", low=0)
    batch_size = integer(batch_size, "batch_size", low=1)
    lr = real(lr, "lr", low=0.0, strict=True)
    b1, b2 = (real(b, "betas", low=0.0) for b in betas)
    if not (b1 < 1 and b2 < 1):
        raise ValueError(f"betas must lie in [0, 1), got {betas!r}")
    adam_eps = real(adam_eps, "adam_eps", low=0.0, strict=True)
    rng = rng_from(seed)

    net = model.copy()
    params = net.weights + net.biases
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    t = 0
    history = np.empty(epochs)  # float64 whatever the model's dtype
    n = len(X)
    for e in range(epochs):
        perm = rng.permutation(n)
        for start in range(0, n, batch_size):
            idx = perm[start:start + batch_size]
            Xb, yb = X[idx], y[idx]
            fwd = net._forward(Xb)
            gW, gb = net._param_grads(Xb, L._dloss(fwd[2], yb) / len(idx), fwd)
            t += 1
            for p, g, mi, vi in zip(params, gW + gb, m, v):
                mi *= b1
                mi += (1 - b1) * g
                vi *= b2
                vi += (1 - b2) * g * g
                p -= lr * (mi / (1 - b1**t)) / (np.sqrt(vi / (1 - b2**t)) + adam_eps)
        net._refresh()  # the weights changed in place: drop cached transposes/tiles
        history[e] = float(np.mean(L._loss(net._logits(X), y)))
    return net, history
