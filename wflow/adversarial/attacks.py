"""Single-point attacks as flows of V = −ℓ: FGSM, IFGSM (and its ℓ2/ℓ1 variants), minimizing movement.

Conventions are those of attack libraries: ``eps`` is the budget (radius of the ball around
the clean input x in the attack's norm) — a number, or one budget per sample (an array of
shape (n,), as in ART); ``epsilons=`` a list of budgets attacked one after the other, giving
a success matrix (budgets × samples, as in foolbox); ``alpha`` the step size, ``steps`` the
number of steps, ``random_start`` a seeded random start in the ball, ``early_stop`` freezes a
sample at its first misclassification, and ``y=None`` attacks the label the model predicts at
the clean input. Every attack returns an :class:`AttackResult` and is batched over the rows of x.

- ``ifgsm``: x_{k+1} = P_{B_ε(x)}(x_k + α s_k) with s_k = sign ∇ℓ(x_k) in ℓ∞ (the normalized
  gradient ∇ℓ/‖∇ℓ‖₂ in ℓ2, the signed largest coordinate in ℓ1) — explicit Euler for the
  ∞-flow of −ℓ with τ = α, i.e. ``solve_flow(-loss, x, T=steps*alpha, tau=alpha, budget=eps)``.
- ``fgsm``: one such step with α = ε.
- ``minmove_attack``: x_{k+1} ∈ argmax{ℓ(z) : ‖z − x_k‖ ≤ α, z ∈ B_ε(x)} (``scheme="minmove"``).

``model`` is a numpy :class:`~wflow.adversarial.MLP` (the loss is chosen by ``loss=``, default
``"mse"``), or a loss potential that already fixes the loss and only needs labels — any object
with ``with_labels(y)`` and ``predict(X)``, e.g. :class:`~wflow.adversarial.LossPotential` or
:class:`~wflow.adversarial.TorchPotential`. Memory: O(n·d) unless ``return_trajectory=True``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .._fp import cap_steps, dtype_of, inner_box, round_down
from .._validation import as_points, integer, real, rng_from
from ..flow import FlowResult, _step_blocks, default_chunk_size, solve_flow
from ..norms import Norm, as_norm, project_ball, steepest
from ..schemes import EulerScheme
from ..steps import Ball
from .losses import make_loss

__all__ = ["AttackResult", "fgsm", "ifgsm", "minmove_attack", "random_start", "attack_potential", "linf_flow_steps"]

LINF = as_norm("linf")
EULER_LINF = EulerScheme(LINF)  # stateless: shared by every call


@dataclass
class AttackResult:
    """The outcome of an attack on n samples (for B budgets with ``epsilons=``).

    Attributes
    ----------
    x_adv : ndarray, shape of x, or (B,) + shape of x
        Adversarial points.
    success : ndarray of bool, shape (n,) or (B, n)
        The model's prediction at x_adv differs from the attacked label.
    loss : ndarray, shape (n,) or (B, n)
        ℓ(x_adv, y).
    eps : ndarray, shape (n,) or (B,)
        Per-sample budgets, or the budgets of the sweep.
    labels : ndarray, shape (n,)
        The attacked labels (the predictions at x when y was None).
    steps_taken : ndarray of int, shape (n,) or (B, n)
        Steps until the first success (``early_stop``) or the full number of steps.
    method : str
    norm : Norm
    alpha : float or ndarray
    steps : int
    trajectory : FlowResult or None
        Only with ``return_trajectory=True``.
    """

    x_adv: np.ndarray
    success: np.ndarray
    loss: np.ndarray
    eps: np.ndarray
    labels: np.ndarray
    steps_taken: np.ndarray
    method: str
    norm: Norm
    alpha: float | np.ndarray
    steps: int
    trajectory: FlowResult | None = field(default=None, repr=False)

    @property
    def success_rate(self):
        """Fraction of successful samples: a float, or (B,) for a sweep."""
        r = self.success.mean(axis=-1)
        return float(r) if np.ndim(r) == 0 else r

    def to_dict(self) -> dict:
        """JSON-ready summary (rates and budgets; not the points)."""
        a = np.asarray(self.alpha)
        return {"method": self.method, "norm": self.norm.name, "steps": self.steps,
                "alpha": float(a) if a.ndim == 0 else a.tolist(),
                "eps": self.eps.tolist(), "n_samples": int(self.labels.size),
                "success_rate": np.asarray(self.success_rate).tolist(),
                "mean_loss": np.asarray(self.loss.mean(axis=-1)).tolist(),
                "mean_steps_taken": np.asarray(self.steps_taken.mean(axis=-1)).tolist()}


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


def _budget(eps, n: int, name: str = "eps") -> np.ndarray:
    """A budget per sample: a number (broadcast) or an array of shape (n,), finite and ≥ 0."""
    if np.ndim(eps) == 0:
        return np.full(n, real(eps, name, low=0.0))
    try:
        e = np.asarray(eps, dtype=float)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a number or an array of shape ({n},)") from None
    if e.shape != (n,):
        raise ValueError(f"{name} must be a number or one value per sample, shape ({n},), got {e.shape}")
    if not np.all(np.isfinite(e)) or np.any(e < 0):
        raise ValueError(f"{name} must be finite and >= 0")
    return e


def random_start(x, eps, norm="linf", seed=None) -> np.ndarray:
    """A seeded random point of B_ε(x) for every row of x (``eps`` a number or (n,) array).

    ℓ∞: uniform in the box [x − ε, x + ε]; other norms: a uniform point of the box projected
    onto the ball (not uniform in volume).
    """
    X = as_points(x, "x")
    e = _budget(eps, len(X))
    nrm = as_norm(norm)
    rng = rng_from(seed)
    if np.ndim(eps) == 0:
        Z = X + rng.uniform(-e[0], e[0], size=X.shape)
    else:
        Z = X + rng.uniform(-e[:, None], e[:, None], size=X.shape)
    if nrm.p != np.inf:
        Z = project_ball(Z, X, e, nrm.p)
    return Z


def _predict(L, X) -> np.ndarray:
    return np.asarray(L.predict(X))


def _finish(method, L, X, single, labels, e, Xa, steps_taken, nrm, alpha, steps, traj=None) -> AttackResult:
    if callable(getattr(L, "value_and_predict", None)):  # one forward pass for both
        loss, pred = L.value_and_predict(Xa)
    else:
        loss, pred = L.value(Xa), _predict(L, Xa)
    loss = np.asarray(loss, dtype=float)
    success = np.asarray(pred) != labels
    return AttackResult(x_adv=Xa[0] if single else Xa, success=success, loss=loss, eps=e, labels=labels,
                        steps_taken=steps_taken, method=method, norm=nrm, alpha=alpha, steps=steps, trajectory=traj)


def _sweep(run, epsilons, n: int):
    """Run ``run(eps_per_sample)`` for every budget; stack into a sweep result."""
    try:
        budgets = np.asarray(epsilons, dtype=float).reshape(-1)
    except (TypeError, ValueError):
        raise TypeError("epsilons must be a sequence of budgets") from None
    if budgets.size == 0 or not np.all(np.isfinite(budgets)) or np.any(budgets < 0):
        raise ValueError(f"epsilons must be a non-empty sequence of finite budgets >= 0, got {epsilons!r}")
    res = [run(float(b)) for b in budgets]
    r0 = res[0]
    alphas = [r.alpha for r in res]
    return AttackResult(
        x_adv=np.stack([r.x_adv for r in res]), success=np.stack([r.success for r in res]),
        loss=np.stack([r.loss for r in res]), eps=budgets, labels=r0.labels,
        steps_taken=np.stack([r.steps_taken for r in res]), method=r0.method, norm=r0.norm,
        alpha=np.array([float(np.max(a)) for a in alphas]), steps=r0.steps)


def _check_common(eps, epsilons):
    if epsilons is not None and eps is not None:
        raise ValueError("pass either eps (one budget, or one per sample) or epsilons (a sweep), not both")
    if epsilons is None and eps is None:
        raise ValueError("eps is required (or epsilons= for a sweep of budgets)")


def fgsm(model, x, y, eps=None, *, loss: str | None = None, norm="linf", epsilons=None) -> AttackResult:
    """Fast gradient sign method: x + ε s with s = sign ∇ℓ(x) (ℓ∞), ∇ℓ/‖∇ℓ‖₂ (ℓ2), ... .

    One explicit-Euler step of size ε for the flow of −ℓ. In ℓ∞ every coordinate moves by
    exactly ±ε, or 0 where ∂_i ℓ(x) = 0.

    Parameters
    ----------
    model : MLP or loss potential
    x : array, shape (d,) or (n, d)
    y : labels (scalar or (n,)), or None for the predicted labels at x
    eps : float or array of shape (n,)
        Budget(s) ε ≥ 0.
    loss : {"mse", "ce"}, optional
        For an MLP (default "mse").
    norm : {"linf", "l2", "l1"} or p
    epsilons : sequence of float, optional
        A sweep of budgets instead of ``eps``: every field gains a leading budget axis.

    Returns
    -------
    AttackResult
    """
    _check_common(eps, epsilons)
    single = np.ndim(x) == 1
    X = as_points(x, "x")
    nrm = as_norm(norm)
    L = attack_potential(model, X, y, loss)
    labels = np.asarray(L.labels)
    if epsilons is not None:
        return _sweep(lambda b: fgsm(L, x, labels, b, norm=nrm), epsilons, len(X))
    e = _budget(eps, len(X))
    Xa = _euler_steps(L, X, X.copy(), e, e, 1, nrm.p, labels, False)[0]
    return _finish("fgsm", L, X, single, labels, e, Xa, np.ones(len(X), np.int64), nrm,
                   float(e[0]) if np.ndim(eps) == 0 else e, 1)


def _euler_steps(L, X, Z, e, alpha, steps, p, labels, early_stop):
    """``steps`` projected steepest-ascent steps of ℓ from Z in B_e(X), per-sample e and α.

    The arithmetic is that of the flow solver's Euler scheme (``x + τ s`` then projection),
    so with scalar budgets the result equals ``solve_flow``'s bit for bit.
    """
    n = len(X)
    # in the loss's precision, with steps ≤ α and the budget box exact (docs/precision.md)
    dt = dtype_of(L)
    X, Z = X.astype(dt, copy=False), Z.astype(dt, copy=False)
    a_d = round_down(np.broadcast_to(alpha, (n,)), dt)
    taken = np.full(n, steps, dtype=np.int64)
    idx = np.arange(n)
    if early_stop:
        taken[:] = 0
        hit = _predict(L, Z) != labels
        idx = idx[~hit]
    lo = hi = None
    if p == np.inf:
        lo, hi = inner_box(X, e[:, None])
    for k in range(steps):
        if idx.size == 0:
            break
        Li = L if idx.size == n else L.with_labels(labels[idx])
        Zi = Z[idx] if idx.size < n else Z
        g = np.asarray(Li.grad(Zi), dtype=float)
        if not np.all(np.isfinite(g)):
            raise ValueError("the loss gradient has non-finite values during the attack")
        s = steepest(g, p).astype(dt, copy=False)
        s *= a_d[idx, None]
        Zn = Zi + s
        if p == np.inf:
            cap_steps(Zi, Zn, a_d[idx, None])
            Zi = np.clip(Zn, lo[idx], hi[idx], out=Zn)
        else:
            Zi = project_ball(Zn, X[idx], e[idx], p)
        Z[idx] = Zi
        if early_stop:
            hit = _predict(Li, Zi) != labels[idx]
            taken[idx] = k + 1
            idx = idx[~hit]
    return Z, taken


def linf_flow_steps(L, X: np.ndarray, eps: float, tau: float, steps: int) -> np.ndarray:
    """The end point of ``ifgsm(L, X, L.labels, eps, tau, steps)`` (ℓ∞, from X, no random start)
    without the public call's validation, probes and result objects.

    The flow solver's own block loop (``wflow.flow._step_blocks``) with its Euler scheme and
    blocks, so bit for bit ``solve_flow``'s result: for inner loops that validated their inputs
    once (:func:`~wflow.adversarial.adversarial_train`). ``L`` is a loss potential with one label
    per row of X; eps ≥ 0 and tau > 0 floats. One worker.
    """
    dt = dtype_of(L)
    X = X.astype(dt, copy=False)
    n, d = X.shape
    if steps == 0:
        return X.copy()
    # step sizes and the budget ball as solve_flow(-L, X, steps * tau, tau, budget=eps) makes them
    h = [round_down(tau, dt) if dt != np.float64 else float(tau)] * steps
    slot = [-1] * steps + [0]  # keep the end point only
    out = np.empty((1, n, d), dtype=dt)
    _step_blocks(EULER_LINF, -L, X, h, Ball(X, float(eps), LINF), default_chunk_size(n, d, dt), out, slot)
    return out[0]


def _iterative(method, model, x, y, eps, alpha, steps, loss, norm, rs, seed, return_trajectory, early_stop,
               restarts, epsilons, scheme, flow_kw):
    _check_common(eps, epsilons)
    single = np.ndim(x) == 1
    X = as_points(x, "x")
    n = len(X)
    steps = integer(steps, "steps", low=0)
    restarts = integer(restarts, "restarts", low=1)
    nrm = as_norm(norm)
    for nm, v in (("random_start", rs), ("early_stop", early_stop), ("return_trajectory", return_trajectory)):
        if not isinstance(v, (bool, np.bool_)):
            raise TypeError(f"{nm} must be True or False, got {type(v).__name__}")
    rng = rng_from(seed)
    L = attack_potential(model, X, y, loss)
    labels = np.asarray(L.labels)
    if epsilons is not None:
        if return_trajectory:
            raise ValueError("return_trajectory needs a single budget eps, not epsilons")
        return _sweep(lambda b: _iterative(method, L, x, labels, b, alpha, steps, None, nrm, rs, rng, False,
                                           early_stop, restarts, None, scheme, flow_kw), epsilons, n)
    e = _budget(eps, n)
    if alpha is None:
        if steps == 0 or not np.any(e > 0):
            a = np.zeros(n)  # nothing can move
        else:
            a = 2.5 * e / steps  # Madry et al.'s rule: the path can cross the ball and come back
            if np.all(a <= 0):
                raise ValueError("alpha=None (2.5·eps/steps) needs some eps > 0; pass alpha explicitly")
            a[a <= 0] = np.min(a[a > 0])  # zero budgets do not move whatever the step
    else:
        a = _budget(alpha, n, "alpha")
        if np.any(a <= 0):
            raise ValueError(f"alpha must be > 0, got {alpha!r}")
    scalar = np.ndim(eps) == 0 and (alpha is None or np.ndim(alpha) == 0)
    alpha_out = float(a[0]) if scalar else a
    if return_trajectory and (not scalar or early_stop or restarts > 1):
        raise ValueError("return_trajectory needs a scalar eps and alpha, early_stop=False and restarts=1")
    if not np.any(e > 0) or steps == 0 or not np.any(a > 0):
        steps_eff = 0  # zero budgets or no steps: the clean points are the result
    else:
        steps_eff = steps
    best = None
    for _ in range(restarts):
        Z0 = random_start(X, e if not scalar else e[0], nrm, rng) if rs else X.copy()
        traj = None
        if return_trajectory:
            res = solve_flow(-L, Z0, T=steps * a[0], tau=a[0], norm=nrm.p, scheme=scheme, budget=e[0],
                             center=X, seed=rng, **flow_kw)
            Z, taken, traj = np.array(res.positions[-1]), np.full(n, steps, np.int64), res
        elif steps_eff == 0 and not return_trajectory:
            Z, taken = X.copy(), np.zeros(n, np.int64)
        elif scalar and not early_stop:
            # the flow solver's optimized loop, storing only the end points (O(n·d) memory)
            res = solve_flow(-L, Z0, T=steps * a[0], tau=a[0], norm=nrm.p, scheme=scheme, budget=e[0],
                             center=X, seed=rng, stride=steps, **flow_kw)
            Z, taken = np.array(res.positions[-1]), np.full(n, steps, np.int64)
        elif scheme == "euler":
            Z, taken = _euler_steps(L, X, Z0, e, a, steps, nrm.p, labels, early_stop)
        else:
            Z, taken = _minmove_steps(L, X, Z0, e, a, steps, nrm.p, labels, early_stop, rng, flow_kw)
        cand = _finish(method, L, X, False, labels, e, Z, taken, nrm, alpha_out, steps, traj)
        if best is None:
            best = cand
        else:  # keep, per sample, a success first, then the larger loss
            better = (cand.success & ~best.success) | ((cand.success == best.success) & (cand.loss > best.loss))
            for f in ("x_adv", "success", "loss", "steps_taken"):
                getattr(best, f)[better] = getattr(cand, f)[better]
    if single:
        best.x_adv = best.x_adv[0]
    return best


def _minmove_steps(L, X, Z, e, alpha, steps, p, labels, early_stop, rng, flow_kw):
    """Minimizing-movement steps with per-sample budgets/steps and early stop (one
    ``solve_flow`` step per group of samples sharing (ε, α))."""
    n = len(X)
    taken = np.full(n, steps if not early_stop else 0, dtype=np.int64)
    active = np.ones(n, bool)
    if early_stop:
        active &= _predict(L, Z) == labels
    keys = np.stack([e, alpha], axis=1)
    groups = [np.nonzero((keys == k).all(axis=1))[0] for k in np.unique(keys, axis=0)]
    for k in range(steps):
        if not active.any():
            break
        for gi in groups:
            idx = gi[active[gi]]
            if idx.size == 0:
                continue
            Li = L.with_labels(labels[idx])
            res = solve_flow(-Li, Z[idx], T=alpha[idx[0]], tau=alpha[idx[0]], norm=p, scheme="minmove",
                             budget=e[idx[0]], center=X[idx], seed=rng, **flow_kw)
            Z[idx] = res.positions[-1]
            if early_stop:
                hit = _predict(Li, Z[idx]) != labels[idx]
                taken[idx] = k + 1
                active[idx[hit]] = False
    return Z, taken


def ifgsm(
    model,
    x,
    y,
    eps=None,
    alpha=None,
    steps: int = 10,
    *,
    loss: str | None = None,
    norm="linf",
    random_start: bool = False,
    seed=None,
    restarts: int = 1,
    early_stop: bool = False,
    epsilons=None,
    return_trajectory: bool = False,
    stride: int = 1,
    workers: int | None = None,
) -> AttackResult:
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
    y : labels (scalar or (n,)), or None to attack the predicted labels at x
    eps : float or array of shape (n,)
        Budget(s) ε ≥ 0 (radius of the ball around x).
    alpha : float or array of shape (n,), optional
        Step size α > 0 (default 2.5·ε/steps).
    steps : int
        Number of steps ≥ 0.
    loss : {"mse", "ce"}, optional
        For an MLP (default "mse").
    norm : {"linf", "l2", "l1"} or p
    random_start : bool
    seed : int or Generator, optional
        For the random starts.
    restarts : int
        Independent runs (use with ``random_start``); per sample the successful one, else the
        one with the largest loss, is kept.
    early_stop : bool
        Freeze each sample at its first misclassification.
    epsilons : sequence of float, optional
        A sweep of budgets instead of ``eps`` (fields gain a leading budget axis).
    return_trajectory : bool
        Keep the :class:`~wflow.FlowResult` (positions (steps+1, n, d)) in ``.trajectory``;
        otherwise only O(n·d) memory is used.
    stride, workers : passed to :func:`wflow.solve_flow` (``stride`` with the trajectory only).

    Returns
    -------
    AttackResult
    """
    kw = {"workers": workers}
    if return_trajectory:
        kw["stride"] = integer(stride, "stride", low=1)
    return _iterative("ifgsm", model, x, y, eps, alpha, steps, loss, norm, random_start, seed, return_trajectory,
                      early_stop, restarts, epsilons, "euler", kw)


def minmove_attack(
    model,
    x,
    y,
    eps=None,
    alpha=None,
    steps: int = 10,
    *,
    loss: str | None = None,
    norm="linf",
    inner: str = "auto",
    random_start: bool = False,
    seed=None,
    restarts: int = 1,
    early_stop: bool = False,
    epsilons=None,
    return_trajectory: bool = False,
    **scheme_options,
) -> AttackResult:
    """Minimizing-movement attack: x_{k+1} ∈ argmax{ℓ(z) : ‖z − x_k‖ ≤ α, ‖z − x‖ ≤ ε}.

    ``solve_flow(-loss, x_0, T=steps*alpha, tau=alpha, scheme="minmove", budget=eps, center=x)``
    with the inner solver ``inner`` (see :mod:`wflow.minmove`). Its first-order (Frank–Wolfe)
    step is FGSM's, and both schemes converge to the same ∞-curves as α → 0. Parameters and
    returns as in :func:`ifgsm`; ``scheme_options`` go to the minimizing-movement scheme.
    """
    kw = dict(scheme_options, inner=inner)
    return _iterative("minmove", model, x, y, eps, alpha, steps, loss, norm, random_start, seed,
                      return_trajectory, early_stop, restarts, epsilons, "minmove", kw)
