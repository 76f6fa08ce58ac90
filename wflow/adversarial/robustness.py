"""The robustness study: models trained against several inner attacks, evaluated against strong
attacks and against the optimal adversarial risk on the same data (``docs/robustness.md``).

:func:`robustness_study` trains one model per inner method (:func:`adversarial_train`), then
measures on the test split, for every budget ε of a grid:

- the robust error of every model under IFGSM with random restarts (and, in d ≤ 3, under the
  grid-search worst case of the cross-entropy: a point is lost when some point of its ball has
  loss ≥ log 2, i.e. is misclassified — a dense-grid lower bound of the exact worst case);
- the lower bound that no classifier beats: the exact optimal risk for two classes, the
  pairwise-matching bound for more (:func:`pairwise_risk_lower_bound`);
- attack-strength curves on the clean-trained model: FGSM, IFGSM (Madry), the ∞-flow
  (IFGSM with τ = ε/steps from the clean point) and the worst case (d ≤ 3).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
from matplotlib.figure import Figure

from .._validation import integer, real
from ..norms import Norm, as_norm
from .adversarial_training import INNER_METHODS, adversarial_train
from .attacks import fgsm, ifgsm
from .data import load_dataset
from .distributional import worst_case_loss
from .mlp import MLP
from .optimal_risk import pairwise_risk_lower_bound

__all__ = ["robustness_study", "RobustnessStudy", "STUDY_DEFAULTS"]

#: per data set: network, training budget, evaluation grid (the experiments' settings)
STUDY_DEFAULTS = {
    "two_moons": {"layers": (2, 32, 32, 1), "train_eps": 0.2, "eps_max": 0.4, "epochs": 40, "lr": 1e-2,
                  "batch_size": 64},
    "digits": {"layers": (64, 64, 64, 10), "train_eps": 0.1, "eps_max": 0.25, "epochs": 20, "lr": 2e-3,
               "batch_size": 32},
    "breast_cancer": {"layers": (30, 32, 32, 1), "train_eps": 0.5, "eps_max": 1.5, "epochs": 40, "lr": 3e-3,
                      "batch_size": 32},
}


def _nan_list(a):
    return [None if not np.isfinite(v) else float(v) for v in np.asarray(a, dtype=float).ravel()]


@dataclass
class RobustnessStudy:
    """Results of :func:`robustness_study`.

    Attributes
    ----------
    dataset : dict
        ``Dataset.to_dict()``.
    norm : Norm
    eps : ndarray, shape (K,)
        Evaluation budgets.
    train_eps : float
    inners : tuple of str
    clean_accuracy : dict inner → float
    robust_error : dict inner → ndarray (K,)
        Under IFGSM with restarts.
    worst_case_error : dict inner → ndarray (K,)
        Grid-search worst case (NaN when d > 3).
    lower_bound : ndarray, shape (K,)
    lower_bound_kind : str
        "optimal risk (exact, 2 classes)" or "pairwise matching lower bound (k classes)".
    attack_error : dict attack → ndarray (K,)
        Robust error of the clean-trained ("none") model (or the first model) per attack.
    train_time : dict inner → float
        Seconds per epoch (mean).
    settings : dict
    """

    dataset: dict
    norm: Norm
    eps: np.ndarray
    train_eps: float
    inners: tuple
    clean_accuracy: dict
    robust_error: dict
    worst_case_error: dict
    lower_bound: np.ndarray
    lower_bound_kind: str
    attack_error: dict
    train_time: dict
    settings: dict
    models: dict = field(default_factory=dict, repr=False)

    def to_dict(self) -> dict:
        return {
            "dataset": self.dataset, "norm": self.norm.name, "eps": self.eps.tolist(),
            "train_eps": self.train_eps, "inners": list(self.inners),
            "clean_accuracy": {k: float(v) for k, v in self.clean_accuracy.items()},
            "robust_error": {k: _nan_list(v) for k, v in self.robust_error.items()},
            "worst_case_error": {k: _nan_list(v) for k, v in self.worst_case_error.items()},
            "lower_bound": _nan_list(self.lower_bound), "lower_bound_kind": self.lower_bound_kind,
            "attack_error": {k: _nan_list(v) for k, v in self.attack_error.items()},
            "train_time_per_epoch": {k: float(v) for k, v in self.train_time.items()},
            "settings": self.settings,
        }

    def figure(self):
        """Two panels: robust error vs ε per model over the lower bound; attack strength."""
        fig = Figure(figsize=(11, 4.2), layout="constrained")
        ax1, ax2 = fig.subplots(1, 2)
        ax1.fill_between(self.eps, 0, self.lower_bound, color="0.85", label=f"no classifier below ({self.lower_bound_kind})")
        ax1.plot(self.eps, self.lower_bound, color="0.3", lw=1)
        for k in self.inners:
            ax1.plot(self.eps, self.robust_error[k], marker="o", ms=3, label=f"trained: {k}")
            if np.all(np.isfinite(self.worst_case_error[k])):
                ax1.plot(self.eps, self.worst_case_error[k], ls=":", color=ax1.lines[-1].get_color())
        ax1.axvline(self.train_eps, color="0.5", ls="--", lw=0.8)
        ax1.set(xlabel=f"budget ε ({self.norm.name})", ylabel="robust test error",
                title=f"{self.dataset['name']}: robust error (IFGSM + restarts; dotted: worst case)")
        ax1.set_ylim(0, 1.02)
        ax1.legend(fontsize=7, loc="best")
        for k, v in self.attack_error.items():
            ax2.plot(self.eps, v, marker="o", ms=3, label=k)
        ax2.plot(self.eps, self.lower_bound, color="0.3", lw=1, label="lower bound")
        ax2.set(xlabel=f"budget ε ({self.norm.name})", ylabel="robust test error",
                title="attack strength on the clean-trained model")
        ax2.set_ylim(0, 1.02)
        ax2.legend(fontsize=7, loc="upper left")
        return fig


def _worst_case_error(model, X, y, eps, norm, grid):
    out = np.empty(len(eps))
    for i, e in enumerate(eps):
        if e == 0:
            out[i] = float(np.mean(model.predict(X) != y))
            continue
        wc = worst_case_loss(model, X, y, e, loss="ce", norm=norm, grid=grid, refine=2)
        out[i] = float(np.mean((wc.values >= np.log(2.0)) | (model.predict(X) != y)))
    return out


def robustness_study(
    dataset: str = "two_moons",
    *,
    eps=None,
    n_eps: int = 9,
    train_eps: float | None = None,
    inners=INNER_METHODS[::-1],
    norm="linf",
    steps: int = 10,
    epochs: int | None = None,
    eval_steps: int = 20,
    restarts: int = 3,
    n_eval: int | None = None,
    worst_case_grid: int = 33,
    seed: int = 0,
) -> RobustnessStudy:
    """Train one model per inner method and measure robust error against the optimal bound.

    Parameters
    ----------
    dataset : {"two_moons", "digits", "breast_cancer"}
    eps : array, optional
        Evaluation budgets (default ``n_eps`` points in [0, eps_max] of ``STUDY_DEFAULTS``).
    train_eps : float, optional
        Training budget (default from ``STUDY_DEFAULTS``).
    inners : sequence of {"none", "fgsm", "ifgsm", "flow"}
    norm : norm specification
    steps : int
        Inner steps in training (equal for "flow" and "ifgsm").
    epochs : int, optional
    eval_steps, restarts : int
        The evaluation IFGSM (α = 2.5ε/eval_steps, random starts).
    n_eval : int, optional
        Evaluate on the first n_eval test points (default all).
    worst_case_grid : int
        Grid of the worst-case search (d ≤ 3 only).
    seed : int
        Split, initialization, training and attacks.

    Returns
    -------
    RobustnessStudy
    """
    if dataset not in STUDY_DEFAULTS:
        raise ValueError(f"dataset must be one of {sorted(STUDY_DEFAULTS)}, got {dataset!r}")
    inners = tuple(inners)
    if not inners or any(k not in INNER_METHODS for k in inners):
        raise ValueError(f"inners must be a non-empty sequence of {INNER_METHODS}, got {inners!r}")
    cfg = STUDY_DEFAULTS[dataset]
    nrm = as_norm(norm)
    seed = integer(seed, "seed", low=0)
    steps = integer(steps, "steps", low=1)
    eval_steps = integer(eval_steps, "eval_steps", low=1)
    restarts = integer(restarts, "restarts", low=1)
    train_eps = cfg["train_eps"] if train_eps is None else real(train_eps, "train_eps", low=0.0)
    epochs = cfg["epochs"] if epochs is None else integer(epochs, "epochs", low=0)
    if eps is None:
        eps = np.linspace(0.0, cfg["eps_max"], integer(n_eps, "n_eps", low=2))
    eps = np.asarray(eps, dtype=float).reshape(-1)
    if eps.size == 0 or not np.all(np.isfinite(eps)) or np.any(eps < 0):
        raise ValueError("eps must be a non-empty array of finite budgets >= 0")
    ds = load_dataset(dataset, seed=seed)
    X, y = ds.X_test, ds.y_test
    if n_eval is not None:
        n_eval = integer(n_eval, "n_eval", low=1)
        X, y = X[:n_eval], y[:n_eval]
    d = ds.dim
    m0 = MLP.init(cfg["layers"], "relu", seed=seed)

    def robust(model, e, method):
        if e == 0:
            return float(np.mean(model.predict(X) != y))
        if method == "fgsm":
            return fgsm(model, X, y, e, loss="ce", norm=nrm).success_rate
        if method == "flow":
            return ifgsm(model, X, y, e, e / eval_steps, eval_steps, loss="ce", norm=nrm).success_rate
        return ifgsm(model, X, y, e, steps=eval_steps, loss="ce", norm=nrm, random_start=True,
                     restarts=restarts, seed=seed).success_rate

    models, clean, rob, worst, ttime = {}, {}, {}, {}, {}
    for k in inners:
        net, hist = adversarial_train(m0, ds.X_train, ds.y_train, train_eps, inner=k, norm=nrm, steps=steps,
                                      epochs=epochs, lr=cfg["lr"], batch_size=cfg["batch_size"], seed=seed)
        models[k] = net
        clean[k] = float(net.accuracy(X, y))
        ttime[k] = float(hist.epoch_time.mean()) if epochs else 0.0
        rob[k] = np.array([robust(net, e, "ifgsm") for e in eps])
        worst[k] = (_worst_case_error(net, X, y, eps, nrm, worst_case_grid) if d <= 3
                    else np.full(eps.size, np.nan))
    t0 = time.perf_counter()
    bound = pairwise_risk_lower_bound(X, y, eps, nrm)
    bound_seconds = time.perf_counter() - t0
    kind = ("optimal risk (exact, 2 classes)" if ds.n_classes == 2
            else "pairwise matching lower bound (k classes)")
    ref = "none" if "none" in models else inners[0]
    attack_err = {f"{a}": np.array([robust(models[ref], e, a) for e in eps]) for a in ("fgsm", "ifgsm", "flow")}
    if d <= 3:
        attack_err["worst case"] = worst[ref]
    settings = {"steps": steps, "epochs": epochs, "eval_steps": eval_steps, "restarts": restarts, "seed": seed,
                "layers": list(cfg["layers"]), "lr": cfg["lr"], "batch_size": cfg["batch_size"],
                "n_eval": len(X), "attack_model": ref, "worst_case_grid": worst_case_grid if d <= 3 else None,
                "bound_seconds": bound_seconds}
    return RobustnessStudy(dataset=ds.to_dict(), norm=nrm, eps=eps, train_eps=train_eps, inners=inners,
                           clean_accuracy=clean, robust_error=rob, worst_case_error=worst,
                           lower_bound=bound.bound, lower_bound_kind=kind, attack_error=attack_err,
                           train_time=ttime, settings=settings, models=models)
