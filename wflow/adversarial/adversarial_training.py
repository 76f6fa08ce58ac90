"""Distributional adversarial training: the inner maximization is the W∞-flow of the batch.

min_θ sup{ E_ν ℓ_θ : W∞(ν, μ_batch) ≤ ε } — the inner sup over the W∞ ball of radius ε around the
empirical measure of a batch splits into per-point sups, and the ∞-flow of 𝓔(ν) = −∫ ℓ dν
started at the batch and run to t = ε (every atom on its steepest-ascent curve, speed 1 in
the norm) is the curve of maximal slope that realises it. See ``docs/robustness.md``.

``inner``:

- ``"flow"``: that flow, discretized with ``steps`` explicit-Euler (or minimizing-movement)
  steps of τ = ε/steps from the clean batch (the ball constraint is never active before
  t = ε; no random start);
- ``"ifgsm"``: Madry et al.'s PGD — a uniform random start in the ball, ``steps`` sign steps
  of α = 2.5ε/steps, projection onto the ball;
- ``"fgsm"``: one step of size ε;
- ``"none"``: clean training.

The outer step is Adam on the mean loss at the attacked batch.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from .._validation import integer, real, rng_from
from ..norms import Norm, as_norm
from .attacks import fgsm, ifgsm, linf_flow_steps, minmove_attack
from .mlp import MLP
from .training import _Adam, _epoch, _training_data

__all__ = ["adversarial_train", "AdversarialTrainingHistory", "INNER_METHODS"]

INNER_METHODS = ("flow", "ifgsm", "fgsm", "none")


@dataclass
class AdversarialTrainingHistory:
    """Per-epoch record of :func:`adversarial_train`.

    Attributes
    ----------
    inner : str
    eps : float
    norm : Norm
    steps : int
        Inner steps per batch.
    tau : float
        Inner step size (ε/steps for "flow", 2.5ε/steps for "ifgsm", ε for "fgsm", 0 for "none").
    adversarial_loss : ndarray, shape (epochs,)
        Mean loss at the attacked batches during the epoch (before each Adam step).
    clean_loss, clean_accuracy : ndarray, shape (epochs,)
        On the full training data after each epoch.
    epoch_time : ndarray, shape (epochs,)
        Seconds per epoch (inner attacks + Adam steps; not the evaluation).
    """

    inner: str
    eps: float
    norm: Norm
    steps: int
    tau: float
    adversarial_loss: np.ndarray
    clean_loss: np.ndarray
    clean_accuracy: np.ndarray
    epoch_time: np.ndarray

    def to_dict(self) -> dict:
        return {"inner": self.inner, "eps": self.eps, "norm": self.norm.name, "steps": self.steps,
                "tau": self.tau, "adversarial_loss": self.adversarial_loss.tolist(),
                "clean_loss": self.clean_loss.tolist(), "clean_accuracy": self.clean_accuracy.tolist(),
                "epoch_time": self.epoch_time.tolist()}


def adversarial_train(
    model: MLP,
    X,
    y,
    eps: float,
    inner: str = "flow",
    norm="linf",
    *,
    steps: int = 10,
    scheme: str = "euler",
    loss: str = "ce",
    epochs: int = 50,
    batch_size: int = 64,
    lr: float = 1e-2,
    betas: tuple[float, float] = (0.9, 0.999),
    adam_eps: float = 1e-8,
    seed=None,
    dtype=None,
) -> tuple[MLP, AdversarialTrainingHistory]:
    """Train a copy of ``model`` against an inner attack of budget ε on every mini-batch.

    Parameters
    ----------
    model : MLP
        The initial network (binary or k-class; not modified).
    X : array, shape (n, d)
    y : array, shape (n,)
        Labels.
    eps : float ≥ 0
        Budget ε (radius of the W∞ ball around the batch measure).
    inner : {"flow", "ifgsm", "fgsm", "none"}
    norm : norm specification of the ball and of the flow
    steps : int ≥ 1
        Inner steps per batch ("flow", "ifgsm").
    scheme : {"euler", "minmove"}
        Discretization of the flow (``inner="flow"`` only).
    loss : {"ce", "mse"}
    epochs, batch_size : int
    lr, betas, adam_eps : Adam's step size, moment decay rates and denominator offset.
    seed : int or Generator, optional
        Shuffling and random starts.
    dtype : {None, "float64", "float32"}, optional
        Train in this precision (``model.astype(dtype)``); None keeps the model's.

    Returns
    -------
    model : MLP
        The trained copy.
    history : AdversarialTrainingHistory
    """
    if not isinstance(model, MLP):
        raise TypeError(f"model must be an MLP, got {type(model).__name__}")
    if inner not in INNER_METHODS:
        raise ValueError(f"inner must be one of {INNER_METHODS}, got {inner!r}")
    if scheme not in ("euler", "minmove"):
        raise ValueError(f"scheme must be 'euler' or 'minmove', got {scheme!r}")
    net = model.copy() if dtype is None else model.astype(dtype)
    X, y, L = _training_data(net, X, y, loss)
    eps = real(eps, "eps", low=0.0)
    nrm = as_norm(norm)
    steps = integer(steps, "steps", low=1)
    epochs = integer(epochs, "epochs", low=0)
    batch_size = integer(batch_size, "batch_size", low=1)
    adam = _Adam(net.weights + net.biases, lr, betas, adam_eps)
    rng = rng_from(seed)
    tau = {"flow": eps / steps, "ifgsm": 2.5 * eps / steps, "fgsm": eps, "none": 0.0}[inner]

    def attack(Xb, yb):
        if inner == "none" or eps == 0:
            return Xb
        if inner == "fgsm":
            return fgsm(net, Xb, yb, eps, loss=loss, norm=nrm).x_adv
        if inner == "ifgsm":
            return ifgsm(net, Xb, yb, eps, tau, steps, loss=loss, norm=nrm, random_start=True, seed=rng).x_adv
        if scheme == "minmove":
            return minmove_attack(net, Xb, yb, eps, tau, steps, loss=loss, norm=nrm, seed=rng).x_adv
        if nrm.p == np.inf:  # ifgsm's flow without its per-call validation and results (bit for bit)
            return linf_flow_steps(L(net, yb), Xb, eps, tau, steps)
        return ifgsm(net, Xb, yb, eps, tau, steps, loss=loss, norm=nrm).x_adv

    n = len(X)
    adv_loss, clean_loss, clean_acc, etime = (np.empty(epochs) for _ in range(4))
    for e in range(epochs):
        t0 = time.perf_counter()
        total = _epoch(net, X, y, L, batch_size, rng, adam, attack)
        etime[e] = time.perf_counter() - t0
        adv_loss[e] = total / n
        z = net._logits(X)
        clean_loss[e] = float(np.mean(L._loss(z, y)))
        clean_acc[e] = float(np.mean(net.predict(X) == y))
    hist = AdversarialTrainingHistory(inner=inner, eps=eps, norm=nrm, steps=steps, tau=tau,
                                      adversarial_loss=adv_loss, clean_loss=clean_loss,
                                      clean_accuracy=clean_acc, epoch_time=etime)
    return net, hist
