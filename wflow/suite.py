"""The fixed theorem-check suite behind ``wflow verify`` (and the demo's checks).

Each check measures one number on a computed flow and compares it with a stated tolerance;
the result is a :class:`Check` row (name, measured value, tolerance, relation, PASS/FAIL,
details). :func:`run_suite` runs every check on a fixed set of potentials and returns the
rows; ``wflow verify`` prints them and exits non-zero on any FAIL.

The checks, with the theorem each one tests (DESIGN.md §1):

``lipschitz``
    1-Lipschitz in the flow norm: max over stored steps and particles of
    ‖x(t_{k+1}) − x(t_k)‖ / (t_{k+1} − t_k) ≤ 1 (+1e-9 for round-off). For piecewise-linear
    curves the maximum over all pairs s < t equals the maximum over segments.
``energy_dissipation``
    Energy dissipation equality 𝓔(μ_T) + ∫_0^T |∂𝓔|(μ_r) dr = 𝓔(μ_0) for C¹ potentials; the
    measured figure is the defect |𝓔(μ_T) − 𝓔(μ_0) + ∫_0^T |∂𝓔|(μ_r) dr| divided by
    ∫_0^T |∂𝓔| (trapezoidal rule on the stored times). Euler's consistency error is O(τ).
``convergence``
    Uniform convergence of the Euler interpolants as τ → 0 (against a closed form or a
    fine-τ reference): the fitted rate of the sup-in-time error.
``winf_lipschitz``
    W∞(μ_t, μ_s) ≤ |t − s| on all pairs of (subsampled) stored times, with the exact W∞
    (:func:`wflow.winf`) when available, else the certified labelled upper bound
    max_i ‖x_i(t) − x_i(s)‖ ≥ W∞.

Further checks are added by :func:`run_suite` when the modules they need are installed:
FGSM vs minimizing movement (``wflow.minmove``), marginals of the representing measure
(``wflow.superposition``), distributional attack value vs the worst case
(``wflow.adversarial``).

A deliberately wrong flow (``corrupt="speed2"``: the computed curves replayed at double
speed, t ↦ u(2t)) makes the Lipschitz, W∞-Lipschitz and dissipation checks FAIL; it is how the
tests show that the checks can fail.
"""

from __future__ import annotations

import importlib.util
import itertools
import math
import time
from dataclasses import dataclass, field, replace

import numpy as np

from .measures import ParticleMeasure
from .norms import norm as _norm
from .transport import labelled_lipschitz, winf

__all__ = [
    "Check",
    "make_check",
    "check_lipschitz",
    "check_energy_dissipation",
    "check_winf_lipschitz",
    "check_convergence",
    "check_maximal_slope_mass",
    "check_fgsm_vs_minmove",
    "check_attack_vs_worst_case",
    "check_marginals_from_snapshots",
    "corrupt_speed",
    "run_suite",
    "format_table",
    "available",
]

#: round-off allowance of the Lipschitz checks (ratios of float64 distances and times)
LIPSCHITZ_ROUNDOFF = 1e-9


def available(module: str) -> bool:
    """True when ``wflow.<module>`` can be imported (another part of wflow may not exist yet)."""
    try:
        return importlib.util.find_spec(f"wflow.{module}") is not None
    except (ImportError, ValueError):
        return False


@dataclass
class Check:
    """One row of a verification report.

    Attributes
    ----------
    name : str
        Short identifier (``lipschitz[gaussian_mixture]``).
    description : str
        What is measured, in words.
    measured : float
        The measured figure.
    tolerance : float
        The bound it is compared with.
    relation : {"<=", ">="}
        ``measured <= tolerance`` or ``measured >= tolerance`` passes.
    passed : bool
    details : dict
        Further measured numbers (JSON-ready).
    """

    name: str
    description: str
    measured: float
    tolerance: float
    relation: str = "<="
    passed: bool = False
    details: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "description": self.description,
            "measured": _finite_or_none(self.measured),
            "tolerance": _finite_or_none(self.tolerance),
            "relation": self.relation,
            "passed": bool(self.passed),
            "details": _jsonable(self.details),
        }


def _finite_or_none(x):
    x = float(x)
    return x if math.isfinite(x) else None


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return _finite_or_none(obj)
    return obj


