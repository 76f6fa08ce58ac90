"""Convergence studies: how time-stepping schemes approach ∞-curves of maximal slope as τ → 0.

- :func:`convergence_study` — sup-in-time errors sup_{t∈[0,T]} max_i ‖u_τ,i(t) − u_i(t)‖ between
  piecewise-linear interpolants and a reference (closed form, a fine-τ run, or another scheme),
  with the fitted rate (least-squares slope of log error against log τ).
- :func:`fgsm_minmove_study` — the paper's experiment: IFGSM (explicit Euler, ℓ∞) against the
  minimizing-movement scheme with τ = τ_max·2^{-i} on [0, T], T = 1, τ_max = 0.2.
- :func:`selection_study` — V(x) = x₁ on (R², ℓ∞): ∂₂V = 0, so the steepest direction is
  set-valued and the limit depends on the selection (documented example, not a bug).
- :func:`closed_form_flow` — the exact ∞-curves the studies compare with.

All studies return a :class:`StudyResult` (a small table, JSON-ready through ``to_dict()``).
Mathematics: ``docs/theory.md`` §2–5.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from ._validation import as_points, integer, real, rng_from
from .flow import FlowResult, solve_flow, time_grid
from .norms import Norm, as_norm, steepest
from .potentials import Linear, Potential, quadratic_coefficients

__all__ = [
    "StudyResult",
    "convergence_study",
    "fgsm_minmove_study",
    "selection_study",
    "closed_form_flow",
    "sup_error",
    "fitted_rate",
    "fit_rate",
]


@dataclass
class StudyResult:
    """A table indexed by the step size τ.

    Attributes
    ----------
    name : str
    taus : ndarray, shape (m,)
    columns : dict of str → ndarray (m,)
        Measured quantities per τ (e.g. the sup-in-time error of each scheme).
    rates : dict of str → float or None
        Fitted slope of log(column) against log(τ) (None when fewer than two entries are
        above the round-off floor).
    meta : dict
        Settings of the study (JSON-ready).
    """

    name: str
    taus: np.ndarray
    columns: dict
    rates: dict = field(default_factory=dict)
    meta: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        """JSON-serialisable representation (lists of floats; None for missing rates and NaN)."""
        return {
            "name": self.name,
            "taus": [float(t) for t in self.taus],
            "columns": {k: [float(x) if np.isfinite(x) else None for x in v] for k, v in self.columns.items()},
            "rates": {k: (None if r is None else float(r)) for k, r in self.rates.items()},
            "meta": json.loads(json.dumps(self.meta, default=_jsonable)),
        }

    def table(self) -> str:
        """The study as a markdown table (one row per τ, the fitted rates in the last row)."""
        keys = list(self.columns)
        lines = ["| τ | " + " | ".join(keys) + " |", "|---" * (len(keys) + 1) + "|"]
        for i, t in enumerate(self.taus):
            lines.append(f"| {t:.4g} | " + " | ".join(f"{self.columns[k][i]:.3e}" for k in keys) + " |")
        if self.rates:
            cells = [("—" if self.rates.get(k) is None else f"{self.rates[k]:.3f}") for k in keys]
            lines.append("| rate | " + " | ".join(cells) + " |")
        return "\n".join(lines)

    def __str__(self):
        return f"{self.name}\n{self.table()}"


def _jsonable(x):
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, (np.floating, np.integer)):
        return x.item()
    return repr(x)


# ------------------------------------------------------------------------------------------
# closed forms
# ------------------------------------------------------------------------------------------
def closed_form_flow(potential: Potential, x0: ArrayLike, norm: str | float | Norm = "linf",
                     budget: float | None = None,
                     center: ArrayLike | None = None) -> Callable[[np.ndarray], np.ndarray]:
    """The exact ∞-curve of maximal slope for the potentials where it is known.

    ℓ∞ (canonical selection sign(0) = 0 where a coordinate is flat):
      separable V = ½ Σ a_i x_i² + bᵀx (a_i ≥ 0, includes linear V): every coordinate runs at
      unit speed to its minimizer m_i = −b_i/a_i (clipped into the budget box [c − ε, c + ε]);
      u_i(t) = x0_i + sign(m_i − x0_i) min(t, |m_i − x0_i|) (a_i = 0: m_i = −∞·sign(b_i)).
    ℓ2 (no budget): V = ⟨a, x⟩: u(t) = x0 − t a/‖a‖₂;
      V = ½ α‖x‖₂² + bᵀx (α > 0): u(t) = m + (x0 − m) max(1 − t/‖x0 − m‖₂, 0), m = −b/α.

    Returns
    -------
    callable
        ``u(t)`` for t of shape (k,) → positions (k, n, d).

    Raises
    ------
    ValueError
        When no closed form is implemented for this potential, norm and budget.
    """
    X0 = as_points(x0, "x0")
    nrm = as_norm(norm)
    p = nrm.p
    q = quadratic_coefficients(potential)
    if q is None:
        raise ValueError(f"no closed form is known for {potential!r}; use reference='fine' or a callable")
    A, b = q
    d = X0.shape[1]
    b = np.broadcast_to(np.asarray(b, dtype=float), (d,))
    A = np.zeros((d, d)) if A is None else np.asarray(A)
    diag = np.diag(A)
    if p == np.inf and np.all(A == np.diag(diag)) and np.all(diag >= 0):
        with np.errstate(divide="ignore", invalid="ignore"):
            m = np.where(diag > 0, -b / np.where(diag > 0, diag, 1.0), -np.sign(b) * np.inf)
        m = np.where((diag == 0) & (b == 0), np.nan, m)
        M = np.where(np.isnan(m), X0, m)  # flat coordinates stay (canonical selection)
        if budget is not None:
            eps = real(budget, "budget", low=0.0)
            c = X0 if center is None else np.broadcast_to(np.asarray(center, dtype=float), X0.shape)
            M = np.clip(M, c - eps, c + eps)
        dist = np.abs(M - X0)
        s = np.sign(M - X0)

        def u(t):
            t = np.atleast_1d(np.asarray(t, dtype=float))[:, None, None]
            return X0[None] + s[None] * np.minimum(t, dist[None])

        return u
    if p == 2.0 and budget is None:
        if not np.any(A):
            a = b / np.linalg.norm(b) if np.any(b) else np.zeros(d)
            return lambda t: X0[None] - np.atleast_1d(np.asarray(t, float))[:, None, None] * a
        alpha = diag[0]
        if alpha > 0 and np.all(A == alpha * np.eye(d)):
            m = -b / alpha
            r = nrm.norm(X0 - m)

            def u(t):
                t = np.atleast_1d(np.asarray(t, dtype=float))[:, None]
                f = np.maximum(1 - t / np.where(r > 0, r, 1.0)[None], 0.0)
                return m + (X0 - m)[None] * f[:, :, None]

            return u
    raise ValueError(f"no closed form is known for {potential!r} in {nrm}"
                     + (" with a budget" if budget is not None else ""))


# ------------------------------------------------------------------------------------------
# errors and rates
# ------------------------------------------------------------------------------------------
def _eval_times(T: float, grids: Sequence[np.ndarray], n_eval: int) -> np.ndarray:
    return np.unique(np.concatenate([np.linspace(0.0, T, n_eval), *grids]).clip(0.0, T))


def sup_error(a: FlowResult | Callable[[np.ndarray], np.ndarray],
              b: FlowResult | Callable[[np.ndarray], np.ndarray], T: float,
              norm: str | float | Norm = "linf", *, n_eval: int = 1001, chunk: int = 512) -> float:
    """sup_{t ∈ [0,T]} max_i ‖a_i(t) − b_i(t)‖ in the given norm.

    ``a``, ``b``: FlowResults (their piecewise-linear interpolants) or callables t (k,) →
    (k, n, d). The sup is taken over the union of both time grids and ``n_eval`` uniform times:
    for two piecewise-linear curves it is attained at a breakpoint, so then it is exact;
    against a curve with kinks elsewhere (a closed form), the uniform grid resolves it to
    O(T / n_eval) times the speed difference (≤ 2).
    """
    T = real(T, "T", low=0.0)
    n_eval = integer(n_eval, "n_eval", low=2)
    nrm = as_norm(norm)
    grids = [x.times for x in (a, b) if isinstance(x, FlowResult)]
    ts = _eval_times(T, grids, n_eval)
    fa = a.at if isinstance(a, FlowResult) else a
    fb = b.at if isinstance(b, FlowResult) else b
    worst = 0.0
    for s in range(0, ts.size, chunk):
        t = ts[s : s + chunk]
        diff = np.asarray(fa(t)) - np.asarray(fb(t))
        worst = max(worst, float(np.max(nrm.norm(diff))))
    return worst


def fitted_rate(taus: ArrayLike, errors: ArrayLike, floor: float = 1e-13) -> float | None:
    """Least-squares slope of log(error) against log(τ) over the errors above ``floor``."""
    taus, errors = np.asarray(taus, float), np.asarray(errors, float)
    ok = errors > floor
    if ok.sum() < 2:
        return None
    return float(np.polyfit(np.log(taus[ok]), np.log(errors[ok]), 1)[0])


def _scheme_specs(schemes) -> dict:
    if isinstance(schemes, str):
        schemes = [schemes]
    if isinstance(schemes, Mapping):
        specs = {}
        for label, kw in schemes.items():
            if not isinstance(kw, Mapping):
                raise TypeError(f"schemes[{label!r}] must be a dict of solve_flow options, got {type(kw).__name__}")
            specs[str(label)] = dict(kw)
        return specs
    if isinstance(schemes, Sequence) and schemes and all(isinstance(s, str) for s in schemes):
        return {s: {"scheme": s} for s in schemes}
    raise TypeError("schemes must be a scheme name, a list of names or a dict label → solve_flow options")


def convergence_study(
    potential: Potential,
    x0: ArrayLike,
    T: float,
    taus: ArrayLike,
    schemes: str | Sequence[str] | Mapping[str, Mapping[str, Any]] = ("euler",),
    reference: str | Callable[[np.ndarray], np.ndarray] | FlowResult = "closed_form",
    norm: str | float | Norm = "linf",
    budget: float | None = None,
    center: ArrayLike | None = None,
    seed: int | np.random.Generator | None = None,
    *,
    ref_tau: float | None = None,
    n_eval: int = 1001,
) -> StudyResult:
    """Sup-in-time errors of time-stepping schemes for a range of step sizes, and their rates.

    For every scheme and every τ the flow is solved on [0, T] and its piecewise-linear
    interpolant u_τ is compared with the reference u: error(τ) = sup_t max_i ‖u_τ,i(t) − u_i(t)‖
    in the flow's norm (see :func:`sup_error`). The rate is the slope of log error vs log τ.

    Parameters
    ----------
    potential : Potential
    x0 : array (d,) or (n, d)
    T : float
    taus : sequence of float > 0
    schemes : str, list of str, or dict label → solve_flow options
        e.g. ``{"IFGSM": {"scheme": "euler"}, "MM": {"scheme": "minmove", "inner": "local"}}``.
    reference : "closed_form", "fine", "pairwise", callable or FlowResult
        ``"closed_form"``: :func:`closed_form_flow`; ``"fine"``: the first scheme at ``ref_tau``
        (default min(taus)/16); ``"pairwise"``: the difference between the first two schemes at
        the same τ (column ``"A vs B"``); a callable t (k,) → (k, n, d); a FlowResult.
    norm, budget, center, seed
        As in :func:`wflow.solve_flow` (shared by all runs).
    n_eval : int
        Uniform evaluation times added to the grids for the sup.

    Returns
    -------
    StudyResult
        ``columns[label]`` the errors per τ, ``rates[label]`` the fitted rates.
    """
    X0 = as_points(x0, "x0")
    T = real(T, "T", low=0.0, strict=True)
    taus = np.asarray(taus, dtype=float)
    if taus.ndim != 1 or taus.size < 1 or not np.all(np.isfinite(taus)) or np.any(taus <= 0):
        raise ValueError(f"taus must be a non-empty 1-D sequence of positive step sizes, got {taus!r}")
    specs = _scheme_specs(schemes)
    nrm = as_norm(norm)
    n_eval = integer(n_eval, "n_eval", low=2)
    common = dict(norm=nrm, budget=budget, center=center)

    def run(kw, tau):
        return solve_flow(potential, X0, T, float(tau), seed=seed, **common, **kw)

    ref: FlowResult | Callable[[np.ndarray], np.ndarray]
    pairwise = isinstance(reference, str) and reference == "pairwise"
    if pairwise and len(specs) != 2:
        raise ValueError(f"reference='pairwise' compares exactly two schemes, got {len(specs)}")
    if isinstance(reference, str) and not pairwise:
        if reference == "closed_form":
            ref = closed_form_flow(potential, X0, nrm, budget, center)
            ref_desc = "closed form"
        elif reference == "fine":
            rt = float(taus.min()) / 16 if ref_tau is None else real(ref_tau, "ref_tau", low=0.0, strict=True)
            label0 = next(iter(specs))
            ref = run(specs[label0], rt)
            ref_desc = f"{label0} at tau={rt:g}"
        else:
            raise ValueError(f"reference must be 'closed_form', 'fine', 'pairwise', a callable or a FlowResult, got {reference!r}")
    elif isinstance(reference, FlowResult):
        ref, ref_desc = reference, f"FlowResult({reference.scheme}, tau={reference.tau:g})"
    elif callable(reference):
        ref, ref_desc = reference, "callable"
    elif not pairwise:
        raise TypeError(f"reference must be a string, callable or FlowResult, got {type(reference).__name__}")

    columns: dict[str, np.ndarray] = {}
    if pairwise:
        (la, ka), (lb, kb) = specs.items()
        label = f"{la} vs {lb}"
        columns[label] = np.array([sup_error(run(ka, t), run(kb, t), T, nrm, n_eval=n_eval) for t in taus])
        ref_desc = "pairwise"
    else:
        for label, kw in specs.items():
            columns[label] = np.array([sup_error(run(kw, t), ref, T, nrm, n_eval=n_eval) for t in taus])
    rates = {k: fitted_rate(taus, v) for k, v in columns.items()}
    meta = {"T": T, "norm": str(nrm), "reference": ref_desc, "budget": budget,
            "potential": repr(potential), "n_particles": int(X0.shape[0]), "schemes": specs}
    return StudyResult("convergence study", taus, columns, rates, meta)


def fgsm_minmove_study(potential: Potential, x0: ArrayLike, T: float = 1.0, tau_max: float = 0.2,
                       n_halvings: int = 5, norm: str | float | Norm = "linf", inner: str = "auto",
                       budget: float | None = None, seed: int | np.random.Generator | None = None,
                       inner_options: dict | None = None) -> StudyResult:
    """The paper's study: IFGSM (explicit Euler) against minimizing movement, τ = τ_max·2^{-i}.

    For i = 0, …, n_halvings both schemes run on [0, T] with τ_i = τ_max 2^{-i}; the column
    ``"euler vs minmove"`` is sup_t max_i ‖u^Euler_τ(t) − u^MM_τ(t)‖ (both converge to ∞-curves
    of maximal slope, so on smooth potentials with a unique limit the difference → 0).
    Pass ``budget=ε`` to also keep both schemes in B_ε(x0) (as IFGSM attacks do; the paper
    takes τ_max = ε).
    """
    tau_max = real(tau_max, "tau_max", low=0.0, strict=True)
    n_halvings = integer(n_halvings, "n_halvings", low=1)
    taus = tau_max * 2.0 ** -np.arange(n_halvings + 1)
    mm: dict[str, Any] = {"scheme": "minmove", "inner": inner}
    if inner_options:
        mm["inner_options"] = dict(inner_options)
    res = convergence_study(potential, x0, T, taus, schemes={"euler": {"scheme": "euler"}, "minmove": mm},
                            reference="pairwise", norm=norm, budget=budget, seed=seed)
    res.name = "FGSM (Euler) vs minimizing movement"
    res.meta["tau_max"] = tau_max
    return res


# ------------------------------------------------------------------------------------------
# selection
# ------------------------------------------------------------------------------------------
def _euler_persistent(potential, X0, T, tau, s):
    """Euler in ℓ∞ with the persistent selection v_i = s_i wherever ∂_i V = 0 (s fixed per particle)."""
    t = time_grid(T, tau)
    X = X0.copy()
    out = [X.copy()]
    for h in np.diff(t):
        g = potential.grad(X)
        v = steepest(-g, "linf")
        v = np.where(g == 0, s, v)
        X = X + h * v
        out.append(X.copy())
    return t, np.stack(out)


def selection_study(taus: ArrayLike = (0.1, 0.05, 0.025, 0.0125, 0.00625), T: float = 1.0, n: int = 200,
                    seed: int | np.random.Generator | None = 0) -> StudyResult:
    """V(x) = x₁ on (R², ℓ∞) from x0 = 0: how the selection of sign(0) decides the limit.

    ∇V = (1, 0), so u₁' = −1 and u₂' may be anything in [−1, 1]: every curve
    u(t) = (−t, w(t)) with w(0) = 0 and |w'| ≤ 1 is an ∞-curve of maximal slope
    (V(u(t)) = −t, ‖∇V‖₁ = 1, ‖u'‖∞ = 1). Three selections of the Euler (IFGSM) direction
    and of the minimizing-movement minimizer, n particles each:

    - ``canonical`` (sign(0) = 0, the default): u₂ ≡ 0 for both schemes, for every τ.
    - ``random`` (a fresh uniform v₂ ∈ [−1, 1] every step, seeded; minimizing movement: a fresh
      uniform point of the minimizing segment): u₂ is a random walk with steps of size ≤ τ, so
      sup_t |u₂(t)| ~ √(Tτ/3) → 0: at fixed τ the curves differ, but the limit is the
      canonical one (law of large numbers) — the columns decay with rate ≈ ½.
    - ``persistent`` (v₂ = s drawn once per particle, uniform in [−1, 1]): u(t) = (−t, s t) for
      every τ: a different limit curve, at distance T·|s| from the canonical one.

    Columns: the mean over particles of sup_t |u₂(t)| (the distance to the canonical limit,
    in ℓ∞ since u₁ agrees), for each scheme and selection, and the largest
    |V(u(T)) − (−T)| (all selections dissipate energy at the maximal rate; 0 up to round-off).
    """
    taus = np.asarray(taus, dtype=float)
    if taus.ndim != 1 or taus.size < 1 or np.any(~(taus > 0)):
        raise ValueError(f"taus must be a non-empty sequence of positive step sizes, got {taus!r}")
    T = real(T, "T", low=0.0, strict=True)
    n = integer(n, "n", low=1)
    rng = rng_from(seed)
    V = Linear([1.0, 0.0])
    X0 = np.zeros((n, 2))
    s = rng.uniform(-1.0, 1.0, size=(n, 1)) * np.array([[0.0, 1.0]])
    cols = {k: np.empty(taus.size) for k in (
        "euler canonical", "minmove canonical", "euler random", "minmove random",
        "euler persistent", "energy defect")}
    for i, tau in enumerate(taus):
        defect = 0.0
        for scheme in ("euler", "minmove"):
            for sel in ("canonical", "random"):
                r = solve_flow(V, X0, T, float(tau), scheme=scheme, selection=sel, seed=rng)
                cols[f"{scheme} {sel}"][i] = float(np.mean(np.max(np.abs(r.positions[:, :, 1]), axis=0)))
                defect = max(defect, float(np.max(np.abs(r.energies[-1] + T))))
        _, P = _euler_persistent(V, X0, T, float(tau), s)
        cols["euler persistent"][i] = float(np.mean(np.max(np.abs(P[:, :, 1]), axis=0)))
        defect = max(defect, float(np.max(np.abs(V.value(P[-1]) + T))))
        cols["energy defect"][i] = defect
    rates = {k: fitted_rate(taus, v) for k, v in cols.items() if k != "energy defect"}
    meta = {"potential": "V(x) = x1", "norm": "linf", "T": T, "n_particles": n, "seed": seed,
            "persistent_mean_abs_s": float(np.mean(np.abs(s[:, 1])))}
    return StudyResult("selection study: V(x) = x1 on (R^2, linf)", taus, cols, rates, meta)


def fit_rate(taus, errors) -> tuple[float, float]:
    """Least-squares fit of log(error) = rate · log(τ) + log(C).

    Parameters
    ----------
    taus, errors : arrays of shape (m,)
        Step sizes and errors; pairs with a non-positive or non-finite error are left out.

    Returns
    -------
    (rate, C) : the fitted order and constant, error ≈ C τ^rate. NaN when fewer than two
    usable points remain.
    """
    t = np.asarray(taus, dtype=float).reshape(-1)
    e = np.asarray(errors, dtype=float).reshape(-1)
    if t.shape != e.shape:
        raise ValueError(f"taus and errors must have the same length, got {t.shape} and {e.shape}")
    ok = (t > 0) & (e > 0) & np.isfinite(t) & np.isfinite(e)
    if ok.sum() < 2 or np.ptp(np.log(t[ok])) == 0:
        return float("nan"), float("nan")
    rate, logc = np.polyfit(np.log(t[ok]), np.log(e[ok]), 1)
    return float(rate), float(np.exp(logc))
