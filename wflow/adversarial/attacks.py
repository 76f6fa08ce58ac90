"""Single-point attacks as flows of V = −ℓ: FGSM, IFGSM (and its ℓ2/ℓ1 variants), minimizing movement.

Conventions are those of attack libraries: ``eps`` is the budget (radius of the ball around
the clean input x in the attack's norm), ``alpha`` the step size, ``steps`` the number of
steps, ``random_start`` starts from a seeded random point of the ball, and ``y=None`` attacks
the label the model predicts at the clean input. Every attack is batched over the rows of x.

- ``ifgsm``: x_{k+1} = P_{B_ε(x)}(x_k + α s_k) with s_k = sign ∇ℓ(x_k) in ℓ∞ (the normalized
  gradient ∇ℓ/‖∇ℓ‖₂ in ℓ2, the signed largest coordinate in ℓ1) — explicit Euler for the
  ∞-flow of −ℓ with τ = α, i.e. ``solve_flow(-loss, x, T=steps*alpha, tau=alpha, budget=eps)``.
- ``fgsm``: one such step with α = ε.
- ``minmove_attack``: x_{k+1} ∈ argmax{ℓ(z) : ‖z − x_k‖ ≤ α, z ∈ B_ε(x)} (``scheme="minmove"``).

``model`` is a numpy :class:`~wflow.adversarial.MLP` (the loss is chosen by ``loss=``, default
``"mse"``), or a loss potential that already fixes the loss and only needs labels — any object
with ``with_labels(y)`` and ``predict(X)``, e.g. :class:`~wflow.adversarial.LossPotential` or
:class:`~wflow.adversarial.TorchPotential`.
"""

from __future__ import annotations

import numpy as np

from .._validation import as_points, integer, real, rng_from
from ..flow import FlowResult, solve_flow
from ..norms import parse_norm, project_ball
from .losses import make_loss

__all__ = ["fgsm", "ifgsm", "minmove_attack", "random_start", "attack_potential"]


def attack_potential(model, X: np.ndarray, y=None, loss: str | None = None, *, name: str = "x"):
    """The loss ℓ with one label per row of X (predicted labels at X when y is None).

    Returns the loss potential (attacks flow its negation).
    """
    if callable(getattr(model, "with_labels", None)) and callable(getattr(model, "predict", None)):
        if loss is not None:
            raise ValueError(f"loss={loss!r} cannot be used: the model {type(model).__name__} already fixes its loss")
        dim = getattr(model, "dim", None)
        if dim is not None and X.shape[1] != dim:
            raise ValueError(f"{name} must have dimension d = {dim} for the model, got shape {X.shape}")
        labels = model.predict(X) if y is None else _broadcast_labels(y, len(X))
        return model.with_labels(labels)
    if callable(getattr(model, "_logits_and_grad", None)):
        if X.shape[1] != model.dim:
            raise ValueError(f"{name} must have dimension d = {model.dim} for the model, got shape {X.shape}")
        labels = model.predict(X) if y is None else _broadcast_labels(y, len(X))
        return make_loss(model, labels, "mse" if loss is None else loss)
    raise TypeError(
        f"model must be a wflow MLP or a loss potential with with_labels/predict, got {type(model).__name__}"
    )


def _broadcast_labels(y, n: int) -> np.ndarray:
    if isinstance(y, (str, bytes)):
        raise TypeError(f"y must be labels, got {type(y).__name__}")
    a = np.asarray(y)
    if a.ndim == 0:
        return np.full(n, a.item())
    if a.shape != (n,):
        raise ValueError(f"y must be a label or one label per point, shape ({n},), got {a.shape}")
    return a


def random_start(x, eps: float, norm="linf", seed=None) -> np.ndarray:
    """A seeded random point of B_ε(x) for every row of x.

    ℓ∞: uniform in the box [x − ε, x + ε]; other norms: a uniform point of the box projected
    onto the ball (not uniform in volume).
    """
    X = as_points(x, "x")
    eps = real(eps, "eps", low=0.0)
    p = parse_norm(norm, name="norm")
    rng = rng_from(seed)
    Z = X + rng.uniform(-eps, eps, size=X.shape)
    if p != np.inf:
        Z = project_ball(Z, X, eps, p)
    return Z


def _finish(X_adv: np.ndarray, single: bool, res: FlowResult | None, return_trajectory: bool):
    out = X_adv[0] if single else X_adv
    return (out, res) if return_trajectory else out