def make_check(name, description, measured, tolerance, relation="<=", **details) -> Check:
    """A :class:`Check` with ``passed`` computed from the relation (NaN never passes)."""
    m, t = float(measured), float(tolerance)
    if relation == "<=":
        ok = m <= t
    elif relation == ">=":
        ok = m >= t
    else:
        raise ValueError(f"relation must be '<=' or '>=', got {relation!r}")
    return Check(name, description, m, t, relation, bool(ok and math.isfinite(m)), details)


# --------------------------------------------------------------------------------------------
# checks on one flow
# --------------------------------------------------------------------------------------------
def _arrays(result):
    return np.asarray(result.times, dtype=float), np.asarray(result.positions, dtype=float)


def check_lipschitz(result, *, name: str = "lipschitz") -> Check:
    """Largest speed max_{k,i} ‖x_i(t_{k+1}) − x_i(t_k)‖ / (t_{k+1} − t_k) ≤ 1 (+1e-9)."""
    t, P = _arrays(result)
    if len(t) < 2:
        return make_check(name, "1-Lipschitz in the flow norm (max speed)", 0.0, 1 + LIPSCHITZ_ROUNDOFF)
    steps = _norm(np.diff(P, axis=0), result.norm.p)  # (K, n)
    speed = steps / np.diff(t)[:, None]
    k, i = np.unravel_index(int(np.argmax(speed)), speed.shape)
    return make_check(
        name, f"1-Lipschitz in the {result.norm} norm: max_k,i ‖Δx‖/Δt",
        speed[k, i], 1 + LIPSCHITZ_ROUNDOFF,
        worst_particle=int(i), worst_interval=[float(t[k]), float(t[k + 1])],
    )


def _dissipation_numbers(result):
    t = np.asarray(result.times, dtype=float)
    E = np.asarray(result.energy_curve(), dtype=float)
    S = np.asarray(result.slope_curve(), dtype=float)
    integral = float(np.sum(0.5 * (S[1:] + S[:-1]) * np.diff(t)))
    return E, S, integral


def check_energy_dissipation(result, *, rtol: float | None = None, name: str = "energy_dissipation") -> Check:
    """Relative defect of 𝓔(μ_T) + ∫_0^T |∂𝓔|(μ_r) dr = 𝓔(μ_0) (C¹ potential, no active budget).

    measured = |𝓔(μ_T) − 𝓔(μ_0) + ∫_0^T |∂𝓔|| / ∫_0^T |∂𝓔| (trapezoidal rule on the stored
    times). The Euler scheme's consistency error makes this O(τ/T); the default tolerance is
    ``rtol = 10 τ / T`` (measured values on the suite's smooth potentials are 3–5 τ/T).
    The inequality direction (the defect's sign) is reported too: a curve of maximal slope
    has 𝓔(μ_T) + ∫|∂𝓔| ≤ 𝓔(μ_0) with equality for C¹ potentials.
    """
    E, S, integral = _dissipation_numbers(result)
    if rtol is None:
        rtol = 10.0 * float(result.tau) / max(float(result.T), 1e-300)
    signed = float(E[-1] - E[0] + integral)
    rel = abs(signed) / max(integral, 1e-300)
    return make_check(
        name, "energy dissipation equality: |𝓔(μ_T) − 𝓔(μ_0) + ∫|∂𝓔|| / ∫|∂𝓔|",
        rel, rtol, energy_start=float(E[0]), energy_end=float(E[-1]), slope_integral=integral,
        signed_defect=signed, tau=float(result.tau),
    )


