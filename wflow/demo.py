"""The ``wflow demo`` pipeline: simulate, check, plot, report.

:func:`run_demo` runs an ∞-flow of a particle measure on an embedded default problem, checks
the theorems on it with measured numbers (:mod:`wflow.verify`), draws the figures and an
animation (:mod:`wflow.plotting`) and writes ``report.json`` and ``report.md``. All files go
through :class:`wflow.config.StagedOutput`, so an error leaves nothing half-written.
"""

from __future__ import annotations

import platform
import time

import numpy as np

from . import __version__
from .config import StagedOutput

__all__ = ["run_demo", "DEMO_FILES", "LANDSCAPE_DEMO_FILES", "render_report_md"]

#: files every demo run writes (figures, animation, reports)
DEMO_FILES = (
    "attack_landscape.png",
    "single_point.png",
    "snapshots.png",
    "attack_curves.png",
    "energy.png",
    "representing_measure.png",
    "animation.gif",
    "report.json",
    "report.md",
)
#: files of the fallback demo (used when wflow.adversarial is not available)
LANDSCAPE_DEMO_FILES = ("landscape.png", "snapshots.png", "energy.png", "animation.gif", "report.json", "report.md")


def _save(st: StagedOutput, name: str, fig, dpi: int) -> str:
    from .plotting import save_figure

    save_figure(fig, st.path(name), dpi=dpi)
    return name


def _attack_available() -> bool:
    from importlib.util import find_spec

    return all(find_spec(f"wflow.{m}") is not None for m in ("adversarial.distributional", "adversarial.attacks"))


def run_demo(out="wflow-out", *, quick: bool = False, progress: bool = False, seed: int = 0) -> dict:
    """Run the demo and write its files into ``out``; returns the report dict.

    The demo: the shipped two-moons GELU classifier; its test data (true labels) as a uniform
    particle measure μ₀, attacked by the W∞ ∞-flow of 𝓔(ν) = −∫ℓ dν up to t = ε = 0.2 (ℓ∞,
    Euler = IFGSM with τ = ε/100, ``--quick``: ε/40); the representing measure η rebuilt from
    shuffled snapshots; and the checks, each with its measured figure and tolerance:

    - the rows of :func:`wflow.verify.check_flow` on the particle curves (1-Lipschitz curves,
      energy dissipation, maximal-slope mass), each with its derived tolerance;
    - ``held_out``: η glued from every other shuffled snapshot against the held-out snapshots
      (exact W∞, :func:`wflow.verify.check_held_out`);
    - ``attack_gap``: (worst case − attacked loss)/worst case, a measurement of the dynamics
      (no pass/fail), the worst case Σ_i sup_{B_ε(x_i)} ℓ by grid search.

    When ``wflow.adversarial`` is missing, a Gaussian-mixture landscape flow is run instead.

    Parameters
    ----------
    out : path
        Output directory (created; existing files of the same names are replaced).
    quick : bool
        Fewer points, larger steps, coarser grid search (well under 15 s).
    progress : bool
        Show tqdm progress bars.
    seed : int
        Seed of the snapshot shuffling (and of the fallback's initial measure).
    """
    if _attack_available():
        return _attack_demo(out, quick=quick, progress=progress, seed=seed)
    return _landscape_demo(out, quick=quick, progress=progress, seed=seed)


class _ProbabilityField:
    """The classifier's P(class 1 | x) as a 'potential' for contour plots."""

    def __init__(self, model):
        self.model = model

    def value(self, X):
        return np.asarray(self.model.predict_proba(X), dtype=float).reshape(-1)