def fgsm(model, x, y, eps: float, *, loss: str | None = None, norm="linf"):
    """Fast gradient sign method: x + ε s with s = sign ∇ℓ(x) (ℓ∞), ∇ℓ/‖∇ℓ‖₂ (ℓ2), ... .

    One explicit-Euler step of size ε for the flow of −ℓ. In ℓ∞ every coordinate moves by
    exactly ±ε, or 0 where ∂_i ℓ(x) = 0.

    Parameters
    ----------
    model : MLP or loss potential
    x : array, shape (d,) or (n, d)
    y : labels in {0, 1} (scalar or (n,)), or None for the predicted labels at x
    eps : float
        ε ≥ 0.
    loss : {"mse", "ce"}, optional
        For an MLP (default "mse").
    norm : {"linf", "l2", "l1"} or p

    Returns
    -------
    ndarray, shape of x
    """
    single = np.ndim(x) == 1
    X = as_points(x, "x")
    eps = real(eps, "eps", low=0.0)
    parse_norm(norm, name="norm")
    L = attack_potential(model, X, y, loss)
    if eps == 0:
        return _finish(X.copy(), single, None, False)
    res = solve_flow(-L, X, T=eps, tau=eps, norm=norm)
    return _finish(res.positions[-1].copy(), single, None, False)


def _iterative(model, x, y, eps, alpha, steps, loss, norm, rs, seed, return_trajectory, scheme, **kw):
    single = np.ndim(x) == 1
    X = as_points(x, "x")
    eps = real(eps, "eps", low=0.0)
    alpha = real(alpha, "alpha", low=0.0, strict=True)
    steps = integer(steps, "steps", low=0)
    parse_norm(norm, name="norm")
    if not isinstance(rs, (bool, np.bool_)):
        raise TypeError(f"random_start must be True or False, got {type(rs).__name__}")
    rng = rng_from(seed)
    L = attack_potential(model, X, y, loss)
    X0 = random_start(X, eps, norm, rng) if rs else X
    res = solve_flow(-L, X0, T=steps * alpha, tau=alpha, norm=norm, scheme=scheme, budget=eps,
                     center=X, seed=rng, **kw)
    return _finish(res.positions[-1].copy(), single, res, return_trajectory)


def ifgsm(
    model,
    x,
    y,
    eps: float,
    alpha: float,
    steps: int,
    *,
    loss: str | None = None,
    norm="linf",
    random_start: bool = False,
    seed=None,
    return_trajectory: bool = False,
    stride: int = 1,
    workers: int | None = None,
):
    """Iterative FGSM (PGD in ℓ∞ with sign steps): explicit Euler for −ℓ with a budget.

    x_0 = x (or a uniform random point of B_ε(x) with ``random_start``),
    x_{k+1} = P_{B_ε(x)}(x_k + α s_k), s_k ∈ ∂‖·‖_*(∇ℓ(x_k)) (sign ∇ℓ in ℓ∞, sign(0) = 0).
    This is ``solve_flow(-loss, x_0, T=steps*alpha, tau=alpha, norm, budget=eps, center=x)``:
    as α → 0 with steps·α = T fixed it converges to the ∞-curve of maximal slope of −ℓ.

    Parameters
    ----------
    model : MLP or loss potential
    x : array, shape (d,) or (n, d)
        Clean inputs.
    y : labels in {0, 1} (scalar or (n,)), or None to attack the predicted labels at x
    eps : float
        Budget ε ≥ 0 (radius of the ball around x).
    alpha : float
        Step size α > 0.
    steps : int
        Number of steps ≥ 0.
    loss : {"mse", "ce"}, optional
        For an MLP (default "mse").
    norm : {"linf", "l2", "l1"} or p
    random_start : bool
    seed : int or Generator, optional
        For the random start.
    return_trajectory : bool
        Also return the :class:`~wflow.FlowResult` (positions (steps+1, n, d)).
    stride, workers : passed to :func:`wflow.solve_flow`.

    Returns
    -------
    x_adv : ndarray, shape of x
    result : FlowResult (only with ``return_trajectory=True``)
    """
    return _iterative(model, x, y, eps, alpha, steps, loss, norm, random_start, seed, return_trajectory,
                      "euler", stride=stride, workers=workers)


def minmove_attack(
    model,
    x,
    y,
    eps: float,
    alpha: float,
    steps: int,
    *,
    loss: str | None = None,
    norm="linf",
    inner: str = "auto",
    random_start: bool = False,
    seed=None,
    return_trajectory: bool = False,
    **scheme_options,
):
    """Minimizing-movement attack: x_{k+1} ∈ argmax{ℓ(z) : ‖z − x_k‖ ≤ α, ‖z − x‖ ≤ ε}.

    ``solve_flow(-loss, x_0, T=steps*alpha, tau=alpha, scheme="minmove", budget=eps, center=x)``
    with the inner solver ``inner`` (see :mod:`wflow.minmove`). Its first-order (Frank–Wolfe)
    step is FGSM's, and both schemes converge to the same ∞-curves as α → 0. Parameters and
    returns as in :func:`ifgsm`; ``scheme_options`` go to the minimizing-movement scheme.
    """
    return _iterative(model, x, y, eps, alpha, steps, loss, norm, random_start, seed, return_trajectory,
                      "minmove", inner=inner, **scheme_options)