def check_winf_lipschitz(result, *, max_times: int = 12, name: str = "winf_lipschitz",
                         max_exact: int | None = None, progress=None) -> Check:
    """max over pairs of stored times of W∞(μ_t, μ_s) / |t − s| ≤ 1 (+1e-9).

    ``max_times`` evenly spaced stored times are compared pairwise. The labelled bound
    L = max_k max_i ‖x_i(t_{k+1}) − x_i(t_k)‖ / (t_{k+1} − t_k) (one pass,
    :func:`wflow.transport.labelled_lipschitz`) certifies W∞(μ_s, μ_t) ≤ L |t − s| on all pairs.
    Exact W∞ (:func:`wflow.winf`) is solved on at most ``max_exact`` pairs (None: all; the
    consecutive pairs first), reporting the exact worst ratio. The check passes when L ≤ 1 + 1e-9
    (certified; the reported value is then L unless every pair was solved exactly) or when every
    pair was solved exactly and passes; otherwise the reported value is max(L, exact worst). ``progress(i, total)`` is called after every exact solve.
    """
    t, P = _arrays(result)
    ks = np.unique(np.linspace(0, len(t) - 1, min(max_times, len(t))).round().astype(int))
    keep = np.asarray(result.weights) > 0
    lab, _ = labelled_lipschitz(P[ks][:, keep], t[ks], result.norm.p) if len(ks) > 1 else (0.0, 0)
    pairs = [(a, b) for a, b in itertools.combinations(ks, 2) if t[b] > t[a]]
    pairs.sort(key=lambda ab: (ab[1] - ab[0], ab[0]))  # consecutive sampled times first
    todo = pairs if max_exact is None else pairs[:max(0, int(max_exact))]
    worst, pair = 0.0, None
    for i, (a, b) in enumerate(todo):
        d = winf(ParticleMeasure(P[a], result.weights), ParticleMeasure(P[b], result.weights), norm=result.norm.p)
        ratio = d / (t[b] - t[a])
        if ratio > worst:
            worst, pair = ratio, [float(t[a]), float(t[b])]
        if progress is not None:
            progress(i + 1, len(todo))
    tol = 1 + LIPSCHITZ_ROUNDOFF
    certified = lab <= tol
    complete = len(todo) == len(pairs)
    # all pairs solved: the exact worst; else the certified labelled bound (or, uncertified,
    # the larger of the two: a FAIL, the inequality was not proven)
    value = worst if complete else (lab if certified else max(lab, worst))
    return make_check(
        name, "W∞(μ_t, μ_s) ≤ |t − s| on all pairs of sampled times: max ratio",
        value, tol, worst_pair=pair, pairs=len(pairs), exact_pairs=len(todo), labelled_ratio=float(lab),
        method=("labelled bound (certifies all pairs) + exact winf on " if certified else "exact winf on ")
        + f"{len(todo)} of {len(pairs)} pairs",
    )


def check_maximal_slope_mass(result, *, factor: float = 2.0, min_mass: float = 0.99,
                             name: str = "maximal_slope_mass") -> Check:
    """η-mass of the particle curves that are curves of maximal slope within tolerance.

    For every particle i, F_i(t) = V_i(x_i(t)) + ∫_0^t ‖∇V_i(x_i(r))‖_* dr (trapezoid on the stored
    times) must not increase: its worst increase max_{s ≤ t} F_i(t) − F_i(s) is the curve's
    dissipation defect. A curve counts when it is 1-Lipschitz (+1e-9) and its defect is at most

        factor · τ · TV_i,    TV_i = Σ_k ‖∇V(x_i(t_{k+1})) − ∇V(x_i(t_k))‖_*

    (+1e-12). Why: on a step of length ≤ τ, V(x_{k+1}) − V(x_k) + τ(S_k + S_{k+1})/2 differs from
    the exact dissipation only through the change of ∇V along the step, so a scheme step adds
    at most ≈ τ ‖Δ∇V_k‖_* (chattering near minima and sign-change surfaces included), while a
    curve that does not follow the steepest direction loses ≈ τ S_k per step. Measured: defect /
    tolerance ≤ 0.25 on Euler flows of the suite (factor 2), 50–115 on the same flows run
    uphill. Works with per-particle potentials (labels per data point), evaluated time by time.
    """
    t, P = _arrays(result)
    tau = float(result.tau)
    E = np.asarray(result.energies, dtype=float)  # (K+1, n)
    S = np.asarray(result.slopes, dtype=float)
    cum = np.zeros_like(S)
    if len(t) > 1:
        cum[1:] = np.cumsum(0.5 * (S[1:] + S[:-1]) * np.diff(t)[:, None], axis=0)
    F = E + cum
    defect = np.max(F - np.minimum.accumulate(F, axis=0), axis=0)  # (n,)
    if len(t) > 1:
        from .norms import dual_norm

        lip = np.max(_norm(np.diff(P, axis=0), result.norm.p) / np.diff(t)[:, None], axis=0)
        G = np.stack([np.asarray(result.potential.grad(X)) for X in P])
        tv = dual_norm(np.diff(G, axis=0), result.norm.p).sum(axis=0)
    else:
        lip, tv = np.zeros(P.shape[1]), np.zeros(P.shape[1])
    tol_i = factor * tau * tv + 1e-12
    ok = (defect <= tol_i) & (lip <= 1 + LIPSCHITZ_ROUNDOFF)
    mass = float(np.asarray(result.weights) @ ok)
    return make_check(
        name, "η-mass of curves of maximal slope (1-Lipschitz, dissipation defect ≤ 2τ·TV(∇V) along the curve)",
        mass, min_mass, ">=", factor=factor, n_curves=int(ok.size), n_failing=int((~ok).sum()),
        max_defect=float(defect.max()), max_defect_over_tolerance=float(np.max(defect / tol_i)),
        max_lipschitz=float(lip.max()),
    )


