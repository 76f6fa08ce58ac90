"""Adversarial rows: one theorem check and one measurement.

Theorem (``docs/verification.md`` §7): for data μ and a loss ℓ, the distributional worst case
sup{∫ℓ dν : W∞(ν, μ) ≤ ε} = ∫ sup_{‖x̃ − x‖ ≤ ε} ℓ(x̃) dμ(x) is attained by ONE minimizing-movement
step of V = −ℓ with τ = ε (x₁ ∈ argmin_{‖x − x₀‖ ≤ ε} V): :func:`check_minmove_step_is_worst_case`
compares that step (global inner solver) with an independent dense-grid search.

The ∞-flow run to t = ε is a local ascent; its gap to the worst case is a property of the
dynamics, reported by :func:`measure_attack_gap` without pass/fail.
"""

from __future__ import annotations

import numpy as np

from ..adversarial.attacks import attack_potential
from ..adversarial.distributional import worst_case_loss
from ..minmove import minmove_step
from ..norms import dual_norm, parse_norm
from .report import CheckReport

__all__ = ["check_minmove_step_is_worst_case", "measure_attack_gap"]


def measure_attack_gap(attacked: float, worst_case: float, **info) -> CheckReport:
    """(worst − attacked)/worst as a measurement (``passed`` is None)."""
    gap = (worst_case - attacked) / worst_case if worst_case else float("nan")
    return CheckReport("attack_gap", None, float(gap), None, "<=",
                       "measurement of the dynamics (the flow is a local ascent), not a theorem check",
                       details={"attacked_loss": float(attacked), "worst_case": float(worst_case), **info})


def check_minmove_step_is_worst_case(model, X, y=None, eps: float = 0.1, *, norm="linf", loss=None,
                                     grid: int = 65, refine: int = 4, step_tau: float | None = None) -> CheckReport:
    """One minimizing-movement step with τ = ε (global inner solver) equals the pointwise worst case.

    Both sides are searches for sup_{B_ε(x_i)} ℓ: the step by :mod:`wflow.minmove`'s global
    solver (grid + projected-gradient polish), the reference by
    :func:`wflow.adversarial.worst_case_loss` (a dense lattice refined ``refine`` times). The
    lattice's final node spacing h bounds its error at a maximizer x* by h·‖∇ℓ(x*)‖_* + L h²/2
    (first-order Taylor, ℓ∞ distance ≤ h/2 per coordinate, doubled for the search side); the
    tolerance is 2·(h‖∇ℓ‖_* + L̂h²) per point with ∇ℓ and L̂ (secant between the two maximizers)
    measured at the found points, plus 8ε|ℓ| round-off.

    ``step_tau`` (default ε) exists for the mutation test: a step of another size must fail.

    Returns
    -------
    CheckReport
        measured = max_i |ℓ(step_i) − worst_i| − tol_i (≤ 0 passes); details hold both means.
    """

    p = parse_norm(norm, name="norm")
    X = np.asarray(X, dtype=float)
    wc = worst_case_loss(model, X, y, eps, loss=loss, norm=p, grid=grid, refine=refine)
    L = attack_potential(model, X, y, loss, name="X")
    V = -1.0 * L
    x1 = minmove_step(V, X, eps if step_tau is None else step_tau, norm=p, inner="global").x
    step_vals = np.asarray(L.value(x1), dtype=float)
    h = 2.0 * eps / (grid - 1)
    for _ in range(refine):
        h = 2.0 * h / 8.0
    G1 = dual_norm(np.asarray(L.grad(x1)), p)
    G2 = dual_norm(np.asarray(L.grad(wc.points)), p)
    dG = dual_norm(np.asarray(L.grad(x1)) - np.asarray(L.grad(wc.points)), p)
    dx = np.max(np.abs(x1 - wc.points), axis=1)
    Lhat = np.where(dx > 0, dG / np.where(dx > 0, dx, 1.0), 0.0)
    tol = 2.0 * (h * np.maximum(G1, G2) + Lhat * h**2) + 8 * np.finfo(float).eps * np.abs(wc.values)
    diff = np.abs(step_vals - wc.values)
    i = int(np.argmax(diff - tol))
    return CheckReport(
        "minmove_step_is_worst_case", bool(np.all(diff <= tol)), float(diff[i]), float(tol[i]), "<=",
        "2(h‖∇ℓ‖_* + L̂h²) + 8ε|ℓ|, h the grid search's final spacing",
        worst={"point": i, "step_value": float(step_vals[i]), "grid_value": float(wc.values[i])},
        details={"step_mean": float(wc.weights @ step_vals), "grid_mean": float(wc.mean), "eps": float(eps),
                 "n_points": int(len(X)), "final_spacing": h},
    )
