"""Checks of limit statements by refinement: τ-ladders and held-out snapshots.

- :func:`check_convergence` — sup-in-time error of a scheme against an independent reference
  (a closed form; else minimizing movement with the global inner solver, d ≤ 3; else the other
  scheme at a much smaller τ) on a τ-ladder; passes when the fitted order is ≥ ``min_order``.
- :func:`check_dissipation_refinement` — the worst energy-dissipation defect of the scheme's
  curve of measures on a τ-ladder must vanish at a fitted order ≥ ``min_order``.
- :func:`check_held_out` — η glued from every other snapshot against the held-out snapshots
  (exact W∞) as the snapshot spacing halves; reports the fitted order.

Why order 0.8: Euler and minimizing movement are first-order (error ≤ C τ); 0.8 leaves room for
the pre-asymptotic bend of a fit over a short ladder (``docs/verification.md`` §5).
"""

from __future__ import annotations

import numpy as np

from ..flow import solve_flow
from ..norms import norm_name, parse_norm
from ..studies import closed_form_flow, fitted_rate, sup_error
from ..superposition import CurveMeasure, superpose_snapshots
from ..transport import winf
from .checks import EPS, _snapshots, as_curve_measure, check_energy_dissipation
from .report import CheckReport

__all__ = ["check_convergence", "check_dissipation_refinement", "check_held_out", "MIN_ORDER"]

#: smallest accepted fitted order of a first-order limit (see the module docstring)
MIN_ORDER = 0.8


def _as_curve(x):
    """A callable t (k,) → (k, n, d) from a FlowResult, a CurveMeasure or a callable."""
    if isinstance(x, CurveMeasure):
        return x.at
    if hasattr(x, "positions") and hasattr(x, "at"):
        return x
    if callable(x):
        return x
    raise TypeError(f"expected a FlowResult, a CurveMeasure or a callable t -> (k, n, d), got {type(x).__name__}")


def _orders(taus, values, floor):
    """(fitted order over the ladder, local order of the two finest τ) — None where undefined."""
    order = fitted_rate(taus, values, floor=floor)
    i = np.argsort(taus)[:2]
    local = fitted_rate(taus[i], values[i], floor=floor)
    return order, local


def _verdict(order, local, exact, min_order):
    if exact:
        return True, float("nan")
    if order is None or local is None:
        return False, float("nan")
    m = min(order, local)
    return bool(m >= min_order), float(m)


def _reference(potential, x0, T, taus, p, scheme, reference):
    """(callable or FlowResult, description) of the independent reference."""
    if callable(reference) and not isinstance(reference, str):
        return reference, "given"
    if reference not in ("auto", "closed_form", "minmove_global", "other_scheme"):
        raise ValueError("reference must be 'auto', 'closed_form', 'minmove_global', 'other_scheme' or a callable")
    d = np.shape(x0)[-1]
    if reference in ("auto", "closed_form"):
        try:
            return closed_form_flow(potential, x0, p), "closed form"
        except ValueError:
            if reference == "closed_form":
                raise
    tau_ref = float(min(taus)) / 16.0
    if reference in ("auto", "minmove_global") and d <= 3 and scheme != "minmove":
        ref = solve_flow(potential, x0, T, tau_ref, norm=p, scheme="minmove", inner="global")
        return ref, f"minimizing movement, global inner solver, τ = {tau_ref:g}"
    other = "euler" if scheme == "minmove" else "minmove"
    ref = solve_flow(potential, x0, T, tau_ref, norm=p, scheme=other)
    return ref, f"{other}, τ = {tau_ref:g}"


def check_convergence(potential, x0, T, taus, *, norm="linf", scheme="euler", reference="auto", flows=None,
                      min_order: float = MIN_ORDER) -> CheckReport:
    """Uniform convergence of a scheme to an independent reference as τ → 0.

    Parameters
    ----------
    potential, x0, T : the problem
    taus : sequence of float
        The ladder (at least two).
    norm, scheme : of the scheme under test
    reference : {"auto", "closed_form", "minmove_global", "other_scheme"} or callable
        ``"auto"``: a closed form (:func:`wflow.studies.closed_form_flow`) when known, else
        minimizing movement with the global inner solver at τ_min/16 (d ≤ 3, testing Euler),
        else the other scheme at τ_min/16 (a reference error r·τ with r = 1/16 keeps the
        observable order of an exact first-order scheme ≥ log2((2 − r)/(1 + r)) = 0.87). A callable maps times (k,) to positions (k, n, d).
    flows : callable τ → FlowResult or CurveMeasure, optional
        The curves under test (default: ``solve_flow(potential, x0, T, τ, norm, scheme)``).
    min_order : float

    Returns
    -------
    CheckReport
        measured = fitted order of sup_t max_i ‖u_τ(t) − u(t)‖ against τ; details hold the errors.
    """
    taus = np.asarray(taus, dtype=float)
    if taus.ndim != 1 or taus.size < 2 or np.any(taus <= 0):
        raise ValueError("taus must hold at least two step sizes > 0")
    p = parse_norm(norm, name="norm")
    ref, what = _reference(potential, x0, T, taus, p, scheme, reference)
    errors = []
    for tau in taus:
        f = flows(float(tau)) if flows is not None else solve_flow(potential, x0, T, float(tau), norm=p,
                                                                   scheme=scheme)
        errors.append(sup_error(_as_curve(f), ref, T, p))
    errors = np.array(errors)
    floor = 1e-13
    order, local = _orders(taus, errors, floor)
    exact = bool(np.all(errors <= floor))
    passed, measured = _verdict(order, local, exact, min_order)
    return CheckReport(
        "convergence", passed, measured, min_order, ">=",
        f"min(fitted order, order of the two finest τ) of sup_t ‖u_τ − u_ref‖ ≥ {min_order:g}",
        worst={"tau": float(taus[int(np.argmax(errors / taus))]), "error": float(errors.max())},
        details={"taus": taus, "errors": errors, "reference": what, "scheme": scheme, "norm": norm_name(p),
                 "exact": exact, "fitted_order": order, "local_order": local},
    )