def sup_error(res_a, res_b, p: float, n_eval: int = 401) -> float:
    """max over t in a grid of [0, T] and particles of ‖u_a(t) − u_b(t)‖ (interpolants)."""
    T = min(res_a.T, res_b.T)
    ts = np.unique(np.r_[np.linspace(0.0, T, n_eval), res_a.times[res_a.times <= T]])
    return float(np.max(_norm(res_a.at(ts) - res_b.at(ts), p)))


def check_convergence(potential, x0, T, taus, *, exact=None, reference_tau=None, norm="linf",
                      min_rate=0.8, name="convergence") -> Check:
    """Fitted rate of the sup-in-time error of Euler as τ → 0 (≥ ``min_rate``).

    The error is measured against ``exact(t) -> (n, d)`` (a closed form) or against an
    Euler run at ``reference_tau``. The details hold every τ and error.
    """
    from .flow import solve_flow
    from .norms import parse_norm
    from .studies import fit_rate

    p = parse_norm(norm)
    errs = []
    ref = None
    if exact is None:
        ref = solve_flow(potential, x0, T, reference_tau, norm=norm)
    for tau in taus:
        res = solve_flow(potential, x0, T, tau, norm=norm)
        if exact is not None:
            ts = np.linspace(0.0, T, 401)
            errs.append(float(np.max(_norm(res.at(ts) - exact(ts), p))))
        else:
            errs.append(sup_error(res, ref, p))
    rate, const = fit_rate(taus, errs)
    ratio = max(e / t for e, t in zip(errs, taus))
    return make_check(
        name, "uniform convergence as τ → 0: fitted rate of sup_t ‖u_τ(t) − u(t)‖",
        rate, min_rate, ">=", taus=list(map(float, taus)), errors=errs, constant=const,
        max_error_over_tau=ratio, reference="closed form" if exact is not None else f"Euler, τ = {reference_tau:g}",
    )


def check_fgsm_vs_minmove(potential, x0, T, taus, *, budget=None, min_rate=0.5,
                          name="fgsm_vs_minmove") -> Check:
    """Euler (IFGSM) and minimizing movement approach each other as τ → 0.

    measured = fitted rate of max over starts of sup_t ‖u_Euler(t) − u_MM(t)‖∞ over ``taus``;
    both schemes converge to ∞-curves of maximal slope, so the distance must vanish (rate > 0;
    ≈ 1 is observed on smooth potentials). Details hold every τ and distance.
    """
    from .studies import fit_rate

    if available("studies"):  # the study module's pairwise sup-in-time distance
        from .studies import convergence_study

        study = convergence_study(potential, x0, T, taus, schemes={"euler": {"scheme": "euler"},
                                                                   "minmove": {"scheme": "minmove"}},
                                  reference="pairwise", budget=budget)
        dists = [float(v) for v in study.columns["euler vs minmove"]]
        source = "wflow.studies.convergence_study(reference='pairwise')"
    else:
        from .flow import solve_flow

        dists = []
        for tau in taus:
            e = solve_flow(potential, x0, T, tau, scheme="euler", budget=budget)
            m = solve_flow(potential, x0, T, tau, scheme="minmove", budget=budget)
            ts = np.unique(np.r_[np.linspace(0.0, T, 1001), e.times, m.times])
            dists.append(float(_norm(e.at(ts) - m.at(ts), np.inf).max()))
        source = "wflow.suite"
    rate, const = fit_rate(taus, dists)
    return make_check(
        name, "IFGSM vs minimizing movement: fitted rate of max_starts sup_t ‖u_Euler − u_MM‖∞ as τ → 0",
        rate, min_rate, ">=", taus=list(map(float, taus)), max_distance=dists,
        constant=const, budget=budget, computed_by=source,
    )