def _attack_demo(out, *, quick: bool, progress: bool, seed: int) -> dict:
    from tqdm.auto import tqdm

    from .adversarial import distributional_attack, load_model, load_two_moons, make_loss, worst_case_loss
    from .flow import solve_flow
    from .measures import ParticleMeasure
    from .plotting import (
        animate_measure,
        plot_attack_curves,
        plot_curve_measure,
        plot_energy_slope,
        plot_landscape,
        plot_snapshots,
        save_animation,
    )
    from .verify import check_flow, check_held_out, measure_attack_gap

    t_start = time.perf_counter()
    timings: dict[str, float] = {}
    n = 200 if quick else 500
    eps = 0.2
    steps = 40 if quick else 100
    tau = eps / steps
    grid, refine = (21, 3) if quick else (33, 4)
    exact = True
    stages = tqdm(total=5, desc="demo", disable=not progress, leave=False)

    model = load_model("two_moons_gelu")
    data = load_two_moons()
    X, y = data["X_test"][:n], data["y_test"][:n]
    mu0 = ParticleMeasure(X)

    t0 = time.perf_counter()
    att = distributional_attack(model, mu0, y, eps=eps, tau=tau, n_winf=6 if exact else 0, progress=progress)
    res = att.flow
    timings["attack_flow"] = time.perf_counter() - t0
    stages.update(1)

    t0 = time.perf_counter()
    worst = worst_case_loss(model, mu0, y, eps, grid=grid, refine=refine)
    timings["worst_case_grid_search"] = time.perf_counter() - t0
    stages.update(1)

    # the representing measure from shuffled, unlabelled snapshots (exact W∞ couplings)
    t0 = time.perf_counter()
    ks = np.unique(np.linspace(0, len(res.times) - 1, 17).round().astype(int))  # K = 16: 3 held-out levels
    snap_times = res.times[ks]
    rng = np.random.default_rng(seed)
    snaps = [ParticleMeasure(res.positions[k][perm], res.weights[perm])
             for k in ks for perm in [rng.permutation(n)]]
    # the flow's curves (η = superpose(res)): Lipschitz, dissipation and maximal-slope mass with
    # derived tolerances; then η glued from every other shuffled snapshot, measured on the
    # held-out ones (exact W∞); the attack's gap to the worst case is a measurement
    checks = list(check_flow(res).checks)
    held = check_held_out(snaps, snap_times, "linf")
    checks.append(held)
    eta = held.details.pop("_eta", None)
    timings["checks_and_superposition"] = time.perf_counter() - t0
    stages.update(1)

    attacked = float(att.expected_loss[-1])
    wc = worst.mean
    checks.append(measure_attack_gap(attacked, wc, grid=grid, refine=refine))

    # a single point as in the paper's figures: x₀ = (0.45, 0.3), ε = 0.25, τ = 0.025
    x_single = np.array([0.45, 0.3])
    y_single = float(model.predict(x_single[None])[0])
    V_single = -make_loss(model, y_single, "mse")
    single = [solve_flow(V_single, x_single, T=1.0, tau=0.025, budget=0.25)]
    single_labels = ["IFGSM, τ = 0.025"]
    single.append(solve_flow(V_single, x_single, T=1.0, tau=0.025, budget=0.25, scheme="minmove"))
    single_labels.append("minimizing movement, τ = 0.025")

    report = {
        "wflow_version": __version__,
        "command": "demo",
        "quick": quick,
        "problem": {
            "description": (
                "distributional adversarial attack on the two-moons GELU classifier as a W∞ ∞-flow "
                "of the test-data measure (ℓ∞, Euler = IFGSM), run to t = ε"
            ),
            "model": "two_moons_gelu",
            "loss": "mse",
            "n_points": n,
            "eps": eps,
            "tau": tau,
            "norm": "linf",
            "scheme": "euler",
            "exact_winf": exact,
            "worst_case_grid": f"{grid}x{grid}, {refine} refinements",
            "seed": seed,
        },
        "measured": {
            "clean_loss": float(att.expected_loss[0]),
            "attacked_loss": attacked,
            "worst_case_loss": wc,
            "clean_accuracy": float(att.accuracy[0]),
            "attacked_accuracy": float(att.accuracy[-1]),
            "max_displacement": float(att.displacement[-1]),
            "winf_mu0_mu_eps": float(att.winf[-1]) if len(att.winf) else None,
            "representing_measure_curves": None if eta is None else int(eta.n_curves),
        },
        "checks": [c.to_dict() for c in checks],
        "all_passed": all(c.passed is not False for c in checks),
        "files": list(DEMO_FILES),
    }

    dpi = 70 if quick else 90
    field = _ProbabilityField(model)
    with StagedOutput(out) as st:
        t0 = time.perf_counter()
        sub = np.linspace(0, n - 1, 40 if quick else 80).round().astype(int)
        c0, c1 = sub[y[sub] == 0], sub[y[sub] == 1]
        _save(st, "attack_landscape.png", plot_landscape(
            field, [res.positions[:, c0], res.positions[:, c1]], labels=["class 0", "class 1"],
            xlim=(-1.6, 2.6), ylim=(-1.2, 1.7), cmap="coolwarm", levels=20, colorbar_label="P(class 1 | x)", resolution=100 if quick else 160,
            title=f"attack flow to ε = {eps:g} on P(class 1 | x)"), dpi)
        _save(st, "single_point.png", plot_landscape(
            V_single, single, budget=0.25, center=x_single, tau_boxes=[True] + [False] * (len(single) - 1),
            labels=single_labels,
            xlim=(0.1, 0.8), ylim=(-0.05, 0.65), resolution=80 if quick else 120,
            title="x₀ = (0.45, 0.3), ε = 0.25: V = −loss"), dpi)
        _save(st, "snapshots.png", plot_snapshots(res, potential=field, n_panels=4), dpi)
        _save(st, "attack_curves.png", plot_attack_curves(
            att.times, att.expected_loss, att.accuracy, worst_case=wc, eps=eps,
            winf_times=att.winf_times, winf=att.winf), dpi)
        _save(st, "energy.png", plot_energy_slope(res), dpi)
        if eta is not None:
            fig = plot_curve_measure(eta, potential=field, max_curves=600 if quick else 2000,
                                     title=f"η from {len(snaps)} shuffled snapshots: {eta.n_curves} curves")
        else:  # no superposition module: the labelled particle curves
            fig = plot_curve_measure((np.moveaxis(res.positions[ks], 0, 1), res.weights))
        _save(st, "representing_measure.png", fig, dpi)
        anim = animate_measure(res, potential=field, colors=y, max_frames=16 if quick else 30,
                               xlim=(-1.6, 2.6), ylim=(-1.2, 1.7))
        save_animation(anim, st.path("animation.gif"), fps=6, dpi=50 if quick else 60)
        timings["figures"] = time.perf_counter() - t0
        stages.update(2)
        stages.close()
        _write_reports(st, report, timings, t_start)
    return report