def check_dissipation_refinement(potential, x0, T, taus, *, norm="linf", scheme="euler", flows=None,
                                 min_order: float = MIN_ORDER) -> CheckReport:
    """The worst measure-level dissipation defect must vanish as τ → 0 at order ≥ ``min_order``.

    For every τ the defect is max over grid pairs s ≤ t of
    𝓔(μ_t) − 𝓔(μ_s) + ∫_s^t |∂𝓔|(μ_r) dr (trapezoid), on the scheme's curves (``flows`` as in
    :func:`check_convergence`). A curve of maximal slope has defect 0; Euler and minimizing
    movement have O(τ). Defects all below 1e-13 count as exact.
    """
    taus = np.asarray(taus, dtype=float)
    if taus.ndim != 1 or taus.size < 2 or np.any(taus <= 0):
        raise ValueError("taus must hold at least two step sizes > 0")
    p = parse_norm(norm, name="norm")
    defects = []
    for tau in taus:
        f = flows(float(tau)) if flows is not None else solve_flow(potential, x0, T, float(tau), norm=p,
                                                                   scheme=scheme)
        rep = check_energy_dissipation(as_curve_measure(f), potential, p)
        defects.append(max(rep.details["worst_pair_defect"], 0.0))
    defects = np.array(defects)
    order, local = _orders(taus, defects, 1e-13)
    exact = bool(np.all(defects <= 1e-13))
    passed, measured = _verdict(order, local, exact, min_order)
    return CheckReport(
        "dissipation_refinement", passed, measured, min_order, ">=",
        f"min(fitted order, order of the two finest τ) of the worst-pair dissipation defect ≥ {min_order:g}",
        worst={"tau": float(taus[int(np.argmax(defects))]), "defect": float(defects.max())},
        details={"taus": taus, "defects": defects, "scheme": scheme, "norm": norm_name(p), "exact": exact,
                 "fitted_order": order, "local_order": local},
    )


def check_held_out(measures, times=None, norm="linf", *, min_order: float = MIN_ORDER,
                   keep_eta: bool = True) -> CheckReport:
    """Superposition on held-out data: η glued from every other snapshot, W∞ at the others.

    With K + 1 snapshots (K divisible by 2^L), level ℓ glues η from the snapshots of spacing
    Δ_ℓ = 2^{L−ℓ}Δ and measures max over the held-out midpoints of W∞((e_t)_#η, μ_t) (exact
    W∞); a curve of measures represented by 1-Lipschitz curves that are C¹ away from finitely
    many kinks gives errors O(Δ_ℓ). Passes when the fitted order over the levels is ≥
    ``min_order`` (or all errors are round-off, ≤ (d + 2) ε max‖x‖).

    Parameters
    ----------
    measures : sequence of measures (with ``times``) or a FlowResult
    times : array (K+1,)
    norm : norm specification
    keep_eta : bool
        Put the finest η in ``details["_eta"]`` (not JSON; pop it before serializing).
    """
    snaps, t = _snapshots(measures, times)
    p = parse_norm(norm, name="norm")
    K = len(snaps) - 1
    L = 0
    while K % (2 ** (L + 1)) == 0 and K // 2 ** (L + 1) >= 2:
        L += 1
    if L < 1:
        raise ValueError(f"need K + 1 snapshots with K = 2·k, k ≥ 2 (got K = {K})")
    spacing, errors, finest = [], [], None
    for level in range(L):
        s = 2 ** (L - level)
        coarse = list(range(0, K + 1, s))
        held = list(range(s // 2, K + 1, s))
        eta = superpose_snapshots([snaps[i] for i in coarse], t[coarse], norm=p)
        e = max(winf(eta.marginal(t[i], merge=True), snaps[i].support(), p) for i in held)
        spacing.append(float(np.max(np.diff(t[coarse]))))
        errors.append(float(e))
        finest = eta
    spacing, errors = np.array(spacing), np.array(errors)
    scale = max(float(np.abs(mu.points).max()) for mu in snaps)
    floor = (snaps[0].dim + 2) * EPS * scale
    order = fitted_rate(spacing, errors, floor=floor) if L >= 2 else None
    exact = bool(np.all(errors <= floor))
    passed = exact or (order is not None and order >= min_order)
    details = {"spacings": spacing, "errors": errors, "norm": norm_name(p), "exact": exact, "levels": L}
    if keep_eta:
        details["_eta"] = finest
    return CheckReport(
        "held_out", passed, float("nan") if order is None else order, min_order, ">=",
        f"fitted order of max_held-out W∞((e_t)_#η, μ_t) ≥ {min_order:g} as the spacing halves",
        worst={"spacing": float(spacing[0]), "winf": float(errors[0])}, details=details,
    )