def check_attack_vs_worst_case(model, X, y, eps, *, tau=None, grid=33, refine=3, max_rel_gap=0.02,
                               name="attack_vs_worst_case") -> list[Check]:
    """The distributional attack (the data measure's ∞-flow to t = ε) against the true worst case.

    Two rows: the relative gap (worst − attacked)/worst ≤ ``max_rel_gap`` (the flow is a
    near-optimal attack), and (attacked − worst)/worst ≤ 1e-3 (the flow stays in the W∞ ball,
    so it cannot beat the supremum; 1e-3 absorbs the grid search's resolution).
    """
    from .adversarial import distributional_attack, worst_case_loss

    att = distributional_attack(model, X, y, eps=eps, tau=tau, n_winf=0)
    wc = worst_case_loss(model, X, y, eps, grid=grid, refine=refine).mean
    a = float(att.expected_loss[-1])
    info = {"attacked_loss": a, "worst_case": wc, "clean_loss": float(att.expected_loss[0]), "eps": eps,
            "tau": float(att.tau), "n_points": int(len(X)), "grid": grid, "refine": refine,
            "attacked_accuracy": float(att.accuracy[-1])}
    return [
        make_check(f"{name}:gap", "distributional attack value vs worst case: (worst − attacked)/worst",
                   (wc - a) / wc, max_rel_gap, **info),
        make_check(f"{name}:inside_ball", "attack cannot beat the worst case: (attacked − worst)/worst",
                   (a - wc) / wc, 1e-3, **info),
    ]


def check_marginals_from_snapshots(result, *, n_snapshots=11, seed=0, name="marginals") -> Check:
    """η from shuffled snapshots of a flow (:func:`wflow.superpose_snapshots`): its marginals.

    measured = max_k W∞((e_{t_k})_#η, μ_{t_k}) with the exact W∞ (tolerance: that of
    :func:`wflow.verify.check_marginals`, 1e-12 × the coordinates' scale).
    """
    from .superposition import superpose_snapshots
    from .verify import check_marginals

    t, P = _arrays(result)
    ks = np.unique(np.linspace(0, len(t) - 1, n_snapshots).round().astype(int))
    rng = np.random.default_rng(seed)
    snaps = []
    for k in ks:
        perm = rng.permutation(P.shape[1])
        snaps.append(ParticleMeasure(P[k][perm], np.asarray(result.weights)[perm]))
    eta = superpose_snapshots(snaps, t[ks], norm=result.norm.p)
    rep = check_marginals(eta, snaps, t[ks])
    return make_check(name, "representing measure from shuffled snapshots: max_k W∞((e_t)_#η, μ_t)",
                      rep.max_winf, rep.tolerance, n_curves=int(eta.n_curves), n_snapshots=len(snaps),
                      mass_error=rep.mass_error)


# --------------------------------------------------------------------------------------------
# deliberately wrong flows
# --------------------------------------------------------------------------------------------
def corrupt_speed(result, factor: float = 2.0):
    """The same curves replayed ``factor`` times faster: t ↦ u(factor·t) on [0, T/factor].

    For factor > 1 this is not an ∞-curve of maximal slope (it moves at speed up to
    ``factor``), so the Lipschitz checks must FAIL on it.
    """
    return replace(result, times=np.asarray(result.times) / factor, tau=result.tau / factor, _cache={})


# --------------------------------------------------------------------------------------------
# the suite
# --------------------------------------------------------------------------------------------
def _cases(quick: bool):
    from .potentials import DoubleWell, GaussianMixture, Quadratic

    rng = np.random.default_rng(20240605)
    n = 60 if quick else 200
    gm_x0 = rng.uniform(-1.2, 1.2, size=(n, 2))
    dw_x0 = rng.uniform(-1.5, 1.5, size=(n, 2))
    a = np.array([1.0, 3.0])
    q_x0 = rng.uniform(-1.0, 1.0, size=(n, 2))
    return [
        ("quadratic", Quadratic.separable_from(a), q_x0, 1.5,
         lambda ts: np.sign(q_x0)[None] * np.maximum(np.abs(q_x0)[None] - np.asarray(ts)[:, None, None], 0.0)),
        ("gaussian_mixture", GaussianMixture.default(), gm_x0, 1.0, None),
        ("double_well", DoubleWell(2), dw_x0, 1.0, None),
    ]