def _landscape_demo(out, *, quick: bool, progress: bool, seed: int) -> dict:
    from .flow import solve_flow
    from .measures import ParticleMeasure
    from .plotting import animate_measure, plot_energy_slope, plot_landscape, plot_snapshots, save_animation
    from .potentials import GaussianMixture
    from .verify import check_flow

    t_start = time.perf_counter()
    timings: dict[str, float] = {}
    n = 120 if quick else 400
    T, tau = 1.0, (0.01 if quick else 0.004)
    V = GaussianMixture.default()
    rng = np.random.default_rng(seed)
    mu0 = ParticleMeasure(rng.uniform(-1.2, 1.2, size=(n, 2)))

    t0 = time.perf_counter()
    res = solve_flow(V, mu0, T, tau, norm="linf", progress=progress)
    timings["flow"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    checks = check_flow(res).checks
    timings["checks"] = time.perf_counter() - t0

    report = {
        "wflow_version": __version__,
        "command": "demo",
        "quick": quick,
        "problem": {
            "description": "sign-gradient (ℓ∞) ∞-flow of a uniform particle measure on a Gaussian-mixture landscape",
            "potential": repr(V),
            "n_particles": n,
            "T": T,
            "tau": tau,
            "norm": "linf",
            "scheme": "euler",
            "seed": seed,
        },
        "measured": {
            "energy_start": float(res.energy_curve()[0]),
            "energy_end": float(res.energy_curve()[-1]),
            "slope_start": float(res.slope_curve()[0]),
            "slope_end": float(res.slope_curve()[-1]),
        },
        "checks": [c.to_dict() for c in checks],
        "all_passed": all(c.passed is not False for c in checks),
        "files": list(LANDSCAPE_DEMO_FILES),
    }

    dpi = 70 if quick else 90
    with StagedOutput(out) as st:
        t0 = time.perf_counter()
        _save(st, "landscape.png", plot_landscape(V, res, tau_boxes=False, max_curves=60,
                                                   title="∞-flow on a Gaussian-mixture landscape"), dpi)
        _save(st, "snapshots.png", plot_snapshots(res, potential=V, n_panels=4), dpi)
        _save(st, "energy.png", plot_energy_slope(res), dpi)
        anim = animate_measure(res, potential=V, max_frames=20 if quick else 40)
        save_animation(anim, st.path("animation.gif"), fps=8, dpi=60)
        timings["figures"] = time.perf_counter() - t0
        _write_reports(st, report, timings, t_start)
    return report


def _write_reports(st: StagedOutput, report: dict, timings: dict, t_start: float) -> None:
    """Add timings and environment to the report and stage report.json and report.md."""
    timings["total"] = time.perf_counter() - t_start
    report["timings_seconds"] = timings
    report["environment"] = {"python": platform.python_version(), "numpy": np.__version__}
    st.write_json("report.json", report)
    st.write_text("report.md", render_report_md(report))


def render_report_md(report: dict) -> str:
    """Human-readable markdown version of a demo or verify report."""
    lines = [f"# wflow {report.get('command', 'report')} report", ""]
    prob = report.get("problem")
    if prob:
        lines += [f"**Problem.** {prob.get('description', '')}", ""]
        lines += ["| setting | value |", "|---|---|"]
        lines += [f"| {k} | {v} |" for k, v in prob.items() if k != "description"]
        lines.append("")
    meas = report.get("measured")
    if meas:
        lines += ["## Measured", "", "| quantity | value |", "|---|---:|"]
        lines += [f"| {k} | {_fmt(v)} |" for k, v in meas.items()]
        lines.append("")
    lines += ["## Checks", "", "| check | measured | | tolerance | result |", "|---|---:|:-:|---:|:-:|"]
    for c in report.get("checks", []):
        lines.append(
            f"| {c['name']} | {_fmt(c['measured'])} | {c['relation']} | {_fmt(c['tolerance'])} | "
            f"{'measured' if c['passed'] is None else ('PASS' if c['passed'] else 'FAIL')} |"
        )
    lines.append("")
    for c in report.get("checks", []):
        lines.append(f"- **{c['name']}**: {c.get('description') or c.get('formula', '')}")
    lines.append("")
    verdict = "all checks PASS" if report.get("all_passed") else "some checks FAIL"
    lines += [f"**Result: {verdict}.**", ""]
    if report.get("files"):
        lines += ["## Files", ""] + [f"- `{f}`" for f in report["files"]] + [""]
    if report.get("timings_seconds"):
        tm = ", ".join(f"{k} {v:.2f} s" for k, v in report["timings_seconds"].items())
        lines += [f"Timings: {tm}.", ""]
    return "\n".join(lines)


def _fmt(v) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)
