"""Distributional attacks: the data measure's ∞-flow in (P(X), W∞) and the true worst case.

For data μ = Σ_i w_i δ_{x_i} with fixed labels y_i, the inner problem of distributional
adversarial training is

    sup{ ∫ ℓ dν : W∞(ν, μ) ≤ ε } = Σ_i w_i sup_{‖x̃ − x_i‖ ≤ ε} ℓ(x̃, y_i)        (★)

(``docs/robustness.md``). The W∞-flow of 𝓔(ν) = −∫ ℓ dν started at μ and run to t = ε moves every
atom along its own IFGSM limit curve (:func:`distributional_attack`); in d = 2 the right side
of (★) is computed by a dense per-point grid search with local refinement
(:func:`worst_case_loss`), so the gap of FGSM, IFGSM at several τ and minimizing movement to
the true worst case can be measured (:func:`attack_gaps`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .._validation import integer, real
from ..flow import FlowResult, solve_flow
from ..measures import ParticleMeasure, as_measure
from ..memory import check_memory
from ..norms import norm as _norm
from ..norms import norm_name, parse_norm, project_ball
from .attacks import attack_potential, fgsm, ifgsm, minmove_attack

__all__ = [
    "distributional_attack",
    "DistributionalAttackResult",
    "worst_case_loss",
    "WorstCase",
    "attack_gaps",
    "AttackGapReport",
]

#: rows per model evaluation in the grid search (bounds memory: ~ this × width × 8 bytes × layers)
GRID_BATCH_ROWS = 1 << 17


def _accuracy_over_time(model_pot, positions: np.ndarray, labels: np.ndarray, weights: np.ndarray) -> np.ndarray:
    K1, n, d = positions.shape
    pred = np.asarray(model_pot.predict(positions.reshape(-1, d))).reshape(K1, n)
    return (pred == labels[None, :]) @ weights


@dataclass
class DistributionalAttackResult:
    """The data measure's attack flow μ_t, t ∈ [0, ε], and its measured properties.

    Attributes
    ----------
    eps, tau : float
        Budget ε (= final time) and step τ.
    norm, scheme : str
    times : ndarray, shape (K+1,)
    expected_loss : ndarray, shape (K+1,)
        ∫ ℓ dμ_t = Σ_i w_i ℓ(x_i(t), y_i).
    accuracy : ndarray, shape (K+1,)
        Σ_i w_i 1{prediction at x_i(t) = y_i}.
    displacement : ndarray, shape (K+1,)
        max_i ‖x_i(t) − x_i(0)‖ (cost of the identity coupling, an upper bound of W∞(μ₀, μ_t)).
    winf_times, winf : ndarray, shape (m,)
        Exact W∞(μ₀, μ_t) (``wflow.winf``) at a few times (empty if not computed).
    labels : ndarray, shape (n,)
    flow : FlowResult
    """

    eps: float
    tau: float
    norm: str
    scheme: str
    times: np.ndarray
    expected_loss: np.ndarray
    accuracy: np.ndarray
    displacement: np.ndarray
    winf_times: np.ndarray
    winf: np.ndarray
    labels: np.ndarray
    flow: FlowResult = field(repr=False)

    @property
    def measure(self) -> ParticleMeasure:
        """The attacked measure μ_ε."""
        return self.flow.measure(self.flow.T)

    def winf_within_time(self, tol: float = 1e-9) -> bool:
        """True when W∞(μ₀, μ_t) ≤ t + tol at every checked time (the flow is 1-Lipschitz in W∞)."""
        return bool(np.all(self.winf <= self.winf_times + tol))

    def to_dict(self) -> dict:
        """JSON-ready summary (lists of floats)."""
        return {
            "eps": self.eps, "tau": self.tau, "norm": self.norm, "scheme": self.scheme,
            "n_points": int(self.flow.n_particles),
            "times": self.times.tolist(),
            "expected_loss": self.expected_loss.tolist(),
            "accuracy": self.accuracy.tolist(),
            "displacement": self.displacement.tolist(),
            "winf_times": self.winf_times.tolist(),
            "winf": self.winf.tolist(),
            "winf_within_time": self.winf_within_time(),
        }


def distributional_attack(
    model,
    data,
    y=None,
    eps: float = 0.1,
    tau: float | None = None,
    *,
    loss: str | None = None,
    norm="linf",
    scheme: str = "euler",
    n_winf: int = 6,
    seed=None,
    **flow_options,
) -> DistributionalAttackResult:
    """Run the W∞-flow of 𝓔(ν) = −∫ ℓ dν from the data measure to t = ε.

    Every atom moves along its IFGSM curve x_i(t) (labels fixed), with the budget B_ε(x_i)
    (never active before t = ε since ‖x_i(t) − x_i‖ ≤ t). μ_t = Σ w_i δ_{x_i(t)} stays in the
    W∞ ball of radius t around μ₀, which is checked with the exact W∞ at ``n_winf`` times.

    Parameters
    ----------
    model : MLP or loss potential (see :mod:`wflow.adversarial.attacks`)
    data : ParticleMeasure or array, shape (n, d)
        The data measure (an array means uniform weights).
    y : labels (n,) or scalar in {0, 1}, or None for the labels predicted at the data
    eps : float
        Radius ε > 0 of the W∞ ball (the final time).
    tau : float, optional
        Step τ > 0 (default ε/50).
    loss : {"mse", "ce"}, optional
    norm : norm specification
    scheme : {"euler", "minmove"}
    n_winf : int
        Number of times (evenly spaced in [0, ε], including both ends) at which the exact
        W∞(μ₀, μ_t) is computed; 0 skips it.
    seed : passed to :func:`wflow.solve_flow`.
    **flow_options : passed to :func:`wflow.solve_flow` (``inner=``, ``workers=``, ...).

    Returns
    -------
    DistributionalAttackResult
    """
    mu = as_measure(data, "data")
    eps = real(eps, "eps", low=0.0, strict=True)
    tau = eps / 50 if tau is None else real(tau, "tau", low=0.0, strict=True)
    p = parse_norm(norm, name="norm")
    n_winf = integer(n_winf, "n_winf", low=0)
    X = np.array(mu.points)
    L = attack_potential(model, X, y, loss, name="data")
    labels = np.asarray(L.labels, dtype=float)
    winf = None
    if n_winf:
        try:
            from ..transport import winf
        except ImportError as exc:
            raise ImportError(f"n_winf > 0 needs the exact W∞ of wflow.transport ({exc}); pass n_winf=0") from None

    res = solve_flow(-L, mu, T=eps, tau=tau, norm=norm, scheme=scheme, budget=eps, seed=seed, **flow_options)
    expected = -res.energy_curve()
    acc = _accuracy_over_time(L, res.positions, labels, res.weights)
    disp = _norm(res.positions - res.positions[0][None], p).max(axis=1)
    wt = np.linspace(0.0, eps, n_winf) if n_winf > 1 else np.full(n_winf, eps)
    wv = np.array([winf(mu, res.measure(t), norm=norm_name(p)) for t in wt]) if n_winf else np.empty(0)
    return DistributionalAttackResult(
        eps=eps, tau=tau, norm=norm_name(p), scheme=scheme, times=res.times, expected_loss=expected,
        accuracy=acc, displacement=disp, winf_times=wt, winf=wv, labels=labels, flow=res,
    )


# ------------------------------------------------------------------------------------------------
# the true worst case by grid search (d = 2)
# ------------------------------------------------------------------------------------------------
@dataclass
class WorstCase:
    """Per-point worst case of the loss over B_ε(x_i), found by grid search.

    Attributes
    ----------
    values : ndarray, shape (n,)
        max of ℓ(·, y_i) over the searched points of B_ε(x_i) (a lower bound of the sup that
        the refinement makes tight).
    points : ndarray, shape (n, d)
        Where it is attained.
    weights : ndarray, shape (n,)
    eps : float
    grid, refine : int
    """

    values: np.ndarray
    points: np.ndarray
    weights: np.ndarray
    eps: float
    grid: int
    refine: int

    @property
    def mean(self) -> float:
        """Σ_i w_i sup_{B_ε(x_i)} ℓ — the value of the inner problem (★)."""
        return float(self.weights @ self.values)


def _lattice(m: int, d: int) -> np.ndarray:
    ax = np.linspace(-1.0, 1.0, m)
    return np.stack(np.meshgrid(*([ax] * d), indexing="ij"), axis=-1).reshape(-1, d)


def _search(L, centers, labels, box_half, base, p, eps, offsets):
    """Max of ℓ over ``centers_i + box_half_i * offsets`` ∩ B_ε(base_i), chunked over points."""
    n, d = centers.shape
    M = len(offsets)
    per = max(1, GRID_BATCH_ROWS // M)
    best_v = np.empty(n)
    best_x = np.empty((n, d))
    for s in range(0, n, per):
        c = slice(s, min(n, s + per))
        P = centers[c, None, :] + box_half[c, None, None] * offsets[None, :, :]  # (m, M, d)
        P = np.clip(P, base[c, None, :] - eps, base[c, None, :] + eps)
        if p != np.inf:
            flat = P.reshape(-1, d)
            P = project_ball(flat, np.repeat(base[c], M, axis=0), eps, p).reshape(P.shape)
        flat = P.reshape(-1, d)
        v = np.asarray(L.with_labels(np.repeat(labels[c], M)).value(flat)).reshape(-1, M)
        j = np.argmax(v, axis=1)
        best_v[c] = v[np.arange(len(j)), j]
        best_x[c] = P[np.arange(len(j)), j]
    return best_v, best_x


def worst_case_loss(
    model,
    data,
    y=None,
    eps: float = 0.1,
    *,
    loss: str | None = None,
    norm="linf",
    grid: int = 65,
    refine: int = 4,
    refine_grid: int = 9,
) -> WorstCase:
    """sup_{‖x̃ − x_i‖ ≤ ε} ℓ(x̃, y_i) for every data point by a dense grid plus refinement.

    Level 0 evaluates ℓ on the ``grid``^d lattice of the box [x_i − ε, x_i + ε] (projected onto
    the ε-ball for ℓ2/ℓ1), vectorized over all points and lattice nodes. Each of ``refine``
    levels then searches a ``refine_grid``^d lattice of half-width h (the previous spacing)
    around the current best point, so the spacing shrinks by (refine_grid − 1)/2 per level;
    with an L-Lipschitz loss the result is within L·h_final (ℓ1-distance to the nearest node)
    of a local sup near the best node. Only d ≤ 3 is accepted (grid^d nodes per point).

    Parameters
    ----------
    model : MLP or loss potential
    data : ParticleMeasure or array, shape (n, d)
    y : labels, or None for the labels predicted at the data
    eps : float ≥ 0
    loss : {"mse", "ce"}, optional
    norm : norm specification of the ball
    grid : int ≥ 2
    refine : int ≥ 0
    refine_grid : int ≥ 3, odd (the lattice contains the current best point)

    Returns
    -------
    WorstCase
    """
    mu = as_measure(data, "data")
    eps = real(eps, "eps", low=0.0)
    p = parse_norm(norm, name="norm")
    grid = integer(grid, "grid", low=2)
    refine = integer(refine, "refine", low=0)
    refine_grid = integer(refine_grid, "refine_grid", low=3)
    if refine_grid % 2 == 0:
        raise ValueError(f"refine_grid must be odd (so the lattice keeps the best point), got {refine_grid}")
    X = np.array(mu.points)
    n, d = X.shape
    if d > 3:
        raise ValueError(f"worst_case_loss searches a dense grid: data must have d <= 3, got d = {d}")
    M = float(grid) ** d
    width = max(getattr(model, "layer_sizes", (64,)))
    # the lattice, one batch of lattice points (≥ one data point's M nodes) with its projection
    # and the network's activations on them
    check_memory(8.0 * M * d + 8.0 * max(M, min(GRID_BATCH_ROWS, n * M)) * (4 * d + 2 * width + 2),
                 f"the worst-case grid search ({grid}^{d} = {M:.3g} nodes per point)",
                 "use a smaller grid (refinement levels, refine=..., recover the accuracy)")
    L = attack_potential(model, X, y, loss, name="data")
    labels = np.asarray(L.labels)
    best_v, best_x = _search(L, X, labels, np.full(n, eps), X, p, eps, _lattice(grid, d))
    h = 2.0 * eps / (grid - 1)
    local = _lattice(refine_grid, d)
    for _ in range(refine):
        v, x = _search(L, best_x, labels, np.full(n, h), X, p, eps, local)
        up = v > best_v
        best_v[up], best_x[up] = v[up], x[up]
        h = 2.0 * h / (refine_grid - 1)
    return WorstCase(values=best_v, points=best_x, weights=np.array(mu.weights), eps=eps, grid=grid, refine=refine)


# ------------------------------------------------------------------------------------------------
# gaps of the attacks to the worst case
# ------------------------------------------------------------------------------------------------
@dataclass
class AttackGapReport:
    """Expected attacked loss of several attacks against the true worst case (★).

    Attributes
    ----------
    eps : float
    clean_loss : float
        ∫ ℓ dμ₀.
    worst_case : float
        Σ_i w_i sup_{B_ε(x_i)} ℓ (grid search).
    entries : list of dict
        One per attack: ``method`` ("fgsm", "ifgsm", "minmove"), ``tau``, ``steps``,
        ``expected_loss``, ``accuracy``, ``gap`` (worst_case − expected_loss) and
        ``rel_gap`` (gap / worst_case); or ``skipped`` with a reason.
    """

    eps: float
    norm: str
    clean_loss: float
    clean_accuracy: float
    worst_case: float
    entries: list

    def gap(self, method: str, steps: int | None = None) -> float:
        """The gap of one entry (``steps`` selects among IFGSM/minmove runs)."""
        for e in self.entries:
            if e["method"] == method and (steps is None or e["steps"] == steps) and "gap" in e:
                return e["gap"]
        raise KeyError(f"no entry for method={method!r}, steps={steps!r}")

    def to_dict(self) -> dict:
        return {"eps": self.eps, "norm": self.norm, "clean_loss": self.clean_loss,
                "clean_accuracy": self.clean_accuracy, "worst_case": self.worst_case,
                "entries": [dict(e) for e in self.entries]}

    def to_markdown(self) -> str:
        rows = ["| attack | τ | steps | E ℓ | accuracy | gap to worst case | relative gap |",
                "|---|---|---|---|---|---|---|"]
        for e in self.entries:
            if "skipped" in e:
                rows.append(f"| {e['method']} | {e['tau']:.4g} | {e['steps']} | — | — | skipped: {e['skipped']} | |")
            else:
                rows.append(f"| {e['method']} | {e['tau']:.4g} | {e['steps']} | {e['expected_loss']:.5f} | "
                            f"{e['accuracy']:.3f} | {e['gap']:.5f} | {100 * e['rel_gap']:.2f} % |")
        rows.append(f"| worst case (grid) | | | {self.worst_case:.5f} | | 0 | |")
        return "\n".join(rows)


def attack_gaps(
    model,
    data,
    y=None,
    eps: float = 0.1,
    *,
    ifgsm_steps=(5, 10, 20, 40),
    minmove_steps=(5, 10),
    loss: str | None = None,
    norm="linf",
    grid: int = 65,
    refine: int = 4,
    inner: str = "auto",
    worst: WorstCase | None = None,
) -> AttackGapReport:
    """Gaps of FGSM, IFGSM (α = ε/steps, steps·α = ε) and minimizing movement to (★).

    Parameters
    ----------
    model, data, y, eps, loss, norm : as in :func:`distributional_attack`
    ifgsm_steps, minmove_steps : sequences of int ≥ 1
        Step counts (τ = ε/steps).
    grid, refine : the grid search (:func:`worst_case_loss`)
    inner : inner solver of the minimizing-movement scheme
    worst : WorstCase, optional
        A precomputed grid search to reuse.

    Returns
    -------
    AttackGapReport
    """
    mu = as_measure(data, "data")
    eps = real(eps, "eps", low=0.0, strict=True)
    p = parse_norm(norm, name="norm")
    isteps = [integer(s, "ifgsm_steps", low=1) for s in ifgsm_steps]
    msteps = [integer(s, "minmove_steps", low=1) for s in minmove_steps]
    X, w = np.array(mu.points), np.array(mu.weights)
    L = attack_potential(model, X, y, loss, name="data")
    labels = np.asarray(L.labels)
    if worst is None:
        worst = worst_case_loss(L, mu, labels, eps, norm=norm, grid=grid, refine=refine)
    elif not isinstance(worst, WorstCase) or worst.values.shape != (len(X),):
        raise ValueError("worst must be a WorstCase for the same data")
    wc = worst.mean

    def entry(method, steps, Xa):
        el = float(w @ L.value(Xa))
        acc = float(w @ (np.asarray(L.predict(Xa)) == labels))
        return {"method": method, "tau": eps / steps, "steps": steps, "expected_loss": el, "accuracy": acc,
                "gap": wc - el, "rel_gap": (wc - el) / wc if wc > 0 else 0.0}

    entries = [entry("fgsm", 1, fgsm(L, X, labels, eps, norm=norm).x_adv)]
    for s in isteps:
        entries.append(entry("ifgsm", s, ifgsm(L, X, labels, eps, eps / s, s, norm=norm).x_adv))
    for s in msteps:
        entries.append(entry("minmove", s, minmove_attack(L, X, labels, eps, eps / s, s, norm=norm, inner=inner).x_adv))
    return AttackGapReport(
        eps=eps, norm=norm_name(p), clean_loss=float(w @ L.value(X)),
        clean_accuracy=float(w @ (np.asarray(L.predict(X)) == labels)), worst_case=wc, entries=entries,
    )