def run_suite(*, quick: bool = False, corrupt: str | None = None, progress: bool = False) -> list[Check]:
    """Run the fixed verification suite; returns the rows (see the module docstring).

    Parameters
    ----------
    quick : bool
        Fewer particles and step sizes (for tests and ``--quick``).
    corrupt : {None, "speed2"}
        Feed the flow checks a deliberately wrong flow (the curves at double speed); the
        suite must then FAIL.
    progress : bool
        tqdm progress bar over the checks.
    """
    from tqdm.auto import tqdm

    from .flow import solve_flow

    if corrupt not in (None, "speed2"):
        raise ValueError(f"corrupt must be None or 'speed2', got {corrupt!r}")
    rows: list[Check] = []
    tau = 2e-3 if quick else 1e-3
    cases = _cases(quick)
    exact_winf = available("transport") and available("superposition") and available("verify")
    has_mm = available("minmove")
    has_adv = available("adversarial.distributional")
    bar = tqdm(total=2 * len(cases) + has_mm + has_adv, desc="verify", disable=not progress, leave=False)
    for label, V, x0, T, exact in cases:
        t0 = time.perf_counter()
        res = solve_flow(V, x0, T, tau, norm="linf")
        if corrupt == "speed2":
            res = corrupt_speed(res, 2.0)
        rows.append(check_lipschitz(res, name=f"lipschitz[{label}]"))
        rows.append(check_energy_dissipation(res, name=f"energy_dissipation[{label}]"))
        rows.append(check_winf_lipschitz(res, max_times=8 if quick else 12, name=f"winf_lipschitz[{label}]"))
        rows.append(check_maximal_slope_mass(res, min_mass=1 - 1e-9, name=f"maximal_slope_mass[{label}]"))
        if exact_winf:
            rows.append(check_marginals_from_snapshots(res, name=f"marginals[{label}]"))
        rows[-1].details["seconds"] = time.perf_counter() - t0
        bar.update(1)
        taus = [T * 2.0**-i for i in range(4, 8 if quick else 10)]
        if exact is not None:
            rows.append(check_convergence(V, x0, T, taus, exact=exact, name=f"convergence[{label}]", min_rate=0.9))
            rows[-1].details["max_error_over_tau_bound"] = 1.0
            if rows[-1].details["max_error_over_tau"] > 1.0 + 1e-12:
                rows[-1].passed = False
        else:
            rows.append(check_convergence(V, x0[:20], T, taus, reference_tau=taus[-1] / 16,
                                          name=f"convergence[{label}]", min_rate=0.5))
        bar.update(1)
    if has_mm or has_adv:
        from .adversarial import load_model, load_two_moons, make_loss

        model = load_model("two_moons_gelu")
    if has_mm:
        # the paper's comparison: ε = 0.2, T = 1, τ = ε·2^{-i}, random starts in [−1, 1]²
        X = np.random.default_rng(7).uniform(-1.0, 1.0, size=(20 if quick else 40, 2))
        V = -make_loss(model, None, "mse", x=X)
        taus = [0.2 * 2.0**-i for i in range(2, 5 if quick else 6)]
        rows.append(check_fgsm_vs_minmove(V, X, 1.0, taus, budget=0.2, name="fgsm_vs_minmove[two_moons_gelu]"))
        bar.update(1)
    if has_adv:
        data = load_two_moons()
        n = 150 if quick else 300
        rows += check_attack_vs_worst_case(model, data["X_test"][:n], data["y_test"][:n], 0.1, tau=0.1 / 50,
                                           grid=25 if quick else 33, name="attack_vs_worst_case[two_moons_gelu]")
        bar.update(1)
    bar.close()
    return rows


def format_table(rows: list[Check]) -> str:
    """A markdown table: check | measured | relation | tolerance | result."""
    lines = ["| check | measured | | tolerance | result |", "|---|---:|:-:|---:|:-:|"]
    for r in rows:
        lines.append(
            f"| {r.name} | {r.measured:.6g} | {r.relation} | {r.tolerance:.6g} | {'PASS' if r.passed else 'FAIL'} |"
        )
    return "\n".join(lines)
